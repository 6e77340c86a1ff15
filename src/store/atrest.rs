//! At rest: what the store writes to disk is sealed with the store key, so a copy of the
//! state directory without that key holds no report text, subject, note or reporter
//! address.
//!
//! The store key ([`StoreKey`], 32 random bytes) is the caller's: `crate::atrest` keeps it
//! wrapped by the intake key (or takes it from a systemd credential). From it, HKDF-SHA256
//! derives two keys: one for AES-256-OCB over values and texts, one for HMAC-SHA256 over the
//! part of a key that names a person.
//!
//! What is sealed, and how:
//! - every non-empty value in sled: `0x01 || nonce (12) || ciphertext || tag (16)`, the
//!   associated data being the key as it is on disk (a value moved under another key does
//!   not open); an empty value (an index entry, a marker: the key is the information) stays
//!   empty, and so do the search postings' two counters (`spost/`: a term frequency and a
//!   length under a keyed term hash, [`CLEAR_VALUES`]);
//! - every text in a segment file, the same way, the associated data being its `text/` key;
//! - keys of the families in [`HASHED`] (a reporter's address, a Message-ID, a duplicate
//!   index key, a sender's digest after the prefix; for [`BY_SEGMENT`] only up to the next
//!   `/`): on disk as
//!   the prefix and 32 hex digits of the HMAC of the rest; the key itself travels inside
//!   the sealed value (`u32 BE length || key || value`), so a scan gives it back.
//!
//! What stays in clear, and why (the README's "At rest"): the other keys, which are our own
//! ids (case ids, outbox ids, dates, sequence numbers, SHA-256 digests of messages, IMAP
//! folder names and UIDs); value sizes; the search postings' counts; sled's own metadata. The key check `meta/at-rest` tells a
//! wrong key from a damaged store.
//!
//! Invariants: nothing reaches sled or a segment unsealed but what is listed above; a value
//! that does not open is an error naming its key, never an empty value; one store key per
//! store, checked at open.

use std::borrow::Cow;

use aes::Aes256;
use anyhow::{Context, Result, bail};
use eax::aead::consts::{U12, U16};
use eax::aead::generic_array::GenericArray;
use eax::aead::{AeadInPlace, KeyInit};
use ocb3::Ocb3;
use zeroize::Zeroizing;

/// The families whose keys name a person or their mail: a reporter's address (`cert/`,
/// `block/`), a Message-ID (`mail/`, `qmove/`: it may hold the sender's host, or their
/// address in some clients), a digest that confirms a message or signature someone holds
/// (`hash/`, `cmdsig/`). Hashed on disk; a scan of one reads it whole and sorts it.
pub const HASHED: &[&str] = &["cert/", "block/", "mail/", "qmove/", "hash/", "cmdsig/", "dkey/", "qfrom/"];

/// Of the [`HASHED`] families, those hashed by segment: only what comes before the next
/// `/` (a duplicate index key: a weakness class with a component, a PoC or attachment
/// digest; a sender's digest), the rest (a case or quarantine id) after it in clear, so a
/// scan of one segment reads only that segment, in order.
const BY_SEGMENT: &[&str] = &["dkey/", "qfrom/"];

/// The families whose values stay in clear: counters under keyed term hashes (`spost/`);
/// MinHash signatures (`dmh/`: 64 minima of hashed word shingles, read for each of up to
/// 21 x 32 candidates of every message; they show no text, they confirm a guessed
/// near-duplicate, as the duplicate index's case ids do).
pub const CLEAR_VALUES: &[&str] = &["spost/", "dmh/"];

/// Writes in a batch from which sealing is shared by two threads.
const PARALLEL_SEAL: usize = 256;

/// The key check: a sealed constant, so a wrong key is told apart at open.
pub(super) const CHECK_KEY: &[u8] = b"meta/at-rest";
const CHECK_VALUE: &[u8] = b"secintake store, sealed v1";

/// The format byte of a sealed value.
const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;
/// What sealing adds to a value.
pub const OVERHEAD: usize = 1 + NONCE + TAG;

