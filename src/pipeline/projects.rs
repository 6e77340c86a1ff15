//! What the team does to a case across projects: `case set --also-affects` (other
//! projects' teams are told, encrypted to their certs, and see the case) and `case move`
//! (a report sent to the wrong address becomes another project's). Both write the case,
//! its audit log and the team mail in one commit; neither ever writes to the reporter.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

use crate::case::{Case, LogEntry};
use crate::notify;
use crate::store::{Batch, MailKind};

impl super::Pipeline {
    /// `c` (a record without texts) with its texts read from the store.
    fn with_texts(&self, c: &crate::case::Case) -> Result<crate::case::Case> {
        let full = self.store.case(&c.id)?.with_context(|| format!("no case {}", c.id))?;
        Ok(crate::case::Case { text: full.text, messages: full.messages, ..c.clone() })
    }

    /// The name `--project`/`--also-affects` gave, checked: a `[[projects]]` name or the
    /// default project's.
    fn known_project<'a>(&'a self, name: &'a str) -> Result<&'a str> {
        if name == self.cfg.default_project() || self.cfg.project(Some(name)).is_some() {
            return Ok(name);
        }
        bail!("no project {name:?}; the projects are {}", self.cfg.project_names().join(", "))
    }

    /// `case set ID --also-affects NAME ...`: records the projects in
    /// `projects_affected` and sends each newly named project's team the case's summary
    /// (encrypted to that project's certs only). From then on every team mail about the
    /// case goes to their teams too, and `case list --project NAME` shows it. Names
    /// already recorded, or the case's own project, change nothing. Returns what changed.
    pub fn also_affects(&self, case_id: &str, names: &[String], who: &str, now: DateTime<Utc>) -> Result<String> {
        let tx = self.store.begin();
        let mut c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let own = c.project.clone().unwrap_or_else(|| self.cfg.default_project().to_owned());
        let mut added: Vec<String> = Vec::new();
        for n in names {
            let n = self.known_project(n)?;
            if n != own && !c.projects_affected.iter().any(|p| p == n) && !added.iter().any(|p| p == n) {
                added.push(n.to_owned());
            }
        }
        if added.is_empty() {
            bail!("{case_id} already concerns {}; nothing to change", names.join(", "));
        }
        c.projects_affected.extend(added.iter().cloned());
        // The summary carries the report's text; the record written back does not.
        let full = self.with_texts(&c)?;
        let sha = c.messages.first().map(|m| m.sha256.clone()).unwrap_or_default();
        let mut b = Batch::default();
        for name in &added {
            let lead = format!("{} (sent to {own}) also affects {name}; {who} added {name}'s team.", c.id);
            let subject = format!("[{}] Also affects {name}: {}", c.id, c.title);
            self.brief(&mut b, &c, &full, &sha, name, &lead, &subject, &format!("also-affects-{name}"), now)?;
        }
        let said = format!("projects_affected += {}", added.join(", "));
        b.put_case(&c);
        b.put_log(
            &c.id,
            self.store.log_len(&c.id)?,
            &LogEntry {
                at: now,
                who: who.to_owned(),
                action: "also-affects".into(),
                detail: said.clone(),
                ..Default::default()
            },
        );
        tx.commit(b)?;
        tracing::info!(case = %c.id, projects = %added.join(","), "Case also affects other projects");
        Ok(said)
    }

    /// Briefs `project`'s team on case `c` (its texts in `full`): the summary under
    /// `lead`, encrypted to that project's people only, into `b`.
    #[allow(clippy::too_many_arguments)]
    fn brief(
        &self,
        b: &mut Batch,
        c: &Case,
        full: &Case,
        sha: &str,
        project: &str,
        lead: &str,
        subject: &str,
        seed: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let body = format!("{lead}\n\n{}", notify::summary_text(full, sha, &self.team_warnings));
        for (out, seal) in self.team_mail_to(
            c,
            &[Some(project).filter(|n| *n != self.cfg.default_project())],
            MailKind::Summary,
            &format!("[{}] New report", c.id),
            subject,
            &body,
            now,
            seed,
            &[],
        )? {
            b.put_out_sealed(&out, seal);
        }
        Ok(())
    }

    /// `case move ID --project NAME`: the case becomes NAME's (a report sent to the wrong
    /// address). Its id, dates and thread stay what the reporter was told, and the
    /// reporter is told nothing new; NAME's team gets the summary, and from then on the
    /// case's team mail is NAME's. The audit log says who moved it from where.
    pub fn move_case(&self, case_id: &str, to: &str, who: &str, now: DateTime<Utc>) -> Result<String> {
        let tx = self.store.begin();
        let to = self.known_project(to)?.to_owned();
        let mut c = self.store.case_meta(case_id)?.with_context(|| format!("no case {case_id}"))?;
        let from = c.project.clone().unwrap_or_else(|| self.cfg.default_project().to_owned());
        if from == to {
            bail!("{case_id} is {to}'s already");
        }
        c.project = Some(to.clone());
        c.projects_affected.retain(|p| *p != to);
        let full = self.with_texts(&c)?;
        let sha = c.messages.first().map(|m| m.sha256.clone()).unwrap_or_default();
        let mut b = Batch::default();
        let lead = format!("{} was sent to {from} and is now {to}'s ({who} moved it).", c.id);
        let subject = format!("[{}] Moved from {from}: {}", c.id, c.title);
        self.brief(&mut b, &c, &full, &sha, &to, &lead, &subject, &format!("moved-{from}-{to}"), now)?;
        let said = format!("project {from} -> {to}");
        b.put_case(&c);
        b.put_log(
            &c.id,
            self.store.log_len(&c.id)?,
            &LogEntry {
                at: now,
                who: who.to_owned(),
                action: "moved".into(),
                detail: said.clone(),
                ..Default::default()
            },
        );
        tx.commit(b)?;
        tracing::info!(case = %c.id, from = %from, to = %to, "Case moved to another project");
        Ok(said)
    }
}
