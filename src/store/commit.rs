//! The core's write path: the write lock as a type ([`Tx`]), a commit and a group commit,
//! the overlay through which a group's thread reads what the group wrote, the reads every
//! family goes through, and making it all durable (flush, then fsync of every file).
//!
//! Invariants, in the order a commit is recorded: the mails it queues are sealed (their
//! bytes made, on every core); its texts are written to one new segment, which is fsynced
//! with `texts/`; then every record, the `text/` entries naming the segment included, goes
//! in one atomic sled batch, flushed and fsynced. A crash before the end leaves nothing of
//! the commit (or of the whole group) recorded but, at most, a segment no entry names.
//! Writes go through a [`Tx`], so a read-modify-write (a case number, an outbox update)
//! holds the one lock from its read to its commit; the one write without it is
//! [`Store::count_attempts`] (`mails.rs` says why), and the indexes built once at open,
//! before anyone else has the store. Never a record before the texts it names, never Ok
//! before the fsync.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

use super::{Batch, OutMail, Seal, Store, prefix_end};

/// What the commits made inside [`Store::group`] wrote, not yet in sled: reads on the
/// group's thread see it (each message is decided on what the ones before it wrote).
#[derive(Default)]
pub(super) struct Pending {
    ops: std::collections::BTreeMap<Vec<u8>, Option<sled::IVec>>,
    pub(super) texts: std::collections::BTreeMap<String, Vec<u8>>,
    sealing: Vec<(OutMail, Seal)>,
}

thread_local! {
    /// Set while [`Store::group`] runs on this thread.
    pub(super) static GROUP: std::cell::RefCell<Option<Pending>> = const { std::cell::RefCell::new(None) };
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

impl Store {
    /// Runs `f` with the store's write lock held: what it reads stays true until what it
    /// writes through the [`Tx`] is committed. Other writers wait; readers do not.
    pub fn write<T>(&self, f: impl FnOnce(&Tx) -> T) -> T {
        f(&self.begin())
    }

    /// The store's write lock as a [`Tx`], held until it is dropped.
    pub fn begin(&self) -> Tx<'_> {
        Tx { store: self, _guard: self.lock.lock().unwrap_or_else(|e| e.into_inner()) }
    }

    /// Applies `batch` atomically and makes it durable (flush, then fsync). Inside
    /// [`Store::group`] it is only noted: the group records every batch at its end.
    pub(super) fn apply(&self, mut batch: Batch) -> Result<()> {
        self.note_answers(&batch.ops);
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
        let mut b = super::atrest::DiskBatch::default();
        // The `text/` entries first: a record of the commit may not override them.
        let mut all: Vec<(Vec<u8>, Option<sled::IVec>)> =
            self.write_texts(texts)?.into_iter().map(|(k, v)| (k, Some(v.into()))).collect();
        all.extend(ops);
        let ops = all;
        // The journal entry naming what this commit changed, in the same atomic batch.
        let journaled = self.queue_journal(&ops, &mut b);
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        {
            // The journal's reader sees a commit wholly or not at all, and only once it
            // is durable (`Store::journal_page` takes this for reading).
            let _applying = self.applying.write().unwrap_or_else(|e| e.into_inner());
            self.db.apply_batch(b).context("Writing to the store")?;
            self.sync()?;
        }
        if journaled {
            self.journal_queued();
        }
        Ok(())
    }

    /// flush() + fsync of every database file and the folder.
    pub fn sync(&self) -> Result<()> {
        self.db.flush().context("Flushing the store")?;
        fsync_tree(&self.dir).map_err(SyncFailure).context("Syncing the store files to disk")
    }

    /// One key's value: what this thread's group wrote, else sled's.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>> {
        if let Some(v) = GROUP.with(|g| g.borrow().as_ref().and_then(|p| p.ops.get(key).cloned())) {
            return Ok(v);
        }
        self.db.get(key)
    }

    /// Every (key, value) in `from..to` in key order, merged with what this thread's
    /// group wrote; `f` may stop the scan by returning false.
    pub(super) fn scan(&self, from: &[u8], to: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        let overlay: Vec<(Vec<u8>, Option<sled::IVec>)> = GROUP.with(|g| {
            g.borrow()
                .as_ref()
                .map(|p| p.ops.range(from.to_vec()..to.to_vec()).map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        });
        if overlay.is_empty() {
            return self.db.range(from, to, f);
        }
        let mut merged: std::collections::BTreeMap<Vec<u8>, sled::IVec> = std::collections::BTreeMap::new();
        self.db.range(from, to, |k, v| {
            merged.insert(k.to_vec(), v.into());
            Ok(true)
        })?;
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
    pub(super) fn scan_prefix(&self, prefix: &str, f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        self.scan(prefix.as_bytes(), &prefix_end(prefix), f)
    }

    pub(super) fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v).with_context(|| format!("Decoding store entry {key}"))?)),
        }
    }

    /// Decodes the entries under `prefix` one at a time.
    pub(super) fn each_json<T: DeserializeOwned>(
        &self,
        prefix: &str,
        mut f: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        self.scan_prefix(prefix, |k, v| {
            f(serde_json::from_slice(v)
                .with_context(|| format!("Decoding store entry {}", String::from_utf8_lossy(k)))?)?;
            Ok(true)
        })
    }

    pub(super) fn scan_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_json(prefix, |v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Syncing the store's files failed (a full or dying disk).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SyncFailure(#[source] pub(super) std::io::Error);

/// Whether `e` is the store failing to read or write (sled's error, or syncing its
/// files: a full disk, a dying one), as opposed to a bad entry or a message problem.
/// After such an error sled fails every later operation: the daemon must exit and be
/// restarted.
pub fn is_io_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<sled::Error>() || c.is::<SyncFailure>())
}

/// fsyncs every regular file below `dir`, then each folder.
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
    use chrono::Utc;

    use super::super::fixtures::out;
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

    /// Inside a group, what a commit wrote is read back on the group's thread (the next
    /// message is decided on it), is in neither sled nor another thread's view until
    /// the group ends, and is all there after; a group that panics records nothing.
    #[test]
    fn a_group_is_seen_by_its_own_thread_and_recorded_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
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
                assert!(s.db.get(b"seq/SEC-2026").unwrap().is_none(), "nothing in sled before the end");
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
}