/// The store key: 32 bytes, wiped on drop. Where it comes from is `crate::atrest`'s.
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// A new random key.
    pub fn generate() -> Result<StoreKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        sequoia_openpgp::crypto::random(&mut k[..]).context("Making the store key")?;
        Ok(StoreKey(k))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        if bytes.len() != k.len() {
            bail!("a store key is 32 bytes, not {}", bytes.len());
        }
        k.copy_from_slice(bytes);
        Ok(StoreKey(k))
    }

    /// The key's bytes (to wrap it, or to write it as a credential).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The keys derived from a [`StoreKey`], ready to use.
pub(super) struct Cipher {
    aead: Ocb3<Aes256, U12, U16>,
    names: Zeroizing<[u8; 32]>,
    /// Nonces: a random 32-bit prefix and a 64-bit counter from a random start, both drawn
    /// when the cipher is made: unique within a process, and two processes (the daemon, a
    /// command) collide only if both prefixes and their counter ranges do (about n / 2^96
    /// for n values sealed), without a call to the generator per value.
    nonce_prefix: [u8; 4],
    nonce_counter: std::sync::atomic::AtomicU64,
    /// Whether the nonces' start came from the generator (else sealing refuses).
    random: bool,
    /// Values opened lately (at most [`CACHE_VALUE`] bytes each, [`CACHE_ENTRIES`] of
    /// them), by nonce and tag, with the key they are under (compared on a hit): the duplicate lookup reads the signals of the same candidates
    /// message after message (a flood of similar reports reads hundreds per message), and
    /// decrypting them again was most of what sealing cost intake.
    #[allow(clippy::type_complexity)]
    opened: std::sync::Mutex<std::collections::HashMap<[u8; NONCE + TAG], (Box<[u8]>, Box<[u8]>)>>,
}

/// What an opened value is kept under: its nonce and tag.
fn cache_id(nonce: &[u8], tag: &[u8]) -> [u8; NONCE + TAG] {
    let mut id = [0u8; NONCE + TAG];
    id[..NONCE].copy_from_slice(nonce);
    id[NONCE..].copy_from_slice(tag);
    id
}

/// Values up to this size are kept opened in memory (a case's duplicate signals are about
/// 1.5 KB; texts and mails are not kept).
const CACHE_VALUE: usize = 4096;
/// At most this many opened values (at most 32 MiB): 21 bands x 32 candidates is 672.
const CACHE_ENTRIES: usize = 8192;

