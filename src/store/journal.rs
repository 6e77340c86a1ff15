//! The journal queue: which records each commit changed, kept until the daemon has
//! appended them to the IMAP journal folder (`imap.journal_folder`), and applying a
//! journal read back from that folder to an empty store (`store rebuild`).
//!
//! An entry is one commit (or one group commit): its sequence number and the keys it
//! wrote or removed. It is written by [`Store::queue_journal`] in the same sled batch as
//! the change itself, so a change is never durable without its entry, nor an entry
//! without its change. An entry is typed by the family of each key it names (the key's
//! prefix, `case`, `log`, `mail`, `out`, ...): every family is journaled unless it is
//! named in [`LOCAL`], so a family added later is in the journal without a line of code,
//! and a family whose records the journal must not carry adds one line there.
//!
//! Keys:
//! - `jq/<seq:020>` -> JSON [`Queued`]: the entry, until its journal message is appended
//! - `meta/journal-seq` -> the last sequence number given (8 bytes, big endian)
//! - `meta/journal-appended` -> the last sequence number appended (8 bytes, big endian)
//! - `meta/journal-appended-at` -> when (RFC 3339 text)
//! - `meta/store-id` -> the journal's name for this store (kept by a rebuild)
//!
//! A journal message carries the values the keys of its entries hold when it is made
//! (read under the write lock, so one message is one consistent state of the store),
//! not the values each commit wrote: a key changed by five commits is carried once.
//! Texts travel as texts (their `text/` entries name local segment files). Replaying the
//! messages in sequence order gives the store's records; see ARCHITECTURE's "Journal
//! format" for the document inside a message. Never a change without its entry, never
//! an entry removed before its message is on the server, never a local-only family
//! (crash counters, the queue itself, index markers) in the journal.

use anyhow::{Context, Result, bail};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::texts::text_path;
use super::{Store, prefix_end};
use crate::case::ts;

/// The families that stay on this machine: everything else is journaled. A family
/// whose records must not reach the journal adds its prefix here, with the reason.
#[rustfmt::skip]
pub const LOCAL: &[&str] = &[
    // Crash-loop counters of this machine's attempts at a UID.
    "attempt/",
    // The journal queue itself.
    "jq/",
    // Index markers, the journal's own counters, the store's derived keys.
    "meta/",
    // A quarantined message's bytes: they are the quarantine folder's copy (a rebuild
    // takes them from there, by SHA-256).
    "qraw/",
    // The search index and its queue: made from the cases and texts, keyed by this
    // store's own index key (`meta/key/`), rebuilt at open when its marker is missing,
    // as after a rebuild.
    "sdoc/",
    "spost/",
    "squeue/",
];

/// The format version written in every journal message; a later version still reads
/// every earlier one (`store rebuild` refuses a newer one, naming it).
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of a journal document.
pub const FORMAT_NAME: &str = "secintake-journal";

/// At most this many entries in one journal message: bounds the message, the reads
/// under the write lock, and what a rebuild holds at once (after an outage, the queue
/// goes out in several messages).
pub const PAGE_ENTRIES: usize = 2048;
/// A journal message stops taking entries past this many bytes of values.
pub const PAGE_BYTES: usize = 16 << 20;

/// One queued entry: a commit's sequence number, when, and the keys it changed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Queued {
    pub seq: u64,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    /// The keys written or removed, base64 (keys may hold NUL bytes).
    pub keys: Vec<String>,
}

/// The document inside a journal message (version 1).
#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub format: String,
    pub version: u32,
    /// The store that wrote it ([`Store::store_id`]).
    pub store: String,
    pub first: u64,
    pub last: u64,
    #[serde(with = "ts")]
    pub written_at: DateTime<Utc>,
    /// The entries, in sequence order; each names its changes by index.
    pub entries: Vec<DocEntry>,
    /// The values the entries' keys held when the message was made, each key once.
    pub changes: Vec<Change>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DocEntry {
    pub seq: u64,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    /// Indexes into [`Document::changes`].
    pub changes: Vec<usize>,
}

