//! What is said to whom: the reporter's acknowledgement and the team summary.
//!
//! Pure text builders. The rule that matters: an acknowledgement that is not
//! encrypted says nothing about the report's content (no title, no file names, no
//! quote); it carries only ids, times, hashes and dates.

use crate::case::{Case, rfc3339};
use crate::config::Config;

/// The acknowledgement body. `encrypted`: whether it will be encrypted to the reporter
/// (only then may it name the title and attachments).
pub fn ack_text(case: &Case, cfg: &Config, message_sha256: &str, intake_fpr: &str, encrypted: bool) -> String {
    let mut t = String::new();
    t.push_str(&format!("Thank you for your report to the {} security team.\n\n", cfg.policy.project));
    t.push_str("We have received it and opened a case. Please keep this receipt: the hashes\n");
    t.push_str("below let you prove what we received and when.\n\n");
    t.push_str(&format!("Case:                 {}\n", case.id));
    if encrypted {
        t.push_str(&format!("Title:                {}\n", case.title));
    }
    t.push_str(&format!("Received (UTC):       {}\n", rfc3339(&case.received_at)));
    // Hashes go on lines of their own, short enough that quoted-printable never
    // breaks them: a reporter must be able to copy them.
    t.push_str(&format!("SHA-256 of your message as we received it:\n  {message_sha256}\n"));
    if !case.attachments.is_empty() {
        t.push_str("Attachments (SHA-256):\n");
        for (i, a) in case.attachments.iter().enumerate() {
            if encrypted {
                let name: String = a.name.chars().take(50).collect();
                t.push_str(&format!("  {}. {} ({} bytes)\n     {}\n", i + 1, name, a.size, a.sha256));
            } else {
                t.push_str(&format!("  {}. ({} bytes)\n     {}\n", i + 1, a.size, a.sha256));
            }
        }
    }
    t.push_str(&format!("Encrypted report:     {}\n", if case.encrypted { "yes" } else { "no" }));
    t.push('\n');
    t.push_str("What our policy promises:\n");
    t.push_str(&format!("  Acknowledgement by:   {}\n", rfc3339(&case.due.ack)));
    t.push_str(&format!("  First status update:  {}\n", rfc3339(&case.due.update)));
    t.push_str(&format!("  Target disclosure:    {}\n", rfc3339(&case.due.disclosure)));
    t.push('\n');
    t.push_str(&format!("Our intake key fingerprint: {intake_fpr}\n"));
    t.push_str("Its public key is in the Autocrypt header of this message.\n\n");
    t.push_str(&format!(
        "To follow up, reply to this message and keep [{}]\n\
         in the subject.\n\
         Please encrypt follow-ups to the key above.\n\n",
        case.id
    ));
    t.push_str("This is an automatic receipt; a person will be in touch.\n");
    t
}

/// The team summary body (always encrypted).
pub fn summary_text(case: &Case, message_sha256: &str) -> String {
    let mut t = String::new();
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
            t.push_str(&format!("  {}  {}  {} bytes  {}\n", a.sha256, a.name, a.size, a.content_type));
        }
    }
    t.push_str("\n----- Report text -----\n\n");
    t.push_str(&case.text);
    if !case.text.ends_with('\n') {
        t.push('\n');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::*;
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
        let c = Config::parse(&text, &dir.path().join("c.toml")).unwrap();
        std::mem::forget(dir);
        c
    }

    #[test]
    fn unencrypted_ack_says_nothing_of_content() {
        let cfg = cfg();
        let now = Utc::now();
        let case = Case {
            id: "SEC-2026-0001".into(),
            status: Status::New,
            title: "RCE in the secret parser".into(),
            reporter: Reporter { address: "a@b.test".into(), name: "A".into(), key_fingerprint: None, key_source: None },
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
        };
        let t = ack_text(&case, &cfg, "ff", "FPR", false);
        assert!(!t.contains("RCE") && !t.contains("exploit-parser") && !t.contains("secret parser"));
        assert!(t.contains("SEC-2026-0001") && t.contains("ff") && t.contains("FPR"));
        let t = ack_text(&case, &cfg, "ff", "FPR", true);
        assert!(t.contains("RCE in the secret parser"));
    }
}