impl Cipher {
    pub(super) fn new(key: &StoreKey) -> Cipher {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"secintake store"), key.expose());
        let mut values = Zeroizing::new([0u8; 32]);
        let mut names = Zeroizing::new([0u8; 32]);
        // 32 bytes are always within HKDF-SHA256's 8,160.
        let _ = hk.expand(b"values v1", &mut values[..]);
        let _ = hk.expand(b"names v1", &mut names[..]);
        let mut start = [0u8; 12];
        // Without randomness the process has no business sealing: a fixed start would
        // repeat nonces across processes. Sequoia's generator (OpenSSL's) does not fail
        // on a working system; a failure is told on the first seal.
        let random = sequoia_openpgp::crypto::random(&mut start[..]).is_ok();
        let mut nonce_prefix = [0u8; 4];
        nonce_prefix.copy_from_slice(&start[..4]);
        let counter = u64::from_be_bytes(start[4..].try_into().unwrap_or_default());
        Cipher {
            aead: Ocb3::new(GenericArray::from_slice(&values[..])),
            names,
            nonce_prefix,
            nonce_counter: std::sync::atomic::AtomicU64::new(if random { counter } else { 0 }),
            random,
            opened: Default::default(),
        }
    }

    /// `plain` sealed, bound to `ad`.
    pub(super) fn seal(&self, ad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.push(VERSION);
        if !self.random {
            bail!("No randomness for the store's nonces");
        }
        let mut nonce = [0u8; NONCE];
        nonce[..4].copy_from_slice(&self.nonce_prefix);
        let n = self.nonce_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce), ad, &mut out[start..])
            .map_err(|_| anyhow::anyhow!("a value too large to seal ({} bytes)", plain.len()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// A sealed value opened, checked against `ad`.
    pub(super) fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < OVERHEAD || sealed[0] != VERSION {
            bail!("not a sealed value (or a format this version does not read)");
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        // A value opened lately: its nonce is its own (never reused), the tag
        // and the key it is under (`ad`, compared) bind the hit to the same sealed bytes.
        let id = (ct.len() <= CACHE_VALUE).then(|| cache_id(nonce, tag));
        if let Some(id) = &id
            && let Some((k, v)) = self.opened.lock().unwrap_or_else(|e| e.into_inner()).get(id)
            && k.as_ref() == ad
        {
            return Ok(v.to_vec());
        }
        let mut buf = ct.to_vec();
        self.aead
            .decrypt_in_place_detached(GenericArray::from_slice(nonce), ad, &mut buf, GenericArray::from_slice(tag))
            .map_err(|_| anyhow::anyhow!("does not open with the store key (damaged, or another store's)"))?;
        if let Some(id) = id {
            self.remember(id, ad, &buf);
        }
        Ok(buf)
    }

    /// Keeps an opened value (see [`Cipher::opened`]).
    fn remember(&self, id: [u8; NONCE + TAG], ad: &[u8], plain: &[u8]) {
        let mut c = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= CACHE_ENTRIES {
            c.clear(); // bounded, and simple: the working set comes back at once
        }
        c.insert(id, (ad.into(), plain.into()));
    }

    /// The key as it is on disk.
    pub(super) fn disk_key<'a>(&self, key: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(p) = hashed_prefix(key) else { return Cow::Borrowed(key) };
        let rest = &key[p.len()..];
        let (hashed, tail) = match rest.iter().position(|&b| b == b'/') {
            Some(i) if BY_SEGMENT.contains(&p) => rest.split_at(i),
            _ => (rest, &b""[..]),
        };
        // The prefix too: the same address under `cert/` and `block/` are two unrelated
        // hashes (a copy does not tell which blocked reporters have a pinned cert).
        let mac = super::search::hmac_sha256(&self.names, &key[..p.len() + hashed.len()]);
        let mut k = p.as_bytes().to_vec();
        k.extend_from_slice(hex::encode(&mac[..16]).as_bytes());
        k.extend_from_slice(tail);
        Cow::Owned(k)
    }

    /// For a scan of one segment of a [`BY_SEGMENT`] family (`from` = `<prefix><segment>/...`,
    /// `to` within it or its end), the same range on disk.
    fn segment_range<'a>(&self, from: &'a [u8], to: &[u8]) -> Option<(&'a [u8], Vec<u8>, Vec<u8>)> {
        let p = BY_SEGMENT.iter().find(|p| from.starts_with(p.as_bytes()))?;
        let i = p.len() + from[p.len()..].iter().position(|&b| b == b'/')? + 1;
        let seg = &from[..i]; // `<prefix><segment>/`
        let mut seg_end = seg.to_vec();
        *seg_end.last_mut()? += 1;
        let disk_seg = self.disk_key(seg).into_owned(); // `<prefix><mac>/`
        let map = |x: &[u8]| [&disk_seg[..], &x[seg.len()..]].concat();
        let disk_to = if to == seg_end.as_slice() {
            let mut e = disk_seg.clone();
            *e.last_mut()? += 1;
            e
        } else if to.starts_with(seg) {
            map(to)
        } else {
            return None;
        };
        Some((seg, map(from), disk_to))
    }

    /// The value as it is on disk for `key` (already [`Cipher::disk_key`]ed as `dk`).
    pub(super) fn seal_value(&self, key: &[u8], dk: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        if hashed_prefix(key).is_some() {
            let mut plain = Vec::with_capacity(4 + key.len() + v.len());
            plain.extend_from_slice(&(key.len() as u32).to_be_bytes());
            plain.extend_from_slice(key);
            plain.extend_from_slice(v);
            return self.seal(dk, &plain);
        }
        if v.is_empty() || CLEAR_VALUES.iter().any(|p| key.starts_with(p.as_bytes())) {
            return Ok(v.to_vec());
        }
        self.seal(dk, v)
    }

    /// The value read from disk under `dk`, as the family wrote it (for a read by key:
    /// the key is the caller's).
    pub(super) fn open_value(&self, dk: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        if hashed_prefix(dk).is_none() {
            if v.is_empty() || CLEAR_VALUES.iter().any(|p| dk.starts_with(p.as_bytes())) {
                return Ok(v.to_vec());
            }
            return self.open(dk, v).with_context(|| format!("Reading store entry {}", String::from_utf8_lossy(dk)));
        }
        Ok(self.open_entry(dk, v)?.1)
    }

    /// A (key, value) read from disk, as the families wrote it.
    pub(super) fn open_entry(&self, dk: &[u8], v: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let what = || format!("Reading store entry {}", String::from_utf8_lossy(dk));
        if hashed_prefix(dk).is_some() {
            let plain = self.open(dk, v).with_context(what)?;
            let n = plain.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
            let Some(key) = n.and_then(|n| plain.get(4..4 + n)) else { bail!("{}: its key is cut short", what()) };
            if self.disk_key(key).as_ref() != dk {
                bail!("{}: it names another key", what());
            }
            return Ok((key.to_vec(), plain[4 + key.len()..].to_vec()));
        }
        if v.is_empty() || CLEAR_VALUES.iter().any(|p| dk.starts_with(p.as_bytes())) {
            return Ok((dk.to_vec(), v.to_vec()));
        }
        Ok((dk.to_vec(), self.open(dk, v).with_context(what)?))
    }

    /// The key check's value, to be stored under [`CHECK_KEY`].
    pub(super) fn check_value(&self) -> Result<Vec<u8>> {
        self.seal(CHECK_KEY, CHECK_VALUE)
    }

    /// Whether `v` (read from [`CHECK_KEY`]) was made with this key.
    pub(super) fn checks(&self, v: &[u8]) -> bool {
        self.open(CHECK_KEY, v).is_ok_and(|p| p == CHECK_VALUE)
    }
}

