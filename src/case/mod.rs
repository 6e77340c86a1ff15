//! The case model and its rules: the JSON shape of PRODUCT.md, case ids, deadlines.
//!
//! Pure: takes the policy and `now` as arguments, never reads the clock or the disk.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::openpgp::Verdict;
/// The reporter's credit and a CVSS score are what `report` extracts; the case holds them.
pub use crate::report::{Credit, Cvss};
use crate::triage::{AiUse, Field, Flag};

pub mod change;
pub mod command;
pub mod cra;
pub mod credit;
pub mod export;
pub mod readin;
pub mod sla;
pub mod stats;

/// RFC 3339 in UTC with second precision, as every timestamp in our JSON is written.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serde glue so timestamps serialize as `2026-11-23T01:02:03Z`.
pub mod ts {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<DateTime<Utc>>`.
    pub mod opt {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Acknowledged,
    Triaged,
    Accepted,
    Fixing,
    Disclosed,
    Closed,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::New,
        Status::Acknowledged,
        Status::Triaged,
        Status::Accepted,
        Status::Fixing,
        Status::Disclosed,
        Status::Closed,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Triaged => "triaged",
            Status::Accepted => "accepted",
            Status::Fixing => "fixing",
            Status::Disclosed => "disclosed",
            Status::Closed => "closed",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Where a case may go from here (SPEC-11's flow: triage, fix, disclose; a rejected
    /// or closed case may be reopened to triage).
    pub fn allowed_next(self) -> &'static [Status] {
        use Status::*;
        match self {
            New => &[Acknowledged, Triaged, Rejected],
            Acknowledged => &[Triaged, Rejected],
            Triaged => &[Accepted, Rejected],
            Accepted => &[Fixing, Disclosed, Rejected],
            Fixing => &[Disclosed, Accepted],
            Disclosed => &[Closed],
            Closed => &[Triaged],
            Rejected => &[Triaged, Closed],
        }
    }

    /// Checks a transition; the error names the allowed ones.
    pub fn transition(self, to: Status) -> Result<(), String> {
        if self == to || self.allowed_next().contains(&to) {
            Ok(())
        } else {
            Err(format!(
                "cannot go from {} to {}; allowed: {}",
                self.as_str(),
                to.as_str(),
                self.allowed_next().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))
        }
    }
}

/// Reasons a case may be rejected with.
/// `incomplete` is the one the daemon itself may give (`[policy] close_incomplete_after`).
/// `blocked` is the one intake gives a blocked reporter's report (`reporter block`).
pub const REJECT_REASONS: &[&str] =
    &["out-of-scope", "duplicate", "not-reproducible", "spam", "invalid", "incomplete", "blocked"];

/// One entry of a case's append-only audit log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    /// `--as NAME`, the OS user, or `secintake` for the daemon's own actions.
    pub who: String,
    /// `opened`, `set`, `note`, `mail-in`, `mail-out`, ...
    pub action: String,
    pub detail: String,
    /// A command by signed mail: the signer's address (From, bound to their cert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A command by signed mail: the fingerprint of the team cert that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_fingerprint: Option<String>,
    /// A command by signed mail: that mail's Message-ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// A CVE id: `CVE-YYYY-NNNN` with four or more digits.
pub fn valid_cve(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() >= 13
        && s.starts_with("CVE-")
        && b[4..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// Where we first got a reporter's cert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    Attached,
    Autocrypt,
    Keyring,
    /// Set by the team with `secintake keys reporter set` (extension).
    Team,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Attached => "attached",
            KeySource::Autocrypt => "autocrypt",
            KeySource::Keyring => "keyring",
            KeySource::Team => "team",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reporter {
    /// Bare address from the report's From.
    pub address: String,
    /// Display name, or the empty string.
    pub name: String,
    pub key_fingerprint: Option<String>,
    pub key_source: Option<KeySource>,
    /// A different cert that claimed the reporter's address on a message of this case
    /// while another was pinned (or in the keyring): shown to the team, never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_conflict: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The sender's file name: data, never a path.
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    /// It arrived inside the encryption (extension; false for records made before
    /// this field existed).
    #[serde(default)]
    pub encrypted: bool,
    /// It lies inside the signed data of the message's signature (extension).
    #[serde(default)]
    pub signed: bool,
}

/// One message of a case: the report, then follow-ups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseMessage {
    pub message_id: String,
    /// Bare From address of this message.
    #[serde(default)]
    pub from: String,
    /// Sent from another address than the case's reporter (anyone can put a case id
    /// in a Subject): the team must not take it for the reporter's word.
    #[serde(default)]
    pub third_party: bool,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub encrypted: bool,
    pub decrypted: bool,
    pub signature: Verdict,
    pub signer_fingerprint: Option<String>,
    /// SHA-256 of the message as the IMAP server served it (extension).
    pub sha256: String,
    /// The message's text. Never part of the case record: the store keeps it apart,
    /// as bytes, once (see `Store::put_text`); `to_json(true)` shows it. Read from
    /// records made before that (`default` only matters for them).
    #[serde(default, skip_serializing)]
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(with = "ts")]
    pub sent_at: DateTime<Utc>,
    pub message_id: String,
    pub encrypted: bool,
    /// A bounce of this ack came back (extension; absent when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undelivered: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Due {
    #[serde(with = "ts")]
    pub ack: DateTime<Utc>,
    #[serde(with = "ts")]
    pub update: DateTime<Utc>,
    #[serde(with = "ts")]
    pub disclosure: DateTime<Utc>,
}

impl Due {
    /// The policy's promises counted from the mailbox arrival time; while the program
    /// is paused (`[policy] paused_until`), the update and disclosure dates count from
    /// the end of the pause (the ack still goes out at once).
    pub fn from_policy(received_at: DateTime<Utc>, p: &crate::config::Policy) -> Due {
        let add = |from: DateTime<Utc>, d: std::time::Duration| {
            from + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(36500))
        };
        let resume = p.paused_at(received_at).unwrap_or(received_at);
        Due {
            ack: add(received_at, p.ack_within),
            update: add(resume, p.update_within),
            disclosure: add(resume, p.disclosure_after),
        }
    }
}

/// A case, exactly as `case show ID --json` prints it (plus `text`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub status: Status,
    pub title: String,
    pub reporter: Reporter,
    pub credit: Credit,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub encrypted: bool,
    pub decrypted: bool,
    pub signature: Verdict,
    pub cvss: Option<Cvss>,
    pub cwe: Vec<String>,
    pub tlp: Option<String>,
    pub affected_versions: Vec<String>,
    pub attachments: Vec<Attachment>,
    pub messages: Vec<CaseMessage>,
    pub ack: Option<Ack>,
    pub due: Due,
    /// The report text: the first message's (kept with it in the store, never in the
    /// case record; see `CaseMessage::text`).
    #[serde(default, skip_serializing)]
    pub text: String,
    /// Reason when rejected (`duplicate:SEC-...` names the original). Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Who works the case. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Assigned CVE id. Extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
    /// Versions with the fix. Extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed_versions: Vec<String>,
    /// The case waits on the reporter (pauses the update clock). Extension.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting_on_reporter: bool,
    /// Quarantine entries of earlier messages from the reporter that could not be
    /// read (no key, decryption failure), which this report re-sends. Extension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resend_of: Vec<String>,
    /// The reporter's CVSS as extracted from the report; never changed by the team.
    /// Null for records made before the claim was kept apart.
    #[serde(default)]
    pub cvss_claimed: Option<Cvss>,
    /// The team's CVSS (`case set --cvss`); `cvss` is this when set, else the claim.
    #[serde(default)]
    pub cvss_assessed: Option<Cvss>,
    /// What the policy's required fields lack, and the one request for them. Null for
    /// records made before triage.
    #[serde(default)]
    pub completeness: Option<Completeness>,
    /// What the report declares about AI assistance. Null for records made before triage.
    #[serde(default)]
    pub ai_use: Option<AiUse>,
    /// Triage flags, sorted; each has its evidence in `flag_evidence`. They inform, never
    /// reject or delay.
    #[serde(default)]
    pub flags: Vec<Flag>,
    #[serde(default)]
    pub flag_evidence: BTreeMap<Flag, String>,
    /// EU CRA Article 14 clocks (see `cra`).
    #[serde(default)]
    pub cra: cra::Cra,
    /// The project the report was delivered to (`[[projects]]`; the default project's
    /// name otherwise). Null for records made before projects: the default project.
    #[serde(default)]
    pub project: Option<String>,
    /// Other projects the flaw affects (`case set --also-affects`): their teams get the
    /// case's team mail, encrypted to their certs, and see it in `case list --project`.
    #[serde(default)]
    pub projects_affected: Vec<String>,
    /// Duplicate candidates found at intake against every case, best first, at most
    /// five (`credit::Duplicate`; `case similar` looks again).
    #[serde(default)]
    pub duplicates: Vec<credit::Duplicate>,
    /// The reporters of cases rejected as duplicates of this one, in order of receipt.
    #[serde(default)]
    pub also_reported_by: Vec<credit::AlsoReported>,
}

/// A case's completeness against the fields asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// Asked-for fields that no message from the reporter holds yet.
    pub missing: Vec<Field>,
    /// When the reporter was asked for them (the ack, or `case ask`); null: never.
    #[serde(default, with = "ts::opt")]
    pub asked_at: Option<DateTime<Utc>>,
    /// When the case closes as `incomplete` without a reply (`[policy]
    /// close_incomplete_after` after `asked_at`); null: it will not.
    #[serde(default, with = "ts::opt")]
    pub closes_at: Option<DateTime<Utc>>,
    /// The fields asked for: the policy's `required` at intake, plus what the team asked
    /// (extension).
    #[serde(default)]
    pub required: Vec<Field>,
    /// What the report and the reporter's later messages hold (extension).
    #[serde(default)]
    pub present: Vec<Field>,
    /// The reporter's last reply after `asked_at` (extension): a reply stops the auto-close.
    #[serde(default, with = "ts::opt", skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<DateTime<Utc>>,
}

