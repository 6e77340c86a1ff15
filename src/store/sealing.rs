//! Sealing an older store, once: a store made before at-rest sealing (its database holds
//! records but no key check) is copied, sealed, into a new database, its texts into new
//! sealed segments; the new database takes the old one's place and the old database, its
//! segments and its per-text files are removed. Nothing is sealed in place: sled keeps old
//! versions of a value in its log until it compacts, so the unsealed values would outlive
//! their rewrite.
//!
//! Folders of `state/` during it, and what an open finds after a crash at any point
//! ([`recover_sealing`], before sled is opened):
//! - `db.sealing/` beside `db/`: the copy was not finished; it is removed and made again
//!   (the segments it wrote are named by nothing and swept like any unnamed segment);
//! - `db.sealing/` and `db.unsealed/`, no `db/`: the copy was done (its key check is its
//!   last write, synced), the swap half-way: `db.sealing/` becomes `db/`;
//! - `db.unsealed/` beside a sealed `db/`: the swap was done; what is left of the old store
//!   is removed ([`Store::finish_sealing`]), `db.unsealed/` last.

use std::path::Path;

use anyhow::{Context, Result};

use super::atrest::{CHECK_KEY, Cipher, Disk, DiskBatch};
use super::texts::{TextAt, text_key};
use super::{Store, open_sled};

const SEALING: &str = "db.sealing";
pub(super) const UNSEALED: &str = "db.unsealed";

/// Texts per new segment while sealing: bounds what is held in memory.
const TEXTS_PER_SEGMENT: usize = 1024;
/// Records per sled batch while sealing.
const RECORDS_PER_BATCH: usize = 4096;

/// Finishes or undoes what a crash left of a sealing (see the module doc).
pub(super) fn recover_sealing(state: &Path) -> Result<()> {
    let (db, sealing, unsealed) = (state.join("db"), state.join(SEALING), state.join(UNSEALED));
    if sealing.exists() {
        if db.exists() {
            std::fs::remove_dir_all(&sealing).with_context(|| format!("Removing {}", sealing.display()))?;
        } else if unsealed.exists() {
            std::fs::rename(&sealing, &db).with_context(|| format!("Renaming {}", sealing.display()))?;
            sync_dir(state)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("Syncing {}", dir.display()))
}

impl Store {
    /// Seals the older store whose database `plain` is (see the module doc); returns
    /// once `state/db` is the sealed copy, the old one moved to `db.unsealed/`.
    pub(super) fn seal_older(state: &Path, plain: sled::Db, cipher: &std::sync::Arc<Cipher>) -> Result<()> {
        let (dir, target) = (state.join("db"), state.join(SEALING));
        tracing::info!(store = %dir.display(), "Sealing a store made before at-rest sealing (once)");
        let started = std::time::Instant::now();
        let sealed = open_sled(&target).map_err(|e| anyhow::anyhow!("{e}"))?;
        let new = Store {
            db: Disk::new(sealed, cipher.clone()),
            dir: target.clone(),
            texts: state.join("texts"),
            lock: Default::default(),
            state_lock: Default::default(),
            answers: Default::default(),
            journal: Default::default(),
            applying: Default::default(),
        };
        let plain_text = |v: &[u8]| -> Result<Vec<u8>> {
            let at = TextAt::decode(v).context("a text entry that does not decode")?;
            read_range(&new.texts.join(&at.segment), at.offset, at.len)
        };
        let (mut records, mut texts, mut unreadable) = (0usize, 0usize, 0usize);
        let mut b = DiskBatch::default();
        let mut pending: Vec<(String, Vec<u8>)> = Vec::new();
        let flush_texts = |pending: &mut Vec<(String, Vec<u8>)>, b: &mut DiskBatch| -> Result<()> {
            for (k, v) in new.write_texts(pending.iter().map(|(r, t)| (r.as_str(), t.as_slice())))? {
                b.insert(k, v);
            }
            pending.clear();
            Ok(())
        };
        for item in plain.iter() {
            let (k, v) = item?;
            if let Some(rel) = k.strip_prefix(b"text/") {
                let rel = format!("{}.txt", String::from_utf8_lossy(rel));
                match plain_text(&v) {
                    Ok(t) => {
                        pending.push((rel, t));
                        texts += 1;
                    }
                    // A text the older store could not give back either (a segment cut
                    // short): left out, named in the log, rather than the whole store
                    // kept in clear.
                    Err(e) => {
                        tracing::warn!(text = %rel, error = %format!("{e:#}"), "A text of the older store is unreadable; left out of the sealed copy");
                        unreadable += 1;
                    }
                }
                if pending.len() >= TEXTS_PER_SEGMENT {
                    flush_texts(&mut pending, &mut b)?;
                }
            } else {
                b.insert(&k, &v);
                records += 1;
            }
            if b.len() >= RECORDS_PER_BATCH {
                new.db.apply_batch(std::mem::take(&mut b))?;
            }
        }
        // Texts of stores of before segments: a file per text, no `text/` entry.
        for (rel, path) in legacy_texts(&new.texts)? {
            if plain.get(text_key(&rel))?.is_none() {
                let t = std::fs::read(&path).with_context(|| format!("Reading {}", path.display()))?;
                pending.push((rel, t));
                texts += 1;
            }
        }
        flush_texts(&mut pending, &mut b)?;
        new.db.apply_batch(b)?;
        new.sync()?;
        // The key check last: its presence says the copy is whole.
        new.db.sled().insert(CHECK_KEY, cipher.check_value()?)?;
        new.sync()?;
        drop(new);
        drop(plain);
        std::fs::rename(&dir, state.join(UNSEALED)).with_context(|| format!("Renaming {}", dir.display()))?;
        std::fs::rename(&target, &dir).with_context(|| format!("Renaming {}", target.display()))?;
        sync_dir(state)?;
        tracing::info!(records, texts, unreadable, seconds = started.elapsed().as_secs_f64(), "Store sealed");
        Ok(())
    }

    /// Removes what is left of an older store once its sealed copy is in place: its
    /// segments (named by no entry of the sealed store), its per-text files, its
    /// database (last: while it is there, an open comes back here).
    pub(super) fn finish_sealing(&self, state: &Path) -> Result<()> {
        let unsealed = state.join(UNSEALED);
        if !unsealed.exists() {
            return Ok(());
        }
        // The old store must really be gone from use: this one is sealed.
        if self.db.get(CHECK_KEY)?.is_none() {
            anyhow::bail!("{} is there but the store is not sealed", unsealed.display());
        }
        self.sweep_segments()?;
        for (_, path) in legacy_texts(&self.texts)? {
            std::fs::remove_file(&path).with_context(|| format!("Removing {}", path.display()))?;
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent); // only when empty
            }
        }
        std::fs::remove_dir_all(&unsealed).with_context(|| format!("Removing {}", unsealed.display()))?;
        sync_dir(state)
    }
}

