//! The durable store: the only module that imports sled.
//!
//! One sled tree holds everything under key prefixes, so that a unit of work (a case, its
//! mail record, its (UIDVALIDITY, UID) and hash index entries, and the outgoing mail it
//! causes) is written by one atomic `apply_batch`. [`Tx::commit`] then makes it
//! durable: sled's `flush()` only uses `sync_file_range`, which survives a process crash
//! but not a power loss, so every database file and the directory are fsynced after it.
//!
//! One [`Store`], one write lock, one transaction discipline, whatever the record: each
//! family of records has its file here, which adds an `impl Batch` (its writes: keys and
//! values pushed onto the batch) and an `impl Store` (its reads, through the group's
//! overlay in `commit.rs`). No family opens sled, takes the lock or syncs by itself; none
//! decides anything (that is `pipeline`), it records and looks up. Values are JSON unless
//! the family's doc says otherwise; its keys, and what is written before what, are in
//! that doc.
//!
//! | family | key prefixes | file |
//! |---|---|---|
//! | core: [`Store`], opening it, [`Batch`], indexes built once | `meta/` | `mod.rs` |
//! | core: [`Tx`] (the write lock), commit, group commit and its overlay, reads, fsync, [`is_io_failure`] | — | `commit.rs` |
//! | core: at rest: [`StoreKey`], every value and text sealed on its way to disk, the keys naming a person or a mail hashed ([`atrest::HASHED`]); the one handle on sled | `meta/at-rest` | `atrest.rs` |
//! | core: sealing a store of before at-rest sealing, once | `db.sealing/` `db.unsealed/` (folders) | `sealing.rs` |
//! | mails and dispositions | `mail/` `uid/` `hash/` `uidv/` `attempt/` `qmove/` | `mails.rs` |
//! | cases and their audit log | `case/` `log/` `seq/` `rem/` | `cases.rs` |
//! | texts and segments | `text/`, files `texts/*.seg` | `texts.rs` |
//! | outbox | `out/` `raw/` `outq/` `outf/` | `outbox.rs` |
//! | quarantine | `quar/` `qraw/` `qfrom/` | `quarantine.rs` |
//! | reporter certs | `cert/` | `certs.rs` |
//! | answers and the rate-limit window | `answer/` | `answers.rs` |
//! | completeness and flags (next) | | `cases.rs`, or `triage.rs` once it is more than a field or two |
//! | the duplicate index: signals and their keys | `dsig/` `dkey/` | `dupes.rs` |
//! | reporters: blocks, their audit log, the blocked reports' digest | `block/` `blocklog/` `digest/` | `reporters.rs` |
//! | the search index (keyed term hashes, postings, lengths) and derived keys | `spost/` `sdoc/` `meta/key/` | `search.rs` |
//! | read-ins | `readin/` | `readin.rs` |
//! | signatures used by applied command mails | `cmdsig/` | `commands.rs` |
//! | projects: a case's `project` and `projects_affected` live in its record | `case/` | `cases.rs` |
//! | the journal queue, and applying a journal (rebuild) | `jq/` `meta/journal-*` `meta/store-id` | `journal.rs` |
//!
//! A new family is a new file: its `//!` (what it holds, its keys, what is written before
//! what), key prefixes of its own (ending in `/`, so that a scan of one never reads
//! another's: `out/` and `outq/` are apart), its row above, and a `pub use` below for
//! the types the rest of the crate names as `crate::store::X`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::Serialize;

mod answers;
pub mod atrest;
mod cases;
mod certs;
mod commands;
mod commit;
mod dupes;
pub mod journal;
mod mails;
mod outbox;
mod quarantine;
mod readin;
mod reporters;
mod sealing;
mod search;
mod texts;

use answers::AnswerWindow;
pub use atrest::StoreKey;
use atrest::{Cipher, Disk};
pub use certs::StoredCert;
pub use commit::{SyncFailure, Tx, is_io_failure};
pub use dupes::BUCKET_CAP;
pub use mails::{Disposition, MailRecord};
pub use outbox::{MailKind, OutMail, OutStatus, Seal};
pub use quarantine::{QuarantineEntry, QuarantineReason};
pub use readin::StoredReadIn;
pub use reporters::{Block, BlockLogEntry};
pub use search::{Part as SearchPart, Posting, Stats as SearchStats};

/// A set of writes applied atomically by [`Tx::commit`].
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
    fn json<T: Serialize>(&mut self, key: String, v: &T) {
        // Serializing our own plain structs cannot fail; an empty value would be caught
        // on read as a decode error rather than silently dropped.
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        self.ops.push((key.into_bytes(), Some(bytes)));
    }
    /// How many key writes the batch holds (to bound a rebuild's batches).
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.texts.is_empty() && self.sealing.is_empty()
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
    /// The store key given does not open this store.
    #[error(
        "the store key does not open the store {0}: it was sealed with another key (a store-key.pgp or \
         store.key_file of another store?); restore the right one, or rebuild from the mailbox \
         with `secintake store rebuild --into DIR`"
    )]
    WrongKey(PathBuf),
    #[error("{0}")]
    Other(String),
}

