//! The search index: an inverted index of the cases' terms whose terms are never on disk.
//!
//! A term is stored as the first 8 bytes (hex) of its HMAC-SHA256 under the store's
//! index key ([`Store::derived_key`]`("search-index")`): what the index holds is which
//! case holds a keyed hash how often, never a word; without the key the postings say
//! nothing of the text, and the at-rest work (issue 24) wraps that one key. A case is
//! indexed in parts (`m<n>` each message's text, `meta` its title, names and ids, `notes`
//! its notes), so a follow-up adds its part without reading the others again.
//!
//! Keys:
//! - `meta/key/<name>` -> 32 random bytes, made once at open ([`Store::derived_key`])
//! - `spost/<term hash>/<case>/<part>` -> the term's frequency in the part and the part's
//!   length in terms (u32 BE each): a query reads its terms' postings and nothing else
//! - `sdoc/<case>/<part>` -> the part's length and term hashes (JSON), to remove them and
//!   correct the statistics when the part is indexed again
//! - `meta/search-stats` -> how many parts are indexed and their total length (BM25's N
//!   and average length), kept by every write of a part
//! - `squeue/<case>` -> u32 BE, the first message not yet indexed: what intake queued
//!   (one key per message, in its commit) for the index to take in off the message's path
//!   (`pipeline::search::drain`: the SLA clock and every query)
//! - `meta/search-indexed` -> empty: every case is in the index (`store reindex` and the
//!   first search build it when missing)
//!
//! Invariants: a part's postings, length and term list are written (and the old ones
//! removed) in one batch. Nothing here is text: snippets are made at query time from the
//! case's texts.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{Batch, Store};

/// Bytes of a derived key.
pub const KEY_BYTES: usize = 32;

/// HMAC-SHA256 (RFC 2104): the keyed hash of a term. Written out rather than taken
/// from a crate: twelve lines over `sha2`, checked against RFC 4231 below.
pub fn hmac_sha256(key: &[u8; KEY_BYTES], msg: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..KEY_BYTES].copy_from_slice(key);
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

/// What a term is stored as: 8 bytes of its keyed hash (collisions among a store's
/// terms are one in about 10^19 pairs; a collision only ranks a case a little higher).
fn term_key(key: &[u8; KEY_BYTES], term: &str) -> String {
    hex::encode(&hmac_sha256(key, term.as_bytes())[..8])
}

/// One indexed part of a case.
pub struct Part<'a> {
    /// `m0`, `m1`, ... (message texts), `meta`, `notes`.
    pub name: &'a str,
    /// Term -> frequency in the part.
    pub tf: &'a std::collections::BTreeMap<String, u32>,
    pub len: u32,
}

/// A posting read back: the case, the part, the frequency, the part's length.
pub type Posting = (String, String, u32, u32);

/// BM25's collection statistics: parts indexed and their total length.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub parts: u64,
    pub total_len: u64,
}

/// What `sdoc/` holds of an indexed part.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Doc {
    len: u32,
    terms: Vec<String>,
}

impl Store {
    /// A key for one purpose, made randomly once per store and kept in its meta
    /// (`meta/key/<name>`). The one place such keys come from: the at-rest work wraps it.
    pub fn derived_key(&self, name: &str) -> Result<[u8; KEY_BYTES]> {
        let v =
            self.get(format!("meta/key/{name}").as_bytes())?.with_context(|| format!("the store has no {name} key"))?;
        <[u8; KEY_BYTES]>::try_from(v.as_ref()).ok().with_context(|| format!("the store's {name} key is damaged"))
    }

    /// Makes the derived keys a store needs, once (at open, before anyone writes).
    pub(super) fn make_keys(&self) -> Result<()> {
        let k = b"meta/key/search-index";
        if self.db.get(k)?.is_none() {
            let mut key = [0u8; KEY_BYTES];
            sequoia_openpgp::crypto::random(&mut key[..]).context("Making the search index key")?;
            let mut b = Batch::default();
            b.ops.push((k.to_vec(), Some(key.to_vec())));
            self.apply(b)?;
        }
        Ok(())
    }

    /// The collection statistics as the index holds them now.
    pub fn search_stats(&self) -> Result<Stats> {
        Ok(self.get_json("meta/search-stats")?.unwrap_or_default())
    }

    /// Writes a part of a case into the index, removing what the part held before, and
    /// the statistics `stats` (read with [`Store::search_stats`] by the caller, carried
    /// across the parts of one batch) corrected for it.
    pub fn put_search_part(&self, b: &mut Batch, case_id: &str, part: &Part, stats: &mut Stats) -> Result<()> {
        let key = self.derived_key("search-index")?;
        let doc_key = format!("sdoc/{case_id}/{}", part.name);
        match self.get_json::<Doc>(&doc_key)? {
            Some(old) => {
                for h in old.terms {
                    b.ops.push((format!("spost/{h}/{case_id}/{}", part.name).into_bytes(), None));
                }
                stats.total_len = stats.total_len.saturating_sub(u64::from(old.len));
            }
            None => stats.parts += 1,
        }
        stats.total_len += u64::from(part.len);
        let mut terms = Vec::with_capacity(part.tf.len());
        for (term, n) in part.tf {
            let h = term_key(&key, term);
            let mut v = n.to_be_bytes().to_vec();
            v.extend_from_slice(&part.len.to_be_bytes());
            b.ops.push((format!("spost/{h}/{case_id}/{}", part.name).into_bytes(), Some(v)));
            terms.push(h);
        }
        b.json(doc_key, &Doc { len: part.len, terms });
        b.json("meta/search-stats".into(), stats);
        Ok(())
    }

