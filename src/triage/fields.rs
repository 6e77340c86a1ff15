//! Which of the policy's fields a report holds, decided from what the text really
//! contains: a labelled section with content (a heading, a `Label: value` line, a form
//! field as PySpector's form writes it), a numbered list of actions, fenced or indented
//! code, a version number in context. The README's "What counts" lists the same rules.

use std::collections::BTreeSet;

use super::text::{Doc, Kind, Label, Line};
use super::versions::{has_commit, has_version, names_all_versions, version_in_context};
use super::{AttachmentInfo, Field};

/// A field's value that says it is not there: "Steps: N/A", "PoC: available on request".
const EMPTY_VALUES: &[&str] = &[
    "n/a",
    "na",
    "none",
    "-",
    "--",
    "tbd",
    "todo",
    "unknown",
    "?",
    ".",
    "not available",
    "upon request",
    "on request",
    "available on request",
    "available upon request",
    "will provide",
    "will follow",
    "can provide",
    "not provided",
    "not applicable",
    "not sure",
    "unsure",
    "coming soon",
    "later",
];

fn says_nothing(v: &str) -> bool {
    let v = v.trim().trim_end_matches('.');
    v.is_empty() || EMPTY_VALUES.contains(&v)
}

/// The field a label names, if any.
pub fn label_field(key: &str) -> Option<Field> {
    let has = |words: &[&str]| words.iter().any(|w| key.contains(w));
    if has(&["next step", "mitigat", "remediat", "fix", "reproducib", "recommend", "solution", "workaround"]) {
        return None;
    }
    if has(&[
        "reproduc",
        "repro",
        "steps",
        "how to detect",
        "detection",
        "walkthrough",
        "schritte",
        "reproduktion",
        "nachstellen",
        "étapes",
        "etapes",
        "pasos",
        "passi",
        "reproducción",
    ]) {
        return Some(Field::Steps);
    }
    if key == "poc"
        || key.starts_with("poc ")
        || key.ends_with(" poc")
        || key.contains("(poc)")
        || has(&[
            "proof of concept",
            "proof-of-concept",
            "exploit code",
            "payload",
            "preuve de concept",
            "prueba de concepto",
        ])
        || key == "exploit"
    {
        return Some(Field::Poc);
    }
    if has(&["version", "versión", "release", "tested on", "tested against", "betroffen"])
        || matches!(key, "affected" | "affects" | "affected product" | "affected products" | "affected software")
    {
        return Some(Field::Versions);
    }
    if has(&[
        "impact",
        "auswirkung",
        "impacto",
        "consequence",
        "conséquence",
        "consecuencia",
        "attack scenario",
        "what an attacker",
        "attacker gets",
        "attacker can",
    ]) {
        return Some(Field::Impact);
    }
    if key.contains("cvss") {
        return Some(Field::Cvss);
    }
    if has(&[
        "description",
        "summary",
        "details",
        "overview",
        "beschreibung",
        "zusammenfassung",
        "résumé",
        "descripción",
        "resumen",
        "vulnerability",
        "issue",
        "problem",
        "finding",
    ]) {
        return Some(Field::Description);
    }
    None
}

/// The fields present in `doc` that this module decides (`cwe`, `credit`, `ai_use` and
/// a CVSS vector are decided by the extractors in `report` and `ai`).
pub fn present(doc: &Doc, attachments: &[AttachmentInfo]) -> BTreeSet<Field> {
    let mut out = BTreeSet::new();
    let mut prose_words = 0usize;
    for (i, l) in doc.lines.iter().enumerate() {
        match (l.kind, &l.label) {
            (Kind::Label, Some(label)) => {
                let Some(f) = label_field(&label.key) else { continue };
                if section_has(doc, i, label, f) {
                    out.insert(f);
                }
            }
            (Kind::Prose | Kind::Item, _) => prose_words += l.text.split_whitespace().count(),
            _ => {}
        }
    }
    if prose_words >= 4 {
        out.insert(Field::Description);
    }
    if numbered_actions(doc) || doc.sentences.iter().any(|s| reproduce_sentence(&s.lower)) {
        out.insert(Field::Steps);
    }
    if code_block(doc) || attachments.iter().any(is_poc_attachment) {
        out.insert(Field::Poc);
    }
    if !out.contains(&Field::Versions) && doc.lines.iter().any(version_in_context) {
        out.insert(Field::Versions);
    }
    if !out.contains(&Field::Impact) && doc.sentences.iter().any(|s| impact_sentence(&s.lower)) {
        out.insert(Field::Impact);
    }
    out
}

