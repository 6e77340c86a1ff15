//! The store key: 32 random bytes made once per store, held wrapped (encrypted to every
//! intake key, signed by the current one: the caller's `seal`) and unwrapped once when
//! the keys are loaded; keys for particular uses are derived from it
//! ([`Store::derived_key`], HKDF-SHA256 with the use's label), so that what is keyed
//! with them (the search index's term hashes, records encrypted at rest) is useless in a
//! copy of the state directory without the intake key.
//!
//! Keys:
//! - `skey/store` -> JSON [`Wrapped`]: the wrapped key and the intake keys it is
//!   wrapped to. Journaled like any record, so a rebuilt store derives the same keys.
//!
//! The store never sees the intake key: wrapping and unwrapping are the caller's
//! closures (the store does not import OpenPGP). When the intake keys change (rotation:
//! a key added or removed), the key is wrapped again to the keys of now, so it stays
//! readable after the old key leaves the key file. Never the key itself in a record, a
//! log line or an error.

use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Batch, Store};

/// What `skey/store` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Wrapped {
    /// Fingerprints of the intake keys it is wrapped to.
    pub fingerprints: Vec<String>,
    /// The wrapped key (an armored OpenPGP message).
    pub wrapped: String,
}

const KEY: &str = "skey/store";

/// The unwrapped key, once known ([`Store::unlock_key`]).
pub(super) type Unlocked = std::sync::Arc<OnceLock<Zeroizing<[u8; 32]>>>;

impl Store {
    /// Unwraps the store key with `open` (made first with `fresh` and wrapped with `seal`
    /// when the store has none; wrapped again when `fingerprints`, the intake keys of
    /// now, differ from those it is wrapped to).
    pub fn unlock_key(
        &self,
        fingerprints: &[String],
        fresh: [u8; 32],
        seal: impl Fn(&[u8]) -> Result<Vec<u8>>,
        open: impl Fn(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let fresh = Zeroizing::new(fresh);
        self.write(|tx| {
            let held: Option<Wrapped> = self.get_json(KEY)?;
            let key: Zeroizing<[u8; 32]> = match &held {
                Some(w) => {
                    let bytes = Zeroizing::new(open(w.wrapped.as_bytes()).context("Unwrapping the store key")?);
                    Zeroizing::new(
                        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow!("the store key is not 32 bytes"))?,
                    )
                }
                None => fresh.clone(),
            };
            let mut want: Vec<String> = fingerprints.to_vec();
            want.sort();
            let mut have = held.as_ref().map(|w| w.fingerprints.clone()).unwrap_or_default();
            have.sort();
            if held.is_none() || have != want {
                let wrapped = String::from_utf8(seal(key.as_slice()).context("Wrapping the store key")?)
                    .context("the wrapped store key is not armored")?;
                let mut b = Batch::default();
                b.json(KEY.to_owned(), &Wrapped { fingerprints: want, wrapped });
                tx.commit(b)?;
            }
            let _ = self.key.set(key);
            Ok(())
        })
    }

    /// The key for `label` (e.g. `"search-index"`), derived from the store key; an error
    /// until [`Store::unlock_key`] ran (the CLI opening the store without the keys).
    pub fn derived_key(&self, label: &str) -> Result<[u8; 32]> {
        let key = self.key.get().ok_or_else(|| anyhow!("the store key is not unlocked (the intake key is needed)"))?;
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"secintake store key v1"), key.as_slice());
        let mut out = [0u8; 32];
        hk.expand(label.as_bytes(), &mut out).map_err(|_| anyhow!("deriving a key"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::reopen;
    use super::*;

    /// A toy wrap for the test: XOR with the fingerprint list's first byte, as text.
    fn seal(k: &[u8]) -> Result<Vec<u8>> {
        Ok(hex::encode(k.iter().map(|b| b ^ 0x5a).collect::<Vec<_>>()).into_bytes())
    }
    fn open(w: &[u8]) -> Result<Vec<u8>> {
        Ok(hex::decode(w)?.iter().map(|b| b ^ 0x5a).collect())
    }

    /// Made once, the same after a reopen, rewrapped when the keys change, different per
    /// label, and not in the store in clear.
    #[test]
    fn the_store_key_is_made_once_and_derives_stable_keys() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = [7u8; 32];
        let k1 = {
            let s = Store::open(dir.path()).unwrap();
            assert!(s.derived_key("search-index").is_err(), "locked before unlock_key");
            s.unlock_key(&["A".into()], fresh, seal, open).unwrap();
            s.derived_key("search-index").unwrap()
        };
        let s = reopen(dir.path());
        s.unlock_key(&["A".into()], [9u8; 32], seal, open).unwrap();
        assert_eq!(s.derived_key("search-index").unwrap(), k1, "a second fresh key is not used");
        assert_ne!(s.derived_key("at-rest").unwrap(), k1);
        s.unlock_key(&["B".into(), "A".into()], [9u8; 32], seal, open).unwrap();
        let w: Wrapped = s.get_json(KEY).unwrap().unwrap();
        assert_eq!(w.fingerprints, vec!["A".to_owned(), "B".to_owned()], "rewrapped to the keys of now");
        let mut found = false;
        s.db.iter().for_each(|kv| found |= kv.unwrap().1.windows(32).any(|w| w == [7u8; 32]));
        assert!(!found, "the key itself is in no record");
    }
}
