//! Record: a [`Decision`] written as the one [`Batch`] it causes (the mail record,
//! the case and its audit log, the indexes, the reporter's cert, the outgoing mail),
//! committed through the caller's [`Tx`]: one commit per message.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::decide::{Decision, FollowUp, Identity, NewCase};
use super::{Outcome, Pipeline, classify, keys};
use crate::case::{Ack, Case, LogEntry};
use crate::openpgp as pgp;
use crate::store::{Batch, Disposition, MailKind, MailRecord, QuarantineEntry, QuarantineReason, StoredCert, Tx};

/// The write one message's outcome goes into.
pub(super) struct Commit<'a> {
    tx: &'a Tx<'a>,
    pub(super) batch: Batch,
    pub(super) id: &'a Identity<'a>,
}

impl<'a> Commit<'a> {
    pub(super) fn new(tx: &'a Tx<'a>, id: &'a Identity<'a>) -> Commit<'a> {
        Commit { tx, batch: Batch::default(), id }
    }

    /// The mail record of this message with its outcome.
    pub(super) fn record(
        &self,
        disposition: Disposition,
        case_id: Option<String>,
        quarantine_id: Option<String>,
        reason: Option<String>,
    ) -> MailRecord {
        let id = self.id;
        MailRecord {
            message_id: id.key.clone(),
            received_at: id.received_at,
            from: id.from.clone(),
            sha256: id.sha.clone(),
            body_sha256: Some(id.body_sha.clone()),
            disposition,
            case_id,
            quarantine_id,
            reason,
        }
    }

    /// The index writes shared by every outcome: the content hash and the UID name
    /// the message's key.
    pub(super) fn index(&mut self) {
        self.batch.put_hash(&self.id.sha, &self.id.key);
        if let Some(src) = self.id.source {
            self.batch.put_uid(&src.mailbox, src.uidvalidity, src.uid, &self.id.key);
        }
    }

    pub(super) fn commit(self) -> Result<()> {
        self.tx.commit(self.batch)
    }
}

impl Pipeline {
    /// Writes what was decided about a message, in one commit.
    pub(super) fn record(
        &self,
        tx: &Tx,
        id: &Identity,
        decision: Decision,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let ctx = Commit::new(tx, id);
        match decision {
            Decision::Duplicate { key, earlier } => record_duplicate(ctx, &key, &earlier),
            Decision::Quarantine { reason, detail, keep_raw } => {
                self.quarantine(ctx, reason, false, keep_raw.then_some(raw), &detail)
            }
            Decision::Unreadable(u) => self.quarantine_unreadable(ctx, u, raw, now),
            Decision::NonReport(reason) => self.record_non_report(ctx, reason, raw, now),
            Decision::FollowUp(f) => self.record_follow_up(ctx, *f, now),
            Decision::NewCase(c) => self.record_new_case(ctx, *c, now),
            Decision::Command(c) => self.record_command(ctx, *c, now),
        }
    }

    /// A non-report: its record; a bounce of one of our acks also marks that ack.
    fn record_non_report(
        &self,
        mut ctx: Commit<'_>,
        reason: &'static str,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let rec = ctx.record(Disposition::NonReport, None, None, Some(reason.into()));
        ctx.batch.put_mail(&ctx.id.key, &rec);
        if reason == "bounce" {
            self.mark_bounced_ack(raw, &mut ctx.batch, &ctx.id.key, now)?;
        }
        ctx.index();
        ctx.commit()?;
        Ok(Outcome::of(&rec, false))
    }

    /// A follow-up: the case with the message added, the team told, the reporter's
    /// cert updated, the audit log.
    fn record_follow_up(&self, mut ctx: Commit<'_>, f: FollowUp, now: DateTime<Utc>) -> Result<Outcome> {
        let FollowUp { case: c, third_party, change, held, triage } = f;
        let id = ctx.id;
        let from = &id.from;
        let rec = ctx.record(Disposition::FollowUp, Some(c.id.clone()), None, id.collision.clone());
        for (out, seal) in self.follow_up_mail(&c, third_party, from, &id.sha, now)? {
            ctx.batch.put_out_sealed(&out, seal);
        }
        if triage.completed {
            for (out, seal) in self.completed_mail(&c, &id.sha, now)? {
                ctx.batch.put_out_sealed(&out, seal);
            }
        }
        let mut log_n = self.store.log_len(&c.id)?;
        let desk_log = |action: &str, detail: &str| LogEntry {
            at: now,
            who: "secintake".into(),
            action: action.into(),
            detail: detail.into(),
            ..Default::default()
        };
        if triage.reopened {
            ctx.batch.put_log(
                &c.id,
                log_n,
                &desk_log("set", "status rejected -> triaged (reopened: the reporter replied to the incomplete case)"),
            );
            log_n += 1;
        }
        if triage.completed {
            ctx.batch.put_log(&c.id, log_n, &desk_log("completed", "the reporter supplied every field asked for"));
            log_n += 1;
        }
        for e in change.log_entries(from, now) {
            ctx.batch.put_log(&c.id, log_n, &e);
            log_n += 1;
        }
        apply_key_change(&mut ctx.batch, from, &change, held.as_ref())?;
        super::search::index_case(&self.store, &mut ctx.batch, &c, c.messages.len().saturating_sub(1))?;
        ctx.batch.put_case(&c);
        ctx.batch.put_mail(&id.key, &rec);
        ctx.batch.put_log(
            &c.id,
            log_n,
            &LogEntry {
                at: now,
                who: "secintake".into(),
                action: "mail-in".into(),
                detail: format!("follow-up {} from {from}{}", id.key, if third_party { " (third party)" } else { "" }),
                ..Default::default()
            },
        );
        ctx.index();
        ctx.commit()?;
        tracing::info!(case = %c.id, third_party, "Follow-up joined its case");
        Ok(Outcome::of(&rec, false))
    }