/// The label at line `at` has content that counts for `f`: its value or the lines under it.
fn section_has(doc: &Doc, at: usize, label: &Label, f: Field) -> bool {
    let mut content: Vec<&str> = Vec::new();
    if !label.value.is_empty() {
        content.push(&label.value);
    }
    let lines: Vec<&Line> = doc.section(at).filter(|l| !matches!(l.kind, Kind::Blank | Kind::Quoted)).collect();
    content.extend(lines.iter().map(|l| l.lower.as_str()));
    if content.is_empty() || (content.len() == 1 && says_nothing(content[0])) {
        return false;
    }
    // "Steps to reproduce: see the video": a pointer to elsewhere is not the steps.
    let pointer = |c: &str| c.contains("video") || c.starts_with("http") || c.contains("youtu");
    if f == Field::Steps && content.iter().all(|c| pointer(c)) {
        return false;
    }
    match f {
        // A proof is code, a command or a request, or more than one line of it; a lone
        // link is a pointer.
        Field::Poc => {
            lines.iter().any(|l| l.kind == Kind::Code) || content.len() >= 2 || !content[0].starts_with("http")
        }
        Field::Versions => content.iter().any(|c| has_version(c) || names_all_versions(c) || has_commit(c)),
        Field::Cvss => content.iter().any(|c| c.chars().any(|ch| ch.is_ascii_digit())),
        _ => true,
    }
}

/// Words that open a step: "Open ...", "Send ...", "Log in as ...", and their German,
/// French and Spanish imperatives.
#[rustfmt::skip]
const ACTIONS: &[&str] = &[
    // English, then German, French, Spanish, Italian imperatives and openers, then commands.
    "open", "go", "navigate", "visit", "browse", "send", "run", "execute", "start", "launch", "install",
    "create", "click", "enter", "type", "paste", "fill", "upload", "download", "submit", "post", "request",
    "call", "invoke", "log", "login", "sign", "register", "set", "configure", "enable", "disable", "add",
    "remove", "delete", "edit", "change", "modify", "rename", "replace", "copy", "move", "save", "load",
    "reload", "refresh", "restart", "stop", "build", "compile", "clone", "checkout", "deploy", "import",
    "export", "intercept", "capture", "replay", "repeat", "forward", "craft", "prepare", "host", "serve",
    "inject", "insert", "select", "choose", "pick", "use", "make", "put", "place", "point", "attach", "invite",
    "hover", "share", "publish", "push", "pull", "fetch", "issue", "trigger", "observe", "notice", "note", "see",
    "check", "verify", "confirm", "wait", "watch", "look", "access", "authenticate", "connect", "mount",
    "generate", "encode", "decode", "craft", "save", "write", "read", "compare", "apply", "follow", "provide",
    "supply", "pass", "feed", "grant", "as", "with", "using", "then", "now", "first", "next", "finally",
    "after", "once", "from", "in", "on", "under", "inside", "via", "öffnen", "öffne", "starten", "starte",
    "senden", "sende", "aufrufen", "rufen", "melden", "anmelden", "klicken", "klicke", "geben", "hochladen",
    "ausführen", "führen", "ouvrir", "ouvrez", "envoyer", "envoyez", "lancer", "lancez", "connectez-vous",
    "connectez", "cliquez", "saisissez", "exécutez", "accédez", "allez", "créez", "abrir", "abra", "abre",
    "enviar", "envíe", "envía", "ejecutar", "ejecute", "ejecuta", "iniciar", "inicie", "acceder", "acceda",
    "accede", "haga", "haz", "cree", "crea", "suba", "sube", "introduzca", "apri", "invia", "esegui", "avvia",
    "clicca", "se", "revenir", "aller", "cliquer", "saisir", "créer", "exécuter", "accéder", "observer",
    "constater", "vérifier", "iniciar", "entrar", "ir", "hacer", "pulsar", "observar", "comprobar", "ver",
    "beobachten", "prüfen", "curl", "wget", "git", "git-dumper", "cd", "python", "python3", "node", "npm",
    "npx", "pip", "docker", "make", "cargo", "ssh", "nc", "printf", "echo", "sudo", "bash", "sh", "get",
    "patch", "put", "./configure", "mkdir",
];
/// Subjects of a step written in the third person: "The attacker sends ...".
const ACTORS: &[&str] =
    &["attacker", "the attacker", "an attacker", "victim", "the victim", "user", "the user", "a user"];

