//! `secintake mail ...`, `quarantine ...`, `sla`, `ingest`: what happened to each message.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;

use super::term::escape;
use super::{Ctx, EXIT_OK, table, usage};
use crate::case::rfc3339;

#[derive(Subcommand, Debug)]
pub enum MailCmd {
    /// Every message seen, with its disposition
    #[command(after_help = "Example:\n  secintake mail list --json")]
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One message's record
    #[command(after_help = "Example:\n  secintake mail show report-1@reporter.example")]
    Show {
        /// The Message-ID (without angle brackets) or sha256:<hex>
        message_id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Quarantined messages
    #[command(after_help = "Example:\n  secintake quarantine list --json")]
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One quarantine entry
    #[command(after_help = "Example:\n  secintake quarantine show Q-0123456789abcdef")]
    Show {
        /// The quarantine id, e.g. Q-0123456789abcdef
        qid: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Process a quarantined message again (after adding a key, say)
    #[command(after_help = "Example:\n  secintake quarantine retry Q-0123456789abcdef")]
    Retry {
        /// The quarantine id, e.g. Q-0123456789abcdef
        qid: String,
    },
}

pub fn execute_mail(cmd: &MailCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        MailCmd::List { json } => {
            let mails = ctx.store.mails()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&mails)?)?;
            } else {
                let rows: Vec<Vec<String>> = mails
                    .iter()
                    .map(|m| {
                        vec![
                            rfc3339(&m.received_at),
                            m.disposition.as_str().into(),
                            m.case_id.clone().or(m.quarantine_id.clone()).unwrap_or_else(|| "-".into()),
                            m.reason.clone().unwrap_or_else(|| "-".into()),
                            m.from.clone(),
                            m.message_id.clone(),
                        ]
                    })
                    .collect();
                table(out, &["RECEIVED", "DISPOSITION", "CASE/QID", "REASON", "FROM", "MESSAGE-ID"], &rows)?;
            }
            Ok(EXIT_OK)
        }
        MailCmd::Show { message_id, json } => {
            let key = message_id.trim().trim_start_matches('<').trim_end_matches('>');
            let m =
                ctx.store.mail(key)?.ok_or_else(|| usage(format!("no message {key}; see `secintake mail list`")))?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
            } else {
                writeln!(out, "Message-ID:  {}", escape(&m.message_id))?;
                writeln!(out, "Received:    {}", rfc3339(&m.received_at))?;
                writeln!(out, "From:        {}", escape(&m.from))?;
                writeln!(out, "SHA-256:     {}", escape(&m.sha256))?;
                writeln!(out, "Disposition: {}", m.disposition.as_str())?;
                if let Some(c) = &m.case_id {
                    writeln!(out, "Case:        {}", escape(c))?;
                }
                if let Some(q) = &m.quarantine_id {
                    writeln!(out, "Quarantine:  {}", escape(q))?;
                }
                if let Some(r) = &m.reason {
                    writeln!(out, "Reason:      {}", escape(r))?;
                }
            }
            Ok(EXIT_OK)
        }
    }
}

pub fn execute_quarantine(cmd: &QuarantineCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        QuarantineCmd::List { json } => {
            let q = ctx.store.quarantined()?;
            if *json {
                let v: Vec<_> = q
                    .iter()
                    .map(|e| {
                        let mut v = serde_json::to_value(e).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.remove("detail");
                        }
                        v
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let rows: Vec<Vec<String>> = q
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.clone(),
                            e.reason.to_string(),
                            rfc3339(&e.received_at),
                            e.from.clone(),
                            e.message_id.clone(),
                        ]
                    })
                    .collect();
                table(out, &["QID", "REASON", "RECEIVED", "FROM", "MESSAGE-ID"], &rows)?;
            }
            Ok(EXIT_OK)
        }
        QuarantineCmd::Show { qid, json } => {
            let e = ctx
                .store
                .quarantine(qid)?
                .ok_or_else(|| usage(format!("no quarantine entry {qid}; see `secintake quarantine list`")))?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?;
            } else {
                writeln!(out, "Quarantine:  {}", escape(&e.id))?;
                writeln!(out, "Reason:      {}", e.reason.as_str())?;
                writeln!(out, "Detail:      {}", escape(&e.detail))?;
                writeln!(out, "Message-ID:  {}", escape(&e.message_id))?;
                writeln!(out, "From:        {}", escape(&e.from))?;
                writeln!(out, "Received:    {}", rfc3339(&e.received_at))?;
                writeln!(out, "Encrypted:   {}", e.encrypted)?;
                writeln!(out, "SHA-256:     {}", escape(&e.sha256))?;
            }
            Ok(EXIT_OK)
        }
        QuarantineCmd::Retry { qid } => {
            if ctx.store.quarantine(qid)?.is_none() {
                return Err(usage(format!("no quarantine entry {qid}; see `secintake quarantine list`")));
            }
            let p = ctx.pipeline()?;
            let o = p.retry_quarantined(qid, Utc::now())?;
            let what = o.case_id.map(|c| format!(" {c}")).or(o.reason.map(|r| format!(" ({r})"))).unwrap_or_default();
            writeln!(out, "{}: {}{}", qid, o.disposition.as_str(), escape(&what))?;
            Ok(EXIT_OK)
        }
    }
}

