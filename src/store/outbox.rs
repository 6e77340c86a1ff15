//! The outbox: every mail secintake sends (acks, notices, summaries, reminders, replies),
//! its bytes, and the indexes by state that the outbox worker and `status` read.
//!
//! Keys:
//! - `out/<outbox id>` -> OutMail
//! - `raw/<outbox id>` -> the RFC 5322 bytes (not JSON)
//! - `outq/<outbox id>` -> empty, while the mail is queued
//! - `outf/<outbox id>` -> empty, once it failed for good
//!
//! Invariants: every write of an `out/` record writes its `outq/` and `outf/` entries in
//! the same batch, so the indexes say what the records say; a new answer to a reporter
//! also gets its `answer/` entry there (`answers.rs`). A new mail's bytes are in the commit
//! that queues it: given, or made by its [`Seal`] when the commit (or the group) is
//! recorded, before the records are applied; a seal that fails records the mail as
//! failed, with the reason. The worker counts an attempt (a commit) before it makes it,
//! and records a mail sent only after the SMTP server took it. Never a mail lost
//! silently; never a read of every mail ever sent to find what is due (the `outq/` index,
//! in pages).

use std::sync::Mutex;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::answers::answer_key;
use super::{Batch, Store, prefix_end};
use crate::case::ts;

/// Where an outgoing mail stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutStatus {
    Queued,
    Sent,
    Failed,
}

/// What an outgoing mail is; serialised to the strings the outbox has always held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MailKind {
    /// The signed acknowledgement to the reporter.
    #[serde(rename = "ack")]
    Ack,
    /// The signed "could not read your message" answer.
    #[serde(rename = "cannot-read")]
    CannotRead,
    /// The encrypted triage summary to the team list.
    #[serde(rename = "summary")]
    Summary,
    /// A reporter's follow-up forwarded to the team list.
    #[serde(rename = "followup")]
    Followup,
    /// An SLA reminder to the team list.
    #[serde(rename = "reminder")]
    Reminder,
    /// A report to the team list that one of our mails could not be delivered.
    #[serde(rename = "failure")]
    Failure,
    /// A report to the team list that an ack bounced.
    #[serde(rename = "bounce")]
    Bounce,
    /// A team member's reply to the reporter (`case reply`).
    #[serde(rename = "reply")]
    Reply,
    /// A request to the reporter for what the report lacks (`case ask`).
    #[serde(rename = "needs-info")]
    NeedsInfo,
    /// The team told that the reporter completed the report.
    #[serde(rename = "completed")]
    Completed,
    /// The reporter told that the case closed as incomplete, and how to reopen it.
    #[serde(rename = "closed-incomplete")]
    ClosedIncomplete,
    /// The list told what a command mail changed (`[ID] Changed by ADDR`).
    #[serde(rename = "confirmation")]
    Confirmation,
    /// The list told that a command mail applied nothing, and why.
    #[serde(rename = "command-rejected")]
    CommandRejected,
    /// A person read in on a case gets its summary so far, once.
    #[serde(rename = "readin")]
    ReadIn,
    /// The one signed notice of a block period to a blocked reporter (`reporter block`).
    #[serde(rename = "block-notice")]
    BlockNotice,
    /// The daily digest of blocked reporters' reports to the team list.
    #[serde(rename = "digest")]
    Digest,
}

