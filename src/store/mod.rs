//! The durable store: the only module that imports sled.
//!
//! One sled tree holds everything under key prefixes, so that a unit of work (a case, its
//! mail record, its (UIDVALIDITY, UID) and hash index entries, and the outgoing mail it
//! causes) is written by one atomic `apply_batch`. [`Store::commit`] then makes it
//! durable: sled's `flush()` only uses `sync_file_range`, which survives a process crash
//! but not a power loss, so every database file and the directory are fsynced after it.
//!
//! Key schema (all values JSON unless noted):
//! - `case/<id>` -> Case
//! - `mail/<message key>` -> MailRecord (message key: Message-ID or `sha256:<hex>`)
//! - `uid/<mailbox>\0<uidvalidity>\0<uid:010>` -> message key
//! - `hash/<sha256 hex>` -> message key
//! - `out/<outbox id>` -> OutMail; `raw/<outbox id>` -> the RFC 5322 bytes
//! - `quar/<qid>` -> QuarantineEntry; `qraw/<qid>` -> the message bytes as received
//! - `cert/<address>` -> armored reporter cert with its source
//! - `log/<case id>/<n:08>` -> LogEntry (append-only audit log)
//! - `rem/<case id>/<reminder key>` -> empty (an SLA reminder sent once)
//! - `qmove/<message key>` -> empty (retried out of quarantine; IMAP copy to move)
//! - `uidv/<mailbox>` -> u32 big endian, the UIDVALIDITY last seen
//! - `seq/<prefix>-<year>` -> u64 big endian, the last case number used

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::case::{Case, KeySource, ts};

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    Case,
    FollowUp,
    Duplicate,
    NonReport,
    Quarantine,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Case => "case",
            Disposition::FollowUp => "follow-up",
            Disposition::Duplicate => "duplicate",
            Disposition::NonReport => "non-report",
            Disposition::Quarantine => "quarantine",
        }
    }
}

/// Every message secintake has seen, as `mail list --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailRecord {
    pub message_id: String,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub from: String,
    pub sha256: String,
    /// SHA-256 of the body: a Message-ID seen again with another body is another
    /// message (extension; absent on records made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    pub disposition: Disposition,
    pub case_id: Option<String>,
    pub quarantine_id: Option<String>,
    pub reason: Option<String>,
}

/// A message that could not be handled, as `quarantine list --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub id: String,
    pub reason: String,
    pub message_id: String,
    pub from: String,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub encrypted: bool,
    pub sha256: String,
    /// Human detail for `quarantine show` (never decrypted content).
    #[serde(default)]
    pub detail: String,
}

/// Where an outgoing mail stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutStatus {
    Queued,
    Sent,
    Failed,
}

/// One outgoing mail. The bytes live under `raw/<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutMail {
    /// The Message-ID (without brackets): stable, so a resend after a crash is the
    /// same message to the receiving side.
    pub id: String,
    /// `ack`, `summary`, ...
    pub kind: String,
    pub case_id: Option<String>,
    pub envelope_from: String,
    pub to: Vec<String>,
    /// Whether the body is encrypted (for the case's `ack.encrypted`).
    pub encrypted: bool,
    pub status: OutStatus,
    /// Attempts made so far; counted before each attempt.
    pub attempts: u32,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub next_attempt: DateTime<Utc>,
    #[serde(with = "ts::opt", default)]
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// A reporter's cert we hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredCert {
    pub fingerprint: String,
    pub source: KeySource,
    pub armored: String,
}

/// A set of writes applied atomically by [`Store::commit`].
#[derive(Default)]
pub struct Batch {
    /// Key and new value; `None` removes the key.
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Message texts, written as files (relative path, bytes) before the keys above.
    texts: Vec<(String, Vec<u8>)>,
}

