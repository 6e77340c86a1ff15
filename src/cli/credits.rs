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

/// Duplicates of duplicates followed at most this far (a longer chain is a loop).
const MAX_CHAIN: usize = 16;

/// The original `id` stands for: itself, or the case it is (transitively) a duplicate
/// of. `me` may not be on the chain (that would make a loop).
pub fn root_original(ctx_store: &crate::store::Store, id: &str, me: &str) -> Result<Case> {
    let mut c = ctx_store.case_meta(id)?.ok_or_else(|| usage(format!("--duplicate-of {id}: no such case")))?;
    for _ in 0..MAX_CHAIN {
        if c.id == me {
            return Err(usage(format!(
                "--duplicate-of {id}: {id} is itself a duplicate of {me}; that would be a loop"
            )));
        }
        match duplicate_of(&c).map(str::to_owned) {
            Some(next) => match ctx_store.case_meta(&next)? {
                Some(n) => c = n,
                None => break,
            },
            None => break,
        }
    }
    Ok(c)
}

/// Writes the credit side of a changed duplicate link into `b`: the earlier original
/// (`before`) forgets `c`, the new one lists it and whatever `c` listed.
pub fn relink(
    ctx: &Ctx,
    b: &mut Batch,
    c: &mut Case,
    before: Option<&str>,
    original: Option<Case>,
    who: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(old) = before
        && let Some(mut o) = ctx.store.case_meta(old)?
    {
        credit::unlink(&c.id, &mut o);
        b.put_case(&o);
        log(ctx, b, &o.id, who, &format!("no longer also reported by {} ({})", c.reporter.address, c.id), now)?;
    }
    if let Some(mut orig) = original
        && duplicate_of(c).is_some()
    {
        let line = credit::link(c, &mut orig);
        b.put_case(&orig);
        log(ctx, b, &orig.id, who, &line, now)?;
    }
    Ok(())
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
