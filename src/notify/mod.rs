//! What is said to whom: the reporter's acknowledgement and the team summary.
//!
//! Pure text builders. The rule that matters: an acknowledgement that is not
//! encrypted says nothing about the report's content (no title, no file names, no
//! quote); it carries only ids, times, hashes and dates.

use chrono::{DateTime, Utc};

use crate::case::{Case, rfc3339};
use crate::config::Policy;

pub mod blocks;
mod commands;
mod desk;

pub use commands::{REPLY_FIELDS, Replies, command_hint, confirmation_text, readin_lines, rejected_text};
pub use desk::{closed_incomplete_text, completed_text, missing_lines, needs_info_text, summary_triage};

/// The built-in acknowledgement template (plain language; an admin may override it
/// with `ack.txt` in `[templates] dir`).
pub const DEFAULT_ACK: &str = include_str!("ack.txt.j2");

/// Acknowledgement templates: the built-in one and an admin's override.
#[derive(Clone, Debug)]
pub struct Templates {
    /// The admin's `ack.txt`, if any.
    ack: Option<String>,
}

impl Templates {
    /// Loads overrides from `dir` (`ack.txt`); every template is test-rendered so a
    /// broken one is caught at start-up, reload and `check`, not when a report arrives.
    pub fn load(dir: Option<&std::path::Path>) -> Result<Templates, String> {
        let ack = match dir {
            Some(d) => match std::fs::read_to_string(d.join("ack.txt")) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(format!("{}: {e}", d.join("ack.txt").display())),
            },
            None => None,
        };
        let t = Templates { ack };
        for encrypted in [false, true] {
            render(t.ack.as_deref().unwrap_or(DEFAULT_ACK), &sample_context(encrypted))
                .map_err(|e| format!("ack.txt: {e}"))?;
        }
        Ok(t)
    }

    /// The acknowledgement body. `encrypted`: whether it will be encrypted to the
    /// reporter. Only then does the template see the title and attachment names: an
    /// unencrypted receipt cannot reveal content, whatever an admin's template says.
    pub fn ack(&self, case: &Case, policy: &Policy, message_sha256: &str, intake_fpr: &str, encrypted: bool) -> String {
        let ctx = ack_context(case, policy, message_sha256, intake_fpr, encrypted);
        if let Some(custom) = &self.ack {
            match render(custom, &ctx) {
                Ok(t) => return t,
                Err(e) => tracing::warn!(error = %e, "ack.txt failed to render; using the built-in template"),
            }
        }
        render(DEFAULT_ACK, &ctx).unwrap_or_else(|_| format!("Case {} received.\n", case.id))
    }
}

fn render(template: &str, ctx: &serde_json::Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| e.to_string())?;
    env.set_syntax(syntax);
    env.add_template("t", template).map_err(|e| e.to_string())?;
    let value = minijinja::Value::from(minijinja::value::Serde(ctx));
    env.get_template("t").and_then(|t| t.render(value)).map_err(|e| e.to_string())
}

fn ack_context(case: &Case, policy: &Policy, sha: &str, fpr: &str, encrypted: bool) -> serde_json::Value {
    let project = policy.project.as_str();
    let attachments: Vec<serde_json::Value> = case
        .attachments
        .iter()
        .map(|a| {
            let mut v = serde_json::json!({"size": a.size, "sha256": a.sha256});
            if encrypted {
                v["name"] = serde_json::Value::String(a.name.chars().take(50).collect());
                v["content_type"] = serde_json::Value::String(a.content_type.clone());
            }
            v
        })
        .collect();
    let mut v = serde_json::json!({
        "project": project,
        "case_id": case.id,
        "received_at": rfc3339(&case.received_at),
        "message_sha256": sha,
        "attachments": attachments,
        "report_encrypted": case.encrypted,
        "encrypted": encrypted,
        "due_ack": rfc3339(&case.due.ack),
        "due_update": rfc3339(&case.due.update),
        "due_disclosure": rfc3339(&case.due.disclosure),
        "intake_fingerprint": fpr,
        "reporter_address": case.reporter.address,
        // Names of the missing fields in plain words, never content: said encrypted or not.
        "missing": case.completeness.as_ref().map(|c| missing_lines(&c.missing)).unwrap_or_default(),
        "paused_until": policy.paused_at(case.received_at).map(|t| rfc3339(&t)),
        "pause_reason": policy.paused_at(case.received_at).and(policy.pause_reason.clone()),
    });
    if encrypted {
        v["title"] = serde_json::Value::String(case.title.clone());
    }
    v
}

