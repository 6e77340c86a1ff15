//! `secintake stats`: the desk in numbers (`case::stats` counts; this streams the store
//! into it: one pass over the audit logs, one over the cases, one over the mail records)
//! and prints them.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use serde_json::Value;

use super::term::escape;
use super::{Ctx, EXIT_OK, table, usage};
use crate::case::stats::{Stats, Timeline, human};

/// `stats [--project NAME] [--since DATE] [--json]`.
pub fn stats(ctx: &Ctx, project: Option<&str>, since: Option<&str>, json: bool, out: &mut dyn Write) -> Result<i32> {
    let project = super::project_arg(&ctx.cfg, project)?;
    let since = since
        .map(|s| crate::case::change::date(s).map_err(|_| usage(format!("--since {s:?}: write YYYY-MM-DD"))))
        .transpose()?;
    let now = Utc::now();
    let default = ctx.cfg.default_project().to_owned();
    let names: Vec<&str> = ctx.cfg.project_names().into_iter().filter(|n| project.is_none_or(|p| p == *n)).collect();
    let mut stats = Stats::new(names, since, now);
    let mut timeline = Timeline::default();
    ctx.store.each_log(|id, e| {
        timeline.add(id, &e);
        Ok(())
    })?;
    // A case counts for the project it belongs to (a moved case: its project now).
    let mut project_of: HashMap<String, String> = HashMap::new();
    let none = Default::default();
    ctx.store.each_case(|c| {
        let p = c.project.clone().unwrap_or_else(|| default.clone());
        if project.is_none_or(|want| want == p) {
            stats.add_case(&c, &p, timeline.0.get(&c.id).unwrap_or(&none));
        }
        project_of.insert(c.id, p);
        Ok(())
    })?;
    ctx.store.each_mail(|m| {
        let p = m.case_id.as_ref().and_then(|id| project_of.get(id)).map(String::as_str);
        if project.is_none() || (p.is_some() && p == project) {
            stats.add_message(m.disposition.as_str(), m.received_at, p);
        }
        Ok(())
    })?;
    let v = stats.to_json();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(EXIT_OK);
    }
    print_text(&v, out)?;
    Ok(EXIT_OK)
}

/// `median / p90` of one `time_to` entry.
fn times(v: &Value) -> String {
    match (v["median_s"].as_i64(), v["p90_s"].as_i64()) {
        (Some(m), Some(p)) => format!("{} / {}", human(m), human(p)),
        _ => "-".into(),
    }
}

/// One table row of a group.
fn row(name: &str, g: &Value) -> Vec<String> {
    let t = &g["time_to"];
    vec![
        name.to_owned(),
        g["received"].to_string(),
        times(&t["ack"]),
        times(&t["triage"]),
        times(&t["fix"]),
        times(&t["disclosure"]),
        g["sla_misses_total"].to_string(),
        g["overdue_now"].to_string(),
    ]
}

/// `name n, name n` of a JSON object of counts.
fn counts(v: &Value) -> String {
    let parts: Vec<String> = v.as_object().into_iter().flatten().map(|(k, n)| format!("{} {n}", escape(k))).collect();
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

fn print_text(v: &Value, out: &mut dyn Write) -> Result<()> {
    let head = ["PROJECT", "REPORTS", "ACK med/p90", "TRIAGE", "FIX", "DISCLOSURE", "SLA MISSES", "OVERDUE"];
    let mut rows: Vec<Vec<String>> = v["projects"].as_object().into_iter().flatten().map(|(n, g)| row(n, g)).collect();
    rows.push(row("total", &v["total"]));
    if let Some(s) = v["since"].as_str() {
        writeln!(out, "Since {s}")?;
    }
    table(out, &head, &rows)?;
    let total = &v["total"];
    writeln!(out)?;
    writeln!(out, "Messages:   {}", counts(&total["messages_by_disposition"]))?;
    writeln!(out, "Status:     {}", counts(&total["by_status"]))?;
    writeln!(out, "Rejected:   {}", counts(&total["by_rejection"]))?;
    writeln!(out, "Flags:      {}", counts(&total["by_flag"]))?;
    writeln!(out, "SLA misses: {}", counts(&total["sla_misses"]))?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = v["months"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(m, g)| {
            vec![
                m.clone(),
                g["received"].to_string(),
                times(&g["time_to"]["ack"]),
                times(&g["time_to"]["triage"]),
                g["sla_misses_total"].to_string(),
            ]
        })
        .collect();
    table(out, &["MONTH", "REPORTS", "ACK med/p90", "TRIAGE", "SLA MISSES"], &rows)?;
    Ok(())
}
