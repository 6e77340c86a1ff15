//! The shape of a report's text, read once: lines classified (quoted, code, label,
//! list item, prose), the label that governs each line, and the prose joined into
//! sentences. Every recogniser of the desk reads this, never the raw text again.
//!
//! Linear and capped: at most [`MAX_TEXT`] bytes and [`MAX_LINES`] lines are read (a
//! report is a few KiB; what lies beyond the cap is not triaged, and the caller says
//! so), each line is lowercased once, and a sentence is at most [`MAX_SENTENCE`] bytes.

/// Bytes of text triaged. Reports are a few KiB; a 50 MiB body of repeated lines would
/// otherwise cost the desk 50 MiB of lowercased copies.
pub const MAX_TEXT: usize = 256 * 1024;
/// Lines triaged (a 256 KiB text of empty lines is 256 Ki lines).
pub const MAX_LINES: usize = 8_000;
/// Bytes of one sentence: prose without a full stop is cut into pieces this long.
pub const MAX_SENTENCE: usize = 1_024;
/// A label is short: "Steps to reproduce", "Affected versions", "AI assistance".
const MAX_LABEL_WORDS: usize = 7;
const MAX_LABEL_CHARS: usize = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Blank,
    /// `> ` lines: someone else's words, the desk's own request among them.
    Quoted,
    /// A code fence line (```` ``` ```` or `~~~`).
    Fence,
    /// Inside a fence, or an indented block after a blank line.
    Code,
    /// A heading or a `Label:` line (see [`Line::label`]).
    Label,
    /// A numbered or bulleted list item.
    Item,
    Prose,
}

#[derive(Clone, Debug)]
pub struct Label {
    /// Normalised: lower case, markup, numbering and the trailing colon removed.
    pub key: String,
    /// What follows the colon, lower case (empty for a heading).
    pub value: String,
    /// A markdown or bold heading, or a setext one, not a `Key: value` line.
    pub heading: bool,
}

#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The line, trimmed.
    pub text: &'a str,
    /// `text` in lower case.
    pub lower: String,
    pub kind: Kind,
    pub label: Option<Label>,
    /// The list number of an item (`1.`, `2)`, `Step 3:`), if numbered.
    pub number: Option<u32>,
    /// The index of the label line this line falls under.
    pub section: Option<usize>,
}

/// One sentence of prose, lower case, with the index of its first line.
#[derive(Clone, Debug)]
pub struct Sentence {
    pub lower: String,
    /// The sentence as written (for a verbatim statement).
    pub text: String,
    pub line: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Doc<'a> {
    pub lines: Vec<Line<'a>>,
    pub sentences: Vec<Sentence>,
    /// The text went beyond the caps.
    pub truncated: bool,
}

impl<'a> Doc<'a> {
    pub fn read(text: &'a str) -> Doc<'a> {
        let mut end = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut truncated = end < text.len();
        let mut lines: Vec<Line<'a>> = Vec::new();
        let mut fence = false;
        let mut section = None;
        let mut raws = text[..end].lines().peekable();
        while let Some(raw) = raws.next() {
            if lines.len() == MAX_LINES {
                truncated = true;
                break;
            }
            let t = raw.trim();
            if !fence && lines.len() > 2 && is_reply_separator(t) {
                // What follows is the quoted earlier mail, ours among it.
                break;
            }
            let lower = t.to_lowercase();
            let prev = lines.last().map(|l: &Line| l.kind);
            let mut line = Line { text: t, lower, kind: Kind::Prose, label: None, number: None, section };
            if t.starts_with("```") || t.starts_with("~~~") {
                fence = !fence;
                line.kind = Kind::Fence;
            } else if fence {
                line.kind = Kind::Code;
            } else if t.is_empty() {
                line.kind = Kind::Blank;
            } else if t.starts_with('>') {
                line.kind = Kind::Quoted;
            } else if (raw.starts_with("   ") || raw.starts_with('\t'))
                && (matches!(prev, None | Some(Kind::Blank) | Some(Kind::Code))
                    || prev == Some(Kind::Label) && looks_like_code(t))
            {
                // An indented block after a blank line: code, a command or a request.
                line.kind = Kind::Code;
            } else if is_underline(t) && prev == Some(Kind::Prose) {
                // A setext heading: the line above is the label.
                if let Some(above) = lines.last_mut() {
                    above.kind = Kind::Label;
                    above.label = Some(Label { key: normalise(above.text), value: String::new(), heading: true });
                    section = Some(lines.len() - 1);
                }
                line.kind = Kind::Blank;
            } else if let Some(label) = label_of(t) {
                // A heading or a bare `Label:` opens a section; a `Key: value` line is a
                // field of its own inside the section it stands in.
                if label.heading || label.value.is_empty() {
                    section = Some(lines.len());
                    line.section = section;
                }
                line.kind = Kind::Label;
                line.label = Some(label);
            } else if matches!(prev, None | Some(Kind::Blank))
                && is_bare_heading(t)
                && raws.peek().is_some_and(|n| n.trim().chars().next().is_some_and(|c| !c.is_lowercase()))
            {
                // "Impact", "Étapes pour reproduire": a short line alone, no colon.
                line.kind = Kind::Label;
                line.label = Some(Label { key: normalise(t), value: String::new(), heading: true });
                section = Some(lines.len());
                line.section = section;
            } else if let Some(n) = item_of(t) {
                line.kind = Kind::Item;
                line.number = n;
            }
            lines.push(line);
        }
        let sentences = sentences(&lines);
        Doc { lines, sentences, truncated }
    }

    /// The label line a line falls under.
    pub fn label_of(&self, line: usize) -> Option<&Label> {
        self.lines.get(line)?.section.and_then(|s| self.lines[s].label.as_ref())
    }

    /// The lines of the section that starts at label line `at` (not the label itself).
    pub fn section(&self, at: usize) -> impl Iterator<Item = &Line<'a>> {
        self.lines[at + 1..].iter().take_while(move |l| l.section == Some(at))
    }

