//! Texts and their segments: each message's text, as bytes, outside the case record
//! and outside sled (whose log and recovery would otherwise carry them on every open).
//!
//! Keys and files:
//! - `text/<case id>/<n:06>` -> `<segment>\0<offset>\0<length>`: where message n's text
//!   is, in a segment file of `texts/` (see [`Store::write_texts`]); a text without an
//!   entry is in `texts/<case id>/<n:06>.txt` (stores of before segments) or inline in
//!   the case record (older still)
//! - `texts/<UTC time>-<pid>-<n>.seg`: the texts of one commit (or one group), back to back
//!
//! Invariants: a segment, and `texts/`, are fsynced before the records whose `text/`
//! entries name it are committed, so a record never names a text that is not on disk; a
//! crash in between leaves a segment nothing names, which [`Store::sweep_segments`]
//! removes under the write lock. A text is written once and never changed. Never a path
//! from a sender's string (case ids and segment names are ours, checked on read: no entry
//! names a file outside `texts/`), never a read past a segment's end, never a removal of
//! a file not named like our segments.

use anyhow::{Context, Result};
use chrono::Utc;

use super::commit::{GROUP, SyncFailure};
use super::{Batch, Store};

impl Batch {
    /// Writes the text of message `n` of a case, as bytes (no JSON escaping: a report
    /// of control characters costs its size, not six times it).
    pub fn put_text(&mut self, case_id: &str, n: usize, text: &str) {
        self.texts.push((text_path(case_id, n), text.as_bytes().to_vec()));
    }
}

/// The name of message `n`'s text: its `text/` key, and below the store's `texts/`
/// folder its file in stores of before segments. Case ids are ours
/// (`PREFIX-YEAR-NNNN`), never a sender's string.
pub(super) fn text_path(case_id: &str, n: usize) -> String {
    format!("{case_id}/{n:06}.txt")
}

pub(super) fn text_key(rel: &str) -> Vec<u8> {
    format!("text/{}", rel.strip_suffix(".txt").unwrap_or(rel)).into_bytes()
}

/// Where a text is: a range of a segment file below `texts/`.
#[derive(Debug, PartialEq)]
pub(super) struct TextAt {
    pub(super) segment: String,
    pub(super) offset: u64,
    pub(super) len: u64,
}

impl TextAt {
    fn encode(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.segment, self.offset, self.len).into_bytes()
    }
    pub(super) fn decode(v: &[u8]) -> Option<TextAt> {
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

impl Store {
    /// Writes texts and makes them durable: all of a commit (a whole group) in one new
    /// segment file, then fsync of it and of `texts/`: two syncs and one inode for a
    /// batch, however many messages (a file per text cost an inode, a folder and two
    /// syncs each: 13% of intake's CPU, mostly ext4 allocating inodes). Returns the
    /// `text/` entries naming where each text is, to be written with the records. A
    /// crash before those are durable leaves a segment nothing names (it costs its
    /// size on disk, nothing else; the retry writes a new one).
    pub(super) fn write_texts<'a>(
        &self,
        texts: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
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
        // Each text sealed on its own, bound to its `text/` key (at rest: `atrest.rs`).
        let sealed = texts
            .map(|(rel, bytes)| {
                let key = text_key(rel);
                let sealed = self.db.cipher().seal(&key, bytes)?;
                Ok((key, sealed))
            })
            .collect::<Result<Vec<_>>>()?;
        let write = || -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.texts)?;
            // create_new: a name taken (a clock gone back in another process) is an
            // error, never a segment overwritten.
            let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
            let mut w = std::io::BufWriter::with_capacity(256 << 10, &f);
            let mut offset = 0u64;
            let mut entries = Vec::new();
            for (key, sealed) in &sealed {
                w.write_all(sealed)?;
                let at = TextAt { segment: segment.clone(), offset, len: sealed.len() as u64 };
                entries.push((key.clone(), at.encode()));
                offset += sealed.len() as u64;
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
    pub(super) fn text(&self, rel: &str) -> Result<Option<Vec<u8>>> {
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
            let sealed =
                read().with_context(|| format!("Reading {} bytes at {} of {}", at.len, at.offset, path.display()))?;
            return self
                .db
                .cipher()
                .open(&text_key(rel), &sealed)
                .map(Some)
                .with_context(|| format!("Reading the text at {} of {} (text/{rel})", at.offset, path.display()));
        }
        match std::fs::read(self.texts.join(rel)) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("Reading {}", self.texts.join(rel).display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::reopen;
    use super::*;

    /// Texts are read from every layout a store has had: segments (one file per commit,
    /// after a reopen too), a file per text, inline in the record; a `text/` entry never
    /// names a path outside `texts/`.
    #[test]
    fn texts_read_from_every_layout() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
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
        let mut b = crate::store::atrest::DiskBatch::default();
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
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
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
        s.db.insert(&text_key("SEC-2026-0002/000000.txt"), &b"../elsewhere\x000\x001"[..]).unwrap();
        let e = format!("{:#}", s.sweep_segments().unwrap_err());
        assert!(e.contains("text/SEC-2026-0002"), "{e}");
        assert!(orphan.exists(), "nothing removed after an entry that does not decode");
    }
}
