//! `secintake check [--online]`: everything that would stop `run`, reported before it runs,
//! all in one run: the config's own problems, then the keys, certs, templates and store it
//! names (each unless its config key is already reported), then, online, the servers.

use std::time::SystemTime;

use sequoia_openpgp::cert::amalgamation::key::PrimaryKey;

use super::{EXIT_OK, EXIT_USAGE};
use crate::config::Config;
use crate::openpgp as pgp;

/// Days before the intake key expires from which `check` warns.
const EXPIRY_WARNING_DAYS: u64 = 30;

/// Validates keys, certs and the store location (and, online, logs in), given the config
/// and the problems found in it (see `Config::load_lenient`). Prints every problem; exit 2
/// when there is one. What degrades the service without stopping it (an expired or
/// revoked team cert, an intake key about to expire) is a warning, exit 0: `check` runs as
/// the unit's ExecStartPre, and failing it would stop intake.
pub async fn check(cfg: &Config, config_problems: Vec<String>, online: bool) -> i32 {
    // A key whose config entry is already reported is not checked again (that would only
    // repeat the same problem in other words).
    let reported = |key: &str| config_problems.iter().any(|p| p.starts_with(&format!("{key}:")));
    let mut problems: Vec<String> = config_problems.clone();
    let mut notes: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    if let Some(dir) = &cfg.credentials_source {
        notes.push(format!(
            "$CREDENTIALS_DIRECTORY is not set (not under systemd): secrets read from {}, where the unit's LoadCredential= reads them",
            dir.display()
        ));
    }
    let keys = if reported("keys.intake_secret") || reported("keys.passphrase_file") {
        None
    } else {
        match crate::keyfiles::load_intake_keys(cfg) {
            Ok(k) => {
                notes.push(format!("intake key {} loads and unlocks", k.fingerprint().to_hex()));
                Some(k)
            }
            Err(e) => {
                problems.push(format!("keys.intake_secret: {e:#}"));
                None
            }
        }
    };
    if let Some(k) = &keys {
        self_test(k, "keys.intake_secret", &mut notes, &mut problems, &mut warnings);
    }
    // Each project: its own key (self-tested as the default one), addresses, list, certs.
    for p in &cfg.projects {
        let label = format!("projects {}", p.name);
        let addrs = if p.addresses.is_empty() { "no address of its own".to_owned() } else { p.addresses.join(", ") };
        notes.push(format!(
            "project {}: {addrs} (and {}), cases {}-YYYY-NNNN, list {}",
            p.name,
            plus_address(&cfg.intake.address, &p.name),
            p.case_prefix,
            p.list_address.as_deref().unwrap_or("the shared list")
        ));
        if let Some(path) = &p.intake_secret {
            match crate::keyfiles::load_keys(path, p.passphrase.as_ref(), &format!("{label}: intake_secret")) {
                Ok(k) => {
                    notes.push(format!("{label}: intake key {} loads and unlocks", k.fingerprint().to_hex()));
                    self_test(&k, &format!("{label}: intake_secret"), &mut notes, &mut problems, &mut warnings);
                }
                Err(e) => problems.push(format!("{label}: intake_secret: {e:#}")),
            }
        }
        if let Some(dir) = &p.team_certs {
            let (certs, warn) = crate::keyfiles::team_certs(dir, "projects.team_certs", SystemTime::now());
            warnings.extend(warn.into_iter().map(|w| format!("{label}: team_certs: {w}")));
            if certs.is_empty() {
                warnings.push(format!(
                    "{label}: team_certs: no usable cert in {}; its maintainers get nothing",
                    dir.display()
                ));
            } else {
                notes.push(format!("{label}: {} usable maintainer cert(s)", certs.len()));
            }
        }
    }
    let (team, team_problems) = if reported("keys.team_certs") {
        (Vec::new(), Vec::new())
    } else {
        crate::keyfiles::read_cert_dir(&cfg.keys.team_certs)
    };
    for p in team_problems {
        problems.push(format!("keys.team_certs: {p}"));
    }
    let mut usable = 0;
    for (file, c) in &team {
        match pgp::can_encrypt(c, SystemTime::now()) {
            Ok(()) => {
                usable += 1;
                if let Some(k) = &keys
                    && let Err(e) = k.encrypt_and_sign(b"test", std::slice::from_ref(c), SystemTime::now()) {
                        problems.push(format!("keys.team_certs: cannot encrypt to {file}: {e:#}"));
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
    if team.is_empty() && !reported("keys.team_certs") {
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
    if cfg.commands.enabled {
        // Who may act by signed mail: a team cert valid now with an address to send From.
        let signers: Vec<String> = team
            .iter()
            .filter(|(_, c)| pgp::valid_now(c, SystemTime::now()))
            .filter_map(|(_, c)| pgp::primary_email(c))
            .collect();
        notes.push(format!(
            "commands by signed mail: {} team cert(s) may sign ({}), commands.max_age {}",
            signers.len(),
            if signers.is_empty() { "none".into() } else { signers.join(", ") },
            humantime::format_duration(cfg.commands.max_age)
        ));
    }
    match crate::notify::Templates::load(cfg.templates_dir.as_deref().filter(|_| !reported("templates.dir"))) {
        Ok(_) => {
            if let Some(d) = &cfg.templates_dir {
                notes.push(format!("templates in {} render", d.display()));
            }
        }
        Err(e) => {
            problems.push(format!("templates.dir: {e}; fix the template or remove it to use the built-in wording"))
        }
    }
    match crate::notify::Replies::load(&cfg.replies_dir()) {
        Ok(r) => {
            let names: Vec<&str> = r.names().collect();
            if !names.is_empty() {
                notes.push(format!("reply templates in {}: {}", cfg.replies_dir().display(), names.join(", ")));
            }
        }
        Err(e) => problems.push(format!("replies: {e}; fix the template (the fields are listed) or remove it")),
    }
    if let Some(dir) = cfg.keys.keyring.as_ref().filter(|_| !reported("keys.keyring")) {
        let (_, p) = crate::keyfiles::read_cert_dir(dir);
        problems.extend(p.into_iter().map(|p| format!("keys.keyring: {p}")));
    }
    let parent = cfg.store_path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    if !reported("store.path") && !cfg.store_path.exists() && !parent.exists() {
        problems.push(format!("store.path: neither {} nor its parent exists; create it", cfg.store_path.display()));
    }
    for p in crate::atrest::unsealed_copies(&cfg.store_path) {
        warnings.push(format!(
            "store.path: {} is a store moved aside by an older `store rebuild`, in clear (made before \
             at-rest sealing): remove it once you no longer need it (rm -r), or keep it as protected as the \
             intake key",
            p.display()
        ));
    }
    if !reported("store.key_file") {
        match crate::atrest::check(cfg, keys.as_ref()) {
            Ok(Some(n)) => notes.push(n),
            Ok(None) => {}
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if online && !config_problems.is_empty() {
        problems.push("--online: the servers were not tried; fix the config problems above first".into());
    } else if online {
        match crate::intake::connect(cfg).await {
            Ok(mut s) => {
                notes.push(format!("IMAP login to {}:{} ok", cfg.imap.host, cfg.imap.port));
                if let Err(e) = s.select(&cfg.imap.mailbox).await {
                    problems.push(format!("imap.mailbox: cannot select {:?}: {e}", cfg.imap.mailbox));
                }
                // The folders handled mail is moved to: created when missing (the
                // daemon would create them too), so a permission problem shows now.
                for (key, folder) in [
                    ("imap.processed_folder", &cfg.imap.processed_folder),
                    ("imap.quarantine_folder", &cfg.imap.quarantine_folder),
                    ("imap.journal_folder", &cfg.imap.journal_folder),
                ] {
                    match crate::intake::ensure_folder(&mut s, folder).await {
                        Ok(()) => notes.push(format!("IMAP folder {folder:?} exists")),
                        Err(e) => {
                            problems.push(format!("{key}: {folder:?} does not exist and cannot be created: {e:#}"))
                        }
                    }
                }
                let _ = s.logout().await;
            }
            Err(e) => problems.push(format!("imap: {e:#}")),
        }
        match crate::outbox::transport(cfg) {
            Ok(t) => match t.test_connection().await {
                Ok(true) => notes.push(format!("SMTP connection to {}:{} ok", cfg.smtp.host, cfg.smtp.port)),
                Ok(false) => {
                    problems.push(format!("smtp: {}:{} did not accept a connection", cfg.smtp.host, cfg.smtp.port))
                }
                Err(e) => problems.push(format!(
                    "smtp: {}:{}: {e}; check smtp.host, smtp.port, smtp.tls and the credentials",
                    cfg.smtp.host, cfg.smtp.port
                )),
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
    for w in &warnings {
        eprintln!("warning: {w}");
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

/// A warning when the intake key (its primary key, or a subkey it signs or decrypts with)
/// expires within [`EXPIRY_WARNING_DAYS`] of `now`: after that, reporters' software refuses
/// to encrypt to it and acks no longer verify. Renewal: README, "Key lifetime".
pub fn expiry_warning(cert: Option<&sequoia_openpgp::Cert>, now: SystemTime) -> Option<String> {
    let p = pgp::policy();
    let vc = cert?.with_policy(&p, now).ok()?;
    let soonest = vc
        .keys()
        .revoked(false)
        .filter(|k| k.primary() || k.for_signing() || k.for_transport_encryption() || k.for_storage_encryption())
        .filter_map(|k| k.key_expiration_time())
        .min()?;
    let date = crate::case::rfc3339(&chrono::DateTime::<chrono::Utc>::from(soonest));
    let fpr = vc.fingerprint().to_hex();
    let fix = "extend it with `secintake keys renew` (or gpg --quick-set-expire) and republish it (security.txt, WKD): README, \"Key lifetime\"";
    match soonest.duration_since(now) {
        // Expired: reports still decrypt (decryption ignores expiry), but acks cannot be
        // signed until it is renewed.
        Err(_) => Some(format!(
            "keys.intake_secret: the intake key {fpr} EXPIRED on {date}; reports still open, acks are held; {fix}"
        )),
        Ok(left) if left < std::time::Duration::from_secs(EXPIRY_WARNING_DAYS * 86400) => Some(format!(
            "keys.intake_secret: the intake key {fpr} expires in {} days ({date}); {fix}",
            left.as_secs() / 86400
        )),
        Ok(_) => None,
    }
}

/// `security+NAME@domain` of the intake address: a project's plus-address.
fn plus_address(intake: &str, name: &str) -> String {
    match intake.split_once('@') {
        Some((l, d)) => format!("{l}+{name}@{d}"),
        None => intake.to_owned(),
    }
}

/// What a reporter encrypts to an intake key, we can open, in every format it advertises.
fn self_test(
    k: &pgp::IntakeKeys,
    key: &str,
    notes: &mut Vec<String>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let me = k.public_cert();
    match k.encrypt_and_sign(b"secintake self-test", std::slice::from_ref(&me), SystemTime::now()) {
        Ok(ct) => match k.decrypt_message(&ct, std::slice::from_ref(&me), 1 << 20, SystemTime::now()) {
            pgp::Decryption::Ok { plaintext, signatures, .. }
                if plaintext == b"secintake self-test" && signatures.verdict() == pgp::Verdict::Good =>
            {
                notes.push("intake key decrypts and verifies a self-test message".into());
            }
            other => problems.push(format!("{key}: self-test failed: {other:?}")),
        },
        Err(e) => problems.push(format!("{key}: cannot encrypt to the intake key: {e:#}")),
    }
    // Every format the key advertises must open: a key never invites mail that
    // would be quarantined.
    for f in k.self_test_formats(SystemTime::now()) {
        match &f.result {
            Ok(()) => notes.push(format!("intake key {} decrypts {} (advertised)", f.key, f.format)),
            Err(e) => problems.push(format!(
                "{key}: key {} advertises {}, but this build cannot decrypt it ({e}); \
                     re-issue its binding signatures without it (Features / Preferred AEAD subpackets), \
                     e.g. `secintake keys generate` for a new key, or with the tool that made it",
                f.key, f.format
            )),
        }
    }
    if let Some(w) = expiry_warning(k.certs().first(), SystemTime::now()) {
        warnings.push(w);
    }
}
