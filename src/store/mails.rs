//! Mails and their dispositions: the record of every message secintake has seen, the
//! indexes that recognise a message seen before, and intake's own state per mailbox.
//!
//! Keys:
//! - `mail/<message key>` -> MailRecord (message key: Message-ID or `sha256:<hex>`)
//! - `uid/<mailbox>\0<uidvalidity>\0<uid:010>` -> message key
//! - `hash/<sha256 hex>` -> message key
//! - `uidv/<mailbox>` -> u32 big endian, the UIDVALIDITY last seen
//! - `attempt/uid/<mailbox>\0<uidvalidity>\0<uid:010>` -> u32 big endian, how often
//!   processing the message was attempted (crash-loop detection)
//! - `qmove/<message key>` -> empty (retried out of quarantine; IMAP copy to move)
//!
//! Invariants: a message's `mail/` record and its `uid/` and `hash/` entries are written
//! in the one commit that records its outcome (with the case or quarantine entry they
//! name), and intake moves the message on IMAP only once that commit is durable: a
//! message gone from the inbox is a message recognised when seen again. An attempt is
//! counted durably before it is made ([`Store::count_attempts`]) and forgotten once the
//! message is handled (in the same group commit). `qmove/` is written with the retry that
//! resolved a quarantined message, and removed only after its IMAP copy was moved. Never
//! a decision here: what a message is, `pipeline` decides.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Batch, Store};
use crate::case::ts;

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    Case,
    FollowUp,
    Duplicate,
    NonReport,
    Quarantine,
    /// A team member's signed command mail, applied to its case (`pipeline/commands.rs`).
    Command,
    /// A command mail that applied nothing; `reason` says why.
    CommandRejected,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Case => "case",
            Disposition::FollowUp => "follow-up",
            Disposition::Duplicate => "duplicate",
            Disposition::NonReport => "non-report",
            Disposition::Quarantine => "quarantine",
            Disposition::Command => "command",
            Disposition::CommandRejected => "command-rejected",
        }
    }
}

/// Every message secintake has seen, as `mail list --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailRecord {
    pub message_id: String,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    pub from: String,
    pub sha256: String,
    /// SHA-256 of the body: a Message-ID seen again with another body is another
    /// message (extension; absent on records made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
    pub disposition: Disposition,
    pub case_id: Option<String>,
    pub quarantine_id: Option<String>,
    pub reason: Option<String>,
}

impl Batch {
    pub fn put_mail(&mut self, key: &str, m: &MailRecord) {
        self.json(format!("mail/{key}"), m);
    }
    pub fn put_uid(&mut self, mailbox: &str, uidvalidity: u32, uid: u32, key: &str) {
        self.ops.push((uid_key(mailbox, uidvalidity, uid), Some(key.as_bytes().to_vec())));
    }
    pub fn put_hash(&mut self, sha256: &str, key: &str) {
        self.ops.push((format!("hash/{sha256}").into_bytes(), Some(key.as_bytes().to_vec())));
    }
    /// Marks a message as resolved by `quarantine retry`: intake moves its IMAP copy
    /// out of the quarantine folder.
    pub fn put_resolved(&mut self, message_key: &str) {
        self.ops.push((format!("qmove/{message_key}").into_bytes(), Some(Vec::new())));
    }
    pub fn remove_resolved(&mut self, message_key: &str) {
        self.ops.push((format!("qmove/{message_key}").into_bytes(), None));
    }
    /// How often processing a message was attempted (crash-loop detection).
    pub fn put_attempts(&mut self, mailbox: &str, uidvalidity: u32, uid: u32, n: u32) {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        self.ops.push((k, Some(n.to_be_bytes().to_vec())));
    }
    pub fn remove_attempts(&mut self, mailbox: &str, uidvalidity: u32, uid: u32) {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        self.ops.push((k, None));
    }
    /// Remembers a mailbox's UIDVALIDITY (to notice when the server resets UIDs).
    pub fn put_uidvalidity(&mut self, mailbox: &str, v: u32) {
        self.ops.push((format!("uidv/{mailbox}").into_bytes(), Some(v.to_be_bytes().to_vec())));
    }
}

fn uid_key(mailbox: &str, uidvalidity: u32, uid: u32) -> Vec<u8> {
    format!("uid/{mailbox}\0{uidvalidity}\0{uid:010}").into_bytes()
}

impl Store {
    /// Counts one more attempt at each message (one durable commit for all) and returns
    /// the counts. Without the write lock, so that it may run while the batch before is
    /// recorded: only intake writes a message's count, and only while it holds that
    /// message.
    pub fn count_attempts(&self, sources: &[(&str, u32, u32)]) -> Result<Vec<u32>> {
        let mut b = Batch::default();
        let mut counts = Vec::with_capacity(sources.len());
        for (mailbox, uidvalidity, uid) in sources {
            let n = self.attempts(mailbox, *uidvalidity, *uid)? + 1;
            b.put_attempts(mailbox, *uidvalidity, *uid, n);
            counts.push(n);
        }
        self.apply(b)?;
        Ok(counts)
    }

    pub fn mail(&self, key: &str) -> Result<Option<MailRecord>> {
        self.get_json(&format!("mail/{key}"))
    }

    /// Every mail record, one at a time, in key order (not by arrival).
    pub fn each_mail(&self, f: impl FnMut(MailRecord) -> Result<()>) -> Result<()> {
        self.each_json("mail/", f)
    }

    pub fn mails(&self) -> Result<Vec<MailRecord>> {
        let mut v: Vec<MailRecord> = self.scan_json("mail/")?;
        v.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.message_id.cmp(&b.message_id)));
        Ok(v)
    }

    pub fn uid(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<Option<String>> {
        Ok(self.get(&uid_key(mailbox, uidvalidity, uid))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn by_hash(&self, sha256: &str) -> Result<Option<String>> {
        Ok(self.get(format!("hash/{sha256}").as_bytes())?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Attempts counted for a message (0 when none).
    pub fn attempts(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<u32> {
        let mut k = b"attempt/".to_vec();
        k.extend_from_slice(&uid_key(mailbox, uidvalidity, uid));
        Ok(self.get(&k)?.and_then(|v| v.as_ref().try_into().ok()).map(u32::from_be_bytes).unwrap_or(0))
    }

    /// Messages retried out of quarantine whose IMAP copy still waits to be moved.
    pub fn resolved(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.scan_prefix("qmove/", |k, _| {
            out.push(String::from_utf8_lossy(&k[6..]).into_owned());
            Ok(true)
        })?;
        Ok(out)
    }

    /// The UIDVALIDITY last seen for a mailbox.
    pub fn uidvalidity(&self, mailbox: &str) -> Result<Option<u32>> {
        Ok(self
            .get(format!("uidv/{mailbox}").as_bytes())?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map(u32::from_be_bytes))
    }
}
