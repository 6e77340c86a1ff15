//! Recognise and decide: what a message is, and what becomes of it.
//!
//! [`Pipeline::recognise`] looks a message up (its UID, its Message-ID with its body
//! hash, its bytes) and names it; [`Pipeline::decide`] turns what is left into one
//! [`Decision`]. Both read the store and write nothing: everything a message causes
//! is decided here, once, before [`Pipeline::record`] writes it. The pure steps
//! ([`malformed`], [`read_against`], [`judge`], [`case_title`]) are shared with
//! [`examine`], which runs them without a store.

use std::time::SystemTime;

use anyhow::Result;
use chrono::{DateTime, Datelike, Utc};
use sequoia_openpgp::Cert;

use super::{Arrival, Outcome, Pipeline, PreRead, Prepared, ReadResult, Source, classify, keys};
use crate::case::{self, Attachment, Case, CaseMessage, Due, KeySource, Reporter, Status};
use crate::mime;
use crate::openpgp::{self as pgp, IntakeKeys, Verdict};
use crate::report;
use crate::store::{Disposition, MailRecord, QuarantineReason, StoredCert};

/// What a message is recorded under and with: everything recording needs besides
/// the [`Decision`].
pub(super) struct Identity<'a> {
    /// The store key: the Message-ID, else (none, or one first seen on another
    /// message) `sha256:<body hash>`.
    pub key: String,
    /// SHA-256 of the raw bytes.
    pub sha: String,
    /// SHA-256 of the body: tells a re-used Message-ID from a re-delivery.
    pub body_sha: String,
    /// The bare From address; empty without one.
    pub from: String,
    pub env: mime::Envelope,
    /// Why the key is not the message's Message-ID (another message had it first):
    /// said on the mail record and in the case's audit log.
    pub collision: Option<String>,
    pub source: Option<&'a Source>,
    pub received_at: DateTime<Utc>,
}

/// What [`Pipeline::decide`] takes of a message recognising did not settle.
pub(super) struct Message {
    /// None for a message over `limits.max_message_bytes`: never parsed whole.
    parsed: Option<mime::Parsed>,
    /// Read ahead by [`Pipeline::prepare`], against the cert held then.
    pre_read: Option<PreRead>,
    /// The record of this same message (same Message-ID and body, or the same
    /// bytes), with its key.
    earlier: Option<(String, MailRecord)>,
}

/// What recognising a message gave.
pub(super) enum Recognised<'a> {
    /// Recorded before under this UID: that outcome, and nothing to write.
    Seen(Outcome),
    /// Anything else: what names it, and what there is to decide on (boxed: both
    /// are large).
    Incoming(Box<Identity<'a>>, Box<Message>),
}

