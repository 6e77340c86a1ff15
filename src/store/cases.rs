//! Cases and their audit log: the case records (without their texts: `texts.rs`), the
//! append-only log of each case, the case numbers, and the SLA reminders already sent.
//!
//! Keys:
//! - `case/<id>` -> Case (the texts of its messages are not in it: they are written
//!   apart, once, see [`Batch::put_text`])
//! - `log/<case id>/<n:08>` -> LogEntry (append-only audit log)
//! - `seq/<prefix>-<year>` -> u64 big endian, the last case number used
//! - `rem/<case id>/<reminder key>` -> empty (an SLA reminder sent once)
//!
//! Invariants: a case number is read (`seq/`) and its successor written in the commit
//! that creates the case, under one [`super::Tx`]: no number is given twice. A log
//! entry's `n` is the log's length read under the `Tx` ([`Store::log_len`]; a commit that
//! appends several counts on from it), so entries are appended in order and never
//! overwritten. A case's new texts go in the same batch as its record
//! ([`Batch::put_case`]), in a segment made durable before the record. `rem/` is written
//! in the commit that queues the reminder (or does what the marker stands for), so it
//! is sent once. Never a text in a case record: a record stays small however large the
//! report.

use anyhow::{Context, Result};

use super::texts::text_path;
use super::{Batch, Store};
use crate::case::Case;

impl Batch {
    /// Writes a case's record: everything but its texts, which [`Batch::put_text`]
    /// writes once per message (a record stays small however large the report).
    pub fn put_case(&mut self, c: &Case) {
        self.json(format!("case/{}", c.id), c);
        // Texts are immutable once written: only those in hand (a new message, or a
        // record from before this layout, which this migrates) are written.
        for (n, m) in c.messages.iter().enumerate() {
            if !m.text.is_empty() {
                self.put_text(&c.id, n, &m.text);
            }
        }
    }
    /// Appends to a case's audit log; `n` orders entries (see [`Store::log_len`]).
    pub fn put_log(&mut self, case_id: &str, n: u64, e: &crate::case::LogEntry) {
        self.json(format!("log/{case_id}/{n:08}"), e);
    }
    /// How many log entries of `case_id` this batch appends already (a commit that
    /// appends to one log twice counts on from [`Store::log_len`] plus these).
    pub fn pending_logs(&self, case_id: &str) -> u64 {
        let prefix = format!("log/{case_id}/");
        self.ops.iter().filter(|(k, v)| v.is_some() && k.starts_with(prefix.as_bytes())).count() as u64
    }
    pub fn put_seq(&mut self, name: &str, n: u64) {
        self.ops.push((format!("seq/{name}").into_bytes(), Some(n.to_be_bytes().to_vec())));
    }
    /// Marks an SLA reminder as sent for a case.
    pub fn put_reminder(&mut self, case_id: &str, key: &str) {
        self.ops.push((format!("rem/{case_id}/{key}").into_bytes(), Some(Vec::new())));
    }
    /// Forgets an SLA reminder (its clock restarted).
    pub fn remove_reminder(&mut self, case_id: &str, key: &str) {
        self.ops.push((format!("rem/{case_id}/{key}").into_bytes(), None));
    }
}

impl Store {
    /// A case with its texts (for `case show`, exports, replies).
    pub fn case(&self, id: &str) -> Result<Option<Case>> {
        let Some(mut c) = self.case_meta(id)? else { return Ok(None) };
        for (n, m) in c.messages.iter_mut().enumerate() {
            // Records from before texts were kept apart hold theirs inline.
            if let Some(t) = self.text(&text_path(id, n)).with_context(|| format!("The text of {id} message {n}"))? {
                m.text = String::from_utf8_lossy(&t).into_owned();
            }
        }
        if let Some(first) = c.messages.first()
            && (!first.text.is_empty() || c.text.is_empty())
        {
            c.text = first.text.clone();
        }
        Ok(Some(c))
    }

    /// A case without its texts: what lists, deadlines and updates need. Cheap
    /// however large the report.
    pub fn case_meta(&self, id: &str) -> Result<Option<Case>> {
        self.get_json(&format!("case/{id}"))
    }

    /// Every case, without texts.
    pub fn cases(&self) -> Result<Vec<Case>> {
        self.scan_json("case/")
    }

    /// Every case, without texts, one at a time: memory stays flat however many cases
    /// the store holds (the daemon's loops use this, never [`Store::cases`]).
    pub fn each_case(&self, f: impl FnMut(Case) -> Result<()>) -> Result<()> {
        self.each_json("case/", f)
    }

    /// The SLA reminders already sent for a case.
    pub fn reminders(&self, case_id: &str) -> Result<Vec<String>> {
        let prefix = format!("rem/{case_id}/");
        let mut out = Vec::new();
        self.scan_prefix(&prefix, |k, _| {
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn log(&self, case_id: &str) -> Result<Vec<crate::case::LogEntry>> {
        self.scan_json(&format!("log/{case_id}/"))
    }

    /// Every case's audit log in one pass, case by case (by id), each in order: `f`
    /// gets the case id and the entry. For `stats`, which reads them all once.
    pub fn each_log(&self, mut f: impl FnMut(&str, crate::case::LogEntry) -> Result<()>) -> Result<()> {
        self.scan_prefix("log/", |k, v| {
            let key = String::from_utf8_lossy(&k[4..]);
            let id = key.rsplit_once('/').map(|(id, _)| id).unwrap_or(&key);
            let e = serde_json::from_slice(v).with_context(|| format!("Decoding store entry log/{key}"))?;
            f(id, e)?;
            Ok(true)
        })
    }

    pub fn log_len(&self, case_id: &str) -> Result<u64> {
        let mut n = 0;
        self.scan_prefix(&format!("log/{case_id}/"), |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    pub fn seq(&self, name: &str) -> Result<u64> {
        Ok(self
            .get(format!("seq/{name}").as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}
