//! `[metrics] textfile`: the daemon's numbers for node_exporter's textfile collector,
//! written after every sync (and after `run --once`'s outbox pass), atomically: a
//! temporary file beside it, synced, then renamed over it, so the collector never reads
//! half a file.
//!
//! The file is in the Prometheus text exposition format (0.0.4), which is what the
//! textfile collector parses (it does not take OpenMetrics' `# EOF` or its counter
//! family names); the names follow the Prometheus and OpenMetrics conventions (a
//! `secintake_` prefix, base units, `_total` counters, `_timestamp_seconds` times).
//! [`render`] is pure; [`collect`] reads the store (one pass over the mail records, one
//! over the cases: what `status` reads, never a text) and the daemon's status.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::TaskStatus;
use crate::config::Config;
use crate::store::Store;

/// The tasks whose failing state is exported (`secintake_task_failing{task}`), each
/// always present so an alert can name it.
const TASKS: [&str; 5] = ["imap", "outbox", "sla", "reload", "metrics"];

/// What one write of the file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Mail records by disposition, since the store began.
    pub messages: BTreeMap<String, u64>,
    /// Per project: (cases, cases with a deadline passed).
    pub projects: BTreeMap<String, (u64, u64)>,
    pub outbox_queued: u64,
    pub outbox_failed: u64,
    /// Journal entries not yet on the IMAP server, and when one last went there.
    pub journal_pending: u64,
    pub journal_appended_at: Option<DateTime<Utc>>,
    pub quarantine: u64,
    pub started: Option<DateTime<Utc>>,
    pub last_imap_sync: Option<DateTime<Utc>>,
    pub last_smtp_send: Option<DateTime<Utc>>,
    /// Errors per task since the daemon started.
    pub errors: BTreeMap<String, u64>,
    /// The tasks whose last attempt failed.
    pub failing: Vec<String>,
}

/// A label value, escaped as the text format wants (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A timestamp in seconds; 0 for never (so `time() - x > 900` fires before the first).
fn seconds(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{:.3}", t.timestamp_millis() as f64 / 1000.0),
        None => "0".into(),
    }
}

/// The file's text.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            o.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let by = |key: &str, m: &mut dyn Iterator<Item = (String, String)>| -> Vec<(String, String)> {
        m.map(|(k, v)| (format!("{{{key}=\"{}\"}}", label(&k)), v)).collect()
    };
    let mut messages: BTreeMap<String, u64> =
        ["case", "follow-up", "duplicate", "non-report", "quarantine"].iter().map(|d| (d.to_string(), 0)).collect();
    messages.extend(s.messages.iter().map(|(k, v)| (k.clone(), *v)));
    family(
        "secintake_messages_total",
        "counter",
        "Messages handled since the store began, by disposition.",
        by("disposition", &mut messages.iter().map(|(k, v)| (k.clone(), v.to_string()))),
    );
    family(
        "secintake_cases",
        "gauge",
        "Cases in the store, by the project they belong to.",
        by("project", &mut s.projects.iter().map(|(k, (c, _))| (k.clone(), c.to_string()))),
    );
    family(
        "secintake_cases_overdue",
        "gauge",
        "Cases with a deadline that matters passed (as secintake sla), by project.",
        by("project", &mut s.projects.iter().map(|(k, (_, o))| (k.clone(), o.to_string()))),
    );
    let one = |v: String| vec![(String::new(), v)];
    family("secintake_outbox_queued", "gauge", "Outgoing mails waiting to be sent.", one(s.outbox_queued.to_string()));
    family(
        "secintake_outbox_failed",
        "gauge",
        "Outgoing mails that failed for good.",
        one(s.outbox_failed.to_string()),
    );
    family("secintake_quarantine_entries", "gauge", "Messages in quarantine.", one(s.quarantine.to_string()));
    family(
        "secintake_journal_pending",
        "gauge",
        "Journal entries committed but not yet appended to imap.journal_folder.",
        one(s.journal_pending.to_string()),
    );
    family(
        "secintake_last_journal_append_timestamp_seconds",
        "gauge",
        "The last journal message the IMAP server took, in seconds since the epoch (0: none yet).",
        one(seconds(s.journal_appended_at)),
    );
    family(
        "secintake_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the epoch.",
        one(seconds(s.started)),
    );
    family(
        "secintake_last_imap_sync_timestamp_seconds",
        "gauge",
        "The last successful IMAP intake pass, in seconds since the epoch (0: none yet).",
        one(seconds(s.last_imap_sync)),
    );
    family(
        "secintake_last_smtp_send_timestamp_seconds",
        "gauge",
        "The last mail the SMTP server accepted, in seconds since the epoch (0: none since start).",
        one(seconds(s.last_smtp_send)),
    );
    let mut errors: BTreeMap<String, u64> = TASKS.iter().map(|t| (t.to_string(), 0)).collect();
    errors.extend(s.errors.iter().map(|(k, v)| (k.clone(), *v)));
    family(
        "secintake_errors_total",
        "counter",
        "Errors since the daemon started, by task.",
        by("task", &mut errors.iter().map(|(k, v)| (k.clone(), v.to_string()))),
    );
    family(
        "secintake_task_failing",
        "gauge",
        "1 while a task's last attempt failed (see secintake status), by task.",
        by("task", &mut errors.keys().map(|k| (k.clone(), u8::from(s.failing.iter().any(|f| f == k)).to_string()))),
    );
    o
}