/// What becomes of a message, decided once from what recognising, reading and
/// classifying it gave and from what the store holds. Nothing is written yet.
pub(super) enum Decision {
    /// Recorded before under `key`: the UID joins that record; under another key
    /// (the same bytes, another Message-ID) it gets a `duplicate` record of its own.
    Duplicate {
        key: String,
        earlier: MailRecord,
    },
    /// Quarantined with `detail`; the raw message kept when `keep_raw`.
    Quarantine {
        reason: QuarantineReason,
        detail: String,
        keep_raw: bool,
    },
    /// Could not be read (no key, decryption failed, ...): quarantined with the raw
    /// message; its sender is told when that helps them.
    Unreadable(classify::Unreadable),
    /// An auto-reply, bounce, list mail or our own: recorded, never a case, never an
    /// ack (RFC 3834).
    NonReport(&'static str),
    FollowUp(Box<FollowUp>),
    NewCase(Box<NewCase>),
    /// A team member's command mail: applied, or refused with the reason.
    Command(Box<super::commands::CommandDecision>),
}

/// A message that joins a case.
pub(super) struct FollowUp {
    /// The case with the message added (and a conflicting reporter key noted).
    pub case: Case,
    /// Sent from another address than the reporter's.
    pub third_party: bool,
    pub change: keys::Change,
    /// The cert held for the sender when this was decided: what `change` applies to.
    pub held: Option<StoredCert>,
    /// What the reporter's reply did to the case's triage (completed, reopened).
    pub triage: super::desk::Reply,
}

/// A message that opens a case.
pub(super) struct NewCase {
    pub case: Case,
    /// The case counter (its name, and the value this case takes).
    pub seq_name: String,
    pub seq: u64,
    pub change: keys::Change,
    /// The cert held for the sender when this was decided: what `change` applies to.
    pub held: Option<StoredCert>,
    /// The cert the acknowledgement is encrypted to.
    pub reporter_cert: Option<Cert>,
    /// What the caps on the report's lists dropped.
    pub warnings: Vec<String>,
    /// Opened by another project's intake key than the one it was sent to: said in the
    /// audit log and the summary.
    pub key_note: Option<String>,
    /// Its duplicate signals, recorded with it in the index.
    pub signals: crate::triage::similar::Signals,
    /// The block on its sender's address when it arrived: recorded rejected, no ack,
    /// no summary (`reporters.rs`).
    pub block: Option<crate::store::Block>,
}

/// A readable message classified: what it says, who may have signed it, the verdict.
struct Judged {
    reading: classify::Reading,
    /// The case text ([`classify::Reading::text`]).
    text: String,
    /// Every cert that may have signed, the keys found inside the message included.
    candidates: Vec<(Cert, KeySource)>,
    verdict: Verdict,
    signer: Option<String>,
    /// Fingerprints of the certs carried inside signed content.
    signed_certs: Vec<String>,
}

impl Pipeline {
    /// Recognises a message: recorded before under this UID, or else what names it
    /// and, when it was recorded before under that name or as the same bytes, that
    /// record. On a `retry` (a quarantined message processed again) its own
    /// quarantine record does not count.
    pub(super) fn recognise<'a>(
        &self,
        raw: &[u8],
        arrival: Arrival<'a>,
        retry: bool,
        pre: Option<Prepared>,
    ) -> Result<Recognised<'a>> {
        let Arrival { source, received_at } = arrival;
        if let Some(rec) = self.by_uid(source)? {
            return Ok(Recognised::Seen(Outcome::of(&rec, true)));
        }
        let sha = mime::sha256_hex(raw);
        let too_large = raw.len() as u64 > self.cfg.limits.max_message_bytes;
        let Prepared { parsed, read: pre_read } = pre.unwrap_or_default();
        let parsed = if too_large { None } else { Some(parsed.unwrap_or_else(|| mime::parse(raw))) };
        // A message over the limit is never parsed whole; its header still names it.
        let env = match &parsed {
            Some(p) => p.envelope.clone(),
            None => mime::parse(&raw[..raw.len() - mime::body_of(raw).len()]).envelope,
        };
        // Without a Message-ID a message is known by the SHA-256 of its body: the
        // same message delivered twice differs only in its trace headers.
        let body_sha = mime::sha256_hex(mime::body_of(raw));
        let mut key = env.message_id.clone().unwrap_or_else(|| format!("sha256:{body_sha}"));

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
        let earlier = self.earlier(&key, &sha)?.filter(|(_, r)| !(retry && r.disposition == Disposition::Quarantine));
        let from = env.from_address.clone().unwrap_or_default();
        let id = Identity { key, sha, body_sha, from, env, collision, source, received_at };
        Ok(Recognised::Incoming(Box::new(id), Box::new(Message { parsed, pre_read, earlier })))
    }

    /// The record of the message last recorded under this UID.
    pub(super) fn by_uid(&self, source: Option<&Source>) -> Result<Option<MailRecord>> {
        let Some(src) = source else { return Ok(None) };
        match self.store.uid(&src.mailbox, src.uidvalidity, src.uid)? {
            Some(key) => self.store.mail(&key),
            None => Ok(None),
        }
    }

    /// The record under `key`, else the record of the same bytes; with its key.
    pub(super) fn earlier(&self, key: &str, sha: &str) -> Result<Option<(String, MailRecord)>> {
        if let Some(r) = self.store.mail(key)? {
            return Ok(Some((key.to_owned(), r)));
        }
        match self.store.by_hash(sha)? {
            Some(k) => Ok(self.store.mail(&k)?.map(|r| (k, r))),
            None => Ok(None),
        }
    }

    /// Decides what becomes of a recognised message. Reads the store (the cert held
    /// for the sender, the case followed up, the case counter) and writes nothing.
    pub(super) fn decide(&self, id: &Identity, msg: Message, raw: &[u8], now: DateTime<Utc>) -> Result<Decision> {
        let Message { parsed, pre_read, earlier } = msg;
        if let Some((key, earlier)) = earlier {
            return Ok(Decision::Duplicate { key, earlier });
        }
        let Some(parsed) = parsed else {
            return Ok(Decision::Quarantine {
                reason: QuarantineReason::TooLarge,
                detail: format!("{} bytes > limits.max_message_bytes", raw.len()),
                keep_raw: false,
            });
        };
        if let Some((reason, detail)) = malformed(&parsed, raw, self.cfg.limits.max_mime_depth) {
            return Ok(Decision::Quarantine { reason, detail, keep_raw: true });
        }
        if let Some(reason) = non_report_reason(&parsed.envelope, &self.cfg.intake.address) {
            return Ok(Decision::NonReport(reason));
        }
        // Mail from a project's own address is ours too (a loop), never a report.
        if self.cfg.projects.iter().any(|p| p.addresses.contains(&id.from)) {
            return Ok(Decision::NonReport("own-mail"));
        }

        let sys_now: SystemTime = now.into();
        let from = &id.from;
        let held = self.store.cert(from)?;
        // Read in parallel ahead of time, against the cert held then: still valid when
        // the same cert is held now (an earlier message of the group may have pinned one).
        let (candidates, read) = match pre_read {
            Some((fpr, candidates, read)) if fpr == held.as_ref().map(|h| h.fingerprint.clone()) => (candidates, read),
            _ => {
                let candidates = candidate_certs(&self.known_signers, &parsed, from, held.as_ref());
                let read = self.read(&parsed, &candidates, sys_now);
                (candidates, read)
            }
        };
        let reading = match read {
            Ok(r) => r,
            Err(u) => return Ok(Decision::Unreadable(u)),
        };
        let keyring_fprs: Vec<String> =
            self.keyring.iter().filter(|c| pgp::bound_to(c, from, sys_now)).map(|c| c.fingerprint().to_hex()).collect();
        let in_keyring = !keyring_fprs.is_empty();
        let held_fprs = if in_keyring { keyring_fprs } else { held.iter().map(|h| h.fingerprint.clone()).collect() };
        let judged = judge(reading, candidates, from, held_fprs, sys_now);
        let change = keys::decide(
            from,
            judged.verdict,
            judged.signer.as_deref(),
            &judged.candidates,
            &judged.signed_certs,
            in_keyring,
            held.as_ref(),
            sys_now,
        );

        // A team member's command mail (`[commands] enabled`) is decided apart.
        if self.cfg.commands.enabled
            && let Some(d) = self.command_decision(id, &parsed.envelope, &judged.reading, now)?
        {
            return Ok(Decision::Command(Box::new(d)));
        }
        if let Some(case_id) = self.follow_up_target(&parsed.envelope)?
            && let Some(mut case) = self.store.case_meta(&case_id)?
        {
            let third_party = !from.eq_ignore_ascii_case(&case.reporter.address);
            case.messages.push(CaseMessage { third_party, ..case_message(id, &judged) });
            // Only the reporter completes their report.
            let triage = if third_party {
                super::desk::Reply::default()
            } else {
                let infos = attachment_infos(judged.reading.attachments.iter().map(|(a, _)| a));
                super::desk::reply(&mut case, &judged.text, &infos, id.received_at)
            };
            if let keys::Change::Conflict(f) = &change
                && !third_party
            {
                case.reporter.key_conflict = Some(f.clone());
            }
            return Ok(Decision::FollowUp(Box::new(FollowUp { case, third_party, change, held, triage })));
        }
        let new = self.new_case(id, &parsed, judged, change, held, sys_now)?;
        Ok(Decision::NewCase(Box::new(new)))
    }

    /// The case a message that follows up none opens: its number, its fields, its
    /// reporter, and the cert its acknowledgement is encrypted to.
    fn new_case(
        &self,
        id: &Identity,
        parsed: &mime::Parsed,
        judged: Judged,
        change: keys::Change,
        held: Option<StoredCert>,
        now: SystemTime,
    ) -> Result<NewCase> {
        let cfg = &self.cfg;
        let from = &id.from;
        let received_at = id.received_at;
        // The cert acks and replies are encrypted to: the keyring's, else the pinned
        // one after this message. A conflicting cert is never used.
        let reporter_cert: Option<(Cert, KeySource)> = match self.keyring.iter().find(|c| pgp::bound_to(c, from, now)) {
            Some(c) => Some((c.clone(), KeySource::Keyring)),
            None => change.held_after(held.as_ref()),
        };
        let reporter_source = match (&reporter_cert, &held) {
            (Some((c, KeySource::Keyring)), _) => Some((c.fingerprint().to_hex(), KeySource::Keyring)),
            (Some((c, _)), Some(h)) if h.fingerprint == c.fingerprint().to_hex() => {
                Some((h.fingerprint.clone(), h.source))
            }
            (Some((c, s)), _) => Some((c.fingerprint().to_hex(), *s)),
            (None, _) => None,
        };
        let year = received_at.year();
        // The project it was delivered to (none matches: the default project).
        let project = cfg.project_for(parsed.envelope.delivered_to.iter().map(String::as_str)).map(|p| p.name.clone());
        let project_ref = project.as_deref();
        let prefix = cfg.prefix_of(project_ref);
        let policy = cfg.policy_of(project_ref);
        // Opened by another project's key than the one of the project it was sent to:
        // it stays where it was sent, and the team is told (the case may be misrouted).
        let own_key = project_ref.filter(|p| self.projects.get(*p).is_some_and(|k| k.keys.is_some()));
        let key_note = match (judged.reading.opened_by.as_deref(), own_key) {
            (Some(by), _) if Some(by) != project_ref => Some(format!(
                "encrypted to {by}'s intake key but sent to {}; `secintake case move` if it is {by}'s",
                project_ref.unwrap_or(cfg.default_project())
            )),
            (None, Some(p)) if encrypted_default(&judged.reading) => Some(format!(
                "encrypted to the {} intake key (the default project's) but sent to {p}; `secintake case move` if it is {}'s",
                cfg.default_project(),
                cfg.default_project()
            )),
            _ => None,
        };
        let seq_name = format!("{prefix}-{year}");
        let seq = self.store.seq(&seq_name)? + 1;
        let encrypted = judged.reading.encrypted;
        let attachments: Vec<Attachment> = judged
            .reading
            .attachments
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
            case_title(judged.reading.protected_subject.as_deref(), &judged.text, &parsed.envelope.subject, encrypted);
        // A report re-sent after one we could not read links that first attempt.
        let resend_of = self.unreadable_from(from)?;
        let msg = case_message(id, &judged);
        let text = judged.text;
        // Capped lists; what a cap dropped is said in the audit log and the summary.
        let lists = report::lists(&text);
        let case = Case {
            id: case::format_id(prefix, year, seq),
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
            signature: judged.verdict,
            cvss: None,
            cwe: lists.cwe,
            tlp: report::tlp(&text),
            affected_versions: lists.affected_versions,
            attachments,
            messages: vec![msg],
            ack: None,
            due: Due::from_policy(received_at, policy),
            text,
            reject_reason: None,
            assignee: None,
            cve: None,
            fixed_versions: Vec::new(),
            waiting_on_reporter: false,
            resend_of,
            cvss_claimed: None,
            cvss_assessed: None,
            completeness: None,
            ai_use: None,
            flags: Vec::new(),
            flag_evidence: Default::default(),
            cra: Default::default(),
            project: Some(project.clone().unwrap_or_else(|| cfg.default_project().to_owned())),
            projects_affected: Vec::new(),
            duplicates: Vec::new(),
            also_reported_by: Vec::new(),
        };
        let infos: Vec<crate::triage::AttachmentInfo> = case
            .attachments
            .iter()
            .map(|a| crate::triage::AttachmentInfo { name: &a.name, content_type: &a.content_type, size: a.size })
            .collect();
        let mut triaged = case.clone();
        super::desk::open(&mut triaged, &infos, policy);
        drop(infos);
        let mut case = triaged;
        // Duplicate candidates against every case, through the index (bounded cost).
        let files: Vec<crate::triage::similar::PocFile> = judged
            .reading
            .attachments
            .iter()
            .map(|(a, _)| crate::triage::similar::PocFile {
                name: &a.name,
                content_type: &a.content_type,
                bytes: &a.bytes,
            })
            .collect();
        let signals = super::dupes::signals_of(&case, &files);
        case.duplicates = super::dupes::candidates(&self.store, &case.id, &signals)?;
        let block = self.store.block(from)?.filter(|b| b.holds_at(received_at));
        if let Some(b) = &block {
            super::reporters::mark_blocked(&mut case, b);
        }
        let reporter_cert = reporter_cert.map(|(c, _)| c);
        Ok(NewCase {
            case,
            seq_name,
            seq,
            change,
            held,
            reporter_cert,
            warnings: lists.warnings,
            key_note,
            signals,
            block,
        })
    }

    /// The case a message follows up: one its In-Reply-To or References name (a
    /// report or follow-up of it, or a mail we sent about it), else one its Subject
    /// names.
    pub(super) fn follow_up_target(&self, env: &mime::Envelope) -> Result<Option<String>> {
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
        for prefix in self.cfg.prefixes() {
            if let Some(id) = case::find_id(prefix, &env.subject)
                && self.store.case_meta(&id)?.is_some()
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Quarantine entries of messages from `from` that could not be read: a new
    /// report from the same address is taken as their re-send and links them.
    fn unreadable_from(&self, from: &str) -> Result<Vec<String>> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.unreadable_from(from)?.into_iter().map(|q| q.id).collect())
    }

    /// Decrypts and verifies a parsed message against `candidates`, within the limits.
    pub(super) fn read(&self, parsed: &mime::Parsed, candidates: &[(Cert, KeySource)], now: SystemTime) -> ReadResult {
        let limits = &self.cfg.limits;
        let read = |keys: &IntakeKeys| {
            read_against(parsed, candidates, keys, limits.max_plaintext_bytes, limits.max_mime_depth, now)
        };
        let mut r = read(&self.keys);
        // Whichever intake key opens it: a project with a key of its own is tried when the
        // default key is not a recipient.
        for (name, p) in self.projects.iter() {
            match (&r, &p.keys) {
                (Err(u), Some(k)) if u.reason == QuarantineReason::NoKey => {
                    r = read(k).map(|reading| classify::Reading { opened_by: Some(name.clone()), ..reading })
                }
                _ => {}
            }
        }
        r
    }
}

