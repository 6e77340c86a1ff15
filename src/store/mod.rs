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
//! - `text/<case id>/<n:06>` -> `<segment>\0<offset>\0<length>`: where message n's text
//!   is, in a segment file of `texts/` (see [`Store::write_texts`]); a text without an
//!   entry is in `texts/<case id>/<n:06>.txt` (stores of before segments) or inline in
//!   the case record (older still)

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
    pub reason: QuarantineReason,
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

/// Why a message was quarantined; serialised to the names in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineReason {
    /// Encrypted to no key we hold.
    NoKey,
    /// Over `limits.max_message_bytes`.
    TooLarge,
    /// Decrypted text over `limits.max_plaintext_bytes`.
    PlaintextLimit,
    /// MIME nesting over `limits.max_mime_depth`.
    MimeDepth,
    /// Not a parseable message, or parsing it panicked.
    Malformed,
    /// Encrypted to our key, but decryption failed.
    DecryptFailed,
    /// Processing crashed or hung the process too often.
    ProcessingFailed,
}

impl QuarantineReason {
    /// The name in `quarantine list`, the audit trail and the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::NoKey => "no-key",
            QuarantineReason::TooLarge => "too-large",
            QuarantineReason::PlaintextLimit => "plaintext-limit",
            QuarantineReason::MimeDepth => "mime-depth",
            QuarantineReason::Malformed => "malformed",
            QuarantineReason::DecryptFailed => "decrypt-failed",
            QuarantineReason::ProcessingFailed => "processing-failed",
        }
    }

    /// Reports we could not decrypt: their sender gets a cannot-read notice.
    pub fn tells_sender(self) -> bool {
        matches!(self, QuarantineReason::NoKey | QuarantineReason::DecryptFailed)
    }
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an outgoing mail is; serialised to the strings the outbox has always held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MailKind {
    /// The signed acknowledgement to the reporter.
    #[serde(rename = "ack")]
    Ack,
    /// The signed "could not read your message" answer.
    #[serde(rename = "cannot-read")]
    CannotRead,
    /// The encrypted triage summary to the team list.
    #[serde(rename = "summary")]
    Summary,
    /// A reporter's follow-up forwarded to the team list.
    #[serde(rename = "followup")]
    Followup,
    /// An SLA reminder to the team list.
    #[serde(rename = "reminder")]
    Reminder,
    /// A report to the team list that one of our mails could not be delivered.
    #[serde(rename = "failure")]
    Failure,
    /// A report to the team list that an ack bounced.
    #[serde(rename = "bounce")]
    Bounce,
    /// A team member's reply to the reporter (`case reply`).
    #[serde(rename = "reply")]
    Reply,
}

