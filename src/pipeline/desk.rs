//! The triage desk's rules on a case: the first round of triage when a case opens
//! (completeness against `[policy] required`, declared AI use, flags, the reporter's CVSS
//! claim), what a reply from the reporter changes (fields supplied, a reopened
//! `incomplete` case), and when an unanswered request closes a case.
//!
//! Pure: the case, the text, the policy and the time in; the changed case and what the
//! caller must do (tell the team, reopen) out. The text recognisers are `crate::triage`'s;
//! the mail and the store writes are the pipeline's (`record.rs`, and `Pipeline::ask` and
//! `Pipeline::close_incomplete` below).

use chrono::{DateTime, Utc};

use crate::case::{Case, Completeness, Status};
use crate::config::Policy;
use crate::triage::{self, AttachmentInfo, Flag};

/// The rejection reason of a case closed by `[policy] close_incomplete_after`.
pub const INCOMPLETE: &str = "incomplete";

/// First triage of a new case from its report.
pub(super) fn open(case: &mut Case, attachments: &[AttachmentInfo], policy: &Policy) {
    let a = triage::assess(&case.text, attachments);
    let mut completeness = Completeness {
        required: policy.required.clone(),
        present: a.present.iter().copied().collect(),
        ..Completeness::default()
    };
    completeness.update_missing();
    case.completeness = Some(completeness);
    let mut flags = a.flags.clone();
    flags.extend(triage::policy_flags(&a, &policy.required));
    case.set_flags(flags);
    case.ai_use = Some(a.ai_use);
    case.cvss_claimed = crate::report::cvss(&case.text);
    case.cvss = case.cvss_claimed.clone();
}

/// What a reply from the reporter changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Reply {
    /// Fields were missing before and none is now: the team is told.
    pub completed: bool,
    /// The case had been closed as `incomplete`: it is reopened to `triaged`.
    pub reopened: bool,
}

/// Folds a message from the reporter (never a third party: nobody completes someone
/// else's report) into the case's triage.
pub(super) fn reply(case: &mut Case, text: &str, attachments: &[AttachmentInfo], at: DateTime<Utc>) -> Reply {
    let a = triage::assess(text, attachments);
    let mut out = Reply::default();
    if let Some(c) = case.completeness.as_mut() {
        let was_missing = !c.missing.is_empty();
        for f in &a.present {
            if !c.present.contains(f) {
                c.present.push(*f);
            }
        }
        c.present.sort();
        c.update_missing();
        if c.asked_at.is_some_and(|asked| at >= asked) {
            // A reply stops the auto-close, whatever it holds.
            c.replied_at = Some(at);
            c.closes_at = None;
        }
        out.completed = was_missing && c.missing.is_empty();
    }
    let mut ai = case.ai_use.clone().unwrap_or_default();
    if ai.declared.is_none() && a.ai_use.declared.is_some() {
        ai = a.ai_use.clone();
    }
    case.ai_use = Some(ai);
    let mut flags = case.flag_evidence.clone();
    if let Some(e) = a.flags.get(&Flag::Exploited) {
        flags.entry(Flag::Exploited).or_insert_with(|| e.clone());
    }
    let present = case.completeness.as_ref().map(|c| c.present.clone()).unwrap_or_default();
    if present.contains(&triage::Field::Steps) || present.contains(&triage::Field::Poc) {
        flags.remove(&Flag::NoPoc);
    }
    if case.ai_use.as_ref().is_some_and(|a| a.declared.is_some()) {
        flags.remove(&Flag::AiUndeclared);
    }
    case.set_flags(flags);
    if case.status == Status::Rejected && case.reject_reason.as_deref() == Some(INCOMPLETE) {
        case.status = Status::Triaged;
        case.reject_reason = None;
        out.reopened = true;
    }
    out
}

/// Records that the reporter was asked at `at` for what is missing (plus `extra`
/// fields the team asks for): `asked_at`, and `closes_at` when the policy closes
/// incomplete cases.
pub(super) fn asked(case: &mut Case, extra: &[triage::Field], policy: &Policy, at: DateTime<Utc>) {
    let c = case.completeness.get_or_insert_with(Completeness::default);
    for f in extra {
        if !c.required.contains(f) {
            c.required.push(*f);
        }
    }
    c.update_missing();
    c.asked_at = Some(at);
    c.replied_at = None;
    c.closes_at = match policy.close_incomplete_after {
        Some(d) if !c.missing.is_empty() => {
            Some(at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(36500)))
        }
        _ => None,
    };
}

/// Whether the case closes as `incomplete` at `now`: fields still missing, the time
/// after the request passed, no reply since, and the case still open.
pub(super) fn closes_now(case: &Case, now: DateTime<Utc>) -> bool {
    let Some(c) = &case.completeness else { return false };
    !c.missing.is_empty()
        && c.replied_at.is_none()
        && c.closes_at.is_some_and(|t| now >= t)
        && !matches!(case.status, Status::Rejected | Status::Closed | Status::Disclosed)
}

