//! The command language of signed mail: `/status triaged`, `/cvss VECTOR`, `/reply`...
//!
//! A team member's mail to the intake address holds one command a line, before any
//! quoted text or signature delimiter. This module finds those lines ([`block`]),
//! says whether a text carries commands at all ([`carries_commands`]) and parses them
//! ([`parse`]) into [`Command`]s, every value through the one parser of case changes
//! (`change::Request`, which `case set` uses too). All or nothing: the first line that
//! does not parse is the error, with its number. Pure and linear: text in, commands or
//! the refused line out; who may send them and whether the signature holds is the
//! pipeline's (`pipeline/commands.rs`).

use chrono::{DateTime, Utc};

use super::change::{self, Change, Request};
use super::readin::Role;
use crate::triage::Field;

/// The command names, as they are written after the `/`.
pub const NAMES: [&str; 18] = [
    "status",
    "reject",
    "cvss",
    "cwe",
    "tlp",
    "affected",
    "fixed",
    "assign",
    "cve",
    "disclosure",
    "credit",
    "anonymous",
    "waiting",
    "note",
    "ask",
    "exploited",
    "readin",
    "reply",
];

/// Lines looked at, at most: a command mail is short; a longer block is refused
/// rather than read on.
pub const MAX_LINES: usize = 200;

/// The most text a `/reply` or `/note` carries (what `case reply` would send).
pub const MAX_TEXT: usize = 64 << 10;

/// The most a one-line value (`/assign`, `/credit`, each `/affected` and `/fixed`
/// version) carries: a name or a version, not a text.
pub const MAX_VALUE: usize = 200;

/// The most `/affected` or `/fixed` versions one line gives.
pub const MAX_VERSIONS: usize = 50;

/// Lines of a signed text looked at for the case it names (pipeline/commands.rs).
pub const MAX_SCAN_LINES: usize = 2000;

/// The words that open the act-by-reply lines every summary and follow-up ends with
/// (`notify::command_hint`): a `/reply` whose text holds them has swallowed the team's
/// own mail (a quote the block did not see end) and is refused, never sent.
pub const HINT_MARKER: &str = "Act by signed reply to";

/// What `/reply` sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The text written after `/reply` (up to the quoted part).
    Text(String),
    /// A canned reply from the config's `replies/` directory.
    Template(String),
}

/// One command.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Change(Change),
    Note(String),
    /// `/ask FIELD ...`: the needs-info request (no field: what is missing).
    Ask(Vec<Field>),
    Reply(Reply),
    /// `/readin add ROLE [DATE] [--force REASON]`: the cert attached to the mail.
    ReadinAdd {
        role: Role,
        expires: Option<DateTime<Utc>>,
        force: Option<String>,
    },
    /// `/readin remove FINGERPRINT`.
    ReadinRemove(String),
}

impl Command {
    /// Whether the command carries words of the team's own (to the reporter or the
    /// audit log): such a command mail must be encrypted.
    pub fn carries_text(&self) -> bool {
        matches!(self, Command::Note(_) | Command::Reply(_))
    }
}

/// A parsed command with the line it came from (1-based, in the mail's text).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub n: usize,
    /// The command's name, one of [`NAMES`] (never text of the mail).
    pub name: &'static str,
    pub command: Command,
}

/// Why a command mail applies nothing: the line (number and text), a fixed reason
/// (`code`, no text of the mail in it) and why in full.
#[derive(Clone, Debug, PartialEq)]
pub struct LineError {
    pub n: usize,
    pub line: String,
    pub code: &'static str,
    pub why: String,
}

impl LineError {
    /// The full reason, quoting the line: for the list's encrypted notice only.
    pub fn detail(&self) -> String {
        format!("line {} ({:?}): {}", self.n, self.line, self.why)
    }
}

/// What may be recorded and logged: the line number and the fixed reason.
impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.n, self.code)
    }
}

/// Whether `line` is written as a command (`/word ...`).
pub fn is_command_line(line: &str) -> bool {
    name_of(line).is_some()
}

/// The fixed reason for a refused line of command `name` (as written).
fn code_of(name: Option<&str>) -> &'static str {
    const CODES: [&str; 18] = [
        "bad /status line",
        "bad /reject line",
        "bad /cvss line",
        "bad /cwe line",
        "bad /tlp line",
        "bad /affected line",
        "bad /fixed line",
        "bad /assign line",
        "bad /cve line",
        "bad /disclosure line",
        "bad /credit line",
        "bad /anonymous line",
        "bad /waiting line",
        "bad /note line",
        "bad /ask line",
        "bad /exploited line",
        "bad /readin line",
        "bad /reply line",
    ];
    match name {
        None => "not a command",
        Some(n) => match NAMES.iter().position(|k| k.eq_ignore_ascii_case(n)) {
            Some(i) => CODES[i],
            None => "unknown command",
        },
    }
}