/// The store. Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct Store {
    /// sled, through the store key: every value written sealed, every read opened
    /// (`atrest.rs`).
    db: Disk,
    /// The database folder, whose files are fsynced on commit.
    dir: PathBuf,
    /// Message texts as files (`CASE/NNNNNN.txt`): large texts stay out of sled, whose
    /// log and recovery would otherwise carry them on every open.
    texts: PathBuf,
    /// Serialises read-modify-write sequences (case numbering, outbox updates) between
    /// the pipeline, the outbox worker and control-socket commands: held by a [`Tx`],
    /// the only way to write.
    lock: Arc<Mutex<()>>,
    /// `state/open.lock`, locked while the store is open (None: a store opened inside
    /// another's open, the copy that seals an older store).
    #[allow(dead_code)]
    state_lock: Arc<Option<std::fs::File>>,
    answers: Arc<Mutex<AnswerWindow>>,
    /// The journal's sequence numbers and the journal task's wake-up (`journal.rs`).
    journal: Arc<journal::JournalState>,
    /// Held (write) while a commit is applied and synced, (read) while the journal reads
    /// a page: one consistent, durable state without waiting for the write lock, which a
    /// group holds from its first decision to its sync.
    applying: Arc<std::sync::RwLock<()>>,
}

impl Store {
    /// Opens (creating) the store in the state directory `state`, mode 0700, with its
    /// store key (`crate::atrest` says where it comes from).
    pub fn open(state: &Path, key: &StoreKey) -> Result<Store> {
        Self::try_open(state, key).map_err(anyhow::Error::from)
    }

    /// Opens the store, waiting up to `wait` while another process holds it (a CLI
    /// command that opened it just before the daemon started, say).
    pub fn open_waiting(state: &Path, key: &StoreKey, wait: std::time::Duration) -> Result<Store> {
        let start = std::time::Instant::now();
        loop {
            match Self::try_open(state, key) {
                Err(OpenError::Locked(_)) if start.elapsed() < wait => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                r => return r.map_err(anyhow::Error::from),
            }
        }
    }

    /// Opens the store; tells "held by another process" and "another key" apart. A store
    /// of a version before at-rest sealing is sealed here, once (`atrest.rs`, "Sealing an
    /// older store").
    pub fn try_open(state: &Path, key: &StoreKey) -> std::result::Result<Store, OpenError> {
        use std::os::unix::fs::PermissionsExt;
        fn other(what: &'static str) -> impl Fn(anyhow::Error) -> OpenError {
            move |e| OpenError::Other(format!("{what}: {e:#}"))
        }
        std::fs::create_dir_all(state).map_err(|e| {
            OpenError::Other(format!("Creating the state directory {} (store.path): {e}", state.display()))
        })?;
        let _ = std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700));
        // One process at a time in this state directory, from before any folder is looked
        // at (the sealing of an older store, its recovery) until the store is dropped.
        let state_lock = lock_state(state)?;
        remove_stale_scratch(state);
        sealing::recover_sealing(state).map_err(other("finishing the sealing of an older store"))?;
        let dir = state.join("db");
        if !dir.exists() && state.join(sealing::UNSEALED).exists() {
            return Err(OpenError::Other(format!(
                "{} is an older store whose sealing did not finish, and {} is missing: move it back \
                 (mv {} {}) and start again",
                state.join(sealing::UNSEALED).display(),
                dir.display(),
                state.join(sealing::UNSEALED).display(),
                dir.display()
            )));
        }
        let cipher = Arc::new(Cipher::new(key));
        let db = open_sled(&dir)?;
        let db = match db.get(atrest::CHECK_KEY).map_err(|e| OpenError::Other(format!("reading the store: {e}")))? {
            Some(v) if cipher.checks(&v) => db,
            Some(_) => return Err(OpenError::WrongKey(dir)),
            None if db.is_empty() => {
                let check = cipher.check_value().map_err(other("sealing the store's key check"))?;
                db.insert(atrest::CHECK_KEY, check)
                    .and_then(|_| db.flush())
                    .map_err(|e| OpenError::Other(format!("writing the store's key check: {e}")))?;
                db
            }
            None if db.get(journal::STORE_ID_KEY).ok().flatten().is_some_and(|v| v.first() == Some(&1)) => {
                // Sealed values without the key check: not an older store (sealing it
                // again would seal ciphertext), a damaged one.
                return Err(OpenError::Other(format!(
                    "the store {} holds sealed records but no key check (meta/at-rest): it is damaged; \
                     restore it from the backup, or rebuild it from the mailbox (`secintake store rebuild`)",
                    dir.display()
                )));
            }
            None => {
                Self::seal_older(state, db, &cipher)
                    .map_err(other("sealing the store (made before at-rest sealing)"))?;
                open_sled_waiting(&dir)?
            }
        };
        let db = Disk::new(db, cipher);
        let texts = state.join("texts");
        let journal = journal::JournalState::load(&db)
            .map_err(|e| OpenError::Other(format!("reading the journal's state: {e:#}")))?;
        let store = Store {
            db,
            dir,
            texts,
            state_lock: Arc::new(Some(state_lock)),
            lock: Arc::new(Mutex::new(())),
            answers: Default::default(),
            journal: Arc::new(journal),
            applying: Default::default(),
        };
        store.finish_sealing(state).map_err(other("removing the older store's unsealed files"))?;
        store.index_outbox().map_err(|e| OpenError::Other(format!("indexing the outbox: {e:#}")))?;
        store.index_quarantine().map_err(|e| OpenError::Other(format!("indexing the quarantine: {e:#}")))?;
        store.load_answers()?;
        store.make_keys().map_err(|e| OpenError::Other(format!("making the store's keys: {e:#}")))?;
        store.snapshot_journal().map_err(|e| OpenError::Other(format!("queueing the store for the journal: {e:#}")))?;
        Ok(store)
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
}

