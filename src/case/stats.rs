//! `secintake stats`: how the desk is doing, per project and in total, from the case
//! records and their audit logs. Pure: the caller streams every case and every log entry
//! in (one pass each, see `cli::stats`), with `now` and `since`; this counts and returns
//! values. It holds a few timestamps per case (its milestones) and the durations it takes
//! medians of, never a case or a text.
//!
//! Milestones come from the audit log: triage is the first status change past
//! `acknowledged` (to triaged, accepted, fixing, disclosed, closed or rejected), the fix
//! is the first `case set --fixed` with a version, disclosure the first change to
//! `disclosed`. The ack is the case's `ack.sent_at`. SLA misses are the overdue reminders
//! the clock logged (`ack-overdue`, `update-overdue`, `cra-*-overdue`), an ack sent after
//! its due date (or none while an open case's date has passed), and a disclosure after
//! its date (or none while an open case's date has passed); each counted once a case.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Case, LogEntry, Status};

/// What the audit log says happened to one case, and when first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Milestones {
    pub triaged: Option<DateTime<Utc>>,
    pub fixed: Option<DateTime<Utc>>,
    pub disclosed: Option<DateTime<Utc>>,
    /// The clocks whose overdue reminder went out (`ack`, `update`, `cra-final`, ...).
    pub overdue: Vec<String>,
}