impl MailKind {
    /// The name in the outbox, logs and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Ack => "ack",
            MailKind::CannotRead => "cannot-read",
            MailKind::Summary => "summary",
            MailKind::Followup => "followup",
            MailKind::Reminder => "reminder",
            MailKind::Failure => "failure",
            MailKind::Bounce => "bounce",
            MailKind::Reply => "reply",
        }
    }

    /// The token in the mail's Message-ID (`<case>.<token>.<hash>@<domain>`).
    pub fn id_token(self) -> &'static str {
        match self {
            MailKind::CannotRead => "unread",
            other => other.as_str(),
        }
    }

    /// Mails answering a reporter's message, under the per-sender rate limits.
    pub fn answers_reporter(self) -> bool {
        matches!(self, MailKind::Ack | MailKind::CannotRead)
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outgoing mail. The bytes live under `raw/<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutMail {
    /// The Message-ID (without brackets): stable, so a resend after a crash is the
    /// same message to the receiving side.
    pub id: String,
    pub kind: MailKind,
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

/// Makes the bytes of an outgoing mail (signs, encrypts): run when its batch is
/// recorded, in a group after every message was decided, on every core.
pub type Seal = Box<dyn FnOnce() -> Result<Vec<u8>> + Send>;

/// A set of writes applied atomically by [`Store::commit`].
#[derive(Default)]
pub struct Batch {
    /// Key and new value; `None` removes the key.
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Message texts (name, bytes), written to a segment file before the keys above.
    texts: Vec<(String, Vec<u8>)>,
    /// Outgoing mails whose record is in `ops` and whose bytes are still to be made.
    sealing: Vec<(OutMail, Seal)>,
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
    /// Writes an outgoing mail's record, and its bytes when given (a new mail).
    pub fn put_out(&mut self, o: &OutMail, raw: Option<&[u8]>) {
        self.put_out_record(o, raw.is_some());
        if let Some(raw) = raw {
            self.ops.push((format!("raw/{}", o.id).into_bytes(), Some(raw.to_vec())));
        }
    }
    /// Queues a new outgoing mail whose bytes `seal` makes when the batch is recorded
    /// (in a group: after every message of the group was decided, in parallel). Should
    /// `seal` fail, the mail is recorded as failed with the reason, never lost silently.
    pub fn put_out_sealed(&mut self, o: &OutMail, seal: Seal) {
        self.put_out_record(o, true);
        self.sealing.push((o.clone(), seal));
    }
    fn put_out_record(&mut self, o: &OutMail, new: bool) {
        self.json(format!("out/{}", o.id), o);
        // Indexes by state: the outbox worker reads what is queued, the failure
        // reports what failed, never every mail ever sent.
        let queued = format!("outq/{}", o.id).into_bytes();
        let failed = format!("outf/{}", o.id).into_bytes();
        self.ops.push((queued, (o.status == OutStatus::Queued).then(Vec::new)));
        self.ops.push((failed, (o.status == OutStatus::Failed).then(Vec::new)));
        // Answers to senders are indexed by time: what the rate limits count (see
        // [`AnswerWindow`]).
        if new && o.kind.answers_reporter() {
            self.ops.push((answer_key(o.created_at, &o.id), Some(o.to.join(",").into_bytes())));
        }
    }
    /// Makes the bytes of every mail queued with [`Batch::put_out_sealed`], on up to
    /// every core; a mail whose bytes cannot be made is recorded as failed.
    fn seal(&mut self) {
        let jobs = std::mem::take(&mut self.sealing);
        if jobs.is_empty() {
            return;
        }
        let n = jobs.len();
        let slots: Vec<Mutex<Option<(OutMail, Seal)>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
        type Sealed = Mutex<Option<(OutMail, Result<Vec<u8>>)>>;
        let results: Vec<Sealed> = (0..n).map(|_| Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1).min(n);
        let work = || {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let Some((o, seal)) = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(seal))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("internal failure (panic)")));
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some((o, r));
            }
        };
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|sc| {
                for _ in 0..workers {
                    sc.spawn(work);
                }
            });
        }
        for slot in results {
            let Some((mut o, r)) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else { continue };
            match r {
                Ok(raw) => self.ops.push((format!("raw/{}", o.id).into_bytes(), Some(raw))),
                Err(e) => {
                    tracing::error!(mail = %o.id, kind = %o.kind, error = %format!("{e:#}"), "Outgoing mail could not be built; recorded as failed");
                    o.status = OutStatus::Failed;
                    o.last_error = Some(format!("could not be built: {e:#}"));
                    self.put_out_record(&o, false);
                }
            }
        }
    }
    pub fn put_quarantine(&mut self, q: &QuarantineEntry, raw: Option<&[u8]>) {
        self.json(format!("quar/{}", q.id), q);
        if let Some(raw) = raw {
            self.ops.push((format!("qraw/{}", q.id).into_bytes(), Some(raw.to_vec())));
        }
        if let Some(key) = unreadable_key(q) {
            self.ops.push((key, Some(Vec::new())));
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
    /// Drops a quarantine entry, its copy and its index entry (it was retried
    /// successfully).
    pub fn remove_quarantine(&mut self, q: &QuarantineEntry) {
        self.ops.push((format!("quar/{}", q.id).into_bytes(), None));
        self.ops.push((format!("qraw/{}", q.id).into_bytes(), None));
        if let Some(key) = unreadable_key(q) {
            self.ops.push((key, None));
        }
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
        self.ops.is_empty() && self.texts.is_empty() && self.sealing.is_empty()
    }
}

fn answer_key(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    format!("answer/{:020}/{id}", at.timestamp_millis().max(0)).into_bytes()
}

/// The name of message `n`'s text: its `text/` key, and below the store's `texts/`
/// folder its file in stores of before segments. Case ids are ours
/// (`PREFIX-YEAR-NNNN`), never a sender's string.
fn text_path(case_id: &str, n: usize) -> String {
    format!("{case_id}/{n:06}.txt")
}

fn text_key(rel: &str) -> Vec<u8> {
    format!("text/{}", rel.strip_suffix(".txt").unwrap_or(rel)).into_bytes()
}

/// Where a text is: a range of a segment file below `texts/`.
#[derive(Debug, PartialEq)]
struct TextAt {
    segment: String,
    offset: u64,
    len: u64,
}

impl TextAt {
    fn encode(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.segment, self.offset, self.len).into_bytes()
    }
    fn decode(v: &[u8]) -> Option<TextAt> {
        let s = std::str::from_utf8(v).ok()?;
        let mut it = s.split('\0');
        let (segment, offset, len) = (it.next()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        // Our own names only (see `Store::write_texts`): never a path out of `texts/`.
        let ours =
            segment.ends_with(".seg") && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        (ours && !segment.starts_with('.') && it.next().is_none()).then(|| TextAt {
            segment: segment.to_owned(),
            offset,
            len,
        })
    }
}

/// The first key after every key starting with `prefix` (which ends in `/`).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn uid_key(mailbox: &str, uidvalidity: u32, uid: u32) -> Vec<u8> {
    format!("uid/{mailbox}\0{uidvalidity}\0{uid:010}").into_bytes()
}

/// What the commits made inside [`Store::group`] wrote, not yet in sled: reads on the
/// group's thread see it (each message is decided on what the ones before it wrote).
#[derive(Default)]
struct Pending {
    ops: std::collections::BTreeMap<Vec<u8>, Option<sled::IVec>>,
    texts: std::collections::BTreeMap<String, Vec<u8>>,
    sealing: Vec<(OutMail, Seal)>,
}

thread_local! {
    /// Set while [`Store::group`] runs on this thread.
    static GROUP: std::cell::RefCell<Option<Pending>> = const { std::cell::RefCell::new(None) };
}

/// The answers (acks, cannot-read notices) of the last hour, in memory: what the rate
/// limits count, per message, at a cost that does not grow with the backlog. Built from
/// the `answer/` index at open; every commit adds what it queues.
#[derive(Default)]
struct AnswerWindow {
    /// (millis, lowercased recipients), oldest first.
    entries: std::collections::VecDeque<(i64, Vec<String>)>,
    per_address: std::collections::HashMap<String, usize>,
}

impl AnswerWindow {
    fn add(&mut self, millis: i64, to: &[u8]) {
        let to: Vec<String> =
            String::from_utf8_lossy(to).split(',').filter(|t| !t.is_empty()).map(|t| t.to_ascii_lowercase()).collect();
        for t in &to {
            *self.per_address.entry(t.clone()).or_default() += 1;
        }
        let at = self.entries.partition_point(|(m, _)| *m <= millis);
        self.entries.insert(at, (millis, to));
    }

    /// (answers since `since`, those to `to`); forgets the older ones.
    fn counts(&mut self, since: i64, to: &str) -> (usize, usize) {
        while self.entries.front().is_some_and(|(m, _)| *m < since) {
            if let Some((_, old)) = self.entries.pop_front() {
                for t in old {
                    if let Some(n) = self.per_address.get_mut(&t) {
                        *n -= 1;
                        if *n == 0 {
                            self.per_address.remove(&t);
                        }
                    }
                }
            }
        }
        (self.entries.len(), self.per_address.get(&to.to_ascii_lowercase()).copied().unwrap_or(0))
    }

    fn note(&mut self, key: &[u8], value: &[u8]) {
        // answer/<millis:020>/<id>
        let millis = key.get(7..27).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok());
        if let Some(m) = millis {
            self.add(m, value);
        }
    }
}

/// A write transaction: the store's write lock, held while it lives
/// ([`Store::write`]). Every commit goes through one.
pub struct Tx<'a> {
    store: &'a Store,
    _guard: std::sync::MutexGuard<'a, ()>,
}

impl Tx<'_> {
    /// Applies `batch` atomically and makes it durable; inside [`Tx::group`], records it
    /// with the group.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        self.store.apply(batch)
    }

    /// Group commit: the commits `f` makes on this thread are seen by this thread's
    /// reads at once and recorded together, as one atomic, durable write, when `f`
    /// returns (see [`Store::group`] for the order of the writes).
    pub fn group<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.store.group(f)
    }
}

/// Index of the unreadable reports (their sender was told) by sender:
/// `qfrom/<sha256 of the lowercased address>/<qid>`. A hash, so that no address (they
/// are hostile, and may hold a `/`) can reach into another's range.
fn unreadable_prefix(from: &str) -> String {
    format!("qfrom/{}/", crate::mime::sha256_hex(from.to_ascii_lowercase().as_bytes()))
}

fn unreadable_key(q: &QuarantineEntry) -> Option<Vec<u8>> {
    (q.reason.tells_sender() && !q.from.is_empty())
        .then(|| format!("{}{}", unreadable_prefix(&q.from), q.id).into_bytes())
}

/// sled's page cache, by its own accounting (the heap it takes is about twice that).
/// Measured on the backlog benchmark (intake only, peak RSS at 1,000 and 10,000 reports):
/// 8 MiB 95 and 114 MiB, 16 MiB 93 and 119, 32 MiB 94 and 127; no rate difference above
/// run-to-run noise. Lookups per message are by key, so a small cache costs little.
pub const CACHE_BYTES: u64 = 16 << 20;

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
    /// the pipeline, the outbox worker and control-socket commands: held by a [`Tx`],
    /// the only way to write.
    lock: Arc<Mutex<()>>,
    answers: Arc<Mutex<AnswerWindow>>,
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
        // No background flush: records become durable at our sync, after the texts they
        // name. A bounded page cache (sled's default is 1 GiB): memory stays flat however
        // many cases the store holds.
        let db = sled::Config::new().path(&dir).flush_every_ms(None).cache_capacity(CACHE_BYTES).open().map_err(
            |e| match e {
                // sled wraps the flock failure in an `Other` error with this text.
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("could not acquire lock") =>
                {
                    OpenError::Locked(dir.clone())
                }
                e => OpenError::Other(format!("cannot open the store {}: {e}", dir.display())),
            },
        )?;
        let texts = state.join("texts");
        let store = Store { db, dir, texts, lock: Arc::new(Mutex::new(())), answers: Default::default() };
        store.index_outbox().map_err(|e| OpenError::Other(format!("indexing the outbox: {e:#}")))?;
        store.index_quarantine().map_err(|e| OpenError::Other(format!("indexing the quarantine: {e:#}")))?;
        {
            let since = answer_key(Utc::now() - chrono::Duration::hours(2), "");
            let mut w = store.answers.lock().unwrap_or_else(|e| e.into_inner());
            for item in store.db.range(since..b"answer0".to_vec()) {
                let (k, v) = item.map_err(|e| OpenError::Other(format!("reading the answer index: {e}")))?;
                w.note(&k, &v);
            }
        }
        Ok(store)
    }

    /// Runs `f` with the store's write lock held: what it reads stays true until what it
    /// writes through the [`Tx`] is committed. Other writers wait; readers do not.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> T) -> T {
        f(&self.begin())
    }

    /// The store's write lock as a [`Tx`], held until it is dropped.
    pub fn begin(&self) -> Tx<'_> {
        Tx { store: self, _guard: self.lock.lock().unwrap_or_else(|e| e.into_inner()) }
    }

    /// Counts one more attempt at each message (one durable commit for all) and returns
    /// the counts. Without the write lock, so that it may run while the batch before is
    /// recorded: only intake writes a message's count, and only while it holds that
    /// message.
    pub fn count_attempts(&self, sources: &[(&str, u32, u32)]) -> Result<Vec<u32>> {
        let mut b = Batch::default();
        let mut counts = Vec::with_capacity(sources.len());
        for (mailbox, uidvalidity, uid) in sources {
            let n = self.attempts(mailbox, *uidvalidity, *uid)? + 1;
            b.put_attempts(mailbox, *uidvalidity, *uid, n);
            counts.push(n);
        }
        self.apply(b)?;
        Ok(counts)
    }

    /// Applies `batch` atomically and makes it durable (flush, then fsync). Inside
    /// [`Store::group`] it is only noted: the group records every batch at its end.
    fn apply(&self, mut batch: Batch) -> Result<()> {
        {
            let mut w = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &batch.ops {
                if let Some(v) = v
                    && k.starts_with(b"answer/")
                {
                    w.note(k, v);
                }
            }
        }
        let mut batch = match GROUP.with(|g| {
            let mut g = g.borrow_mut();
            match g.as_mut() {
                Some(p) => {
                    p.ops.extend(batch.ops.drain(..).map(|(k, v)| (k, v.map(sled::IVec::from))));
                    p.texts.extend(batch.texts.drain(..));
                    p.sealing.append(&mut batch.sealing);
                    None
                }
                None => Some(batch),
            }
        }) {
            Some(b) => b,
            None => return Ok(()),
        };
        batch.seal();
        self.write_durably(
            batch.texts.iter().map(|(r, b)| (r.as_str(), b.as_slice())),
            batch.ops.into_iter().map(|(k, v)| (k, v.map(sled::IVec::from))),
        )
    }

    /// Group commit (see [`Tx::group`]): the commits made by `f` on this thread are recorded together at
    /// its end, as one atomic sled batch made durable once. Until then they are seen
    /// only by reads on this thread (so each message is decided on what the ones
    /// before it wrote). At the end: the mails queued are sealed (signed, encrypted) on
    /// every core, the texts written and synced, then the records applied and synced.
    /// The [`Tx`] holds the write lock throughout (nothing else may write the keys the
    /// group read); the caller moves the group's messages on IMAP only after this
    /// returns Ok. A crash before leaves none of the group recorded, and the messages in the
    /// mailbox to be processed again.
    fn group<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        GROUP.with(|g| *g.borrow_mut() = Some(Pending::default()));
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let pending = GROUP.with(|g| g.borrow_mut().take()).unwrap_or_default();
        let out = match out {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        };
        let mut batch = Batch { ops: Vec::new(), texts: Vec::new(), sealing: pending.sealing };
        batch.seal();
        self.write_durably(
            pending.texts.iter().map(|(r, b)| (r.as_str(), b.as_slice())),
            pending.ops.into_iter().chain(batch.ops.into_iter().map(|(k, v)| (k, v.map(sled::IVec::from)))),
        )?;
        Ok(out)
    }

    /// Records a commit or a group: the texts first, in a segment made durable before
    /// the records naming it (a crash in between leaves a segment nothing names), then
    /// the records with the `text/` entries as one atomic sled batch, made durable.
    fn write_durably<'a>(
        &self,
        texts: impl Iterator<Item = (&'a str, &'a [u8])>,
        ops: impl Iterator<Item = (Vec<u8>, Option<sled::IVec>)>,
    ) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in self.write_texts(texts)? {
            b.insert(k, v);
        }
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).context("Writing to the store")?;
        self.sync()
    }

    /// Writes texts and makes them durable: all of a commit (a whole group) in one new
    /// segment file, then fsync of it and of `texts/`: two syncs and one inode for a
    /// batch, however many messages (a file per text cost an inode, a folder and two
    /// syncs each: 13% of intake's CPU, mostly ext4 allocating inodes). Returns the
    /// `text/` entries naming where each text is, to be written with the records. A
    /// crash before those are durable leaves a segment nothing names (it costs its
    /// size on disk, nothing else; the retry writes a new one).
    fn write_texts<'a>(&self, texts: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let mut texts = texts.peekable();
        if texts.peek().is_none() {
            return Ok(Vec::new());
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let segment = format!(
            "{}-{}-{}.seg",
            Utc::now().format("%Y%m%dT%H%M%S%.9f"),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let path = self.texts.join(&segment);
        let write = || -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.texts)?;
            // create_new: a name taken (a clock gone back in another process) is an
            // error, never a segment overwritten.
            let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
            let mut w = std::io::BufWriter::with_capacity(256 << 10, &f);
            let mut offset = 0u64;
            let mut entries = Vec::new();
            for (rel, bytes) in texts {
                w.write_all(bytes)?;
                let at = TextAt { segment: segment.clone(), offset, len: bytes.len() as u64 };
                entries.push((text_key(rel), at.encode()));
                offset += bytes.len() as u64;
            }
            w.flush()?;
            drop(w);
            f.sync_all()?;
            Ok(entries)
        };
        let entries = write().map_err(SyncFailure).with_context(|| format!("Writing {}", path.display()))?;
        self.sync_texts_folder()?;
        Ok(entries)
    }

    /// fsync of `texts/`: a segment's name made durable, or its removal.
    fn sync_texts_folder(&self) -> Result<()> {
        std::fs::File::open(&self.texts)
            .and_then(|d| d.sync_all())
            .map_err(SyncFailure)
            .with_context(|| format!("Syncing {}", self.texts.display()))
    }

    /// Removes the segment files no `text/` entry names: what a crash left between a
    /// segment's fsync and the commit of the records naming it (that message was not
    /// recorded, so it stays in the mailbox and its retry wrote a new segment). Holds
    /// the write lock, so no segment of this process is between its write and its
    /// commit; sled's file lock keeps other processes out. Anything it cannot read (a
    /// `text/` entry that does not decode, an unreadable folder) stops it before it
    /// removes anything. Returns how many files it removed.
    pub fn sweep_segments(&self) -> Result<usize> {
        let _guard = self.begin();
        let unnamed = self.find_unnamed_segments()?;
        for name in &unnamed {
            let path = self.texts.join(name);
            std::fs::remove_file(&path).with_context(|| format!("Removing {}", path.display()))?;
        }
        if !unnamed.is_empty() {
            self.sync_texts_folder()?;
        }
        Ok(unnamed.len())
    }

    /// The segment files no `text/` entry names (what [`Store::sweep_segments`] would
    /// remove), removing nothing.
    pub fn unnamed_segments(&self) -> Result<Vec<String>> {
        let _guard = self.begin();
        self.find_unnamed_segments()
    }

    /// [`Store::unnamed_segments`], the write lock held by the caller.
    fn find_unnamed_segments(&self) -> Result<Vec<String>> {
        let mut found = std::collections::BTreeSet::new();
        let entries = match std::fs::read_dir(&self.texts) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("Listing {}", self.texts.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("Listing {}", self.texts.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Our names only, plain files only: a legacy case folder, or anything an
            // admin put here, is not ours to remove.
            let ours = TextAt::decode(format!("{name}\x000\x000").as_bytes()).is_some();
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                found.insert(name);
            }
        }
        if !found.is_empty() {
            self.scan_prefix("text/", |k, v| {
                let at = TextAt::decode(v)
                    .with_context(|| format!("Decoding store entry {}", String::from_utf8_lossy(k)))?;
                found.remove(&at.segment);
                Ok(!found.is_empty())
            })?;
        }
        Ok(found.into_iter().collect())
    }

    /// The text named `rel` ([`text_path`]): the group's own, else where its `text/`
    /// entry says, else its file in a store of before segments; None if none of these.
    fn text(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        if let Some(t) = GROUP.with(|g| g.borrow().as_ref().and_then(|p| p.texts.get(rel).cloned())) {
            return Ok(Some(t));
        }
        if let Some(v) = self.get(&text_key(rel))? {
            let at = TextAt::decode(&v).with_context(|| format!("Decoding store entry text/{rel}"))?;
            let path = self.texts.join(&at.segment);
            let read = || -> std::io::Result<Vec<u8>> {
                let f = std::fs::File::open(&path)?;
                // A range past the file's end (a segment cut short) is an error, not an
                // allocation of whatever length the entry says.
                let size = f.metadata()?.len();
                if at.offset.checked_add(at.len).is_none_or(|end| end > size) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "range past the end of the file",
                    ));
                }
                let mut buf = vec![0; at.len as usize];
                f.read_exact_at(&mut buf, at.offset)?;
                Ok(buf)
            };
            return read()
                .map(Some)
                .with_context(|| format!("Reading {} bytes at {} of {}", at.len, at.offset, path.display()));
        }
        match std::fs::read(self.texts.join(rel)) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("Reading {}", self.texts.join(rel).display())),
        }
    }

    /// flush() + fsync of every database file and the folder.
    pub fn sync(&self) -> Result<()> {
        self.db.flush().context("Flushing the store")?;
        fsync_tree(&self.dir).map_err(SyncFailure).context("Syncing the store files to disk")
    }

    /// One key's value: what this thread's group wrote, else sled's.
    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        if let Some(v) = GROUP.with(|g| g.borrow().as_ref().and_then(|p| p.ops.get(key).cloned())) {
            return Ok(v);
        }
        Ok(self.db.get(key)?)
    }

    /// Every (key, value) in `from..to` in key order, merged with what this thread's
    /// group wrote; `f` may stop the scan by returning false.
    fn scan(&self, from: &[u8], to: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        let overlay: Vec<(Vec<u8>, Option<sled::IVec>)> = GROUP.with(|g| {
            g.borrow()
                .as_ref()
                .map(|p| p.ops.range(from.to_vec()..to.to_vec()).map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        });
        if overlay.is_empty() {
            for item in self.db.range(from..to) {
                let (k, v) = item?;
                if !f(&k, &v)? {
                    break;
                }
            }
            return Ok(());
        }
        let mut merged: std::collections::BTreeMap<Vec<u8>, sled::IVec> = std::collections::BTreeMap::new();
        for item in self.db.range(from..to) {
            let (k, v) = item?;
            merged.insert(k.to_vec(), v);
        }
        for (k, v) in overlay {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        for (k, v) in &merged {
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }

    /// [`Store::scan`] over every key starting with `prefix` (which ends in `/`).
    fn scan_prefix(&self, prefix: &str, f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        self.scan(prefix.as_bytes(), &prefix_end(prefix), f)
    }

    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v).with_context(|| format!("Decoding store entry {key}"))?)),
        }
    }

    /// Decodes the entries under `prefix` one at a time.
    fn each_json<T: DeserializeOwned>(&self, prefix: &str, mut f: impl FnMut(T) -> Result<()>) -> Result<()> {
        self.scan_prefix(prefix, |k, v| {
            f(serde_json::from_slice(v)
                .with_context(|| format!("Decoding store entry {}", String::from_utf8_lossy(k)))?)?;
            Ok(true)
        })
    }

    fn scan_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_json(prefix, |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// A case with its texts (for `case show`, exports, replies).
    pub fn case(&self, id: &str) -> Result<Option<Case>> {
        let Some(mut c) = self.case_meta(id)? else { return Ok(None) };
        for (n, m) in c.messages.iter_mut().enumerate() {
            // Records from before texts were kept apart hold theirs inline.
            if let Some(t) = self.text(&text_path(id, n)).with_context(|| format!("The text of {id} message {n}"))? {
                m.text = String::from_utf8_lossy(&t).into_owned();
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

    /// Every case, without texts, one at a time: memory stays flat however many cases
    /// the store holds (the daemon's loops use this, never [`Store::cases`]).
    pub fn each_case(&self, f: impl FnMut(Case) -> Result<()>) -> Result<()> {
        self.each_json("case/", f)
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
        Ok(self.get(&uid_key(mailbox, uidvalidity, uid))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn by_hash(&self, sha256: &str) -> Result<Option<String>> {
        Ok(self.get(format!("hash/{sha256}").as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
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

    /// Up to `limit` of the mails waiting to be sent, in index order after the one
    /// named `after` (from the first when None), oldest first within the page; and the
    /// cursor for the next page (None when this one reached the end). Memory is bounded
    /// by `limit` however long the queue (after an SMTP outage, in a backlog).
    pub fn queued_page(&self, after: Option<&str>, limit: usize) -> Result<(Vec<OutMail>, Option<String>)> {
        self.indexed_page("outq/", after, limit)
    }

    /// Each mail waiting to be sent, one at a time (memory stays flat in the queue).
    pub fn each_queued(&self, mut f: impl FnMut(OutMail)) -> Result<()> {
        let mut after = None;
        loop {
            let (page, next) = self.queued_page(after.as_deref(), 256)?;
            page.into_iter().for_each(&mut f);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    /// The mails that failed for good (read through their index).
    pub fn failed(&self) -> Result<Vec<OutMail>> {
        self.indexed("outf/")
    }

    fn indexed(&self, prefix: &str) -> Result<Vec<OutMail>> {
        Ok(self.indexed_page(prefix, None, usize::MAX)?.0)
    }

    /// Up to `limit` mails named by the index `prefix`, after the one named `after`,
    /// oldest first; and the cursor for the next page (None at the end).
    fn indexed_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<(Vec<OutMail>, Option<String>)> {
        let from = match after {
            // The smallest key after `<prefix><after>`.
            Some(a) => format!("{prefix}{a}\0").into_bytes(),
            None => prefix.as_bytes().to_vec(),
        };
        let limit = limit.max(1);
        let (mut v, mut last, mut read) = (Vec::new(), None, 0);
        self.scan(&from, &prefix_end(prefix), |k, _| {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(o) = self.out(&id)? {
                v.push(o);
            }
            last = Some(id);
            read += 1;
            Ok(read < limit)
        })?;
        v.sort_by_key(|a| a.created_at);
        Ok((v, if read < limit { None } else { last }))
    }

    /// Builds the outbox state indexes for a store made before they existed (once).
    fn index_outbox(&self) -> Result<()> {
        self.index_once(b"meta/outbox-index", |b| {
            for o in self.outbox()? {
                b.put_out(&o, None);
            }
            Ok(())
        })
    }

    /// Builds the unreadable-by-sender index for a store made before it existed (once).
    fn index_quarantine(&self) -> Result<()> {
        self.index_once(b"meta/quarantine-index", |b| {
            for q in self.quarantined()? {
                if let Some(key) = unreadable_key(&q) {
                    b.ops.push((key, Some(Vec::new())));
                }
            }
            Ok(())
        })
    }

    /// Runs `build` once per store: its writes and the marker `done` in one commit.
    fn index_once(&self, done: &[u8], build: impl FnOnce(&mut Batch) -> Result<()>) -> Result<()> {
        if self.db.get(done)?.is_some() {
            return Ok(());
        }
        let mut b = Batch::default();
        build(&mut b)?;
        b.ops.push((done.to_vec(), Some(Vec::new())));
        self.apply(b)
    }

    /// The quarantine entries of reports from `from` that could not be read and whose
    /// sender was told (`no-key`, `decrypt-failed`): through the index, never a scan
    /// of the whole quarantine.
    pub fn unreadable_from(&self, from: &str) -> Result<Vec<QuarantineEntry>> {
        let mut ids = Vec::new();
        let prefix = unreadable_prefix(from);
        self.scan_prefix(&prefix, |k, _| {
            ids.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            Ok(true)
        })?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(q) = self.quarantine(&id)?
                && q.from.eq_ignore_ascii_case(from)
                && q.reason.tells_sender()
            {
                out.push(q);
            }
        }
        Ok(out)
    }

    pub fn out(&self, id: &str) -> Result<Option<OutMail>> {
        self.get_json(&format!("out/{id}"))
    }

    pub fn out_raw(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(format!("raw/{id}").as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn quarantine(&self, qid: &str) -> Result<Option<QuarantineEntry>> {
        self.get_json(&format!("quar/{qid}"))
    }

    pub fn quarantine_raw(&self, qid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(format!("qraw/{qid}").as_bytes())?.map(|v| v.to_vec()))
    }

    /// How many messages are quarantined, without decoding them.
    pub fn quarantine_count(&self) -> Result<usize> {
        let mut n = 0;
        self.scan_prefix("quar/", |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineEntry>> {
        let mut v: Vec<QuarantineEntry> = self.scan_json("quar/")?;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    pub fn cert(&self, address: &str) -> Result<Option<StoredCert>> {
        self.get_json(&format!("cert/{}", address.to_ascii_lowercase()))
    }

    /// How many answers (acks, cannot-read notices) were queued since `since`, and how
    /// many of them to `to`: what the rate limits count. Constant time per call.
    pub fn answer_counts(&self, since: DateTime<Utc>, to: &str) -> (usize, usize) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).counts(since.timestamp_millis(), to)
    }

    /// Attempts counted for a message (0 when none).
    pub fn attempts(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<u32> {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        Ok(self.get(&k)?.and_then(|v| v.as_ref().try_into().ok()).map(u32::from_be_bytes).unwrap_or(0))
    }

    /// Every held reporter cert with its address.
    pub fn certs(&self) -> Result<Vec<(String, StoredCert)>> {
        let mut out = Vec::new();
        self.scan_prefix("cert/", |k, v| {
            let addr = String::from_utf8_lossy(&k[5..]).into_owned();
            out.push((addr, serde_json::from_slice(v).context("decoding a stored cert")?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The SLA reminders already sent for a case.
    pub fn reminders(&self, case_id: &str) -> Result<Vec<String>> {
        let prefix = format!("rem/{case_id}/");
        let mut out = Vec::new();
        self.scan_prefix(&prefix, |k, _| {
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn log(&self, case_id: &str) -> Result<Vec<crate::case::LogEntry>> {
        self.scan_json(&format!("log/{case_id}/"))
    }

    pub fn log_len(&self, case_id: &str) -> Result<u64> {
        let mut n = 0;
        self.scan_prefix(&format!("log/{case_id}/"), |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    /// Messages retried out of quarantine whose IMAP copy still waits to be moved.
    pub fn resolved(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.scan_prefix("qmove/", |k, _| {
            out.push(String::from_utf8_lossy(&k[6..]).into_owned());
            Ok(true)
        })?;
        Ok(out)
    }

    /// The UIDVALIDITY last seen for a mailbox.
    pub fn uidvalidity(&self, mailbox: &str) -> Result<Option<u32>> {
        Ok(self
            .get(format!("uidv/{mailbox}").as_bytes())?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    pub fn seq(&self, name: &str) -> Result<u64> {
        Ok(self
            .get(format!("seq/{name}").as_bytes())?
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
    let mut files = Vec::new();
    let mut folders = Vec::new();
    list_tree(dir, &mut files, &mut folders, true)?;
    sync_each(&files, true)?;
    folders.reverse(); // the deepest first, `dir` last
    sync_each(&folders, true)
}

/// Lists the regular files and folders below `dir` (itself included).
fn list_tree(dir: &Path, files: &mut Vec<PathBuf>, folders: &mut Vec<PathBuf>, top: bool) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if !top && is_gone(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    folders.push(dir.to_path_buf());
    for entry in rd {
        let entry = entry?;
        match entry.file_type() {
            Ok(ft) if ft.is_dir() => list_tree(&entry.path(), files, folders, false)?,
            Ok(ft) if ft.is_file() => files.push(entry.path()),
            Ok(_) => {}
            Err(e) if is_gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// sled removes files (blobs, old segments) in the background: one that vanished
/// between the listing and the open has nothing left to sync. Reporting it as a
/// failure made a durable commit look failed (found by the fuzz campaign).
fn is_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// fsyncs `paths` (files or folders), several at once: the disk takes concurrent syncs
/// together, so the store's files cost about one sync each round, not one each.
fn sync_each(paths: &[PathBuf], skip_gone: bool) -> std::io::Result<()> {
    const THREADS: usize = 16;
    let one = |p: &PathBuf| match std::fs::File::open(p).and_then(|f| f.sync_all()) {
        Err(e) if skip_gone && is_gone(&e) => Ok(()),
        Err(e) => Err(std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        Ok(()) => Ok(()),
    };
    if paths.len() <= 1 {
        return paths.iter().try_for_each(one);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        let workers: Vec<_> = (0..paths.len().min(THREADS))
            .map(|_| {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = paths.get(i) else { return Ok(()) };
                        one(p)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked"))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens a store this process has just dropped. sled lets go of its file lock only
    /// when its last background write has finished, a moment after the drop (CI saw the
    /// reopen fail as "in use by another process"): wait for it as the daemon does.
    fn reopen(state: &Path) -> Store {
        Store::open_waiting(state, std::time::Duration::from_secs(10)).unwrap()
    }

    /// Kinds and reasons are stored and shown as the strings stores have always held:
    /// the serde name, `as_str` and `Display` agree, and old records still read.
    #[test]
    fn kinds_and_reasons_keep_their_stored_names() {
        use MailKind as K;
        use QuarantineReason as R;
        let kinds = [
            (K::Ack, "ack"),
            (K::CannotRead, "cannot-read"),
            (K::Summary, "summary"),
            (K::Followup, "followup"),
            (K::Reminder, "reminder"),
            (K::Failure, "failure"),
            (K::Bounce, "bounce"),
            (K::Reply, "reply"),
        ];
        fn keeps<T>(pairs: &[(T, &str)], as_str: fn(T) -> &'static str)
        where
            T: Copy + std::fmt::Debug + std::fmt::Display + PartialEq + Serialize + DeserializeOwned,
        {
            for &(v, name) in pairs {
                assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
                assert_eq!(serde_json::from_str::<T>(&format!("\"{name}\"")).unwrap(), v);
                assert_eq!((as_str(v), v.to_string().as_str()), (name, name));
            }
        }
        keeps(&kinds, K::as_str);
        assert_eq!(K::CannotRead.id_token(), "unread");
        let reasons = [
            (R::NoKey, "no-key"),
            (R::TooLarge, "too-large"),
            (R::PlaintextLimit, "plaintext-limit"),
            (R::MimeDepth, "mime-depth"),
            (R::Malformed, "malformed"),
            (R::DecryptFailed, "decrypt-failed"),
            (R::ProcessingFailed, "processing-failed"),
        ];
        keeps(&reasons, R::as_str);
    }

    /// Texts are read from every layout a store has had: segments (one file per commit,
    /// after a reopen too), a file per text, inline in the record; a `text/` entry never
    /// names a path outside `texts/`.
    #[test]
    fn texts_read_from_every_layout() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.write(|tx| {
                let mut b = Batch::default();
                b.put_text("SEC-2026-0001", 0, "first");
                b.put_text("SEC-2026-0001", 1, "");
                b.put_text("SEC-2026-0002", 0, "second\0with a NUL");
                tx.commit(b)
            })
            .unwrap();
            s.write(|tx| {
                let mut b = Batch::default();
                b.put_text("SEC-2026-0003", 0, "third");
                tx.commit(b)
            })
            .unwrap();
        }
        let legacy = dir.path().join("texts/SEC-2025-0009");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join("000000.txt"), "from a file").unwrap();
        let s = reopen(dir.path());
        let text = |rel: &str| s.text(rel).unwrap().map(|t| String::from_utf8(t).unwrap());
        assert_eq!(text("SEC-2026-0001/000000.txt").as_deref(), Some("first"));
        assert_eq!(text("SEC-2026-0001/000001.txt").as_deref(), Some(""));
        assert_eq!(text("SEC-2026-0002/000000.txt").as_deref(), Some("second\0with a NUL"));
        assert_eq!(text("SEC-2026-0003/000000.txt").as_deref(), Some("third"));
        assert_eq!(text("SEC-2025-0009/000000.txt").as_deref(), Some("from a file"));
        assert_eq!(text("SEC-2026-0004/000000.txt"), None, "an inline text: none apart");
        let segments =
            std::fs::read_dir(dir.path().join("texts")).unwrap().filter(|e| e.as_ref().unwrap().path().is_file());
        assert_eq!(segments.count(), 2, "one segment per commit");
        // A segment cut short (a disk gone wrong): an error naming the file, no huge read.
        let mut b = sled::Batch::default();
        let at = TextAt { segment: "x.seg".into(), offset: 0, len: u64::MAX };
        b.insert(text_key("SEC-2026-0005/000000.txt"), at.encode());
        s.db.apply_batch(b).unwrap();
        std::fs::write(dir.path().join("texts/x.seg"), "short").unwrap();
        let e = format!("{:#}", s.text("SEC-2026-0005/000000.txt").unwrap_err());
        assert!(e.contains("x.seg") && e.contains("past the end"), "{e}");

        let at = TextAt { segment: "20261202T000000.000000000-1-0.seg".into(), offset: 7, len: 9 };
        assert_eq!(TextAt::decode(&at.encode()), Some(at));
        for bad in [
            "../x.seg\x000\x001",
            "a/b.seg\x000\x001",
            ".seg\x000\x001",
            "x.txt\x000\x001",
            "x.seg\x00-1\x001",
            "x.seg\x000",
        ] {
            assert_eq!(TextAt::decode(bad.as_bytes()), None, "{bad:?}");
        }
    }

    /// A segment no record names (a crash between its fsync and the commit) is removed;
    /// named segments, folders of older stores and files not named like ours stay; an
    /// entry that does not decode stops the sweep before it removes anything.
    #[test]
    fn segments_no_record_names_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.sweep_segments().unwrap(), 0, "no texts/ yet");
        s.write(|tx| {
            let mut b = Batch::default();
            b.put_text("SEC-2026-0001", 0, "kept");
            tx.commit(b)
        })
        .unwrap();
        let texts = dir.path().join("texts");
        let orphan = texts.join("20260101T000000.000000000-1-0.seg");
        std::fs::write(&orphan, "half-recorded").unwrap();
        std::fs::write(texts.join("notes.txt"), "an admin's").unwrap();
        std::fs::create_dir_all(texts.join("SEC-2025-0009")).unwrap();
        std::fs::write(texts.join("SEC-2025-0009/000000.txt"), "from a file").unwrap();
        std::fs::create_dir_all(texts.join("dir.seg")).unwrap();
        let names = || {
            let mut v: Vec<String> =
                std::fs::read_dir(&texts).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            v.sort();
            v
        };
        let before = names();
        assert_eq!(s.unnamed_segments().unwrap(), ["20260101T000000.000000000-1-0.seg"]);
        assert_eq!(names(), before, "listing removes nothing");
        assert_eq!(s.sweep_segments().unwrap(), 1);
        let after = names();
        assert_eq!(after.len(), before.len() - 1);
        assert!(!orphan.exists(), "{after:?}");
        assert_eq!(s.text("SEC-2026-0001/000000.txt").unwrap().as_deref(), Some(&b"kept"[..]));
        assert_eq!(s.text("SEC-2025-0009/000000.txt").unwrap().as_deref(), Some(&b"from a file"[..]));
        assert_eq!(s.sweep_segments().unwrap(), 0);
        assert!(s.unnamed_segments().unwrap().is_empty());

        std::fs::write(&orphan, "half-recorded").unwrap();
        s.db.insert(text_key("SEC-2026-0002/000000.txt"), &b"../elsewhere\x000\x001"[..]).unwrap();
        let e = format!("{:#}", s.sweep_segments().unwrap_err());
        assert!(e.contains("text/SEC-2026-0002"), "{e}");
        assert!(orphan.exists(), "nothing removed after an entry that does not decode");
    }

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

    fn out(id: &str, to: &str, at: DateTime<Utc>) -> OutMail {
        OutMail {
            id: id.into(),
            kind: MailKind::Ack,
            case_id: None,
            envelope_from: "security@example.org".into(),
            to: vec![to.into()],
            encrypted: false,
            status: OutStatus::Queued,
            attempts: 0,
            created_at: at,
            next_attempt: at,
            sent_at: None,
            last_error: None,
        }
    }

    /// The queue is read in pages of at most the limit, each queued mail once, sent and
    /// failed ones never; the last page says it is the last.
    #[test]
    fn queued_mail_is_read_in_bounded_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let now = Utc::now();
        let mut b = Batch::default();
        for i in 0..600 {
            let mut o = out(&format!("m{i:04}"), "r@x.org", now);
            if i % 100 == 7 {
                o.status = if i % 200 == 7 { OutStatus::Sent } else { OutStatus::Failed };
            }
            b.put_out(&o, Some(b"bytes"));
        }
        s.write(|tx| tx.commit(b)).unwrap();
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let (page, next) = s.queued_page(after.as_deref(), 256).unwrap();
            assert!(page.len() <= 256);
            pages += 1;
            seen.extend(page.into_iter().map(|o| o.id));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        seen.sort();
        let want: Vec<String> = (0..600).filter(|i| i % 100 != 7).map(|i| format!("m{i:04}")).collect();
        assert_eq!((seen, pages), (want.clone(), 3));
        let mut each = Vec::new();
        s.each_queued(|o| each.push(o.id)).unwrap();
        each.sort();
        assert_eq!(each, want);
    }

    /// Inside a group, what a commit wrote is read back on the group's thread (the next
    /// message is decided on it), is in neither sled nor another thread's view until
    /// the group ends, and is all there after; a group that panics records nothing.
    #[test]
    fn a_group_is_seen_by_its_own_thread_and_recorded_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let now = Utc::now();
        s.write(|tx| {
            tx.group(|| {
                let mut b = Batch::default();
                b.put_seq("SEC-2026", 7);
                b.put_text("SEC-2026-0007", 0, "report text");
                b.put_out_sealed(&out("m1", "r@x.org", now), Box::new(|| Ok(b"sealed bytes".to_vec())));
                tx.commit(b).unwrap();
                assert_eq!(s.seq("SEC-2026").unwrap(), 7, "the group's thread reads its own writes");
                assert_eq!(s.queued().unwrap().len(), 1, "scans merge the group's writes");
                let other = s.clone();
                let seen = std::thread::spawn(move || other.seq("SEC-2026").unwrap()).join().unwrap();
                assert_eq!(seen, 0, "another thread does not see an unrecorded group");
                assert!(s.db.get("seq/SEC-2026").unwrap().is_none(), "nothing in sled before the end");
            })
        })
        .unwrap();
        assert_eq!(s.seq("SEC-2026").unwrap(), 7);
        assert_eq!(s.out_raw("m1").unwrap().as_deref(), Some(&b"sealed bytes"[..]), "sealed at the end");
        assert_eq!(s.text("SEC-2026-0007/000000.txt").unwrap().as_deref(), Some(&b"report text"[..]));
        let segments: Vec<_> =
            std::fs::read_dir(dir.path().join("texts")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(segments.len(), 1, "a group's texts are one segment file: {segments:?}");

        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.write(|tx| {
                tx.group(|| {
                    let mut b = Batch::default();
                    b.put_seq("SEC-2026", 8);
                    tx.commit(b).unwrap();
                    panic!("a message crashed the group");
                })
            })
        }));
        assert!(r.is_err());
        assert_eq!(s.seq("SEC-2026").unwrap(), 7, "a group that did not finish recorded nothing");
    }

    /// A mail whose bytes cannot be made is recorded as failed, with the reason; the
    /// rest of the batch is recorded.
    #[test]
    fn a_seal_that_fails_records_the_mail_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let now = Utc::now();
        let mut b = Batch::default();
        b.put_seq("SEC-2026", 1);
        b.put_out_sealed(&out("bad", "r@x.org", now), Box::new(|| Err(anyhow::anyhow!("intake key expired"))));
        b.put_out_sealed(&out("good", "r@x.org", now), Box::new(|| Ok(b"ok".to_vec())));
        s.write(|tx| tx.commit(b)).unwrap();
        assert_eq!(s.seq("SEC-2026").unwrap(), 1);
        let bad = s.out("bad").unwrap().unwrap();
        assert_eq!(bad.status, OutStatus::Failed);
        assert!(bad.last_error.unwrap().contains("intake key expired"));
        assert_eq!(s.failed().unwrap().len(), 1);
        assert_eq!(s.queued().unwrap().iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["good"]);
        assert!(s.out_raw("bad").unwrap().is_none());
    }

    /// Unreadable reports are found by sender through their index: only that sender's
    /// (an address reaching into another's range does not), only reasons whose sender
    /// was told, gone once retried; a store made before the index gets it at open.
    #[test]
    fn unreadable_reports_are_found_by_sender_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let q = |id: &str, from: &str, reason| QuarantineEntry {
            id: id.into(),
            reason,
            message_id: format!("{id}@x"),
            from: from.into(),
            received_at: Utc::now(),
            encrypted: true,
            sha256: String::new(),
            detail: String::new(),
        };
        let entries = [
            q("Q-1", "Alice@Reporter.test", QuarantineReason::NoKey),
            q("Q-2", "alice@reporter.test/x@evil.test", QuarantineReason::DecryptFailed),
            q("Q-3", "alice@reporter.test", QuarantineReason::MimeDepth),
            q("Q-4", "alice@reporter.test", QuarantineReason::DecryptFailed),
        ];
        let ids =
            |s: &Store| s.unreadable_from("alice@REPORTER.test").unwrap().into_iter().map(|q| q.id).collect::<Vec<_>>();
        {
            let s = Store::open(dir.path()).unwrap();
            let mut b = Batch::default();
            for e in &entries {
                b.put_quarantine(e, None);
            }
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(ids(&s), ["Q-1", "Q-4"]);
            let mut b = Batch::default();
            b.remove_quarantine(&entries[0]);
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(ids(&s), ["Q-4"]);
            // As a store made before the index: entries only.
            let keys: Vec<_> = s.db.scan_prefix(b"qfrom/").keys().map(|k| k.unwrap()).collect();
            assert_eq!(keys.len(), 2);
            for k in keys {
                s.db.remove(k).unwrap();
            }
            s.db.remove(b"meta/quarantine-index").unwrap();
            assert!(ids(&s).is_empty());
        }
        let s = reopen(dir.path());
        assert_eq!(ids(&s), ["Q-4"]);
        assert_eq!(s.unreadable_from("alice@reporter.test/x@evil.test").unwrap()[0].id, "Q-2");
    }

    /// The rate limits' counts: the last hour's answers, in all and to one address
    /// (any case), kept across a reopen.
    #[test]
    fn answer_counts_cover_the_last_hour() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let hour_ago = now - chrono::Duration::hours(1);
        {
            let s = Store::open(dir.path()).unwrap();
            let mut b = Batch::default();
            b.put_out(&out("old", "a@x.org", now - chrono::Duration::minutes(61)), Some(b"x"));
            b.put_out(&out("a1", "A@x.org", now - chrono::Duration::minutes(30)), Some(b"x"));
            b.put_out(&out("b1", "b@x.org", now - chrono::Duration::minutes(1)), Some(b"x"));
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(s.answer_counts(hour_ago, "a@x.org"), (2, 1));
            // A record rewritten (sent, retried) is not a new answer.
            let mut b = Batch::default();
            b.put_out(&out("b1", "b@x.org", now), None);
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(s.answer_counts(hour_ago, "b@x.org"), (2, 1));
        }
        let s = reopen(dir.path());
        assert_eq!(s.answer_counts(hour_ago, "a@x.org"), (2, 1));
        assert_eq!(s.answer_counts(now - chrono::Duration::minutes(10), "a@x.org"), (1, 0));
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
            s.write(|tx| tx.commit(b)).unwrap();
        }
        let s = reopen(dir.path());
        assert_eq!(s.uid("INBOX", 7, 42).unwrap().as_deref(), Some("a@b"));
        assert_eq!(s.uid("INBOX", 8, 42).unwrap(), None);
        assert_eq!(s.mail("a@b").unwrap().unwrap().disposition, Disposition::NonReport);
        assert_eq!(s.seq("SEC-2026").unwrap(), 3);
    }
}