/// A numbered list of at least two items, most of which open with an action (a list of
/// impacts or affected files is not steps), and not under a label of another field.
fn numbered_actions(doc: &Doc) -> bool {
    let mut run = 0usize;
    let mut actions = 0usize;
    let mut last: Option<u32> = None;
    for (i, l) in doc.lines.iter().enumerate() {
        match (l.kind, l.number) {
            (Kind::Item, Some(n)) => {
                let foreign = doc
                    .label_of(i)
                    .and_then(|lab| label_field(&lab.key))
                    .is_some_and(|f| !matches!(f, Field::Steps | Field::Poc | Field::Description));
                if last.is_some_and(|p| n != p + 1) || foreign {
                    run = 0;
                    actions = 0;
                }
                if foreign {
                    last = None;
                    continue;
                }
                last = Some(n);
                run += 1;
                if opens_with_action(&l.lower) {
                    actions += 1;
                }
                if run >= 2 && actions >= 2 && actions * 2 >= run {
                    return true;
                }
            }
            (Kind::Blank | Kind::Code | Kind::Fence | Kind::Prose, _) => {}
            _ => {
                run = 0;
                actions = 0;
                last = None;
            }
        }
    }
    false
}

fn opens_with_action(item: &str) -> bool {
    let rest = item
        .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ')' | ' ' | ':' | '*' | '-'))
        .trim_start_matches("step")
        .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ')' | ' ' | ':' | '-'));
    let word = |s: &str| -> String {
        s.split(|c: char| !c.is_alphanumeric() && c != '-' && c != 'ö' && c != 'é').next().unwrap_or("").to_owned()
    };
    let first = word(rest);
    if ACTIONS.contains(&first.as_str()) {
        return true;
    }
    ACTORS.iter().any(|a| {
        rest.strip_prefix(a).is_some_and(|after| {
            // "User B sends", "User A (not a member) opens": a one-letter name and an
            // aside may stand between the actor and the verb.
            let mut after = after.trim_start();
            let name = word(after);
            if name.chars().count() == 1 {
                after = after[name.len()..].trim_start();
            }
            if after.starts_with('(')
                && let Some(close) = after.find(')')
            {
                after = after[close + 1..].trim_start();
            }
            let verb = word(after);
            verb.len() > 3 && verb.ends_with('s') && !matches!(verb.as_str(), "has" | "was" | "is" | "does")
        })
    })
}

/// "To reproduce, run ...", "It can be reproduced with ...", not "I could not reproduce it".
fn reproduce_sentence(s: &str) -> bool {
    const PHRASES: &[&str] = &[
        "to reproduce",
        "reproduce it by",
        "reproduce this by",
        "reproduce it with",
        "reproduce this with",
        "reproduced by",
        "reproduced with",
        "reproducible with",
        "reproducer",
        "to trigger the bug",
        "to trigger it",
        "to trigger this",
        "zum nachstellen",
        "zur reproduktion",
        "pour reproduire",
        "para reproducir",
    ];
    const NOT: &[&str] = &["not ", "n't", "unable", "cannot", "could you", "can you", "please send", "please provide"];
    s.split_whitespace().count() >= 5
        && PHRASES.iter().any(|p| s.contains(p))
        && !NOT.iter().any(|n| s.contains(n))
        && !s.contains("video")
}

/// A fenced block with a line in it, or an indented block read as code.
fn code_block(doc: &Doc) -> bool {
    let mut in_fence = false;
    for l in &doc.lines {
        match l.kind {
            Kind::Fence => in_fence = !in_fence,
            // Two lines of a scanner quoted as where it came from are not a proof.
            Kind::Code if !l.text.is_empty() && !super::scanner::is_tool_line(&l.lower) => return true,
            _ => {}
        }
    }
    false
}

