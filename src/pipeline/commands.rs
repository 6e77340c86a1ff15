//! Commands by signed mail: a team member acts on a case from their mail client.
//!
//! A message whose text starts with a command line (`case::command::carries_commands`)
//! from a team address, or whose text is validly signed by a team cert, is a command
//! mail (anyone else's is a report or follow-up, whatever its first word); it is decided
//! here, once, into a [`CommandDecision`]: applied (every line parsed and applied to a
//! copy of the case, all or nothing) or rejected with the reason. The credential is the
//! OpenPGP signature, checked in one place ([`Pipeline::authenticate`]): the signatures
//! over the text the commands are read from, and only those (a signature over an
//! attachment or another part counts for nothing), all valid and by one cert in
//! `keys.team_certs` (or a project's `team_certs`, for that project's cases) that is
//! valid now, is not a list's shared key, and whose User IDs include the From address;
//! made at most `commands.max_age` before arrival, and never used by an applied command
//! before (its digest is stored). The case is the one the signed (or encrypted) part
//! names; an unsigned outer header naming another refuses the mail. Words of the team's
//! own (`/reply`, `/note`) need the mail encrypted to the intake key.
//!
//! What is recorded and logged of a refusal is its reason without any text of the mail
//! (a line number and a fixed reason); the list's encrypted notice alone quotes the line.
//!
//! Never applies a thing from a message that a team member did not sign; never tells
//! the sender of a refused mail anything (they may be an attacker): the list is told,
//! encrypted. Writes nothing itself: `record_command` writes what was decided.

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use super::classify::{Reading, TextPiece};
use super::decide::Identity;
use super::record::Commit;
use super::{Outcome, Pipeline};
use crate::case::change::Change;
use crate::case::command::{self, Command, Reply};
use crate::case::credit;
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
    /// None: a `keys.team_certs` cert (any case); Some: a project maintainer's, who
    /// acts only on cases that concern one of these projects.
    pub projects: Option<Vec<String>>,
    /// The signature's digest ([`pgp::Verification::digest`]): stored, so it is used once.
    pub digest: String,
}

/// What a command mail does, decided once.
pub(super) enum CommandDecision {
    Applied(Box<Applied>),
    /// Nothing applied. `case`: the case it named, if any (its list is told).
    /// `reason`: what is recorded and logged, no text of the mail in it; `detail`: the
    /// fuller reason for the list's encrypted notice (it may quote the line).
    Rejected {
        case: Option<Box<Case>>,
        reason: String,
        detail: Option<String>,
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
    /// The case's original before the mail (`duplicate:<id>`), and the one it links to
    /// now (the chain's root), for the credit rule (`pipeline::credit`).
    pub dup_before: Option<String>,
    pub original: Option<Case>,
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
        let team_address = self.command_signers().any(|(c, _)| pgp::has_address(c, &id.from));
        let team_signed = main.signatures.iter().any(|v| {
            v.verdict == Verdict::Good && v.signer.as_deref().is_some_and(|f| self.command_signer(f).is_some())
        });
        // Command words from anyone but the team (unsigned, or signed by a reporter)
        // are a report's words.
        if !team_address && !team_signed {
            return Ok(None);
        }
        let reject = |case: Option<Case>, reason: String, detail: Option<String>| {
            Ok(Some(CommandDecision::Rejected { case: case.map(Box::new), reason, detail }))
        };
        let case = self.command_case(env, reading, main)?;
        let named = match &case {
            Ok(c) => c.clone(),
            Err((c, _)) => c.clone(),
        };
        let signer = match self.authenticate(id, main, sys_now) {
            Ok(s) => s,
            Err(why) => return reject(named, why, None),
        };
        let case = match case {
            Ok(Some(c)) => c,
            Ok(None) => {
                return reject(
                    None,
                    "names no case: put [CASE-ID] in the Subject (protected, inside the signed or encrypted part) \
                     or reply to the case's summary or follow-up"
                        .into(),
                    None,
                );
            }
            Err((c, why)) => return reject(c, why, None),
        };
        if let Some(projects) = &signer.projects {
            let default = self.cfg.default_project();
            if !projects.iter().any(|p| case.concerns(p, default)) {
                return reject(
                    Some(case),
                    format!(
                        "signed by {}, a maintainer cert of project {} only, and this case does not concern it",
                        signer.fingerprint,
                        projects.join(", ")
                    ),
                    None,
                );
            }
        }
        let exists = |c: &str| self.store.case_meta(c).ok().flatten().is_some();
        let has_template = |t: &str| self.replies.has(t);
        let lines = match command::parse(&main.text, &case.id, &exists, &has_template) {
            Ok(l) => l,
            Err(e) => return reject(Some(case), e.to_string(), Some(e.detail())),
        };
        if !main.coverage.encrypted && lines.iter().any(|l| l.command.carries_text()) {
            return reject(
                Some(case),
                "carries words for the reporter or the log (/reply, /note) but was not encrypted to the intake key"
                    .into(),
                None,
            );
        }
        match self.apply_commands(id, &case, &lines, reading, signer, now) {
            Ok(a) => Ok(Some(CommandDecision::Applied(Box::new(a)))),
            Err((reason, detail)) => reject(Some(case), reason, Some(detail)),
        }
    }