    /// A new case: its acknowledgement (or why none), the team's summary, the
    /// reporter's cert, the case, its audit log and its number.
    fn record_new_case(&self, mut ctx: Commit<'_>, new: NewCase, now: DateTime<Utc>) -> Result<Outcome> {
        let NewCase { mut case, seq_name, seq, change, held, reporter_cert, warnings, key_note, signals, block } = new;
        let id = ctx.id;
        let withheld = match &block {
            // A blocked reporter: no ack and no summary; at most one notice a period and
            // a line in the daily digest.
            Some(b) => Some(self.record_blocked(&mut ctx.batch, &case, b, &id.env, &id.sha, now)?),
            None => self.queue_ack(&mut ctx.batch, &case, &id.env, &id.sha, reporter_cert.as_ref(), now)?,
        };
        // The ack asked for what is missing: the one automatic request.
        if withheld.is_none() && case.completeness.as_ref().is_some_and(|c| !c.missing.is_empty()) {
            let policy = self.cfg.policy_of(case.project.as_deref());
            super::desk::asked(&mut case, &[], policy, now);
        }
        if block.is_none() {
            let summary_warnings: Vec<String> = warnings.iter().cloned().chain(key_note.clone()).collect();
            for (out, seal) in self.summary_mail(&case, &summary_warnings, &id.sha, now)? {
                ctx.batch.put_out_sealed(&out, seal);
            }
        }
        super::dupes::record(&mut ctx.batch, &case.id, &signals);
        super::search::index_case(&self.store, &mut ctx.batch, &case, 0)?;
        apply_key_change(&mut ctx.batch, &id.from, &change, held.as_ref())?;
        let rec = ctx.record(Disposition::Case, Some(case.id.clone()), None, id.collision.clone());
        ctx.batch.put_case(&case);
        ctx.batch.put_mail(&id.key, &rec);
        let mut log = opening_log(id, &case, &change, withheld, &warnings, now);
        if let Some(n) = key_note {
            log.push(LogEntry {
                at: now,
                who: "secintake".into(),
                action: "note".into(),
                detail: n,
                ..Default::default()
            });
        }
        for (n, e) in log.iter().enumerate() {
            ctx.batch.put_log(&case.id, n as u64, e);
        }
        ctx.batch.put_seq(&seq_name, seq);
        ctx.index();
        ctx.commit()?;
        tracing::info!(case = %case.id, encrypted = case.encrypted, signature = case.signature.as_str(), "Case opened");
        Ok(Outcome::of(&rec, false))
    }

    /// Quarantines a message: the entry (with the raw message when given), its record.
    pub(super) fn quarantine(
        &self,
        mut ctx: Commit<'_>,
        reason: QuarantineReason,
        encrypted: bool,
        raw: Option<&[u8]>,
        detail: &str,
    ) -> Result<Outcome> {
        let id = ctx.id;
        let qid = format!("Q-{}", &id.sha[..16]);
        let q = QuarantineEntry {
            id: qid.clone(),
            reason,
            message_id: id.key.clone(),
            from: id.from.clone(),
            received_at: id.received_at,
            encrypted,
            sha256: id.sha.clone(),
            detail: detail.chars().take(500).collect(),
        };
        let rec = ctx.record(Disposition::Quarantine, None, Some(qid.clone()), Some(reason.as_str().into()));
        ctx.batch.put_quarantine(&q, raw);
        ctx.batch.put_mail(&id.key, &rec);
        ctx.index();
        ctx.commit()?;
        tracing::warn!(quarantine = %qid, reason = reason.as_str(), "Message quarantined");
        Ok(Outcome::of(&rec, false))
    }

