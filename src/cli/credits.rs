//! Credit by receipt time for `case set --reason duplicate --duplicate-of`: finding the
//! original at the root of a chain, linking (and unlinking) `also_reported_by`, and
//! `--swap` when the case named as the duplicate came first.

use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::term::escape;
use super::{Ctx, EXIT_OK, usage};
use crate::case::change::Change;
use crate::case::credit::{self, duplicate_of};
use crate::case::{Case, LogEntry, Status};
use crate::store::{Batch, Tx};

/// The original `id` stands for ([`crate::pipeline::credit::root_original`]), as the
/// CLI says it.
pub fn root_original(store: &crate::store::Store, id: &str, me: &str) -> Result<Case> {
    crate::pipeline::credit::root_original(store, id, me).map_err(|e| usage(format!("--duplicate-of {e:#}")))
}

/// [`crate::pipeline::credit::relink`] with the CLI user's log entries.
pub fn relink(
    ctx: &Ctx,
    b: &mut Batch,
    c: &mut Case,
    before: Option<&str>,
    original: Option<Case>,
    who: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let entry =
        |detail: String| LogEntry { at: now, who: who.to_owned(), action: "set".into(), detail, ..Default::default() };
    crate::pipeline::credit::relink(&ctx.store, b, c, before, original, &entry)
}

/// `--swap`: `x` came before `y`, so `y` becomes the duplicate of `x` and `x` (left in
/// its status) lists `y`'s reporter and everyone `y` listed.
pub fn swap(
    ctx: &Ctx,
    tx: &Tx,
    mut x: Case,
    mut y: Case,
    who: &str,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> Result<i32> {
    let before = duplicate_of(&y).map(str::to_owned);
    let reason = Some(crate::case::change::reject_reason("duplicate", Some(&x.id)).map_err(usage)?);
    let said = Change::Status { to: Status::Rejected, reason }
        .apply(&mut y, now)
        .map_err(|e| usage(format!("--swap: {} cannot be rejected: {e}", y.id)))?;
    let mut b = Batch::default();
    if let Some(old) = before.as_deref().filter(|o| *o != x.id)
        && let Some(mut o) = ctx.store.case_meta(old)?
    {
        credit::unlink(&y.id, &mut o);
        b.put_case(&o);
        log(ctx, &mut b, &o.id, who, &format!("no longer also reported by {} ({})", y.reporter.address, y.id), now)?;
    }
    let line = credit::link(&mut y, &mut x);
    log(ctx, &mut b, &x.id, who, &line, now)?;
    b.put_case(&x);
    b.put_case(&y);
    crate::pipeline::search::index_case(&ctx.store, &mut b, &y, usize::MAX)?;
    log(ctx, &mut b, &y.id, who, &format!("{said} (swapped: {} was received first)", x.id), now)?;
    tx.commit(b)?;
    writeln!(out, "{}: {} (swapped: {} was received first and is the original)", y.id, escape(&said), x.id)?;
    Ok(EXIT_OK)
}

/// Appends a `set` entry to a case's log inside `b` (counting what `b` already appends).
fn log(ctx: &Ctx, b: &mut Batch, case_id: &str, who: &str, detail: &str, now: DateTime<Utc>) -> Result<()> {
    b.put_log(
        case_id,
        ctx.store.log_len(case_id)? + b.pending_logs(case_id),
        &LogEntry {
            at: now,
            who: who.to_owned(),
            action: "set".into(),
            detail: detail.to_owned(),
            ..Default::default()
        },
    );
    Ok(())
}
