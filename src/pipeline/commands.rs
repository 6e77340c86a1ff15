//! Commands by signed mail: a team member acts on a case from their mail client.
//!
//! A message whose text starts with a command line (`case::command::carries_commands`)
//! from a team address, or signed by anyone, is a command mail; it is decided here, once,
//! into a [`CommandDecision`]: applied (every line parsed and applied to a copy of the
//! case, all or nothing) or rejected with the reason. The credential is the OpenPGP
//! signature, checked in one place ([`Pipeline::authenticate`]): a valid signature by a
//! cert in `keys.team_certs` that is valid now, whose User IDs include the From address,
//! over the text the commands are read from, made at most `commands.max_age` before
//! arrival, and never used by an applied command before (its digest is stored). Words of
//! the team's own (`/reply`, `/note`) need the mail encrypted to the intake key.
//!
//! Never applies a thing from a message that a team member did not sign; never tells
//! the sender of a refused mail anything (they may be an attacker): the list is told,
//! encrypted. Writes nothing itself: `record_command` writes what was decided.

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use super::classify::Reading;
use super::decide::Identity;
use super::record::Commit;
use super::{Outcome, Pipeline};
use crate::case::change::Change;
use crate::case::command::{self, Command, Reply};
use crate::case::{self as case_mod, Case, LogEntry};
use crate::mime::{self, build};
use crate::notify;
use crate::openpgp::{self as pgp, Verdict};
use crate::store::{Disposition, MailKind, OutMail, Seal, StoredReadIn};

/// Signatures made this long after arrival are refused (clock skew is allowed for).
const MAX_FUTURE: chrono::Duration = chrono::Duration::hours(1);

/// Refusal notices a case (or, naming none, the intake) sends the list in an hour at
/// most: a flood of forged command mails is recorded in full (`mail list`) but cannot
/// turn into a flood of mail to the team.
const NOTICES_PER_HOUR: usize = 5;

/// Who signed a command mail, as the audit log records it.
#[derive(Clone, Debug)]
pub(super) struct Signer {
    /// The From address (bound to the cert).
    pub address: String,
    pub fingerprint: String,
    /// The signature's digest ([`pgp::Verification::digest`]): stored, so it is used once.
    pub digest: String,
}

/// What a command mail does, decided once.
pub(super) enum CommandDecision {
    Applied(Box<Applied>),
    /// Nothing applied. `case`: the case it named, if any (its list is told).
    Rejected {
        case: Option<Box<Case>>,
        reason: String,
    },
}

/// An applied command mail: everything it writes.
pub(super) struct Applied {
    /// The case after every change.
    pub case: Case,
    pub signer: Signer,
    /// The confirmation's lines: each change, old -> new.
    pub said: Vec<String>,
    /// Audit entries (each with `by`, `by_fingerprint`, `via`).
    pub log: Vec<LogEntry>,
    /// Mail to the reporter (`/reply`, `/ask`), made now (as `case reply` makes it).
    pub to_reporter: Vec<(OutMail, Vec<u8>)>,
    /// Whether a reply went out (the update reminders are forgotten).
    pub replied: bool,
    pub readin_add: Vec<StoredReadIn>,
    pub readin_remove: Vec<String>,
}

