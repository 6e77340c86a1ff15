//! Key files on disk: the intake secret key (unlocked once, at start-up) and the
//! directories of armored certs (`keys.team_certs`, `keys.keyring`).
//!
//! The one place that reads OpenPGP material from files; `openpgp` itself takes bytes.
//! Never logs key material; problems name the file.

use anyhow::{Context, Result};
use sequoia_openpgp::Cert;

use crate::config::Config;
use crate::openpgp::{self as pgp, IntakeKeys};

/// Loads the intake keys (unlocking them once).
pub fn load_intake_keys(cfg: &Config) -> Result<IntakeKeys> {
    load_keys(&cfg.keys.intake_secret, cfg.keys.passphrase.as_ref(), "keys.intake_secret")
}

/// Loads the key file named by the config key `key` (unlocking it once).
pub fn load_keys(path: &std::path::Path, passphrase: Option<&crate::config::Secret>, key: &str) -> Result<IntakeKeys> {
    let tsk = std::fs::read(path).with_context(|| format!("Reading {key} {}", path.display()))?;
    IntakeKeys::from_bytes(&tsk, passphrase.map(|s| s.expose())).with_context(|| format!("{key} {}", path.display()))
}

/// The usable certs of a directory of team certs, and a warning for each skipped one.
pub fn team_certs(dir: &std::path::Path, key: &str, now: std::time::SystemTime) -> (Vec<Cert>, Vec<String>) {
    let (all, problems) = read_cert_dir(dir);
    for p in problems {
        tracing::warn!(problem = %p, key, "Reading team certs");
    }
    let mut team = Vec::new();
    let mut warnings = Vec::new();
    for (file, c) in all {
        match pgp::can_encrypt(&c, now) {
            Ok(()) => team.push(c),
            Err(e) => {
                tracing::warn!(file = %file, cert = %c.fingerprint(), error = %e, "Skipping unusable team cert");
                warnings.push(format!("team cert {} ({file}) is skipped: {e}; replace it", c.fingerprint().to_hex()));
            }
        }
    }
    (team, warnings)
}

/// Reads every cert in a directory of armored files; returns (file, cert) pairs and
/// per-file problems.
pub fn read_cert_dir(dir: &std::path::Path) -> (Vec<(String, Cert)>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        problems.push(format!("cannot read the directory {}", dir.display()));
        return (certs, problems);
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match std::fs::read(&p) {
            Ok(bytes) => {
                let found = pgp::parse_certs(&bytes);
                if found.is_empty() {
                    problems.push(format!("{} holds no OpenPGP cert", p.display()));
                }
                certs.extend(found.into_iter().map(|c| (name.clone(), c)));
            }
            Err(e) => problems.push(format!("cannot read {}: {e}", p.display())),
        }
    }
    (certs, problems)
}
