//! `[metrics] textfile` on the real mail stack: after `run --once` the file holds the
//! pass's numbers, parsed by the Prometheus project's own text-format parser
//! (prometheus-client from PyPI, in tests/validators/.venv; tests/lib/install-deps.sh
//! installs it): messages by disposition, cases per project, the last IMAP sync and
//! SMTP send, every task's error counter.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::*;

/// Every sample of a metrics file: `name{labels}` -> value, as prometheus-client reads it.
fn parse(path: &std::path::Path) -> BTreeMap<String, f64> {
    let py = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in f.samples:\n\
        \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
        \x20       out[s.name + '{' + labels + '}'] = s.value\n\
        print(json.dumps(out))\n";
    let out = Command::new(repo().join("tests/validators/.venv/bin/python"))
        .args(["-c", py])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("python of tests/validators/.venv: {e}; run tests/lib/install-deps.sh"));
    assert!(out.status.success(), "the parser refused the file: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_textfile_holds_the_passs_numbers_in_the_prometheus_format() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(
        &stack,
        &[&team],
        "[[projects]]\nname = \"numlib\"\naddresses = [\"security+numlib@intake.test\"]\ncase_prefix = \"NUM\"\n\n\
         [metrics]\ntextfile = \"metrics/secintake.prom\"\n",
    );
    std::fs::create_dir_all(dep.dir.path().join("metrics")).unwrap();
    let before = chrono::Utc::now().timestamp() as f64;
    stack.send(
        "bob@reporter.test",
        "security@intake.test",
        &plain_report("bob@reporter.test", "XSS in search", "The search box reflects input.\n", "m-1@reporter.test"),
    );
    stack.wait("security@intake.test", "INBOX", 1, 30);
    dep.run_ok(&["run", "--once"]);
    let file = dep.dir.path().join("metrics/secintake.prom");
    let m = parse(&file);
    assert_eq!(m["secintake_messages_total{disposition=case}"], 1.0, "{m:#?}");
    assert_eq!(m["secintake_messages_total{disposition=quarantine}"], 0.0);
    assert_eq!(m["secintake_cases{project=Demo Project}"], 1.0, "{m:#?}");
    assert_eq!(m["secintake_cases{project=numlib}"], 0.0);
    assert_eq!(m["secintake_cases_overdue{project=numlib}"], 0.0);
    assert!(m["secintake_last_imap_sync_timestamp_seconds{}"] >= before, "{m:#?}");
    // The ack and the summary went out in the same run: the second write saw them.
    assert!(m["secintake_last_smtp_send_timestamp_seconds{}"] >= before, "{m:#?}");
    assert_eq!(m["secintake_outbox_queued{}"], 0.0);
    assert!(m.contains_key("secintake_journal_pending{}"), "the journal's lag is in the file");
    for task in ["imap", "outbox", "sla", "reload", "metrics"] {
        assert_eq!(m[&format!("secintake_errors_total{{task={task}}}")], 0.0);
        assert_eq!(m[&format!("secintake_task_failing{{task={task}}}")], 0.0);
    }
    // Written whole: no temporary file left beside it, and readable by the collector.
    let names: Vec<String> = std::fs::read_dir(dep.dir.path().join("metrics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["secintake.prom"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
    // A folder that does not exist is a config error `check` names.
    let cfg = std::fs::read_to_string(&dep.config).unwrap().replace("metrics/secintake.prom", "nowhere/x.prom");
    std::fs::write(&dep.config, cfg).unwrap();
    let out = dep.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metrics.textfile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
