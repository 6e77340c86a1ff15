//! Read-in on a case (SPEC-11 step 3): bringing a fixer, coordinator or observer from
//! outside the team into one case, from the CLI (`case readin`) or by signed mail
//! (`/readin add ROLE` with the cert attached). One rule for both ([`Pipeline::readin_entry`]):
//! a cert that can be encrypted to now, with an address; TLP:RED only with a forced
//! reason in the audit log. On joining, the person gets the case's summary so far, once,
//! encrypted to them alone; from then on `team_mail` sends them their own copy of the
//! case's follow-ups, reminders and confirmations until their entry expires, which the
//! SLA clock writes in the audit log once.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::Pipeline;
use crate::case::readin::{ReadIn, Role};
use crate::case::{Case, LogEntry, rfc3339};
use crate::mime::{self, build};
use crate::notify;
use crate::openpgp as pgp;
use crate::store::{Batch, MailKind, OutMail, Seal, StoredReadIn, Tx};

impl Pipeline {
    /// The read-in entry for `cert` on case `c`, and the audit line, or why not.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn readin_entry(
        &self,
        c: &Case,
        cert: &[u8],
        role: Role,
        expires: Option<DateTime<Utc>>,
        force: Option<&str>,
        by: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<(StoredReadIn, String), String> {
        let certs = pgp::parse_certs(cert);
        let [cert] = certs.as_slice() else {
            return Err(format!("expected one OpenPGP cert, found {}", certs.len()));
        };
        let fpr = cert.fingerprint().to_hex();
        pgp::can_encrypt(cert, now.into()).map_err(|e| format!("cert {fpr} cannot be encrypted to now: {e:#}"))?;
        if self.team_signers.iter().any(|t| t.fingerprint() == cert.fingerprint()) {
            return Err(format!("cert {fpr} is a team cert: the team gets the case's mail already"));
        }
        let uids = pgp::user_ids(cert, now.into());
        let entry = ReadIn { fingerprint: fpr.clone(), uids, role, by: by.to_owned(), at: now, expires };
        if entry.addresses().is_empty() {
            return Err(format!("cert {fpr} has no User ID with an e-mail address to send the case's mail to"));
        }
        if expires.is_some_and(|e| e <= now) {
            return Err("the expiry date is already past".into());
        }
        let red = c.tlp.as_deref() == Some("RED");
        let forced = force.map(str::trim).filter(|r| !r.is_empty());
        if red && forced.is_none() {
            return Err(format!(
                "case {} is TLP:RED: read someone in only after consulting the team, with --force and --reason TEXT \
                 (by mail: /readin add ROLE --force REASON)",
                c.id
            ));
        }
        let armored = pgp::armor_cert(cert).map_err(|e| format!("cert {fpr}: {e:#}"))?;
        let mut detail = format!(
            "{} {} ({}) read in, {}",
            role.as_str(),
            entry.uids.first().map(String::as_str).unwrap_or("-"),
            fpr,
            match expires {
                Some(e) => format!("until {}", rfc3339(&e)),
                None => "until removed".into(),
            }
        );
        if red && let Some(r) = forced {
            detail.push_str(&format!("; TLP:RED, forced: {r}"));
        }
        Ok((StoredReadIn { entry, armored }, detail))
    }