fn sample_context(encrypted: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "project": "Project", "case_id": "SEC-2026-0001", "received_at": "2026-01-01T00:00:00Z",
        "message_sha256": "00", "attachments": [{"size": 1, "sha256": "00"}], "report_encrypted": true,
        "encrypted": encrypted, "due_ack": "2026-01-02T00:00:00Z", "due_update": "2026-01-08T00:00:00Z",
        "due_disclosure": "2026-04-01T00:00:00Z", "intake_fingerprint": "FPR", "reporter_address": "r@example.org",
        "missing": ["affected versions"], "paused_until": "2026-02-01T00:00:00Z", "pause_reason": "holidays",
    });
    if encrypted {
        v["title"] = "Title".into();
        v["attachments"][0]["name"] = "poc.py".into();
    }
    v
}

/// The team summary body (always encrypted).
/// What the cannot-read notice says.
pub struct CannotRead<'a> {
    pub project: &'a str,
    pub intake: &'a str,
    pub received_at: &'a DateTime<Utc>,
    pub sha256: &'a str,
    /// The quarantine reason (`no-key`, `decrypt-failed`).
    pub why: &'a str,
    pub fingerprint: &'a str,
    /// Where the key is published (security.txt), when configured.
    pub key_url: Option<&'a str>,
    pub public_key: &'a str,
}

/// The notice to the sender of a report we could not read. It never quotes the
/// message (we could not read it, and it may have been meant for someone else).
pub fn cannot_read_text(n: &CannotRead<'_>) -> String {
    let why = match n.why {
        "no-key" => "it is encrypted to a key we do not hold (an old or wrong key?)",
        _ => "we could not decrypt it (an unsupported format or a damaged message)",
    };
    let mut t = format!(
        "Hello,\n\nyour message to {} ({}) arrived on {} (UTC), but could not be read: {why}.\n\n\
         SHA-256 of the message as received: {}\n\n\
         It is kept, unread, and the security team has been told it arrived.\n\
         Please re-send your report encrypted to our current key:\n\n  Fingerprint: {}\n",
        n.intake,
        n.project,
        rfc3339(n.received_at),
        n.sha256,
        n.fingerprint
    );
    if let Some(url) = n.key_url {
        t.push_str(&format!("  Published:   {url}\n"));
    }
    t.push_str(&format!(
        "\nThe key is also in the Autocrypt header of this mail, and here:\n\n{}\n\n\
         Reply to this mail or write to {} again; your new report will be linked to this one.\n\n\
         This notice is automatic and signed with the key above.\n",
        n.public_key.trim_end(),
        n.intake
    ));
    t
}

/// One line on what a signature verdict means, for the team's mail.
pub fn verdict_meaning(v: crate::openpgp::Verdict) -> &'static str {
    use crate::openpgp::Verdict::*;
    match v {
        Good => "valid signature by the cert held for the From address, over everything kept from the message",
        Partial => {
            "valid signature by the From address's cert, but some content lies outside the signed part (marked UNSIGNED)"
        }
        SignerMismatch => "valid signature, but by a cert that does not carry the From address: the From may be forged",
        KeyConflict => {
            "valid signature by a cert naming the From address, but another cert is held for it: possibly a forged From"
        }
        Bad => "a signature does not verify: altered in transit, or made with a rejected algorithm",
        UnknownKey => "signed by a key secintake does not hold",
        None => "not signed",
    }
}

/// The team's mail for a follow-up: who sent it (marked when not the reporter), its
/// encryption and verdict, then its text.
pub fn followup_text(c: &Case, m: &crate::case::CaseMessage) -> String {
    let who = if m.third_party {
        format!("THIRD PARTY {} (not the reporter {})", m.from, c.reporter.address)
    } else {
        format!("the reporter {}", m.from)
    };
    format!(
        "Follow-up on {} ({})\nFrom:         {who}\nEncrypted:    {}   Signature: {} ({})\nSHA-256:      {}\n\n----- Message text -----\n\n{}\n",
        c.id,
        c.title,
        m.encrypted,
        m.signature.as_str(),
        verdict_meaning(m.signature),
        m.sha256,
        capped(&m.text, &c.id)
    )
}