impl Completeness {
    /// Recomputes `missing` from `required` and `present`.
    pub fn update_missing(&mut self) {
        let present: std::collections::BTreeSet<Field> = self.present.iter().copied().collect();
        self.missing = crate::triage::missing(&self.required, &present);
    }
}

impl Case {
    /// The JSON of `case show` (`with_text`) or of `case list` (without any text).
    pub fn to_json(&self, with_text: bool) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if with_text && let Some(o) = v.as_object_mut() {
            o.insert("text".into(), self.text.clone().into());
            if let Some(msgs) = o.get_mut("messages").and_then(|m| m.as_array_mut()) {
                for (m, cm) in msgs.iter_mut().zip(&self.messages) {
                    if let Some(m) = m.as_object_mut() {
                        m.insert("text".into(), cm.text.clone().into());
                    }
                }
            }
        }
        v
    }

    /// The deadlines that still matter, the one rule `sla`, `status`, `case list` and
    /// the SLA reminders share: none once the case is closed, rejected or disclosed
    /// (but the CRA filings, see below); the ack until one was delivered; the update
    /// unless the case waits on the reporter (a reply restarts it); the disclosure date;
    /// the CRA filings still owed (`cra-early-warning`, `cra-notification`, `cra-final`)
    /// once exploitation is confirmed, unless the case was rejected.
    pub fn deadlines(&self) -> Vec<(&'static str, DateTime<Utc>)> {
        // CRA filings are owed whatever the case's status, unless it was rejected: a
        // disclosed, exploited vulnerability still owes its final report.
        let mut v = if self.status == Status::Rejected { Vec::new() } else { self.cra.deadlines() };
        if matches!(self.status, Status::Closed | Status::Rejected | Status::Disclosed) {
            return v;
        }
        if self.ack.is_none() {
            v.push(("ack", self.due.ack));
        }
        if !self.waiting_on_reporter {
            v.push(("update", self.due.update));
        }
        v.push(("disclosure", self.due.disclosure));
        v
    }

    /// Sets the triage flags from one map (flag -> evidence), so `flags` and
    /// `flag_evidence` always agree.
    pub fn set_flags(&mut self, flags: BTreeMap<Flag, String>) {
        self.flags = flags.keys().copied().collect();
        self.flag_evidence = flags;
    }

    /// The CVSS an advisory may publish: the team's assessment. A claim the team has
    /// not assessed is not ours to publish (None); records made before the claim was
    /// kept apart publish `cvss` as before.
    pub fn published_cvss(&self) -> Option<&Cvss> {
        match (&self.cvss_assessed, &self.cvss_claimed) {
            (Some(a), _) => Some(a),
            (None, Some(_)) => None,
            (None, None) => self.cvss.as_ref(),
        }
    }

    /// The reporter's claim stands alone: exports mark it `[TO FILL: assess CVSS]`.
    pub fn cvss_unassessed(&self) -> bool {
        self.cvss_assessed.is_none() && self.cvss_claimed.is_some()
    }

    /// Whether the case concerns `project`: it was sent to it (records from before
    /// projects: to the default project, `default`), or it also affects it.
    pub fn concerns(&self, project: &str, default: &str) -> bool {
        self.project.as_deref().unwrap_or(default) == project || self.projects_affected.iter().any(|p| p == project)
    }

    /// The next deadline that still matters (for sorting lists); far in the future
    /// when none does.
    pub fn next_due(&self) -> DateTime<Utc> {
        self.deadlines().into_iter().map(|(_, t)| t).min().unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether a deadline that matters has passed.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.deadlines().iter().any(|(_, t)| *t < now)
    }
}