impl Pipeline {
    /// Whether `reading` is a command mail, and if so what becomes of it. None: a
    /// message like any other (a report, a follow-up).
    pub(super) fn command_decision(
        &self,
        id: &Identity,
        env: &mime::Envelope,
        reading: &Reading,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<CommandDecision>> {
        let Some(main) = reading.texts.first() else { return Ok(None) };
        if !command::carries_commands(&main.text) {
            return Ok(None);
        }
        let sys_now = now.into();
        let team_address = self.team_signers.iter().any(|c| pgp::has_address(c, &id.from));
        // Unsigned command lines from anyone but the team are a report's words.
        if !team_address && reading.signatures.is_empty() {
            return Ok(None);
        }
        let case = self.command_case(env, reading)?;
        let reject = |case: Option<Case>, reason: String| {
            Ok(Some(CommandDecision::Rejected { case: case.map(Box::new), reason }))
        };
        let signer = match self.authenticate(id, reading, main.coverage.signed, sys_now) {
            Ok(s) => s,
            Err(why) => return reject(case, why),
        };
        let Some(case) = case else {
            return reject(
                None,
                "names no case: put [CASE-ID] in the Subject or reply to the case's summary or follow-up".into(),
            );
        };
        let exists = |c: &str| self.store.case_meta(c).ok().flatten().is_some();
        let has_template = |t: &str| self.replies.has(t);
        let lines = match command::parse(&main.text, &case.id, &exists, &has_template) {
            Ok(l) => l,
            Err(e) => return reject(Some(case), e.to_string()),
        };
        if !main.coverage.encrypted && lines.iter().any(|l| l.command.carries_text()) {
            return reject(
                Some(case),
                "carries words for the reporter or the log (/reply, /note) but was not encrypted to the intake key"
                    .into(),
            );
        }
        match self.apply_commands(id, &case, &lines, reading, signer, now) {
            Ok(a) => Ok(Some(CommandDecision::Applied(Box::new(a)))),
            Err(why) => reject(Some(case), why),
        }
    }

    /// The case a command mail acts on: the one its In-Reply-To/References or Subject
    /// names, else the one its protected (encrypted) Subject names.
    fn command_case(&self, env: &mime::Envelope, reading: &Reading) -> anyhow::Result<Option<Case>> {
        let mut id = self.follow_up_target(env)?;
        if id.is_none()
            && let Some(s) = &reading.protected_subject
        {
            id = self.cfg.prefixes().into_iter().find_map(|p| case_mod::find_id(p, s));
        }
        Ok(match id {
            Some(i) => self.store.case_meta(&i)?,
            None => None,
        })
    }

    /// The one check of a command mail's credential (see the module doc): the signer,
    /// or why the mail applies nothing.
    fn authenticate(
        &self,
        id: &Identity,
        reading: &Reading,
        text_signed: bool,
        now: std::time::SystemTime,
    ) -> Result<Signer, String> {
        let sigs = &reading.signatures;
        let team = |fpr: &str| -> Option<&Cert> { self.team_signers.iter().find(|c| c.fingerprint().to_hex() == fpr) };
        if sigs.is_empty() || !text_signed {
            return Err("not signed: a command mail must be signed by the sender's team cert".into());
        }
        if let Some(bad) = sigs.iter().find(|v| v.verdict == Verdict::Bad) {
            return Err(match bad.signer.as_deref().and_then(|f| team(f).map(|c| (f, c))) {
                Some((f, c)) if !pgp::valid_now(c, now) => {
                    format!("signed by the team cert {f}, which is expired or revoked")
                }
                Some((f, _)) if bad.created.is_some_and(|c| c > now) => {
                    format!(
                        "the signature by the team cert {f} claims a time after this mail was read (the sender's clock?)"
                    )
                }
                Some((f, _)) => format!("the signature by the team cert {f} does not verify (altered?)"),
                None => "a signature does not verify (altered, or a rejected algorithm)".into(),
            });
        }
        // Every signature must be a good one: a second signer we cannot check is not
        // vouched for by the team.
        if let Some(other) = sigs.iter().find(|v| v.verdict != Verdict::Good) {
            let issuer = other.signer.clone().unwrap_or_else(|| "unknown".into());
            return Err(format!("signed by a cert that is not a team cert ({issuer})"));
        }
        let goods: Vec<_> = sigs.iter().collect();
        let Some(good) = goods.first() else {
            return Err("not signed: a command mail must be signed by the sender's team cert".into());
        };
        if goods.iter().any(|v| v.signer != good.signer) {
            return Err("signed by more than one cert; sign with your team cert alone".into());
        }
        let fpr = good.signer.clone().unwrap_or_default();
        let Some(cert) = team(&fpr) else {
            return Err(format!("signed by a cert that is not a team cert ({fpr})"));
        };
        if !pgp::valid_now(cert, now) {
            return Err(format!("signed by the team cert {fpr}, which is expired or revoked"));
        }
        if !pgp::bound_to(cert, &id.from, now) {
            return Err(format!(
                "From {} is not an address of the signing team cert {fpr} (one member signing as another?)",
                id.from
            ));
        }
        let created: DateTime<Utc> = match good.created {
            Some(t) => t.into(),
            None => return Err("the signature carries no creation time".into()),
        };
        let max_age = chrono::Duration::from_std(self.cfg.commands.max_age).unwrap_or(chrono::Duration::hours(72));
        if id.received_at - created > max_age {
            return Err(format!(
                "the signature was made {}, more than commands.max_age ({}) before the mail arrived",
                case_mod::rfc3339(&created),
                humantime::format_duration(self.cfg.commands.max_age)
            ));
        }
        if created - id.received_at > MAX_FUTURE {
            return Err(format!(
                "the signature claims to be made {}, after the mail arrived",
                case_mod::rfc3339(&created)
            ));
        }
        let digest = good.digest.clone().ok_or("the signature's digest is unknown")?;
        if let Ok(Some(earlier)) = self.store.command_signature(&digest)
            && earlier != id.key
        {
            return Err(format!("a replay: this signature was already used by the applied command mail <{earlier}>"));
        }
        Ok(Signer { address: id.from.to_ascii_lowercase(), fingerprint: fpr, digest })
    }

    /// Applies every line to a copy of `case`, in order; the first that fails fails
    /// them all.
    fn apply_commands(
        &self,
        id: &Identity,
        case: &Case,
        lines: &[command::Line],
        reading: &Reading,
        signer: Signer,
        now: DateTime<Utc>,
    ) -> Result<Applied, String> {
        let mut c = case.clone();
        let entry = |action: &str, detail: String| LogEntry {
            at: now,
            who: signer.address.clone(),
            action: action.into(),
            detail,
            by: Some(signer.address.clone()),
            by_fingerprint: Some(signer.fingerprint.clone()),
            via: Some(id.key.clone()),
        };
        let mut a = Applied {
            case: case.clone(),
            signer: signer.clone(),
            said: Vec::new(),
            log: vec![entry(
                "mail-in",
                format!("command mail {} from {} (signed by {})", id.key, id.from, signer.fingerprint),
            )],
            to_reporter: Vec::new(),
            replied: false,
            readin_add: Vec::new(),
            readin_remove: Vec::new(),
        };
        let project = self.cfg.policy_of(c.project.as_deref()).project.clone();
        for l in lines {
            let fail = |why: String| format!("line {}: {why}", l.n);
            match &l.command {
                Command::Change(ch) => {
                    let before = c.clone();
                    let line = ch.apply(&mut c, now).map_err(fail)?;
                    a.said.push(describe(&before, &c, ch));
                    if !line.is_empty() {
                        a.log.push(entry("set", line));
                    }
                }
                Command::Note(t) => {
                    a.said.push("note added to the audit log".into());
                    a.log.push(entry("note", t.clone()));
                }
                Command::Ask(fields) => {
                    let (out, raw, encrypted, missing) =
                        self.ask_mail(&mut c, fields, None, now).map_err(|e| fail(format!("{e:#}")))?;
                    let names = missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
                    a.said.push(format!("asked the reporter for {names}"));
                    a.log.push(entry("ask", format!("asked for {names} ({} queued, encrypted: {encrypted})", out.id)));
                    a.to_reporter.push((out, raw));
                }
                Command::Reply(r) => {
                    let text = match r {
                        Reply::Text(t) => t.clone(),
                        Reply::Template(n) => {
                            self.replies.render(n, &c, &project).ok_or_else(|| fail(format!("no template {n}")))?
                        }
                    };
                    let to = c.reporter.address.clone();
                    let (out, raw, encrypted) =
                        self.reply_mail(&mut c, &text, now).map_err(|e| fail(format!("{e:#}")))?;
                    let how = match r {
                        Reply::Template(n) => format!(" (template {n})"),
                        Reply::Text(_) => String::new(),
                    };
                    a.said.push(format!("reply{how} to the reporter queued (encrypted: {encrypted})"));
                    a.log
                        .push(entry("reply", format!("reply {} to {to} queued{how} (encrypted: {encrypted})", out.id)));
                    a.to_reporter.push((out, raw));
                    a.replied = true;
                }
                Command::ReadinAdd { role, expires, force } => {
                    let signer_fpr = &signer.fingerprint;
                    let certs: Vec<&Vec<u8>> = reading
                        .signed_keys
                        .iter()
                        .filter(|k| pgp::parse_certs(k).iter().all(|c| &c.fingerprint().to_hex() != signer_fpr))
                        .collect();
                    let [cert] = certs.as_slice() else {
                        return Err(fail(format!(
                            "/readin add needs exactly one cert attached inside the signed mail (found {})",
                            certs.len()
                        )));
                    };
                    let (r, detail) = self
                        .readin_entry(&c, cert, *role, *expires, force.as_deref(), &signer.address, now)
                        .map_err(fail)?;
                    a.said.push(format!("read in: {detail}"));
                    a.log.push(entry("readin-add", detail));
                    a.readin_add.push(r);
                }
                Command::ReadinRemove(fpr) => {
                    let known = self.store.readins(&c.id).map_err(|e| fail(format!("{e:#}")))?;
                    if !known.iter().any(|r| &r.entry.fingerprint == fpr) {
                        return Err(fail(format!("{fpr} is not read in on {}", c.id)));
                    }
                    a.said.push(format!("{fpr} no longer read in"));
                    a.log.push(entry("readin-remove", format!("{fpr} no longer read in")));
                    a.readin_remove.push(fpr.clone());
                }
            }
        }
        a.case = c;
        Ok(a)
    }

    /// Writes a command mail's outcome in one commit: applied (the case, its audit
    /// entries, the mail to the reporter, the list's confirmation, the signature used,
    /// the read-ins), or rejected (the record with its reason; the list told).
    pub(super) fn record_command(
        &self,
        mut ctx: Commit<'_>,
        d: CommandDecision,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let id = ctx.id;
        match d {
            CommandDecision::Applied(a) => {
                let a = *a;
                let c = &a.case;
                let rec = ctx.record(Disposition::Command, Some(c.id.clone()), None, None);
                for (out, raw) in &a.to_reporter {
                    ctx.batch.put_out(out, Some(raw));
                }
                if a.replied {
                    for k in case_mod::sla::UPDATE_KEYS {
                        ctx.batch.remove_reminder(&c.id, k);
                    }
                }
                for (n, e) in (self.store.log_len(&c.id)?..).zip(&a.log) {
                    ctx.batch.put_log(&c.id, n, e);
                }
                for fpr in &a.readin_remove {
                    ctx.batch.remove_readin(&c.id, fpr);
                }
                // The confirmation, threaded under the command mail; then the newcomers
                // get their summary so far (and are not sent the confirmation twice).
                let body = notify::confirmation_text(&c.id, &a.signer.address, &a.signer.fingerprint, &id.key, &a.said);
                let subject = format!("[{}] Changed by {}", c.id, a.signer.address);
                let thread: Vec<String> = id.env.references.iter().cloned().chain(id.env.message_id.clone()).collect();
                for (out, seal) in self.team_mail_in_thread(
                    c,
                    MailKind::Confirmation,
                    &subject,
                    &subject,
                    &body,
                    now,
                    &id.sha,
                    &thread,
                )? {
                    ctx.batch.put_out_sealed(&out, seal);
                }
                for r in &a.readin_add {
                    let (out, seal) = self.readin_summary(c, r, now)?;
                    ctx.batch.put_out_sealed(&out, seal);
                    ctx.batch.put_readin(&c.id, r);
                }
                ctx.batch.put_command_signature(&a.signer.digest, &id.key);
                ctx.batch.put_case(c);
                ctx.batch.put_mail(&id.key, &rec);
                ctx.index();
                ctx.commit()?;
                tracing::info!(case = %c.id, signer = %a.signer.fingerprint, lines = a.said.len(), "Command mail applied");
                Ok(Outcome::of(&rec, false))
            }
            CommandDecision::Rejected { case, reason } => {
                let case_id = case.as_ref().map(|c| c.id.clone());
                let rec = ctx.record(Disposition::CommandRejected, case_id.clone(), None, Some(reason.clone()));
                let mut body = notify::rejected_text(case_id.as_deref(), &id.from, &id.key, &reason);
                let scope = case_id.clone().unwrap_or_else(|| "intake".into());
                let hour = format!("cmdrej:{}:", now.format("%Y%m%d%H"));
                let told = self.store.reminders(&scope)?.iter().filter(|k| k.starts_with(&hour)).count();
                let tell = told < NOTICES_PER_HOUR;
                if tell {
                    ctx.batch.put_reminder(&scope, &format!("{hour}{told}"));
                }
                if told + 1 == NOTICES_PER_HOUR {
                    body.push_str(&format!(
                        "\nThis is refusal {NOTICES_PER_HOUR} of this hour for it:\n\
                         further ones this hour are recorded (secintake mail list), not mailed.\n"
                    ));
                }
                match &case {
                    Some(c) => {
                        let subject = format!("[{}] Command mail refused", c.id);
                        if tell {
                            for (out, seal) in
                                self.team_mail(c, MailKind::CommandRejected, &subject, &subject, &body, now, &id.sha)?
                            {
                                ctx.batch.put_out_sealed(&out, seal);
                            }
                        }
                        ctx.batch.put_log(
                            &c.id,
                            self.store.log_len(&c.id)?,
                            &LogEntry {
                                at: now,
                                who: "secintake".into(),
                                action: "command-rejected".into(),
                                detail: format!("command mail {} from {}: {reason}", id.key, id.from),
                                via: Some(id.key.clone()),
                                ..Default::default()
                            },
                        );
                    }
                    None => {
                        if tell && let Some((out, seal)) = self.list_notice(&body, now, &id.sha) {
                            ctx.batch.put_out_sealed(&out, seal);
                        }
                    }
                }
                ctx.batch.put_mail(&id.key, &rec);
                ctx.index();
                ctx.commit()?;
                // The reason may quote a decrypted line: it goes to the record and the list only.
                tracing::warn!(case = ?case_id, "Command mail refused");
                Ok(Outcome::of(&rec, false))
            }
        }
    }

    /// A refusal that names no case, to the shared list, encrypted to the team.
    fn list_notice(&self, body: &str, now: DateTime<Utc>, sha: &str) -> Option<(OutMail, Seal)> {
        let team: Vec<Cert> = self.team.iter().filter(|c| pgp::can_encrypt(c, now.into()).is_ok()).cloned().collect();
        if team.is_empty() {
            return None;
        }
        let list = self.cfg.team_list_address.clone();
        let seed = mime::sha256_hex(format!("cmdrej{sha}").as_bytes());
        let mut h = self.headers(
            None,
            vec![list.clone()],
            "Command mail refused",
            MailKind::CommandRejected,
            "intake",
            &seed,
            now,
        );
        h.reply_to = Some(list);
        let mut out = self.out_mail(&h, MailKind::CommandRejected, "intake", true, now);
        out.case_id = None;
        let keys = self.keys.clone();
        let body = body.to_owned();
        Some((
            out,
            Box::new(move || {
                let inner = build::protected_text_part(&h, &body);
                let ct = keys.encrypt_and_sign(inner.as_bytes(), &team, now.into())?;
                build::encrypted(&h, &ct)
            }),
        ))
    }
}

/// One change as the confirmation says it: the field, old -> new.
fn describe(before: &Case, after: &Case, ch: &Change) -> String {
    let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    match ch {
        Change::Status { .. } => {
            let reason = after.reject_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            format!("status: {} -> {}{reason}", before.status.as_str(), after.status.as_str())
        }
        Change::Title(_) => "title changed".into(),
        Change::Cvss(_) => format!(
            "cvss: {} -> {}",
            before.cvss_assessed.as_ref().map(|c| c.vector.as_str()).unwrap_or("none"),
            after
                .cvss_assessed
                .as_ref()
                .map(|c| format!("{} ({} {})", c.vector, c.score, c.severity))
                .unwrap_or("none".into())
        ),
        Change::Cwe(_) => format!("cwe: {} -> {}", list(&before.cwe), list(&after.cwe)),
        Change::Tlp(_) => format!("tlp: {} -> {}", opt(&before.tlp), opt(&after.tlp)),
        Change::Affected(_) => {
            format!("affected: {} -> {}", list(&before.affected_versions), list(&after.affected_versions))
        }
        Change::Fixed(_) => format!("fixed: {} -> {}", list(&before.fixed_versions), list(&after.fixed_versions)),
        Change::Credit(_) | Change::Anonymous => {
            let c = |x: &Case| if x.credit.anonymous { "anonymous".into() } else { opt(&x.credit.name) };
            format!("credit: {} -> {}", c(before), c(after))
        }
        Change::Assignee(_) => format!("assignee: {} -> {}", opt(&before.assignee), opt(&after.assignee)),
        Change::Cve(_) => format!("cve: {} -> {}", opt(&before.cve), opt(&after.cve)),
        Change::Disclosure(_) => format!(
            "disclosure: {} -> {}",
            case_mod::rfc3339(&before.due.disclosure),
            case_mod::rfc3339(&after.due.disclosure)
        ),
        Change::Waiting(_) => {
            format!("waiting on reporter: {} -> {}", before.waiting_on_reporter, after.waiting_on_reporter)
        }
        Change::Exploited { .. } => format!("exploited: {} -> {}", before.cra.exploited, after.cra.exploited),
        Change::CraStage { stage, .. } => format!("cra {} filed", stage.as_str()),
    }
}
