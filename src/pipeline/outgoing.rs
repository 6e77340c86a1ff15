//! Outgoing: the mail a message causes (acknowledgement, team summary and follow-up,
//! cannot-read notice) and the pieces every outgoing mail shares (headers, the outbox
//! record, the rate limits). A mail is planned here as its [`OutMail`] record and a
//! [`Seal`] that makes its bytes (sign, encrypt) when its batch is recorded.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use super::{ACK_HELD, Pipeline};
use crate::case::Case;
use crate::mime::{self, build};
use crate::notify;
use crate::openpgp as pgp;
use crate::store::{Batch, MailKind, OutMail, OutStatus, Seal};

impl Pipeline {
    /// Queues a new case's acknowledgement, unless we must not answer; returns why
    /// not, for the case's audit log (and the team summary). An ack held by the rate
    /// limits is marked for the SLA clock, which sends it once the window opens.
    pub(super) fn queue_ack(
        &self,
        b: &mut Batch,
        case: &Case,
        env: &mime::Envelope,
        sha: &str,
        reporter_cert: Option<&Cert>,
        now: DateTime<Utc>,
    ) -> Result<Option<&'static str>> {
        if let Some(why) = self.ack_refusal(&case.reporter.address, now)? {
            tracing::info!(case = %case.id, reason = why, "No acknowledgement sent");
            if why.starts_with("limits.") {
                // Held, not dropped: the SLA clock sends it once the window opens, or
                // records that it gave up when the ack falls due.
                b.put_reminder(&case.id, ACK_HELD);
            }
            return Ok(Some(why));
        }
        match self.ack_mail(case, env, sha, reporter_cert, now) {
            Ok((out, seal)) => {
                b.put_out_sealed(&out, seal);
                Ok(None)
            }
            Err(e) => {
                // A cert Sequoia cannot encrypt to, an expired signing key: the case
                // still opens; the missing ack is recorded and shows in `sla`.
                tracing::error!(case = %case.id, error = %format!("{e:#}"), "Acknowledgement could not be built");
                Ok(Some("the acknowledgement could not be built (see the daemon log)"))
            }
        }
    }

    /// The team's summary of a new case, with what the team should know about the
    /// load (skipped team certs) and the report (truncated lists).
    pub(super) fn summary_mail(
        &self,
        case: &Case,
        warnings: &[String],
        sha: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(OutMail, Seal)>> {
        // A likely duplicate is the first thing the team reads.
        let summary = format!(
            "{}{}",
            super::dupes::summary_line(case, self.cfg.triage.duplicate_threshold).unwrap_or_default(),
            notify::summary_text(case, sha, &[&self.team_warnings[..], warnings].concat())
        );
        // Exploited in the wild: the list must see it at once, paused or not.
        let urgent = if case.flags.contains(&crate::triage::Flag::Exploited) { "URGENT: " } else { "" };
        self.team_mail(
            case,
            MailKind::Summary,
            &format!("[{}] {urgent}New report", case.id),
            &format!("[{}] {}", case.id, case.title),
            &summary,
            now,
            sha,
        )
    }

    /// The team's copy of a follow-up (the case already holds it); one from a third
    /// party says so in its subject.
    pub(super) fn follow_up_mail(
        &self,
        case: &Case,
        third_party: bool,
        from: &str,
        sha: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(OutMail, Seal)>> {
        let (outer, inner_subject) = if third_party {
            (
                format!("[{}] Follow-up from a third party", case.id),
                format!("[{}] Follow-up from {from} (not the reporter): {}", case.id, case.title),
            )
        } else {
            (format!("[{}] Follow-up from reporter", case.id), format!("[{}] Follow-up: {}", case.id, case.title))
        };
        let mut body = case.messages.last().map(|m| notify::followup_text(case, m)).unwrap_or_default();
        let readins: Vec<_> = self.store.readins(&case.id)?.into_iter().map(|r| r.entry).collect();
        if !readins.is_empty() {
            body.push('\n');
            body.push_str(&notify::readin_lines(&readins, now));
        }
        self.team_mail(case, MailKind::Followup, &outer, &inner_subject, &body, now, sha)
    }

    /// The team's mail when the reporter completed the report.
    pub(super) fn completed_mail(&self, case: &Case, sha: &str, now: DateTime<Utc>) -> Result<Vec<(OutMail, Seal)>> {
        self.team_mail(
            case,
            MailKind::Completed,
            &format!("[{}] Report completed", case.id),
            &format!("[{}] Report completed: {}", case.id, case.title),
            &notify::completed_text(case),
            now,
            sha,
        )
    }

    /// A mail to a case's reporter, threaded to the case: encrypted and signed when their
    /// cert is known (the keyring's, else the one held), else signed only. `team_text`:
    /// the body carries the team's own words, which never go unencrypted for TLP:AMBER and
    /// above. Returns the record, the bytes, and whether it is encrypted.
    pub(super) fn reporter_mail(
        &self,
        c: &Case,
        kind: MailKind,
        subject: &str,
        text: &str,
        team_text: bool,
        now: DateTime<Utc>,
    ) -> Result<(OutMail, Vec<u8>, bool)> {
        let case_id = &c.id;
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
        if cert.is_none() && strict_tlp && team_text {
            anyhow::bail!(
                "case {case_id} is TLP:{} and the reporter's key is unknown: a reply would go unencrypted; \
                 add their key to keys.keyring first",
                c.tlp.as_deref().unwrap_or("")
            );
        }
        let seed =
            mime::sha256_hex(format!("{case_id}{kind}{}{text}", now.timestamp_nanos_opt().unwrap_or(0)).as_bytes());
        let project = c.project.as_deref();
        let keys = self.signer(project);
        let mut h = self.headers(project, vec![to.clone()], subject, kind, case_id, &seed, now);
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
                let ct = keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(k), sys_now)?;
                (build::encrypted(&h, &ct)?, true)
            }
            None => {
                let part = build::text_part(text, "");
                (build::signed(&h, &part, |d| keys.sign_detached(d, sys_now))?, false)
            }
        };
        let out = self.out_mail(&h, kind, case_id, encrypted, now);
        Ok((out, raw, encrypted))
    }

    /// A team list of ours: the shared one or a project's.
    pub(super) fn is_team_list(&self, a: &str) -> bool {
        a.eq_ignore_ascii_case(&self.cfg.team_list_address)
            || self.cfg.projects.iter().any(|p| p.list_address.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(a)))
    }

    /// Any address of ours: an intake address (a project's too, plus-addressed or not) or
    /// a team list. Never answered: mail loops.
    pub(super) fn is_own_address(&self, a: &str) -> bool {
        let a = a.to_ascii_lowercase();
        let intake = self.cfg.intake.address.to_ascii_lowercase();
        let plus = intake.split_once('@').is_some_and(|(l, d)| {
            a.rsplit_once('@').is_some_and(|(al, ad)| ad == d && al.starts_with(&format!("{l}+")))
        });
        a == intake || plus || self.is_team_list(&a) || self.cfg.projects.iter().any(|p| p.addresses.contains(&a))
    }

    /// Why no ack may go to `to`, if so: loops (RFC 3834) and rate limits.
    pub(super) fn ack_refusal(&self, to: &str, now: DateTime<Utc>) -> Result<Option<&'static str>> {
        if to.is_empty() || !crate::config::valid_address(to) {
            return Ok(Some("no usable From address"));
        }
        if self.is_own_address(to) {
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

    /// The headers of a mail of `project` (None: the default project): From its address,
    /// named after it, with the Autocrypt header of the key that signs for it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn headers(
        &self,
        project: Option<&str>,
        to: Vec<String>,
        subject: &str,
        kind: MailKind,
        case_id: &str,
        sha: &str,
        now: DateTime<Utc>,
    ) -> build::Headers {
        let from = self.cfg.address_of(project).to_owned();
        let autocrypt = self.signer(project).public_cert_bytes().map(|k| build::autocrypt_value(&from, k));
        build::Headers {
            from_name: format!("{} Security", self.cfg.policy_of(project).project),
            from,
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
            reply_to: None,
        }
    }

    pub(super) fn ack_mail(
        &self,
        case: &Case,
        env: &mime::Envelope,
        sha: &str,
        reporter_cert: Option<&Cert>,
        now: DateTime<Utc>,
    ) -> Result<(OutMail, Seal)> {
        let project = case.project.as_deref();
        let mut h = self.headers(
            project,
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
        let signer = self.signer(project);
        signer.can_sign(sys_now)?;
        let usable = reporter_cert.filter(|c| pgp::can_encrypt(c, sys_now).is_ok()).cloned();
        let fpr = signer.fingerprint().to_hex();
        let encrypted = usable.is_some();
        let body = self.templates.ack(case, self.cfg.policy_of(project), sha, &fpr, encrypted);
        let keys = signer.clone();
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

    /// Where a project's team mail goes, and to whose certs: the shared list (`[team]
    /// list_address`, to the `keys.team_certs`, plus the project's own maintainers when it
    /// has no list of its own), and the project's own list (to its `team_certs`, else the
    /// shared ones), the shared copy left out when `[team] shared_list = false`. A cert
    /// only in one project's `team_certs` is never a target of another project's.
    fn team_targets(&self, project: Option<&str>) -> Vec<(String, Vec<Cert>)> {
        let own = self.cfg.project(project);
        let maintainers = project.and_then(|p| self.projects.get(p)).map(|p| p.team.clone());
        let mut targets: Vec<(String, Vec<Cert>)> = Vec::new();
        match own.and_then(|p| p.list_address.clone()) {
            Some(list) => {
                if self.cfg.shared_list {
                    targets.push((self.cfg.team_list_address.clone(), self.team.to_vec()));
                }
                let certs = maintainers.filter(|m| !m.is_empty()).unwrap_or_else(|| self.team.clone());
                targets.push((list, certs.to_vec()));
            }
            None => {
                let mut certs = self.team.to_vec();
                certs.extend(maintainers.iter().flat_map(|m| m.iter()).cloned());
                targets.push((self.cfg.team_list_address.clone(), certs));
            }
        }
        targets
    }

    /// Encrypted mail to the team about a case; nothing is ever sent to a team
    /// unencrypted (no usable cert: that mail is not sent). Sealed when its batch is
    /// recorded. It goes to the teams of every project the case concerns: the one it was
    /// sent to and those it also affects ([`Pipeline::team_mail_to`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn team_mail(
        &self,
        case: &Case,
        kind: MailKind,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
    ) -> Result<Vec<(OutMail, Seal)>> {
        self.team_mail_in_thread(case, kind, outer_subject, inner_subject, body, now, seed, &[])
    }

    /// [`Self::team_mail`] threaded under `thread` (Message-IDs, oldest first; the last
    /// is the one answered).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn team_mail_in_thread(
        &self,
        case: &Case,
        kind: MailKind,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
        thread: &[String],
    ) -> Result<Vec<(OutMail, Seal)>> {
        let projects: Vec<Option<&str>> = std::iter::once(case.project.as_deref())
            .chain(case.projects_affected.iter().map(|p| Some(p.as_str())))
            .collect();
        self.team_mail_to(case, &projects, kind, outer_subject, inner_subject, body, now, seed, thread)
    }

    /// Team mail about a case to the teams of `projects` only (None: the default
    /// project): one mail per list, encrypted to the certs of every one of those
    /// projects that list serves ([`Pipeline::team_targets`]), never to anyone else's.
    /// Every team mail carries `Reply-To:` its list, so a casual reply reaches the team's
    /// discussion, not the intake. The case's read-in people (`case readin`) get their
    /// own copy of follow-ups, reminders, completions and confirmations, encrypted to
    /// their cert alone (never unencrypted).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn team_mail_to(
        &self,
        case: &Case,
        projects: &[Option<&str>],
        kind: MailKind,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
        thread: &[String],
    ) -> Result<Vec<(OutMail, Seal)>> {
        let project = case.project.as_deref();
        // One mail per list; a list two projects share gets one, to both's certs.
        let mut targets: Vec<(String, Vec<Cert>)> = Vec::new();
        for p in projects {
            for (list, certs) in self.team_targets(*p) {
                let at = match targets.iter().position(|(l, _)| l.eq_ignore_ascii_case(&list)) {
                    Some(i) => i,
                    None => {
                        targets.push((list, Vec::new()));
                        targets.len() - 1
                    }
                };
                let have = &mut targets[at].1;
                for c in certs {
                    if !have.iter().any(|k| k.fingerprint() == c.fingerprint()) {
                        have.push(c);
                    }
                }
            }
        }
        // The act-by-reply lines end the list's summaries and follow-ups, with
        // `[commands] enabled` only; never a read-in copy (a fixer cannot command).
        let list_body = if self.cfg.commands.enabled && matches!(kind, MailKind::Summary | MailKind::Followup) {
            format!("{body}{}", notify::command_hint(&case.id, self.cfg.address_of(project)))
        } else {
            body.to_owned()
        };
        let mut out = Vec::new();
        for (list, certs) in targets {
            // Certs are checked again at the time of use: one may have expired since load.
            let team: Arc<Vec<Cert>> =
                Arc::new(certs.into_iter().filter(|c| pgp::can_encrypt(c, now.into()).is_ok()).collect());
            if team.is_empty() {
                tracing::warn!(case = %case.id, "No usable team cert: team mail not sent");
                continue;
            }
            let seed = mime::sha256_hex(format!("{}{kind}{seed}{list}", case.id).as_bytes());
            let mut h = self.headers(project, vec![list.clone()], inner_subject, kind, &case.id, &seed, now);
            h.reply_to = Some(list);
            h.in_reply_to = thread.last().cloned();
            h.references = thread.to_vec();
            let mail = self.out_mail(&h, kind, &case.id, true, now);
            let keys = self.signer(project).clone();
            let (body, outer_subject) = (list_body.clone(), outer_subject.to_owned());
            out.push((
                mail,
                Box::new(move || {
                    let inner = build::protected_text_part(&h, &body);
                    let ct = keys.encrypt_and_sign(inner.as_bytes(), &team, now.into())?;
                    // The real subject travels only inside the encryption.
                    let h = build::Headers { subject: outer_subject, ..h };
                    build::encrypted(&h, &ct)
                }) as Seal,
            ));
        }
        if matches!(kind, MailKind::Followup | MailKind::Reminder | MailKind::Completed | MailKind::Confirmation) {
            out.extend(self.readin_copies(case, kind, outer_subject, inner_subject, body, now, seed, thread)?);
        }
        Ok(out)
    }

    /// A copy of a team mail for each person read in on the case whose entry is active
    /// at `now`, to their addresses, encrypted to their cert alone.
    #[allow(clippy::too_many_arguments)]
    fn readin_copies(
        &self,
        case: &Case,
        kind: MailKind,
        outer_subject: &str,
        inner_subject: &str,
        body: &str,
        now: DateTime<Utc>,
        seed: &str,
        thread: &[String],
    ) -> Result<Vec<(OutMail, Seal)>> {
        let project = case.project.as_deref();
        let mut out = Vec::new();
        for r in self.store.readins(&case.id)? {
            if !r.entry.active(now) {
                continue;
            }
            let to = r.entry.addresses();
            let Some(cert) = pgp::parse_certs(r.armored.as_bytes()).into_iter().next() else { continue };
            if to.is_empty() || pgp::can_encrypt(&cert, now.into()).is_err() {
                tracing::warn!(case = %case.id, fingerprint = %r.entry.fingerprint, "Read-in cert unusable: no copy sent");
                continue;
            }
            let seed = mime::sha256_hex(format!("{}{kind}{seed}{}", case.id, r.entry.fingerprint).as_bytes());
            let mut h = self.headers(project, to, inner_subject, kind, &case.id, &seed, now);
            h.in_reply_to = thread.last().cloned();
            h.references = thread.to_vec();
            let mail = self.out_mail(&h, kind, &case.id, true, now);
            let keys = self.signer(project).clone();
            let (body, outer_subject) = (body.to_owned(), outer_subject.to_owned());
            out.push((
                mail,
                Box::new(move || {
                    let inner = build::protected_text_part(&h, &body);
                    let ct = keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(&cert), now.into())?;
                    let h = build::Headers { subject: outer_subject, ..h };
                    build::encrypted(&h, &ct)
                }) as Seal,
            ));
        }
        Ok(out)
    }

    pub(super) fn out_mail(
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
            // Bounces come back to the address the mail came from.
            envelope_from: h.from.clone(),
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

    pub(super) fn cannot_read_mail(
        &self,
        env: &mime::Envelope,
        sha: &str,
        received_at: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(OutMail, Vec<u8>)> {
        let to = env.from_address.clone().unwrap_or_default();
        let seed = format!("unread{sha}");
        // From the project it was sent to, with that project's key.
        let project = self.cfg.project_for(env.delivered_to.iter().map(String::as_str)).map(|p| p.name.clone());
        let project = project.as_deref();
        let keys = self.signer(project).clone();
        let mut h = self.headers(
            project,
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
        let policy = self.cfg.policy_of(project);
        let body = notify::cannot_read_text(&notify::CannotRead {
            project: &policy.project,
            intake: self.cfg.address_of(project),
            received_at: &received_at,
            sha256: sha,
            why: reason,
            fingerprint: &keys.fingerprint().to_hex(),
            key_url: policy.security_txt_url.as_deref(),
            public_key: &keys.public_armored()?,
        });
        let part = build::text_part(&body, "");
        let sys_now: SystemTime = now.into();
        let mail = build::signed(&h, &part, |data| keys.sign_detached(data, sys_now))?;
        let mut out = self.out_mail(&h, MailKind::CannotRead, "", false, now);
        out.case_id = None;
        Ok((out, mail))
    }
}
