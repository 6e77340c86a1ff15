//! The journal on the IMAP server: what the store's journal queue holds (every change
//! the mailbox does not hold, `store::journal`) goes to `imap.journal_folder` as OpenPGP
//! messages, encrypted to the intake key(s) and signed by the intake key, one APPEND per
//! group of entries; and reading it back (`store rebuild`, `store verify`).
//!
//! Appending is done by intake before it moves a batch (so a message is never in the
//! processed or quarantine folder while the record of what became of it is only on this
//! machine) and by the journal task for everything else (team commands, outbox results,
//! the SLA clock), each holding [`APPENDING`]. An entry leaves the queue only after the
//! server said OK to its APPEND; a crash in between appends it again, which a rebuild
//! applies once (by sequence number). An IMAP outage delays the journal, never loses it.
//! Never a journal message in clear, never one we did not sign accepted.

pub mod rebuild;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use futures::TryStreamExt;

use crate::config::Config;
use crate::intake::ImapSession;
use crate::openpgp::{Decryption, IntakeKeys, Verdict};
use crate::store::Store;
use crate::store::journal::{Document, Page};

/// One appender at a time in the process (intake's session and the journal task's):
/// the same entries are not appended twice by two sessions racing.
static APPENDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An APPEND or a FETCH of the journal that takes longer than this is a failure (the
/// entries stay queued). A page is at most 16 MiB of values: seconds on a slow link.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A journal message's plaintext is at most this large when read back (a page is at
/// most `PAGE_BYTES` of values plus its keys, base64).
const MAX_DOCUMENT: u64 = 256 << 20;

/// The header that says, in clear, which entries a journal message holds (numbers
/// only): a rebuild orders the messages by it before it fetches their bodies.
pub const HEADER: &str = "X-Secintake-Journal";

async fn timed<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(COMMAND_TIMEOUT, f).await.map_err(|_| anyhow!("IMAP {what} timed out"))?
}

/// Appends every queued journal entry to `imap.journal_folder` (created when missing),
/// a page per message; returns how many entries went out.
pub async fn append_pending(s: &mut ImapSession, store: &Store, keys: &Arc<IntakeKeys>, cfg: &Config) -> Result<usize> {
    let _one = APPENDING.lock().await;
    let mut sent = 0;
    let mut ensured = false;
    loop {
        let started = std::time::Instant::now();
        let st = store.clone();
        let Some(page) = tokio::task::spawn_blocking(move || st.journal_page()).await.context("journal page")?? else {
            return Ok(sent);
        };
        let read = started.elapsed();
        let message = {
            let keys = keys.clone();
            let from = cfg.intake.address.clone();
            let store_id = store.store_id()?;
            tokio::task::spawn_blocking(move || seal(&page, &keys, &from, &store_id).map(|m| (m, page)))
                .await
                .context("journal seal")??
        };
        let (message, page) = message;
        let sealed = started.elapsed();
        let folder = &cfg.imap.journal_folder;
        let first = timed("APPEND", async { Ok(s.append(folder, Some("(\\Seen)"), None, &message).await?) }).await;
        if let Err(e) = first {
            if ensured {
                return Err(e.context(format!("Appending the journal to {folder} (imap.journal_folder)")));
            }
            // Most likely the folder is missing (the first append on a new server).
            ensured = true;
            crate::intake::ensure_folder(s, folder).await?;
            timed("APPEND", async { Ok(s.append(folder, Some("(\\Seen)"), None, &message).await?) })
                .await
                .with_context(|| format!("Appending the journal to {folder} (imap.journal_folder)"))?;
        }
        let appended = started.elapsed();
        let st = store.clone();
        let (first, last, n) = (page.first, page.last, page.entries);
        tokio::task::spawn_blocking(move || st.journal_appended(&page)).await.context("journal appended")??;
        // The time is the journal's whole cost for the page: reading it under the
        // lock, sealing, the APPEND, the commit (the benchmark sums it).
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        tracing::info!(
            first,
            last,
            entries = n,
            bytes = message.len(),
            ms = %ms(started.elapsed()),
            read_ms = %ms(read),
            seal_ms = %ms(sealed - read),
            append_ms = %ms(appended - sealed),
            "Journal appended"
        );
        sent += n;
    }
}