/// One message from an MTA pipe (or a file). A message over `limits.max_message_bytes`
/// is refused (the pipeline would keep only its hash, and a piped message has no other
/// copy): the MTA bounces it to the sender with the reason.
pub fn ingest(ctx: &Ctx, raw: &[u8], out: &mut dyn Write) -> Result<i32> {
    let limit = ctx.cfg.limits.max_message_bytes;
    if raw.len() as u64 > limit {
        return Err(super::Exit(super::EXIT_DATAERR, super::too_large(raw.len() as u64, limit)).into());
    }
    let p = ctx.pipeline()?;
    let now = Utc::now();
    let o = p.ingest(raw, None, now, now)?;
    let target = o.case_id.clone().or(o.quarantine_id.clone()).unwrap_or_else(|| "-".into());
    let reason = o.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    writeln!(out, "{} {}{}", o.disposition.as_str(), escape(&target), escape(&reason))?;
    Ok(EXIT_OK)
}

/// Still open to an automatic close: missing fields, no reply since the request.
fn may_close(c: &crate::case::Case) -> bool {
    c.completeness.as_ref().is_some_and(|k| !k.missing.is_empty() && k.replied_at.is_none())
        && !matches!(
            c.status,
            crate::case::Status::Rejected | crate::case::Status::Closed | crate::case::Status::Disclosed
        )
}

pub fn sla(ctx: &Ctx, project: Option<&str>, json: bool, out: &mut dyn Write) -> Result<i32> {
    let project = super::project_arg(&ctx.cfg, project)?;
    let now = Utc::now();
    let mut items = Vec::new();
    for c in ctx.store.cases()? {
        if !super::in_project(&ctx.cfg, &c, project) {
            continue;
        }
        for (what, due) in c.deadlines() {
            items.push(serde_json::json!({
                "case_id": c.id, "what": what, "due": rfc3339(&due), "overdue": due < now,
            }));
        }
        // What `[policy] close_incomplete_after` closes in the next 48 hours.
        if let Some(at) = c.completeness.as_ref().and_then(|k| k.closes_at)
            && may_close(&c)
            && at <= now + chrono::Duration::hours(48)
        {
            items.push(serde_json::json!({
                "case_id": c.id, "what": "closes-incomplete", "due": rfc3339(&at), "overdue": at < now,
            }));
        }
    }
    items.sort_by(|a, b| a["due"].as_str().cmp(&b["due"].as_str()));
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
    } else {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|i| {
                vec![
                    i["case_id"].as_str().unwrap_or("").into(),
                    i["what"].as_str().unwrap_or("").into(),
                    i["due"].as_str().unwrap_or("").into(),
                    if i["overdue"].as_bool().unwrap_or(false) { "OVERDUE".into() } else { "".into() },
                ]
            })
            .collect();
        table(out, &["CASE", "WHAT", "DUE", ""], &rows)?;
    }
    Ok(EXIT_OK)
}