/// The command name of a line, if it is written as one: `/word` followed by a blank or
/// the end (so a path like `/etc/passwd` is not a command).
fn name_of(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('/')?;
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let word = &rest[..end];
    (!word.is_empty() && word.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')).then_some(word)
}

/// The verbs of attribution lines ("On ..., X wrote:", "Am ... schrieb X:") as mail
/// clients write them in the languages a team most often reads (English, French, German,
/// Dutch, Spanish, Italian).
const ATTRIBUTIONS: [&str; 6] = ["wrote", "a écrit", "schrieb", "schreef", "escribió", "ha scritto"];

/// Whether `line` starts the quoted part of a reply or the signature: `>` quotes,
/// `-- `, an attribution line (a line ending in `:` with a verb of [`ATTRIBUTIONS`], or
/// any line ending in `:` before a `>` line), Outlook's quote (`-----Original Message-----`, a
/// rule of 8 or more `_`, a `From:` line followed by `Sent:` or `Date:`).
fn ends_block(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim_end_matches('\r');
    let t = l.trim();
    if t.starts_with('>') || l == "-- " || t == "--" || t.starts_with("-----Original Message-----") {
        return true;
    }
    if t.len() >= 8 && t.bytes().all(|b| b == b'_') {
        return true;
    }
    if name_of(t).is_some() {
        return false;
    }
    let next = || lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty());
    let head = |l: &str, h: &str| l.get(..h.len()).is_some_and(|x| x.eq_ignore_ascii_case(h));
    if head(t, "from:") && next().is_some_and(|n| head(n, "sent:") || head(n, "date:")) {
        return true;
    }
    let lower = t.to_lowercase();
    if t.ends_with(':') && ATTRIBUTIONS.iter().any(|a| lower.contains(a)) {
        return true;
    }
    // An attribution line of another form: ends with ':' and the next non-blank line
    // is quoted.
    t.ends_with(':') && next().is_some_and(|l| l.starts_with('>'))
}

/// The lines before the quoted part or signature, with their numbers (at most
/// [`MAX_LINES`] + 1, so the caller sees when there were more). A line that ends in a
/// space continues on the next (RFC 3676 `format=flowed`, as Thunderbird wraps a long
/// `/note` or `/reply` line), unless the next is blank or starts a command; a flowed
/// line's stuffed space is removed.
pub fn block(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().take(MAX_LINES + 1).collect();
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut soft = false;
    for i in 0..lines.len() {
        if ends_block(&lines, i) {
            break;
        }
        let l = lines[i].trim_end_matches('\r');
        let unstuffed = l.strip_prefix(' ').unwrap_or(l);
        match out.last_mut() {
            Some((_, prev)) if soft && !l.trim().is_empty() && name_of(unstuffed).is_none() => prev.push_str(unstuffed),
            _ => out.push((i + 1, l.to_owned())),
        }
        soft = l.ends_with(' ') && !l.trim().is_empty() && l != "-- ";
    }
    out
}

/// Whether a text carries commands: its first line that is not blank is a known
/// command. A report that starts with anything else is a report.
pub fn carries_commands(text: &str) -> bool {
    block(text).iter().find(|(_, l)| !l.trim().is_empty()).and_then(|(_, l)| name_of(l)).is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        NAMES.contains(&n.as_str())
    })
}