/// Removes what a `store verify` that was killed left (`verify-<pid>/`, its scratch store,
/// made and removed by the process holding this state directory, so stale now that this
/// one opens it; older versions left it unsealed).
fn remove_stale_scratch(state: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours =
            name.strip_prefix("verify-").is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if ours && e.file_type().is_ok_and(|t| t.is_dir()) {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => {
                    tracing::info!(folder = %e.path().display(), "Removed the scratch store of a `store verify` that did not finish")
                }
                Err(err) => {
                    tracing::warn!(folder = %e.path().display(), error = %err, "Could not remove a stale `store verify` scratch store")
                }
            }
        }
    }
}

/// Locks `state/open.lock` for this process (released when the file is closed).
fn lock_state(state: &Path) -> std::result::Result<std::fs::File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state.join("open.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| OpenError::Other(format!("Opening {}: {e}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked(state.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(OpenError::Other(format!("Locking {}: {e}", path.display()))),
    }
}

/// Opens sled in `dir`; tells "held by another process" apart.
fn open_sled(dir: &Path) -> std::result::Result<sled::Db, OpenError> {
    // No background flush: records become durable at our sync, after the texts they
    // name. A bounded page cache (sled's default is 1 GiB): memory stays flat however
    // many cases the store holds.
    sled::Config::new().path(dir).flush_every_ms(None).cache_capacity(CACHE_BYTES).open().map_err(|e| match e {
        // sled wraps the flock failure in an `Other` error with this text.
        sled::Error::Io(ref io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock") =>
        {
            OpenError::Locked(dir.to_path_buf())
        }
        e => OpenError::Other(format!("cannot open the store {}: {e}", dir.display())),
    })
}

/// [`open_sled`] on a database this process has just closed: sled lets go of its file
/// lock a moment after the drop, when its last background write has finished.
fn open_sled_waiting(dir: &Path) -> std::result::Result<sled::Db, OpenError> {
    let start = std::time::Instant::now();
    loop {
        match open_sled(dir) {
            Err(OpenError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r,
        }
    }
}

/// What the tests of several families share.
#[cfg(test)]
mod fixtures {
    use std::path::Path;

    use chrono::{DateTime, Utc};

    use super::{MailKind, OutMail, OutStatus, Store};

    /// Opens a store this process has just dropped. sled lets go of its file lock only
    /// when its last background write has finished, a moment after the drop (CI saw the
    /// reopen fail as "in use by another process"): wait for it as the daemon does.
    pub(super) fn reopen(state: &Path) -> Store {
        Store::open_waiting(state, &key(), std::time::Duration::from_secs(10)).unwrap()
    }

    /// The store key of the families' tests.
    pub(super) fn key() -> super::StoreKey {
        super::StoreKey::from_bytes(&[42; 32]).unwrap()
    }

    pub(super) fn out(id: &str, to: &str, at: DateTime<Utc>) -> OutMail {
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
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::fixtures::reopen;
    use super::*;

    #[test]
    fn second_open_is_reported_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), &super::fixtures::key()).unwrap();
        assert!(matches!(Store::try_open(dir.path(), &super::fixtures::key()), Err(OpenError::Locked(_))));
    }

    #[test]
    fn batch_round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        {
            let s = Store::open(dir.path(), &super::fixtures::key()).unwrap();
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