/// Whether the reading was decrypted by the default intake key (no project's own).
fn encrypted_default(r: &classify::Reading) -> bool {
    r.encrypted && r.opened_by.is_none()
}

/// Why a parsed message is no message to read at all (unparseable, blank, nested
/// past `max_depth`): the quarantine reason and its detail.
pub(super) fn malformed(parsed: &mime::Parsed, raw: &[u8], max_depth: u32) -> Option<(QuarantineReason, String)> {
    if parsed.unparseable || raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Some((QuarantineReason::Malformed, "not a parseable message".into()));
    }
    if parsed.depth > max_depth {
        return Some((
            QuarantineReason::MimeDepth,
            format!("MIME depth {} > limits.max_mime_depth {max_depth}", parsed.depth),
        ));
    }
    None
}

/// Every cert that may have signed a message from `from`: the keyring, the cert
/// held for the address, its Autocrypt header (when it names `from`) and the keys
/// attached outside the encryption.
pub(super) fn candidate_certs(
    keyring: &[Cert],
    parsed: &mime::Parsed,
    from: &str,
    held: Option<&StoredCert>,
) -> Vec<(Cert, KeySource)> {
    let mut out: Vec<(Cert, KeySource)> = keyring.iter().map(|c| (c.clone(), KeySource::Keyring)).collect();
    if let Some(h) = held {
        for c in pgp::parse_certs(h.armored.as_bytes()).into_iter().take(1) {
            add_candidate(&mut out, c, h.source);
        }
    }
    if let Some((addr, keydata)) = &parsed.envelope.autocrypt
        && addr == from
    {
        for c in pgp::parse_certs(keydata) {
            add_candidate(&mut out, c, KeySource::Autocrypt);
        }
    }
    for k in &parsed.keys {
        for c in pgp::parse_certs(k) {
            add_candidate(&mut out, c, KeySource::Attached);
        }
    }
    out
}