/// A file that is the proof itself: a script, a page, a capture, a recording.
fn is_poc_attachment(a: &AttachmentInfo) -> bool {
    const EXT: &[&str] = &[
        "py", "sh", "js", "mjs", "ts", "html", "htm", "svg", "xml", "rb", "pl", "php", "go", "c", "cc", "cpp", "rs",
        "java", "ps1", "bat", "pcap", "pcapng", "har", "http", "req", "mp4", "webm", "mov", "gif", "zip", "tar", "tgz",
        "gz", "patch", "diff", "yaml", "yml", "json", "txt", "md", "png", "jpg", "jpeg",
    ];
    let name = a.name.to_lowercase();
    if super::scanner::is_scanner_report_name(&name) || a.size == 0 {
        return false;
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    ["poc", "exploit", "repro", "payload"].iter().any(|w| name.contains(w))
        || EXT.contains(&ext) && !matches!(ext, "txt" | "md" | "png" | "jpg" | "jpeg" | "json" | "yaml" | "yml")
        || a.content_type.starts_with("video/")
}

/// "An attacker can ...", "... leading to remote code execution".
fn impact_sentence(s: &str) -> bool {
    const PHRASES: &[&str] = &[
        "an attacker can",
        "an attacker could",
        "an attacker may",
        "attacker can",
        "attackers can",
        "allows an attacker",
        "allows attackers",
        "allow an attacker",
        "allows a remote",
        "allows an unauthenticated",
        "allows any",
        "lets an attacker",
        "enables an attacker",
        "could allow",
        "would allow",
        "leading to",
        "leads to",
        "results in",
        "resulting in",
        "which allows",
        "making it possible",
        "ein angreifer kann",
        "angreifer können",
        "un attaquant peut",
        "permet à un attaquant",
        "un atacante puede",
        "permite a un atacante",
    ];
    PHRASES.iter().any(|p| s.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(t: &str) -> BTreeSet<Field> {
        present(&Doc::read(t), &[])
    }

    #[test]
    fn a_one_liner_has_a_description_and_nothing_else() {
        assert_eq!(fields("Hi, I found XSS on your site. Please fix.\n"), BTreeSet::from([Field::Description]));
    }

    #[test]
    fn versions_in_context_and_numbers_that_are_not_versions() {
        for yes in
            ["Tested on 2.4.1.", "v3.2.0 and earlier are affected", "Affected versions: < 2.3.1", "at commit 4f2a9c1e"]
        {
            assert!(fields(yes).contains(&Field::Versions), "{yes}");
        }
        for no in [
            "See https://example.org/docs/2.3/config for the setting.",
            "The server at 10.0.0.12 answered before the timeout.",
            "Reported 2026.12.07 before lunch.",
            "It speaks HTTP/1.1 and TLS 1.2 before the handshake.",
            "Affected versions: unknown",
        ] {
            assert!(!fields(no).contains(&Field::Versions), "{no}");
        }
    }

    #[test]
    fn steps_from_a_label_a_numbered_list_or_a_sentence_not_a_list_of_impacts() {
        assert!(fields("Steps to reproduce:\n1. open /x\n").contains(&Field::Steps));
        assert!(fields("1. Log in as admin\n2. Open /settings\n3. Observe the token\n").contains(&Field::Steps));
        assert!(fields("To reproduce, run the server and send the request below.\n").contains(&Field::Steps));
        assert!(!fields("Impact:\n1. Remote code execution\n2. Data theft\n").contains(&Field::Steps));
        assert!(!fields("1. Remote code execution\n2. Data theft\n").contains(&Field::Steps));
        assert!(!fields("Steps to reproduce: N/A\n").contains(&Field::Steps));
        assert!(!fields("I could not reproduce it on the second machine at all.\n").contains(&Field::Steps));
    }

    #[test]
    fn poc_from_code_or_an_attachment() {
        assert!(fields("Run this:\n```\ncurl -d x http://h/\n```\n").contains(&Field::Poc));
        let a = AttachmentInfo { name: "exploit.py", content_type: "text/x-python", size: 300 };
        assert!(present(&Doc::read("see attached"), &[a]).contains(&Field::Poc));
        assert!(!fields("PoC: available on request\n").contains(&Field::Poc));
    }
}