impl Batch {
    /// Writes a case's record: everything but its texts, which [`Batch::put_text`]
    /// writes once per message (a record stays small however large the report).
    pub fn put_case(&mut self, c: &Case) {
        self.json(format!("case/{}", c.id), c);
        // Texts are immutable once written: only those in hand (a new message, or a
        // record from before this layout, which this migrates) are written.
        for (n, m) in c.messages.iter().enumerate() {
            if !m.text.is_empty() {
                self.put_text(&c.id, n, &m.text);
            }
        }
    }
    /// Writes the text of message `n` of a case, as bytes (no JSON escaping: a report
    /// of control characters costs its size, not six times it).
    pub fn put_text(&mut self, case_id: &str, n: usize, text: &str) {
        self.texts.push((text_path(case_id, n), text.as_bytes().to_vec()));
    }
    pub fn put_mail(&mut self, key: &str, m: &MailRecord) {
        self.json(format!("mail/{key}"), m);
    }
    pub fn put_uid(&mut self, mailbox: &str, uidvalidity: u32, uid: u32, key: &str) {
        self.ops.push((uid_key(mailbox, uidvalidity, uid), Some(key.as_bytes().to_vec())));
    }
    pub fn put_hash(&mut self, sha256: &str, key: &str) {
        self.ops.push((format!("hash/{sha256}").into_bytes(), Some(key.as_bytes().to_vec())));
    }
    pub fn put_out(&mut self, o: &OutMail, raw: Option<&[u8]>) {
        self.json(format!("out/{}", o.id), o);
        // Indexes by state: the outbox worker reads what is queued, the failure
        // reports what failed, never every mail ever sent.
        let queued = format!("outq/{}", o.id).into_bytes();
        let failed = format!("outf/{}", o.id).into_bytes();
        self.ops.push((queued, (o.status == OutStatus::Queued).then(Vec::new)));
        self.ops.push((failed, (o.status == OutStatus::Failed).then(Vec::new)));
        if let Some(raw) = raw {
            self.ops.push((format!("raw/{}", o.id).into_bytes(), Some(raw.to_vec())));
            // Answers to senders are indexed by time, so the rate limits read only the
            // last hour's (at most the hourly cap) instead of the whole outbox.
            if matches!(o.kind.as_str(), "ack" | "cannot-read") {
                self.ops.push((answer_key(o.created_at, &o.id), Some(o.to.join(",").into_bytes())));
            }
        }
    }
    pub fn put_quarantine(&mut self, q: &QuarantineEntry, raw: Option<&[u8]>) {
        self.json(format!("quar/{}", q.id), q);
        if let Some(raw) = raw {
            self.ops.push((format!("qraw/{}", q.id).into_bytes(), Some(raw.to_vec())));
        }
    }
    pub fn put_cert(&mut self, address: &str, c: &StoredCert) {
        self.json(format!("cert/{}", address.to_ascii_lowercase()), c);
    }
    /// Forgets the cert held for an address (the next one offered is pinned).
    pub fn remove_cert(&mut self, address: &str) {
        self.ops.push((format!("cert/{}", address.to_ascii_lowercase()).into_bytes(), None));
    }
    /// Appends to a case's audit log; `n` orders entries (see [`Store::log_len`]).
    pub fn put_log(&mut self, case_id: &str, n: u64, e: &crate::case::LogEntry) {
        self.json(format!("log/{case_id}/{n:08}"), e);
    }
    pub fn put_seq(&mut self, name: &str, n: u64) {
        self.ops.push((format!("seq/{name}").into_bytes(), Some(n.to_be_bytes().to_vec())));
    }
    fn json<T: Serialize>(&mut self, key: String, v: &T) {
        // Serializing our own plain structs cannot fail; an empty value would be caught
        // on read as a decode error rather than silently dropped.
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        self.ops.push((key.into_bytes(), Some(bytes)));
    }
    /// Drops a quarantine entry and its copy (it was retried successfully).
    pub fn remove_quarantine(&mut self, qid: &str) {
        self.ops.push((format!("quar/{qid}").into_bytes(), None));
        self.ops.push((format!("qraw/{qid}").into_bytes(), None));
    }
    /// Marks a message as resolved by `quarantine retry`: intake moves its IMAP copy
    /// out of the quarantine folder.
    pub fn put_resolved(&mut self, message_key: &str) {
        self.ops.push((format!("qmove/{message_key}").into_bytes(), Some(Vec::new())));
    }
    pub fn remove_resolved(&mut self, message_key: &str) {
        self.ops.push((format!("qmove/{message_key}").into_bytes(), None));
    }
    /// How often processing a message was attempted (crash-loop detection).
    pub fn put_attempts(&mut self, mailbox: &str, uidvalidity: u32, uid: u32, n: u32) {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        self.ops.push((k, Some(n.to_be_bytes().to_vec())));
    }
    pub fn remove_attempts(&mut self, mailbox: &str, uidvalidity: u32, uid: u32) {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        self.ops.push((k, None));
    }
    /// Remembers a mailbox's UIDVALIDITY (to notice when the server resets UIDs).
    pub fn put_uidvalidity(&mut self, mailbox: &str, v: u32) {
        self.ops.push((format!("uidv/{mailbox}").into_bytes(), Some(v.to_be_bytes().to_vec())));
    }
    /// Marks an SLA reminder as sent for a case.
    pub fn put_reminder(&mut self, case_id: &str, key: &str) {
        self.ops.push((format!("rem/{case_id}/{key}").into_bytes(), Some(Vec::new())));
    }
    /// Forgets an SLA reminder (its clock restarted).
    pub fn remove_reminder(&mut self, case_id: &str, key: &str) {
        self.ops.push((format!("rem/{case_id}/{key}").into_bytes(), None));
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.texts.is_empty()
    }
}