pub fn summary_text(case: &Case, message_sha256: &str, warnings: &[String]) -> String {
    // Triage first: what the team should see before reading anything else.
    let mut t = summary_triage(case);
    for w in warnings {
        t.push_str(&format!("WARNING: {w}\n"));
    }
    if !warnings.is_empty() {
        t.push('\n');
    }
    t.push_str(&format!("New report {}: {}\n\n", case.id, case.title));
    t.push_str(&format!("Reporter:     {} <{}>\n", case.reporter.name, case.reporter.address));
    t.push_str(&format!(
        "Reporter key: {} ({})\n",
        case.reporter.key_fingerprint.as_deref().unwrap_or("none"),
        case.reporter.key_source.map(|s| format!("{s:?}").to_lowercase()).unwrap_or_else(|| "-".into())
    ));
    let credit = match (&case.credit.name, case.credit.anonymous) {
        (_, true) => "anonymous".to_owned(),
        (Some(n), false) => n.clone(),
        (None, false) => "not stated".to_owned(),
    };
    t.push_str(&format!("Credit:       {credit}\n"));
    t.push_str(&format!("Received:     {}\n", rfc3339(&case.received_at)));
    t.push_str(&format!(
        "Encrypted:    {}   Decrypted: {}   Signature: {}\n",
        case.encrypted,
        case.decrypted,
        case.signature.as_str()
    ));
    t.push_str(&format!("              ({})\n", verdict_meaning(case.signature)));
    if let Some(f) = &case.reporter.key_conflict {
        t.push_str(&format!(
            "WARNING:      another cert {f} claims the reporter's address; it is not used. Verify it with the reporter out of band before `secintake keys reporter set`.\n"
        ));
    }
    for q in &case.resend_of {
        t.push_str(&format!("Re-sent:      after {q}, an earlier message from this address that could not be read\n"));
    }
    t.push_str(&format!("SHA-256:      {message_sha256}\n"));
    if let Some(c) = &case.cvss {
        t.push_str(&format!("CVSS {}:     {} ({} {})\n", c.version, c.vector, c.score, c.severity));
    }
    if !case.cwe.is_empty() {
        t.push_str(&format!("CWE:          {}\n", case.cwe.join(", ")));
    }
    if let Some(tlp) = &case.tlp {
        t.push_str(&format!("TLP:          {tlp}\n"));
    }
    if !case.affected_versions.is_empty() {
        t.push_str(&format!("Affected:     {}\n", case.affected_versions.join(", ")));
    }
    t.push_str(&format!(
        "Due:          ack {}, update {}, disclosure {}\n",
        rfc3339(&case.due.ack),
        rfc3339(&case.due.update),
        rfc3339(&case.due.disclosure)
    ));
    if !case.attachments.is_empty() {
        t.push_str("\nAttachments (not forwarded; `secintake case show` on the intake host):\n");
        for a in &case.attachments {
            let mut marks = Vec::new();
            if case.encrypted && !a.encrypted {
                marks.push("UNENCRYPTED");
            }
            if case.signature != crate::openpgp::Verdict::None && !a.signed {
                marks.push("UNSIGNED");
            }
            let marks = if marks.is_empty() { String::new() } else { format!("  [{}]", marks.join(", ")) };
            t.push_str(&format!("  {}  {}  {} bytes  {}{marks}\n", a.sha256, a.name, a.size, a.content_type));
        }
    }
    t.push_str("\n----- Report text -----\n\n");
    t.push_str(&capped(&case.text, &case.id));
    t
}

/// The most report text a team mail carries: enough for any real report; a larger
/// one is cut with a note (the whole text stays in `secintake case show`), so one
/// hostile message cannot make every team mail tens of megabytes.
pub const MAIL_TEXT_MAX: usize = 256 * 1024;