    /// Who may sign a command mail: every `keys.team_certs` cert (scope None: any
    /// case) and every project's maintainer certs (scope: that project), except a cert
    /// bound to a list address (a list's shared key: whoever reads the list holds it).
    fn command_signers(&self) -> impl Iterator<Item = (&Cert, Option<&str>)> {
        let lists: Vec<&str> = std::iter::once(self.cfg.team_list_address.as_str())
            .chain(self.cfg.projects.iter().filter_map(|p| p.list_address.as_deref()))
            .collect();
        let team = self.team_signers.iter().map(|c| (c, None));
        let maintainers =
            self.projects.iter().flat_map(|(name, p)| p.team.iter().map(move |c| (c, Some(name.as_str()))));
        team.chain(maintainers).filter(move |(c, _)| !lists.iter().any(|l| pgp::has_address(c, l)))
    }

    /// The command signer with fingerprint `fpr`: its cert and the projects it is
    /// limited to (None: a team cert, any case).
    fn command_signer(&self, fpr: &str) -> Option<(&Cert, Option<Vec<String>>)> {
        let mut found: Option<(&Cert, Option<Vec<String>>)> = None;
        for (c, scope) in self.command_signers().filter(|(c, _)| c.fingerprint().to_hex() == fpr) {
            match (scope, &mut found) {
                (None, _) => return Some((c, None)),
                (Some(p), Some((_, Some(ps)))) => ps.push(p.to_owned()),
                (Some(p), _) => found = Some((c, Some(vec![p.to_owned()]))),
            }
        }
        found
    }

    /// The case a command mail acts on. What is inside the signed or encrypted part
    /// decides: its protected Subject, else the one case the signed text names (on its
    /// lines that are not commands). The unprotected outer In-Reply-To/References/Subject
    /// count only for encrypted mail that names no case inside (`Re: your report`,
    /// answering the summary); when they name a case other than the inside one the mail
    /// is refused (re-targeted on the way?), and signed-only mail must name it inside.
    /// Err((case, why)): refused, naming the case for the list's notice.
    #[allow(clippy::type_complexity)]
    fn command_case(
        &self,
        env: &mime::Envelope,
        reading: &Reading,
        main: &TextPiece,
    ) -> anyhow::Result<Result<Option<Case>, (Option<Case>, String)>> {
        let prefixes = self.cfg.prefixes();
        let known = |i: &str| -> anyhow::Result<Option<Case>> { self.store.case_meta(i) };
        let covered = if main.coverage.encrypted { &reading.protected_subject } else { &reading.signed_subject };
        let inside_subject = covered.as_deref().and_then(|s| prefixes.iter().find_map(|p| case_mod::find_id(p, s)));
        let inside = match inside_subject {
            Some(i) => Some(i),
            None if main.coverage.signed => {
                // The ids the signed text names, on its lines that are not commands
                // (`/reject duplicate ID` names another case).
                let mut ids: Vec<String> = Vec::new();
                for l in main.text.lines().take(command::MAX_SCAN_LINES) {
                    if command::is_command_line(l) {
                        continue;
                    }
                    for p in &prefixes {
                        if let Some(i) = case_mod::find_id(p, l)
                            && !ids.contains(&i)
                            && known(&i)?.is_some()
                        {
                            ids.push(i);
                        }
                    }
                    if ids.len() > 1 {
                        break;
                    }
                }
                if ids.len() > 1 {
                    return Ok(Err((
                        None,
                        format!(
                            "the signed text names more than one case ({}, ...); name the case in the Subject",
                            ids.join(", ")
                        ),
                    )));
                }
                ids.pop()
            }
            None => None,
        };
        let outside = self.follow_up_target(env)?;
        match (inside, outside) {
            (Some(i), Some(o)) if i != o => {
                let c = known(&i)?;
                Ok(Err((
                    c,
                    format!(
                        "the unprotected Subject/References name {o} but the signed or encrypted part names {i} \
                         (altered on the way?)"
                    ),
                )))
            }
            (Some(i), _) => Ok(Ok(known(&i)?)),
            (None, Some(o)) if main.coverage.encrypted => Ok(Ok(known(&o)?)),
            (None, Some(o)) => Ok(Err((
                known(&o)?,
                format!(
                    "not encrypted, and the signed part names no case ({o} is named only in the unsigned headers): \
                     name it in the signed part (protected Subject, or the text) or encrypt the mail"
                ),
            ))),
            (None, None) => Ok(Ok(None)),
        }
    }