/// A key's state: its family, the key, and its value (None: removed) or, for a
/// `text/` key, the text itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    pub kind: String,
    /// The key, base64.
    pub k: String,
    /// The value, base64 (when it is not UTF-8); absent, with `s`, when the key was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
    /// The value as text, when it is UTF-8 (most are JSON): compresses far better than
    /// base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// For `text/` keys: the text's bytes, base64 (when not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// For `text/` keys: the text, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

/// Bytes as (base64, text): text when they are UTF-8.
fn encode(bytes: Vec<u8>) -> (Option<String>, Option<String>) {
    match String::from_utf8(bytes) {
        Ok(s) => (None, Some(s)),
        Err(e) => (Some(b64().encode(e.into_bytes())), None),
    }
}

/// The bytes a change's (base64, text) pair holds; None: removed.
fn decode(b: &Option<String>, s: &Option<String>) -> Result<Option<Vec<u8>>> {
    match (b, s) {
        (_, Some(s)) => Ok(Some(s.clone().into_bytes())),
        (Some(b), None) => Ok(Some(b64().decode(b).context("Decoding a journal value")?)),
        (None, None) => Ok(None),
    }
}

/// One journal message to append, and what to remove once it is on the server.
pub struct Page {
    pub first: u64,
    pub last: u64,
    pub entries: usize,
    /// The JSON [`Document`].
    pub document: Vec<u8>,
}

/// What [`Store::journal_lag`] tells `status`.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    /// Entries not yet appended.
    pub pending: usize,
    /// When the oldest of them was committed.
    #[serde(with = "ts::opt")]
    pub oldest: Option<DateTime<Utc>>,
    /// The last sequence number appended.
    pub appended: u64,
    /// When the last journal message was appended.
    #[serde(with = "ts::opt")]
    pub appended_at: Option<DateTime<Utc>>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Whether the key belongs to a journaled family.
pub fn journaled(key: &[u8]) -> bool {
    !LOCAL.iter().any(|p| key.starts_with(p.as_bytes()))
}

/// The family of a key: its prefix without the `/`.
pub fn kind(key: &[u8]) -> String {
    let end = key.iter().position(|&b| b == b'/').unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}

fn queue_key(seq: u64) -> Vec<u8> {
    format!("jq/{seq:020}").into_bytes()
}

const SEQ_KEY: &[u8] = b"meta/journal-seq";
const APPENDED_KEY: &[u8] = b"meta/journal-appended";
const APPENDED_AT_KEY: &[u8] = b"meta/journal-appended-at";
pub(super) const STORE_ID_KEY: &[u8] = b"meta/store-id";
const SNAPSHOT_KEY: &[u8] = b"meta/journal-snapshot";
/// Keys per entry when a store made before the journal is queued whole.
const SNAPSHOT_KEYS: usize = 1000;

fn u64_of(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok()).map(u64::from_be_bytes).unwrap_or(0)
}

/// The journal's state in a [`Store`]: the next sequence number, and a wake-up for the
/// task that appends.
#[derive(Default)]
pub(super) struct JournalState {
    seq: std::sync::atomic::AtomicU64,
    /// Notified when an entry is queued (the journal task waits on it).
    pub(super) queued: tokio::sync::Notify,
}

impl JournalState {
    pub(super) fn load(db: &super::atrest::Disk) -> Result<JournalState> {
        let seq = u64_of(db.get(SEQ_KEY)?);
        if db.get(STORE_ID_KEY)?.is_none() {
            use sha2::Digest;
            let seed = format!("{:?}{}{:?}", Utc::now(), std::process::id(), std::thread::current().id());
            let id = hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..12]);
            db.insert(STORE_ID_KEY, id.as_bytes())?;
        }
        Ok(JournalState { seq: seq.into(), queued: tokio::sync::Notify::new() })
    }
}

impl Store {
    /// Adds the journal entry of a commit whose writes are `ops` to the same sled batch
    /// (`b`): nothing when it changes only local families. Called by the commit with the
    /// write lock held, so sequence numbers follow the order of commits.
    pub(super) fn queue_journal(
        &self,
        ops: &[(Vec<u8>, Option<sled::IVec>)],
        b: &mut super::atrest::DiskBatch,
    ) -> bool {
        let keys: Vec<String> = ops.iter().filter(|(k, _)| journaled(k)).map(|(k, _)| b64().encode(k)).collect();
        if keys.is_empty() {
            return false;
        }
        let seq = self.journal.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let q = Queued { seq, at: Utc::now(), keys };
        // Our own plain struct: serialising cannot fail.
        b.insert(queue_key(seq), serde_json::to_vec(&q).unwrap_or_default());
        b.insert(SEQ_KEY, seq.to_be_bytes());
        true
    }