    /// Lines that are the reporter's own (not quoted, not blank).
    pub fn own(&self) -> impl Iterator<Item = &Line<'a>> {
        self.lines.iter().filter(|l| !matches!(l.kind, Kind::Blank | Kind::Quoted | Kind::Fence))
    }
}

/// "On Mon, 7 Dec 2026, Jane wrote:", "-----Original Message-----", and their kin.
fn is_reply_separator(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    l.starts_with("-----original message")
        || l.starts_with("________________")
        || (l.starts_with("on ") && l.ends_with("wrote:"))
        || (l.starts_with("am ") && l.ends_with("schrieb:"))
        || (l.starts_with("le ") && l.ends_with("a écrit :"))
        || (l.starts_with("le ") && l.ends_with("a écrit:"))
        || (l.starts_with("el ") && l.ends_with("escribió:"))
}

/// A heading written as a line of its own: at most five words, no colon, no closing
/// punctuation, starting with a capital ("Impact", "Steps", "Étapes pour reproduire").
fn is_bare_heading(t: &str) -> bool {
    let words = t.split_whitespace().count();
    (1..=5).contains(&words)
        && t.chars().count() <= 40
        && t.chars().next().is_some_and(char::is_uppercase)
        && !t.ends_with(['.', ',', ';', '!', '?', ':', ')'])
        && !t.contains([':', '/', '=', '<', '`', '"'])
        && item_of(t).is_none()
}

fn is_underline(t: &str) -> bool {
    t.len() >= 3 && (t.bytes().all(|b| b == b'=') || t.bytes().all(|b| b == b'-'))
}

/// An indented line that reads as code or a command, not a wrapped list item.
fn looks_like_code(t: &str) -> bool {
    const STARTS: &[&str] = &[
        "$ ", "# ", "curl ", "wget ", "get /", "post /", "put /", "delete /", "patch /", "http/", "host:", "<", "{",
        "}", "import ", "from ", "def ", "fn ", "function", "const ", "let ", "var ", "python", "node ", "echo ",
        "nc ", "./", "sudo ", "npm ", "pip ", "cargo ", "git ", "docker ", "#include", "package ", "public ", "class ",
        "print", "for ", "if ", "while ", "return", "sqlmap", "ruby ", "perl ", "php ", "java ",
    ];
    let l = t.to_ascii_lowercase();
    STARTS.iter().any(|s| l.starts_with(s)) || t.ends_with(';') || t.ends_with('{') || t.ends_with(')')
}

/// A command or a raw request line: never a label, whatever colon it holds.
fn is_command(t: &str) -> bool {
    const STARTS: &[&str] = &[
        "$ ",
        "curl ",
        "wget ",
        "get /",
        "post /",
        "put /",
        "delete /",
        "patch /",
        "host:",
        "<",
        "{",
        "./",
        "sudo ",
        "python",
        "nc ",
        "echo ",
        "cookie:",
        "content-type:",
        "authorization:",
    ];
    let l = t.to_ascii_lowercase();
    STARTS.iter().any(|s| l.starts_with(s))
}

