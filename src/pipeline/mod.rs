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
use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use crate::case::{self, Case, KeySource, LogEntry};
use crate::config::Config;
use crate::mime;
use crate::notify;
use crate::openpgp::{self as pgp, IntakeKeys};
use crate::store::{Batch, Disposition, MailKind, MailRecord, OutStatus, QuarantineReason, Store, Tx};

pub mod classify;
mod commands;
pub mod credit;
mod decide;
mod desk;
pub mod dupes;
pub mod keys;
mod outgoing;
mod projects;
mod readin;
mod record;
pub mod reporters;
pub mod search;

pub use decide::examine;
use decide::{Identity, Recognised};
use record::Commit;

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
    /// The projects besides the default one (`[[projects]]`), by name.
    pub projects: Arc<std::collections::BTreeMap<String, ProjectKeys>>,
    /// Every cert in `keys.team_certs`, expired and revoked ones too: who may sign a
    /// command mail (and, for a refusal, whose cert is no longer valid).
    pub team_signers: Arc<Vec<Cert>>,
    /// The certs a signature is checked against besides the sender's: the keyring and,
    /// with `[commands] enabled`, the team signers.
    pub known_signers: Arc<Vec<Cert>>,
    /// Canned replies (`replies/` beside the config): `case reply --template`, `/reply NAME`.
    pub replies: Arc<notify::Replies>,
    pub store: Store,
}

/// What a project besides the default one brings.
#[derive(Clone)]
pub struct ProjectKeys {
    /// Its own intake key (signs its mail, opens reports encrypted to it); None: the
    /// default project's.
    pub keys: Option<Arc<IntakeKeys>>,
    /// Its maintainers' usable certs (`team_certs`): they get its team mail, and only its.
    pub team: Arc<Vec<Cert>>,
}

impl Pipeline {
    /// The keys that sign the mail of the project called `project` (None: the default).
    pub fn signer(&self, project: Option<&str>) -> &Arc<IntakeKeys> {
        project.and_then(|p| self.projects.get(p)).and_then(|p| p.keys.as_ref()).unwrap_or(&self.keys)
    }
}

/// Cases the SLA clock indexes for search per tick at most (a backlog of 10,000 is taken
/// in over a few ticks; a query takes in the rest first).
const SEARCH_DRAIN_PER_TICK: usize = 2_000;

/// Builds what the store's indexes (duplicates, search) lack, once: the daemon at start,
/// and the commands that read them, call this.
pub fn ensure_indexes(store: &Store) -> Result<()> {
    let d = dupes::ensure_index(store).context("Building the duplicate index")?;
    let s = search::ensure_index(store).context("Building the search index")?;
    if d + s > 0 {
        tracing::info!(duplicates = d, search = s, "Indexed cases the store's indexes lacked");
    }
    Ok(())
}