/// Parses a command mail's text. `id` is the case it acts on; `exists` says whether a
/// case id names a case; `template` whether a reply template of that name exists.
pub fn parse(
    text: &str,
    id: &str,
    exists: &dyn Fn(&str) -> bool,
    template: &dyn Fn(&str) -> bool,
) -> Result<Vec<Line>, LineError> {
    let lines = block(text);
    if lines.len() > MAX_LINES {
        return Err(LineError {
            n: MAX_LINES + 1,
            line: String::new(),
            code: "too many lines",
            why: format!("more than {MAX_LINES} lines before the quoted part; send fewer commands a mail"),
        });
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (n, raw) = (lines[i].0, lines[i].1.as_str());
        i += 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let err =
            |why: String| LineError { n, line: line.chars().take(120).collect(), code: code_of(name_of(line)), why };
        let Some(name) = name_of(line) else {
            return Err(err("not a command: every line before the quoted part is one command starting with / \
                 (words for the log: /note TEXT; for the reporter: /reply)"
                .into()));
        };
        let args = line.trim_start()[1 + name.len()..].trim();
        let words: Vec<&str> = args.split_whitespace().collect();
        let name = name.to_ascii_lowercase();
        let one = |what: &str| -> Result<String, LineError> {
            match words.as_slice() {
                [w] => Ok((*w).to_owned()),
                [] => Err(err(format!("/{name} needs {what}"))),
                _ => Err(err(format!("/{name} takes one value ({what})"))),
            }
        };
        let rest = |what: &str| -> Result<String, LineError> {
            if args.is_empty() { Err(err(format!("/{name} needs {what}"))) } else { Ok(args.to_owned()) }
        };
        // A one-line value: a name or a version, capped like a note is.
        let value = |what: &str| -> Result<String, LineError> {
            let v = rest(what)?;
            if v.len() > MAX_VALUE {
                return Err(err(format!("/{name} takes at most {MAX_VALUE} bytes ({what})")));
            }
            Ok(v)
        };
        let mut req = Request::default();
        let command = match name.as_str() {
            "status" => {
                let s = one("a status")?;
                if s.eq_ignore_ascii_case("rejected") {
                    return Err(err("use /reject REASON [ORIGINAL-CASE] to reject".into()));
                }
                req.status = Some(s.to_ascii_lowercase());
                None
            }
            "reject" => {
                match words.as_slice() {
                    [r] => req.reason = Some(r.to_ascii_lowercase()),
                    [r, orig] => {
                        req.reason = Some(r.to_ascii_lowercase());
                        req.duplicate_of = Some((*orig).to_owned());
                    }
                    _ => {
                        return Err(err(format!(
                            "/reject takes a reason ({}) and, for duplicate, the original case",
                            super::REJECT_REASONS.join(", ")
                        )));
                    }
                }
                if req.duplicate_of.is_some() && req.reason.as_deref() != Some("duplicate") {
                    return Err(err("only /reject duplicate names another case".into()));
                }
                req.status = Some("rejected".into());
                None
            }
            "cvss" => {
                req.cvss = Some(one("a CVSS vector")?);
                None
            }
            "cwe" => {
                if words.is_empty() {
                    return Err(err("/cwe needs CWE ids (CWE-79 ...)".into()));
                }
                req.cwe = words.iter().map(|w| (*w).to_owned()).collect();
                None
            }
            "tlp" => {
                req.tlp = Some(one("a TLP label")?);
                None
            }
            "affected" | "fixed" => {
                if words.is_empty() {
                    return Err(err(format!("/{name} needs versions")));
                }
                if words.len() > MAX_VERSIONS {
                    return Err(err(format!("/{name} takes at most {MAX_VERSIONS} versions a line")));
                }
                if words.iter().any(|w| w.len() > MAX_VALUE) {
                    return Err(err(format!("/{name}: a version of more than {MAX_VALUE} bytes")));
                }
                let v: Vec<String> = words.iter().map(|w| w.trim_end_matches(',').to_owned()).collect();
                if name == "affected" {
                    req.affected = v;
                } else {
                    req.fixed = v;
                }
                None
            }
            "assign" => {
                req.assignee = Some(value("a name")?);
                None
            }
            "cve" => {
                req.cve = Some(one("a CVE id")?);
                None
            }
            "disclosure" => {
                req.disclosure = Some(one("a date (YYYY-MM-DD)")?);
                None
            }
            "credit" => {
                req.credit = Some(value("a name (or use /anonymous)")?);
                None
            }
            "anonymous" => {
                if !words.is_empty() {
                    return Err(err("/anonymous takes no value".into()));
                }
                req.anonymous = true;
                None
            }
            "waiting" => {
                req.waiting = Some(one("yes or no")?);
                None
            }
            "exploited" => {
                req.exploited = Some(one("yes or no")?);
                None
            }
            "note" => Some(Command::Note(rest("the note's text")?.chars().take(MAX_TEXT).collect())),
            "ask" => {
                let mut fields = Vec::new();
                for w in &words {
                    let f = Field::parse(&w.to_ascii_lowercase()).ok_or_else(|| {
                        err(format!("unknown field {w:?}; use {}", Field::ALL.map(Field::as_str).join(", ")))
                    })?;
                    fields.push(f);
                }
                Some(Command::Ask(fields))
            }
            "readin" => Some(readin(&words).map_err(err)?),
            "reply" => {
                // `/reply NAME`: a canned reply; `/reply` alone (or with words): the
                // text is everything after it, up to the quoted part.
                if let [w] = words.as_slice()
                    && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    if !template(w) {
                        return Err(err(format!(
                            "no reply template {w:?} in the config's replies/ directory \
                             (to send your own words, write them on the lines after /reply)"
                        )));
                    }
                    if lines[i..].iter().any(|(_, l)| !l.trim().is_empty()) {
                        return Err(err("/reply NAME sends the template alone; nothing may follow it".into()));
                    }
                    i = lines.len();
                    Some(Command::Reply(Reply::Template((*w).to_owned())))
                } else {
                    let mut text = String::new();
                    if !args.is_empty() {
                        text.push_str(args);
                        text.push('\n');
                    }
                    for (_, l) in &lines[i..] {
                        text.push_str(l);
                        text.push('\n');
                    }
                    i = lines.len();
                    let text = text.trim_matches('\n').to_owned();
                    if text.trim().is_empty() {
                        return Err(err("/reply needs the text for the reporter on the lines after it".into()));
                    }
                    if text.len() > MAX_TEXT {
                        return Err(err(format!("the reply is longer than {} KiB", MAX_TEXT >> 10)));
                    }
                    if text.contains(HINT_MARKER) {
                        return Err(err(format!(
                            "the reply's text holds the act-by-reply lines of the team's own mail (\"{HINT_MARKER} ...\"): \
                             a quote of team mail would go to the reporter; nothing was sent. Cut the quote below \
                             your words (or start it with a quote marker) and send again"
                        )));
                    }
                    Some(Command::Reply(Reply::Text(format!("{text}\n"))))
                }
            }
            other => {
                return Err(err(format!("unknown command /{other}; the commands are /{}", NAMES.join(" /"))));
            }
        };
        let command = match command {
            Some(c) => c,
            None => {
                let mut v = req.changes(id, exists).map_err(|r| err(r.why))?;
                match (v.pop(), v.is_empty()) {
                    (Some(c), true) => Command::Change(c),
                    _ => return Err(err("one change a line".into())),
                }
            }
        };
        let name = NAMES.iter().copied().find(|k| *k == name).unwrap_or_default();
        out.push(Line { n, name, command });
    }
    if out.is_empty() {
        return Err(LineError { n: 1, line: String::new(), code: "no command", why: "no command".into() });
    }
    Ok(out)
}