impl MailKind {
    /// The name in the outbox, logs and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Ack => "ack",
            MailKind::CannotRead => "cannot-read",
            MailKind::Summary => "summary",
            MailKind::Followup => "followup",
            MailKind::Reminder => "reminder",
            MailKind::Failure => "failure",
            MailKind::Bounce => "bounce",
            MailKind::Reply => "reply",
            MailKind::NeedsInfo => "needs-info",
            MailKind::Completed => "completed",
            MailKind::ClosedIncomplete => "closed-incomplete",
            MailKind::Confirmation => "confirmation",
            MailKind::CommandRejected => "command-rejected",
            MailKind::ReadIn => "readin",
            MailKind::BlockNotice => "block-notice",
            MailKind::Digest => "digest",
        }
    }

    /// The token in the mail's Message-ID (`<case>.<token>.<hash>@<domain>`).
    pub fn id_token(self) -> &'static str {
        match self {
            MailKind::CannotRead => "unread",
            MailKind::CommandRejected => "cmdrej",
            other => other.as_str(),
        }
    }

    /// Mails answering a reporter's message, under the per-sender rate limits.
    pub fn answers_reporter(self) -> bool {
        matches!(self, MailKind::Ack | MailKind::CannotRead | MailKind::BlockNotice)
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outgoing mail. The bytes live under `raw/<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutMail {
    /// The Message-ID (without brackets): stable, so a resend after a crash is the
    /// same message to the receiving side.
    pub id: String,
    pub kind: MailKind,
    pub case_id: Option<String>,
    pub envelope_from: String,
    pub to: Vec<String>,
    /// Whether the body is encrypted (for the case's `ack.encrypted`).
    pub encrypted: bool,
    pub status: OutStatus,
    /// Attempts made so far; counted before each attempt.
    pub attempts: u32,
    #[serde(with = "ts")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "ts")]
    pub next_attempt: DateTime<Utc>,
    #[serde(with = "ts::opt", default)]
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Makes the bytes of an outgoing mail (signs, encrypts): run when its batch is
/// recorded, in a group after every message was decided, on every core.
pub type Seal = Box<dyn FnOnce() -> Result<Vec<u8>> + Send>;

impl Batch {
    /// Writes an outgoing mail's record, and its bytes when given (a new mail).
    pub fn put_out(&mut self, o: &OutMail, raw: Option<&[u8]>) {
        self.put_out_record(o, raw.is_some());
        if let Some(raw) = raw {
            self.ops.push((format!("raw/{}", o.id).into_bytes(), Some(raw.to_vec())));
        }
    }
    /// Queues a new outgoing mail whose bytes `seal` makes when the batch is recorded
    /// (in a group: after every message of the group was decided, in parallel). Should
    /// `seal` fail, the mail is recorded as failed with the reason, never lost silently.
    pub fn put_out_sealed(&mut self, o: &OutMail, seal: Seal) {
        self.put_out_record(o, true);
        self.sealing.push((o.clone(), seal));
    }
    fn put_out_record(&mut self, o: &OutMail, new: bool) {
        self.json(format!("out/{}", o.id), o);
        // Indexes by state: the outbox worker reads what is queued, the failure
        // reports what failed, never every mail ever sent.
        let queued = format!("outq/{}", o.id).into_bytes();
        let failed = format!("outf/{}", o.id).into_bytes();
        self.ops.push((queued, (o.status == OutStatus::Queued).then(Vec::new)));
        self.ops.push((failed, (o.status == OutStatus::Failed).then(Vec::new)));
        // Answers to senders are indexed by time: what the rate limits count (see
        // [`super::answers::AnswerWindow`]).
        if new && o.kind.answers_reporter() {
            self.ops.push((answer_key(o.created_at, &o.id), Some(o.to.join(",").into_bytes())));
        }
    }
    /// Makes the bytes of every mail queued with [`Batch::put_out_sealed`], on up to
    /// every core; a mail whose bytes cannot be made is recorded as failed.
    pub(super) fn seal(&mut self) {
        let jobs = std::mem::take(&mut self.sealing);
        if jobs.is_empty() {
            return;
        }
        let n = jobs.len();
        let slots: Vec<Mutex<Option<(OutMail, Seal)>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
        type Sealed = Mutex<Option<(OutMail, Result<Vec<u8>>)>>;
        let results: Vec<Sealed> = (0..n).map(|_| Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1).min(n);
        let work = || {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let Some((o, seal)) = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(seal))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("internal failure (panic)")));
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some((o, r));
            }
        };
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|sc| {
                for _ in 0..workers {
                    sc.spawn(work);
                }
            });
        }
        for slot in results {
            let Some((mut o, r)) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) else { continue };
            match r {
                Ok(raw) => self.ops.push((format!("raw/{}", o.id).into_bytes(), Some(raw))),
                Err(e) => {
                    tracing::error!(mail = %o.id, kind = %o.kind, error = %format!("{e:#}"), "Outgoing mail could not be built; recorded as failed");
                    o.status = OutStatus::Failed;
                    o.last_error = Some(format!("could not be built: {e:#}"));
                    self.put_out_record(&o, false);
                }
            }
        }
    }
}

impl Store {
    pub fn outbox(&self) -> Result<Vec<OutMail>> {
        let mut v: Vec<OutMail> = self.scan_json("out/")?;
        v.sort_by_key(|a| a.created_at);
        Ok(v)
    }

    /// The mails waiting to be sent (read through their index).
    pub fn queued(&self) -> Result<Vec<OutMail>> {
        self.indexed("outq/")
    }

    /// Up to `limit` of the mails waiting to be sent, in index order after the one
    /// named `after` (from the first when None), oldest first within the page; and the
    /// cursor for the next page (None when this one reached the end). Memory is bounded
    /// by `limit` however long the queue (after an SMTP outage, in a backlog).
    pub fn queued_page(&self, after: Option<&str>, limit: usize) -> Result<(Vec<OutMail>, Option<String>)> {
        self.indexed_page("outq/", after, limit)
    }

    /// Each mail waiting to be sent, one at a time (memory stays flat in the queue).
    pub fn each_queued(&self, mut f: impl FnMut(OutMail)) -> Result<()> {
        let mut after = None;
        loop {
            let (page, next) = self.queued_page(after.as_deref(), 256)?;
            page.into_iter().for_each(&mut f);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(()),
            }
        }
    }

    /// The mails that failed for good (read through their index).
    pub fn failed(&self) -> Result<Vec<OutMail>> {
        self.indexed("outf/")
    }

    fn indexed(&self, prefix: &str) -> Result<Vec<OutMail>> {
        Ok(self.indexed_page(prefix, None, usize::MAX)?.0)
    }

    /// Up to `limit` mails named by the index `prefix`, after the one named `after`,
    /// oldest first; and the cursor for the next page (None at the end).
    fn indexed_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<(Vec<OutMail>, Option<String>)> {
        let from = match after {
            // The smallest key after `<prefix><after>`.
            Some(a) => format!("{prefix}{a}\0").into_bytes(),
            None => prefix.as_bytes().to_vec(),
        };
        let limit = limit.max(1);
        let (mut v, mut last, mut read) = (Vec::new(), None, 0);
        self.scan(&from, &prefix_end(prefix), |k, _| {
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(o) = self.out(&id)? {
                v.push(o);
            }
            last = Some(id);
            read += 1;
            Ok(read < limit)
        })?;
        v.sort_by_key(|a| a.created_at);
        Ok((v, if read < limit { None } else { last }))
    }

    /// Builds the outbox state indexes for a store made before they existed (once).
    pub(super) fn index_outbox(&self) -> Result<()> {
        self.index_once(b"meta/outbox-index", |b| {
            for o in self.outbox()? {
                b.put_out(&o, None);
            }
            Ok(())
        })
    }

    pub fn out(&self, id: &str) -> Result<Option<OutMail>> {
        self.get_json(&format!("out/{id}"))
    }

    pub fn out_raw(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(format!("raw/{id}").as_bytes())?.map(|v| v.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::super::QuarantineReason;
    use super::super::fixtures::out;
    use super::*;

    /// Kinds and reasons are stored and shown as the strings stores have always held:
    /// the serde name, `as_str` and `Display` agree, and old records still read.
    #[test]
    fn kinds_and_reasons_keep_their_stored_names() {
        use MailKind as K;
        use QuarantineReason as R;
        let kinds = [
            (K::Ack, "ack"),
            (K::CannotRead, "cannot-read"),
            (K::Summary, "summary"),
            (K::Followup, "followup"),
            (K::Reminder, "reminder"),
            (K::Failure, "failure"),
            (K::Bounce, "bounce"),
            (K::Reply, "reply"),
            (K::NeedsInfo, "needs-info"),
            (K::Completed, "completed"),
            (K::ClosedIncomplete, "closed-incomplete"),
        ];
        fn keeps<T>(pairs: &[(T, &str)], as_str: fn(T) -> &'static str)
        where
            T: Copy + std::fmt::Debug + std::fmt::Display + PartialEq + Serialize + DeserializeOwned,
        {
            for &(v, name) in pairs {
                assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{name}\""));
                assert_eq!(serde_json::from_str::<T>(&format!("\"{name}\"")).unwrap(), v);
                assert_eq!((as_str(v), v.to_string().as_str()), (name, name));
            }
        }
        keeps(&kinds, K::as_str);
        assert_eq!(K::CannotRead.id_token(), "unread");
        let reasons = [
            (R::NoKey, "no-key"),
            (R::TooLarge, "too-large"),
            (R::PlaintextLimit, "plaintext-limit"),
            (R::MimeDepth, "mime-depth"),
            (R::Malformed, "malformed"),
            (R::DecryptFailed, "decrypt-failed"),
            (R::ProcessingFailed, "processing-failed"),
        ];
        keeps(&reasons, R::as_str);
    }

    /// The queue is read in pages of at most the limit, each queued mail once, sent and
    /// failed ones never; the last page says it is the last.
    #[test]
    fn queued_mail_is_read_in_bounded_pages() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
        let now = Utc::now();
        let mut b = Batch::default();
        for i in 0..600 {
            let mut o = out(&format!("m{i:04}"), "r@x.org", now);
            if i % 100 == 7 {
                o.status = if i % 200 == 7 { OutStatus::Sent } else { OutStatus::Failed };
            }
            b.put_out(&o, Some(b"bytes"));
        }
        s.write(|tx| tx.commit(b)).unwrap();
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let (page, next) = s.queued_page(after.as_deref(), 256).unwrap();
            assert!(page.len() <= 256);
            pages += 1;
            seen.extend(page.into_iter().map(|o| o.id));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        seen.sort();
        let want: Vec<String> = (0..600).filter(|i| i % 100 != 7).map(|i| format!("m{i:04}")).collect();
        assert_eq!((seen, pages), (want.clone(), 3));
        let mut each = Vec::new();
        s.each_queued(|o| each.push(o.id)).unwrap();
        each.sort();
        assert_eq!(each, want);
    }

    /// A mail whose bytes cannot be made is recorded as failed, with the reason; the
    /// rest of the batch is recorded.
    #[test]
    fn a_seal_that_fails_records_the_mail_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
        let now = Utc::now();
        let mut b = Batch::default();
        b.put_seq("SEC-2026", 1);
        b.put_out_sealed(&out("bad", "r@x.org", now), Box::new(|| Err(anyhow::anyhow!("intake key expired"))));
        b.put_out_sealed(&out("good", "r@x.org", now), Box::new(|| Ok(b"ok".to_vec())));
        s.write(|tx| tx.commit(b)).unwrap();
        assert_eq!(s.seq("SEC-2026").unwrap(), 1);
        let bad = s.out("bad").unwrap().unwrap();
        assert_eq!(bad.status, OutStatus::Failed);
        assert!(bad.last_error.unwrap().contains("intake key expired"));
        assert_eq!(s.failed().unwrap().len(), 1);
        assert_eq!(s.queued().unwrap().iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["good"]);
        assert!(s.out_raw("bad").unwrap().is_none());
    }
}
