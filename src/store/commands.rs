//! Commands by signed mail: the signatures already used for an applied command, so
//! that the same signed body sent again (a replay under a new Message-ID) applies
//! nothing.
//!
//! Keys:
//! - `cmdsig/<signature digest>` -> the message key of the mail that used it
//!   (`openpgp::Verification::digest`: over the signer and the digest it signs)
//!
//! Invariants: written in the commit that applies the command mail (its changes, audit
//! entries, confirmation), never for a refused one, so a refused mail resent after its
//! error is fixed is refused only for what it is. Never removed.

use anyhow::Result;

use super::{Batch, Store};

impl Batch {
    pub fn put_command_signature(&mut self, digest: &str, message_key: &str) {
        self.ops.push((format!("cmdsig/{digest}").into_bytes(), Some(message_key.as_bytes().to_vec())));
    }
}

impl Store {
    /// The message that already used this signature for an applied command.
    pub fn command_signature(&self, digest: &str) -> Result<Option<String>> {
        Ok(self.get(format!("cmdsig/{digest}").as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