/// Adds a cert to the candidates; a copy of one already there is merged into it
/// (keeping where it first came from), so what it adds (a revocation, a new expiry:
/// Sequoia keeps only self-signatures that verify) is seen by verification and by
/// the pinned cert's refresh.
fn add_candidate(out: &mut Vec<(Cert, KeySource)>, c: Cert, source: KeySource) {
    match out.iter_mut().find(|(h, _)| h.fingerprint() == c.fingerprint()) {
        Some((h, _)) => {
            if let Ok(merged) = h.clone().merge_public(c) {
                *h = merged;
            }
        }
        None => out.push((c, source)),
    }
}

/// [`classify::read`] with `candidates` as the certs that may have signed.
fn read_against(
    parsed: &mime::Parsed,
    candidates: &[(Cert, KeySource)],
    keys: &IntakeKeys,
    max_plaintext: u64,
    max_depth: u32,
    now: SystemTime,
) -> ReadResult {
    let certs: Vec<Cert> = candidates.iter().map(|(c, _)| c.clone()).collect();
    classify::read(
        parsed,
        &classify::Context { keys, certs: &certs, max_plaintext, max_depth, now, spent: Default::default() },
    )
}

/// Classifies a readable message: the keys found inside it join the candidates, then
/// the verdict ([`classify::verdict`]) against the fingerprints `held` for `from`.
fn judge(
    reading: classify::Reading,
    mut candidates: Vec<(Cert, KeySource)>,
    from: &str,
    held: Vec<String>,
    now: SystemTime,
) -> Judged {
    for k in &reading.keys {
        for c in pgp::parse_certs(k) {
            add_candidate(&mut candidates, c, KeySource::Attached);
        }
    }
    let (verdict, signer) =
        classify::verdict(&reading, from, &classify::Held { fingerprints: held, candidates: &candidates }, now);
    // Only keys inside what the signer alone vouches for can succeed a pinned cert.
    let signed_certs = signer
        .as_deref()
        .map(|s| reading.signed_keys(s))
        .unwrap_or_default()
        .iter()
        .flat_map(|k| pgp::parse_certs(k))
        .map(|c| c.fingerprint().to_hex())
        .collect();
    let text = reading.text();
    Judged { reading, text, candidates, verdict, signer, signed_certs }
}