/// The numbers now: the store's (mail records, cases, outbox, quarantine) and the
/// daemon's `status`.
pub fn collect(store: &Store, cfg: &Config, status: &TaskStatus, now: DateTime<Utc>) -> Result<Snapshot> {
    let mut s = Snapshot {
        started: Some(status.up_since),
        last_imap_sync: status.last_imap_sync,
        last_smtp_send: status.last_smtp_send,
        errors: status.error_counts.clone(),
        failing: status.last_errors.keys().cloned().collect(),
        ..Snapshot::default()
    };
    store.each_mail(|m| {
        *s.messages.entry(m.disposition.as_str().to_owned()).or_default() += 1;
        Ok(())
    })?;
    for p in cfg.project_names() {
        s.projects.insert(p.to_owned(), (0, 0));
    }
    let default = cfg.default_project();
    store.each_case(|c| {
        let e = s.projects.entry(c.project.clone().unwrap_or_else(|| default.to_owned())).or_default();
        e.0 += 1;
        e.1 += u64::from(c.overdue(now));
        Ok(())
    })?;
    store.each_queued(|_| s.outbox_queued += 1)?;
    s.outbox_failed = store.failed()?.len() as u64;
    s.quarantine = store.quarantine_count()? as u64;
    let lag = store.journal_lag()?;
    s.journal_pending = lag.pending as u64;
    s.journal_appended_at = lag.appended_at;
    Ok(s)
}

/// Writes `text` to `path` atomically (a temporary file in its folder, synced, renamed
/// over it), readable by the collector (0644: counts only, no case content).
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A leading dot: the collector reads only `*.prom`, never this.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("metrics.textfile: writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T00:00:00.5Z").unwrap().with_timezone(&Utc);
        let s = Snapshot {
            messages: [("case".to_string(), 3)].into(),
            projects: [("numlib".to_string(), (2, 1)), ("we \"quote\"".to_string(), (0, 0))].into(),
            last_imap_sync: Some(t),
            errors: [("imap".to_string(), 2)].into(),
            failing: vec!["imap".into()],
            ..Snapshot::default()
        };
        let text = render(&s);
        for line in [
            "# TYPE secintake_messages_total counter",
            "secintake_messages_total{disposition=\"case\"} 3",
            "secintake_messages_total{disposition=\"quarantine\"} 0",
            "secintake_cases{project=\"numlib\"} 2",
            "secintake_cases_overdue{project=\"numlib\"} 1",
            "secintake_cases{project=\"we \\\"quote\\\"\"} 0",
            "secintake_last_imap_sync_timestamp_seconds 1772323200.500",
            "secintake_last_smtp_send_timestamp_seconds 0",
            "secintake_errors_total{task=\"imap\"} 2",
            "secintake_task_failing{task=\"imap\"} 1",
            "secintake_task_failing{task=\"outbox\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
    }
}