/// `secintake status`: the daemon's own view (through the socket) plus what the store
/// says; without a daemon, `running: false` and exit 1.
pub fn status(ctx: &Ctx, project: Option<&str>, json: bool, out: &mut dyn Write) -> Result<i32> {
    let project = super::project_arg(&ctx.cfg, project)?;
    let now = Utc::now();
    let queued = ctx.store.queued()?;
    let failed = ctx.store.failed()?.len();
    let oldest = queued.iter().map(|o| o.created_at).min();
    let quarantine = ctx.store.quarantine_count()?;
    let journal = ctx.store.journal_lag()?;
    // Counted one case at a time: this may run inside the daemon.
    let (mut cases, mut overdue) = (0usize, 0usize);
    let mut per_project: std::collections::BTreeMap<String, (usize, usize)> =
        ctx.cfg.project_names().into_iter().map(|n| (n.to_owned(), (0, 0))).collect();
    ctx.store.each_case(|c| {
        if !super::in_project(&ctx.cfg, &c, project) {
            return Ok(());
        }
        cases += 1;
        overdue += usize::from(c.overdue(now));
        let e =
            per_project.entry(c.project.clone().unwrap_or_else(|| ctx.cfg.default_project().to_owned())).or_default();
        e.0 += 1;
        e.1 += usize::from(c.overdue(now));
        Ok(())
    })?;
    let daemon = ctx.shared.as_ref().map(|s| s.status.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let v = serde_json::json!({
        "running": daemon.is_some(),
        "up_since": daemon.as_ref().map(|d| rfc3339(&d.up_since)),
        "last_imap_sync": daemon.as_ref().and_then(|d| d.last_imap_sync.as_ref().map(rfc3339)),
        "imap_connected": daemon.as_ref().map(|d| d.imap_connected),
        "idle": daemon.as_ref().map(|d| d.idle),
        "messages_waiting": daemon.as_ref().map(|d| d.messages_waiting),
        "last_reload": daemon.as_ref().and_then(|d| d.last_reload.as_ref().map(rfc3339)),
        "outbox_depth": queued.len(),
        "outbox_oldest": oldest.as_ref().map(rfc3339),
        "outbox_failed": failed,
        "quarantine_count": quarantine,
        "journal": {
            "pending": journal.pending,
            "oldest": journal.oldest.as_ref().map(rfc3339),
            "lag_seconds": journal.oldest.map(|o| (now - o).num_seconds().max(0)),
            "appended": journal.appended,
            "last_append": journal.appended_at.as_ref().map(rfc3339),
        },
        "sla_overdue": overdue,
        "cases": cases,
        "projects": per_project.iter().filter(|(n, _)| project.is_none_or(|p| p == n.as_str())).map(|(n, (c, o))| serde_json::json!({"name": n, "cases": c, "sla_overdue": o})).collect::<Vec<_>>(),
        "last_errors": daemon.as_ref().map(|d| serde_json::to_value(&d.last_errors).unwrap_or_default()).unwrap_or(serde_json::json!({})),
    });
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        match &daemon {
            Some(d) => writeln!(out, "secintake is running since {}", rfc3339(&d.up_since))?,
            None => writeln!(out, "secintake is not running (store read directly)")?,
        }
        if let Some(d) = &daemon {
            writeln!(
                out,
                "IMAP:        {} ({}), last sync {}",
                if d.imap_connected { "connected" } else { "disconnected" },
                if d.idle { "IDLE" } else { "polling" },
                d.last_imap_sync.as_ref().map(rfc3339).unwrap_or_else(|| "never".into())
            )?;
            writeln!(out, "Waiting:     {} message(s)", d.messages_waiting)?;
            for (task, e) in &d.last_errors {
                writeln!(out, "Last error:  {task} at {}: {}", rfc3339(&e.at), escape(&e.error))?;
            }
        }
        writeln!(
            out,
            "Outbox:      {} queued{}, {} failed",
            queued.len(),
            oldest.map(|o| format!(" (oldest {})", rfc3339(&o))).unwrap_or_default(),
            failed
        )?;
        writeln!(out, "Quarantine:  {quarantine}")?;
        writeln!(
            out,
            "Journal:     {} entr{} to append{}, last appended {}",
            journal.pending,
            if journal.pending == 1 { "y" } else { "ies" },
            journal
                .oldest
                .map(|o| format!(" (oldest {}, {} s behind)", rfc3339(&o), (now - o).num_seconds().max(0)))
                .unwrap_or_default(),
            journal.appended_at.as_ref().map(rfc3339).unwrap_or_else(|| "never".into())
        )?;
        writeln!(out, "SLA overdue: {overdue} case(s)")?;
        if per_project.len() > 1 {
            for (n, (c, o)) in per_project.iter().filter(|(n, _)| project.is_none_or(|p| p == n.as_str())) {
                writeln!(out, "Project:     {}: {c} case(s), {o} overdue", escape(n))?;
            }
        }
    }
    Ok(if daemon.is_some() { super::EXIT_OK } else { super::EXIT_FAIL })
}
