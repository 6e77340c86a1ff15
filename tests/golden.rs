//! Golden tests: every `fixtures/**/*.eml` goes through the pipeline (no network) and
//! the outcome, case and quarantine entry are compared with `NAME.json` beside it.
//! A mismatch writes `NAME.actual.json`; `SECINTAKE_BLESS=1 cargo test --test golden`
//! accepts the new output (review the diff first). Each fixture also runs with LF line
//! endings and must reach the same conclusions.

mod support;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use secintake::pipeline::Pipeline;
use secintake::store::Store;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The verification time: after every fixture key and signature was made (the
/// interop fixtures' keys date from 2026-12-01; a signature from the future is bad).
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-20T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn when() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:05Z").unwrap().with_timezone(&Utc)
}

/// Runs one fixture (after the set-up its folder needs) and returns the golden JSON.
/// The keys are loaded (and the protected one unlocked, ~0.25 s) once; each run gets a
/// fresh store.
fn run(template: &Pipeline, fixture: &Path, lf: bool) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), &secintake::store::StoreKey::generate().unwrap()).unwrap();
    let pipeline = Pipeline { store: store.clone(), ..template.clone() };
    let folder = fixture.parent().unwrap().file_name().unwrap().to_str().unwrap();
    if folder == "followup" || folder == "nonreport" || folder == "commands" {
        // These refer to case SEC-2026-0001: open it first.
        let first = std::fs::read(repo().join("fixtures/pgpmime/encrypted-signed.eml")).unwrap();
        pipeline.ingest(&first, None, when(), now()).unwrap();
    }
    let mut raw = std::fs::read(fixture).unwrap();
    if lf {
        raw = String::from_utf8_lossy(&raw).replace("\r\n", "\n").into_bytes();
        if std::str::from_utf8(&std::fs::read(fixture).unwrap()).is_err() {
            // 8-bit fixtures: convert bytewise so non-UTF-8 bytes stay exact.
            let orig = std::fs::read(fixture).unwrap();
            raw = Vec::with_capacity(orig.len());
            let mut i = 0;
            while i < orig.len() {
                if orig[i] == b'\r' && orig.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                raw.push(orig[i]);
                i += 1;
            }
        }
    }
    let outcome = pipeline.ingest(&raw, None, when(), now()).unwrap();
    let case = outcome.case_id.as_ref().map(|id| store.case(id).unwrap().unwrap().to_json(true));
    let quarantine =
        outcome.quarantine_id.as_ref().map(|q| serde_json::to_value(store.quarantine(q).unwrap().unwrap()).unwrap());
    json!({
        "outcome": {
            "disposition": outcome.disposition.as_str(),
            "case_id": outcome.case_id,
            "quarantine_id": outcome.quarantine_id,
            "reason": outcome.reason,
        },
        "case": case,
        "quarantine": quarantine,
    })
}

/// What must not depend on line endings (hashes and ids derived from them may).
fn conclusions(v: &Value) -> Value {
    let c = &v["case"];
    json!({
        "disposition": v["outcome"]["disposition"],
        "reason": v["outcome"]["reason"],
        "title": c["title"],
        "signature": c["signature"],
        "encrypted": c["encrypted"],
        "decrypted": c["decrypted"],
        "cwe": c["cwe"],
        "tlp": c["tlp"],
        "cvss": c["cvss"],
        "credit": c["credit"],
        "attachments": c["attachments"],
        "reporter": c["reporter"],
        "text": c["text"].as_str().map(|t| t.replace("\r\n", "\n")),
    })
}

#[test]
fn every_fixture_matches_its_golden_json_in_crlf_and_lf() {
    let bless = std::env::var_os("SECINTAKE_BLESS").is_some();
    let mut failures = Vec::new();
    let all = support::fixture_files();
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, store) = support::fixture_deployment(tmp.path());
    let template = Pipeline::load(cfg, store).unwrap();
    assert!(all.len() >= 25, "fixtures missing: {}", all.len());
    for f in &all {
        let actual = run(&template, f, false);
        let expected_path = f.with_extension("json");
        let actual_path = f.with_extension("actual.json");
        let pretty = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        if bless {
            std::fs::write(&expected_path, &pretty).unwrap();
            let _ = std::fs::remove_file(&actual_path);
        } else {
            match std::fs::read_to_string(&expected_path) {
                Ok(exp) if serde_json::from_str::<Value>(&exp).ok() == Some(actual.clone()) => {
                    let _ = std::fs::remove_file(&actual_path);
                }
                Ok(_) => {
                    std::fs::write(&actual_path, &pretty).unwrap();
                    failures.push(format!("{}: differs; see {}", f.display(), actual_path.display()));
                }
                Err(_) => {
                    std::fs::write(&actual_path, &pretty).unwrap();
                    failures.push(format!(
                        "{}: no golden JSON; review {} and bless",
                        f.display(),
                        actual_path.display()
                    ));
                }
            }
        }
        let lf = run(&template, f, true);
        if conclusions(&lf) != conclusions(&actual) {
            failures.push(format!(
                "{}: LF form concludes differently:\n  CRLF {}\n  LF   {}",
                f.display(),
                conclusions(&actual),
                conclusions(&lf)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
