//! The mailbox as the record (issue 24), on the real mail stack: a backlog with team
//! changes, then the store deleted and rebuilt from the mailbox alone (journal folder,
//! quarantine folder, intake key) gives the same cases, logs, mail records and outbox;
//! the next pass sends nothing already sent and what was queued is sent once. A journal
//! message appended twice (a crash between the APPEND and the queue's removal) is
//! applied once; a rebuild killed half-way is redone from scratch.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// Everything a rebuild must reproduce, as the CLI prints it.
fn snapshot(dep: &Deployment) -> serde_json::Value {
    let list = dep.json(&["case", "list", "--json"]);
    let mut shows = Vec::new();
    let mut logs = Vec::new();
    for c in list.as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        shows.push(dep.json(&["case", "show", id, "--json"]));
        logs.push(dep.json(&["case", "log", id, "--json"]));
    }
    let status: serde_json::Value = serde_json::from_slice(&dep.run(&["status", "--json"]).stdout).unwrap();
    serde_json::json!({
        "list": list,
        "shows": shows,
        "logs": logs,
        "mail": dep.json(&["mail", "list", "--json"]),
        "quarantine": dep.json(&["quarantine", "list", "--json"]),
        "reporter_keys": dep.json(&["keys", "reporter", "list", "--json"]),
        "outbox": [status["outbox_depth"].clone(), status["outbox_failed"].clone()],
    })
}

fn sent_counts(stack: &MailStack) -> (usize, usize, usize) {
    (
        stack.count("alice@reporter.test", "INBOX"),
        stack.count("bob@reporter.test", "INBOX"),
        stack.count("team@team.test", "INBOX"),
    )
}

fn doveadm_save(stack: &MailStack, folder: &str, message: &[u8]) {
    let mut c = std::process::Command::new("doveadm")
        .arg("-c")
        .arg(&stack.env["DOVECOT_CONF"])
        .args(["save", "-u", "security@intake.test", "-m", folder])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(message).unwrap();
    assert!(c.wait().unwrap().success(), "doveadm save");
}

