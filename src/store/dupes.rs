//! The duplicate index: each case's duplicate signals and the keys that find it, so a new
//! report is compared with the cases its keys name, never with every case.
//!
//! Keys:
//! - `dsig/<case>` -> the case's signals (JSON, `triage::similar::Signals`)
//! - `dmh/<case>` -> its MinHash as raw bytes: the cheap first look at a candidate
//! - `dkey/<key>/<case>` -> empty: one entry per index key of the case (an LSH band, an
//!   attachment SHA-256, a PoC digest, a CWE with a component); the keys are made by the
//!   caller (`pipeline::dupes`), this family only records and looks them up
//! - `meta/dupes-indexed` -> empty: every case of the store has its entries (see
//!   `pipeline::dupes::ensure_index`)
//!
//! Invariants: a case's `dsig/` and its `dkey/` entries are written in one batch, the
//! intake's one for a new case (so the next message of the same group already finds
//! it). A lookup reads at most [`BUCKET_CAP`] cases per key, so its cost is bounded
//! whatever the number of cases: a key that many cases share (a common band, a
//! popular component) says little, and the oldest cases it names are the ones read
//! (case ids sort by year and number), the originals a duplicate is most likely of.

use std::collections::BTreeSet;

use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Batch, Store};

/// Cases read per index key at most (see the module doc): 21 bands x 32 cases is at
/// most 672 MinHashes (256 bytes each) per new report, and whole signal records only for
/// those that pass the MinHash's first look.
pub const BUCKET_CAP: usize = 32;

impl Batch {
    /// Records a case's duplicate signals and its index keys.
    pub fn put_dup_signals<T: Serialize>(&mut self, case_id: &str, signals: &T, minhash: &[u8], keys: &[String]) {
        self.json(format!("dsig/{case_id}"), signals);
        self.ops.push((format!("dmh/{case_id}").into_bytes(), Some(minhash.to_vec())));
        for k in keys {
            self.ops.push((format!("dkey/{k}/{case_id}").into_bytes(), Some(Vec::new())));
        }
    }

    /// Forgets a case's index keys (before they are written anew by a reindex).
    pub fn remove_dup_keys(&mut self, case_id: &str, keys: &[String]) {
        for k in keys {
            self.ops.push((format!("dkey/{k}/{case_id}").into_bytes(), None));
        }
    }

    /// Marks the duplicate index as holding every case.
    pub fn put_dupes_indexed(&mut self) {
        self.ops.push((b"meta/dupes-indexed".to_vec(), Some(Vec::new())));
    }
}

impl Store {
    /// A case's duplicate signals, None when it has none recorded.
    pub fn dup_signals<T: DeserializeOwned>(&self, case_id: &str) -> Result<Option<T>> {
        self.get_json(&format!("dsig/{case_id}"))
    }

    /// A case's MinHash (raw bytes), None when it has none recorded.
    pub fn dup_minhash(&self, case_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(format!("dmh/{case_id}").as_bytes())?.map(|v| v.to_vec()))
    }

    /// The cases any of `keys` names, at most [`BUCKET_CAP`] per key, `except` left out.
    pub fn dup_lookup(&self, keys: &[String], except: &str) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for k in keys {
            let prefix = format!("dkey/{k}/");
            let mut n = 0;
            self.scan_prefix(&prefix, |key, _| {
                let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                if id != except {
                    out.insert(id);
                }
                n += 1;
                Ok(n < BUCKET_CAP)
            })?;
        }
        Ok(out)
    }

    /// Whether every case has its duplicate index entries.
    pub fn dupes_indexed(&self) -> Result<bool> {
        Ok(self.get(b"meta/dupes-indexed")?.is_some())
    }

    /// What the duplicate index holds on disk: (cases with signals, bytes of keys and
    /// values), for the benchmark and `store reindex`.
    pub fn dup_index_bytes(&self) -> Result<(u64, u64)> {
        let (mut cases, mut bytes) = (0u64, 0u64);
        self.scan_prefix("dsig/", |k, v| {
            cases += 1;
            bytes += (k.len() + v.len()) as u64;
            Ok(true)
        })?;
        for prefix in ["dkey/", "dmh/"] {
            self.scan_prefix(prefix, |k, v| {
                bytes += (k.len() + v.len()) as u64;
                Ok(true)
            })?;
        }
        Ok((cases, bytes))
    }
}
