//! Reporter certs: the OpenPGP cert held for each reporter address (pinned on first use,
//! or given by an admin), with where it came from.
//!
//! Keys:
//! - `cert/<lowercased address>` -> StoredCert (the armored cert, its fingerprint, its source)
//!
//! Invariants: a cert is written (pinned, replaced, refreshed) in the commit that records
//! the message or the command that caused it, with its audit-log line; removing it lets
//! the next cert offered for the address be pinned. What a message does to a cert is
//! `pipeline::keys`'s decision, never this file's. Never an address as given in a key:
//! lowercased, so that one reporter has one cert.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Batch, Store};
use crate::case::KeySource;

/// A reporter's cert we hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredCert {
    pub fingerprint: String,
    pub source: KeySource,
    pub armored: String,
}

impl Batch {
    pub fn put_cert(&mut self, address: &str, c: &StoredCert) {
        self.json(format!("cert/{}", address.to_ascii_lowercase()), c);
    }
    /// Forgets the cert held for an address (the next one offered is pinned).
    pub fn remove_cert(&mut self, address: &str) {
        self.ops.push((format!("cert/{}", address.to_ascii_lowercase()).into_bytes(), None));
    }
}

impl Store {
    pub fn cert(&self, address: &str) -> Result<Option<StoredCert>> {
        self.get_json(&format!("cert/{}", address.to_ascii_lowercase()))
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
}