    /// Wakes the journal task (after a commit that queued an entry is durable).
    pub(super) fn journal_queued(&self) {
        self.journal.queued.notify_one();
    }

    /// Wakes the journal task to look at the queue now (`run --once` ending).
    pub fn journal_kick(&self) {
        self.journal.queued.notify_one();
    }

    /// Waits until an entry is queued (or one was queued since the last wait).
    pub async fn journal_wait(&self) {
        self.journal.queued.notified().await
    }

    /// The journal's name for this store.
    pub fn store_id(&self) -> Result<String> {
        Ok(self.db.get(STORE_ID_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default())
    }

    /// How far the journal on the server is behind the store.
    pub fn journal_lag(&self) -> Result<Lag> {
        let (mut pending, mut oldest) = (0, None);
        self.scan_prefix("jq/", |_, v| {
            if pending == 0 {
                oldest = serde_json::from_slice::<Queued>(v).ok().map(|q| q.at);
            }
            pending += 1;
            Ok(true)
        })?;
        let appended = u64_of(self.db.get(APPENDED_KEY)?);
        let appended_at = self
            .db
            .get(APPENDED_AT_KEY)?
            .and_then(|v| DateTime::parse_from_rfc3339(&String::from_utf8_lossy(&v)).ok())
            .map(|d| d.with_timezone(&Utc));
        Ok(Lag { pending, oldest, appended, appended_at })
    }

    /// The keys of the entries not yet appended (for `store verify`: a difference there
    /// is the journal's lag, not a loss).
    pub fn journal_pending_keys(&self) -> Result<std::collections::BTreeSet<Vec<u8>>> {
        let mut keys = std::collections::BTreeSet::new();
        self.each_json("jq/", |q: Queued| {
            for k in q.keys {
                keys.insert(b64().decode(k).context("Decoding a journal queue key")?);
            }
            Ok(())
        })?;
        Ok(keys)
    }

    /// The next journal message: the oldest queued entries (at most [`PAGE_ENTRIES`], and
    /// [`PAGE_BYTES`] of values) with the values their keys hold now, read between
    /// commits (one consistent, durable state; not under the write lock, which a group
    /// holds while it decides: intake's append of one batch would wait for the next
    /// batch's whole recording). None when nothing is queued.
    pub fn journal_page(&self) -> Result<Option<Page>> {
        let _between = self.applying.read().unwrap_or_else(|e| e.into_inner());
        let mut queued = Vec::new();
        let mut bytes = 0usize;
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut changes: Vec<Change> = Vec::new();
        let mut entries = Vec::new();
        self.scan(b"jq/", &prefix_end("jq/"), |_, v| {
            let q: Queued = serde_json::from_slice(v).context("Decoding a journal queue entry")?;
            let mut mine = Vec::with_capacity(q.keys.len());
            for k64 in &q.keys {
                let key = b64().decode(k64).context("Decoding a journal queue key")?;
                if let Some(&i) = index.get(&key) {
                    mine.push(i);
                    continue;
                }
                let change = self.change_of(&key)?;
                bytes += [&change.v, &change.s, &change.text, &change.t]
                    .iter()
                    .filter_map(|x| x.as_ref())
                    .map(|x| x.len())
                    .sum::<usize>();
                index.insert(key, changes.len());
                mine.push(changes.len());
                changes.push(change);
            }
            entries.push(DocEntry { seq: q.seq, at: q.at, changes: mine });
            queued.push(q.seq);
            Ok(queued.len() < PAGE_ENTRIES && bytes < PAGE_BYTES)
        })?;
        let (Some(&first), Some(&last)) = (queued.first(), queued.last()) else { return Ok(None) };
        let doc = Document {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            store: self.store_id()?,
            first,
            last,
            written_at: Utc::now(),
            entries,
            changes,
        };
        Ok(Some(Page { first, last, entries: queued.len(), document: serde_json::to_vec(&doc)? }))
    }

    /// A key's state now, as a journal change.
    fn change_of(&self, key: &[u8]) -> Result<Change> {
        let kind = kind(key);
        let k = b64().encode(key);
        if kind == "text" {
            let rel = format!("{}.txt", String::from_utf8_lossy(&key[b"text/".len()..]));
            let (text, t) = self.text(&rel)?.map(encode).unwrap_or_default();
            return Ok(Change { kind, k, v: None, s: None, text, t });
        }
        let (v, s) = self.get(key)?.map(|v| encode(v.to_vec())).unwrap_or_default();
        Ok(Change { kind, k, v, s, text: None, t: None })
    }

    /// Records that the page's message is on the server: its entries leave the queue.
    /// Not under the write lock (a group may hold it for seconds): it touches only the
    /// page's own queue entries, which no commit writes again, and the journal's counters,
    /// which only the one appender (`journal::APPENDING`) writes.
    pub fn journal_appended(&self, page: &Page) -> Result<()> {
        let mut b = super::atrest::DiskBatch::default();
        let mut n = 0;
        self.scan(&queue_key(page.first), &queue_key(page.last + 1), |k, _| {
            b.remove(k);
            n += 1;
            Ok(true)
        })?;
        b.insert(APPENDED_KEY, page.last.to_be_bytes());
        b.insert(APPENDED_AT_KEY, crate::case::rfc3339(&Utc::now()).as_bytes());
        let _applying = self.applying.write().unwrap_or_else(|e| e.into_inner());
        self.db.apply_batch(b).context("Writing to the store")?;
        self.sync()?;
        tracing::debug!(first = page.first, last = page.last, entries = n, "Journal entries appended");
        Ok(())
    }

    /// Applies one journal document read back from the server to this store (a
    /// rebuild): every change as it says, texts into a new segment; no journal entry
    /// is queued for it (it is the journal). Returns the highest sequence number.
    pub fn apply_journal(&self, doc: &Document) -> Result<u64> {
        if doc.format != FORMAT_NAME {
            bail!("not a secintake journal document (format {:?})", doc.format);
        }
        if doc.version > FORMAT_VERSION {
            bail!(
                "journal format version {} is newer than this secintake reads ({FORMAT_VERSION}): upgrade secintake",
                doc.version
            );
        }
        let _tx = self.begin();
        let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
        let mut b = super::atrest::DiskBatch::default();
        for c in &doc.changes {
            let key = b64().decode(&c.k).context("Decoding a journal key")?;
            if !journaled(&key) {
                continue; // never ours to take from the journal
            }
            if c.kind == "text" {
                if let Some(t) = decode(&c.text, &c.t)? {
                    texts.push((text_path_of(&key)?, t));
                }
                continue;
            }
            match decode(&c.v, &c.s)? {
                Some(v) => b.insert(key, v),
                None => b.remove(key),
            }
        }
        for (k, v) in self.write_texts(texts.iter().map(|(r, t)| (r.as_str(), t.as_slice())))? {
            b.insert(k, v);
        }
        let seq = self.journal.seq.load(std::sync::atomic::Ordering::SeqCst).max(doc.last);
        self.journal.seq.store(seq, std::sync::atomic::Ordering::SeqCst);
        b.insert(SEQ_KEY, seq.to_be_bytes());
        b.insert(APPENDED_KEY, seq.to_be_bytes());
        b.insert(STORE_ID_KEY, doc.store.as_bytes());
        b.insert(SNAPSHOT_KEY, &[][..]);
        self.db.apply_batch(b).context("Writing to the store")?;
        Ok(seq)
    }

    /// Whether the store holds any record of a journaled family.
    pub fn has_records(&self) -> Result<bool> {
        let mut found = false;
        self.db.each_key(|k| {
            found = journaled(k);
            Ok(!found)
        })?;
        Ok(found)
    }

    /// Puts back a quarantined message's copy (from the quarantine folder, in a
    /// rebuild): a local record, so no journal entry.
    pub fn restore_quarantine_copy(&self, qid: &str, raw: &[u8]) -> Result<()> {
        let _tx = self.begin();
        self.db.insert(format!("qraw/{qid}").as_bytes(), raw).context("Writing to the store")?;
        Ok(())
    }

    /// A store made before the journal: its records are queued once, as entries of at
    /// most [`SNAPSHOT_KEYS`] keys, so the journal holds them too (`meta/journal-snapshot`
    /// says it was done; a new store has nothing to queue).
    pub(super) fn snapshot_journal(&self) -> Result<()> {
        if self.db.get(SNAPSHOT_KEY)?.is_some() {
            return Ok(());
        }
        let _tx = self.begin();
        let mut b = super::atrest::DiskBatch::default();
        let mut keys = Vec::new();
        let mut queued = 0;
        let mut flush = |keys: &mut Vec<String>, b: &mut super::atrest::DiskBatch| {
            if keys.is_empty() {
                return;
            }
            let seq = self.journal.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let q = Queued { seq, at: Utc::now(), keys: std::mem::take(keys) };
            b.insert(queue_key(seq), serde_json::to_vec(&q).unwrap_or_default());
            b.insert(SEQ_KEY, seq.to_be_bytes());
            queued += 1;
        };
        let mut all = Vec::new();
        self.db.each_key(|k| {
            if journaled(k) {
                all.push(k.to_vec());
            }
            Ok(true)
        })?;
        all.sort();
        for k in all {
            keys.push(b64().encode(&k));
            if keys.len() >= SNAPSHOT_KEYS {
                flush(&mut keys, &mut b);
            }
        }
        flush(&mut keys, &mut b);
        b.insert(SNAPSHOT_KEY, &[][..]);
        self.db.apply_batch(b).context("Writing to the store")?;
        self.sync()?;
        if queued > 0 {
            tracing::info!(entries = queued, "Queued the store's records for the journal (a store made before it)");
        }
        Ok(())
    }

    /// Every (key, value) of the journaled families, texts as their bytes under their
    /// `text/` key: what `store verify` compares. `f` gets them in key order.
    pub fn each_journaled(&self, mut f: impl FnMut(&[u8], Option<Vec<u8>>) -> Result<()>) -> Result<()> {
        let mut all = std::collections::BTreeMap::new();
        self.db.each(|k, v| {
            if journaled(k) {
                all.insert(k.to_vec(), v.to_vec());
            }
            Ok(())
        })?;
        for (k, v) in all {
            if k.starts_with(b"text/") {
                let rel = text_path_of(&k)?;
                f(&k, self.text(&rel)?)?;
            } else {
                f(&k, Some(v))?;
            }
        }
        Ok(())
    }
}

/// The text name of a `text/<case>/<n>` key.
fn text_path_of(key: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(&key[b"text/".len()..]).context("a text key that is not UTF-8")?;
    let (case, n) = s.rsplit_once('/').context("a text key without its number")?;
    let n: usize = n.parse().context("a text key with a bad number")?;
    if case.is_empty() || case.contains(['/', '.', '\0']) {
        bail!("a text key naming no case");
    }
    Ok(text_path(case, n))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::fixtures::{out, reopen};
    use super::super::{Batch, OutStatus};
    use super::*;

    fn doc(page: &Page) -> Document {
        serde_json::from_slice(&page.document).unwrap()
    }

    /// Each commit that changes a journaled family queues one entry in the same batch;
    /// local families queue none; a group is one entry; the page carries each key's
    /// current value once; once appended the queue is empty and the numbers survive a
    /// reopen.
    #[test]
    fn commits_queue_entries_and_pages_carry_current_values() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        {
            let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
            s.count_attempts(&[("INBOX", 1, 5)]).unwrap();
            assert_eq!(s.journal_lag().unwrap().pending, 0, "attempts are local");
            let mut b = Batch::default();
            b.put_out(&out("m1", "r@x.org", now), Some(b"bytes"));
            b.put_text("SEC-2026-0001", 0, "the report");
            s.write(|tx| tx.commit(b)).unwrap();
            s.write(|tx| {
                tx.group(|| {
                    for i in 0..3 {
                        let mut b = Batch::default();
                        b.put_seq("SEC-2026", i);
                        tx.commit(b).unwrap();
                    }
                })
            })
            .unwrap();
            let mut o = out("m1", "r@x.org", now);
            o.status = OutStatus::Sent;
            let mut b = Batch::default();
            b.put_out(&o, None);
            s.write(|tx| tx.commit(b)).unwrap();
            let lag = s.journal_lag().unwrap();
            assert_eq!(lag.pending, 3, "one entry per commit, one for the group");
            let page = s.journal_page().unwrap().unwrap();
            assert_eq!((page.first, page.last, page.entries), (1, 3, 3));
            let d = doc(&page);
            let find = |k: &str| d.changes.iter().find(|c| c.k == b64().encode(k)).unwrap();
            let sent: super::super::OutMail = serde_json::from_str(find("out/m1").s.as_ref().unwrap()).unwrap();
            assert_eq!(sent.status, OutStatus::Sent, "the value now, not the first commit's");
            assert_eq!((&find("outq/m1").v, &find("outq/m1").s), (&None, &None), "a removal");
            assert_eq!(find("text/SEC-2026-0001/000000").t.as_deref(), Some("the report"));
            assert_eq!(d.changes.iter().filter(|c| c.k == b64().encode("out/m1")).count(), 1, "each key once");
            assert_eq!(d.entries[1].changes.len(), 1, "the group wrote one key");
            s.journal_appended(&page).unwrap();
            assert_eq!(s.journal_lag().unwrap().pending, 0);
            assert!(s.journal_page().unwrap().is_none());
        }
        let s = reopen(dir.path());
        let lag = s.journal_lag().unwrap();
        assert_eq!(lag.appended, 3);
        assert!(lag.appended_at.is_some());
        let mut b = Batch::default();
        b.put_seq("SEC-2026", 9);
        s.write(|tx| tx.commit(b)).unwrap();
        assert_eq!(s.journal_page().unwrap().unwrap().first, 4, "numbers go on after a reopen");
    }

