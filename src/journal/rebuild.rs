//! `store rebuild` and `store verify`: a store made from the mailbox alone (the journal
//! folder's messages applied in sequence order, the quarantine folder's copies of
//! quarantined messages), and the comparison of a live store with what the mailbox says.
//!
//! Reads the server only (EXAMINE, FETCH with PEEK): never moves, flags or deletes a
//! message. A journal message that does not open (not ours, not signed by the intake
//! key, a newer format) stops the rebuild with its UID: a store built around a hole
//! would look complete. Memory: one FETCH chunk of journal messages at a time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::Config;
use crate::intake::ImapSession;
use crate::openpgp::IntakeKeys;
use crate::store::Store;

/// Journal messages fetched per round trip (each at most a page: 16 MiB of values).
const CHUNK: usize = 8;

/// What a rebuild did.
#[derive(Debug, Default, Serialize)]
pub struct Rebuilt {
    /// Journal messages read, and how many of them were applied (the rest repeated
    /// entries already applied: an APPEND retried after a crash).
    pub journal_messages: usize,
    pub applied: usize,
    /// The last entry number applied.
    pub last_entry: u64,
    /// Entry numbers missing from the journal (first, last): changes lost with the
    /// old machine before they were appended.
    pub gaps: Vec<(u64, u64)>,
    /// Quarantined messages whose copy was taken from the quarantine folder, and those
    /// whose copy was not found there.
    pub quarantine_copies: usize,
    pub quarantine_missing: usize,
    pub seconds: f64,
}

