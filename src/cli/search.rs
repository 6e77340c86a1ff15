//! `secintake case search` and `secintake store reindex`: the search index read, and the
//! store's indexes (search, duplicates) rebuilt from the cases.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;

use super::term::escape;
use super::{Ctx, EXIT_OK, table, usage};
use crate::case::{Status, change, rfc3339};

/// What `case search` keeps besides the query.
pub struct Filter<'a> {
    pub status: Option<&'a str>,
    pub since: Option<&'a str>,
    pub project: Option<&'a str>,
}

pub fn run(ctx: &Ctx, query: &str, f: &Filter, limit: usize, json: bool, out: &mut dyn Write) -> Result<i32> {
    if query.trim().is_empty() {
        return Err(usage("give words to search for, e.g. secintake case search 'heap overflow'"));
    }
    let status =
        f.status.map(|s| Status::parse(s).ok_or_else(|| usage(format!("unknown status {s:?}")))).transpose()?;
    let since =
        f.since.map(|s| change::date(s).map_err(|_| usage(format!("--since {s:?}: write YYYY-MM-DD")))).transpose()?;
    let project = super::project_arg(&ctx.cfg, f.project)?;
    crate::pipeline::ensure_indexes(&ctx.store)?;
    let started = std::time::Instant::now();
    let hits = crate::pipeline::search::search(
        &ctx.store,
        query,
        |c| {
            status.is_none_or(|s| c.status == s)
                && since.is_none_or(|t| c.received_at >= t)
                && super::in_project(&ctx.cfg, c, project)
        },
        limit.max(1),
    )?;
    tracing::debug!(hits = hits.len(), ms = started.elapsed().as_millis() as u64, "Search answered");
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&hits)?)?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.case.clone(),
                format!("{:.2}", h.score),
                h.status.clone(),
                rfc3339(&h.received_at),
                h.title.chars().take(50).collect(),
            ]
        })
        .collect();
    table(out, &["ID", "SCORE", "STATUS", "RECEIVED", "TITLE"], &rows)?;
    for h in &hits {
        writeln!(out, "{}: {}", h.case, escape(&h.snippet))?;
    }
    Ok(EXIT_OK)
}

/// `store reindex`.
pub fn reindex(json: bool, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    let started = Utc::now();
    let search = crate::pipeline::search::reindex(&ctx.store)?;
    let dupes = crate::pipeline::dupes::reindex(&ctx.store, true)?;
    let (_, dup_bytes) = ctx.store.dup_index_bytes()?;
    let search_bytes = ctx.store.search_index_bytes()?;
    let secs = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
    if json {
        let v = serde_json::json!({
            "search_cases": search, "duplicate_cases": dupes,
            "search_bytes": search_bytes, "duplicate_bytes": dup_bytes, "seconds": secs,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "reindexed {search} cases in {secs:.1} s: search index {search_bytes} bytes, duplicate index {dup_bytes} bytes"
        )?;
    }
    Ok(EXIT_OK)
}
