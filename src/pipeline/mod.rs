//! The pipeline: one message in, one durable outcome out.
//!
//! Every message ends as exactly one of: a new case, a follow-up on a case, a
//! duplicate, a recorded non-report, or a quarantine entry. The outcome, its index
//! entries ((mailbox, UIDVALIDITY, UID), Message-ID, content hash) and the mail it
//! causes are committed in one atomic, fsynced batch; only then may the caller move the
//! message on IMAP. Seeing the same message again returns the recorded outcome.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Utc};
use sequoia_openpgp::Cert;

use crate::case::{self, Ack, Attachment, Case, CaseMessage, Due, KeySource, LogEntry, Reporter, Status};
use crate::config::Config;
use crate::mime::{self, build};
use crate::notify;
use crate::openpgp::{self as pgp, IntakeKeys};
use crate::report;
use crate::store::{
    Batch, Disposition, MailKind, MailRecord, OutMail, OutStatus, QuarantineEntry, QuarantineReason, Seal, Store,
    StoredCert, Tx,
};

pub mod classify;
pub mod keys;

/// How often a message may crash or hang the process (counted durably before each try,
/// see [`Pipeline::count_attempts`]) before it is quarantined as `processing-failed`
/// so the messages after it are processed.
pub const MAX_ATTEMPTS: u32 = 8;

/// Reminder markers of an ack held back by the rate limits, and of its end (sent or
/// given up).
const ACK_HELD: &str = "ack-held";
const ACK_HELD_DONE: &str = "ack-held-done";

/// What [`Pipeline::prepare`] read ahead of the serial step.
#[derive(Default)]
struct Prepared {
    parsed: Option<mime::Parsed>,
    /// The held cert's fingerprint it was read against, the candidate certs, and what
    /// reading gave.
    read: Option<PreRead>,
}

/// The held cert's fingerprint a message was read against, the candidate certs, and
/// what reading gave.
type PreRead = (Option<String>, Vec<(Cert, KeySource)>, ReadResult);

/// What reading a message gave.
type ReadResult = std::result::Result<classify::Reading, classify::Unreadable>;

/// A message to ingest: its bytes, where it came from, when it arrived.
pub type Item = (Vec<u8>, Option<Source>, DateTime<Utc>);

/// What [`Pipeline::read_group`] read, one entry per message, for
/// [`Pipeline::record_group`].
pub struct GroupRead(Vec<Option<Prepared>>);

/// Where a message came from on IMAP.
#[derive(Clone, Debug)]
pub struct Source {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// What happened to one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub disposition: Disposition,
    pub case_id: Option<String>,
    pub quarantine_id: Option<String>,
    pub reason: Option<String>,
    /// The message had been handled before (same UID, Message-ID or content).
    pub seen_before: bool,
}

impl Outcome {
    fn of(rec: &MailRecord, seen_before: bool) -> Outcome {
        Outcome {
            disposition: rec.disposition,
            case_id: rec.case_id.clone(),
            quarantine_id: rec.quarantine_id.clone(),
            reason: rec.reason.clone(),
            seen_before,
        }
    }
}

/// Everything the pipeline needs, loaded once at start-up (keys unlocked once).
#[derive(Clone)]
pub struct Pipeline {
    pub cfg: Arc<Config>,
    pub keys: Arc<IntakeKeys>,
    /// Team certs usable for encryption now.
    pub team: Arc<Vec<Cert>>,
    /// Reporters' certs from `keys.keyring`.
    pub keyring: Arc<Vec<Cert>>,
    /// Acknowledgement wording (built-in, or the admin's override).
    pub templates: Arc<notify::Templates>,
    /// Team certs skipped at load (expired, revoked, unusable): said in every summary
    /// so the list notices a member who no longer receives.
    pub team_warnings: Arc<Vec<String>>,
    pub store: Store,
}

/// Loads the intake keys (unlocking them once).
pub fn load_intake_keys(cfg: &Config) -> Result<IntakeKeys> {
    let tsk = std::fs::read(&cfg.keys.intake_secret)
        .with_context(|| format!("Reading keys.intake_secret {}", cfg.keys.intake_secret.display()))?;
    IntakeKeys::from_bytes(&tsk, cfg.keys.passphrase.as_ref().map(|s| s.expose()))
        .with_context(|| format!("keys.intake_secret {}", cfg.keys.intake_secret.display()))
}

/// Reads every cert in a directory of armored files; returns (file, cert) pairs and
/// per-file problems.
pub fn read_cert_dir(dir: &std::path::Path) -> (Vec<(String, Cert)>, Vec<String>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        problems.push(format!("cannot read the directory {}", dir.display()));
        return (certs, problems);
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match std::fs::read(&p) {
            Ok(bytes) => {
                let found = pgp::parse_certs(&bytes);
                if found.is_empty() {
                    problems.push(format!("{} holds no OpenPGP cert", p.display()));
                }
                certs.extend(found.into_iter().map(|c| (name.clone(), c)));
            }
            Err(e) => problems.push(format!("cannot read {}: {e}", p.display())),
        }
    }
    (certs, problems)
}

impl Pipeline {
    /// Loads keys and certs for `cfg` on top of an open store.
    pub fn load(cfg: Arc<Config>, store: Store) -> Result<Pipeline> {
        let keys = load_intake_keys(&cfg)?;
        let now = SystemTime::now();
        let (team_all, problems) = read_cert_dir(&cfg.keys.team_certs);
        for p in problems {
            tracing::warn!(problem = %p, "keys.team_certs");
        }
        let mut team = Vec::new();
        let mut team_warnings = Vec::new();
        for (file, c) in team_all {
            match pgp::can_encrypt(&c, now) {
                Ok(()) => team.push(c),
                Err(e) => {
                    tracing::warn!(file = %file, cert = %c.fingerprint(), error = %e, "Skipping unusable team cert");
                    team_warnings
                        .push(format!("team cert {} ({file}) is skipped: {e}; replace it", c.fingerprint().to_hex()));
                }
            }
        }
        if team.is_empty() {
            tracing::warn!("No usable team cert in keys.team_certs: team summaries will not be sent");
        }
        let keyring = match &cfg.keys.keyring {
            Some(dir) => read_cert_dir(dir).0.into_iter().map(|(_, c)| c).collect(),
            None => Vec::new(),
        };
        let templates =
            notify::Templates::load(cfg.templates_dir.as_deref()).map_err(|e| anyhow::anyhow!("templates.dir: {e}"))?;
        Ok(Pipeline {
            cfg,
            keys: Arc::new(keys),
            team: Arc::new(team),
            keyring: Arc::new(keyring),
            templates: Arc::new(templates),
            team_warnings: Arc::new(team_warnings),
            store,
        })
    }