    /// A store rebuilt from its journal holds the same journaled records and texts, and
    /// queues nothing for what it applied.
    #[test]
    fn a_journal_applied_to_an_empty_store_gives_the_same_records() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let now = Utc::now();
        let s = Store::open(a.path(), &crate::store::fixtures::key()).unwrap();
        for i in 0..5 {
            let mut bt = Batch::default();
            bt.put_out(&out(&format!("m{i}"), "r@x.org", now), Some(b"bytes"));
            bt.put_text(&format!("SEC-2026-000{i}"), 0, &format!("text {i}"));
            bt.put_seq("SEC-2026", i);
            // Not UTF-8: travels as base64.
            bt.put_uidvalidity("INBOX", 0xFFFF_FF00 + i as u32);
            s.write(|tx| tx.commit(bt)).unwrap();
        }
        let mut docs = Vec::new();
        while let Some(p) = s.journal_page().unwrap() {
            s.journal_appended(&p).unwrap();
            docs.push(doc(&p));
        }
        let r = Store::open(b.path(), &crate::store::fixtures::key()).unwrap();
        for d in &docs {
            r.apply_journal(d).unwrap();
        }
        r.sync().unwrap();
        let dump = |s: &Store| {
            let mut v = Vec::new();
            s.each_journaled(|k, val| {
                v.push((k.to_vec(), val));
                Ok(())
            })
            .unwrap();
            v
        };
        assert_eq!(dump(&s), dump(&r));
        assert_eq!(r.journal_lag().unwrap().pending, 0);
        assert_eq!(r.store_id().unwrap(), s.store_id().unwrap());
        let mut bt = Batch::default();
        bt.put_seq("SEC-2026", 10);
        r.write(|tx| tx.commit(bt)).unwrap();
        assert_eq!(r.journal_page().unwrap().unwrap().first, 6, "the rebuilt store goes on with the sequence");
    }

    #[test]
    fn a_newer_format_is_refused_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
        let d = Document {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION + 1,
            store: "x".into(),
            first: 1,
            last: 1,
            written_at: Utc::now(),
            entries: vec![],
            changes: vec![],
        };
        let e = s.apply_journal(&d).unwrap_err().to_string();
        assert!(e.contains("version 2"), "{e}");
    }

    #[test]
    fn text_keys_name_only_case_texts() {
        assert_eq!(text_path_of(b"text/SEC-2026-0001/000002").unwrap(), "SEC-2026-0001/000002.txt");
        assert!(text_path_of(b"text/../000002").is_err());
        assert!(text_path_of(b"text/a/b/x").is_err());
    }
}
