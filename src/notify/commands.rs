//! What the team by mail reads and sends: the two lines that end every summary and
//! follow-up (how to act by reply), the confirmation of an applied command mail, the
//! notice of a refused one, the read-in lines, and the canned replies of the config's
//! `replies/` directory (`$CASE`, `$TITLE`, ...).
//!
//! Pure text builders, but for [`Replies::load`], which reads the directory once at
//! start-up (like `Templates::load`). A template naming a field we do not know is an
//! error there (and so in `check`), never a reply with `$TYPO` in it.

use std::collections::BTreeMap;

use crate::case::readin::ReadIn;
use crate::case::{Case, rfc3339};

/// The two lines at the end of a summary or follow-up: how to act by reply.
pub fn command_hint(case_id: &str, intake: &str) -> String {
    format!(
        "\n-- \n{} {intake} (not to the list), one command a line before the quote,\n\
         e.g. \"/status triaged\" or \"/reply needs-info\"; Subject: [{case_id}]. See README, Commands by mail.\n",
        crate::case::command::HINT_MARKER
    )
}

/// The list's confirmation of an applied command mail: each change, old -> new.
pub fn confirmation_text(case_id: &str, by: &str, fingerprint: &str, via: &str, changes: &[String]) -> String {
    let mut t = format!(
        "Changed by {by} (cert {fingerprint}) with signed mail <{via}>; every change is in the audit log (secintake case log {case_id}).\n\n"
    );
    for c in changes {
        t.push_str(&format!("  - {c}\n"));
    }
    t
}

/// The list told that a command mail applied nothing.
pub fn rejected_text(case_id: Option<&str>, from: &str, message_id: &str, reason: &str) -> String {
    format!(
        "A command mail was refused; nothing in it was applied.\n\n\
         Case:       {}\nFrom:       {from}\nMessage-ID: <{message_id}>\nWhy:        {reason}\n\n\
         If a team member sent it, they can fix it and send it again, signed with their team cert.\n\
         If nobody on the team did, someone is trying to act as the team: keep this mail.\n",
        case_id.unwrap_or("(none named)")
    )
}

/// Who is read in, one line each (`case show`, the summary so far).
pub fn readin_lines(entries: &[ReadIn], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut t = String::new();
    for r in entries {
        let until = match r.expires {
            Some(e) if !r.active(now) => format!("expired {}", rfc3339(&e)),
            Some(e) => format!("until {}", rfc3339(&e)),
            None => "until removed".into(),
        };
        t.push_str(&format!(
            "Read in:    {} {} ({}), by {} {}, {until}\n",
            r.role.as_str(),
            r.uids.first().map(String::as_str).unwrap_or("-"),
            r.fingerprint,
            r.by,
            rfc3339(&r.at)
        ));
    }
    t
}

/// The fields a reply template may name.
pub const REPLY_FIELDS: [&str; 10] =
    ["CASE", "TITLE", "STATUS", "PROJECT", "REPORTER", "DUE_DISCLOSURE", "CVE", "AFFECTED", "FIXED", "DUPLICATE_OF"];

/// The canned replies (`replies/NAME.txt` in the config's folder), by name.
#[derive(Clone, Debug, Default)]
pub struct Replies {
    texts: BTreeMap<String, String>,
}

/// The most a template may hold: a reply, not a document.
const MAX_TEMPLATE: u64 = 64 << 10;

impl Replies {
    /// Reads `dir` (absent: no canned replies): every `NAME.txt` (NAME of lowercase
    /// letters, digits and `-`), each checked for unknown fields.
    pub fn load(dir: &std::path::Path) -> Result<Replies, String> {
        let mut texts = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replies::default()),
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".txt")) else {
                continue;
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                continue;
            }
            if e.metadata().map(|m| m.len()).unwrap_or(0) > MAX_TEMPLATE {
                return Err(format!("{}: larger than 64 KiB", path.display()));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(bad) = unknown_field(&text) {
                return Err(format!(
                    "{}: unknown field ${bad}; a reply may name ${}",
                    path.display(),
                    REPLY_FIELDS.join(", $")
                ));
            }
            texts.insert(name.to_owned(), text);
        }
        Ok(Replies { texts })
    }

    pub fn has(&self, name: &str) -> bool {
        self.texts.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.texts.keys().map(String::as_str)
    }

    /// The reply `name` for `case`, its fields filled in.
    pub fn render(&self, name: &str, case: &Case, project: &str) -> Option<String> {
        self.texts.get(name).map(|t| fill(t, case, project))
    }
}

/// The first `$NAME` (upper-case letters, digits, `_`) in `text` that is not a field.
fn unknown_field(text: &str) -> Option<String> {
    fields_in(text).into_iter().find(|f| !REPLY_FIELDS.contains(&f.as_str()))
}

/// Every `$NAME` of `text`, in order (`$$` is a literal `$`).
fn fields_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            let end = b[i + 1..]
                .iter()
                .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'))
                .map(|p| p + i + 1)
                .unwrap_or(b.len());
            if end > i + 1 {
                out.push(text[i + 1..end].to_owned());
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn fill(text: &str, c: &Case, project: &str) -> String {
    let value = |f: &str| -> String {
        match f {
            "CASE" => c.id.clone(),
            "TITLE" => c.title.clone(),
            "STATUS" => c.status.as_str().into(),
            "PROJECT" => project.into(),
            "REPORTER" => {
                if c.reporter.name.is_empty() {
                    c.reporter.address.clone()
                } else {
                    c.reporter.name.clone()
                }
            }
            "DUE_DISCLOSURE" => c.due.disclosure.format("%Y-%m-%d").to_string(),
            "CVE" => c.cve.clone().unwrap_or_else(|| "(no CVE yet)".into()),
            "AFFECTED" => c.affected_versions.join(", "),
            "FIXED" => c.fixed_versions.join(", "),
            "DUPLICATE_OF" => {
                c.reject_reason.as_deref().and_then(|r| r.strip_prefix("duplicate:")).unwrap_or("").to_owned()
            }
            _ => String::new(),
        }
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' {
            out.push_str(&text[last..i]);
            if b.get(i + 1) == Some(&b'$') {
                out.push('$');
                i += 2;
                last = i;
                continue;
            }
            let end = b[i + 1..]
                .iter()
                .position(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'))
                .map(|p| p + i + 1)
                .unwrap_or(b.len());
            if end > i + 1 {
                out.push_str(&value(&text[i + 1..end]));
            } else {
                out.push('$');
            }
            i = end.max(i + 1);
            last = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_and_unknown_ones_named() {
        assert_eq!(fields_in("Case $CASE costs $$5 and $x"), vec!["CASE".to_owned()]);
        assert_eq!(unknown_field("Dear $REPORTER, $CASEID"), Some("CASEID".into()));
        assert_eq!(unknown_field("$CASE $TITLE $DUE_DISCLOSURE"), None);
    }

    #[test]
    fn shipped_examples_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/replies");
        let r = Replies::load(&dir).unwrap();
        for n in ["duplicate", "out-of-scope", "needs-info", "not-reproducible", "fixed"] {
            assert!(r.has(n), "config/replies/{n}.txt");
        }
    }
}
