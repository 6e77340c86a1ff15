//! Making untrusted text safe to print on a terminal.
//!
//! Titles, names, filenames, report texts and server error messages come from
//! strangers. Printed raw, `ESC[2J` clears the operator's screen, OSC sequences set
//! the window title or plant hyperlinks, CR overwrites what was printed, BEL rings, and
//! bidi overrides make `evil.exe` read as `exe.live`. Every human-readable output goes
//! through [`escape`]; JSON output is escaped by the JSON encoder instead.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal: C0 controls but TAB (LF included: a cell or
/// field is one line; multi-line text is printed line by line, see [`lines`]), DEL,
/// C1 controls, and the bidi embeddings, overrides and isolates (U+202A-U+202E,
/// U+2066-U+2069).
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character written as a visible escape (`\x1b`, `\u{202e}`);
/// borrowed unchanged when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Multi-line text (a report, a note), one escaped line at a time: LF and CRLF end
/// lines, any other control character is escaped.
pub fn lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split('\n').map(|l| escape(l.strip_suffix('\r').unwrap_or(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_c0_c1_del_and_bidi_but_not_text() {
        assert_eq!(escape("plain — Ünïcode\ttab"), "plain — Ünïcode\ttab");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b[2Jb\x07c\rd\ne\x7f"), "a\\x1b[2Jb\\x07c\\x0dd\\x0ae\\x7f");
        assert_eq!(escape("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(escape("evil\u{202e}exe.txt\u{2066}\u{2069}"), "evil\\u{202e}exe.txt\\u{2066}\\u{2069}");
    }

    #[test]
    fn lines_keep_line_structure() {
        let v: Vec<_> = lines("one\r\ntwo\x1b]0;pwned\x07\nthree").collect();
        assert_eq!(v, vec!["one", "two\\x1b]0;pwned\\x07", "three"]);
    }
}
