//! Declared AI use: `none` when the report says no AI tool was used, `used` when it says
//! one was, nothing when it says neither. A report *about* an AI feature ("the ChatGPT
//! integration leaks tokens") declares nothing: a sentence counts only when it speaks of
//! the report, its author or its proof ("I used", "this report", "no AI tools were used"),
//! or is a labelled declaration ("AI assistance: none", "AI use: yes").

use super::text::Doc;
use super::{AiDeclared, AiUse};

/// Longest statement kept: the reporter's sentence, verbatim, up to this many characters.
pub const MAX_STATEMENT: usize = 400;

/// Words that name an AI tool or AI in general (whole words of the lowercased text).
const TOOLS: &[&str] = &[
    "ai",
    "a.i.",
    "llm",
    "llms",
    "chatgpt",
    "gpt",
    "gpt-4",
    "gpt-4o",
    "gpt-5",
    "openai",
    "claude",
    "copilot",
    "gemini",
    "bard",
    "llama",
    "mistral",
    "deepseek",
    "cursor",
    "codex",
    "perplexity",
    "grok",
    "ki",
    "ia",
    "ai-assisted",
    "ai-generated",
    "ai-written",
    "ai-assistance",
    "ai-tools",
];
/// Phrases that name AI without being one word.
const TOOL_PHRASES: &[&str] = &[
    "artificial intelligence",
    "language model",
    "künstliche intelligenz",
    "intelligence artificielle",
    "inteligencia artificial",
];

/// Labels of a declaration: "AI use", "AI assistance", "Use of AI", "AI-assisted".
fn is_ai_label(key: &str) -> bool {
    let words: Vec<&str> = key.split(|c: char| !c.is_alphanumeric() && c != '.').filter(|w| !w.is_empty()).collect();
    let ai = words.iter().any(|w| matches!(*w, "ai" | "a.i." | "llm" | "ki" | "ia" | "genai"))
        || key.contains("artificial intelligence")
        || key.starts_with("ai-");
    ai && words.len() <= 6
}

/// What a labelled declaration's value says.
fn value_says(v: &str) -> Option<AiDeclared> {
    let v = v.trim().trim_start_matches(['*', '-', ' ']);
    let first = v.split(|c: char| !c.is_alphanumeric() && c != '/').next().unwrap_or("");
    if matches!(
        first,
        "no" | "none"
            | "n/a"
            | "na"
            | "nein"
            | "keine"
            | "kein"
            | "non"
            | "aucune"
            | "aucun"
            | "ninguna"
            | "ninguno"
            | "nada"
            | "never"
            | "not"
            | "false"
            | "nothing"
            | "zero"
            | "0"
    ) || v.starts_with("did not")
        || v.starts_with("not used")
    {
        return Some(AiDeclared::None);
    }
    if matches!(
        first,
        "yes" | "used" | "ja" | "oui" | "sí" | "si" | "true" | "partially" | "partly" | "some" | "assisted"
    ) || names_tool(v)
    {
        return Some(AiDeclared::Used);
    }
    None
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')' | '"' | '\'' | '!' | '?'))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
}

fn names_tool(s: &str) -> bool {
    words(s).any(|w| TOOLS.contains(&w)) || TOOL_PHRASES.iter().any(|p| s.contains(p))
}

/// The sentence speaks of the report, its writer or its proof, not of the product.
fn about_the_report(s: &str) -> bool {
    const SUBJECTS: &[&str] = &[
        "this report",
        "the report",
        "this text",
        "this write-up",
        "this writeup",
        "the write-up",
        "this email",
        "this mail",
        "this message",
        "the poc",
        "this poc",
        "the exploit",
        "my exploit",
        "the script",
        "my script",
        "this finding",
        "the finding",
        "the analysis",
        "this analysis",
        "the description",
        "my report",
        "research",
        "dieser bericht",
        "ce rapport",
        "este informe",
    ];
    let first_person = words(s).any(|w| {
        matches!(
            w,
            "i" | "i've"
                | "i'm"
                | "we"
                | "we've"
                | "my"
                | "our"
                | "me"
                | "ich"
                | "wir"
                | "je"
                | "j'ai"
                | "nous"
                | "yo"
                | "usé"
                | "utilicé"
        )
    });
    first_person || SUBJECTS.iter().any(|p| s.contains(p))
}

