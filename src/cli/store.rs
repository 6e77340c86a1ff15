//! `secintake store rebuild [--into DIR]` and `store verify [--json]`: the store made
//! from the mailbox (`journal::rebuild`), and the live store compared with it.
//!
//! Both run in the client, never through the daemon's socket: they log in to IMAP with
//! the config's credentials, hold the intake key, and write a directory the user names.
//! The live store must not be open elsewhere (stop the daemon; `--into` leaves the live
//! store alone and works while the daemon runs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE, usage};
use crate::config::Config;
use crate::store::{OpenError, Store};

#[derive(Subcommand, Debug)]
pub enum StoreCmd {
    /// Build the store from the mailbox alone: the journal folder, the quarantine folder
    /// and the intake key
    #[command(
        after_help = "Examples:\n  secintake store rebuild --into /var/lib/secintake-drill\n  systemctl stop secintake && secintake store rebuild && systemctl start secintake"
    )]
    Rebuild {
        /// Build into DIR (a new state directory) and leave the live store alone
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Compare the store with what the mailbox says (exit 1 on any difference)
    #[command(after_help = "Example:\n  secintake store verify --json")]
    Verify {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the search and duplicate indexes from the store's cases (also done at
    /// start when they are missing)
    #[command(after_help = "Example:\n  secintake store reindex")]
    Reindex {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub async fn execute(cmd: &StoreCmd, cfg: Arc<Config>, out: &mut dyn Write) -> Result<i32> {
    let keys = Arc::new(crate::keyfiles::load_intake_keys(&cfg).context("Loading keys.intake_secret")?);
    match cmd {
        StoreCmd::Rebuild { into } => {
            let target = into.clone().unwrap_or_else(|| cfg.store_path.clone());
            let aside = prepare_target(&cfg, &keys, &target, into.is_some())?;
            let store = open(&cfg, &keys, &target)?;
            let mut s = crate::intake::connect(&cfg).await?;
            let r = crate::journal::rebuild::rebuild(&mut s, &cfg, &keys, &store).await?;
            let _ = s.logout().await;
            if let Some(a) = aside {
                writeln!(out, "The store that was there is kept in {}", a.display())?;
            }
            writeln!(
                out,
                "Rebuilt {} from {} journal message(s) ({} applied), entries up to {}, {} quarantine copies, in {:.1} s",
                target.display(),
                r.journal_messages,
                r.applied,
                r.last_entry,
                r.quarantine_copies,
                r.seconds
            )?;
            for (a, b) in &r.gaps {
                writeln!(out, "Warning: journal entries {a}-{b} are missing (changes the old store never appended)")?;
            }
            if r.quarantine_missing > 0 {
                writeln!(
                    out,
                    "Warning: {} quarantined message(s) are not in {} (quarantine retry cannot read them)",
                    r.quarantine_missing, cfg.imap.quarantine_folder
                )?;
            }
            Ok(EXIT_OK)
        }
        // In the daemon or on the open store, not here (`cli::execute`).
        StoreCmd::Reindex { .. } => Ok(EXIT_USAGE),
        StoreCmd::Verify { json } => {
            let live = open(&cfg, &keys, &cfg.store_path)?;
            let scratch = cfg.store_path.join(format!("verify-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&scratch);
            let mut s = crate::intake::connect(&cfg).await?;
            let r = crate::journal::rebuild::verify(&mut s, &cfg, &keys, &live, &scratch).await;
            let _ = s.logout().await;
            // sled lets go of the scratch store a moment after its drop.
            std::thread::sleep(std::time::Duration::from_millis(200));
            let _ = std::fs::remove_dir_all(&scratch);
            let r = r?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(
                    out,
                    "{} record(s), {} still queued for the journal, {} message(s) in the folders, {} journal message(s)",
                    r.records, r.pending, r.folder_messages, r.journal_messages
                )?;
                for d in &r.differences {
                    writeln!(out, "{:<12} {}", d.kind, super::term::escape(&d.what))?;
                }
                writeln!(out, "{}", if r.differences.is_empty() { "OK" } else { "DIFFERENCES FOUND" })?;
            }
            Ok(if r.differences.is_empty() { EXIT_OK } else { EXIT_FAIL })
        }
    }
}

fn open(cfg: &Config, keys: &crate::openpgp::IntakeKeys, dir: &Path) -> Result<Store> {
    match crate::atrest::try_open_at(cfg, dir, Some(keys)) {
        Ok(s) => Ok(s),
        Err(OpenError::Locked(p)) => Err(usage(format!(
            "the store {} is in use (is `secintake run` up?): stop the daemon first, or rebuild with --into DIR",
            p.display()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Makes `target` ready for a rebuild: with `--into`, a folder holding no store; the
/// live store's folder may hold one, which is moved aside (never removed). Returns
/// where it went.
fn prepare_target(
    cfg: &Config,
    keys: &crate::openpgp::IntakeKeys,
    target: &Path,
    into: bool,
) -> Result<Option<PathBuf>> {
    let db = target.join("db");
    if !db.exists() {
        return Ok(None);
    }
    if into {
        return Err(usage(format!("{} already holds a store; --into takes a new folder", target.display())));
    }
    // A store its key does not open (the key lost with the machine) is moved aside too.
    let has = match crate::atrest::try_open_at(cfg, target, Some(keys)) {
        Ok(s) => s.has_records()?,
        Err(OpenError::Locked(p)) => {
            return Err(usage(format!(
                "the store {} is in use (is `secintake run` up?): stop the daemon first, or rebuild with --into DIR",
                p.display()
            )));
        }
        Err(_) => true,
    };
    // sled lets go of its lock a moment after the drop.
    std::thread::sleep(std::time::Duration::from_millis(200));
    if !has {
        return Ok(None);
    }
    let aside = target.join(format!("before-rebuild-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    std::fs::create_dir_all(&aside).with_context(|| format!("Creating {}", aside.display()))?;
    for name in ["db", "texts", crate::atrest::WRAPPED_FILE] {
        let from = target.join(name);
        if from.exists() {
            std::fs::rename(&from, aside.join(name))
                .with_context(|| format!("Moving {} to {}", from.display(), aside.display()))?;
        }
    }
    Ok(Some(aside))
}