/// `text` up to [`MAIL_TEXT_MAX`] bytes (at a char boundary), with a note when cut.
pub fn capped(text: &str, case_id: &str) -> String {
    let mut out = if text.len() <= MAIL_TEXT_MAX {
        text.to_owned()
    } else {
        let mut end = MAIL_TEXT_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}\n\n[... {} more bytes not shown; the whole text: secintake case show {case_id}]\n",
            &text[..end],
            text.len() - end
        )
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::*;
    use crate::config::Config;
    use crate::openpgp::Verdict;
    use chrono::Utc;

    fn cfg() -> Config {
        let dir = tempfile::tempdir().unwrap();
        let keyf = dir.path().join("k.asc");
        let pw = dir.path().join("pw");
        for f in [&keyf, &pw] {
            std::fs::write(f, "x").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let team = dir.path().join("team");
        std::fs::create_dir(&team).unwrap();
        let text = format!(
            "[intake]\naddress=\"security@x.test\"\n[imap]\nhost=\"127.0.0.1\"\ntls=\"none\"\nusername=\"u\"\npassword_file=\"{}\"\n\
             [smtp]\nhost=\"127.0.0.1\"\ntls=\"none\"\n[keys]\nintake_secret=\"{}\"\nteam_certs=\"{}\"\n[team]\nlist_address=\"t@x.test\"\n\
             [policy]\nproject=\"Demo\"\n[store]\npath=\"{}\"\n",
            pw.display(),
            keyf.display(),
            team.display(),
            dir.path().join("state").display()
        );
        // Parsing reads the secrets and checks the directories; nothing here needs the
        // files afterwards, so the directory goes when `dir` drops (no leftovers in /tmp).
        Config::parse(&text, &dir.path().join("c.toml")).unwrap()
    }

    #[test]
    fn unencrypted_ack_says_nothing_of_content() {
        let cfg = cfg();
        let now = Utc::now();
        let case = Case {
            id: "SEC-2026-0001".into(),
            status: Status::New,
            title: "RCE in the secret parser".into(),
            reporter: Reporter {
                address: "a@b.test".into(),
                name: "A".into(),
                key_fingerprint: None,
                key_source: None,
                key_conflict: None,
            },
            credit: Credit::default(),
            received_at: now,
            encrypted: true,
            decrypted: true,
            signature: Verdict::Good,
            cvss: None,
            cwe: vec![],
            tlp: None,
            affected_versions: vec![],
            attachments: vec![Attachment {
                name: "exploit-parser.py".into(),
                size: 3,
                sha256: "ab".into(),
                content_type: "text/x-python".into(),
                encrypted: true,
                signed: true,
            }],
            messages: vec![],
            ack: None,
            due: Due::from_policy(now, &cfg.policy),
            text: "the secret parser can be exploited".into(),
            reject_reason: None,
            assignee: None,
            cve: None,
            fixed_versions: vec![],
            waiting_on_reporter: false,
            resend_of: Vec::new(),
            cvss_claimed: None,
            cvss_assessed: None,
            completeness: None,
            ai_use: None,
            flags: Vec::new(),
            flag_evidence: Default::default(),
            cra: Default::default(),
            project: None,
            projects_affected: Vec::new(),
            duplicates: Vec::new(),
            also_reported_by: Vec::new(),
        };
        let builtin = Templates::load(None).unwrap();
        let t = builtin.ack(&case, &cfg.policy, "ff", "FPR", false);
        assert!(!t.contains("RCE") && !t.contains("exploit-parser") && !t.contains("secret parser"));
        assert!(t.contains("SEC-2026-0001") && t.contains("ff") && t.contains("FPR"));
        let t = builtin.ack(&case, &cfg.policy, "ff", "FPR", true);
        assert!(t.contains("RCE in the secret parser") && t.contains("exploit-parser.py"));
        // An admin template that asks for the title cannot get it unencrypted.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ack.txt"),
            "{{ project }}: {{ case_id }} {{ title }} {% for a in attachments %}{{ a.name }}{% endfor %}",
        )
        .unwrap();
        let tpl = Templates::load(Some(dir.path())).unwrap();
        let t = tpl.ack(&case, &cfg.policy, "ff", "FPR", false);
        assert_eq!(t.trim(), "Demo: SEC-2026-0001");
        assert!(tpl.ack(&case, &cfg.policy, "ff", "FPR", true).contains("RCE in the secret parser"));
        // A broken template is caught at load.
        std::fs::write(dir.path().join("ack.txt"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).unwrap_err().contains("ack.txt"));
    }
}