/// How much two cases resemble each other, 0..1: word overlap of title and text
/// (Jaccard), plus shared CWE ids and affected versions. For duplicate candidates.
pub fn similarity(a: &Case, b: &Case) -> f64 {
    use std::collections::HashSet;
    let words = |c: &Case| -> HashSet<String> {
        format!("{} {}", c.title, c.text)
            .to_lowercase()
            .split(|ch: char| !ch.is_alphanumeric())
            .filter(|w| w.len() > 3)
            .map(str::to_owned)
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    let jaccard = |x: &HashSet<String>, y: &HashSet<String>| {
        if x.is_empty() && y.is_empty() { 0.0 } else { x.intersection(y).count() as f64 / x.union(y).count() as f64 }
    };
    let text = jaccard(&wa, &wb);
    let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
    let cwe = if a.cwe.is_empty() || b.cwe.is_empty() { 0.0 } else { jaccard(&set(&a.cwe), &set(&b.cwe)) };
    let ver = if a.affected_versions.is_empty() || b.affected_versions.is_empty() {
        0.0
    } else {
        jaccard(&set(&a.affected_versions), &set(&b.affected_versions))
    };
    0.6 * text + 0.25 * cwe + 0.15 * ver
}

/// Formats a case id: `SEC-2026-0001`.
pub fn format_id(prefix: &str, year: i32, seq: u64) -> String {
    format!("{prefix}-{year}-{seq:04}")
}

/// Finds a case id (`[SEC-2026-0001]` or bare) in a subject line.
pub fn find_id(prefix: &str, subject: &str) -> Option<String> {
    let bytes = subject.as_bytes();
    let mut start = 0;
    while let Some(pos) = subject[start..].find(prefix) {
        let at = start + pos;
        let rest = &subject[at + prefix.len()..];
        let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        if before_ok && let Some(id) = parse_id_tail(rest) {
            return Some(format!("{prefix}{id}"));
        }
        start = at + prefix.len();
    }
    None
}

fn parse_id_tail(rest: &str) -> Option<String> {
    let b = rest.as_bytes();
    if b.len() < 10 || b[0] != b'-' || b[5] != b'-' {
        return None;
    }
    if !b[1..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = b[6..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits < 4 {
        return None;
    }
    Some(rest[..6 + digits].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_enforced_with_allowed_list() {
        assert!(Status::New.transition(Status::Triaged).is_ok());
        let e = Status::New.transition(Status::Disclosed).unwrap_err();
        assert!(e.contains("allowed: acknowledged, triaged, rejected"), "{e}");
        assert!(valid_cve("CVE-2026-12345"));
        assert!(!valid_cve("CVE-26-1"));
    }

    #[test]
    fn ids() {
        assert_eq!(format_id("SEC", 2026, 1), "SEC-2026-0001");
        assert_eq!(find_id("SEC", "Re: [SEC-2026-0012] Report received"), Some("SEC-2026-0012".into()));
        assert_eq!(find_id("SEC", "XSEC-2026-0012"), None);
        assert_eq!(find_id("SEC", "SEC-26-1"), None);
    }

    #[test]
    fn due_dates_count_from_arrival() {
        let p = crate::config::Policy::for_tests();
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let d = Due::from_policy(t, &p);
        assert_eq!(rfc3339(&d.ack), "2026-01-02T00:00:00Z");
        assert_eq!(rfc3339(&d.update), "2026-01-08T00:00:00Z");
        assert_eq!(rfc3339(&d.disclosure), "2026-04-01T00:00:00Z");
    }
}
