//! Reporters: their history (every case of an address, counts by outcome) and blocks.
//!
//! A blocked reporter's mail is still recorded (nothing lost): a case, rejected with the
//! reason `blocked` and the flag `blocked-reporter`, no acknowledgement and no team
//! summary; a line in the next daily digest to the list (encrypted, as all team mail),
//! and at most one signed notice per block period saying that the policy no longer
//! accepts their reports, with the policy's URL (`[triage] block_notice = false`: none).
//! The loops and rate limits of acks hold for the notice (`Pipeline::ack_refusal`).
//! Blocks and unblocks, with who and why, go to the blocks' audit log.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Pipeline;
use crate::case::{Case, Status};
use crate::mime::{self, build};
use crate::store::{Batch, Block, BlockLogEntry, MailKind, Store, Tx};
use crate::triage::Flag;

/// Blocked reports one digest lists at most; more wait for the next tick.
const DIGEST_MAX: usize = 500;

/// Makes a new case from a blocked address what the block says it is.
pub(super) fn mark_blocked(case: &mut Case, b: &Block) {
    case.status = Status::Rejected;
    case.reject_reason = Some("blocked".into());
    let mut flags = case.flag_evidence.clone();
    let until = b.until.map(|u| format!(" until {}", crate::case::rfc3339(&u))).unwrap_or_default();
    flags.insert(
        Flag::BlockedReporter,
        format!("{} is blocked since {}{until}: {}", b.address, crate::case::rfc3339(&b.since), b.reason),
    );
    case.set_flags(flags);
}

impl Pipeline {
    /// What a blocked reporter's new case causes besides its record: its digest line and,
    /// once per block period, the notice. Returns why no ack went out (the audit log says it).
    pub(super) fn record_blocked(
        &self,
        batch: &mut Batch,
        case: &Case,
        block: &Block,
        env: &mime::Envelope,
        sha: &str,
        now: DateTime<Utc>,
    ) -> Result<&'static str> {
        batch.put_digest(case.received_at.date_naive(), &case.id);
        if !self.cfg.triage.block_notice {
            return Ok("reporter blocked (reporter block); no notice ([triage] block_notice = false)");
        }
        if block.notice_sent_at.is_some_and(|t| t >= block.since) {
            return Ok("reporter blocked (reporter block); the block's notice was sent before");
        }
        if let Some(why) = self.ack_refusal(&case.reporter.address, now)? {
            tracing::info!(case = %case.id, reason = why, "No block notice sent");
            return Ok("reporter blocked (reporter block); no notice (loops or rate limits)");
        }
        let project = case.project.as_deref();
        let keys = self.signer(project).clone();
        let policy = self.cfg.policy_of(project);
        let mut h = self.headers(
            project,
            vec![case.reporter.address.clone()],
            "Your reports are no longer accepted",
            MailKind::BlockNotice,
            &case.id,
            &mime::sha256_hex(format!("block{sha}").as_bytes()),
            now,
        );
        h.auto_submitted = true;
        if let Some(mid) = &env.message_id {
            h.in_reply_to = Some(mid.clone());
            h.references = vec![mid.clone()];
        }
        let body = crate::notify::blocks::notice_text(
            &policy.project,
            policy.url.as_deref().or(policy.security_txt_url.as_deref()),
            block.until,
        );
        let part = build::text_part(&body, "");
        let sys_now: std::time::SystemTime = now.into();
        match build::signed(&h, &part, |data| keys.sign_detached(data, sys_now)) {
            Ok(mail) => {
                let out = self.out_mail(&h, MailKind::BlockNotice, &case.id, false, now);
                batch.put_out(&out, Some(&mail));
                let mut b = block.clone();
                b.notice_sent_at = Some(now);
                batch.put_block(&b);
                Ok("reporter blocked (reporter block); the block's one notice sent instead")
            }
            Err(e) => {
                tracing::error!(case = %case.id, error = %format!("{e:#}"), "Block notice could not be built");
                Ok("reporter blocked (reporter block); the notice could not be built")
            }
        }
    }

    /// Sends the digest of blocked reports for each day that is over (one mail a
    /// project and day, encrypted to the team as every team mail), in the SLA clock's
    /// commit discipline. Returns how many digests were queued.
    pub(super) fn send_digests(&self, tx: &Tx, now: DateTime<Utc>) -> Result<usize> {
        let due = self.store.digest_due(now.date_naive(), DIGEST_MAX)?;
        let mut groups: BTreeMap<(chrono::NaiveDate, String), Vec<Case>> = BTreeMap::new();
        let mut b = Batch::default();
        for (day, id) in &due {
            b.remove_digest(*day, id);
            if let Some(c) = self.store.case_meta(id)? {
                let project = c.project.clone().unwrap_or_else(|| self.cfg.default_project().to_owned());
                groups.entry((*day, project)).or_default().push(c);
            }
        }
        let mut n = 0;
        for ((day, _), cases) in &groups {
            let Some(first) = cases.first() else { continue };
            let body = crate::notify::blocks::digest_text(*day, cases);
            let seed = format!("digest-{day}-{}", first.id);
            for (out, seal) in self.team_mail(
                first,
                MailKind::Digest,
                &format!("Blocked reporters' digest {day}"),
                &format!("Blocked reporters' digest {day}: {} report(s)", cases.len()),
                &body,
                now,
                &mime::sha256_hex(seed.as_bytes()),
            )? {
                b.put_out_sealed(&out, seal);
            }
            n += 1;
        }
        if !b.is_empty() {
            tx.commit(b)?;
        }
        Ok(n)
    }
}

