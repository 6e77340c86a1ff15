//! `secintake check [--online]`: everything that would stop `run`, reported before it runs.

use std::time::SystemTime;

use super::{EXIT_OK, EXIT_USAGE};
use crate::config::Config;
use crate::openpgp as pgp;

/// Validates keys, certs and the store location (and, online, logs in). Prints every
/// problem; exit 2 when there is one. What degrades the service without stopping it (an
/// expired or revoked team cert, an intake key about to expire) is a warning, exit 0:
/// `check` runs as the unit's ExecStartPre, and failing it would stop intake.
pub async fn check(cfg: &Config, online: bool) -> i32 {
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let keys = match crate::pipeline::load_intake_keys(cfg) {
        Ok(k) => {
            notes.push(format!("intake key {} loads and unlocks", k.fingerprint().to_hex()));
            Some(k)
        }
        Err(e) => {
            problems.push(format!("keys.intake_secret: {e:#}"));
            None
        }
    };
    // Self-test: what a reporter encrypts to our published key, we can open.
    if let Some(k) = &keys {
        let me = k.public_cert();
        match k.encrypt_and_sign(b"secintake self-test", std::slice::from_ref(&me), SystemTime::now()) {
            Ok(ct) => match k.decrypt_message(&ct, std::slice::from_ref(&me), 1 << 20, SystemTime::now()) {
                pgp::Decryption::Ok { plaintext, verification } if plaintext == b"secintake self-test" && verification.verdict == pgp::Verdict::Good => {
                    notes.push("intake key decrypts and verifies a self-test message".into());
                }
                other => problems.push(format!("keys.intake_secret: self-test failed: {other:?}")),
            },
            Err(e) => problems.push(format!("keys.intake_secret: cannot encrypt to the intake key: {e:#}")),
        }
        // Every format the key advertises must open: a key never invites mail that
        // would be quarantined.
        for f in k.self_test_formats(SystemTime::now()) {
            match &f.result {
                Ok(()) => notes.push(format!("intake key {} decrypts {} (advertised)", f.key, f.format)),
                Err(e) => problems.push(format!(
                    "keys.intake_secret: key {} advertises {}, but this build cannot decrypt it ({e}); \
                     re-issue its binding signatures without it (Features / Preferred AEAD subpackets), \
                     e.g. `secintake keys generate` for a new key, or with the tool that made it",
                    f.key, f.format
                )),
            }
        }
        // check warns when the key expires within 30 days.
        let p = pgp::policy();
        if let Ok(vc) = k.certs()[0].with_policy(&p, None) {
            if let Some(exp) = vc.primary_key().key_expiration_time() {
                let left = exp.duration_since(SystemTime::now()).unwrap_or_default();
                if left < std::time::Duration::from_secs(30 * 86400) {
                    warnings.push(format!(
                        "keys.intake_secret: the intake key {} expires in {} days ({}); extend it with `secintake keys renew` \
                         and republish it (security.txt, WKD)",
                        k.fingerprint().to_hex(),
                        left.as_secs() / 86400,
                        crate::case::rfc3339(&chrono::DateTime::<chrono::Utc>::from(exp))
                    ));
                }
            }
        }
    }
    let (team, team_problems) = crate::pipeline::read_cert_dir(&cfg.keys.team_certs);
    for p in team_problems {
        problems.push(format!("keys.team_certs: {p}"));
    }
    let mut usable = 0;
    for (file, c) in &team {
        match pgp::can_encrypt(c, SystemTime::now()) {
            Ok(()) => {
                usable += 1;
                if let Some(k) = &keys {
                    if let Err(e) = k.encrypt_and_sign(b"test", std::slice::from_ref(c), SystemTime::now()) {
                        problems.push(format!("keys.team_certs: cannot encrypt to {file}: {e:#}"));
                    }
                }
            }
            // Intake still runs: the summary goes to the other members.
            Err(e) => warnings.push(format!(
                "keys.team_certs: {file} ({} {}) is unusable: {e}; team mail is not encrypted to it; replace it with a current cert",
                c.fingerprint().to_hex(),
                pgp::primary_email(c).unwrap_or_default()
            )),
        }
    }
    if team.is_empty() {
        problems.push(format!(
            "keys.team_certs: no team cert in {}; add the team's armored certs (gpg --export --armor)",
            cfg.keys.team_certs.display()
        ));
    } else if usable == 0 {
        // Intake, acks and cases go on; only the team mail waits for a current cert.
        warnings.push(format!(
            "keys.team_certs: no usable team cert in {}: team summaries cannot be sent until one is added",
            cfg.keys.team_certs.display()
        ));
    } else {
        notes.push(format!("{usable} usable team cert(s)"));
    }
    match crate::notify::Templates::load(cfg.templates_dir.as_deref()) {
        Ok(_) => {
            if let Some(d) = &cfg.templates_dir {
                notes.push(format!("templates in {} render", d.display()));
            }
        }
        Err(e) => problems.push(format!("templates.dir: {e}; fix the template or remove it to use the built-in wording")),
    }
    if let Some(dir) = &cfg.keys.keyring {
        let (_, p) = crate::pipeline::read_cert_dir(dir);
        problems.extend(p.into_iter().map(|p| format!("keys.keyring: {p}")));
    }
    let parent = cfg.store_path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    if !cfg.store_path.exists() && !parent.exists() {
        problems.push(format!("store.path: neither {} nor its parent exists; create it", cfg.store_path.display()));
    }
    if online {
        match crate::intake::connect(cfg).await {
            Ok(mut s) => {
                notes.push(format!("IMAP login to {}:{} ok", cfg.imap.host, cfg.imap.port));
                if let Err(e) = s.select(&cfg.imap.mailbox).await {
                    problems.push(format!("imap.mailbox: cannot select {:?}: {e}", cfg.imap.mailbox));
                }
                // The folders handled mail is moved to: created when missing (the
                // daemon would create them too), so a permission problem shows now.
                for (key, folder) in [("imap.processed_folder", &cfg.imap.processed_folder), ("imap.quarantine_folder", &cfg.imap.quarantine_folder)] {
                    match crate::intake::ensure_folder(&mut s, folder).await {
                        Ok(()) => notes.push(format!("IMAP folder {folder:?} exists")),
                        Err(e) => problems.push(format!("{key}: {folder:?} does not exist and cannot be created: {e:#}")),
                    }
                }
                let _ = s.logout().await;
            }
            Err(e) => problems.push(format!("imap: {e:#}")),
        }
        match crate::outbox::transport(cfg) {
            Ok(t) => match t.test_connection().await {
                Ok(true) => notes.push(format!("SMTP connection to {}:{} ok", cfg.smtp.host, cfg.smtp.port)),
                Ok(false) => problems.push(format!("smtp: {}:{} did not accept a connection", cfg.smtp.host, cfg.smtp.port)),
                Err(e) => problems.push(format!("smtp: {}:{}: {e}; check smtp.host, smtp.port, smtp.tls and the credentials", cfg.smtp.host, cfg.smtp.port)),
            },
            Err(e) => problems.push(format!("smtp: {e:#}")),
        }
    }
    for n in &notes {
        println!("ok: {}", super::term::escape(n));
    }
    for w in &warnings {
        eprintln!("warning: {}", super::term::escape(w));
    }
    if problems.is_empty() {
        println!("config {} is valid", cfg.file.display());
        EXIT_OK
    } else {
        eprintln!("invalid config {}:", cfg.file.display());
        for p in &problems {
            eprintln!("  - {}", super::term::escape(p));
        }
        EXIT_USAGE
    }
}