    /// The one check of a command mail's credential (see the module doc): the signer,
    /// or why the mail applies nothing. Only the signatures over `main`, the text the
    /// commands are read from, count.
    fn authenticate(&self, id: &Identity, main: &TextPiece, now: std::time::SystemTime) -> Result<Signer, String> {
        let sigs = &main.signatures;
        let team = |fpr: &str| -> Option<&Cert> { self.command_signer(fpr).map(|(c, _)| c) };
        if sigs.is_empty() || !main.coverage.signed {
            return Err("not signed: a command mail's text must be signed by the sender's team cert".into());
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
        // Every signature over the text must be a good one: a second signer we cannot
        // check is not vouched for by the team.
        if let Some(other) = sigs.iter().find(|v| v.verdict != Verdict::Good) {
            let issuer = other.signer.clone().unwrap_or_else(|| "unknown".into());
            return Err(format!("signed by a cert that is not a team cert ({issuer})"));
        }
        let good = &sigs[0];
        if sigs.iter().any(|v| v.signer != good.signer) {
            return Err("signed by more than one cert; sign with your team cert alone".into());
        }
        let fpr = good.signer.clone().unwrap_or_default();
        let Some((cert, projects)) = self.command_signer(&fpr) else {
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
        // Fails closed: a store that cannot say whether the signature was used applies
        // nothing.
        match self.store.command_signature(&digest) {
            Ok(Some(earlier)) if earlier != id.key => {
                return Err(format!(
                    "a replay: this signature was already used by the applied command mail <{earlier}>"
                ));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Replay check failed; command mail refused");
                return Err("the replay check could not read the store; send it again later".into());
            }
        }
        Ok(Signer { address: id.from.to_ascii_lowercase(), fingerprint: fpr, projects, digest })
    }

    /// Applies every line to a copy of `case`, in order; the first that fails fails
    /// them all: Err((reason, detail)), the reason without text of the mail (the line
    /// number and command), the detail with why (for the list's notice).
    fn apply_commands(
        &self,
        id: &Identity,
        case: &Case,
        lines: &[command::Line],
        reading: &Reading,
        signer: Signer,
        now: DateTime<Utc>,
    ) -> Result<Applied, (String, String)> {
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
            dup_before: credit::duplicate_of(case).map(str::to_owned),
            original: None,
        };
        let project = self.cfg.policy_of(c.project.as_deref()).project.clone();
        for l in lines {
            let fail = |why: String| (format!("line {}: /{} not applied", l.n, l.name), format!("line {}: {why}", l.n));
            match &l.command {
                Command::Change(ch) => {
                    let before = c.clone();
                    let line = ch.apply(&mut c, now).map_err(fail)?;
                    // A duplicate link by mail follows the CLI's credit rule: the chain's
                    // root is the original, and a case received first is not made its
                    // duplicate here (`case set --swap` or `--force` decide that).
                    if let Some(y) = credit::duplicate_of(&c).map(str::to_owned)
                        && credit::duplicate_of(&before) != Some(y.as_str())
                    {
                        let root = super::credit::root_original(&self.store, &y, &c.id)
                            .map_err(|e| fail(format!("/reject duplicate {e:#}")))?;
                        if credit::came_first(&c, &root).is_some() {
                            return Err(fail(format!(
                                "{} was received before {}: its reporter came first; decide with `secintake case \
                                 set {} --status rejected --reason duplicate --duplicate-of {} --swap` (or --force)",
                                c.id, root.id, c.id, root.id
                            )));
                        }
                        if root.id != y {
                            c.reject_reason =
                                Some(case_mod::change::reject_reason("duplicate", Some(&root.id)).map_err(fail)?);
                        }
                        a.original = Some(root);
                    }
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
                    // Only a cert inside what the signer alone signed (never one beside
                    // it, or in a part another key signed).
                    let vouched = reading.signed_keys(signer_fpr);
                    let certs: Vec<&Vec<u8>> = vouched
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
                let mut a = *a;
                if a.dup_before.as_deref() != credit::duplicate_of(&a.case) {
                    let signer = a.signer.clone();
                    let entry = |detail: String| LogEntry {
                        at: now,
                        who: signer.address.clone(),
                        action: "set".into(),
                        detail,
                        by: Some(signer.address.clone()),
                        by_fingerprint: Some(signer.fingerprint.clone()),
                        via: Some(id.key.clone()),
                    };
                    super::credit::relink(
                        &self.store,
                        &mut ctx.batch,
                        &mut a.case,
                        a.dup_before.as_deref(),
                        a.original.take(),
                        &entry,
                    )?;
                }
                // Findable as a `case set` or `case note` makes it: the case's fields, its notes.
                super::search::index_case(&self.store, &mut ctx.batch, &a.case, usize::MAX)?;
                let notes: Vec<&str> = a.log.iter().filter(|e| e.action == "note").map(|e| e.detail.as_str()).collect();
                if !notes.is_empty() {
                    super::search::index_notes(&self.store, &mut ctx.batch, &a.case.id, &notes.join("\n"))?;
                }
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
                // Who changed it travels only inside the encryption.
                let outer = format!("[{}] Changed", c.id);
                let subject = format!("[{}] Changed by {}", c.id, a.signer.address);
                let thread: Vec<String> = id.env.references.iter().cloned().chain(id.env.message_id.clone()).collect();
                for (out, seal) in
                    self.team_mail_in_thread(c, MailKind::Confirmation, &outer, &subject, &body, now, &id.sha, &thread)?
                {
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
            CommandDecision::Rejected { case, reason, detail } => {
                let case_id = case.as_ref().map(|c| c.id.clone());
                let rec = ctx.record(Disposition::CommandRejected, case_id.clone(), None, Some(reason.clone()));
                let mut body =
                    notify::rejected_text(case_id.as_deref(), &id.from, &id.key, detail.as_deref().unwrap_or(&reason));
                // At most NOTICES_PER_HOUR notices an hour for the case (or the intake)
                // and as many for the sender: one forger cannot flood the list by
                // naming many cases, nor many forgers by naming one.
                let scope = case_id.clone().unwrap_or_else(|| "intake".into());
                let sender = format!("sender-{}", &mime::sha256_hex(id.from.to_ascii_lowercase().as_bytes())[..16]);
                let hour = format!("cmdrej:{}:", now.format("%Y%m%d%H"));
                let count = |scope: &str| -> anyhow::Result<usize> {
                    Ok(self.store.reminders(scope)?.iter().filter(|k| k.starts_with(&hour)).count())
                };
                let (told, told_sender) = (count(&scope)?, count(&sender)?);
                let tell = told < NOTICES_PER_HOUR && told_sender < NOTICES_PER_HOUR;
                if tell {
                    ctx.batch.put_reminder(&scope, &format!("{hour}{told}"));
                    ctx.batch.put_reminder(&sender, &format!("{hour}{told_sender}"));
                }
                if tell && (told + 1 == NOTICES_PER_HOUR || told_sender + 1 == NOTICES_PER_HOUR) {
                    let whom = if told + 1 == NOTICES_PER_HOUR { "it" } else { "this sender" };
                    body.push_str(&format!(
                        "\nThis is refusal {NOTICES_PER_HOUR} of this hour for {whom}:\n\
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
                // The reason holds no text of the mail (a line number and a fixed
                // reason); the notice alone, encrypted, quotes the line.
                tracing::warn!(case = ?case_id, reason = %reason, "Command mail refused");
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
