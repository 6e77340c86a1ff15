//! The quarantine: the messages that could not be handled, why, and a copy of each as
//! received (for `quarantine retry`), with an index of the unreadable ones by sender.
//!
//! Keys:
//! - `quar/<qid>` -> QuarantineEntry
//! - `qraw/<qid>` -> the message bytes as received (not JSON)
//! - `qfrom/<sha256 of the lowercased sender>/<qid>` -> empty: the reports that could not
//!   be read and whose sender was told (`no-key`, `decrypt-failed`), for a re-send's
//!   `resend_of`
//!
//! Invariants: an entry, its copy and its `qfrom/` entry are written in one batch, and
//! removed in one (a successful retry, with the `qmove/` marker of `mails.rs`); the index
//! is built once, at open, for a store made before it. Never an address in a key: a
//! hostile address (it may hold a `/`) must not reach into another sender's range.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Batch, Store};
use crate::case::ts;

/// A message that could not be handled, as `quarantine list --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub id: String,
    pub reason: QuarantineReason,
    pub message_id: String,
    pub from: String,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub encrypted: bool,
    pub sha256: String,
    /// Human detail for `quarantine show` (never decrypted content).
    #[serde(default)]
    pub detail: String,
}

/// Why a message was quarantined; serialised to the names in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineReason {
    /// Encrypted to no key we hold.
    NoKey,
    /// Over `limits.max_message_bytes`.
    TooLarge,
    /// Decrypted text over `limits.max_plaintext_bytes`.
    PlaintextLimit,
    /// MIME nesting over `limits.max_mime_depth`.
    MimeDepth,
    /// Not a parseable message, or parsing it panicked.
    Malformed,
    /// Encrypted to our key, but decryption failed.
    DecryptFailed,
    /// Processing crashed or hung the process too often.
    ProcessingFailed,
}

impl QuarantineReason {
    /// The name in `quarantine list`, the audit trail and the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::NoKey => "no-key",
            QuarantineReason::TooLarge => "too-large",
            QuarantineReason::PlaintextLimit => "plaintext-limit",
            QuarantineReason::MimeDepth => "mime-depth",
            QuarantineReason::Malformed => "malformed",
            QuarantineReason::DecryptFailed => "decrypt-failed",
            QuarantineReason::ProcessingFailed => "processing-failed",
        }
    }

    /// Reports we could not decrypt: their sender gets a cannot-read notice.
    pub fn tells_sender(self) -> bool {
        matches!(self, QuarantineReason::NoKey | QuarantineReason::DecryptFailed)
    }
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Batch {
    pub fn put_quarantine(&mut self, q: &QuarantineEntry, raw: Option<&[u8]>) {
        self.json(format!("quar/{}", q.id), q);
        if let Some(raw) = raw {
            self.ops.push((format!("qraw/{}", q.id).into_bytes(), Some(raw.to_vec())));
        }
        if let Some(key) = unreadable_key(q) {
            self.ops.push((key, Some(Vec::new())));
        }
    }
    /// Drops a quarantine entry, its copy and its index entry (it was retried
    /// successfully).
    pub fn remove_quarantine(&mut self, q: &QuarantineEntry) {
        self.ops.push((format!("quar/{}", q.id).into_bytes(), None));
        self.ops.push((format!("qraw/{}", q.id).into_bytes(), None));
        if let Some(key) = unreadable_key(q) {
            self.ops.push((key, None));
        }
    }
}

/// Index of the unreadable reports (their sender was told) by sender:
/// `qfrom/<sha256 of the lowercased address>/<qid>`. A hash, so that no address (they
/// are hostile, and may hold a `/`) can reach into another's range.
fn unreadable_prefix(from: &str) -> String {
    format!("qfrom/{}/", crate::mime::sha256_hex(from.to_ascii_lowercase().as_bytes()))
}

