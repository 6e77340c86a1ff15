//! Answers and the rate-limit window: the acks and cannot-read notices queued to
//! reporters, by time, and the last hour of them in memory, which the per-sender and
//! hourly rate limits count.
//!
//! Keys:
//! - `answer/<created, millis:020>/<outbox id>` -> the recipients, comma-separated (not
//!   JSON)
//!
//! Invariants: an answer's entry is written with its new `out/` record (`outbox.rs`),
//! never on a rewrite of it (sent, retried: not a new answer). The window adds it at
//! commit, before the commit is recorded (inside a group, so that the group's next message
//! is counted against it), and is filled at open from the entries of the last two hours.
//! Never a scan per message: a count costs the same however long the backlog.

use chrono::{DateTime, Utc};

use super::{OpenError, Store};

pub(super) fn answer_key(at: DateTime<Utc>, id: &str) -> Vec<u8> {
    format!("answer/{:020}/{id}", at.timestamp_millis().max(0)).into_bytes()
}

/// The answers (acks, cannot-read notices) of the last hour, in memory: what the rate
/// limits count, per message, at a cost that does not grow with the backlog. Built from
/// the `answer/` index at open; every commit adds what it queues.
#[derive(Default)]
pub(super) struct AnswerWindow {
    /// (millis, lowercased recipients), oldest first.
    entries: std::collections::VecDeque<(i64, Vec<String>)>,
    per_address: std::collections::HashMap<String, usize>,
}

impl AnswerWindow {
    fn add(&mut self, millis: i64, to: &[u8]) {
        let to: Vec<String> =
            String::from_utf8_lossy(to).split(',').filter(|t| !t.is_empty()).map(|t| t.to_ascii_lowercase()).collect();
        for t in &to {
            *self.per_address.entry(t.clone()).or_default() += 1;
        }
        let at = self.entries.partition_point(|(m, _)| *m <= millis);
        self.entries.insert(at, (millis, to));
    }

    /// (answers since `since`, those to `to`); forgets the older ones.
    fn counts(&mut self, since: i64, to: &str) -> (usize, usize) {
        while self.entries.front().is_some_and(|(m, _)| *m < since) {
            if let Some((_, old)) = self.entries.pop_front() {
                for t in old {
                    if let Some(n) = self.per_address.get_mut(&t) {
                        *n -= 1;
                        if *n == 0 {
                            self.per_address.remove(&t);
                        }
                    }
                }
            }
        }
        (self.entries.len(), self.per_address.get(&to.to_ascii_lowercase()).copied().unwrap_or(0))
    }

    fn note(&mut self, key: &[u8], value: &[u8]) {
        // answer/<millis:020>/<id>
        let millis = key.get(7..27).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok());
        if let Some(m) = millis {
            self.add(m, value);
        }
    }
}

impl Store {
    /// Fills the window at open from the `answer/` entries of the last two hours (the
    /// rate limits count one).
    pub(super) fn load_answers(&self) -> std::result::Result<(), OpenError> {
        let since = answer_key(Utc::now() - chrono::Duration::hours(2), "");
        let mut w = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        self.db
            .range(&since, b"answer0", |k, v| {
                w.note(k, v);
                Ok(true)
            })
            .map_err(|e| OpenError::Other(format!("reading the answer index: {e:#}")))
    }

    /// Adds the answers a commit queues (its `answer/` entries) to the window, before
    /// the commit is recorded: inside a group, the group's next message counts them.
    pub(super) fn note_answers(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let mut w = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in ops {
            if let Some(v) = v
                && k.starts_with(b"answer/")
            {
                w.note(k, v);
            }
        }
    }

    /// How many answers (acks, cannot-read notices) were queued since `since`, and how
    /// many of them to `to`: what the rate limits count. Constant time per call.
    pub fn answer_counts(&self, since: DateTime<Utc>, to: &str) -> (usize, usize) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).counts(since.timestamp_millis(), to)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Batch;
    use super::super::fixtures::{out, reopen};
    use super::*;

    /// The rate limits' counts: the last hour's answers, in all and to one address
    /// (any case), kept across a reopen.
    #[test]
    fn answer_counts_cover_the_last_hour() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let hour_ago = now - chrono::Duration::hours(1);
        {
            let s = Store::open(dir.path(), &crate::store::fixtures::key()).unwrap();
            let mut b = Batch::default();
            b.put_out(&out("old", "a@x.org", now - chrono::Duration::minutes(61)), Some(b"x"));
            b.put_out(&out("a1", "A@x.org", now - chrono::Duration::minutes(30)), Some(b"x"));
            b.put_out(&out("b1", "b@x.org", now - chrono::Duration::minutes(1)), Some(b"x"));
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(s.answer_counts(hour_ago, "a@x.org"), (2, 1));
            // A record rewritten (sent, retried) is not a new answer.
            let mut b = Batch::default();
            b.put_out(&out("b1", "b@x.org", now), None);
            s.write(|tx| tx.commit(b)).unwrap();
            assert_eq!(s.answer_counts(hour_ago, "b@x.org"), (2, 1));
        }
        let s = reopen(dir.path());
        assert_eq!(s.answer_counts(hour_ago, "a@x.org"), (2, 1));
        assert_eq!(s.answer_counts(now - chrono::Duration::minutes(10), "a@x.org"), (1, 0));
    }
}