fn answer_key(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    format!("answer/{:020}/{id}", at.timestamp_millis().max(0)).into_bytes()
}

/// Where message `n` of a case keeps its text, below the store's `texts/` folder. Case
/// ids are ours (`PREFIX-YEAR-NNNN`), never a sender's string.
fn text_path(case_id: &str, n: usize) -> String {
    format!("{case_id}/{n:06}.txt")
}

fn uid_key(mailbox: &str, uidvalidity: u32, uid: u32) -> Vec<u8> {
    format!("uid/{mailbox}\0{uidvalidity}\0{uid:010}").into_bytes()
}

thread_local! {
    /// Set while [`Store::group`] runs on this thread: commits skip their sync, and the
    /// text files they wrote are listed here to be synced at the end.
    static GROUP: std::cell::RefCell<Option<Vec<PathBuf>>> = const { std::cell::RefCell::new(None) };
}

/// Why the store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (the daemon, or a CLI command) holds it: sled is one process at
    /// a time.
    #[error("the store {0} is in use by another process (is `secintake run` starting or up?)")]
    Locked(PathBuf),
    #[error("{0}")]
    Other(String),
}

/// The store. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    /// The database folder, whose files are fsynced on commit.
    dir: PathBuf,
    /// Message texts as files (`CASE/NNNNNN.txt`): large texts stay out of sled, whose
    /// log and recovery would otherwise carry them on every open.
    texts: PathBuf,
    /// Serialises read-modify-write sequences (case numbering, outbox updates) between
    /// the pipeline, the outbox worker and control-socket commands.
    pub lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (creating) the store in the state directory `state`, mode 0700.
    pub fn open(state: &Path) -> Result<Store> {
        Self::try_open(state).map_err(anyhow::Error::from)
    }

    /// Opens the store, waiting up to `wait` while another process holds it (a CLI
    /// command that opened it just before the daemon started, say).
    pub fn open_waiting(state: &Path, wait: std::time::Duration) -> Result<Store> {
        let start = std::time::Instant::now();
        loop {
            match Self::try_open(state) {
                Err(OpenError::Locked(_)) if start.elapsed() < wait => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => return r.map_err(anyhow::Error::from),
            }
        }
    }

    /// Opens the store; tells "held by another process" apart.
    pub fn try_open(state: &Path) -> std::result::Result<Store, OpenError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(state).map_err(|e| {
            OpenError::Other(format!("Creating the state directory {} (store.path): {e}", state.display()))
        })?;
        let _ = std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700));
        let dir = state.join("db");
        // No background flush: records become durable at our sync, after the texts they name.
        let db = sled::Config::new().path(&dir).flush_every_ms(None).open().map_err(|e| match e {
            // sled wraps the flock failure in an `Other` error with this text.
            sled::Error::Io(ref io)
                if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
            {
                OpenError::Locked(dir.clone())
            }
            e => OpenError::Other(format!("cannot open the store {}: {e}", dir.display())),
        })?;
        let texts = state.join("texts");
        let store = Store { db, dir, texts, lock: Arc::new(Mutex::new(())) };
        store.index_outbox().map_err(|e| OpenError::Other(format!("indexing the outbox: {e:#}")))?;
        Ok(store)
    }

    /// Applies `batch` atomically and makes it durable (flush, then fsync).
    pub fn commit(&self, batch: Batch) -> Result<()> {
        // Texts first, each durable (file, then folder) before the records naming
        // them: a crash in between leaves an unnamed file that the retry overwrites.
        let grouped = GROUP.with(|g| g.borrow().is_some());
        for (rel, bytes) in &batch.texts {
            self.write_text(rel, bytes, !grouped)
                .with_context(|| format!("Writing {}", self.texts.join(rel).display()))?;
            if grouped {
                GROUP.with(|g| g.borrow_mut().as_mut().map(|v| v.push(self.texts.join(rel))));
            }
        }
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).context("Writing to the store")?;
        if grouped { Ok(()) } else { self.sync() }
    }

    /// Group commit: every [`Store::commit`] made by `f` on this thread is applied
    /// (atomically each, and visible to every reader at once) but made durable only
    /// once, at the end: the texts written, then the database. The caller moves the
    /// group's messages on IMAP only after this returns Ok. A crash before that leaves
    /// each message either wholly recorded or not at all (sled applies a batch
    /// atomically), and the messages in the mailbox to be recognised or redone.
    pub fn group<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        GROUP.with(|g| *g.borrow_mut() = Some(Vec::new()));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let texts = GROUP.with(|g| g.borrow_mut().take()).unwrap_or_default();
        let out = match out {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        };
        let mut folders = std::collections::BTreeSet::new();
        for t in &texts {
            std::fs::File::open(t).and_then(|f| f.sync_all()).with_context(|| format!("Syncing {}", t.display()))?;
            if let Some(p) = t.parent() {
                folders.insert(p.to_path_buf());
            }
        }
        if !texts.is_empty() {
            folders.insert(self.texts.clone());
        }
        for f in folders {
            std::fs::File::open(&f).and_then(|f| f.sync_all()).with_context(|| format!("Syncing {}", f.display()))?;
        }
        self.sync()?;
        Ok(out)
    }

    /// flush() + fsync of every database file and the folder.
    pub fn sync(&self) -> Result<()> {
        self.db.flush().context("Flushing the store")?;
        fsync_tree(&self.dir).map_err(SyncFailure).context("Syncing the store files to disk")
    }

    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.db.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v).with_context(|| format!("Decoding store entry {key}"))?)),
        }
    }

    fn scan_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix.as_bytes()) {
            let (k, v) = item?;
            out.push(
                serde_json::from_slice(&v)
                    .with_context(|| format!("Decoding store entry {}", String::from_utf8_lossy(&k)))?,
            );
        }
        Ok(out)
    }

    fn write_text(&self, rel: &str, bytes: &[u8], durable: bool) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.texts.join(rel);
        let folder = path.parent().unwrap_or(&self.texts).to_path_buf();
        std::fs::create_dir_all(&folder)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if durable {
            std::fs::File::open(&folder)?.sync_all()?;
            std::fs::File::open(&self.texts)?.sync_all()?;
        }
        Ok(())
    }

    /// A case with its texts (for `case show`, exports, replies).
    pub fn case(&self, id: &str) -> Result<Option<Case>> {
        let Some(mut c) = self.case_meta(id)? else { return Ok(None) };
        for (n, m) in c.messages.iter_mut().enumerate() {
            match std::fs::read(self.texts.join(text_path(id, n))) {
                Ok(t) => m.text = String::from_utf8_lossy(&t).into_owned(),
                // Records from before texts were files keep theirs inline.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("Reading the text of {id} message {n}")),
            }
        }
        if let Some(first) = c.messages.first()
            && (!first.text.is_empty() || c.text.is_empty())
        {
            c.text = first.text.clone();
        }
        Ok(Some(c))
    }

    /// A case without its texts: what lists, deadlines and updates need. Cheap
    /// however large the report.
    pub fn case_meta(&self, id: &str) -> Result<Option<Case>> {
        self.get_json(&format!("case/{id}"))
    }

    /// Every case, without texts.
    pub fn cases(&self) -> Result<Vec<Case>> {
        self.scan_json("case/")
    }

    pub fn mail(&self, key: &str) -> Result<Option<MailRecord>> {
        self.get_json(&format!("mail/{key}"))
    }

    pub fn mails(&self) -> Result<Vec<MailRecord>> {
        let mut v: Vec<MailRecord> = self.scan_json("mail/")?;
        v.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.message_id.cmp(&b.message_id)));
        Ok(v)
    }

    pub fn uid(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<Option<String>> {
        Ok(self.db.get(uid_key(mailbox, uidvalidity, uid))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn by_hash(&self, sha256: &str) -> Result<Option<String>> {
        Ok(self.db.get(format!("hash/{sha256}"))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn outbox(&self) -> Result<Vec<OutMail>> {
        let mut v: Vec<OutMail> = self.scan_json("out/")?;
        v.sort_by_key(|a| a.created_at);
        Ok(v)
    }

    /// The mails waiting to be sent (read through their index).
    pub fn queued(&self) -> Result<Vec<OutMail>> {
        self.indexed("outq/")
    }

    /// The mails that failed for good (read through their index).
    pub fn failed(&self) -> Result<Vec<OutMail>> {
        self.indexed("outf/")
    }

    fn indexed(&self, prefix: &str) -> Result<Vec<OutMail>> {
        let mut v = Vec::new();
        for item in self.db.scan_prefix(prefix.as_bytes()) {
            let (k, _) = item?;
            if let Some(o) = self.out(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                v.push(o);
            }
        }
        v.sort_by_key(|a| a.created_at);
        Ok(v)
    }

    /// Builds the outbox state indexes for a store made before they existed (once).
    fn index_outbox(&self) -> Result<()> {
        const DONE: &[u8] = b"meta/outbox-index";
        if self.db.get(DONE)?.is_some() {
            return Ok(());
        }
        let mut b = Batch::default();
        for o in self.outbox()? {
            b.put_out(&o, None);
        }
        b.ops.push((DONE.to_vec(), Some(Vec::new())));
        self.commit(b)
    }

    pub fn out(&self, id: &str) -> Result<Option<OutMail>> {
        self.get_json(&format!("out/{id}"))
    }

    pub fn out_raw(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(format!("raw/{id}"))?.map(|v| v.to_vec()))
    }

    pub fn quarantine(&self, qid: &str) -> Result<Option<QuarantineEntry>> {
        self.get_json(&format!("quar/{qid}"))
    }

    pub fn quarantine_raw(&self, qid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(format!("qraw/{qid}"))?.map(|v| v.to_vec()))
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineEntry>> {
        let mut v: Vec<QuarantineEntry> = self.scan_json("quar/")?;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    pub fn cert(&self, address: &str) -> Result<Option<StoredCert>> {
        self.get_json(&format!("cert/{}", address.to_ascii_lowercase()))
    }

    /// Recipients of the answers (acks, cannot-read notices) queued since `since`, one
    /// entry per answer: what the rate limits count.
    pub fn answers_since(&self, since: DateTime<Utc>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for item in self.db.range(answer_key(since, "")..b"answer0".to_vec()) {
            let (_, v) = item?;
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }

    /// Attempts counted for a message (0 when none).
    pub fn attempts(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<u32> {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        Ok(self.db.get(k)?.and_then(|v| v.as_ref().try_into().ok()).map(u32::from_be_bytes).unwrap_or(0))
    }

    /// Every held reporter cert with its address.
    pub fn certs(&self) -> Result<Vec<(String, StoredCert)>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(b"cert/") {
            let (k, v) = item?;
            let addr = String::from_utf8_lossy(&k[5..]).into_owned();
            out.push((addr, serde_json::from_slice(&v).context("decoding a stored cert")?));
        }
        Ok(out)
    }

    /// The SLA reminders already sent for a case.
    pub fn reminders(&self, case_id: &str) -> Result<Vec<String>> {
        let prefix = format!("rem/{case_id}/");
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix.as_bytes()) {
            let (k, _) = item?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    pub fn log(&self, case_id: &str) -> Result<Vec<crate::case::LogEntry>> {
        self.scan_json(&format!("log/{case_id}/"))
    }

    pub fn log_len(&self, case_id: &str) -> Result<u64> {
        Ok(self.db.scan_prefix(format!("log/{case_id}/").as_bytes()).count() as u64)
    }

    /// Messages retried out of quarantine whose IMAP copy still waits to be moved.
    pub fn resolved(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix(b"qmove/") {
            let (k, _) = item?;
            out.push(String::from_utf8_lossy(&k[6..]).into_owned());
        }
        Ok(out)
    }

    /// The UIDVALIDITY last seen for a mailbox.
    pub fn uidvalidity(&self, mailbox: &str) -> Result<Option<u32>> {
        Ok(self
            .db
            .get(format!("uidv/{mailbox}"))?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    pub fn seq(&self, name: &str) -> Result<u64> {
        Ok(self
            .db
            .get(format!("seq/{name}"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}

/// fsyncs every regular file below `dir`, then each folder.
/// Syncing the store's files failed (a full or dying disk).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncFailure(#[source] std::io::Error);

/// Whether `e` is the store failing to read or write (sled's error, or syncing its
/// files: a full disk, a dying one), as opposed to a bad entry or a message problem.
/// After such an error sled fails every later operation: the daemon must exit and be
/// restarted.
pub fn is_io_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<sled::Error>() || c.is::<SyncFailure>())
}

fn fsync_tree(dir: &Path) -> std::io::Result<()> {
    // sled removes files (blobs, old segments) in the background: one that vanished
    // between the listing and the open has nothing left to sync. Reporting it as a
    // failure made a durable commit look failed (found by the fuzz campaign).
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        let r = if ft.is_dir() {
            fsync_tree(&entry.path())
        } else if ft.is_file() {
            std::fs::File::open(entry.path()).and_then(|f| f.sync_all())
        } else {
            Ok(())
        };
        match r {
            Err(e) if gone(&e) => {}
            r => r?,
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz campaign): a file removed while the tree is synced is not a
    /// failure of the commit.
    #[test]
    fn a_file_vanishing_during_sync_is_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
        }
        let d = dir.path().to_path_buf();
        let remover = std::thread::spawn(move || {
            for i in 0..200 {
                let _ = std::fs::remove_file(d.join(format!("f{i}")));
            }
        });
        for _ in 0..20 {
            fsync_tree(dir.path()).expect("vanishing files are skipped");
        }
        remover.join().unwrap();
    }

    #[test]
    fn store_failures_are_told_apart_from_other_errors() {
        let sled_err = anyhow::Error::from(sled::Error::Unsupported("x".into())).context("Writing to the store");
        assert!(is_io_failure(&sled_err));
        let sync = Err::<(), _>(SyncFailure(std::io::Error::from_raw_os_error(28))).context("Syncing").unwrap_err();
        assert!(is_io_failure(&sync));
        let other = anyhow::Error::from(std::io::Error::from_raw_os_error(2)).context("Reading smtp.ca_file");
        assert!(!is_io_failure(&other));
    }

    #[test]
    fn second_open_is_reported_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert!(matches!(Store::try_open(dir.path()), Err(OpenError::Locked(_))));
    }

    #[test]
    fn batch_round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        {
            let s = Store::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put_mail(
                "a@b",
                &MailRecord {
                    message_id: "a@b".into(),
                    received_at: now,
                    from: "x@y.org".into(),
                    sha256: "00".into(),
                    body_sha256: None,
                    disposition: Disposition::NonReport,
                    case_id: None,
                    quarantine_id: None,
                    reason: Some("auto-reply".into()),
                },
            );
            b.put_uid("INBOX", 7, 42, "a@b");
            b.put_seq("SEC-2026", 3);
            s.commit(b).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.uid("INBOX", 7, 42).unwrap().as_deref(), Some("a@b"));
        assert_eq!(s.uid("INBOX", 8, 42).unwrap(), None);
        assert_eq!(s.mail("a@b").unwrap().unwrap().disposition, Disposition::NonReport);
        assert_eq!(s.seq("SEC-2026").unwrap(), 3);
    }
}