    /// The one summary so far a person read in gets: the case's summary, who is read
    /// in, encrypted to their cert alone.
    pub(super) fn readin_summary(&self, c: &Case, r: &StoredReadIn, now: DateTime<Utc>) -> Result<(OutMail, Seal)> {
        let full = self.store.case(&c.id)?.unwrap_or_else(|| c.clone());
        let full = Case { status: c.status, tlp: c.tlp.clone(), ..full };
        let cert = pgp::parse_certs(r.armored.as_bytes()).into_iter().next().context("read-in cert unreadable")?;
        let project = c.project.as_deref();
        let mut entries: Vec<ReadIn> = self.store.readins(&c.id)?.into_iter().map(|s| s.entry).collect();
        entries.retain(|e| e.fingerprint != r.entry.fingerprint);
        entries.push(r.entry.clone());
        let sha = full.messages.first().map(|m| m.sha256.clone()).unwrap_or_default();
        let body = format!(
            "You have been read in on {} as {} by {} (SPEC-11: the fixing team). Treat everything below as {}; \
             from now on you get the case's follow-ups, reminders and changes, encrypted to you.\n\n{}\n{}",
            c.id,
            r.entry.role.as_str(),
            r.entry.by,
            c.tlp.as_deref().map(|t| format!("TLP:{t}")).unwrap_or_else(|| "confidential".into()),
            notify::readin_lines(&entries, now),
            notify::summary_text(&full, &sha, &[])
        );
        let seed = mime::sha256_hex(format!("{}readin{}{}", c.id, r.entry.fingerprint, rfc3339(&now)).as_bytes());
        let h = self.headers(
            project,
            r.entry.addresses(),
            &format!("[{}] You are read in: {}", c.id, full.title),
            MailKind::ReadIn,
            &c.id,
            &seed,
            now,
        );
        let out = self.out_mail(&h, MailKind::ReadIn, &c.id, true, now);
        let keys = self.signer(project).clone();
        let outer = format!("[{}] You are read in", c.id);
        let seal: Seal = Box::new(move || {
            let inner = build::protected_text_part(&h, &body);
            let ct = keys.encrypt_and_sign(inner.as_bytes(), std::slice::from_ref(&cert), now.into())?;
            build::encrypted(&build::Headers { subject: outer, ..h }, &ct)
        });
        Ok((out, seal))
    }

    /// `case readin add`: reads `cert` in on `case_id`; returns its fingerprint.
    #[allow(clippy::too_many_arguments)]
    pub fn readin_add(
        &self,
        case_id: &str,
        cert: &[u8],
        role: Role,
        expires: Option<DateTime<Utc>>,
        force: Option<&str>,
        who: &str,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let tx = self.store.begin();
        let c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let (r, detail) =
            self.readin_entry(&c, cert, role, expires, force, who, now).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut b = Batch::default();
        let (out, seal) = self.readin_summary(&c, &r, now)?;
        b.put_out_sealed(&out, seal);
        b.put_readin(case_id, &r);
        b.put_log(
            case_id,
            self.store.log_len(case_id)?,
            &LogEntry { at: now, who: who.to_owned(), action: "readin-add".into(), detail, ..Default::default() },
        );
        tx.commit(b)?;
        tracing::info!(case = %case_id, fingerprint = %r.entry.fingerprint, "Read in");
        Ok(r.entry.fingerprint)
    }

    /// `case readin remove`.
    pub fn readin_remove(&self, case_id: &str, fingerprint: &str, who: &str, now: DateTime<Utc>) -> Result<()> {
        let tx = self.store.begin();
        let fpr = fingerprint.replace(' ', "").to_ascii_uppercase();
        if !self.store.readins(case_id)?.iter().any(|r| r.entry.fingerprint == fpr) {
            anyhow::bail!("{fpr} is not read in on {case_id}; see `secintake case readin list {case_id}`");
        }
        let mut b = Batch::default();
        b.remove_readin(case_id, &fpr);
        b.put_log(
            case_id,
            self.store.log_len(case_id)?,
            &LogEntry {
                at: now,
                who: who.to_owned(),
                action: "readin-remove".into(),
                detail: format!("{fpr} no longer read in"),
                ..Default::default()
            },
        );
        tx.commit(b)
    }

    /// The SLA clock's side: an entry that expired is written in the audit log, once.
    pub(super) fn note_expired_readins(&self, tx: &Tx, c: &Case, now: DateTime<Utc>) -> Result<()> {
        let entries = self.store.readins(&c.id)?;
        if entries.is_empty() {
            return Ok(());
        }
        let sent = self.store.reminders(&c.id)?;
        let mut b = Batch::default();
        let mut n = self.store.log_len(&c.id)?;
        for r in entries.iter().filter(|r| !r.entry.active(now)) {
            let marker = format!("readin-expired:{}", r.entry.fingerprint);
            if sent.contains(&marker) {
                continue;
            }
            b.put_reminder(&c.id, &marker);
            b.put_log(
                &c.id,
                n,
                &LogEntry {
                    at: now,
                    who: "secintake".into(),
                    action: "readin-expired".into(),
                    detail: format!(
                        "{} ({}) expired {}; no more mail to them",
                        r.entry.uids.first().map(String::as_str).unwrap_or("-"),
                        r.entry.fingerprint,
                        r.entry.expires.map(|e| rfc3339(&e)).unwrap_or_default()
                    ),
                    ..Default::default()
                },
            );
            n += 1;
        }
        if b.is_empty() { Ok(()) } else { tx.commit(b) }
    }
}
