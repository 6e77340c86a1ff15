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
const UNSEALED: &str = "db.unsealed";

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
            answers: Default::default(),
            journal: Default::default(),
            applying: Default::default(),
        };
        let plain_text = |v: &[u8]| -> Result<Vec<u8>> {
            let at = TextAt::decode(v).context("a text entry that does not decode")?;
            read_range(&new.texts.join(&at.segment), at.offset, at.len)
        };
        let (mut records, mut texts) = (0usize, 0usize);
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
                pending
                    .push((rel, plain_text(&v).with_context(|| format!("Reading {}", String::from_utf8_lossy(&k)))?));
                texts += 1;
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
        tracing::info!(records, texts, seconds = started.elapsed().as_secs_f64(), "Store sealed");
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