/// sled, seen through the [`Cipher`]: the only handle on the database the families' code
/// has, so no write reaches disk unsealed and every read comes back as it was written.
#[derive(Clone)]
pub(super) struct Disk {
    db: sled::Db,
    cipher: std::sync::Arc<Cipher>,
}

/// Writes for [`Disk::apply_batch`]: keys and values as the families see them.
#[derive(Default)]
pub(super) struct DiskBatch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl DiskBatch {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
    pub(super) fn insert(&mut self, k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) {
        self.0.push((k.as_ref().to_vec(), Some(v.as_ref().to_vec())));
    }
    pub(super) fn remove(&mut self, k: impl AsRef<[u8]>) {
        self.0.push((k.as_ref().to_vec(), None));
    }
}

impl Disk {
    pub(super) fn new(db: sled::Db, cipher: std::sync::Arc<Cipher>) -> Disk {
        Disk { db, cipher }
    }

    pub(super) fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    pub(super) fn get(&self, k: &[u8]) -> Result<Option<sled::IVec>> {
        let dk = self.cipher.disk_key(k);
        match self.db.get(&dk)? {
            None => Ok(None),
            Some(v) => Ok(Some(self.cipher.open_value(&dk, &v)?.into())),
        }
    }

    pub(super) fn insert(&self, k: &[u8], v: &[u8]) -> Result<()> {
        let dk = self.cipher.disk_key(k);
        let v = self.cipher.seal_value(k, &dk, v)?;
        self.db.insert(&dk, v)?;
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn remove(&self, k: &[u8]) -> Result<()> {
        self.db.remove(self.cipher.disk_key(k))?;
        Ok(())
    }

    /// Applies `b` atomically (one sled batch), each value sealed: a large batch (a
    /// group's) on two threads, as a group's commit holds the write lock meanwhile.
    pub(super) fn apply_batch(&self, b: DiskBatch) -> Result<()> {
        type Sealed = Vec<(Vec<u8>, Option<Vec<u8>>)>;
        let seal = |ops: &[(Vec<u8>, Option<Vec<u8>>)]| -> Result<Sealed> {
            ops.iter()
                .map(|(k, v)| {
                    let dk = self.cipher.disk_key(k);
                    let v = v.as_ref().map(|v| self.cipher.seal_value(k, &dk, v)).transpose()?;
                    Ok((dk.into_owned(), v))
                })
                .collect()
        };
        let sealed: Vec<Sealed> = if b.0.len() < PARALLEL_SEAL {
            vec![seal(&b.0)?]
        } else {
            let (first, second) = b.0.split_at(b.0.len() / 2);
            std::thread::scope(|sc| {
                let other = sc.spawn(|| seal(second));
                let mine = seal(first);
                let theirs = other.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a sealing thread panicked")));
                Ok::<_, anyhow::Error>(vec![mine?, theirs?])
            })?
        };
        let mut sb = sled::Batch::default();
        // In the batch's order: a key written twice keeps its last value.
        for (dk, v) in sealed.into_iter().flatten() {
            match v {
                Some(v) => sb.insert(dk, v),
                None => sb.remove(dk),
            }
        }
        self.db.apply_batch(sb)?;
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Every (key, value) in `from..to`, in key order, opened; `f` may stop the scan by
    /// returning false. A range holding a [`HASHED`] family is read whole and sorted.
    pub(super) fn range(&self, from: &[u8], to: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        if let Some((seg, disk_from, disk_to)) = self.cipher.segment_range(from, to) {
            // One segment of a BY_SEGMENT family: the key is the segment and the tail in
            // clear; an entry whose sealed value is the size of its key alone holds an
            // empty value (the index entries these families are), opened only otherwise.
            let disk_seg = disk_from.len() - (from.len() - seg.len());
            for item in self.db.range(disk_from..disk_to) {
                let (dk, v) = item?;
                let mut k = seg.to_vec();
                k.extend_from_slice(&dk[disk_seg.min(dk.len())..]);
                let empty = v.len() == OVERHEAD + 4 + k.len();
                let v = if empty { Vec::new() } else { self.cipher.open_entry(&dk, &v)?.1 };
                if !f(&k, &v)? {
                    break;
                }
            }
            return Ok(());
        }
        if !touches_hashed(from, to) {
            for item in self.db.range(from..to) {
                let (dk, v) = item?;
                let (k, v) = self.cipher.open_entry(&dk, &v)?;
                if !f(&k, &v)? {
                    break;
                }
            }
            return Ok(());
        }
        // The hashed families' keys are the HMAC on disk: read the whole of each one the
        // range touches, with the rest of the range, and put them in order.
        let (mut lo, mut hi) = (from.to_vec(), to.to_vec());
        for p in HASHED.iter().filter(|p| touches_hashed_one(p, from, to)) {
            lo = lo.min(p.as_bytes().to_vec());
            hi = hi.max(super::prefix_end(p));
        }
        let mut all = std::collections::BTreeMap::new();
        for item in self.db.range(lo..hi) {
            let (dk, v) = item?;
            let (k, v) = self.cipher.open_entry(&dk, &v)?;
            if k.as_slice() >= from && k.as_slice() < to {
                all.insert(k, v);
            }
        }
        for (k, v) in &all {
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }

    /// Every (key, value) of the store, opened, in no particular order.
    pub(super) fn each(&self, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        for item in self.db.iter() {
            let (dk, v) = item?;
            let (k, v) = self.cipher.open_entry(&dk, &v)?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Every key of the store, in no particular order, without opening a value (the
    /// hashed families' keys are opened: they are in their values).
    pub(super) fn each_key(&self, mut f: impl FnMut(&[u8]) -> Result<bool>) -> Result<()> {
        for item in self.db.iter() {
            let (dk, v) = item?;
            let k = if hashed_prefix(&dk).is_some() { self.cipher.open_entry(&dk, &v)?.0 } else { dk.to_vec() };
            if !f(&k)? {
                break;
            }
        }
        Ok(())
    }

    /// The database as sled has it (sealed), for copying it whole.
    pub(super) fn sled(&self) -> &sled::Db {
        &self.db
    }
}

/// The [`HASHED`] prefix `key` starts with.
fn hashed_prefix(key: &[u8]) -> Option<&'static str> {
    HASHED.iter().copied().find(|p| key.starts_with(p.as_bytes()))
}

/// Whether the range `from..to` holds keys of a [`HASHED`] family (whose disk order is
/// not their order).
pub(super) fn touches_hashed(from: &[u8], to: &[u8]) -> bool {
    HASHED.iter().any(|p| touches_hashed_one(p, from, to))
}

fn touches_hashed_one(prefix: &str, from: &[u8], to: &[u8]) -> bool {
    from < super::prefix_end(prefix).as_slice() && to > prefix.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> Cipher {
        Cipher::new(&StoreKey::from_bytes(&[7u8; 32]).unwrap())
    }

    #[test]
    fn values_open_only_under_their_key_and_store_key() {
        let c = cipher();
        let sealed = c.seal_value(b"case/SEC-1", b"case/SEC-1", b"{\"title\":\"secret\"}").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open_entry(b"case/SEC-1", &sealed).unwrap().1, b"{\"title\":\"secret\"}");
        assert!(c.open_entry(b"case/SEC-2", &sealed).is_err(), "moved under another key");
        let other = Cipher::new(&StoreKey::from_bytes(&[8u8; 32]).unwrap());
        assert!(other.open_entry(b"case/SEC-1", &sealed).is_err(), "another store's key");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(c.open_entry(b"case/SEC-1", &bad).is_err(), "a flipped bit");
        assert!(c.open_entry(b"case/SEC-1", b"{\"title\":\"plain\"}").is_err(), "an unsealed value");
        assert_eq!(c.seal_value(b"outq/1", b"outq/1", b"").unwrap(), b"", "empty values stay empty");
        assert_eq!(c.seal_value(b"spost/ab/SEC-1/m0", b"spost/ab/SEC-1/m0", b"12345678").unwrap(), b"12345678");
    }

    #[test]
    fn hashed_keys_hide_the_address_and_come_back() {
        let c = cipher();
        let key = b"cert/alice@reporter.example";
        let dk = c.disk_key(key).into_owned();
        assert!(!dk.windows(5).any(|w| w == b"alice"));
        assert!(dk.starts_with(b"cert/") && dk.len() == 5 + 32);
        let v = c.seal_value(key, &dk, b"").unwrap();
        let (k, v) = c.open_entry(&dk, &v).unwrap();
        assert_eq!((k.as_slice(), v.as_slice()), (&key[..], &b""[..]));
        let swapped = c.seal_value(b"cert/mallory@x.example", &dk, b"").unwrap();
        assert!(c.open_entry(&dk, &swapped).is_err(), "a value naming another key");
        assert!(touches_hashed(b"cert/", b"cert0"));
        assert!(touches_hashed(b"a", b"z"));
        assert!(!touches_hashed(b"case/", b"case0"));
    }

    /// A duplicate index key names a weakness class and a component: hashed; the case id
    /// after it stays, and a scan of one index key reads it alone, in order.
    #[test]
    fn segment_hashed_keys_scan_by_segment() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::new(sled::open(dir.path().join("db")).unwrap(), std::sync::Arc::new(cipher()));
        let mut b = DiskBatch::default();
        for (seg, case) in [("cwe:CWE-79:aa", "SEC-2"), ("cwe:CWE-79:aa", "SEC-1"), ("cwe:CWE-89:bb", "SEC-3")] {
            b.insert(format!("dkey/{seg}/{case}"), b"");
        }
        b.insert(b"qfrom/0123abcd/Q-1", b"");
        disk.apply_batch(b).unwrap();
        let dk = disk.cipher().disk_key(b"dkey/cwe:CWE-79:aa/SEC-1").into_owned();
        assert!(!dk.windows(6).any(|w| w == b"CWE-79") && dk.ends_with(b"/SEC-1"), "{}", String::from_utf8_lossy(&dk));
        let scan = |from: &[u8], to: &[u8]| {
            let mut got = Vec::new();
            disk.range(from, to, |k, _| {
                got.push(String::from_utf8(k.to_vec()).unwrap());
                Ok(true)
            })
            .unwrap();
            got
        };
        assert_eq!(
            scan(b"dkey/cwe:CWE-79:aa/", b"dkey/cwe:CWE-79:aa0"),
            ["dkey/cwe:CWE-79:aa/SEC-1", "dkey/cwe:CWE-79:aa/SEC-2"]
        );
        assert_eq!(scan(b"dkey/", b"dkey0").len(), 3, "the whole family");
        assert_eq!(scan(b"qfrom/0123abcd/", b"qfrom/0123abcd0"), ["qfrom/0123abcd/Q-1"]);
        for item in disk.sled().iter() {
            let (k, _) = item.unwrap();
            assert!(!k.windows(6).any(|w| w == b"CWE-79" || w == b"0123ab"), "{}", String::from_utf8_lossy(&k));
        }
    }

    #[test]
    fn the_key_check_tells_keys_apart() {
        let c = cipher();
        assert!(c.checks(&c.check_value().unwrap()));
        assert!(!Cipher::new(&StoreKey::from_bytes(&[9u8; 32]).unwrap()).checks(&c.check_value().unwrap()));
    }
}