/// The sentence says no AI tool was used.
fn says_none(s: &str) -> bool {
    const PHRASES: &[&str] = &[
        "no ai",
        "no a.i.",
        "no llm",
        "no generative ai",
        "no artificial intelligence",
        "without ai",
        "without any ai",
        "without the use of ai",
        "without the help of ai",
        "without using ai",
        "without an ai",
        "without llm",
        "without any llm",
        "without chatgpt",
        "not use ai",
        "not use any ai",
        "not use an ai",
        "not use llm",
        "not used ai",
        "not used any ai",
        "not written by ai",
        "not written by an ai",
        "not generated by ai",
        "not generated by an ai",
        "not ai-generated",
        "not ai generated",
        "not ai-assisted",
        "not ai assisted",
        "didn't use ai",
        "didn't use any ai",
        "did not use ai",
        "did not use any ai",
        "have not used ai",
        "haven't used ai",
        "have not used any ai",
        "haven't used any ai",
        "no use of ai",
        "nor any ai",
        "keine ki",
        "ohne ki",
        "aucune ia",
        "sans ia",
        "sin ia",
        "sin usar ia",
        "ninguna ia",
        "sin ninguna herramienta de ia",
        "aucun outil d'ia",
        "no se utilizó ia",
        "no se utilizaron herramientas de ia",
        "wurde keine ki",
        "n'a été utilisé",
    ];
    let hit = PHRASES.iter().any(|p| s.contains(p))
        || (names_tool(s)
            && ["were used", "was used", "used", "involved", "assistance", "help"].iter().any(|w| s.contains(w))
            && ["no ", "not ", "n't ", "without", "never", "none"].iter().any(|w| s.contains(w)));
    // "No AI was used for X, but I used ChatGPT for Y" is a use; says_used decides that.
    hit && (about_the_report(s)
        || s.contains(" used")
        || s.contains("assist")
        || s.contains("generated")
        || s.contains("written"))
}

/// The sentence says an AI tool was used for the report or its proof.
fn says_used(s: &str) -> bool {
    if !names_tool(s) || !about_the_report(s) {
        return false;
    }
    const PHRASES: &[&str] = &[
        "i used",
        "i've used",
        "i have used",
        "we used",
        "we've used",
        "we have used",
        "i use ",
        "we use ",
        "with the help of",
        "with help from",
        "with the assistance of",
        "assisted by",
        "ai-assisted",
        "ai assisted",
        "drafted by",
        "drafted with",
        "drafted using",
        "drafted the",
        "written by",
        "written with",
        "written using",
        "generated by",
        "generated with",
        "generated using",
        "created with",
        "created using",
        "produced with",
        "produced by",
        "helped me",
        "helped us",
        "help me",
        "helped write",
        "helped to",
        "using chatgpt",
        "using claude",
        "using copilot",
        "using gemini",
        "using an ai",
        "using ai",
        "using an llm",
        "with chatgpt",
        "with claude",
        "with copilot",
        "with gemini",
        "polished",
        "translated",
        "proofread",
        "rephrase",
        "reworded",
        "summaris",
        "summariz",
        "wrote the",
        "wrote this",
        "wrote my",
        "was used to",
        "were used to",
        "ich habe",
        "j'ai utilisé",
        "utilicé",
        "usé ",
        "mit hilfe von",
        "avec l'aide",
        "con la ayuda",
    ];
    let negated = ["did not", "didn't", "not used", "no ai", "without"].iter().any(|n| s.contains(n));
    (!negated || s.contains(" but ")) && PHRASES.iter().any(|p| s.contains(p))
}