fn assert_same(before: &serde_json::Value, after: &serde_json::Value, what: &str) {
    if before != after {
        let (b, a) = (serde_json::to_string_pretty(before).unwrap(), serde_json::to_string_pretty(after).unwrap());
        let first = b.lines().zip(a.lines()).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "{what}: the rebuilt store differs; first difference at line {first}:\nbefore: {}\nafter:  {}",
            b.lines().nth(first).unwrap_or(""),
            a.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn a_store_rebuilt_from_the_mailbox_is_the_same_and_sends_nothing_twice() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    let alice = Gpg::new("Alice <alice@reporter.test>");
    alice.import(&dep.intake_pub);

    // A backlog: encrypted reports, plain ones, one encrypted to a key we lack.
    for i in 0..4 {
        let report = pgp_mime_report(
            &alice,
            "alice@reporter.test",
            &dep.intake_fpr,
            &format!("Journal report {i}: path traversal"),
            &format!("Affected Version(s): 1.{i}.0\nCWE-22\nTLP:AMBER\n\nThe download handler joins paths {i}.\n"),
            &format!("jr-{i}@reporter.test"),
            true,
        );
        stack.deliver("security@intake.test", &report);
    }
    for i in 0..3 {
        let plain = plain_report(
            "bob@reporter.test",
            &format!("Plain report {i}"),
            "Reflected input.\n",
            &format!("pr-{i}@reporter.test"),
        );
        stack.deliver("security@intake.test", &plain);
    }
    stack.deliver(
        "security@intake.test",
        &std::fs::read(repo().join("fixtures/pgpmime/encrypted-unsigned.eml")).unwrap(),
    );
    dep.run_ok(&["run", "--once"]);
    assert_eq!(stack.count("security@intake.test", "Quarantine"), 1);
    let journal_after_pass = stack.count("security@intake.test", "Secintake/Journal");
    assert!(journal_after_pass >= 1, "the pass appended its journal");

    // Team changes: a status, a CVSS, a note, a reply that goes out.
    let list = dep.json(&["case", "list", "--json"]);
    let ids: Vec<String> = list.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 7, "{list:#}");
    dep.run_ok(&["case", "set", &ids[0], "--status", "triaged"]);
    dep.run_ok(&["case", "set", &ids[1], "--cvss", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"]);
    dep.run_ok(&["case", "note", &ids[2], "Reproduced on the staging host"]);
    let reply = dep.dir.path().join("reply.txt");
    std::fs::write(&reply, "We reproduced it and are working on a fix.\n").unwrap();
    dep.run_ok(&["case", "reply", &ids[0], "--file", reply.to_str().unwrap()]);
    dep.run_ok(&["run", "--once"]);
    // A reply queued while SMTP is down: queued, not delivered, at the rebuild.
    stack.stop_postfix();
    dep.run_ok(&["case", "reply", &ids[4], "--file", reply.to_str().unwrap()]);
    dep.run_ok(&["run", "--once"]);
    stack.start_postfix();
    std::thread::sleep(Duration::from_secs(2));
    let sent_before = sent_counts(&stack);

    let lag: serde_json::Value = serde_json::from_slice(&dep.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(lag["journal"]["pending"], 0, "run --once leaves nothing unappended: {lag:#}");
    let verify = dep.run(&["store", "verify", "--json"]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let before = snapshot(&dep);
    assert_eq!(before["outbox"][0], 1, "one reply waits for SMTP: {:#}", before["outbox"]);

    // A crash between an APPEND and the queue's removal appends a message twice.
    let journal = stack.fetch("security@intake.test", "Secintake/Journal");
    doveadm_save(&stack, "Secintake/Journal", &journal[0]);

    // The journal is not readable: no report text, title or address in clear.
    for m in &journal {
        let text = String::from_utf8_lossy(m);
        for secret in ["path traversal", "download handler", "alice@reporter.test", "Reproduced on the staging"] {
            assert!(!text.contains(secret), "{secret:?} in a journal message");
        }
    }

    // The machine is lost: the store goes, the rebuild reads the mailbox.
    let state = dep.dir.path().join("state");
    std::fs::remove_dir_all(&state).unwrap();
    let out = dep.run_ok(&["store", "rebuild"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Rebuilt") && said.contains("1 quarantine copies"), "{said}");
    assert!(!said.contains("Warning"), "{said}");
    assert_same(&before, &snapshot(&dep), "after a rebuild");
    let verify = dep.run(&["store", "verify"]);
    assert!(verify.status.success(), "verify after rebuild: {}", String::from_utf8_lossy(&verify.stdout));

    // A rebuild killed half-way, then done again: the half-built store is set aside.
    let mut child = dep.cmd().args(["store", "rebuild"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let _ = child.kill();
    let _ = child.wait();
    let out = dep.run_ok(&["store", "rebuild"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Rebuilt"));
    assert_same(&before, &snapshot(&dep), "after a killed rebuild and another");

    // --into leaves the live store alone and builds the same elsewhere.
    let standby = dep.dir.path().join("standby");
    dep.run_ok(&["store", "rebuild", "--into", standby.to_str().unwrap()]);
    assert!(standby.join("db").exists());

    // The next pass sends only what was queued and never delivered: the one reply.
    dep.run_ok(&["run", "--once"]);
    std::thread::sleep(Duration::from_secs(2));
    let sent_after = sent_counts(&stack);
    let total = |c: (usize, usize, usize)| c.0 + c.1 + c.2;
    assert_eq!(total(sent_after), total(sent_before) + 1, "before {sent_before:?}, after {sent_after:?}");
    let status: serde_json::Value = serde_json::from_slice(&dep.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["outbox_depth"], 0);

    // New mail after the rebuild is read as usual, numbered after the old cases.
    let late = plain_report("bob@reporter.test", "Late report", "Another one.\n", "late-1@reporter.test");
    stack.deliver("security@intake.test", &late);
    dep.run_ok(&["run", "--once"]);
    let list = dep.json(&["case", "list", "--json"]);
    let n = list.as_array().unwrap().len();
    assert_eq!(n, 8);
    assert!(list.as_array().unwrap().iter().all(|c| c["id"] != list[0]["id"] || c == &list[0]));
    let verify = dep.run(&["store", "verify", "--json"]);
    assert!(verify.status.success(), "verify at the end: {}", String::from_utf8_lossy(&verify.stdout));

    // An old journal message whose clear header is made to look new (to roll records
    // back when applied last) is refused: the header must say what the signed content says.
    let old = String::from_utf8_lossy(&journal[0]).into_owned();
    let at = old.find("; last=").unwrap() + "; last=".len();
    let end = at + old[at..].find(';').unwrap();
    let forged = format!("{}999999{}", &old[..at], &old[end..]);
    doveadm_save(&stack, "Secintake/Journal", forged.as_bytes());
    let out = dep.run(&["store", "rebuild", "--into", dep.dir.path().join("forged").to_str().unwrap()]);
    assert!(!out.status.success(), "a forged header was applied");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its signed content"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kill -9` at random points of backlog passes (between and during the journal's
/// APPENDs, the moves, the outbox), then passes until everything is handled and sent: the
/// store rebuilt from the mailbox is the same, and `store verify` finds nothing.
#[test]
fn kill_9_during_the_journal_then_rebuild_is_the_same() {
    const N: usize = 300;
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "[limits]\nacks_per_address_per_hour = 5000\nacks_per_hour = 5000\n");
    for i in 0..N {
        let m = plain_report(
            "bob@reporter.test",
            &format!("Report {i}"),
            &format!("Body {i}\n"),
            &format!("k9-{i}@reporter.test"),
        );
        stack.deliver("security@intake.test", &m);
    }
    let mut kills = 0;
    let mut seed: u64 = 0x2545f4914f6cdd1d;
    for _ in 0..40 {
        if stack.count("security@intake.test", "INBOX") == 0 {
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = dep.cmd().args(["run", "--once"]).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(40 + seed % 400));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 3, "only {kills} kills landed");
    // Undisturbed passes until the outbox is empty (a killed attempt waits its backoff).
    let start = std::time::Instant::now();
    loop {
        dep.run_ok(&["run", "--once"]);
        let st: serde_json::Value = serde_json::from_slice(&dep.run(&["status", "--json"]).stdout).unwrap();
        if st["outbox_depth"] == 0 && st["journal"]["pending"] == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "never drained: {st:#}");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    let verify = dep.run(&["store", "verify"]);
    assert!(verify.status.success(), "verify: {}", String::from_utf8_lossy(&verify.stdout));
    let before = snapshot(&dep);
    assert_eq!(before["list"].as_array().unwrap().len(), N);
    std::fs::remove_dir_all(dep.dir.path().join("state")).unwrap();
    dep.run_ok(&["store", "rebuild"]);
    assert_same(&before, &snapshot(&dep), "after kill -9s and a rebuild");
}