    /// Processes one message and commits its outcome durably.
    pub fn ingest(
        &self,
        raw: &[u8],
        source: Option<&Source>,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        // A parser panic on hostile input must neither stop the daemon nor leave the
        // message to be retried forever: it is quarantined as malformed, by its hash.
        let tx = self.store.begin();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.ingest_inner(&tx, raw, Arrival { source, received_at }, now, false, None)
        })) {
            Ok(r) => r,
            Err(_) => self.quarantine_panicked(&tx, raw, source, received_at, QuarantineReason::Malformed),
        }
    }

    /// Processes a group of messages (a FETCH batch) with one durable commit, in
    /// stages: read (parse, decrypt, verify) on every core; decide each in order, one at
    /// a time, as [`Self::ingest`] would, each seeing what the ones before it wrote;
    /// seal the mails they cause (sign, encrypt) on every core; record the whole group
    /// as one atomic, durable write ([`Store::group`]). The store's lock is held from
    /// the first decision to the record. The caller moves the messages on IMAP only
    /// after this returns Ok. One outcome per message, in order.
    pub fn ingest_group(&self, items: &[Item], now: DateTime<Utc>) -> Result<Vec<Result<Outcome>>> {
        let read = self.read_group(items, now);
        self.record_group(items, read, now)
    }

    /// The first stage of [`Self::ingest_group`]: every message read (parsed,
    /// decrypted, verified against the certs held now) on every core, without the
    /// store's lock and writing nothing, so it may run while the group before is
    /// still being recorded. A reading that went stale meanwhile (another cert held
    /// for the sender by then) is done again when the message is decided.
    pub fn read_group(&self, items: &[Item], now: DateTime<Utc>) -> GroupRead {
        let n = items.len();
        let workers = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1).min(n).max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Prepared>>> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|sc| {
            for _ in 0..workers {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        // A panic here only costs the head start: the serial step
                        // reads the message again and quarantines it if it panics.
                        let p =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.prepare(&items[i].0, now)))
                                .ok();
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = p;
                        }
                    }
                });
            }
        });
        GroupRead(slots.into_iter().map(|s| s.into_inner().ok().flatten()).collect())
    }

    /// The other stages of [`Self::ingest_group`]: decide, seal, record.
    pub fn record_group(&self, items: &[Item], read: GroupRead, now: DateTime<Utc>) -> Result<Vec<Result<Outcome>>> {
        let tx = self.store.begin();
        let mut read = read.0.into_iter();
        tx.group(|| {
            let out: Vec<Result<Outcome>> = items
                .iter()
                .map(|(raw, src, at)| {
                    let pre = read.next().flatten();
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.ingest_inner(&tx, raw, Arrival { source: src.as_ref(), received_at: *at }, now, false, pre)
                    })) {
                        Ok(r) => r,
                        Err(_) => self.quarantine_panicked(&tx, raw, src.as_ref(), *at, QuarantineReason::Malformed),
                    }
                })
                .collect();
            // Handled: their crash-loop counts go, in the same group commit.
            let mut b = Batch::default();
            for ((_, src, _), _) in items.iter().zip(&out).filter(|(_, o)| o.is_ok()) {
                if let Some(s) = src {
                    b.remove_attempts(&s.mailbox, s.uidvalidity, s.uid);
                }
            }
            if let Err(e) = tx.commit(b) {
                tracing::warn!(error = %format!("{e:#}"), "Could not clear attempt counts");
            }
            out
        })
    }

    /// The part of reading a message that needs no lock and writes nothing: parse,
    /// and decrypt and verify against the certs held now. [`Self::ingest_inner`] uses it
    /// when the cert held for the sender is still the same.
    fn prepare(&self, raw: &[u8], now: DateTime<Utc>) -> Prepared {
        if raw.len() as u64 > self.cfg.limits.max_message_bytes {
            return Prepared::default();
        }
        let parsed = mime::parse(raw);
        if parsed.unparseable
            || parsed.depth > self.cfg.limits.max_mime_depth
            || non_report_reason(&parsed.envelope, &self.cfg.intake.address).is_some()
        {
            return Prepared { parsed: Some(parsed), read: None };
        }
        // Already handled (a re-delivery): nothing to decrypt.
        let key = parsed.envelope.message_id.clone();
        if key.is_some_and(|k| self.store.mail(&k).ok().flatten().is_some()) {
            return Prepared { parsed: Some(parsed), read: None };
        }
        let from = parsed.envelope.from_address.clone().unwrap_or_default();
        let held = self.store.cert(&from).ok().flatten();
        let candidates = self.candidate_certs(&parsed, &from, held.as_ref());
        let certs: Vec<Cert> = candidates.iter().map(|(c, _)| c.clone()).collect();
        let cx = classify::Context {
            keys: &self.keys,
            certs: &certs,
            max_plaintext: self.cfg.limits.max_plaintext_bytes,
            max_depth: self.cfg.limits.max_mime_depth,
            now: now.into(),
        };
        let read = classify::read(&parsed, &cx);
        Prepared { read: Some((held.map(|h| h.fingerprint), candidates, read)), parsed: Some(parsed) }
    }

    /// Records a message too large to download (`imap` streamed it only to hash it):
    /// quarantined as `too-large`, named by its header's Message-ID, or by the hash of
    /// its body without one; recognised again like any other message.
    #[allow(clippy::too_many_arguments)]
    pub fn ingest_oversized(
        &self,
        head: &[u8],
        sha: &str,
        body_sha: &str,
        size: u64,
        source: Option<&Source>,
        received_at: DateTime<Utc>,
    ) -> Result<Outcome> {
        let tx = self.store.begin();
        if let Some(src) = source
            && let Some(key) = self.store.uid(&src.mailbox, src.uidvalidity, src.uid)?
            && let Some(rec) = self.store.mail(&key)?
        {
            return Ok(Outcome::of(&rec, true));
        }
        let env = std::panic::catch_unwind(|| mime::parse(head).envelope).unwrap_or_default();
        let key = env.message_id.clone().unwrap_or_else(|| format!("sha256:{body_sha}"));
        let known = match self.store.mail(&key)? {
            Some(r) => Some((key.clone(), r)),
            None => match self.store.by_hash(sha)? {
                Some(k) => self.store.mail(&k)?.map(|r| (k, r)),
                None => None,
            },
        };
        if let Some((k, rec)) = known {
            let mut b = Batch::default();
            if let Some(src) = source {
                b.put_uid(&src.mailbox, src.uidvalidity, src.uid, &k);
            }
            tx.commit(b)?;
            return Ok(Outcome::of(&rec, true));
        }
        let ctx = Commit {
            tx: &tx,
            batch: Batch::default(),
            key,
            sha: sha.to_owned(),
            body_sha: Some(body_sha.to_owned()),
            from: env.from_address.clone().unwrap_or_default(),
            received_at,
            source,
        };
        // The lock stays held through the write: quarantine() itself does not lock.
        self.quarantine(
            ctx,
            QuarantineReason::TooLarge,
            false,
            &env,
            None,
            &format!("{size} bytes > limits.max_message_bytes; not downloaded"),
        )
    }

    /// Quarantines a message that could not be processed: a panic while reading it
    /// (`malformed`), or one that crashed or hung the process too often
    /// (`processing-failed`, see [`Self::count_attempts`]).
    pub fn quarantine_after_panic(
        &self,
        raw: &[u8],
        source: Option<&Source>,
        received_at: DateTime<Utc>,
        reason: QuarantineReason,
    ) -> Result<Outcome> {
        self.quarantine_panicked(&self.store.begin(), raw, source, received_at, reason)
    }

    /// [`Self::quarantine_after_panic`] with the store's lock held by the caller.
    fn quarantine_panicked(
        &self,
        tx: &Tx,
        raw: &[u8],
        source: Option<&Source>,
        received_at: DateTime<Utc>,
        reason: QuarantineReason,
    ) -> Result<Outcome> {
        let sha = mime::sha256_hex(raw);
        let parsed_id = std::panic::catch_unwind(|| mime::parse(&raw[..raw.len().min(256 << 10)]).envelope.message_id)
            .ok()
            .flatten();
        let key = parsed_id.unwrap_or_else(|| format!("sha256:{}", mime::sha256_hex(mime::body_of(raw))));
        if let Some(rec) = self.store.mail(&key)? {
            return Ok(Outcome::of(&rec, true));
        }
        tracing::error!(sha256 = %sha, reason = reason.as_str(), "Internal failure on a message; quarantined");
        let body_sha = Some(mime::sha256_hex(mime::body_of(raw)));
        let ctx = Commit { tx, batch: Batch::default(), key, sha, body_sha, from: String::new(), received_at, source };
        let env = mime::Envelope::default();
        // The lock stays held through the write: quarantine() itself does not lock.
        let detail = if reason == QuarantineReason::Malformed {
            "internal failure while parsing (panic); kept for analysis".to_owned()
        } else {
            format!("processing crashed or hung {MAX_ATTEMPTS} times; kept for analysis, the next message went on")
        };
        self.quarantine(ctx, reason, false, &env, Some(raw), &detail)
    }

    /// Counts one more attempt at each message (one durable commit for all), before
    /// the attempt is made; returns the counts. A message that kills or hangs the
    /// process is thereby known after the restart. Needs no lock: only intake writes a
    /// message's count, and only while it holds that message (so this may run while
    /// the group before is recorded).
    pub fn count_attempts(&self, sources: &[Source]) -> Result<Vec<u32>> {
        let keys: Vec<(&str, u32, u32)> = sources.iter().map(|s| (s.mailbox.as_str(), s.uidvalidity, s.uid)).collect();
        self.store.count_attempts(&keys)
    }

    /// Forgets the attempt counts of messages that are now handled.
    pub fn clear_attempts(&self, sources: &[Source]) -> Result<()> {
        let tx = self.store.begin();
        let mut b = Batch::default();
        for s in sources {
            b.remove_attempts(&s.mailbox, s.uidvalidity, s.uid);
        }
        tx.commit(b)
    }

    /// Processes a quarantined message again (after a key was added, say).
    pub fn retry_quarantined(&self, qid: &str, now: DateTime<Utc>) -> Result<Outcome> {
        let q = self.store.quarantine(qid)?.with_context(|| format!("no quarantine entry {qid}"))?;
        let raw = self.store.quarantine_raw(qid)?.with_context(|| {
            format!(
                "quarantine entry {qid} has no stored copy (reason {}); it stays in the quarantine folder",
                q.reason
            )
        })?;
        let tx = self.store.begin();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.ingest_inner(&tx, &raw, Arrival { source: None, received_at: q.received_at }, now, true, None)
        }))
        .map_err(|_| anyhow::anyhow!("internal failure while parsing {qid} (panic); it stays quarantined"))??;
        if out.disposition != Disposition::Quarantine {
            // Resolved: the entry leaves the quarantine list (the mail record now says
            // where the message went); intake moves the IMAP copy to processed.
            let mut b = Batch::default();
            b.remove_quarantine(&q);
            b.put_resolved(&q.message_id);
            tx.commit(b)?;
        }
        Ok(out)
    }

    fn ingest_inner(
        &self,
        tx: &Tx,
        raw: &[u8],
        arrival: Arrival<'_>,
        now: DateTime<Utc>,
        retry: bool,
        pre: Option<Prepared>,
    ) -> Result<Outcome> {
        let Arrival { source, received_at } = arrival;
        // The caller holds the store's lock: one message at a time through the
        // decision and the commit (case numbering and duplicate detection read what the
        // previous message wrote).
        let cfg = &self.cfg;
        let sha = mime::sha256_hex(raw);

        if let Some(src) = source
            && let Some(key) = self.store.uid(&src.mailbox, src.uidvalidity, src.uid)?
            && let Some(rec) = self.store.mail(&key)?
        {
            return Ok(Outcome::of(&rec, true));
        }

        let too_large = raw.len() as u64 > cfg.limits.max_message_bytes;
        let Prepared { parsed: pre_parsed, read: pre_read } = pre.unwrap_or_default();
        let parsed = if too_large { None } else { Some(pre_parsed.unwrap_or_else(|| mime::parse(raw))) };
        // A message over the limit is never parsed whole; its header still names it.
        let env = match &parsed {
            Some(p) => p.envelope.clone(),
            None => mime::parse(&raw[..raw.len() - mime::body_of(raw).len()]).envelope,
        };
        // Without a Message-ID a message is known by the SHA-256 of its body: the
        // same message delivered twice differs only in its trace headers.
        let body_sha = mime::sha256_hex(mime::body_of(raw));
        let mut key = env.message_id.clone().unwrap_or_else(|| format!("sha256:{body_sha}"));
        let from = env.from_address.clone().unwrap_or_default();

        // A different message under a Message-ID already seen (another body) is a
        // message of its own, known by its body hash like one without a Message-ID;
        // never folded into the first as a "duplicate".
        let mut collision = None;
        if let Some(first) = self.store.mail(&key)?
            && first.body_sha256.as_ref().is_some_and(|b| *b != body_sha)
        {
            collision =
                Some(format!("message-id-reused: <{key}> was first seen on another message ({})", first.sha256));
            key = format!("sha256:{body_sha}");
        }

        // Duplicates: same Message-ID (same body), or same bytes.
        let existing = match self.store.mail(&key)? {
            Some(r) => Some((key.clone(), r)),
            None => match self.store.by_hash(&sha)? {
                Some(k) => self.store.mail(&k)?.map(|r| (k, r)),
                None => None,
            },
        };
        if let Some((ekey, erec)) = existing {
            let requeue = retry && erec.disposition == Disposition::Quarantine;
            if !requeue {
                let mut b = Batch::default();
                if let Some(src) = source {
                    b.put_uid(&src.mailbox, src.uidvalidity, src.uid, &ekey);
                }
                let outcome = if ekey == key {
                    Outcome::of(&erec, true)
                } else {
                    // Same content under another Message-ID: a record of its own.
                    let rec = MailRecord {
                        message_id: key.clone(),
                        received_at,
                        from: from.clone(),
                        sha256: sha.clone(),
                        body_sha256: Some(body_sha.clone()),
                        disposition: Disposition::Duplicate,
                        case_id: erec.case_id.clone(),
                        quarantine_id: None,
                        reason: Some(format!("same content as {ekey}")),
                    };
                    b.put_mail(&key, &rec);
                    if let Some(src) = source {
                        b.put_uid(&src.mailbox, src.uidvalidity, src.uid, &key);
                    }
                    Outcome::of(&rec, false)
                };
                if !b.is_empty() {
                    tx.commit(b)?;
                }
                return Ok(Outcome { disposition: Disposition::Duplicate, ..outcome });
            }
        }

        let mut ctx = Commit {
            tx,
            batch: Batch::default(),
            key: key.clone(),
            sha: sha.clone(),
            body_sha: Some(body_sha.clone()),
            from: from.clone(),
            received_at,
            source,
        };

        let Some(parsed) = parsed else {
            return self.quarantine(
                ctx,
                QuarantineReason::TooLarge,
                false,
                &env,
                None,
                &format!("{} bytes > limits.max_message_bytes", raw.len()),
            );
        };
        if parsed.unparseable || raw.iter().all(|b| b.is_ascii_whitespace()) {
            return self.quarantine(
                ctx,
                QuarantineReason::Malformed,
                false,
                &env,
                Some(raw),
                "not a parseable message",
            );
        }
        if parsed.depth > cfg.limits.max_mime_depth {
            return self.quarantine(
                ctx,
                QuarantineReason::MimeDepth,
                false,
                &env,
                Some(raw),
                &format!("MIME depth {} > limits.max_mime_depth {}", parsed.depth, cfg.limits.max_mime_depth),
            );
        }

        // Non-reports: never a case, never an ack (RFC 3834).
        if let Some(reason) = non_report_reason(&parsed.envelope, &cfg.intake.address) {
            let rec = ctx.record(Disposition::NonReport, None, None, Some(reason.into()));
            ctx.batch.put_mail(&key, &rec);
            if reason == "bounce" {
                self.mark_bounced_ack(raw, &mut ctx.batch, &key, now)?;
            }
            ctx.index();
            tx.commit(ctx.batch)?;
            return Ok(Outcome::of(&rec, false));
        }

        // Read: decrypt and verify whatever form the message has (pure).
        let sys_now: SystemTime = now.into();
        let held_cert = self.store.cert(&from)?;
        // Read in parallel ahead of time, against the cert held then: still valid when
        // the same cert is held now (an earlier message of the group may have pinned one).
        let (candidates, read) = match pre_read {
            Some((fpr, candidates, read)) if fpr == held_cert.as_ref().map(|h| h.fingerprint.clone()) => {
                (candidates, read)
            }
            _ => {
                let candidates = self.candidate_certs(&parsed, &from, held_cert.as_ref());
                let certs: Vec<Cert> = candidates.iter().map(|(c, _)| c.clone()).collect();
                let cx = classify::Context {
                    keys: &self.keys,
                    certs: &certs,
                    max_plaintext: cfg.limits.max_plaintext_bytes,
                    max_depth: cfg.limits.max_mime_depth,
                    now: sys_now,
                };
                let read = classify::read(&parsed, &cx);
                (candidates, read)
            }
        };
        let reading = match read {
            Ok(r) => r,
            Err(u) => {
                let notice = u.reason.tells_sender();
                return self.quarantine_unreadable(ctx, u, &env, raw, notice, now);
            }
        };
        let mut candidates = candidates;
        for k in &reading.keys {
            for c in pgp::parse_certs(k) {
                if !candidates.iter().any(|(h, _)| h.fingerprint() == c.fingerprint()) {
                    candidates.push((c, KeySource::Attached));
                }
            }
        }
        let keyring_fprs: Vec<String> = self
            .keyring
            .iter()
            .filter(|c| pgp::bound_to(c, &from, sys_now))
            .map(|c| c.fingerprint().to_hex())
            .collect();
        let held_fprs = if keyring_fprs.is_empty() {
            held_cert.iter().map(|h| h.fingerprint.clone()).collect()
        } else {
            keyring_fprs.clone()
        };
        let (verdict, signer) = classify::verdict(
            &reading,
            &from,
            &classify::Held { fingerprints: held_fprs, candidates: &candidates },
            sys_now,
        );
        let change = keys::decide(
            &from,
            verdict,
            signer.as_deref(),
            &candidates,
            !keyring_fprs.is_empty(),
            held_cert.as_ref(),
            sys_now,
        );
        // The cert acks and replies are encrypted to: the keyring's, else the pinned
        // one after this message. A conflicting cert is never used.
        let reporter_cert: Option<(Cert, KeySource)> =
            match self.keyring.iter().find(|c| pgp::bound_to(c, &from, sys_now)) {
                Some(c) => Some((c.clone(), KeySource::Keyring)),
                None => change.held_after(held_cert.as_ref()),
            };
        let encrypted = reading.encrypted;
        let text = reading.text();
        let protected_subject = reading.protected_subject.clone();
        let attachments = reading.attachments.clone();

        let msg = CaseMessage {
            message_id: key.clone(),
            from: from.clone(),
            third_party: false,
            received_at,
            encrypted,
            decrypted: encrypted,
            signature: verdict,
            signer_fingerprint: signer.clone(),
            sha256: sha.clone(),
            text: text.clone(),
        };

        // Follow-up on a case?
        if let Some(case_id) = self.follow_up_target(&parsed.envelope)?
            && let Some(mut c) = self.store.case_meta(&case_id)?
        {
            let third_party = !from.eq_ignore_ascii_case(&c.reporter.address);
            c.messages.push(CaseMessage { third_party, ..msg });
            if let keys::Change::Conflict(f) = &change
                && !third_party
            {
                c.reporter.key_conflict = Some(f.clone());
            }
            let rec = ctx.record(Disposition::FollowUp, Some(case_id.clone()), None, collision.clone());
            let (outer, inner_subject) = if third_party {
                (
                    format!("[{}] Follow-up from a third party", c.id),
                    format!("[{}] Follow-up from {from} (not the reporter): {}", c.id, c.title),
                )
            } else {
                (format!("[{}] Follow-up from reporter", c.id), format!("[{}] Follow-up: {}", c.id, c.title))
            };
            let body = c.messages.last().map(|m| notify::followup_text(&c, m)).unwrap_or_default();
            if let Some((out, seal)) =
                self.team_mail(&c, MailKind::Followup, &outer, &inner_subject, &body, now, &sha)?
            {
                ctx.batch.put_out_sealed(&out, seal);
            }
            let mut log_n = self.store.log_len(&case_id)?;
            for e in change.log_entries(&from, now) {
                ctx.batch.put_log(&case_id, log_n, &e);
                log_n += 1;
            }
            self.apply_key_change(&mut ctx.batch, &from, &change)?;
            ctx.batch.put_case(&c);
            ctx.batch.put_mail(&key, &rec);
            ctx.batch.put_log(
                &case_id,
                log_n,
                &LogEntry {
                    at: now,
                    who: "secintake".into(),
                    action: "mail-in".into(),
                    detail: format!("follow-up {key} from {from}{}", if third_party { " (third party)" } else { "" }),
                },
            );
            ctx.index();
            tx.commit(ctx.batch)?;
            tracing::info!(case = %case_id, third_party, "Follow-up joined its case");
            return Ok(Outcome::of(&rec, false));
        }

        // A new case.
        let year = received_at.year();
        let seq_name = format!("{}-{year}", cfg.intake.case_prefix);
        let seq = self.store.seq(&seq_name)? + 1;
        let id = case::format_id(&cfg.intake.case_prefix, year, seq);
        let attachments: Vec<Attachment> = attachments
            .iter()
            .map(|(a, cov)| Attachment {
                name: a.name.clone(),
                size: a.bytes.len() as u64,
                sha256: mime::sha256_hex(&a.bytes),
                content_type: a.content_type.clone(),
                encrypted: cov.encrypted,
                signed: cov.signed,
            })
            .collect();
        let title =
            report::title(protected_subject.as_deref(), &text, if encrypted { "" } else { &parsed.envelope.subject })
                .chars()
                .take(300)
                .collect::<String>();
        let title = if encrypted && title == "(no subject)" {
            report::title(None, "", &parsed.envelope.subject)
        } else {
            title
        };
        let reporter_source = match (&reporter_cert, &held_cert) {
            (Some((c, KeySource::Keyring)), _) => Some((c.fingerprint().to_hex(), KeySource::Keyring)),
            (Some((c, _)), Some(h)) if h.fingerprint == c.fingerprint().to_hex() => {
                Some((h.fingerprint.clone(), h.source))
            }
            (Some((c, s)), _) => Some((c.fingerprint().to_hex(), *s)),
            (None, _) => None,
        };
        // A report re-sent after one we could not read links that first attempt.
        let resend_of = self.unreadable_from(&from)?;
        // Capped lists; what a cap dropped is said in the audit log and the summary.
        let lists = report::lists(&text);
        let case = Case {
            id: id.clone(),
            status: Status::New,
            title,
            reporter: Reporter {
                address: from.clone(),
                name: parsed.envelope.from_name.clone(),
                key_fingerprint: reporter_source.as_ref().map(|(f, _)| f.clone()),
                key_source: reporter_source.map(|(_, s)| s),
                key_conflict: match &change {
                    keys::Change::Conflict(f) => Some(f.clone()),
                    _ => None,
                },
            },
            credit: report::credit(&text),
            received_at,
            encrypted,
            decrypted: encrypted,
            signature: verdict,
            cvss: report::cvss(&text),
            cwe: lists.cwe,
            tlp: report::tlp(&text),
            affected_versions: lists.affected_versions,
            attachments,
            messages: vec![msg],
            ack: None,
            due: Due::from_policy(received_at, &cfg.policy),
            text,
            reject_reason: None,
            assignee: None,
            cve: None,
            fixed_versions: Vec::new(),
            waiting_on_reporter: false,
            resend_of: resend_of.clone(),
        };

        // The acknowledgement, unless we must not answer. What is held back is
        // recorded in the case's audit log (and visible in the team summary).
        let mut withheld = None;
        if let Some(why) = self.ack_refusal(&from, now)? {
            tracing::info!(case = %id, reason = why, "No acknowledgement sent");
            withheld = Some(why);
            if why.starts_with("limits.") {
                // Held, not dropped: the SLA clock sends it once the window opens, or
                // records that it gave up when the ack falls due.
                ctx.batch.put_reminder(&id, ACK_HELD);
            }
        } else {
            match self.ack_mail(&case, &parsed.envelope, &sha, reporter_cert.as_ref().map(|(c, _)| c), now) {
                Ok((out, seal)) => ctx.batch.put_out_sealed(&out, seal),
                Err(e) => {
                    // A cert Sequoia cannot encrypt to, an expired signing key: the case
                    // still opens; the missing ack is recorded and shows in `sla`.
                    tracing::error!(case = %id, error = %format!("{e:#}"), "Acknowledgement could not be built");
                    withheld = Some("the acknowledgement could not be built (see the daemon log)");
                }
            }
        }
        let summary = notify::summary_text(&case, &sha, &[&self.team_warnings[..], &lists.warnings[..]].concat());
        if let Some((out, seal)) = self.team_mail(
            &case,
            MailKind::Summary,
            &format!("[{id}] New report"),
            &format!("[{id}] {}", case.title),
            &summary,
            now,
            &sha,
        )? {
            ctx.batch.put_out_sealed(&out, seal);
        }
        self.apply_key_change(&mut ctx.batch, &from, &change)?;
        let rec = ctx.record(Disposition::Case, Some(id.clone()), None, collision.clone());
        ctx.batch.put_case(&case);
        ctx.batch.put_mail(&key, &rec);
        let mut log = vec![LogEntry {
            at: now,
            who: "secintake".into(),
            action: "opened".into(),
            detail: format!("report {key} from {from}"),
        }];
        if let Some(c) = &collision {
            log.push(LogEntry {
                at: now,
                who: "secintake".into(),
                action: "message-id-reused".into(),
                detail: c.clone(),
            });
        }
        for q in &resend_of {
            log.push(LogEntry {
                at: now,
                who: "secintake".into(),
                action: "resend-of".into(),
                detail: format!("re-sent after {q}, which could not be read"),
            });
        }
        log.extend(change.log_entries(&from, now));
        if let Some(why) = withheld {
            log.push(LogEntry {
                at: now,
                who: "secintake".into(),
                action: "ack-withheld".into(),
                detail: why.to_owned(),
            });
        }
        for w in &lists.warnings {
            tracing::warn!(case = %id, warning = %w, "Report fields truncated");
            log.push(LogEntry { at: now, who: "secintake".into(), action: "truncated".into(), detail: w.clone() });
        }
        for (n, e) in log.iter().enumerate() {
            ctx.batch.put_log(&id, n as u64, e);
        }
        ctx.batch.put_seq(&seq_name, seq);
        ctx.index();
        tx.commit(ctx.batch)?;
        tracing::info!(case = %id, encrypted, signature = verdict.as_str(), "Case opened");
        Ok(Outcome::of(&rec, false))
    }

    /// Queues the SLA reminders due at `now` (each once) to the team list. Returns how
    /// many cases got one.
    pub fn queue_reminders(&self, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.store.begin();
        let mut n = 0;
        self.store.each_case(|c| {
            let sent = self.store.reminders(&c.id)?;
            if sent.iter().any(|k| k == ACK_HELD) && !sent.iter().any(|k| k == ACK_HELD_DONE) {
                self.retry_held_ack(&tx, &c, now)?;
            }
            let due = case::sla::due(&c, &sent, now);
            if due.is_empty() {
                return Ok(());
            }
            let mut b = Batch::default();
            let mut body = format!("SLA reminder for {} ({}), status {}:\n\n", c.id, c.title, c.status.as_str());
            for r in &due {
                body.push_str(&format!("  - {}\n", r.text));
                b.put_reminder(&c.id, r.key);
                for k in case::sla::covers(r.key) {
                    b.put_reminder(&c.id, k);
                }
            }
            body.push_str(&format!("\nsecintake case show {}\n", c.id));
            let keys: Vec<&str> = due.iter().map(|r| r.key).collect();
            let seed = format!("{}-{}-{}", c.id, keys.join(","), sent.len());
            if let Some((out, seal)) = self.team_mail(
                &c,
                MailKind::Reminder,
                &format!("[{}] SLA reminder", c.id),
                &format!("[{}] Reminder: {}", c.id, c.title),
                &body,
                now,
                &seed,
            )? {
                b.put_out_sealed(&out, seal);
            }
            b.put_log(
                &c.id,
                self.store.log_len(&c.id)?,
                &LogEntry { at: now, who: "secintake".into(), action: "reminder".into(), detail: keys.join(", ") },
            );
            tx.commit(b)?;
            tracing::info!(case = %c.id, reminders = %keys.join(","), "SLA reminder queued");
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    /// An ack held back by the rate limits: sent once the limits allow it, or, when
    /// the ack falls due first, recorded as given up (the SLA clock's overdue-ack
    /// reminder tells the team). Either way once.
    fn retry_held_ack(&self, tx: &Tx, c: &Case, now: DateTime<Utc>) -> Result<()> {
        let mut b = Batch::default();
        let log =
            |action: &str, detail: String| LogEntry { at: now, who: "secintake".into(), action: action.into(), detail };
        if c.ack.is_some() {
            b.put_reminder(&c.id, ACK_HELD_DONE);
        } else if now > c.due.ack {
            tracing::warn!(case = %c.id, "Held acknowledgement given up: the rate limits stayed reached until it was due");
            b.put_log(
                &c.id,
                self.store.log_len(&c.id)?,
                &log(
                    "ack-given-up",
                    "the rate limits stayed reached until the acknowledgement was due; reach the reporter another way"
                        .into(),
                ),
            );
            b.put_reminder(&c.id, ACK_HELD_DONE);
        } else if self.ack_refusal(&c.reporter.address, now)?.is_none() {
            let Some(full) = self.store.case(&c.id)? else { return Ok(()) };
            let first = &full.messages[0];
            let env = mime::Envelope {
                message_id: Some(first.message_id.clone()).filter(|m| !m.starts_with("sha256:")),
                from_address: Some(c.reporter.address.clone()),
                ..mime::Envelope::default()
            };
            let sys_now: SystemTime = now.into();
            let cert =
                self.keyring.iter().find(|k| pgp::bound_to(k, &c.reporter.address, sys_now)).cloned().or_else(|| {
                    self.store
                        .cert(&c.reporter.address)
                        .ok()
                        .flatten()
                        .and_then(|h| pgp::parse_certs(h.armored.as_bytes()).into_iter().next())
                });
            match self.ack_mail(&full, &env, &first.sha256, cert.as_ref(), now) {
                Ok((out, seal)) => {
                    b.put_out_sealed(&out, seal);
                    b.put_log(
                        &c.id,
                        self.store.log_len(&c.id)?,
                        &log("ack-released", "the rate limits allow it now; acknowledgement queued".into()),
                    );
                    tracing::info!(case = %c.id, "Held acknowledgement queued");
                }
                Err(e) => {
                    tracing::error!(case = %c.id, error = %format!("{e:#}"), "Held acknowledgement could not be built");
                    b.put_log(
                        &c.id,
                        self.store.log_len(&c.id)?,
                        &log("ack-given-up", format!("the acknowledgement could not be built: {e:#}")),
                    );
                }
            }
            b.put_reminder(&c.id, ACK_HELD_DONE);
        } else {
            return Ok(());
        }
        tx.commit(b)
    }

    /// Tells the team list about outgoing mail that failed permanently (once each;
    /// never about the failure reports themselves, so nothing loops).
    pub fn report_failures(&self, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.store.begin();
        let mut n = 0;
        for o in self.store.failed()? {
            if o.status != OutStatus::Failed || o.kind == MailKind::Failure {
                continue;
            }
            let Some(cid) = &o.case_id else { continue };
            let marker = format!("failed:{}", o.id);
            if self.store.reminders(cid)?.contains(&marker) {
                continue;
            }
            let Some(c) = self.store.case_meta(cid)? else { continue };
            let body = format!(
                "Mail for {} could not be delivered and will not be retried.\n\
                 Kind: {}\nTo: {}\nMessage-ID: {}\nError: {}\n",
                c.id,
                o.kind,
                o.to.join(", "),
                o.id,
                o.last_error.as_deref().unwrap_or("-")
            );
            let mut b = Batch::default();
            b.put_reminder(cid, &marker);
            if o.to.iter().all(|t| !t.eq_ignore_ascii_case(&self.cfg.team_list_address))
                && let Some((out, seal)) = self.team_mail(
                    &c,
                    MailKind::Failure,
                    &format!("[{}] Mail delivery failed", c.id),
                    &format!("[{}] Mail delivery failed", c.id),
                    &body,
                    now,
                    &o.id,
                )?
            {
                b.put_out_sealed(&out, seal);
            }
            tx.commit(b)?;
            n += 1;
        }
        Ok(n)
    }

    /// Queues a reply to the reporter of `case_id`: threaded, signed, encrypted when
    /// their cert is known; refused unencrypted for TLP:AMBER and above. Counts as a
    /// status update (restarts the update clock).
    pub fn reply(&self, case_id: &str, text: &str, who: &str, now: DateTime<Utc>) -> Result<String> {
        let tx = self.store.begin();
        let mut c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let to = c.reporter.address.clone();
        if !crate::config::valid_address(&to) || to.eq_ignore_ascii_case(&self.cfg.intake.address) {
            anyhow::bail!("case {case_id} has no usable reporter address ({to:?})");
        }
        let sys_now: SystemTime = now.into();
        let cert = self
            .keyring
            .iter()
            .find(|k| pgp::bound_to(k, &to, sys_now))
            .cloned()
            .or_else(|| {
                self.store
                    .cert(&to)
                    .ok()
                    .flatten()
                    .and_then(|sc| pgp::parse_certs(sc.armored.as_bytes()).into_iter().next())
            })
            .filter(|k| pgp::can_encrypt(k, sys_now).is_ok());
        let strict_tlp = matches!(c.tlp.as_deref(), Some("AMBER" | "AMBER+STRICT" | "RED"));
        if cert.is_none() && strict_tlp {
            anyhow::bail!(
                "case {case_id} is TLP:{} and the reporter's key is unknown: a reply would go unencrypted; \
                 add their key to keys.keyring first",
                c.tlp.as_deref().unwrap_or("")
            );
        }
        let seed = mime::sha256_hex(format!("{case_id}{}{text}", now.timestamp_nanos_opt().unwrap_or(0)).as_bytes());
        let mut h = self.headers(
            vec![to.clone()],
            &format!("[{case_id}] Update on your report"),
            MailKind::Reply,
            case_id,
            &seed,
            now,
        );
        let first = c.messages.first().map(|m| m.message_id.clone()).filter(|m| !m.starts_with("sha256:"));
        h.in_reply_to = first.clone();
        let mut refs: Vec<String> =
            c.messages.iter().map(|m| m.message_id.clone()).filter(|m| !m.starts_with("sha256:")).collect();
        if let Some(a) = &c.ack {
            refs.push(a.message_id.clone());
        }
        h.references = refs;
        let (raw, encrypted) = match &cert {
            Some(k) => {
                let inner = build::protected_text_part(&h, text);
                let ct = self.keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(k), sys_now)?;
                (build::encrypted(&h, &ct)?, true)
            }
            None => {
                let part = build::text_part(text, "");
                (build::signed(&h, &part, |d| self.keys.sign_detached(d, sys_now))?, false)
            }
        };
        let out = self.out_mail(&h, MailKind::Reply, case_id, encrypted, now);
        let mut b = Batch::default();
        b.put_out(&out, Some(&raw));
        c.due.update =
            now + chrono::Duration::from_std(self.cfg.policy.update_within).unwrap_or(chrono::Duration::days(7));
        for k in case::sla::UPDATE_KEYS {
            b.remove_reminder(case_id, k);
        }
        b.put_case(&c);
        b.put_log(
            case_id,
            self.store.log_len(case_id)?,
            &LogEntry {
                at: now,
                who: who.to_owned(),
                action: "reply".into(),
                detail: format!("reply {} to {to} queued (encrypted: {encrypted})", out.id),
            },
        );
        tx.commit(b)?;
        Ok(out.id)
    }

    fn quarantine(
        &self,
        mut ctx: Commit<'_>,
        reason: QuarantineReason,
        encrypted: bool,
        env: &mime::Envelope,
        raw: Option<&[u8]>,
        detail: &str,
    ) -> Result<Outcome> {
        let qid = format!("Q-{}", &ctx.sha[..16]);
        let q = QuarantineEntry {
            id: qid.clone(),
            reason,
            message_id: ctx.key.clone(),
            from: env.from_address.clone().unwrap_or_default(),
            received_at: ctx.received_at,
            encrypted,
            sha256: ctx.sha.clone(),
            detail: detail.chars().take(500).collect(),
        };
        let rec = ctx.record(Disposition::Quarantine, None, Some(qid.clone()), Some(reason.as_str().into()));
        ctx.batch.put_quarantine(&q, raw);
        ctx.batch.put_mail(&ctx.key.clone(), &rec);
        ctx.index();
        ctx.tx.commit(ctx.batch)?;
        tracing::warn!(quarantine = %qid, reason = reason.as_str(), "Message quarantined");
        Ok(Outcome::of(&rec, false))
    }

    fn follow_up_target(&self, env: &mime::Envelope) -> Result<Option<String>> {
        for r in env.in_reply_to.iter().chain(env.references.iter()) {
            if let Some(rec) = self.store.mail(r)?
                && rec.case_id.is_some()
                && matches!(rec.disposition, Disposition::Case | Disposition::FollowUp)
            {
                return Ok(rec.case_id);
            }
            if let Some(out) = self.store.out(r)?
                && out.case_id.is_some()
            {
                return Ok(out.case_id);
            }
        }
        if let Some(id) = case::find_id(&self.cfg.intake.case_prefix, &env.subject)
            && self.store.case_meta(&id)?.is_some()
        {
            return Ok(Some(id));
        }
        Ok(None)
    }

    /// Why no ack may go to `to`, if so: loops (RFC 3834) and rate limits.
    fn ack_refusal(&self, to: &str, now: DateTime<Utc>) -> Result<Option<&'static str>> {
        if to.is_empty() || !crate::config::valid_address(to) {
            return Ok(Some("no usable From address"));
        }
        if to.eq_ignore_ascii_case(&self.cfg.intake.address) || to.eq_ignore_ascii_case(&self.cfg.team_list_address) {
            return Ok(Some("our own address"));
        }
        let local = to.split('@').next().unwrap_or("").to_ascii_lowercase();
        if matches!(local.as_str(), "mailer-daemon" | "postmaster" | "noreply" | "no-reply" | "donotreply") {
            return Ok(Some("automated sender"));
        }
        let hour_ago = now - chrono::Duration::hours(1);
        let (total, to_them) = self.store.answer_counts(hour_ago + chrono::Duration::milliseconds(1), to);
        if to_them >= self.cfg.limits.acks_per_address_per_hour as usize {
            return Ok(Some("limits.acks_per_address_per_hour reached"));
        }
        if total >= self.cfg.limits.acks_per_hour as usize {
            return Ok(Some("limits.acks_per_hour reached"));
        }
        Ok(None)
    }

    fn headers(
        &self,
        to: Vec<String>,
        subject: &str,
        kind: MailKind,
        case_id: &str,
        sha: &str,
        now: DateTime<Utc>,
    ) -> build::Headers {
        let autocrypt = pgp::binary_cert(&self.keys.public_cert())
            .ok()
            .map(|k| build::autocrypt_value(&self.cfg.intake.address, &k));
        build::Headers {
            from: self.cfg.intake.address.clone(),
            from_name: format!("{} Security", self.cfg.policy.project),
            to,
            subject: subject.to_owned(),
            message_id: format!(
                "{}.{}.{}@{}",
                case_id.to_ascii_lowercase(),
                kind.id_token(),
                &sha[..16],
                self.cfg.intake_domain()
            ),
            in_reply_to: None,
            references: Vec::new(),
            date: now,
            auto_submitted: false,
            autocrypt,
        }
    }

    fn ack_mail(
        &self,
        case: &Case,
        env: &mime::Envelope,
        sha: &str,
        reporter_cert: Option<&Cert>,
        now: DateTime<Utc>,
    ) -> Result<(OutMail, Seal)> {
        let mut h = self.headers(
            vec![case.reporter.address.clone()],
            &format!("[{}] Report received", case.id),
            MailKind::Ack,
            &case.id,
            sha,
            now,
        );
        h.auto_submitted = true;
        if let Some(mid) = &env.message_id {
            h.in_reply_to = Some(mid.clone());
            let mut refs = env.references.clone();
            refs.push(mid.clone());
            h.references = refs;
        }
        let sys_now: SystemTime = now.into();
        // An intake key that cannot sign (expired): no ack, said in the case's log.
        self.keys.can_sign(sys_now)?;
        let usable = reporter_cert.filter(|c| pgp::can_encrypt(c, sys_now).is_ok()).cloned();
        let fpr = self.keys.fingerprint().to_hex();
        let encrypted = usable.is_some();
        let body = self.templates.ack(case, &self.cfg.policy.project, sha, &fpr, encrypted);
        let keys = self.keys.clone();
        let out = self.out_mail(&h, MailKind::Ack, &case.id, encrypted, now);
        let seal: Seal = match usable {
            Some(cert) => Box::new(move || {
                let inner = build::protected_text_part(&h, &body);
                let ct = keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(&cert), sys_now)?;
                build::encrypted(&h, &ct)
            }),
            None => Box::new(move || {
                let part = build::text_part(&body, "");
                build::signed(&h, &part, |data| keys.sign_detached(data, sys_now))
            }),
        };
        Ok((out, seal))
    }

    /// An encrypted mail to the team list; None when no team cert is usable (nothing
    /// is ever sent to the team unencrypted). Sealed when its batch is recorded.
    #[allow(clippy::too_many_arguments)]
    fn team_mail(
        &self,
        case: &Case,
        kind: MailKind,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
    ) -> Result<Option<(OutMail, Seal)>> {
        // Certs are checked again at the time of use: one may have expired since load.
        let team: Vec<Cert> = self.team.iter().filter(|c| pgp::can_encrypt(c, now.into()).is_ok()).cloned().collect();
        if team.is_empty() {
            tracing::warn!(case = %case.id, "No usable team cert: team mail not sent");
            return Ok(None);
        }
        let seed = mime::sha256_hex(format!("{}{kind}{seed}", case.id).as_bytes());
        let h = self.headers(vec![self.cfg.team_list_address.clone()], inner_subject, kind, &case.id, &seed, now);
        let out = self.out_mail(&h, kind, &case.id, true, now);
        let keys = self.keys.clone();
        let (body, outer_subject) = (body.to_owned(), outer_subject.to_owned());
        Ok(Some((
            out,
            Box::new(move || {
                let inner = build::protected_text_part(&h, &body);
                let ct = keys.encrypt_and_sign(inner.as_bytes(), &team, now.into())?;
                // The real subject travels only inside the encryption.
                let h = build::Headers { subject: outer_subject, ..h };
                build::encrypted(&h, &ct)
            }),
        )))
    }

    fn out_mail(
        &self,
        h: &build::Headers,
        kind: MailKind,
        case_id: &str,
        encrypted: bool,
        now: DateTime<Utc>,
    ) -> OutMail {
        OutMail {
            id: h.message_id.clone(),
            kind,
            case_id: Some(case_id.into()),
            envelope_from: self.cfg.intake.address.clone(),
            to: h.to.clone(),
            encrypted,
            status: OutStatus::Queued,
            attempts: 0,
            created_at: now,
            next_attempt: now,
            sent_at: None,
            last_error: None,
        }
    }

    /// Every cert that may have signed a message from `from`: the keyring, the cert
    /// held for the address, its Autocrypt header (when it names `from`) and the keys
    /// attached outside the encryption.
    fn candidate_certs(&self, parsed: &mime::Parsed, from: &str, held: Option<&StoredCert>) -> Vec<(Cert, KeySource)> {
        let mut out: Vec<(Cert, KeySource)> = self.keyring.iter().map(|c| (c.clone(), KeySource::Keyring)).collect();
        if let Some(h) = held {
            out.extend(pgp::parse_certs(h.armored.as_bytes()).into_iter().take(1).map(|c| (c, h.source)));
        }
        if let Some((addr, keydata)) = &parsed.envelope.autocrypt
            && addr == from
        {
            out.extend(pgp::parse_certs(keydata).into_iter().map(|c| (c, KeySource::Autocrypt)));
        }
        for k in &parsed.keys {
            out.extend(pgp::parse_certs(k).into_iter().map(|c| (c, KeySource::Attached)));
        }
        out
    }

    /// Writes what [`keys::decide`] decided about the cert held for `address`.
    fn apply_key_change(&self, b: &mut Batch, address: &str, change: &keys::Change) -> Result<()> {
        let held = self.store.cert(address)?;
        let (cert, source) = match change {
            keys::Change::None | keys::Change::Conflict(_) => return Ok(()),
            keys::Change::Pin(c, s) => (c.clone(), *s),
            keys::Change::Replace { new, source, .. } => (new.clone(), *source),
            keys::Change::Refresh(_) => match change.held_after(held.as_ref()) {
                Some(h) => h,
                None => return Ok(()),
            },
        };
        let armored = pgp::armor_cert(&cert)?;
        if held.as_ref().is_some_and(|h| h.armored == armored) {
            return Ok(());
        }
        b.put_cert(address, &StoredCert { fingerprint: cert.fingerprint().to_hex(), source, armored });
        Ok(())
    }

    /// Quarantine entries of messages from `from` that could not be read: a new
    /// report from the same address is taken as their re-send and links them.
    fn unreadable_from(&self, from: &str) -> Result<Vec<String>> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.unreadable_from(from)?.into_iter().map(|q| q.id).collect())
    }

    /// Quarantines a message that could not be read and, for a report we could not
    /// decrypt, tells its sender (signed, rate-limited, never to automated senders):
    /// when it arrived, its SHA-256, that it could not be read, which key to use.
    fn quarantine_unreadable(
        &self,
        mut ctx: Commit<'_>,
        u: classify::Unreadable,
        env: &mime::Envelope,
        raw: &[u8],
        notice: bool,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let from = ctx.from.clone();
        if notice {
            match self.ack_refusal(&from, now)? {
                Some(why) => tracing::info!(reason = why, "No cannot-read notice sent"),
                None => match self.cannot_read_mail(env, &ctx.sha, ctx.received_at, u.reason.as_str(), now) {
                    Ok((out, mail)) => ctx.batch.put_out(&out, Some(&mail)),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "Cannot-read notice could not be built"),
                },
            }
        }
        self.quarantine(ctx, u.reason, u.encrypted, env, Some(raw), &u.detail)
    }

    fn cannot_read_mail(
        &self,
        env: &mime::Envelope,
        sha: &str,
        received_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(OutMail, Vec<u8>)> {
        let to = env.from_address.clone().unwrap_or_default();
        let seed = format!("unread{sha}");
        let mut h = self.headers(
            vec![to],
            "Your message could not be read",
            MailKind::CannotRead,
            "intake",
            &mime::sha256_hex(seed.as_bytes()),
            now,
        );
        h.auto_submitted = true;
        if let Some(mid) = &env.message_id {
            h.in_reply_to = Some(mid.clone());
            h.references = vec![mid.clone()];
        }
        let body = notify::cannot_read_text(&notify::CannotRead {
            project: &self.cfg.policy.project,
            intake: &self.cfg.intake.address,
            received_at: &received_at,
            sha256: sha,
            why: reason,
            fingerprint: &self.keys.fingerprint().to_hex(),
            key_url: self.cfg.policy.security_txt_url.as_deref(),
            public_key: &self.keys.public_armored()?,
        });
        let part = build::text_part(&body, "");
        let sys_now: SystemTime = now.into();
        let mail = build::signed(&h, &part, |data| self.keys.sign_detached(data, sys_now))?;
        let mut out = self.out_mail(&h, MailKind::CannotRead, "", false, now);
        out.case_id = None;
        Ok((out, mail))
    }

    /// A bounce that names one of our acks marks that ack as undelivered on its case.
    /// A bounce naming one of our acks: the ack is marked undelivered on its case, the
    /// audit log says so, and the team list is told (encrypted).
    fn mark_bounced_ack(&self, raw: &[u8], b: &mut Batch, bounce_key: &str, now: DateTime<Utc>) -> Result<()> {
        let text = String::from_utf8_lossy(raw);
        // Our acks' Message-IDs named in the bounce, looked up one by one.
        for id in ack_ids_in(&text) {
            let Some(out) = self.store.out(&id)? else { continue };
            if out.kind == MailKind::Ack {
                let Some(cid) = &out.case_id else { continue };
                if let Some(mut c) = self.store.case_meta(cid)? {
                    if let Some(ack) = c.ack.as_mut() {
                        ack.undelivered = true;
                    } else {
                        c.ack = Some(Ack {
                            sent_at: out.created_at,
                            message_id: out.id.clone(),
                            encrypted: out.encrypted,
                            undelivered: true,
                        });
                    }
                    tracing::warn!(case = %cid, "Acknowledgement bounced");
                    let body = format!(
                        "The acknowledgement of {} to {} bounced (bounce {bounce_key}).\n\
                         The reporter has not received their receipt: reach them another way.\n",
                        c.id, c.reporter.address
                    );
                    if let Some((o, seal)) = self.team_mail(
                        &c,
                        MailKind::Bounce,
                        &format!("[{}] Acknowledgement bounced", c.id),
                        &format!("[{}] Acknowledgement bounced", c.id),
                        &body,
                        now,
                        bounce_key,
                    )? {
                        b.put_out_sealed(&o, seal);
                    }
                    b.put_log(
                        &c.id,
                        self.store.log_len(&c.id)?,
                        &LogEntry {
                            at: now,
                            who: "secintake".into(),
                            action: "bounce".into(),
                            detail: format!("ack {} bounced ({bounce_key})", out.id),
                        },
                    );
                    b.put_case(&c);
                }
            }
        }
        Ok(())
    }
}