/// The declaration of AI use in `doc`, if any. A use anywhere wins over a "none" (a
/// report that says "no AI found the bug, but ChatGPT wrote the text" used one).
pub fn declared(doc: &Doc) -> AiUse {
    let mut none: Option<String> = None;
    // Labelled declarations first: "AI use: yes" / "AI tools: Claude, for ..." (Akrites).
    for (i, l) in doc.lines.iter().enumerate() {
        let Some(label) = l.label.as_ref() else { continue };
        if !is_ai_label(&label.key) {
            continue;
        }
        let value = if label.value.is_empty() {
            doc.section(i).find(|n| !n.lower.is_empty()).map(|n| n.lower.clone()).unwrap_or_default()
        } else {
            label.value.clone()
        };
        match value_says(&value) {
            Some(AiDeclared::Used) => {
                let mut statement = l.text.to_owned();
                // The second line of a two-line block ("AI tools: ...") belongs to it.
                if let Some(next) =
                    doc.lines.get(i + 1).filter(|n| n.label.as_ref().is_some_and(|x| is_ai_label(&x.key)))
                {
                    statement.push('\n');
                    statement.push_str(next.text);
                } else if label.value.is_empty()
                    && let Some(n) = doc.section(i).find(|n| !n.lower.is_empty())
                {
                    statement.push('\n');
                    statement.push_str(n.text);
                }
                return used(statement);
            }
            Some(AiDeclared::None) if none.is_none() => none = Some(l.text.to_owned()),
            _ => {}
        }
    }
    for s in &doc.sentences {
        if doc.lines[s.line].label.as_ref().is_some_and(|l| is_ai_label(&l.key)) {
            continue;
        }
        if says_used(&s.lower) {
            return used(s.text.clone());
        }
        if none.is_none() && says_none(&s.lower) {
            none = Some(s.text.clone());
        }
    }
    match none {
        Some(s) => AiUse { declared: Some(AiDeclared::None), statement: Some(cap(s)) },
        None => AiUse::default(),
    }
}

fn used(statement: String) -> AiUse {
    AiUse { declared: Some(AiDeclared::Used), statement: Some(cap(statement)) }
}

fn cap(s: String) -> String {
    if s.chars().count() <= MAX_STATEMENT { s } else { s.chars().take(MAX_STATEMENT).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(t: &str) -> Option<AiDeclared> {
        declared(&Doc::read(t)).declared
    }

    #[test]
    fn the_forms_people_write() {
        assert_eq!(decl("AI assistance: none\n"), Some(AiDeclared::None));
        assert_eq!(decl("AI-assisted: yes, ChatGPT drafted the text\n"), Some(AiDeclared::Used));
        assert_eq!(decl("No AI tools were used in finding or writing this.\n"), Some(AiDeclared::None));
        assert_eq!(decl("I used Copilot to write the PoC.\n"), Some(AiDeclared::Used));
        let two = declared(&Doc::read("AI use: yes\nAI tools: Claude, for summarising the trace\n"));
        assert_eq!(two.declared, Some(AiDeclared::Used));
        assert_eq!(two.statement.as_deref(), Some("AI use: yes\nAI tools: Claude, for summarising the trace"));
        assert_eq!(
            decl("No AI was involved in finding the bug, but I used ChatGPT to polish my English.\n"),
            Some(AiDeclared::Used)
        );
    }

    #[test]
    fn a_report_about_an_ai_feature_declares_nothing() {
        assert_eq!(decl("The ChatGPT integration leaks the API token in the page source.\n"), None);
        assert_eq!(
            decl("An attacker can use the LLM plugin to read files. The AI assistant follows injected prompts.\n"),
            None
        );
        assert_eq!(decl("The response generated by the AI model contains the secret.\n"), None);
    }
}