/// The number of a list item, `Some(None)` for a bullet, `None` for no item.
fn item_of(t: &str) -> Option<Option<u32>> {
    if let Some(rest) = t.strip_prefix(['-', '*', '•', '+']) {
        return rest.starts_with(' ').then_some(None);
    }
    let b = t.as_bytes();
    let digits = b.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 && b.len() > digits + 1 && matches!(b[digits], b'.' | b')') && b[digits + 1] == b' ' {
        return Some(t[..digits].parse().ok());
    }
    // "1 go to ...", as people type on a phone: a small number, a space, a word.
    if (1..=2).contains(&digits) && b.len() > digits + 1 && b[digits] == b' ' && b[digits + 1].is_ascii_lowercase() {
        return Some(t[..digits].parse().ok());
    }
    // "Step 3:", "Step 3.", "Schritt 2:", "Étape 2 :", "Paso 2:"
    let l = t.to_lowercase();
    for word in ["step ", "schritt ", "étape ", "etape ", "paso "] {
        if let Some(rest) = l.strip_prefix(word) {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if !n.is_empty() {
                return Some(n.parse().ok());
            }
        }
    }
    None
}

/// A heading (`## X`, `**X**`) or a `Label: value` line with a short label.
fn label_of(t: &str) -> Option<Label> {
    if let Some(rest) = t.strip_prefix('#') {
        let rest = rest.trim_start_matches('#');
        if rest.starts_with(' ') && !rest.trim().is_empty() {
            return Some(heading(rest));
        }
        return None;
    }
    // "**Steps to reproduce**", "**Impact:**", "__Summary__": the whole line bold.
    if let Some(inner) = t.strip_prefix("**").or_else(|| t.strip_prefix("__"))
        && let Some(p) = inner.find(&t[..2])
    {
        let after = inner[p + 2..].trim();
        if p > 0 && (after.is_empty() || after == ":") {
            return Some(heading(&inner[..p]));
        }
    }
    // "- **Affected versions:** 2.3" is a label; a plain list item is not.
    let body = match item_of(t) {
        Some(_) => {
            let rest = t.trim_start_matches(['-', '*', '•', '+', ' ']);
            if !rest.starts_with("**") {
                return None;
            }
            rest
        }
        None => t,
    };
    let (k, v) = split_label(body)?;
    let key = normalise(k);
    let words = key.split_whitespace().count();
    if key.is_empty() || words > MAX_LABEL_WORDS || key.chars().count() > MAX_LABEL_CHARS {
        return None;
    }
    // A command or code ("curl -H 'X-User: admin'", "x = {a: 1}") is not a label.
    if !key.chars().next().is_some_and(char::is_alphabetic)
        || k.contains("//")
        || k.contains(['\'', '"', '=', '<', '>', '{', '}', '[', ']', '$', ';', '`', '|'])
        || key.split_whitespace().any(|w| w.starts_with('-'))
        || is_command(body)
    {
        return None;
    }
    let value = v.trim().trim_matches('*').trim().to_lowercase();
    // A short sentence that ends with a colon introduces what follows: a label too.
    Some(Label { key, value, heading: false })
}

/// `Key: value`, `**Key:** value`, `**Key**: value`, `Key : value` (French spacing).
fn split_label(t: &str) -> Option<(&str, &str)> {
    let pos = t.find(':')?;
    let (k, v) = (&t[..pos], &t[pos + 1..]);
    // "**Key:** value": the closing stars follow the colon.
    let v = v.strip_prefix("**").unwrap_or(v);
    // "http://", "10:30", "CVSS:3.1/...": not a label.
    if k.trim().is_empty() || !(v.is_empty() || v.starts_with(char::is_whitespace)) {
        return None;
    }
    Some((k, v))
}

fn heading(t: &str) -> Label {
    let t = t.trim().trim_matches(['*', '_', '#', ' ']);
    match t.split_once(':') {
        Some((k, v)) if !v.trim().is_empty() => {
            Label { key: normalise(k), value: v.trim().trim_matches('*').trim().to_lowercase(), heading: true }
        }
        _ => Label { key: normalise(t), value: String::new(), heading: true },
    }
}

/// Lower case, markup, list numbering and the trailing colon removed, spaces collapsed.
pub fn normalise(k: &str) -> String {
    let k = k.trim().trim_matches(['*', '_', '#', '`', ' ', ':', '-']);
    let k = k.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')').trim_start();
    let mut out = String::with_capacity(k.len());
    for w in k.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&w.to_lowercase());
    }
    out.trim_end_matches([':', '*', ' ']).to_owned()
}