/// What the pure stages make of raw bytes, without a store: parse, then the same
/// classification the pipeline uses ([`classify::read`] and [`classify::verdict`]),
/// then field extraction. The fuzz target and the mutation smoke test drive this; it
/// must never panic or allocate past the limits.
pub fn examine(raw: &[u8], keys: &IntakeKeys, max_plaintext: u64, max_depth: u32, now: SystemTime) -> String {
    let parsed = mime::parse(raw);
    if parsed.depth > max_depth {
        return "mime-depth".into();
    }
    if let Some(r) = non_report_reason(&parsed.envelope, "security@intake.test") {
        return r.into();
    }
    let from = parsed.envelope.from_address.clone().unwrap_or_default();
    let candidates: Vec<(Cert, KeySource)> =
        parsed.keys.iter().flat_map(|k| pgp::parse_certs(k)).map(|c| (c, KeySource::Attached)).collect();
    let certs: Vec<Cert> = candidates.iter().map(|(c, _)| c.clone()).collect();
    let cx = classify::Context { keys, certs: &certs, max_plaintext, max_depth, now };
    let reading = match classify::read(&parsed, &cx) {
        Ok(r) => r,
        Err(u) => return u.reason.as_str().into(),
    };
    let (verdict, _) =
        classify::verdict(&reading, &from, &classify::Held { fingerprints: Vec::new(), candidates: &candidates }, now);
    let text = reading.text();
    let title = report::title(reading.protected_subject.as_deref(), &text, &parsed.envelope.subject);
    let _ = (
        report::cvss(&text),
        report::cwes(&text),
        report::tlp(&text),
        report::affected_versions(&text),
        report::credit(&text),
    );
    format!("case:{}:{}", verdict.as_str(), title.len())
}

