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

use crate::case::{self, Ack, Attachment, Case, CaseMessage, Credit, Due, KeySource, LogEntry, Reporter, Status};
use crate::config::Config;
use crate::mime::{self, Form, build};
use crate::notify;
use crate::openpgp::{self as pgp, Decryption, IntakeKeys, Verdict, Verification};
use crate::report;
use crate::store::{Batch, Disposition, MailRecord, OutMail, OutStatus, QuarantineEntry, Store, StoredCert};

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
                    team_warnings.push(format!("team cert {} ({file}) is skipped: {e}; replace it", c.fingerprint().to_hex()));
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
        let templates = notify::Templates::load(cfg.templates_dir.as_deref()).map_err(|e| anyhow::anyhow!("templates.dir: {e}"))?;
        Ok(Pipeline { cfg, keys: Arc::new(keys), team: Arc::new(team), keyring: Arc::new(keyring), templates: Arc::new(templates), team_warnings: Arc::new(team_warnings), store })
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
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ingest_inner(raw, source, received_at, now, false))) {
            Ok(r) => r,
            Err(_) => self.quarantine_after_panic(raw, source, received_at),
        }
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
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(src) = source {
            if let Some(key) = self.store.uid(&src.mailbox, src.uidvalidity, src.uid)? {
                if let Some(rec) = self.store.mail(&key)? {
                    return Ok(Outcome::of(&rec, true));
                }
            }
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
            self.store.commit(b)?;
            return Ok(Outcome::of(&rec, true));
        }
        let ctx = Commit {
            batch: Batch::default(),
            key,
            sha: sha.to_owned(),
            from: env.from_address.clone().unwrap_or_default(),
            received_at,
            source,
        };
        // The lock stays held through the write: quarantine() itself does not lock.
        self.quarantine(ctx, "too-large", false, &env, None, &format!("{size} bytes > limits.max_message_bytes; not downloaded"))
    }

    fn quarantine_after_panic(&self, raw: &[u8], source: Option<&Source>, received_at: DateTime<Utc>) -> Result<Outcome> {
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let sha = mime::sha256_hex(raw);
        let parsed_id = std::panic::catch_unwind(|| mime::parse(&raw[..raw.len().min(256 << 10)]).envelope.message_id).ok().flatten();
        let key = parsed_id.unwrap_or_else(|| format!("sha256:{}", mime::sha256_hex(mime::body_of(raw))));
        if let Some(rec) = self.store.mail(&key)? {
            return Ok(Outcome::of(&rec, true));
        }
        tracing::error!(sha256 = %sha, "Internal failure on a message; quarantined as malformed");
        let ctx = Commit { batch: Batch::default(), key, sha, from: String::new(), received_at, source };
        let env = mime::Envelope::default();
        // The lock stays held through the write: quarantine() itself does not lock.
        self.quarantine(ctx, "malformed", false, &env, Some(raw), "internal failure while parsing (panic); kept for analysis")
    }

    /// Processes a quarantined message again (after a key was added, say).
    pub fn retry_quarantined(&self, qid: &str, now: DateTime<Utc>) -> Result<Outcome> {
        let q = self.store.quarantine(qid)?.with_context(|| format!("no quarantine entry {qid}"))?;
        let raw = self
            .store
            .quarantine_raw(qid)?
            .with_context(|| format!("quarantine entry {qid} has no stored copy (reason {}); it stays in the quarantine folder", q.reason))?;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.ingest_inner(&raw, None, q.received_at, now, true)))
            .map_err(|_| anyhow::anyhow!("internal failure while parsing {qid} (panic); it stays quarantined"))??;
        if out.disposition != Disposition::Quarantine {
            // Resolved: the entry leaves the quarantine list (the mail record now says
            // where the message went); intake moves the IMAP copy to processed.
            let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut b = Batch::default();
            b.remove_quarantine(qid);
            b.put_resolved(&q.message_id);
            self.store.commit(b)?;
        }
        Ok(out)
    }

    fn ingest_inner(
        &self,
        raw: &[u8],
        source: Option<&Source>,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry: bool,
    ) -> Result<Outcome> {
        // One message at a time through the decision and the commit: case numbering
        // and duplicate detection read what the previous message wrote.
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = &self.cfg;
        let sha = mime::sha256_hex(raw);

        if let Some(src) = source {
            if let Some(key) = self.store.uid(&src.mailbox, src.uidvalidity, src.uid)? {
                if let Some(rec) = self.store.mail(&key)? {
                    return Ok(Outcome::of(&rec, true));
                }
            }
        }

        let too_large = raw.len() as u64 > cfg.limits.max_message_bytes;
        let parsed = if too_large { None } else { Some(mime::parse(raw)) };
        // A message over the limit is never parsed whole; its header still names it.
        let env = match &parsed {
            Some(p) => p.envelope.clone(),
            None => mime::parse(&raw[..raw.len() - mime::body_of(raw).len()]).envelope,
        };
        // Without a Message-ID a message is known by the SHA-256 of its body: the
        // same message delivered twice differs only in its trace headers.
        let key = env.message_id.clone().unwrap_or_else(|| format!("sha256:{}", mime::sha256_hex(mime::body_of(raw))));
        let from = env.from_address.clone().unwrap_or_default();

        // Duplicates: same Message-ID, or same bytes.
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
                    self.store.commit(b)?;
                }
                return Ok(Outcome { disposition: Disposition::Duplicate, ..outcome });
            }
        }

        let mut ctx = Commit { batch: Batch::default(), key: key.clone(), sha: sha.clone(), from: from.clone(), received_at, source };

        let Some(parsed) = parsed else {
            return self.quarantine(ctx, "too-large", false, &env, None, &format!("{} bytes > limits.max_message_bytes", raw.len()));
        };
        if parsed.unparseable || raw.iter().all(|b| b.is_ascii_whitespace()) {
            return self.quarantine(ctx, "malformed", false, &env, Some(raw), "not a parseable message");
        }
        if parsed.depth > cfg.limits.max_mime_depth {
            return self.quarantine(
                ctx,
                "mime-depth",
                false,
                &env,
                Some(raw),
                &format!("MIME depth {} > limits.max_mime_depth {}", parsed.depth, cfg.limits.max_mime_depth),
            );
        }

        // Non-reports: never a case, never an ack (RFC 3834).
        if let Some(reason) = non_report_reason(&parsed.envelope, &cfg.intake.address) {
            let rec = MailRecord {
                message_id: key.clone(),
                received_at,
                from: from.clone(),
                sha256: sha.clone(),
                disposition: Disposition::NonReport,
                case_id: None,
                quarantine_id: None,
                reason: Some(reason.into()),
            };
            ctx.batch.put_mail(&key, &rec);
            if reason == "bounce" {
                self.mark_bounced_ack(raw, &mut ctx.batch, &key, now)?;
            }
            ctx.index();
            self.store.commit(ctx.batch)?;
            return Ok(Outcome::of(&rec, false));
        }

        // Decrypt or verify.
        let sys_now: SystemTime = now.into();
        let mut signer_certs: Vec<(Cert, KeySource)> = Vec::new();
        for c in self.keyring.iter() {
            signer_certs.push((c.clone(), KeySource::Keyring));
        }
        if let Some(sc) = self.store.cert(&from)? {
            if let Some(c) = pgp::parse_certs(sc.armored.as_bytes()).into_iter().next() {
                signer_certs.push((c, sc.source));
            }
        }
        if let Some((addr, keydata)) = &parsed.envelope.autocrypt {
            if *addr == from {
                for c in pgp::parse_certs(keydata) {
                    signer_certs.push((c, KeySource::Autocrypt));
                }
            }
        }
        for k in &parsed.keys {
            for c in pgp::parse_certs(k) {
                signer_certs.push((c, KeySource::Attached));
            }
        }

        let encrypted = matches!(parsed.form, Form::PgpMime { .. } | Form::Inline { .. });
        let (text, attachments, verification, protected_subject, inner_keys) = match &parsed.form {
            Form::PgpMime { ciphertext } | Form::Inline { ciphertext, .. } => {
                let certs: Vec<Cert> = signer_certs.iter().map(|(c, _)| c.clone()).collect();
                let mut dec = self.keys.decrypt_message(ciphertext, &certs, cfg.limits.max_plaintext_bytes, sys_now);
                // A signer key attached inside the encryption: verify again with it.
                if let Decryption::Ok { plaintext, verification } = &dec {
                    if verification.verdict == Verdict::UnknownKey {
                        let inner = mime::parse_inner(plaintext);
                        let extra: Vec<Cert> = inner.keys.iter().flat_map(|k| pgp::parse_certs(k)).collect();
                        if !extra.is_empty() {
                            let mut all = certs.clone();
                            all.extend(extra.iter().cloned());
                            dec = self.keys.decrypt_message(ciphertext, &all, cfg.limits.max_plaintext_bytes, sys_now);
                        }
                    }
                }
                match dec {
                    Decryption::Ok { plaintext, mut verification } => {
                        let inner = mime::parse_inner(&plaintext);
                        // Signed, then encrypted (RFC 3156 6.1): the signature is inside.
                        if let (Verdict::None, Some((signed, sig))) = (verification.verdict, &inner.signed) {
                            let mut all: Vec<Cert> = certs.clone();
                            all.extend(inner.keys.iter().flat_map(|k| pgp::parse_certs(k)));
                            verification = pgp::verify_detached(signed, sig, &all, sys_now);
                        }
                        if inner.depth > cfg.limits.max_mime_depth {
                            return self.quarantine(ctx, "mime-depth", true, &env, Some(raw), "inner MIME too deep");
                        }
                        let mut text = inner.text.clone();
                        if let Form::Inline { before, after, .. } = &parsed.form {
                            // Text around an inline block is unencrypted: keep it, marked.
                            if !before.is_empty() || !after.is_empty() {
                                text = format!("{text}\n\n[unencrypted text around the encrypted block]\n{before}\n{after}\n");
                            }
                        }
                        (text, inner.attachments, verification, inner.subject, inner.keys)
                    }
                    Decryption::NoKey { recipients } => {
                        return self.quarantine(ctx, "no-key", true, &env, Some(raw), &format!("encrypted to {}", recipients.join(", ")));
                    }
                    Decryption::TooLarge => {
                        return self.quarantine(ctx, "plaintext-limit", true, &env, Some(raw), "decrypted output passed limits.max_plaintext_bytes");
                    }
                    Decryption::Failed(e) => {
                        return self.quarantine(ctx, "decrypt-failed", true, &env, Some(raw), &e);
                    }
                }
            }
            Form::Signed { signed, signature } => {
                let certs: Vec<Cert> = signer_certs.iter().map(|(c, _)| c.clone()).collect();
                let v = pgp::verify_detached(signed, signature, &certs, sys_now);
                (parsed.text.clone(), parsed.attachments.clone(), v, None, Vec::new())
            }
            Form::Cleartext { armored, before, after } => {
                let certs: Vec<Cert> = signer_certs.iter().map(|(c, _)| c.clone()).collect();
                match pgp::verify_inline(armored, &certs, cfg.limits.max_plaintext_bytes, sys_now) {
                    Some((signed_text, v)) => {
                        let mut text = mime::decode_text(&signed_text);
                        if !before.is_empty() || !after.is_empty() {
                            text = format!("{text}\n\n[unsigned text around the signed block]\n{before}\n{after}\n");
                        }
                        (text, parsed.attachments.clone(), v, None, Vec::new())
                    }
                    None => (parsed.text.clone(), parsed.attachments.clone(), Verification { verdict: Verdict::Bad, signer: None }, None, Vec::new()),
                }
            }
            Form::Plain => (parsed.text.clone(), parsed.attachments.clone(), Verification::none(), None, Vec::new()),
        };
        for k in &inner_keys {
            for c in pgp::parse_certs(k) {
                signer_certs.push((c, KeySource::Attached));
            }
        }

        // The reporter's cert: the signer's, else one that names their address.
        // The reporter's cert must name their From address: anyone can attach or sign
        // with a key, and acks are encrypted to this one.
        let reporter_cert = signer_certs
            .iter()
            .filter(|(c, _)| pgp::has_address(c, &from))
            .find(|(c, _)| verification.verdict == Verdict::Good && Some(c.fingerprint().to_hex()) == verification.signer)
            .or_else(|| signer_certs.iter().find(|(c, _)| pgp::has_address(c, &from)))
            .cloned();
        let signed_by_reporter = verification.verdict == Verdict::Good
            && reporter_cert.as_ref().map(|(c, _)| Some(c.fingerprint().to_hex()) == verification.signer).unwrap_or(false);

        let msg = CaseMessage {
            message_id: key.clone(),
            received_at,
            encrypted,
            decrypted: encrypted,
            signature: verification.verdict,
            signer_fingerprint: verification.signer.clone(),
            sha256: sha.clone(),
            text: text.clone(),
        };

        // Follow-up on a case?
        if let Some(case_id) = self.follow_up_target(&parsed.envelope)? {
            if let Some(mut c) = self.store.case(&case_id)? {
                c.messages.push(msg);
                let rec = MailRecord {
                    message_id: key.clone(),
                    received_at,
                    from: from.clone(),
                    sha256: sha.clone(),
                    disposition: Disposition::FollowUp,
                    case_id: Some(case_id.clone()),
                    quarantine_id: None,
                    reason: None,
                };
                if let Some(n) = self.team_mail(&c, "followup", &format!("[{}] Follow-up from reporter", c.id), &format!("[{}] Follow-up: {}", c.id, c.title), &followup_text(&c, &text, &sha), now, &sha)? {
                    ctx.batch.put_out(&n.0, Some(&n.1));
                }
                self.remember_cert(&mut ctx.batch, &from, reporter_cert.as_ref(), signed_by_reporter)?;
                ctx.batch.put_case(&c);
                ctx.batch.put_mail(&key, &rec);
                ctx.batch.put_log(&case_id, self.store.log_len(&case_id)?, &LogEntry {
                    at: now,
                    who: "secintake".into(),
                    action: "mail-in".into(),
                    detail: format!("follow-up {key} from {from}"),
                });
                ctx.index();
                self.store.commit(ctx.batch)?;
                tracing::info!(case = %case_id, "Follow-up joined its case");
                return Ok(Outcome::of(&rec, false));
            }
        }

        // A new case.
        let year = received_at.year();
        let seq_name = format!("{}-{year}", cfg.intake.case_prefix);
        let seq = self.store.seq(&seq_name)? + 1;
        let id = case::format_id(&cfg.intake.case_prefix, year, seq);
        let attachments: Vec<Attachment> = attachments
            .iter()
            .map(|a| Attachment {
                name: a.name.clone(),
                size: a.bytes.len() as u64,
                sha256: mime::sha256_hex(&a.bytes),
                content_type: a.content_type.clone(),
            })
            .collect();
        let title = report::title(protected_subject.as_deref(), &text, if encrypted { "" } else { &parsed.envelope.subject })
            .chars()
            .take(300)
            .collect::<String>();
        let title = if encrypted && title == "(no subject)" {
            report::title(None, "", &parsed.envelope.subject)
        } else {
            title
        };
        let case = Case {
            id: id.clone(),
            status: Status::New,
            title,
            reporter: Reporter {
                address: from.clone(),
                name: parsed.envelope.from_name.clone(),
                key_fingerprint: reporter_cert.as_ref().map(|(c, _)| c.fingerprint().to_hex()),
                key_source: match (&reporter_cert, self.store.cert(&from)?) {
                    (Some((c, _)), Some(sc)) if sc.fingerprint == c.fingerprint().to_hex() => Some(sc.source),
                    (Some((_, s)), _) => Some(*s),
                    (None, _) => None,
                },
            },
            credit: report::credit(&text),
            received_at,
            encrypted,
            decrypted: encrypted,
            signature: verification.verdict,
            cvss: report::cvss(&text),
            cwe: report::cwes(&text),
            tlp: report::tlp(&text),
            affected_versions: report::affected_versions(&text),
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
        };
        let _ = Credit::default();

        // The acknowledgement, unless we must not answer. What is held back is
        // recorded in the case's audit log (and visible in the team summary).
        let mut withheld = None;
        if let Some(why) = self.ack_refusal(&from, now)? {
            tracing::info!(case = %id, reason = why, "No acknowledgement sent");
            withheld = Some(why);
        } else {
            match self.ack_mail(&case, &parsed.envelope, &sha, reporter_cert.as_ref().map(|(c, _)| c), now) {
                Ok((out, raw_ack)) => ctx.batch.put_out(&out, Some(&raw_ack)),
                Err(e) => {
                    // A cert Sequoia cannot encrypt to, an expired signing key: the case
                    // still opens; the missing ack is recorded and shows in `sla`.
                    tracing::error!(case = %id, error = %format!("{e:#}"), "Acknowledgement could not be built");
                    withheld = Some("the acknowledgement could not be built (see the daemon log)");
                }
            }
        }
        if let Some((out, raw_sum)) = self.team_mail(&case, "summary", &format!("[{id}] New report"), &format!("[{id}] {}", case.title), &notify::summary_text(&case, &sha, &self.team_warnings), now, &sha)? {
            ctx.batch.put_out(&out, Some(&raw_sum));
        }
        self.remember_cert(&mut ctx.batch, &from, reporter_cert.as_ref(), signed_by_reporter)?;
        let rec = MailRecord {
            message_id: key.clone(),
            received_at,
            from: from.clone(),
            sha256: sha.clone(),
            disposition: Disposition::Case,
            case_id: Some(id.clone()),
            quarantine_id: None,
            reason: None,
        };
        ctx.batch.put_case(&case);
        ctx.batch.put_mail(&key, &rec);
        ctx.batch.put_log(&id, 0, &LogEntry {
            at: now,
            who: "secintake".into(),
            action: "opened".into(),
            detail: format!("report {key} from {from}"),
        });
        if let Some(why) = withheld {
            ctx.batch.put_log(&id, 1, &LogEntry {
                at: now,
                who: "secintake".into(),
                action: "ack-withheld".into(),
                detail: why.to_owned(),
            });
        }
        ctx.batch.put_seq(&seq_name, seq);
        ctx.index();
        self.store.commit(ctx.batch)?;
        tracing::info!(case = %id, encrypted, signature = verification.verdict.as_str(), "Case opened");
        Ok(Outcome::of(&rec, false))
    }

    /// Queues the SLA reminders due at `now` (each once) to the team list. Returns how
    /// many cases got one.
    pub fn queue_reminders(&self, now: DateTime<Utc>) -> Result<usize> {
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for c in self.store.cases()? {
            let sent = self.store.reminders(&c.id)?;
            let due = case::sla::due(&c, &sent, now);
            if due.is_empty() {
                continue;
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
            if let Some((out, raw)) = self.team_mail(&c, "reminder", &format!("[{}] SLA reminder", c.id), &format!("[{}] Reminder: {}", c.id, c.title), &body, now, &seed)? {
                b.put_out(&out, Some(&raw));
            }
            b.put_log(&c.id, self.store.log_len(&c.id)?, &LogEntry {
                at: now,
                who: "secintake".into(),
                action: "reminder".into(),
                detail: keys.join(", "),
            });
            self.store.commit(b)?;
            tracing::info!(case = %c.id, reminders = %keys.join(","), "SLA reminder queued");
            n += 1;
        }
        Ok(n)
    }

    /// Tells the team list about outgoing mail that failed permanently (once each;
    /// never about the failure reports themselves, so nothing loops).
    pub fn report_failures(&self, now: DateTime<Utc>) -> Result<usize> {
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for o in self.store.outbox()? {
            if o.status != OutStatus::Failed || o.kind == "failure" {
                continue;
            }
            let Some(cid) = &o.case_id else { continue };
            let marker = format!("failed:{}", o.id);
            if self.store.reminders(cid)?.contains(&marker) {
                continue;
            }
            let Some(c) = self.store.case(cid)? else { continue };
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
            if o.to.iter().all(|t| !t.eq_ignore_ascii_case(&self.cfg.team_list_address)) {
                if let Some((out, raw)) = self.team_mail(&c, "failure", &format!("[{}] Mail delivery failed", c.id), &format!("[{}] Mail delivery failed", c.id), &body, now, &o.id)? {
                    b.put_out(&out, Some(&raw));
                }
            }
            self.store.commit(b)?;
            n += 1;
        }
        Ok(n)
    }

    /// Queues a reply to the reporter of `case_id`: threaded, signed, encrypted when
    /// their cert is known; refused unencrypted for TLP:AMBER and above. Counts as a
    /// status update (restarts the update clock).
    pub fn reply(&self, case_id: &str, text: &str, who: &str, now: DateTime<Utc>) -> Result<String> {
        let _guard = self.store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = self.store.case(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let to = c.reporter.address.clone();
        if !crate::config::valid_address(&to) || to.eq_ignore_ascii_case(&self.cfg.intake.address) {
            anyhow::bail!("case {case_id} has no usable reporter address ({to:?})");
        }
        let sys_now: SystemTime = now.into();
        let cert = self
            .store
            .cert(&to)?
            .and_then(|sc| pgp::parse_certs(sc.armored.as_bytes()).into_iter().next())
            .or_else(|| self.keyring.iter().find(|k| pgp::has_address(k, &to)).cloned())
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
        let mut h = self.headers(vec![to.clone()], &format!("[{case_id}] Update on your report"), "reply", case_id, &seed, now);
        let first = c.messages.first().map(|m| m.message_id.clone()).filter(|m| !m.starts_with("sha256:"));
        h.in_reply_to = first.clone();
        let mut refs: Vec<String> = c.messages.iter().map(|m| m.message_id.clone()).filter(|m| !m.starts_with("sha256:")).collect();
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
        let out = self.out_mail(&h, "reply", case_id, encrypted, now);
        let mut b = Batch::default();
        b.put_out(&out, Some(&raw));
        c.due.update = now + chrono::Duration::from_std(self.cfg.policy.update_within).unwrap_or(chrono::Duration::days(7));
        for k in case::sla::UPDATE_KEYS {
            b.remove_reminder(case_id, k);
        }
        b.put_case(&c);
        b.put_log(case_id, self.store.log_len(case_id)?, &LogEntry {
            at: now,
            who: who.to_owned(),
            action: "reply".into(),
            detail: format!("reply {} to {to} queued (encrypted: {encrypted})", out.id),
        });
        self.store.commit(b)?;
        Ok(out.id)
    }

    fn quarantine(
        &self,
        mut ctx: Commit<'_>,
        reason: &str,
        encrypted: bool,
        env: &mime::Envelope,
        raw: Option<&[u8]>,
        detail: &str,
    ) -> Result<Outcome> {
        let qid = format!("Q-{}", &ctx.sha[..16]);
        let q = QuarantineEntry {
            id: qid.clone(),
            reason: reason.into(),
            message_id: ctx.key.clone(),
            from: env.from_address.clone().unwrap_or_default(),
            received_at: ctx.received_at,
            encrypted,
            sha256: ctx.sha.clone(),
            detail: detail.chars().take(500).collect(),
        };
        let rec = MailRecord {
            message_id: ctx.key.clone(),
            received_at: ctx.received_at,
            from: ctx.from.clone(),
            sha256: ctx.sha.clone(),
            disposition: Disposition::Quarantine,
            case_id: None,
            quarantine_id: Some(qid.clone()),
            reason: Some(reason.into()),
        };
        ctx.batch.put_quarantine(&q, raw);
        ctx.batch.put_mail(&ctx.key.clone(), &rec);
        ctx.index();
        self.store.commit(ctx.batch)?;
        tracing::warn!(quarantine = %qid, reason, "Message quarantined");
        Ok(Outcome::of(&rec, false))
    }

    fn follow_up_target(&self, env: &mime::Envelope) -> Result<Option<String>> {
        for r in env.in_reply_to.iter().chain(env.references.iter()) {
            if let Some(rec) = self.store.mail(r)? {
                if rec.case_id.is_some() && matches!(rec.disposition, Disposition::Case | Disposition::FollowUp) {
                    return Ok(rec.case_id);
                }
            }
            if let Some(out) = self.store.out(r)? {
                if out.case_id.is_some() {
                    return Ok(out.case_id);
                }
            }
        }
        if let Some(id) = case::find_id(&self.cfg.intake.case_prefix, &env.subject) {
            if self.store.case(&id)?.is_some() {
                return Ok(Some(id));
            }
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
        let recent: Vec<OutMail> =
            self.store.outbox()?.into_iter().filter(|o| o.kind == "ack" && o.created_at > hour_ago).collect();
        if recent.iter().filter(|o| o.to.iter().any(|t| t.eq_ignore_ascii_case(to))).count()
            >= self.cfg.limits.acks_per_address_per_hour as usize
        {
            return Ok(Some("limits.acks_per_address_per_hour reached"));
        }
        if recent.len() >= self.cfg.limits.acks_per_hour as usize {
            return Ok(Some("limits.acks_per_hour reached"));
        }
        Ok(None)
    }

    fn headers(&self, to: Vec<String>, subject: &str, kind: &str, case_id: &str, sha: &str, now: DateTime<Utc>) -> build::Headers {
        let autocrypt = pgp::binary_cert(&self.keys.public_cert())
            .ok()
            .map(|k| build::autocrypt_value(&self.cfg.intake.address, &k));
        build::Headers {
            from: self.cfg.intake.address.clone(),
            from_name: format!("{} Security", self.cfg.policy.project),
            to,
            subject: subject.to_owned(),
            message_id: format!("{}.{kind}.{}@{}", case_id.to_ascii_lowercase(), &sha[..16], self.cfg.intake_domain()),
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
    ) -> Result<(OutMail, Vec<u8>)> {
        let mut h = self.headers(vec![case.reporter.address.clone()], &format!("[{}] Report received", case.id), "ack", &case.id, sha, now);
        h.auto_submitted = true;
        if let Some(mid) = &env.message_id {
            h.in_reply_to = Some(mid.clone());
            let mut refs = env.references.clone();
            refs.push(mid.clone());
            h.references = refs;
        }
        let sys_now: SystemTime = now.into();
        let usable = reporter_cert.filter(|c| pgp::can_encrypt(c, sys_now).is_ok());
        let fpr = self.keys.fingerprint().to_hex();
        let (raw, encrypted) = match usable {
            Some(cert) => {
                let body = self.templates.ack(case, &self.cfg.policy.project, sha, &fpr, true);
                let inner = build::protected_text_part(&h, &body);
                let ct = self.keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(cert), sys_now)?;
                (build::encrypted(&h, &ct)?, true)
            }
            None => {
                let body = self.templates.ack(case, &self.cfg.policy.project, sha, &fpr, false);
                let part = build::text_part(&body, "");
                (build::signed(&h, &part, |data| self.keys.sign_detached(data, sys_now))?, false)
            }
        };
        Ok((self.out_mail(&h, "ack", &case.id, encrypted, now), raw))
    }

    /// An encrypted mail to the team list; None when no team cert is usable (nothing
    /// is ever sent to the team unencrypted).
    fn team_mail(
        &self,
        case: &Case,
        kind: &str,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
    ) -> Result<Option<(OutMail, Vec<u8>)>> {
        // Certs are checked again at the time of use: one may have expired since load.
        let team: Vec<Cert> = self.team.iter().filter(|c| pgp::can_encrypt(c, now.into()).is_ok()).cloned().collect();
        if team.is_empty() {
            tracing::warn!(case = %case.id, "No usable team cert: team mail not sent");
            return Ok(None);
        }
        let seed = mime::sha256_hex(format!("{}{kind}{seed}", case.id).as_bytes());
        let mut h = self.headers(vec![self.cfg.team_list_address.clone()], inner_subject, kind, &case.id, &seed, now);
        let inner = build::protected_text_part(&h, body);
        let ct = match self.keys.encrypt_and_sign(inner.as_bytes(), &team, now.into()) {
            Ok(ct) => ct,
            Err(e) => {
                // Never fail the message over its notification: the case is what matters.
                tracing::error!(case = %case.id, error = %format!("{e:#}"), "Team mail could not be built; not sent");
                return Ok(None);
            }
        };
        h.subject = outer_subject.to_owned();
        let raw = build::encrypted(&h, &ct)?;
        Ok(Some((self.out_mail(&h, kind, &case.id, true, now), raw)))
    }

    fn out_mail(&self, h: &build::Headers, kind: &str, case_id: &str, encrypted: bool, now: DateTime<Utc>) -> OutMail {
        OutMail {
            id: h.message_id.clone(),
            kind: kind.into(),
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

    /// Remembers the reporter's cert for later acks and replies. A cert already held
    /// is only replaced by one that made a good signature on this message: a forged
    /// From with an attached key must not redirect encrypted mail to an attacker.
    fn remember_cert(&self, b: &mut Batch, address: &str, cert: Option<&(Cert, KeySource)>, proven: bool) -> Result<()> {
        let Some((c, source)) = cert else { return Ok(()) };
        if address.is_empty() || !pgp::has_address(c, address) {
            return Ok(());
        }
        let fpr = c.fingerprint().to_hex();
        let keep_source = match self.store.cert(address)? {
            Some(old) if old.fingerprint == fpr => old.source,
            Some(_) if !proven => return Ok(()),
            _ => *source,
        };
        b.put_cert(address, &StoredCert { fingerprint: fpr, source: keep_source, armored: pgp::armor_cert(c)? });
        Ok(())
    }

    /// A bounce that names one of our acks marks that ack as undelivered on its case.
    /// A bounce naming one of our acks: the ack is marked undelivered on its case, the
    /// audit log says so, and the team list is told (encrypted).
    fn mark_bounced_ack(&self, raw: &[u8], b: &mut Batch, bounce_key: &str, now: DateTime<Utc>) -> Result<()> {
        let text = String::from_utf8_lossy(raw);
        for out in self.store.outbox()? {
            if out.kind == "ack" && text.contains(&out.id) {
                let Some(cid) = &out.case_id else { continue };
                if let Some(mut c) = self.store.case(cid)? {
                    if let Some(ack) = c.ack.as_mut() {
                        ack.undelivered = true;
                    } else {
                        c.ack = Some(Ack { sent_at: out.created_at, message_id: out.id.clone(), encrypted: out.encrypted, undelivered: true });
                    }
                    tracing::warn!(case = %cid, "Acknowledgement bounced");
                    let body = format!(
                        "The acknowledgement of {} to {} bounced (bounce {bounce_key}).\n\
                         The reporter has not received their receipt: reach them another way.\n",
                        c.id, c.reporter.address
                    );
                    if let Some((o, r)) = self.team_mail(&c, "bounce", &format!("[{}] Acknowledgement bounced", c.id), &format!("[{}] Acknowledgement bounced", c.id), &body, now, bounce_key)? {
                        b.put_out(&o, Some(&r));
                    }
                    b.put_log(&c.id, self.store.log_len(&c.id)?, &LogEntry {
                        at: now,
                        who: "secintake".into(),
                        action: "bounce".into(),
                        detail: format!("ack {} bounced ({bounce_key})", out.id),
                    });
                    b.put_case(&c);
                }
            }
        }
        Ok(())
    }
}

fn followup_text(c: &Case, text: &str, sha: &str) -> String {
    format!("Follow-up from the reporter on {} ({})\nSHA-256: {sha}\n\n----- Message text -----\n\n{text}\n", c.id, c.title)
}

/// What the pure stages make of raw bytes, without a store: parse, classify, decrypt
/// or verify, parse the inner MIME, extract fields. The fuzz target and the mutation
/// smoke test drive this; it must never panic or allocate past the limits.
pub fn examine(raw: &[u8], keys: &IntakeKeys, max_plaintext: u64, max_depth: u32, now: SystemTime) -> String {
    let parsed = mime::parse(raw);
    if parsed.depth > max_depth {
        return "mime-depth".into();
    }
    if let Some(r) = non_report_reason(&parsed.envelope, "security@intake.test") {
        return r.into();
    }
    let certs: Vec<Cert> = parsed.keys.iter().flat_map(|k| pgp::parse_certs(k)).collect();
    let (text, subject) = match &parsed.form {
        Form::PgpMime { ciphertext } | Form::Inline { ciphertext, .. } => {
            match keys.decrypt_message(ciphertext, &certs, max_plaintext, now) {
                Decryption::Ok { plaintext, .. } => {
                    let inner = mime::parse_inner(&plaintext);
                    (inner.text, inner.subject)
                }
                Decryption::NoKey { .. } => return "no-key".into(),
                Decryption::TooLarge => return "plaintext-limit".into(),
                Decryption::Failed(_) => return "decrypt-failed".into(),
            }
        }
        Form::Signed { signed, signature } => {
            let _ = pgp::verify_detached(signed, signature, &certs, now);
            (parsed.text.clone(), None)
        }
        Form::Cleartext { armored, .. } => match pgp::verify_inline(armored, &certs, max_plaintext, now) {
            Some((t, _)) => (mime::decode_text(&t), None),
            None => (parsed.text.clone(), None),
        },
        Form::Plain => (parsed.text.clone(), None),
    };
    let title = report::title(subject.as_deref(), &text, &parsed.envelope.subject);
    let _ = (report::cvss(&text), report::cwes(&text), report::tlp(&text), report::affected_versions(&text), report::credit(&text));
    format!("case:{}", title.len())
}

/// Why a message is not a report (auto-reply, bounce, list), if it is not.
pub fn non_report_reason(env: &mime::Envelope, intake: &str) -> Option<&'static str> {
    if env.is_dsn {
        return Some("bounce");
    }
    if let Some(a) = &env.auto_submitted {
        if a != "no" {
            return Some("auto-reply");
        }
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
struct Commit<'a> {
    batch: Batch,
    key: String,
    sha: String,
    from: String,
    received_at: DateTime<Utc>,
    source: Option<&'a Source>,
}

impl Commit<'_> {
    fn index(&mut self) {
        self.batch.put_hash(&self.sha, &self.key);
        if let Some(src) = self.source {
            self.batch.put_uid(&src.mailbox, src.uidvalidity, src.uid, &self.key);
        }
    }
}
