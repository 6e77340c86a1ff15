//! Every input kept in `fuzz/regressions/` (crashes, hangs and other findings of the
//! fuzz campaign, and inputs that reach a panic the product must catch) runs through
//! the real intake path, `Pipeline::ingest`, on a fresh store: each ends as exactly
//! one recorded outcome, within a deadline, with no panic escaping; ingested again it
//! is recognised as the same message. Each runs twice: on a fresh store, and after a
//! report that pins Alice's cert (most fuzz seeds are hers). A file named `<name>.<disposition>.eml` (for
//! example `x.non-report.eml`) must end with that disposition: a panic the pipeline
//! catches still ends as one outcome (quarantined as malformed), so only the expected
//! disposition tells a fixed parser from a caught panic.

mod support;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use secintake::pipeline::Pipeline;
use secintake::store::Disposition;

/// Per input, for a debug build on a loaded machine (a release build takes
/// milliseconds): a regression that hangs fails instead of stalling the suite.
const DEADLINE: Duration = Duration::from_secs(120);

fn inputs() -> Vec<PathBuf> {
    let dir = support::repo().join("fuzz/regressions");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    v.sort();
    v
}

/// A report from Alice, signed and encrypted by gpg, her key in its Autocrypt header:
/// ingested first, it pins her cert, so an input from her takes the paths a known
/// reporter takes (a key change, a follow-up) as well as the first-contact ones.
const PRELUDE: &str = "fixtures/interop/gpg-signed-encrypted-outer.eml";

/// (disposition, reason) of one input, on a fresh store or after [`PRELUDE`]; the
/// record counts are checked.
fn run_one(raw: &[u8], prelude: bool) -> (Disposition, Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, store) = support::fixture_deployment(tmp.path());
    let pipeline = Pipeline::load(cfg, store.clone()).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap();
    let mut before = 0;
    if prelude {
        let p = std::fs::read(support::repo().join(PRELUDE)).unwrap();
        let o = pipeline.ingest(&p, None, at, at).unwrap();
        assert_eq!(o.disposition, Disposition::Case, "the prelude is a case");
        assert!(store.cert("alice@reporter.test").unwrap().is_some(), "the prelude pins Alice's cert");
        before = 1;
    }
    let first = pipeline.ingest(raw, None, at, at).expect("an outcome, not a store failure");
    let mails = store.mails().unwrap();
    assert_eq!(mails.len(), before + usize::from(!first.seen_before), "at most one new mail record");
    assert_eq!(first.case_id.is_some(), matches!(first.disposition, Disposition::Case | Disposition::FollowUp));
    assert_eq!(first.quarantine_id.is_some(), first.disposition == Disposition::Quarantine);
    assert_eq!(store.quarantined().unwrap().len(), usize::from(first.disposition == Disposition::Quarantine));
    let again = pipeline.ingest(raw, None, at, at).expect("an outcome the second time");
    assert!(again.seen_before, "the same bytes again are the same message");
    assert_eq!(store.mails().unwrap().len(), mails.len(), "no second record for the same message");
    (first.disposition, first.reason)
}

#[test]
fn every_fuzz_regression_ends_as_one_outcome() {
    let all = inputs();
    assert!(!all.is_empty(), "fuzz/regressions/ holds no input");
    for f in all {
        let raw = std::fs::read(&f).unwrap();
        let (tx, rx) = mpsc::channel();
        let name = f.display().to_string();
        // A thread per input: an escaping panic fails the test with the input's name,
        // a hang fails it at the deadline.
        let worker = std::thread::spawn(move || {
            let fresh = run_one(&raw, false);
            let known = run_one(&raw, true);
            let _ = tx.send((fresh, known));
        });
        let expected = f
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.rsplit_once('.'))
            .map(|(_, d)| d.to_owned())
            .filter(|d| ["case", "follow-up", "duplicate", "non-report", "quarantine"].contains(&d.as_str()));
        match rx.recv_timeout(DEADLINE) {
            Ok((fresh, known)) => {
                for (when, (d, reason)) in [("fresh store", fresh), ("after the prelude", known)] {
                    let reason = reason.unwrap_or_default();
                    eprintln!("{name} ({when}): {} ({reason})", d.as_str());
                    if let Some(want) = &expected {
                        assert_eq!(d.as_str(), want, "{name} ({when}): ended as {} ({reason})", d.as_str());
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no outcome within {DEADLINE:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let p = worker.join().err();
                let e = p.as_ref().and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                });
                panic!("{name}: panicked: {}", e.unwrap_or_default())
            }
        }
    }
}