/// Message-IDs of the form our acks have (`CASE.ack.HEX16@DOMAIN`) found in `text`.
fn ack_ids_in(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = text[from..].find(".ack.").map(|p| p + from) {
        from = p + 5;
        // By bytes: the byte after a non-ASCII character's last byte starts the next
        // character (the index after its first byte, as `rfind` gave, does not: a
        // panic on a report with such a character before an ack id; fuzz campaign).
        let start = b[..p].iter().rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'-')).map(|i| i + 1).unwrap_or(0);
        let hex_end = p + 5 + 16;
        if start == p
            || hex_end >= b.len()
            || !b[p + 5..hex_end].iter().all(u8::is_ascii_hexdigit)
            || b[hex_end] != b'@'
        {
            continue;
        }
        let end = text[hex_end + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .map(|i| i + hex_end + 1)
            .unwrap_or(b.len());
        out.push(text[start..end].trim_end_matches('.').to_ascii_lowercase());
        if out.len() >= 16 {
            break;
        }
    }
    out
}

/// Why a message is not a report (auto-reply, bounce, list), if it is not.
pub fn non_report_reason(env: &mime::Envelope, intake: &str) -> Option<&'static str> {
    if env.is_dsn {
        return Some("bounce");
    }
    if let Some(a) = &env.auto_submitted
        && a != "no"
    {
        return Some("auto-reply");
    }
    let from = env.from_address.as_deref().unwrap_or("");
    let local = from.split('@').next().unwrap_or("").to_ascii_lowercase();
    if local == "mailer-daemon" || (local == "postmaster" && env.subject.to_ascii_lowercase().contains("deliver")) {
        return Some("bounce");
    }
    if env.is_list || env.is_bulk {
        return Some("list");
    }
    if env.return_path_empty && !from.is_empty() {
        return Some("bounce");
    }
    if from.eq_ignore_ascii_case(intake) {
        return Some("own-mail");
    }
    None
}