/// The per-text files of stores of before segments: `texts/<case id>/<n:06>.txt`.
fn legacy_texts(texts: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(texts) else { return Ok(out) };
    for d in dirs {
        let d = d?;
        if !d.file_type()?.is_dir() {
            continue;
        }
        let case = d.file_name().to_string_lossy().into_owned();
        // Case ids are ours: letters, digits and dashes.
        if case.is_empty() || !case.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        for f in std::fs::read_dir(d.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            let numbered =
                name.strip_suffix(".txt").is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()));
            if numbered && f.file_type()?.is_file() {
                out.push((format!("{case}/{name}"), f.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `len` bytes at `offset` of `path`, never past its end.
fn read_range(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).with_context(|| format!("Opening {}", path.display()))?;
    let size = f.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        anyhow::bail!("{}: a range past the end of the file", path.display());
    }
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::fixtures::{key, reopen};
    use super::*;
    use crate::case::KeySource;
    use crate::store::certs::StoredCert;
    use crate::store::{OpenError, StoreKey};

    const SEGMENT: &str = "20260101T000000.000000000-1-0.seg";
    const TEXT0: &str = "The first report: a very secret heap overflow in the parser.";
    const TEXT1: &str = "A follow-up, very secret too, in the same segment.";
    const LEGACY: &str = "A text of before segments, very secret, in a file of its own.";
    const LEGACY_FILE: &str = "texts/SEC-2025-0001/000000.txt";

    fn stored_cert() -> StoredCert {
        StoredCert {
            fingerprint: "AB".repeat(20),
            source: KeySource::Autocrypt,
            armored: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nalice@reporter.example's very secret key\n".into(),
        }
    }

    /// A store as the version before at-rest sealing wrote it: plain JSON values, a
    /// `cert/` key naming the address, texts in a plain segment and in a per-text file.
    fn older_store(state: &Path) {
        let db = sled::Config::new().path(state.join("db")).open().unwrap();
        let case =
            |id: &str, title: &str| serde_json::to_vec(&serde_json::json!({ "id": id, "title": title })).unwrap();
        db.insert("case/SEC-2026-0001", case("SEC-2026-0001", "a very secret title")).unwrap();
        db.insert("case/SEC-2025-0001", case("SEC-2025-0001", "another very secret title")).unwrap();
        db.insert("cert/alice@reporter.example", serde_json::to_vec(&stored_cert()).unwrap()).unwrap();
        db.insert("outq/OUT-1", b"").unwrap();
        std::fs::create_dir_all(state.join("texts")).unwrap();
        std::fs::write(state.join("texts").join(SEGMENT), format!("{TEXT0}{TEXT1}")).unwrap();
        let at = |offset: usize, len: usize| format!("{SEGMENT}\0{offset}\0{len}").into_bytes();
        db.insert("text/SEC-2026-0001/000000", at(0, TEXT0.len())).unwrap();
        db.insert("text/SEC-2026-0001/000001", at(TEXT0.len(), TEXT1.len())).unwrap();
        let legacy = state.join(LEGACY_FILE);
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, LEGACY).unwrap();
        db.flush().unwrap();
    }

    /// Everything of [`older_store`] reads back through the store, sealed: no file holds
    /// a title, the address or a text, and what was left of the old store is gone.
    fn check_sealed(state: &Path, s: &Store) {
        let title =
            |id: &str| s.get_json::<serde_json::Value>(&format!("case/{id}")).unwrap().unwrap()["title"].clone();
        assert_eq!(title("SEC-2026-0001"), "a very secret title");
        assert_eq!(title("SEC-2025-0001"), "another very secret title");
        assert_eq!(s.cert("alice@reporter.example").unwrap().unwrap().armored, stored_cert().armored);
        assert_eq!(s.certs().unwrap().into_iter().map(|c| c.0).collect::<Vec<_>>(), ["alice@reporter.example"]);
        assert_eq!(s.get(b"outq/OUT-1").unwrap().as_deref(), Some(&b""[..]), "an empty value stays");
        let text = |rel: &str| s.text(rel).unwrap().map(|t| String::from_utf8(t).unwrap());
        assert_eq!(text("SEC-2026-0001/000000.txt").as_deref(), Some(TEXT0));
        assert_eq!(text("SEC-2026-0001/000001.txt").as_deref(), Some(TEXT1));
        assert_eq!(text("SEC-2025-0001/000000.txt").as_deref(), Some(LEGACY));
        assert!(s.get(&text_key("SEC-2025-0001/000000.txt")).unwrap().is_some(), "the legacy text has an entry");

        for gone in [UNSEALED, SEALING, LEGACY_FILE, &format!("texts/{SEGMENT}")] {
            assert!(!state.join(gone).exists(), "{gone} is still there");
        }
        let mut todo = vec![state.to_path_buf()];
        let mut files = 0;
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                    continue;
                }
                files += 1;
                let bytes = std::fs::read(e.path()).unwrap();
                for needle in ["very secret", "alice@reporter.example", "heap overflow", "follow-up", "of its own"] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle:?} in {}",
                        e.path().display()
                    );
                }
            }
        }
        assert!(files > 2, "{files} files");
    }

    #[test]
    fn an_older_store_is_sealed_once_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        older_store(dir.path());
        let s = Store::open(dir.path(), &key()).unwrap();
        check_sealed(dir.path(), &s);
        drop(s);
        // Sealed stays sealed: the next open reads it as it is.
        let s = reopen(dir.path());
        check_sealed(dir.path(), &s);
        drop(s);
        // And it is sealed with that key.
        let other = StoreKey::from_bytes(&[1; 32]).unwrap();
        let e = (|| loop {
            match Store::try_open(dir.path(), &other) {
                Err(OpenError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
                r => return r,
            }
        })();
        assert!(matches!(e, Err(OpenError::WrongKey(_))), "{:?}", e.err());
    }

    /// A crash in the copy: `db.sealing/` (half a copy) beside `db/`: done again.
    #[test]
    fn a_sealing_cut_short_in_the_copy_is_done_again() {
        let dir = tempfile::tempdir().unwrap();
        older_store(dir.path());
        {
            let half = sled::Config::new().path(dir.path().join(SEALING)).open().unwrap();
            half.insert("case/SEC-2026-0001", &b"half a copy"[..]).unwrap();
            half.insert("case/SEC-2099-0001", &b"only in the half copy"[..]).unwrap();
            half.flush().unwrap();
        }
        let s = Store::open(dir.path(), &key()).unwrap();
        check_sealed(dir.path(), &s);
        assert!(s.get(b"case/SEC-2099-0001").unwrap().is_none(), "the half copy was not thrown away");
    }

    /// A crash in the swap: `db.sealing/` (whole) and `db.unsealed/`, no `db/`: the swap
    /// is finished, then what is left of the old store is removed.
    #[test]
    fn a_sealing_cut_short_in_the_swap_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        older_store(dir.path());
        // The old store as it was, to put back where the swap had left it.
        let old = tempfile::tempdir().unwrap();
        copy(&dir.path().join("db"), &old.path().join("db"));
        drop(Store::open(dir.path(), &key()).unwrap());
        // Let sled's last write finish (reopen waits for its lock).
        drop(reopen(dir.path()));
        std::fs::rename(dir.path().join("db"), dir.path().join(SEALING)).unwrap();
        copy(&old.path().join("db"), &dir.path().join(UNSEALED));
        std::fs::write(dir.path().join("texts").join(SEGMENT), format!("{TEXT0}{TEXT1}")).unwrap();
        std::fs::create_dir_all(dir.path().join("texts/SEC-2025-0001")).unwrap();
        std::fs::write(dir.path().join(LEGACY_FILE), LEGACY).unwrap();
        let s = reopen(dir.path());
        check_sealed(dir.path(), &s);
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
}
