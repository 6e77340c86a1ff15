//! Reporters and blocks: the addresses the team blocked, the audit log of blocks and
//! unblocks, and the blocked reports still to go into the daily digest.
//!
//! Keys:
//! - `block/<address>` -> [`Block`] (the address lower case; removed by an unblock)
//! - `blocklog/<n:08>` -> [`BlockLogEntry`] (append-only: every block and unblock, with
//!   who, when and why)
//! - `digest/<YYYY-MM-DD>/<case>` -> empty: a blocked report of that day, for the digest
//!   the SLA clock sends once the day is over (and removes in the commit that queues it)
//!
//! Invariants: a block, its log entry and (for an unblock) the removal are one commit;
//! the notice a block period allows is marked (`Block::notice_sent_at`) in the commit
//! that queues it, so it is sent at most once a period.

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Batch, Store};
use crate::case::ts;

/// A blocked address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub address: String,
    pub reason: String,
    /// When the block began: its period runs from here to `until`.
    #[serde(with = "ts")]
    pub since: DateTime<Utc>,
    /// When it ends; None: until unblocked.
    #[serde(default, with = "ts::opt")]
    pub until: Option<DateTime<Utc>>,
    pub by: String,
    /// When this period's one notice went out; None: not yet.
    #[serde(default, with = "ts::opt")]
    pub notice_sent_at: Option<DateTime<Utc>>,
}

impl Block {
    /// Whether the block holds at `t`.
    pub fn holds_at(&self, t: DateTime<Utc>) -> bool {
        self.since <= t && self.until.is_none_or(|u| t < u)
    }
}

/// One entry of the blocks' audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockLogEntry {
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    pub who: String,
    /// `block` or `unblock`.
    pub action: String,
    pub address: String,
    pub reason: String,
    #[serde(default, with = "ts::opt")]
    pub until: Option<DateTime<Utc>>,
}

impl Batch {
    pub fn put_block(&mut self, b: &Block) {
        self.json(format!("block/{}", b.address.to_lowercase()), b);
    }
    pub fn remove_block(&mut self, address: &str) {
        self.ops.push((format!("block/{}", address.to_lowercase()).into_bytes(), None));
    }
    /// Appends to the blocks' audit log; `n` from [`Store::block_log_len`] under the Tx.
    pub fn put_block_log(&mut self, n: u64, e: &BlockLogEntry) {
        self.json(format!("blocklog/{n:08}"), e);
    }
    /// Notes a blocked report for the digest of its day.
    pub fn put_digest(&mut self, day: NaiveDate, case_id: &str) {
        self.ops.push((format!("digest/{day}/{case_id}").into_bytes(), Some(Vec::new())));
    }
    pub fn remove_digest(&mut self, day: NaiveDate, case_id: &str) {
        self.ops.push((format!("digest/{day}/{case_id}").into_bytes(), None));
    }
}

impl Store {
    /// The block on `address`, whether or not it holds now.
    pub fn block(&self, address: &str) -> Result<Option<Block>> {
        self.get_json(&format!("block/{}", address.to_lowercase()))
    }

    pub fn blocks(&self) -> Result<Vec<Block>> {
        self.scan_json("block/")
    }

    pub fn block_log(&self) -> Result<Vec<BlockLogEntry>> {
        self.scan_json("blocklog/")
    }

    pub fn block_log_len(&self) -> Result<u64> {
        let mut n = 0;
        self.scan_prefix("blocklog/", |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    /// The blocked reports noted for digests of days before `today`, oldest first,
    /// at most `cap` (the rest wait for the next tick).
    pub fn digest_due(&self, today: NaiveDate, cap: usize) -> Result<Vec<(NaiveDate, String)>> {
        let mut out = Vec::new();
        self.scan_prefix("digest/", |k, _| {
            let rest = String::from_utf8_lossy(&k[7..]).into_owned();
            let Some((day, case)) = rest.split_once('/') else { return Ok(true) };
            let Ok(day) = day.parse::<NaiveDate>() else { return Ok(true) };
            if day >= today {
                return Ok(false);
            }
            out.push((day, case.to_owned()));
            Ok(out.len() < cap)
        })?;
        Ok(out)
    }
}