impl super::Pipeline {
    /// `case ask`: asks the reporter for `fields` (none: what is missing) and, with
    /// `text`, the team's own words; the same mail shape as the ack's request (signed,
    /// encrypted when the key is known, threaded). Restarts the auto-close clock.
    /// Returns the mail's id.
    pub fn ask(
        &self,
        case_id: &str,
        fields: &[triage::Field],
        text: Option<&str>,
        who: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        use anyhow::Context;
        let tx = self.store.begin();
        let mut c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let (out, raw, encrypted, missing) = self.ask_mail(&mut c, fields, text, now)?;
        let mut b = crate::store::Batch::default();
        b.put_out(&out, Some(&raw));
        b.put_case(&c);
        b.put_log(
            case_id,
            self.store.log_len(case_id)?,
            &crate::case::LogEntry {
                at: now,
                who: who.to_owned(),
                action: "ask".into(),
                detail: format!(
                    "asked for {} ({} queued, encrypted: {encrypted})",
                    missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
                    out.id
                ),
                ..Default::default()
            },
        );
        tx.commit(b)?;
        Ok(out.id)
    }

    /// The request [`Self::ask`] and the mail command `/ask` send: the case marked as
    /// asked, the mail, whether it is encrypted, and the fields asked for.
    pub(super) fn ask_mail(
        &self,
        c: &mut Case,
        fields: &[triage::Field],
        text: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(crate::store::OutMail, Vec<u8>, bool, Vec<triage::Field>)> {
        let case_id = c.id.clone();
        if matches!(c.status, Status::Closed | Status::Disclosed) {
            anyhow::bail!("case {case_id} is {}: nothing to ask for", c.status.as_str());
        }
        asked(c, fields, &self.cfg.policy, now);
        let mut missing = c.completeness.as_ref().map(|c| c.missing.clone()).unwrap_or_default();
        for f in fields {
            if !missing.contains(f) {
                missing.push(*f);
            }
        }
        if missing.is_empty() && text.is_none_or(|t| t.trim().is_empty()) {
            anyhow::bail!("case {case_id} misses nothing the policy requires; name --field NAME or give --text FILE");
        }
        let body = crate::notify::needs_info_text(c, &self.cfg.policy.project, &missing, text);
        let (out, raw, encrypted) = self.reporter_mail(
            c,
            crate::store::MailKind::NeedsInfo,
            &format!("[{case_id}] More information needed"),
            &body,
            text.is_some(),
            now,
        )?;
        Ok((out, raw, encrypted, missing))
    }

    /// The clock's side of `[policy] close_incomplete_after`: a case whose request went
    /// unanswered past `closes_at` is rejected as `incomplete`, with an audit entry and
    /// one signed notice to the reporter saying how to reopen it. Returns whether it closed.
    pub(super) fn close_if_incomplete(
        &self,
        tx: &crate::store::Tx,
        c: &Case,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        if !closes_now(c, now) {
            return Ok(false);
        }
        let mut c = c.clone();
        let from = c.status;
        c.status = Status::Rejected;
        c.reject_reason = Some(INCOMPLETE.into());
        let mut b = crate::store::Batch::default();
        let mut n = self.store.log_len(&c.id)?;
        let log = |action: &str, detail: String| crate::case::LogEntry {
            at: now,
            who: "secintake".into(),
            action: action.into(),
            detail,
            ..Default::default()
        };
        b.put_log(
            &c.id,
            n,
            &log(
                "set",
                format!(
                    "status {} -> rejected; reason=incomplete (no reply to the request of {})",
                    from.as_str(),
                    c.completeness
                        .as_ref()
                        .and_then(|x| x.asked_at)
                        .map(|t| crate::case::rfc3339(&t))
                        .unwrap_or_default()
                ),
            ),
        );
        n += 1;
        let body = crate::notify::closed_incomplete_text(&c, &self.cfg.policy.project);
        match self.reporter_mail(
            &c,
            crate::store::MailKind::ClosedIncomplete,
            &format!("[{}] Report closed as incomplete", c.id),
            &body,
            false,
            now,
        ) {
            Ok((out, raw, _)) => {
                b.put_out(&out, Some(&raw));
                b.put_log(&c.id, n, &log("mail-out", format!("closing notice {} queued", out.id)));
            }
            Err(e) => b.put_log(&c.id, n, &log("mail-out", format!("no closing notice: {e:#}"))),
        }
        b.put_case(&c);
        tx.commit(b)?;
        tracing::info!(case = %c.id, "Case closed as incomplete");
        Ok(true)
    }
}