/// The RFC 5322 message carrying a page: its document encrypted to every intake key
/// and signed by the current one. The header says only numbers and the store's id.
fn seal(page: &Page, keys: &IntakeKeys, from: &str, store_id: &str) -> Result<Vec<u8>> {
    let recipients: Vec<_> = keys.certs().iter().map(|c| c.clone().strip_secret_key_material()).collect();
    let armored = keys.encrypt_and_sign_compressed(&page.document, &recipients, SystemTime::now())?;
    let now = Utc::now();
    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\nTo: {from}\r\n"));
    m.push_str(&format!("Date: {}\r\n", now.to_rfc2822()));
    m.push_str(&format!("Subject: secintake journal {}-{}\r\n", page.first, page.last));
    m.push_str(&format!(
        "Message-ID: <journal.{store_id}.{}-{}.{}@secintake>\r\n",
        page.first,
        page.last,
        now.timestamp_millis()
    ));
    m.push_str(&format!(
        "{HEADER}: version={}; store={store_id}; first={}; last={}; entries={}\r\n",
        crate::store::journal::FORMAT_VERSION,
        page.first,
        page.last,
        page.entries
    ));
    m.push_str("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    m.push_str("Content-Type: application/pgp-encrypted\r\nContent-Transfer-Encoding: 7bit\r\n\r\n");
    let mut out = m.into_bytes();
    for line in armored.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// Opens one journal message: decrypted with an intake key, signed by one, a
/// document of a version we read.
pub fn open(message: &[u8], keys: &IntakeKeys) -> Result<Document> {
    let body = crate::mime::body_of(message);
    let signers: Vec<_> = keys.certs().iter().map(|c| c.clone().strip_secret_key_material()).collect();
    match keys.decrypt(body, &signers, MAX_DOCUMENT, SystemTime::now()) {
        Decryption::Ok { plaintext, signatures, .. } => {
            let ours: Vec<String> = keys.certs().iter().map(|c| c.fingerprint().to_hex()).collect();
            let by_us = signatures
                .0
                .iter()
                .any(|v| v.verdict == Verdict::Good && v.signer.as_ref().is_some_and(|s| ours.iter().any(|o| o == s)));
            if !by_us || signatures.any(Verdict::Bad) {
                bail!("not signed by the intake key (verdict {})", signatures.verdict().as_str());
            }
            serde_json::from_slice(&plaintext).context("not a journal document")
        }
        Decryption::NoKey { .. } => bail!("encrypted to no intake key we hold"),
        Decryption::TooLarge => bail!("over {MAX_DOCUMENT} bytes"),
        Decryption::Failed(e) | Decryption::Malformed(e) => bail!("cannot be decrypted: {e}"),
    }
}

/// The entry numbers a journal message's header names: (first, last).
fn header_range(header: &[u8]) -> Option<(u64, u64)> {
    let text = String::from_utf8_lossy(header);
    let value = text.split_once(':')?.1;
    let field = |name: &str| {
        value.split(';').find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('=')?.trim().parse::<u64>().ok())
    };
    Some((field("first")?, field("last")?))
}

/// The journal folder's messages as (uid, first, last), in the order they are applied:
/// by last entry number, then by UID (a message appended twice after a crash applies
/// once). Messages without our header are listed with (0, 0), first.
pub async fn list(s: &mut ImapSession, folder: &str) -> Result<Vec<(u32, u64, u64)>> {
    let names: Vec<_> = timed("LIST", async { Ok(s.list(Some(""), Some(folder)).await?.try_collect().await?) }).await?;
    if !names.iter().any(|n: &async_imap::types::Name| n.name() == folder) {
        return Ok(Vec::new());
    }
    timed("EXAMINE", async { Ok(s.examine(folder).await?) }).await?;
    let query = format!("(UID BODY.PEEK[HEADER.FIELDS ({HEADER})])");
    let fetched: Vec<_> =
        timed("UID FETCH", async { Ok(s.uid_fetch("1:*", &query).await?.try_collect::<Vec<_>>().await?) }).await?;
    let mut v: Vec<(u32, u64, u64)> = fetched
        .iter()
        .filter_map(|f| {
            let uid = f.uid?;
            let (first, last) = f.header().and_then(header_range).unwrap_or((0, 0));
            Some((uid, first, last))
        })
        .collect();
    v.sort_by_key(|&(uid, _, last)| (last, uid));
    Ok(v)
}

/// Fetches the bodies of `uids` (of the folder selected by [`list`]), in that order.
pub async fn fetch(s: &mut ImapSession, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = uids.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
    let fetched: Vec<_> =
        timed("UID FETCH", async { Ok(s.uid_fetch(&set, "(UID BODY.PEEK[])").await?.try_collect::<Vec<_>>().await?) })
            .await?;
    let mut bodies: std::collections::HashMap<u32, Vec<u8>> =
        fetched.iter().filter_map(|f| Some((f.uid?, f.body()?.to_vec()))).collect();
    Ok(uids.iter().filter_map(|u| Some((*u, bodies.remove(u)?))).collect())
}

/// The daemon's journal task: appends what is queued, over its own IMAP session, then
/// waits for a commit that queues an entry (or 30 s, or a stop). An IMAP outage is
/// waited out (2 s, doubling to 60 s); the entries stay queued. With `drain` set it
/// returns after the queue is empty once (`run --once`).
pub async fn task(
    shared: crate::service::Shared,
    mut stop: tokio::sync::watch::Receiver<bool>,
    drain: Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    let mut session: Option<ImapSession> = None;
    let mut down: Option<Duration> = None;
    loop {
        let draining = drain.load(Ordering::SeqCst);
        let pending = shared.store.journal_lag().map(|l| l.pending).unwrap_or(0);
        if pending > 0 {
            let pipeline = shared.pipeline();
            let cfg = pipeline.cfg.clone();
            let r = async {
                if session.is_none() {
                    session = Some(crate::intake::connect(&cfg).await?);
                }
                let s = session.as_mut().ok_or_else(|| anyhow!("no IMAP session"))?;
                append_pending(s, &shared.store, &pipeline.keys, &cfg).await
            };
            let r = tokio::select! {
                r = r => Some(r),
                _ = stop.changed() => None,
            };
            match r {
                None => return Ok(()),
                Some(Ok(_)) => {
                    down = None;
                    shared.set_error("journal", None);
                }
                Some(Err(e)) => {
                    if crate::store::is_io_failure(&e) {
                        return Err(e);
                    }
                    session = None;
                    if draining {
                        return Err(e.context("Appending the journal"));
                    }
                    let wait = down.map_or(Duration::from_secs(2), |w| (w * 2).min(Duration::from_secs(60)));
                    down = Some(wait);
                    tracing::warn!(error = %format!("{e:#}"), retry_in = ?wait, "Journal append failed; the entries stay queued");
                    shared.set_error("journal", Some(format!("{e:#}")));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                    continue;
                }
            }
        }
        if draining || *stop.borrow() {
            if let Some(mut s) = session.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
            }
            return Ok(());
        }
        tokio::select! {
            _ = shared.store.journal_wait() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_range() {
        assert_eq!(
            header_range(b"X-Secintake-Journal: version=1; store=ab; first=3; last=9; entries=7\r\n"),
            Some((3, 9))
        );
        assert_eq!(header_range(b"X-Secintake-Journal: version=1\r\n"), None);
        assert_eq!(header_range(b""), None);
    }
}
