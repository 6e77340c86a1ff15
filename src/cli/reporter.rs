//! `secintake reporter ...`: a reporter's history (cases, outcomes, cert, contact) and
//! blocks. The history is one walk over the cases (a command, never per message).

use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;

use super::term::escape;
use super::{Ctx, EXIT_OK, table, usage};
use crate::case::{change, rfc3339};
use crate::pipeline::reporters::{self, History};

#[derive(Subcommand, Debug)]
pub enum ReporterCmd {
    /// Every case of an address with its status and rejection reason, counts by
    /// outcome, the cert held, first and last contact, the block if any
    #[command(after_help = "Example:\n  secintake reporter show alice@example.org --json")]
    Show {
        /// The reporter's mail address
        address: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Every reporter with counts by outcome, most rejected first
    #[command(after_help = "Example:\n  secintake reporter list --json")]
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Block an address: its reports are recorded, rejected (reason blocked), not
    /// acknowledged and not summarised; one notice a block period
    #[command(
        after_help = "Examples:\n  secintake reporter block spam@example.net --reason 'AI slop, 12 invalid reports'\n  \
                  secintake reporter block x@example.net --reason 'repeated invalid reports' --until 2027-06-01"
    )]
    Block {
        /// The address to block
        address: String,
        /// Why (kept in the blocks' audit log and shown to the team)
        #[arg(long)]
        reason: String,
        /// The block ends then (YYYY-MM-DD or RFC 3339) [default: until unblocked]
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Who blocks [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// Lift a block
    #[command(after_help = "Example:\n  secintake reporter unblock x@example.net --reason 'appeal accepted'")]
    Unblock {
        /// The blocked address
        address: String,
        /// Why (kept in the blocks' audit log)
        #[arg(long, default_value = "")]
        reason: String,
        /// Who unblocks [default: the OS user]
        #[arg(long = "as", value_name = "NAME")]
        who: Option<String>,
    },
    /// The blocks' audit log: every block and unblock with who, when and why
    #[command(after_help = "Example:\n  secintake reporter log --json")]
    Log {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

fn counts(h: &History) -> String {
    h.counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

pub fn execute(cmd: &ReporterCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    let now = Utc::now();
    match cmd {
        ReporterCmd::Show { address, json } => {
            let all = reporters::histories(&ctx.store, now)?;
            let h = all
                .into_iter()
                .find(|h| h.address.eq_ignore_ascii_case(address))
                .ok_or_else(|| usage(format!("no case or block for {address}; see `secintake reporter list`")))?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&h)?)?;
                return Ok(EXIT_OK);
            }
            writeln!(out, "Reporter:   {}", escape(&h.address))?;
            writeln!(out, "Cases:      {} ({})", h.cases.len(), counts(&h))?;
            writeln!(out, "Cert:       {}", escape(h.cert.as_deref().unwrap_or("none")))?;
            let t = |x: Option<chrono::DateTime<Utc>>| x.map(|t| rfc3339(&t)).unwrap_or_else(|| "-".into());
            writeln!(out, "Contact:    first {}  last {}", t(h.first_contact), t(h.last_contact))?;
            if let Some(b) = &h.blocked {
                writeln!(
                    out,
                    "BLOCKED:    since {} until {} by {}: {}",
                    rfc3339(&b.since),
                    b.until.map(|u| rfc3339(&u)).unwrap_or_else(|| "unblocked".into()),
                    escape(&b.by),
                    escape(&b.reason)
                )?;
            }
            let rows: Vec<Vec<String>> = h
                .cases
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.status.clone(),
                        c.reject_reason.clone().unwrap_or_default(),
                        rfc3339(&c.received_at),
                        c.title.chars().take(50).collect(),
                    ]
                })
                .collect();
            writeln!(out)?;
            table(out, &["ID", "STATUS", "REASON", "RECEIVED", "TITLE"], &rows)?;
            Ok(EXIT_OK)
        }
        ReporterCmd::List { json } => {
            let mut all = reporters::histories(&ctx.store, now)?;
            all.sort_by(|a, b| {
                b.rejected.cmp(&a.rejected).then(b.cases.len().cmp(&a.cases.len())).then(a.address.cmp(&b.address))
            });
            if *json {
                let v: Vec<_> = all
                    .iter()
                    .map(|h| {
                        serde_json::json!({
                            "address": h.address, "cases": h.cases.len(), "rejected": h.rejected,
                            "counts": h.counts, "cert": h.cert,
                            "first_contact": h.first_contact.map(|t| rfc3339(&t)),
                            "last_contact": h.last_contact.map(|t| rfc3339(&t)),
                            "blocked": h.blocked.is_some(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(EXIT_OK);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|h| {
                    vec![
                        h.address.clone(),
                        h.cases.len().to_string(),
                        h.rejected.to_string(),
                        counts(h),
                        if h.blocked.is_some() { "blocked".into() } else { String::new() },
                    ]
                })
                .collect();
            table(out, &["REPORTER", "CASES", "REJECTED", "OUTCOMES", "BLOCK"], &rows)?;
            Ok(EXIT_OK)
        }
        ReporterCmd::Block { address, reason, until, who } => {
            if !crate::config::valid_address(address) {
                return Err(usage(format!("{address:?} is not a mail address")));
            }
            if reason.trim().is_empty() {
                return Err(usage("--reason must say why (it goes to the audit log)"));
            }
            let until =
                until.as_deref().map(|u| change::date(u).map_err(|e| usage(format!("--until {e}")))).transpose()?;
            if until.is_some_and(|u| u <= now) {
                return Err(usage("--until is in the past"));
            }
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            let b = reporters::block(&ctx.store, address, reason.trim(), until, &who, now)?;
            writeln!(
                out,
                "{} blocked until {}",
                escape(&b.address),
                b.until.map(|u| rfc3339(&u)).unwrap_or_else(|| "unblocked".into())
            )?;
            Ok(EXIT_OK)
        }
        ReporterCmd::Unblock { address, reason, who } => {
            let who = who.clone().unwrap_or_else(|| ctx.user.clone());
            if !reporters::unblock(&ctx.store, address, reason.trim(), &who, now)? {
                return Err(usage(format!("{address} is not blocked; see `secintake reporter list`")));
            }
            writeln!(out, "{} unblocked", escape(&address.to_lowercase()))?;
            Ok(EXIT_OK)
        }
        ReporterCmd::Log { json } => {
            let log = ctx.store.block_log()?;
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&log)?)?;
                return Ok(EXIT_OK);
            }
            for e in log {
                writeln!(
                    out,
                    "{}  {:<10} {:<8} {}  {}{}",
                    rfc3339(&e.at),
                    escape(&e.who),
                    e.action,
                    escape(&e.address),
                    escape(&e.reason),
                    e.until.map(|u| format!(" (until {})", rfc3339(&u))).unwrap_or_default()
                )?;
            }
            Ok(EXIT_OK)
        }
    }
}