    /// Quarantines a message that could not be read and, for a report we could not
    /// decrypt, tells its sender (signed, rate-limited, never to automated senders):
    /// when it arrived, its SHA-256, that it could not be read, which key to use.
    fn quarantine_unreadable(
        &self,
        mut ctx: Commit<'_>,
        u: classify::Unreadable,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let id = ctx.id;
        if u.reason.tells_sender() {
            match self.ack_refusal(&id.from, now)? {
                Some(why) => tracing::info!(reason = why, "No cannot-read notice sent"),
                None => match self.cannot_read_mail(&id.env, &id.sha, id.received_at, u.reason.as_str(), now) {
                    Ok((out, mail)) => ctx.batch.put_out(&out, Some(&mail)),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "Cannot-read notice could not be built"),
                },
            }
        }
        self.quarantine(ctx, u.reason, u.encrypted, Some(raw), &u.detail)
    }
}

/// Writes what [`keys::decide`] decided about `held`, the cert held for `address`
/// when the message was decided (the store's lock has been held since).
fn apply_key_change(b: &mut Batch, address: &str, change: &keys::Change, held: Option<&StoredCert>) -> Result<()> {
    let (cert, source) = match change {
        keys::Change::None | keys::Change::Conflict(_) => return Ok(()),
        keys::Change::Pin(c, s) => (c.clone(), *s),
        keys::Change::Replace { new, source, .. } => (new.clone(), *source),
        keys::Change::Refresh(_) => match change.held_after(held) {
            Some(h) => h,
            None => return Ok(()),
        },
    };
    let armored = pgp::armor_cert(&cert)?;
    if held.is_some_and(|h| h.armored == armored) {
        return Ok(());
    }
    b.put_cert(address, &StoredCert { fingerprint: cert.fingerprint().to_hex(), source, armored });
    Ok(())
}

/// The same message again: its UID joins the earlier record (under `key`); under
/// another key (the same bytes, another Message-ID) it gets a `duplicate` record of
/// its own, pointing at the same case.
fn record_duplicate(mut ctx: Commit<'_>, key: &str, earlier: &MailRecord) -> Result<Outcome> {
    let id = ctx.id;
    if let Some(src) = id.source {
        ctx.batch.put_uid(&src.mailbox, src.uidvalidity, src.uid, key);
    }
    let outcome = if key == id.key {
        Outcome::of(earlier, true)
    } else {
        let rec =
            ctx.record(Disposition::Duplicate, earlier.case_id.clone(), None, Some(format!("same content as {key}")));
        ctx.batch.put_mail(&id.key, &rec);
        if let Some(src) = id.source {
            ctx.batch.put_uid(&src.mailbox, src.uidvalidity, src.uid, &id.key);
        }
        Outcome::of(&rec, false)
    };
    if !ctx.batch.is_empty() {
        ctx.commit()?;
    }
    Ok(Outcome { disposition: Disposition::Duplicate, ..outcome })
}

/// A new case's first audit-log entries: opened, then what the team should know
/// (a re-used Message-ID, the unreadable attempts it re-sends, the reporter's key,
/// a withheld ack, truncated lists).
fn opening_log(
    id: &Identity,
    case: &Case,
    change: &keys::Change,
    withheld: Option<&str>,
    warnings: &[String],
    now: DateTime<Utc>,
) -> Vec<LogEntry> {
    let entry = |action: &str, detail: String| LogEntry {
        at: now,
        who: "secintake".into(),
        action: action.into(),
        detail,
        ..Default::default()
    };
    let mut log = vec![entry("opened", format!("report {} from {}", id.key, id.from))];
    if let Some(c) = &id.collision {
        log.push(entry("message-id-reused", c.clone()));
    }
    for q in &case.resend_of {
        log.push(entry("resend-of", format!("re-sent after {q}, which could not be read")));
    }
    log.extend(change.log_entries(&id.from, now));
    if let Some(why) = withheld {
        log.push(entry("ack-withheld", why.to_owned()));
    }
    for w in warnings {
        tracing::warn!(case = %case.id, warning = %w, "Report fields truncated");
        log.push(entry("truncated", w.clone()));
    }
    log
}

impl Pipeline {
    /// A bounce naming one of our acks: the ack is marked undelivered on its case, the
    /// audit log says so, and the team list is told (encrypted).
    fn mark_bounced_ack(&self, raw: &[u8], b: &mut Batch, bounce_key: &str, now: DateTime<Utc>) -> Result<()> {
        let text = String::from_utf8_lossy(raw);
        // Our acks' Message-IDs named in the bounce, looked up one by one.
        for id in super::decide::ack_ids_in(&text) {
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
                    for (o, seal) in self.team_mail(
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
                            ..Default::default()
                        },
                    );
                    b.put_case(&c);
                }
            }
        }
        Ok(())
    }
}
