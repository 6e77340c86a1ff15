//! Read-ins: the people brought into one case from outside the team (SPEC-11 step 3),
//! with the cert their copies of the case's mail are encrypted to.
//!
//! Keys:
//! - `readin/<case id>/<fingerprint>` -> [`StoredReadIn`] (the entry and the armored cert)
//!
//! Invariants: an entry is written in the commit that logs it in the case's audit log
//! (`readin-add`) and queues its one summary so far; removing it is one commit with its
//! `readin-remove` entry. An entry that expired stays (the audit log and `case readin
//! list` show it) but receives nothing: [`crate::case::readin::ReadIn::active`] is the
//! one rule. Never a decision here.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Batch, Store};
use crate::case::readin::ReadIn;

/// A read-in entry and the cert mail to them is encrypted to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredReadIn {
    #[serde(flatten)]
    pub entry: ReadIn,
    /// The cert as given (armored): what their copies are encrypted to.
    pub armored: String,
}

impl Batch {
    pub fn put_readin(&mut self, case_id: &str, r: &StoredReadIn) {
        self.json(format!("readin/{case_id}/{}", r.entry.fingerprint), r);
    }
    pub fn remove_readin(&mut self, case_id: &str, fingerprint: &str) {
        self.ops.push((format!("readin/{case_id}/{fingerprint}").into_bytes(), None));
    }
}

impl Store {
    /// Everyone read in on a case, expired entries included, by fingerprint.
    pub fn readins(&self, case_id: &str) -> Result<Vec<StoredReadIn>> {
        self.scan_json(&format!("readin/{case_id}/"))
    }
}