/// Blocks `address` from `now` (until `until`, else until unblocked): its later reports
/// are recorded as rejected `blocked`. A new block is a new period (one more notice).
pub fn block(
    store: &Store,
    address: &str,
    reason: &str,
    until: Option<DateTime<Utc>>,
    who: &str,
    now: DateTime<Utc>,
) -> Result<Block> {
    let tx = store.begin();
    let b = Block {
        address: address.to_lowercase(),
        reason: reason.to_owned(),
        since: now,
        until,
        by: who.to_owned(),
        notice_sent_at: None,
    };
    let mut batch = Batch::default();
    batch.put_block(&b);
    batch.put_block_log(
        store.block_log_len()?,
        &BlockLogEntry {
            at: now,
            who: who.to_owned(),
            action: "block".into(),
            address: b.address.clone(),
            reason: reason.to_owned(),
            until,
        },
    );
    tx.commit(batch)?;
    Ok(b)
}

/// Lifts the block on `address`; false when there was none.
pub fn unblock(store: &Store, address: &str, reason: &str, who: &str, now: DateTime<Utc>) -> Result<bool> {
    let tx = store.begin();
    if store.block(address)?.is_none() {
        return Ok(false);
    }
    let mut batch = Batch::default();
    batch.remove_block(address);
    batch.put_block_log(
        store.block_log_len()?,
        &BlockLogEntry {
            at: now,
            who: who.to_owned(),
            action: "unblock".into(),
            address: address.to_lowercase(),
            reason: reason.to_owned(),
            until: None,
        },
    );
    tx.commit(batch)?;
    Ok(true)
}

/// How a case ended, for a reporter's counts: `accepted` (accepted, fixing, disclosed,
/// closed after disclosure), a rejection's reason (`duplicate`, `invalid`, `spam`,
/// `incomplete`, `blocked`, ...), or `open`.
pub fn outcome(c: &Case) -> String {
    match c.status {
        Status::Accepted | Status::Fixing | Status::Disclosed => "accepted".into(),
        Status::Closed if c.reject_reason.is_none() => "accepted".into(),
        Status::Rejected | Status::Closed => c
            .reject_reason
            .as_deref()
            .map(|r| r.split(':').next().unwrap_or(r).to_owned())
            .unwrap_or_else(|| "rejected".into()),
        _ => "open".into(),
    }
}

/// One reporter's history.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    pub address: String,
    pub cases: Vec<HistoryCase>,
    /// Outcome -> how many cases.
    pub counts: BTreeMap<String, usize>,
    /// How many ended rejected (any reason).
    pub rejected: usize,
    /// The cert held for the address (fingerprint), if any.
    pub cert: Option<String>,
    #[serde(with = "crate::case::ts::opt")]
    pub first_contact: Option<DateTime<Utc>>,
    #[serde(with = "crate::case::ts::opt")]
    pub last_contact: Option<DateTime<Utc>>,
    /// The block on the address now, if one holds.
    pub blocked: Option<Block>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryCase {
    pub id: String,
    pub status: String,
    pub reject_reason: Option<String>,
    #[serde(with = "crate::case::ts")]
    pub received_at: DateTime<Utc>,
    pub title: String,
}

/// Every reporter's history (one scan of the cases; a CLI command, never per message).
pub fn histories(store: &Store, now: DateTime<Utc>) -> Result<Vec<History>> {
    let mut by: BTreeMap<String, History> = BTreeMap::new();
    store.each_case(|c| {
        let addr = c.reporter.address.to_lowercase();
        let h = by.entry(addr.clone()).or_insert_with(|| History {
            address: addr,
            cases: Vec::new(),
            counts: BTreeMap::new(),
            rejected: 0,
            cert: None,
            first_contact: None,
            last_contact: None,
            blocked: None,
        });
        *h.counts.entry(outcome(&c)).or_insert(0) += 1;
        if c.status == Status::Rejected {
            h.rejected += 1;
        }
        let last = c.messages.iter().filter(|m| !m.third_party).map(|m| m.received_at).max().unwrap_or(c.received_at);
        h.first_contact = Some(h.first_contact.map_or(c.received_at, |f| f.min(c.received_at)));
        h.last_contact = Some(h.last_contact.map_or(last, |l| l.max(last)));
        h.cases.push(HistoryCase {
            id: c.id.clone(),
            status: c.status.as_str().into(),
            reject_reason: c.reject_reason.clone(),
            received_at: c.received_at,
            title: c.title.clone(),
        });
        Ok(())
    })?;
    for b in store.blocks()? {
        let h = by.entry(b.address.clone()).or_insert_with(|| History {
            address: b.address.clone(),
            cases: Vec::new(),
            counts: BTreeMap::new(),
            rejected: 0,
            cert: None,
            first_contact: None,
            last_contact: None,
            blocked: None,
        });
        if b.holds_at(now) {
            h.blocked = Some(b);
        }
    }
    let mut out: Vec<History> = by.into_values().collect();
    for h in &mut out {
        h.cert = store.cert(&h.address)?.map(|c| c.fingerprint);
        h.cases.sort_by_key(|a| a.received_at);
    }
    Ok(out)
}