/// Prose and list items joined into paragraphs and cut into sentences at `.`, `!`, `?`
/// followed by a space (a hard-wrapped sentence is one sentence). Labels, code and
/// quoted lines end a paragraph; a `Label: value` line's value is a sentence of its own.
fn sentences(lines: &[Line]) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut cur = Sentence { lower: String::new(), text: String::new(), line: 0 };
    let flush = |cur: &mut Sentence, out: &mut Vec<Sentence>| {
        let text = cur.text.trim();
        if !text.is_empty() {
            out.push(Sentence { lower: text.to_lowercase(), text: text.to_owned(), line: cur.line });
        }
        cur.text.clear();
        cur.lower.clear();
    };
    for (i, l) in lines.iter().enumerate() {
        match l.kind {
            Kind::Prose | Kind::Item => {
                if l.kind == Kind::Item {
                    flush(&mut cur, &mut out);
                }
                if cur.text.is_empty() {
                    cur.line = i;
                }
                for (j, piece) in split_sentences(l.text).into_iter().enumerate() {
                    if j > 0 {
                        flush(&mut cur, &mut out);
                        cur.line = i;
                    }
                    if cur.text.len() + piece.len() > MAX_SENTENCE {
                        flush(&mut cur, &mut out);
                        cur.line = i;
                    }
                    if !cur.text.is_empty() {
                        cur.text.push(' ');
                    }
                    let mut cut = piece.len().min(MAX_SENTENCE);
                    while !piece.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    cur.text.push_str(&piece[..cut]);
                }
                if ends_sentence(l.text) {
                    flush(&mut cur, &mut out);
                }
            }
            Kind::Label => {
                flush(&mut cur, &mut out);
                // "AI use: none": the whole line is the statement.
                cur.line = i;
                cur.text.push_str(&l.text[..l.text.len().min(MAX_SENTENCE)]);
                flush(&mut cur, &mut out);
            }
            _ => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn ends_sentence(t: &str) -> bool {
    t.ends_with(['.', '!', '?'])
}

/// A line cut after `. `, `! `, `? ` (the pieces keep their punctuation).
fn split_sentences(t: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = t.as_bytes();
    let mut start = 0;
    for i in 0..b.len().saturating_sub(1) {
        if matches!(b[i], b'.' | b'!' | b'?') && b[i + 1] == b' ' && i + 1 - start > 2 {
            // "e.g. ", "i.e. ", "v2. ": not an end.
            let word_start = t[..i].rfind(' ').map_or(0, |p| p + 1);
            let word = &t[word_start..i];
            if word.contains('.') || word.len() <= 1 || word.eq_ignore_ascii_case("vs") {
                continue;
            }
            out.push(&t[start..=i]);
            start = i + 2;
        }
    }
    if start < t.len() {
        out.push(&t[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sections_items_and_code() {
        let d = Doc::read(
            "## Steps to reproduce\n1. Open the page.\n2. Send: curl x\n\n```\ncode: here\n```\nAffected versions: 2.3\n> Steps to reproduce: quoted\n",
        );
        let kinds: Vec<Kind> = d.lines.iter().map(|l| l.kind).collect();
        use Kind::*;
        assert_eq!(kinds, [Label, Item, Item, Blank, Fence, Code, Fence, Label, Quoted]);
        assert_eq!(d.lines[0].label.as_ref().unwrap().key, "steps to reproduce");
        assert_eq!(d.lines[2].number, Some(2));
        assert_eq!(d.label_of(2).unwrap().key, "steps to reproduce");
        assert_eq!(d.lines[7].label.as_ref().unwrap().value, "2.3");
        // A `Key: value` line is a field inside the section, not a section of its own.
        assert_eq!(d.section(0).count(), 8);
    }

    #[test]
    fn a_wrapped_sentence_is_one_sentence_and_e_g_does_not_end_one() {
        let d = Doc::read("I used ChatGPT to help\nwrite this report, e.g. the summary. No other tool.\n");
        let s: Vec<&str> = d.sentences.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(s, ["I used ChatGPT to help write this report, e.g. the summary.", "No other tool."]);
    }

    #[test]
    fn the_quoted_earlier_mail_is_not_read() {
        let d = Doc::read(
            "Here are the steps.\n1. a\n2. b\nOn Mon, 7 Dec 2026 at 10:00, Security wrote:\nSteps to reproduce:\n",
        );
        assert!(d.lines.iter().all(|l| l.kind != Kind::Label));
    }

    #[test]
    fn caps_hold() {
        let big = "x\n".repeat(MAX_LINES * 2);
        let d = Doc::read(&big);
        assert!(d.truncated && d.lines.len() == MAX_LINES);
        let long = "word ".repeat(10_000);
        let d = Doc::read(&long);
        assert!(d.sentences.iter().all(|s| s.text.len() <= MAX_SENTENCE));
    }
}