/// The message as one of its case's messages.
fn case_message(id: &Identity, judged: &Judged) -> CaseMessage {
    let encrypted = judged.reading.encrypted;
    CaseMessage {
        message_id: id.key.clone(),
        from: id.from.clone(),
        third_party: false,
        received_at: id.received_at,
        encrypted,
        decrypted: encrypted,
        signature: judged.verdict,
        signer_fingerprint: judged.signer.clone(),
        sha256: id.sha.clone(),
        text: judged.text.clone(),
    }
}

/// A new case's title: the protected Subject, else one from the text, else the
/// outer Subject; the outer Subject of an encrypted report only when nothing inside
/// gives one (it travelled in the clear).
fn case_title(protected_subject: Option<&str>, text: &str, subject: &str, encrypted: bool) -> String {
    let title = report::title(protected_subject, text, if encrypted { "" } else { subject })
        .chars()
        .take(300)
        .collect::<String>();
    if encrypted && title == "(no subject)" { report::title(None, "", subject) } else { title }
}

/// What the pure steps of [`Pipeline::decide`] make of raw bytes, without a store, as
/// for a first message from its sender (no keyring, no cert held, no case to follow
/// up): parse, screen, read, judge, the case's fields. The mutation smoke test drives
/// this; it must never panic or allocate past the limits.
pub fn examine(raw: &[u8], intake_keys: &IntakeKeys, max_plaintext: u64, max_depth: u32, now: SystemTime) -> String {
    let parsed = mime::parse(raw);
    if let Some((reason, _)) = malformed(&parsed, raw, max_depth) {
        return reason.as_str().into();
    }
    if let Some(r) = non_report_reason(&parsed.envelope, "security@intake.test") {
        return r.into();
    }
    let from = parsed.envelope.from_address.clone().unwrap_or_default();
    let candidates = candidate_certs(&[], &parsed, &from, None);
    let reading = match read_against(&parsed, &candidates, intake_keys, max_plaintext, max_depth, now) {
        Ok(r) => r,
        Err(u) => return u.reason.as_str().into(),
    };
    let judged = judge(reading, candidates, &from, Vec::new(), now);
    let text = &judged.text;
    let title = case_title(
        judged.reading.protected_subject.as_deref(),
        text,
        &parsed.envelope.subject,
        judged.reading.encrypted,
    );
    let _ = (
        keys::decide(
            &from,
            judged.verdict,
            judged.signer.as_deref(),
            &judged.candidates,
            &judged.signed_certs,
            false,
            None,
            now,
        ),
        report::cvss(text),
        report::lists(text),
        report::tlp(text),
        report::credit(text),
    );
    format!("case:{}:{}", judged.verdict.as_str(), title.len())
}

/// What triage reads of attachments: name, type, size.
fn attachment_infos<'a>(list: impl Iterator<Item = &'a mime::Part>) -> Vec<crate::triage::AttachmentInfo<'a>> {
    list.map(|a| crate::triage::AttachmentInfo {
        name: &a.name,
        content_type: &a.content_type,
        size: a.bytes.len() as u64,
    })
    .collect()
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

/// Message-IDs of the form our acks have (`CASE.ack.HEX16@DOMAIN`) found in `text`.
pub(super) fn ack_ids_in(text: &str) -> Vec<String> {
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