    /// Queues a case's parts for the index: its `meta` and its messages from `from` on
    /// (an earlier queued message is kept: the lower of the two).
    pub fn queue_search(&self, b: &mut Batch, case_id: &str, from: u32) -> Result<()> {
        let key = format!("squeue/{case_id}");
        let from = match self.get(key.as_bytes())?.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok()) {
            Some(old) => from.min(u32::from_be_bytes(old)),
            None => from,
        };
        b.ops.push((key.into_bytes(), Some(from.to_be_bytes().to_vec())));
        Ok(())
    }

    /// Up to `cap` queued cases with the first message to index.
    pub fn search_queue(&self, cap: usize) -> Result<Vec<(String, u32)>> {
        let mut out = Vec::new();
        self.scan_prefix("squeue/", |k, v| {
            let id = String::from_utf8_lossy(&k[7..]).into_owned();
            let from = <[u8; 4]>::try_from(v).map(u32::from_be_bytes).unwrap_or(0);
            out.push((id, from));
            Ok(out.len() < cap)
        })?;
        Ok(out)
    }

    /// Takes a case off the queue (in the batch that indexes it).
    pub fn unqueue_search(&self, b: &mut Batch, case_id: &str) {
        b.ops.push((format!("squeue/{case_id}").into_bytes(), None));
    }

    /// Marks the search index as holding every case.
    pub fn put_search_indexed(&self, b: &mut Batch) {
        b.ops.push((b"meta/search-indexed".to_vec(), Some(Vec::new())));
    }

    /// Whether every case is in the search index.
    pub fn search_indexed(&self) -> Result<bool> {
        Ok(self.get(b"meta/search-indexed")?.is_some())
    }

    /// Every posting of `term`.
    pub fn search_postings(&self, term: &str) -> Result<Vec<Posting>> {
        let key = self.derived_key("search-index")?;
        let prefix = format!("spost/{}/", term_key(&key, term));
        let mut out = Vec::new();
        self.scan_prefix(&prefix, |k, v| {
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let (Some((case, part)), Some(tf), Some(len)) = (
                rest.rsplit_once('/'),
                v.get(..4).and_then(|x| <[u8; 4]>::try_from(x).ok()),
                v.get(4..8).and_then(|x| <[u8; 4]>::try_from(x).ok()),
            ) {
                out.push((case.to_owned(), part.to_owned(), u32::from_be_bytes(tf), u32::from_be_bytes(len)));
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Removes the whole search index (`store reindex` writes it anew).
    pub fn clear_search(&self, b: &mut Batch) -> Result<()> {
        for prefix in ["spost/", "sdoc/", "squeue/"] {
            self.scan_prefix(prefix, |k, _| {
                b.ops.push((k.to_vec(), None));
                Ok(true)
            })?;
        }
        b.ops.push((b"meta/search-indexed".to_vec(), None));
        b.ops.push((b"meta/search-stats".to_vec(), None));
        Ok(())
    }

    /// Bytes the search index takes (keys and values).
    pub fn search_index_bytes(&self) -> Result<u64> {
        let mut bytes = 0u64;
        for prefix in ["spost/", "sdoc/"] {
            self.scan_prefix(prefix, |k, v| {
                bytes += (k.len() + v.len()) as u64;
                Ok(true)
            })?;
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_1_for_a_32_byte_key() {
        // RFC 4231 test case 1 uses a 20-byte key; HMAC pads keys with zeros to the
        // block, so the same key zero-padded to 32 bytes gives the same MAC.
        let mut key = [0u8; KEY_BYTES];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn the_key_is_made_once_and_terms_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
        let k = s.derived_key("search-index").unwrap();
        assert_ne!(k, [0u8; KEY_BYTES]);
        let mut tf = std::collections::BTreeMap::new();
        tf.insert("overflowsecretword".to_owned(), 2);
        let mut b = Batch::default();
        let mut stats = s.search_stats().unwrap();
        s.put_search_part(&mut b, "SEC-2026-0001", &Part { name: "m0", tf: &tf, len: 2 }, &mut stats).unwrap();
        s.write(|tx| tx.commit(b)).unwrap();
        assert_eq!(s.search_postings("overflowsecretword").unwrap(), vec![("SEC-2026-0001".into(), "m0".into(), 2, 2)]);
        assert_eq!(s.search_stats().unwrap(), Stats { parts: 1, total_len: 2 });
        drop(s);
        let s = super::super::fixtures::reopen(dir.path());
        assert_eq!(s.derived_key("search-index").unwrap(), k);
        s.sync().unwrap();
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut all = Vec::new();
        for e in walk(dir.path()) {
            all.extend(std::fs::read(e).unwrap());
        }
        assert!(!all.windows(18).any(|w| w == b"overflowsecretword"), "a term reached the disk in clear");
    }

    fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
        out
    }
}