impl Milestones {
    /// Takes in one of the case's log entries (in log order).
    pub fn add(&mut self, e: &LogEntry) {
        match e.action.as_str() {
            "set" => {
                for part in e.detail.split("; ") {
                    if let Some(rest) = part.strip_prefix("status ")
                        && let Some((_, to)) = rest.split_once(" -> ")
                    {
                        let to = to.split_whitespace().next().unwrap_or("");
                        if !matches!(to, "new" | "acknowledged") && self.triaged.is_none() {
                            self.triaged = Some(e.at);
                        }
                        if to == "disclosed" && self.disclosed.is_none() {
                            self.disclosed = Some(e.at);
                        }
                    }
                    if let Some(v) = part.strip_prefix("fixed=")
                        && !v.trim().is_empty()
                        && self.fixed.is_none()
                    {
                        self.fixed = Some(e.at);
                    }
                }
            }
            "reminder" => {
                for key in e.detail.split(", ") {
                    if let Some(clock) = key.trim().strip_suffix("-overdue")
                        && !self.overdue.iter().any(|c| c == clock)
                    {
                        self.overdue.push(clock.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
}

/// The counts of one project, one month, or everything.
#[derive(Clone, Debug, Default)]
struct Group {
    received: usize,
    by_status: BTreeMap<&'static str, usize>,
    by_rejection: BTreeMap<String, usize>,
    by_flag: BTreeMap<&'static str, usize>,
    /// Seconds from receipt to each milestone, one entry per case that reached it.
    ack: Vec<i64>,
    triage: Vec<i64>,
    fix: Vec<i64>,
    disclosure: Vec<i64>,
    misses: BTreeMap<String, usize>,
    overdue_now: usize,
}

/// The median and the 90th percentile (nearest rank) of `v`, in seconds.
fn percentiles(v: &mut [i64]) -> Value {
    if v.is_empty() {
        return json!({ "count": 0, "median_s": null, "p90_s": null });
    }
    v.sort_unstable();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    json!({ "count": v.len(), "median_s": rank(0.5), "p90_s": rank(0.9) })
}

impl Group {
    fn add(&mut self, c: &Case, m: &Milestones, now: DateTime<Utc>) {
        self.received += 1;
        *self.by_status.entry(c.status.as_str()).or_default() += 1;
        if c.status == Status::Rejected {
            // `duplicate:SEC-...` counts as `duplicate`.
            let r = c.reject_reason.as_deref().unwrap_or("unknown");
            *self.by_rejection.entry(r.split(':').next().unwrap_or(r).to_owned()).or_default() += 1;
        }
        for f in &c.flags {
            *self.by_flag.entry(f.as_str()).or_default() += 1;
        }
        let since = |t: DateTime<Utc>| (t - c.received_at).num_seconds().max(0);
        if let Some(a) = &c.ack {
            self.ack.push(since(a.sent_at));
        }
        self.triage.extend(m.triaged.map(since));
        self.fix.extend(m.fixed.map(since));
        self.disclosure.extend(m.disclosed.map(since));
        let mut missed: Vec<&str> = m.overdue.iter().map(String::as_str).collect();
        let open = !matches!(c.status, Status::Closed | Status::Rejected | Status::Disclosed);
        let ack_late = match &c.ack {
            Some(a) => a.sent_at > c.due.ack,
            None => open && now > c.due.ack,
        };
        if ack_late && !missed.contains(&"ack") {
            missed.push("ack");
        }
        if m.disclosed.map_or(open && now > c.due.disclosure, |d| d > c.due.disclosure) {
            missed.push("disclosure");
        }
        for k in missed {
            *self.misses.entry(k.to_owned()).or_default() += 1;
        }
        self.overdue_now += usize::from(c.overdue(now));
    }

    fn summary(&mut self) -> Value {
        json!({
            "received": self.received,
            "by_status": self.by_status,
            "by_rejection": self.by_rejection,
            "by_flag": self.by_flag,
            "time_to": {
                "ack": percentiles(&mut self.ack),
                "triage": percentiles(&mut self.triage),
                "fix": percentiles(&mut self.fix),
                "disclosure": percentiles(&mut self.disclosure),
            },
            "sla_misses": self.misses,
            "sla_misses_total": self.misses.values().sum::<usize>(),
            "overdue_now": self.overdue_now,
        })
    }
}

/// Every count `stats` prints.
#[derive(Debug)]
pub struct Stats {
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    total: Group,
    projects: BTreeMap<String, Group>,
    months: BTreeMap<String, Group>,
    /// Messages by disposition (`mail list`'s), in total and per project (those with a case).
    dispositions: BTreeMap<String, usize>,
    project_dispositions: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Stats {
    /// Empty counts for `projects` (each listed even with no case), counting cases
    /// received at or after `since`.
    pub fn new<'a>(
        projects: impl IntoIterator<Item = &'a str>,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Stats {
        Stats {
            now,
            since,
            total: Group::default(),
            projects: projects.into_iter().map(|p| (p.to_owned(), Group::default())).collect(),
            months: BTreeMap::new(),
            dispositions: BTreeMap::new(),
            project_dispositions: BTreeMap::new(),
        }
    }

    /// Counts one case of `project` with its milestones.
    pub fn add_case(&mut self, c: &Case, project: &str, m: &Milestones) {
        if self.since.is_some_and(|s| c.received_at < s) {
            return;
        }
        self.total.add(c, m, self.now);
        self.projects.entry(project.to_owned()).or_default().add(c, m, self.now);
        self.months.entry(c.received_at.format("%Y-%m").to_string()).or_default().add(c, m, self.now);
    }

    /// Counts one message (a mail record) received at `at`, of `project` when it joined
    /// a case.
    pub fn add_message(&mut self, disposition: &str, at: DateTime<Utc>, project: Option<&str>) {
        if self.since.is_some_and(|s| at < s) {
            return;
        }
        *self.dispositions.entry(disposition.to_owned()).or_default() += 1;
        if let Some(p) = project {
            *self.project_dispositions.entry(p.to_owned()).or_default().entry(disposition.to_owned()).or_default() += 1;
        }
    }

    /// The JSON `stats --json` prints: `total`, `projects` (by name), `months` (YYYY-MM).
    pub fn to_json(mut self) -> Value {
        let mut total = self.total.summary();
        total["messages_by_disposition"] = json!(self.dispositions);
        let projects: BTreeMap<String, Value> = self
            .projects
            .iter_mut()
            .map(|(n, g)| {
                let mut v = g.summary();
                v["messages_by_disposition"] = json!(self.project_dispositions.get(n).cloned().unwrap_or_default());
                (n.clone(), v)
            })
            .collect();
        let months: BTreeMap<String, Value> = self.months.iter_mut().map(|(m, g)| (m.clone(), g.summary())).collect();
        json!({
            "generated_at": super::rfc3339(&self.now),
            "since": self.since.as_ref().map(super::rfc3339),
            "total": total,
            "projects": projects,
            "months": months,
        })
    }
}

/// Milestones of many cases, built from one pass over every audit log.
#[derive(Debug, Default)]
pub struct Timeline(pub HashMap<String, Milestones>);

impl Timeline {
    pub fn add(&mut self, case_id: &str, e: &LogEntry) {
        if !matches!(e.action.as_str(), "set" | "reminder") {
            return;
        }
        match self.0.get_mut(case_id) {
            Some(m) => m.add(e),
            None => {
                let mut m = Milestones::default();
                m.add(e);
                if m != Milestones::default() {
                    self.0.insert(case_id.to_owned(), m);
                }
            }
        }
    }
}

/// A duration in seconds as people read it: `3d 4h`, `5h 12m`, `42m`, `12s`.
pub fn human(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: DateTime<Utc>, action: &str, detail: &str) -> LogEntry {
        LogEntry { at, who: "t".into(), action: action.into(), detail: detail.into(), ..Default::default() }
    }

    #[test]
    fn milestones_from_the_log() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let h = |n| t + chrono::Duration::hours(n);
        let mut m = Milestones::default();
        m.add(&entry(h(1), "set", "status new -> acknowledged"));
        assert_eq!(m.triaged, None, "acknowledging is not triage");
        m.add(&entry(h(5), "set", "cvss_assessed=none; status acknowledged -> triaged"));
        m.add(&entry(h(9), "set", "status triaged -> accepted"));
        m.add(&entry(h(20), "set", "fixed="));
        m.add(&entry(h(30), "set", "fixed=1.2.5,1.3.0"));
        m.add(&entry(h(40), "reminder", "update-1d, update-overdue"));
        m.add(&entry(h(50), "set", "status fixing -> disclosed"));
        assert_eq!((m.triaged, m.fixed, m.disclosed), (Some(h(5)), Some(h(30)), Some(h(50))));
        assert_eq!(m.overdue, ["update"]);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(percentiles(&mut v), json!({"count": 10, "median_s": 5, "p90_s": 9}));
        assert_eq!(percentiles(&mut [7]), json!({"count": 1, "median_s": 7, "p90_s": 7}));
        assert_eq!(human(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(human(5 * 3600 + 12 * 60), "5h 12m");
    }
}