impl Pipeline {
    /// Loads keys and certs for `cfg` on top of an open store.
    pub fn load(cfg: Arc<Config>, store: Store) -> Result<Pipeline> {
        let keys = crate::keyfiles::load_intake_keys(&cfg)?;
        let now = SystemTime::now();
        let (team, team_warnings) = crate::keyfiles::team_certs(&cfg.keys.team_certs, "keys.team_certs", now);
        let mut projects = std::collections::BTreeMap::new();
        for p in &cfg.projects {
            let keys = match &p.intake_secret {
                Some(path) => Some(Arc::new(crate::keyfiles::load_keys(
                    path,
                    p.passphrase.as_ref(),
                    &format!("projects {}: intake_secret", p.name),
                )?)),
                None => None,
            };
            let team = match &p.team_certs {
                Some(dir) => crate::keyfiles::team_certs(dir, "projects.team_certs", now).0,
                None => Vec::new(),
            };
            projects.insert(p.name.clone(), ProjectKeys { keys, team: Arc::new(team) });
        }
        if team.is_empty() {
            tracing::warn!("No usable team cert in keys.team_certs: team summaries will not be sent");
        }
        let keyring = match &cfg.keys.keyring {
            Some(dir) => crate::keyfiles::read_cert_dir(dir).0.into_iter().map(|(_, c)| c).collect(),
            None => Vec::new(),
        };
        let templates =
            notify::Templates::load(cfg.templates_dir.as_deref()).map_err(|e| anyhow::anyhow!("templates.dir: {e}"))?;
        let team_signers: Vec<Cert> =
            crate::keyfiles::read_cert_dir(&cfg.keys.team_certs).0.into_iter().map(|(_, c)| c).collect();
        let mut known_signers = keyring.clone();
        if cfg.commands.enabled {
            known_signers.extend(team_signers.iter().cloned());
            // A project's maintainers may act on its cases (pipeline/commands.rs).
            known_signers.extend(projects.values().flat_map(|p: &ProjectKeys| p.team.iter().cloned()));
        }
        let replies = notify::Replies::load(&cfg.replies_dir()).map_err(|e| anyhow::anyhow!("replies: {e}"))?;
        Ok(Pipeline {
            cfg,
            keys: Arc::new(keys),
            team: Arc::new(team),
            keyring: Arc::new(keyring),
            templates: Arc::new(templates),
            team_warnings: Arc::new(team_warnings),
            projects: Arc::new(projects),
            team_signers: Arc::new(team_signers),
            known_signers: Arc::new(known_signers),
            replies: Arc::new(replies),
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
    /// and decrypt and verify against the certs held now. [`Self::decide`] uses it
    /// when the cert held for the sender is still the same.
    fn prepare(&self, raw: &[u8], now: DateTime<Utc>) -> Prepared {
        if raw.len() as u64 > self.cfg.limits.max_message_bytes {
            return Prepared::default();
        }
        let parsed = mime::parse(raw);
        if decide::malformed(&parsed, raw, self.cfg.limits.max_mime_depth).is_some()
            || decide::non_report_reason(&parsed.envelope, &self.cfg.intake.address).is_some()
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
        let candidates = decide::candidate_certs(&self.known_signers, &parsed, &from, held.as_ref());
        let read = self.read(&parsed, &candidates, now.into());
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
        if let Some(rec) = self.by_uid(source)? {
            return Ok(Outcome::of(&rec, true));
        }
        let env = std::panic::catch_unwind(|| mime::parse(head).envelope).unwrap_or_default();
        let key = env.message_id.clone().unwrap_or_else(|| format!("sha256:{body_sha}"));
        if let Some((k, rec)) = self.earlier(&key, sha)? {
            let mut b = Batch::default();
            if let Some(src) = source {
                b.put_uid(&src.mailbox, src.uidvalidity, src.uid, &k);
            }
            tx.commit(b)?;
            return Ok(Outcome::of(&rec, true));
        }
        let from = env.from_address.clone().unwrap_or_default();
        let id = Identity {
            key,
            sha: sha.to_owned(),
            body_sha: body_sha.to_owned(),
            from,
            env,
            collision: None,
            source,
            received_at,
        };
        // The lock stays held through the write: quarantine() itself does not lock.
        self.quarantine(
            Commit::new(&tx, &id),
            QuarantineReason::TooLarge,
            false,
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
        let body_sha = mime::sha256_hex(mime::body_of(raw));
        let env = mime::Envelope::default();
        let id = Identity { key, sha, body_sha, from: String::new(), env, collision: None, source, received_at };
        // The lock stays held through the write: quarantine() itself does not lock.
        let detail = if reason == QuarantineReason::Malformed {
            "internal failure while parsing (panic); kept for analysis".to_owned()
        } else {
            format!("processing crashed or hung {MAX_ATTEMPTS} times; kept for analysis, the next message went on")
        };
        self.quarantine(Commit::new(tx, &id), reason, false, Some(raw), &detail)
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

    /// One message, with the store's lock held by the caller: one message at a time
    /// through the decision and the commit (case numbering and duplicate detection
    /// read what the previous message wrote). Recognise it, decide what becomes of it
    /// (no writes), record that (one commit).
    fn ingest_inner(
        &self,
        tx: &Tx,
        raw: &[u8],
        arrival: Arrival<'_>,
        now: DateTime<Utc>,
        retry: bool,
        pre: Option<Prepared>,
    ) -> Result<Outcome> {
        let (id, msg) = match self.recognise(raw, arrival, retry, pre)? {
            Recognised::Seen(outcome) => return Ok(outcome),
            Recognised::Incoming(id, msg) => (id, msg),
        };
        let decision = self.decide(&id, *msg, raw, now)?;
        self.record(tx, &id, decision, raw, now)
    }

    /// Queues the SLA reminders due at `now` (each once) to the team list. Returns how
    /// many cases got one.
    pub fn queue_reminders(&self, now: DateTime<Utc>) -> Result<usize> {
        let tx = self.store.begin();
        let mut n = 0;
        self.store.each_case(|c| {
            if self.close_if_incomplete(&tx, &c, now)? {
                return Ok(());
            }
            self.note_expired_readins(&tx, &c, now)?;
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
            for (out, seal) in self.team_mail(
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
                &LogEntry {
                    at: now,
                    who: "secintake".into(),
                    action: "reminder".into(),
                    detail: keys.join(", "),
                    ..Default::default()
                },
            );
            tx.commit(b)?;
            tracing::info!(case = %c.id, reminders = %keys.join(","), "SLA reminder queued");
            n += 1;
            Ok(())
        })?;
        n += self.send_digests(&tx, now)?;
        drop(tx);
        // What intake queued for the search index, off the messages' path.
        search::drain(&self.store, SEARCH_DRAIN_PER_TICK)?;
        Ok(n)
    }

    /// An ack held back by the rate limits: sent once the limits allow it, or, when
    /// the ack falls due first, recorded as given up (the SLA clock's overdue-ack
    /// reminder tells the team). Either way once.
    fn retry_held_ack(&self, tx: &Tx, c: &Case, now: DateTime<Utc>) -> Result<()> {
        let mut b = Batch::default();
        let log = |action: &str, detail: String| LogEntry {
            at: now,
            who: "secintake".into(),
            action: action.into(),
            detail,
            ..Default::default()
        };
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
            // Never about mail to a team list itself, so nothing loops.
            if o.to.iter().all(|t| !self.is_team_list(t)) {
                for (out, seal) in self.team_mail(
                    &c,
                    MailKind::Failure,
                    &format!("[{}] Mail delivery failed", c.id),
                    &format!("[{}] Mail delivery failed", c.id),
                    &body,
                    now,
                    &o.id,
                )? {
                    b.put_out_sealed(&out, seal);
                }
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
        let (out, raw, encrypted) = self.reply_mail(&mut c, text, now)?;
        let mut b = Batch::default();
        b.put_out(&out, Some(&raw));
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
                ..Default::default()
            },
        );
        tx.commit(b)?;
        Ok(out.id)
    }

    /// The reply [`Self::reply`] and `/reply` send, with the case's update clock
    /// restarted (the caller forgets the update reminders sent).
    fn reply_mail(
        &self,
        c: &mut Case,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(crate::store::OutMail, Vec<u8>, bool)> {
        let r =
            self.reporter_mail(c, MailKind::Reply, &format!("[{}] Update on your report", c.id), text, true, now)?;
        c.due.update = now
            + chrono::Duration::from_std(self.cfg.policy_of(c.project.as_deref()).update_within)
                .unwrap_or(chrono::Duration::days(7));
        Ok(r)
    }

    /// `case reply --template NAME`: the canned reply `NAME` with the case's fields.
    pub fn reply_template(&self, case_id: &str, name: &str, who: &str, now: DateTime<Utc>) -> Result<String> {
        let c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let text =
            self.replies.render(name, &c, &self.cfg.policy_of(c.project.as_deref()).project).with_context(|| {
                format!(
                    "no reply template {name:?} in {} (there: {})",
                    self.cfg.replies_dir().display(),
                    self.replies.names().collect::<Vec<_>>().join(", ")
                )
            })?;
        self.reply(case_id, &text, who, now)
    }
}

/// Where and when a message arrived.
#[derive(Clone, Copy)]
struct Arrival<'a> {
    source: Option<&'a Source>,
    received_at: DateTime<Utc>,
}
