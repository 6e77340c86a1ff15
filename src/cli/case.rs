//! `secintake case ...`: list and show cases.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;

use super::{Ctx, EXIT_OK, table, usage};
use crate::case::{Status, rfc3339};

#[derive(Subcommand, Debug)]
pub enum CaseCmd {
    /// List cases, next due first
    #[command(after_help = "Examples:\n  secintake case list\n  secintake case list --status new --json")]
    List {
        /// Only cases in this status (new, acknowledged, triaged, accepted, fixing, disclosed, closed, rejected)
        #[arg(long)]
        status: Option<String>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Show one case with its text and messages
    #[command(after_help = "Example:\n  secintake case show SEC-2026-0001 --json")]
    Show {
        /// The case id, e.g. SEC-2026-0001
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn execute(cmd: &CaseCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        CaseCmd::List { status, json } => {
            let filter = match status {
                Some(s) => Some(Status::parse(s).ok_or_else(|| {
                    usage(format!(
                        "unknown status {s:?}; use one of {}",
                        Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?),
                None => None,
            };
            let mut cases: Vec<_> = ctx.store.cases()?.into_iter().filter(|c| filter.is_none_or(|f| c.status == f)).collect();
            cases.sort_by(|a, b| a.next_due().cmp(&b.next_due()).then(a.id.cmp(&b.id)));
            if *json {
                let v: Vec<_> = cases.iter().map(|c| c.to_json(false)).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                let now = Utc::now();
                let rows: Vec<Vec<String>> = cases
                    .iter()
                    .map(|c| {
                        let due = c.next_due();
                        let mark = if due < now { "OVERDUE " } else { "" };
                        vec![
                            c.id.clone(),
                            c.status.as_str().into(),
                            c.signature.as_str().into(),
                            format!("{mark}{}", rfc3339(&due)),
                            c.reporter.address.clone(),
                            c.title.chars().take(60).collect(),
                        ]
                    })
                    .collect();
                table(out, &["ID", "STATUS", "SIGNATURE", "NEXT DUE", "REPORTER", "TITLE"], &rows)?;
            }
            Ok(EXIT_OK)
        }
        CaseCmd::Show { id, json } => {
            let c = ctx.store.case(id)?.ok_or_else(|| usage(format!("no case {id}; see `secintake case list`")))?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&c.to_json(true))?)?;
            } else {
                writeln!(out, "{}  [{}]  {}", c.id, c.status.as_str(), c.title)?;
                writeln!(out, "Reporter:   {} <{}>", c.reporter.name, c.reporter.address)?;
                writeln!(out, "Key:        {}", c.reporter.key_fingerprint.as_deref().unwrap_or("none"))?;
                writeln!(out, "Received:   {}", rfc3339(&c.received_at))?;
                writeln!(out, "Encrypted:  {}  decrypted: {}  signature: {}", c.encrypted, c.decrypted, c.signature.as_str())?;
                if let Some(cv) = &c.cvss {
                    writeln!(out, "CVSS {}:   {} {} ({})", cv.version, cv.score, cv.severity, cv.vector)?;
                }
                if !c.cwe.is_empty() {
                    writeln!(out, "CWE:        {}", c.cwe.join(", "))?;
                }
                if let Some(t) = &c.tlp {
                    writeln!(out, "TLP:        {t}")?;
                }
                match &c.ack {
                    Some(a) => writeln!(out, "Ack:        sent {} (encrypted: {})", rfc3339(&a.sent_at), a.encrypted)?,
                    None => writeln!(out, "Ack:        not sent yet")?,
                }
                writeln!(out, "Due:        ack {}  update {}  disclosure {}", rfc3339(&c.due.ack), rfc3339(&c.due.update), rfc3339(&c.due.disclosure))?;
                for a in &c.attachments {
                    writeln!(out, "Attachment: {}  {} bytes  {}  {}", a.name, a.size, a.content_type, a.sha256)?;
                }
                writeln!(out, "Messages:   {}", c.messages.len())?;
                writeln!(out, "\n{}", c.text)?;
            }
            Ok(EXIT_OK)
        }
    }
}