/// `/readin add ROLE [DATE] [--force REASON]` or `/readin remove FINGERPRINT`.
fn readin(words: &[&str]) -> Result<Command, String> {
    match words {
        ["add", role, rest @ ..] => {
            let role = Role::parse(role)
                .ok_or_else(|| format!("unknown role {role:?}; use fixer, coordinator or observer"))?;
            let (mut expires, mut force) = (None, None);
            let mut k = 0;
            while k < rest.len() {
                if rest[k] == "--force" {
                    let reason = rest[k + 1..].join(" ");
                    if reason.trim().is_empty() {
                        return Err("--force needs a reason (it goes to the audit log)".into());
                    }
                    force = Some(reason);
                    break;
                }
                if expires.is_some() {
                    return Err(format!(
                        "unexpected {:?}; write /readin add ROLE [YYYY-MM-DD] [--force REASON]",
                        rest[k]
                    ));
                }
                expires = Some(change::date(rest[k])?);
                k += 1;
            }
            Ok(Command::ReadinAdd { role, expires, force })
        }
        ["remove", fpr @ ..] if !fpr.is_empty() => Ok(Command::ReadinRemove(fpr.concat().to_ascii_uppercase())),
        _ => Err(
            "write /readin add ROLE [YYYY-MM-DD] [--force REASON] (the cert attached) or /readin remove FINGERPRINT"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Status;

    fn p(text: &str) -> Result<Vec<Line>, LineError> {
        parse(text, "SEC-2026-0001", &|c| c == "SEC-2026-0002", &|t| t == "duplicate")
    }

    #[test]
    fn a_reply_stops_at_every_quote_form_and_never_carries_team_mail() {
        let reply = |quote: &str| match p(&format!("/reply\nThanks, confirmed.\n\n{quote}\nsecret summary\n")) {
            Ok(v) => v,
            Err(e) => panic!("{quote:?}: {e:?}"),
        };
        for quote in [
            "________________________________\nFrom: Security <security@intake.test>",
            "From: Security <security@intake.test>\nSent: Monday, December 7, 2026 10:00",
            "From: Security <security@intake.test>\nDate: Mon, 7 Dec 2026 10:00",
            "Le lun. 7 déc. 2026, Security a écrit :",
            "Am 07.12.2026 um 10:00 schrieb Security:",
            "On Mon, Security wrote:",
        ] {
            let v = reply(quote);
            assert_eq!(v[0].command, Command::Reply(Reply::Text("Thanks, confirmed.\n".into())), "{quote:?}");
        }
        // A quote the block does not see end: refused, never sent.
        let e = p(&format!("/reply\nThanks.\nsecret summary\n{HINT_MARKER} security@intake.test\n")).unwrap_err();
        assert!(e.why.contains("act-by-reply"), "{e:?}");
        // What is recorded names the line and a fixed reason, never its text.
        let e = p("/cvss banana\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: bad /cvss line");
        assert!(e.detail().contains("banana"));
        assert_eq!(p("/frob x\n").unwrap_err().to_string(), "line 1: unknown command");
        // One-line values are capped.
        assert!(p(&format!("/assign {}\n", "a".repeat(MAX_VALUE + 1))).is_err());
        assert!(p(&format!("/affected {}\n", "1.0 ".repeat(MAX_VERSIONS + 1))).is_err());
    }

    #[test]
    fn commands_stop_at_the_quote_and_the_signature() {
        let text = "/status triaged\n/cvss CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n\nOn 12/7/26 10:00, Security wrote:\n> [SEC-2026-0001] New report\n> /status closed\n";
        let v = p(text).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            Line {
                n: 1,
                name: "status",
                command: Command::Change(Change::Status { to: Status::Triaged, reason: None })
            }
        );
        assert!(carries_commands(text));
        let v = p("/tlp amber\n-- \nAlice\n/status closed\n").unwrap();
        assert_eq!(v, vec![Line { n: 1, name: "tlp", command: Command::Change(Change::Tlp(Some("AMBER".into()))) }]);
    }

    #[test]
    fn flowed_lines_join_and_commands_do_not() {
        let v = p("/note the fix is in the branch called \nsec-42, review it \nplease\n/tlp amber \n/status triaged\n")
            .unwrap();
        assert_eq!(v[0].command, Command::Note("the fix is in the branch called sec-42, review it please".into()));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn a_report_is_not_a_command_mail() {
        assert!(!carries_commands("Hi,\n/status triaged\n"));
        assert!(!carries_commands("/etc/passwd is world readable\n"));
        assert!(!carries_commands("/tmp is shared\n"));
        assert!(carries_commands("\n\n/note hi\n"));
    }

    #[test]
    fn one_bad_line_names_itself() {
        let e = p("/status triaged\n/cvss banana\n").unwrap_err();
        assert_eq!(e.n, 2);
        assert!(e.why.contains("not a valid CVSS"), "{e}");
        assert_eq!(p("/status triaged\n/frobnicate\n").unwrap_err().n, 2);
        assert_eq!(p("/status triaged\nThanks!\n").unwrap_err().n, 2);
        assert!(p("/status rejected\n").unwrap_err().why.contains("/reject"));
        assert!(p("/reject bogus\n").unwrap_err().why.contains("unknown reason"));
        assert!(p("/reject duplicate SEC-2026-0009\n").unwrap_err().why.contains("no such other case"));
        assert!(p("/reply unknown-name\n").unwrap_err().why.contains("no reply template"));
    }

    #[test]
    fn reject_reply_and_readin() {
        let v = p("/reject duplicate SEC-2026-0002\n/reply duplicate\n").unwrap();
        assert_eq!(
            v[0].command,
            Command::Change(Change::Status { to: Status::Rejected, reason: Some("duplicate:SEC-2026-0002".into()) })
        );
        assert_eq!(v[1].command, Command::Reply(Reply::Template("duplicate".into())));
        let v = p("/waiting yes\n/reply\nThanks, we reproduced it.\n\nThe team\n> quoted\n").unwrap();
        assert_eq!(v[1].command, Command::Reply(Reply::Text("Thanks, we reproduced it.\n\nThe team\n".into())));
        let v = p("/readin add fixer 2026-12-31\n/readin remove ab cd\n").unwrap();
        assert!(matches!(v[0].command, Command::ReadinAdd { role: Role::Fixer, expires: Some(_), force: None }));
        assert_eq!(v[1].command, Command::ReadinRemove("ABCD".into()));
        assert!(p("/readin add boss\n").is_err());
    }
}
