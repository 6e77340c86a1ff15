//! `secintake check [--online]`: everything that would stop `run`, reported before it runs.

use std::time::SystemTime;

use super::{EXIT_OK, EXIT_USAGE};
use crate::config::Config;
use crate::openpgp as pgp;

/// Validates keys, certs and the store location (and, online, logs in). Prints every
/// problem; exit 2 when there is one.
pub async fn check(cfg: &Config, online: bool) -> i32 {
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    match crate::pipeline::load_intake_keys(cfg) {
        Ok(k) => notes.push(format!("intake key {} loads and unlocks", k.fingerprint().to_hex())),
        Err(e) => problems.push(format!("keys.intake_secret: {e:#}")),
    }
    let (team, team_problems) = crate::pipeline::read_cert_dir(&cfg.keys.team_certs);
    for p in team_problems {
        problems.push(format!("keys.team_certs: {p}"));
    }
    let mut usable = 0;
    for (file, c) in &team {
        match pgp::can_encrypt(c, SystemTime::now()) {
            Ok(()) => usable += 1,
            Err(e) => problems.push(format!(
                "keys.team_certs: {file} ({}) is unusable: {e}; replace it with a current cert",
                c.fingerprint().to_hex()
            )),
        }
    }
    if usable == 0 {
        problems.push(format!(
            "keys.team_certs: no usable team cert in {}; add the team's armored certs (gpg --export --armor)",
            cfg.keys.team_certs.display()
        ));
    } else {
        notes.push(format!("{usable} usable team cert(s)"));
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
        println!("ok: {n}");
    }
    if problems.is_empty() {
        println!("config {} is valid", cfg.file.display());
        EXIT_OK
    } else {
        eprintln!("invalid config {}:", cfg.file.display());
        for p in &problems {
            eprintln!("  - {p}");
        }
        EXIT_USAGE
    }
}