/// The index writes shared by every outcome.
/// Where and when a message arrived.
#[derive(Clone, Copy)]
struct Arrival<'a> {
    source: Option<&'a Source>,
    received_at: DateTime<Utc>,
}

struct Commit<'a> {
    /// The write this message's outcome goes into.
    tx: &'a Tx<'a>,
    batch: Batch,
    key: String,
    sha: String,
    /// SHA-256 of the body (tells a re-used Message-ID from a re-delivery).
    body_sha: Option<String>,
    from: String,
    received_at: DateTime<Utc>,
    source: Option<&'a Source>,
}

impl Commit<'_> {
    /// The mail record of this message with its outcome.
    fn record(
        &self,
        disposition: Disposition,
        case_id: Option<String>,
        quarantine_id: Option<String>,
        reason: Option<String>,
    ) -> MailRecord {
        MailRecord {
            message_id: self.key.clone(),
            received_at: self.received_at,
            from: self.from.clone(),
            sha256: self.sha.clone(),
            body_sha256: self.body_sha.clone(),
            disposition,
            case_id,
            quarantine_id,
            reason,
        }
    }

    fn index(&mut self) {
        self.batch.put_hash(&self.sha, &self.key);
        if let Some(src) = self.source {
            self.batch.put_uid(&src.mailbox, src.uidvalidity, src.uid, &self.key);
        }
    }
}