/// Applies the journal folder to `store` (empty), then restores the quarantine copies.
pub async fn rebuild(s: &mut ImapSession, cfg: &Config, keys: &Arc<IntakeKeys>, store: &Store) -> Result<Rebuilt> {
    let start = Instant::now();
    let mut out = Rebuilt::default();
    let order = super::list(s, &cfg.imap.journal_folder).await?;
    out.journal_messages = order.len();
    let mut applied_to = 0u64;
    for chunk in order.chunks(CHUNK) {
        let uids: Vec<u32> = chunk.iter().map(|&(u, _, _)| u).collect();
        for (uid, raw) in super::fetch(s, &uids).await? {
            let Some(&(_, first, last)) = chunk.iter().find(|(u, _, _)| *u == uid) else { continue };
            if last != 0 && last <= applied_to {
                continue; // every entry in it was applied already
            }
            let (keys, st) = (keys.clone(), store.clone());
            let (doc_first, doc_last) = tokio::task::spawn_blocking(move || -> Result<(u64, u64)> {
                let doc = super::open(&raw, &keys)
                    .with_context(|| format!("Journal message UID {uid} in {}", "imap.journal_folder"))?;
                // The header (clear, unsigned) only orders the fetches; one that does not
                // say what the signed document says was altered: an old message made to
                // look new would roll records back.
                if (first, last) != (0, 0) && (first, last) != (doc.first, doc.last) {
                    anyhow::bail!(
                        "Journal message UID {uid}: its header says entries {first}-{last}, its signed content {}-{}; not applied",
                        doc.first,
                        doc.last
                    );
                }
                st.apply_journal(&doc)?;
                Ok((doc.first, doc.last))
            })
            .await
            .context("journal apply")??;
            if doc_first > applied_to + 1 {
                out.gaps.push((applied_to + 1, doc_first - 1));
            }
            applied_to = applied_to.max(doc_last);
            out.applied += 1;
        }
    }
    out.last_entry = applied_to;
    store.sync()?;
    let (copies, missing) = restore_quarantine(s, cfg, store).await?;
    out.quarantine_copies = copies;
    out.quarantine_missing = missing;
    store.sync()?;
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Every quarantined message's copy (`quarantine retry` reads it), from the quarantine
/// folder by SHA-256. Returns (restored, not found).
async fn restore_quarantine(s: &mut ImapSession, cfg: &Config, store: &Store) -> Result<(usize, usize)> {
    let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for q in store.quarantined()? {
        if store.quarantine_raw(&q.id)?.is_none() {
            wanted.entry(q.sha256.clone()).or_default().push(q.id.clone());
        }
    }
    if wanted.is_empty() {
        return Ok((0, 0));
    }
    let total: usize = wanted.values().map(|v| v.len()).sum();
    let mut restored = 0;
    each_message(s, &cfg.imap.quarantine_folder, 1, |raw| {
        if let Some(ids) = wanted.remove(&crate::mime::sha256_hex(&raw)) {
            for id in ids {
                store.restore_quarantine_copy(&id, &raw)?;
                restored += 1;
            }
        }
        Ok(())
    })
    .await?;
    Ok((restored, total - restored))
}

/// Calls `f` with every message of `folder` (EXAMINE: read only), `chunk` at a time.
async fn each_message(
    s: &mut ImapSession,
    folder: &str,
    chunk: usize,
    mut f: impl FnMut(Vec<u8>) -> Result<()>,
) -> Result<usize> {
    use futures::TryStreamExt;
    let names: Vec<_> = s.list(Some(""), Some(folder)).await?.try_collect().await?;
    if !names.iter().any(|n: &async_imap::types::Name| n.name() == folder) {
        return Ok(0);
    }
    s.examine(folder).await.with_context(|| format!("Selecting {folder}"))?;
    let mut uids: Vec<u32> = s.uid_search("ALL").await?.into_iter().collect();
    uids.sort_unstable();
    for c in uids.chunks(chunk.max(1)) {
        for (_, raw) in super::fetch(s, c).await? {
            f(raw)?;
        }
    }
    Ok(uids.len())
}

/// One difference `store verify` found.
#[derive(Debug, Serialize, PartialEq)]
pub struct Difference {
    /// `missing` (in the store, not in what the mailbox gives), `extra` (the other way
    /// round), `differs`, `unaccounted` (a message in a folder without a mail record),
    /// `gap` (entries missing from the journal).
    pub kind: &'static str,
    /// The record's key, or the folder and the message's SHA-256.
    pub what: String,
}

/// What `store verify` found.
#[derive(Debug, Default, Serialize)]
pub struct Verified {
    pub records: usize,
    /// Records whose change is still queued (the journal's lag, not a difference).
    pub pending: usize,
    pub folder_messages: usize,
    pub journal_messages: usize,
    pub differences: Vec<Difference>,
}

/// Rebuilds from the mailbox into `scratch` (a new, empty folder) and compares with
/// `live`: every journaled record and text, and every message of the processed and
/// quarantine folders against the mail records.
pub async fn verify(
    s: &mut ImapSession,
    cfg: &Config,
    keys: &Arc<IntakeKeys>,
    live: &Store,
    scratch: &std::path::Path,
) -> Result<Verified> {
    let mut out = Verified::default();
    // A throwaway key: the scratch store is removed after the comparison.
    let rebuilt = Store::open(scratch, &crate::store::StoreKey::generate()?)?;
    let r = rebuild(s, cfg, keys, &rebuilt).await?;
    out.journal_messages = r.journal_messages;
    for (a, b) in &r.gaps {
        out.differences.push(Difference { kind: "gap", what: format!("journal entries {a}-{b}") });
    }
    let pending = live.journal_pending_keys()?;
    let dump = |st: &Store| -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
        let mut m = BTreeMap::new();
        st.each_journaled(|k, v| {
            m.insert(k.to_vec(), v);
            Ok(())
        })?;
        Ok(m)
    };
    let (mine, theirs) = (dump(live)?, dump(&rebuilt)?);
    out.records = mine.len();
    let show = |k: &[u8]| String::from_utf8_lossy(k).replace('\0', "\\0");
    for (k, v) in &mine {
        if pending.contains(k) {
            out.pending += 1;
            continue;
        }
        match theirs.get(k) {
            None => out.differences.push(Difference { kind: "missing", what: show(k) }),
            Some(w) if w != v => out.differences.push(Difference { kind: "differs", what: show(k) }),
            Some(_) => {}
        }
    }
    for k in theirs.keys() {
        if !mine.contains_key(k) && !pending.contains(k) {
            out.differences.push(Difference { kind: "extra", what: show(k) });
        }
    }
    // Every message in the folders handled mail goes to is accounted for.
    let mut hashes: HashSet<String> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    for m in live.mails()? {
        hashes.insert(m.sha256.clone());
        ids.insert(m.message_id.clone());
    }
    for q in live.quarantined()? {
        hashes.insert(q.sha256.clone());
    }
    for folder in [&cfg.imap.processed_folder, &cfg.imap.quarantine_folder] {
        let mut unaccounted = Vec::new();
        out.folder_messages += each_message(s, folder, 64, |raw| {
            let sha = crate::mime::sha256_hex(&raw);
            if hashes.contains(&sha) {
                return Ok(());
            }
            let id = crate::mime::parse(&raw).envelope.message_id;
            if id.as_ref().is_some_and(|i| ids.contains(i)) {
                return Ok(());
            }
            unaccounted.push(format!("{folder}: sha256:{sha}"));
            Ok(())
        })
        .await?;
        out.differences.extend(unaccounted.into_iter().map(|what| Difference { kind: "unaccounted", what }));
    }
    drop(rebuilt);
    Ok(out)
}
