//! Credit by receipt time for every way a case becomes a duplicate (`case set --reason
//! duplicate --duplicate-of`, `/reject duplicate ID` by mail): the original is the root
//! of the chain, and the originals' `also_reported_by` follow the link in the same batch
//! as the change. The rules themselves (`came_first`, `link`, `unlink`) are pure, in
//! `case::credit`.

use anyhow::{Result, bail};

use crate::case::credit::{self, duplicate_of};
use crate::case::{Case, LogEntry};
use crate::store::{Batch, Store};

/// Duplicates of duplicates followed at most this far (a longer chain is a loop).
const MAX_CHAIN: usize = 16;

/// The original `id` stands for: itself, or the case it is (transitively) a duplicate
/// of. `me` may not be on the chain (that would make a loop).
pub fn root_original(store: &Store, id: &str, me: &str) -> Result<Case> {
    let Some(mut c) = store.case_meta(id)? else { bail!("{id}: no such case") };
    for _ in 0..MAX_CHAIN {
        if c.id == me {
            bail!("{id} is itself a duplicate of {me}; that would be a loop");
        }
        match duplicate_of(&c).map(str::to_owned) {
            Some(next) => match store.case_meta(&next)? {
                Some(n) => c = n,
                None => break,
            },
            None => break,
        }
    }
    Ok(c)
}

/// Writes the credit side of a changed duplicate link into `b`: the earlier original
/// (`before`) forgets `c`, the new one (`original`, when `c` is now a duplicate) lists
/// it and whatever `c` listed. Each original's log gets the line `entry` makes.
pub fn relink(
    store: &Store,
    b: &mut Batch,
    c: &mut Case,
    before: Option<&str>,
    original: Option<Case>,
    entry: &dyn Fn(String) -> LogEntry,
) -> Result<()> {
    if let Some(old) = before
        && let Some(mut o) = store.case_meta(old)?
    {
        credit::unlink(&c.id, &mut o);
        b.put_case(&o);
        let n = store.log_len(&o.id)? + b.pending_logs(&o.id);
        b.put_log(&o.id, n, &entry(format!("no longer also reported by {} ({})", c.reporter.address, c.id)));
    }
    if let Some(mut orig) = original
        && duplicate_of(c).is_some()
    {
        let line = credit::link(c, &mut orig);
        b.put_case(&orig);
        let n = store.log_len(&orig.id)? + b.pending_logs(&orig.id);
        b.put_log(&orig.id, n, &entry(line));
    }
    Ok(())
}