fn unreadable_key(q: &QuarantineEntry) -> Option<Vec<u8>> {
    (q.reason.tells_sender() && !q.from.is_empty())
        .then(|| format!("{}{}", unreadable_prefix(&q.from), q.id).into_bytes())
}

impl Store {
    /// Builds the unreadable-by-sender index for a store made before it existed (once).
    pub(super) fn index_quarantine(&self) -> Result<()> {
        self.index_once(b"meta/quarantine-index", |b| {
            for q in self.quarantined()? {
                if let Some(key) = unreadable_key(&q) {
                    b.ops.push((key, Some(Vec::new())));
                }
            }
            Ok(())
        })
    }

    /// The quarantine entries of reports from `from` that could not be read and whose
    /// sender was told (`no-key`, `decrypt-failed`): through the index, never a scan
    /// of the whole quarantine.
    pub fn unreadable_from(&self, from: &str) -> Result<Vec<QuarantineEntry>> {
        let mut ids = Vec::new();
        let prefix = unreadable_prefix(from);
        self.scan_prefix(&prefix, |k, _| {
            ids.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            Ok(true)
        })?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(q) = self.quarantine(&id)?
                && q.from.eq_ignore_ascii_case(from)
                && q.reason.tells_sender()
            {
                out.push(q);
            }
        }
        Ok(out)
    }

    pub fn quarantine(&self, qid: &str) -> Result<Option<QuarantineEntry>> {
        self.get_json(&format!("quar/{qid}"))
    }

    pub fn quarantine_raw(&self, qid: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(format!("qraw/{qid}").as_bytes())?.map(|v| v.to_vec()))
    }

    /// How many messages are quarantined, without decoding them.
    pub fn quarantine_count(&self) -> Result<usize> {
        let mut n = 0;
        self.scan_prefix("quar/", |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineEntry>> {
        let mut v: Vec<QuarantineEntry> = self.scan_json("quar/")?;
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::reopen;
    use super::*;

    /// Unreadable reports are found by sender through their index: only that sender's
    /// (an address reaching into another's range does not), only reasons whose sender
    /// was told, gone once retried; a store made before the index gets it at open.
    #[test]
    fn unreadable_reports_are_found_by_sender_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let q = |id: &str, from: &str, reason| QuarantineEntry {
            id: id.into(),
            reason,
            message_id: format!("{id}@x"),
            from: from.into(),
            received_at: Utc::now(),
            encrypted: true,
            sha256: String::new(),
            detail: String::new(),
        };
        let entries = [
            q("Q-1", "Alice@Reporter.test", QuarantineReason::NoKey),
            q("Q-2", "alice@reporter.test/x@evil.test", QuarantineReason::DecryptFailed),
            q("Q-3", "alice@reporter.test", QuarantineReason::MimeDepth),
            q("Q-4", "alice@reporter.test", QuarantineReason::DecryptFailed),
        ];
        let ids =
            |s: &Store| s.unreadable_from("alice@REPORTER.test").unwrap().into_iter().map(|q| q.id).collect::<Vec<_>>();
        {
            let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
            let mut b = Batch::default();
            for e in &entries {
                b.put_quarantine(e, None);
            }
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(ids(&s), ["Q-1", "Q-4"]);
            let mut b = Batch::default();
            b.remove_quarantine(&entries[0]);
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(ids(&s), ["Q-4"]);
            // As a store made before the index: entries only.
            let mut keys = Vec::new();
            s.db.range(b"qfrom/", b"qfrom0", |k, _| {
                keys.push(k.to_vec());
                Ok(true)
            })
            .unwrap();
            assert_eq!(keys.len(), 2);
            for k in keys {
                s.db.remove(&k).unwrap();
            }
            s.db.remove(b"meta/quarantine-index").unwrap();
            assert!(ids(&s).is_empty());
        }
        let s = reopen(dir.path());
        assert_eq!(ids(&s), ["Q-4"]);
        assert_eq!(s.unreadable_from("alice@reporter.test/x@evil.test").unwrap()[0].id, "Q-2");
    }
}
