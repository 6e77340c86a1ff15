//! End to end on the real mail stack: reports sent through Postfix into Dovecot,
//! fetched by secintake over IMAP (STARTTLS, private CA), acknowledged through SMTP,
//! checked with real gpg as the reporter and the team would.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn encrypted_and_plain_reports_become_cases_with_acks_and_summaries() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    let alice = Gpg::new("Alice <alice@reporter.test>");
    alice.import(&dep.intake_pub);
    team.import(&dep.intake_pub);

    let report = pgp_mime_report(
        &alice,
        "alice@reporter.test",
        &dep.intake_fpr,
        "SQL injection in the login form",
        "Affected Version(s): 1.2.0, 1.2.1\nCWE-89\nTLP:AMBER\n\nThe login form concatenates the user name into SQL.\n",
        "report-1@reporter.test",
        true,
    );
    stack.send("alice@reporter.test", "security@intake.test", &report);
    let plain = plain_report(
        "bob@reporter.test",
        "XSS in search",
        "The search box reflects input.\n",
        "report-2@reporter.test",
    );
    stack.send("bob@reporter.test", "security@intake.test", &plain);
    stack.wait("security@intake.test", "INBOX", 2, 30);

    // At the most verbose level, too: no decrypted text, no subject, no password.
    let out = dep.cmd().args(["run", "--once"]).env("SECINTAKE_LOG", "trace,async_imap=trace").output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(logs.contains("Case opened"), "trace logs missing: {logs}");
    for secret in ["SQL injection", "concatenates", "login form", "LOGIN", "XSS in search", "PRIVATE KEY"] {
        assert!(!logs.contains(secret), "{secret:?} in logs:\n{logs}");
    }

    // The cases.
    let list = dep.json(&["case", "list", "--json"]);
    let cases = list.as_array().unwrap();
    assert_eq!(cases.len(), 2, "{list:#}");
    assert!(cases.iter().all(|c| c.get("text").is_none()), "list must omit text");
    let enc = cases.iter().find(|c| c["reporter"]["address"] == "alice@reporter.test").unwrap();
    let id = enc["id"].as_str().unwrap().to_owned();
    let shown = dep.json(&["case", "show", &id, "--json"]);
    assert_eq!(shown["encrypted"], true);
    assert_eq!(shown["decrypted"], true);
    assert_eq!(shown["signature"], "good");
    assert_eq!(shown["title"], "SQL injection in the login form");
    assert_eq!(shown["reporter"]["key_fingerprint"], alice.fpr.as_str());
    assert_eq!(shown["reporter"]["key_source"], "autocrypt");
    assert_eq!(shown["messages"][0]["message_id"], "report-1@reporter.test");
    assert_eq!(shown["messages"][0]["signer_fingerprint"], alice.fpr.as_str());
    assert_eq!(shown["cwe"], serde_json::json!(["CWE-89"]));
    assert_eq!(shown["tlp"], "AMBER");
    assert_eq!(shown["affected_versions"], serde_json::json!(["1.2.0", "1.2.1"]));
    assert!(shown["text"].as_str().unwrap().contains("concatenates the user name"));
    assert_eq!(shown["status"], "acknowledged");
    assert_eq!(shown["ack"]["encrypted"], true);
    assert!(id.starts_with("SEC-") && id.len() == "SEC-2026-0001".len(), "{id}");
    let plain_case = cases.iter().find(|c| c["reporter"]["address"] == "bob@reporter.test").unwrap();
    assert_eq!(plain_case["encrypted"], false);
    assert_eq!(plain_case["signature"], "none");
    assert_eq!(plain_case["title"], "XSS in search");
    assert_eq!(plain_case["ack"]["encrypted"], false);

    // The mailbox: empty, everything in Processed, nothing deleted.
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    assert_eq!(stack.count("security@intake.test", "Processed"), 2);

    // Alice's ack: encrypted to her, signed by the intake key; gpg decrypts and verifies.
    stack.wait("alice@reporter.test", "INBOX", 1, 30);
    let acks = stack.fetch("alice@reporter.test", "INBOX");
    let ack = &acks[0];
    assert_eq!(header(ack, "Subject").unwrap(), format!("[{id}] Report received"));
    assert_eq!(header(ack, "Auto-Submitted").unwrap(), "auto-replied");
    assert_eq!(header(ack, "In-Reply-To").unwrap(), "<report-1@reporter.test>");
    assert!(header(ack, "Autocrypt").unwrap().starts_with("addr=security@intake.test;"));
    let (plaintext, status) = alice.decrypt(&encrypted_payload(ack));
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(status.contains(&dep.intake_fpr), "{status}");
    let plaintext = String::from_utf8_lossy(&plaintext);
    assert!(plaintext.contains(&id));
    let sha = dep.json(&["mail", "show", "report-1@reporter.test", "--json"])["sha256"].as_str().unwrap().to_owned();
    assert!(plaintext.contains(&sha), "ack must carry the message hash");

    // Bob's ack: signed only, says nothing of content; gpg --verify accepts it.
    stack.wait("bob@reporter.test", "INBOX", 1, 30);
    let bob_ack = &stack.fetch("bob@reporter.test", "INBOX")[0];
    let (signed, sig) = split_signed(bob_ack);
    let bob = Gpg::new("Bob <bob@reporter.test>");
    bob.import(&dep.intake_pub);
    let status = bob.verify(&signed, &sig);
    assert!(status.contains("GOODSIG"), "{status}");
    let signed_text = String::from_utf8_lossy(&signed);
    assert!(!signed_text.contains("XSS") && !signed_text.contains("reflects"), "{signed_text}");

    // The team summaries: outer subject without title; the team decrypts them.
    stack.wait("team@team.test", "INBOX", 2, 30);
    let sums = stack.fetch("team@team.test", "INBOX");
    let mut titles = Vec::new();
    for s in &sums {
        let subj = header(s, "Subject").unwrap();
        assert!(subj.ends_with("] New report"), "{subj}");
        assert!(!String::from_utf8_lossy(s).contains("SQL injection"));
        let (pt, status) = team.decrypt(&encrypted_payload(s));
        assert!(status.contains("GOODSIG"), "{status}");
        titles.push(String::from_utf8_lossy(&pt).into_owned());
    }
    assert!(titles.iter().any(|t| t.contains("SQL injection in the login form") && t.contains("concatenates")));

    // A reply to Alice (key known from her Autocrypt header) arrives encrypted and
    // threaded; gpg decrypts and verifies it.
    let mut reply = dep
        .cmd()
        .args(["case", "reply", &id, "--as", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        reply.stdin.take().unwrap().write_all(b"We reproduced the injection; a fix is planned for 1.2.2.\n").unwrap();
    }
    let out = reply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stack.wait("alice@reporter.test", "INBOX", 2, 30);
    let r = &stack.fetch("alice@reporter.test", "INBOX")[1];
    assert_eq!(header(r, "Subject").unwrap(), format!("[{id}] Update on your report"));
    assert_eq!(header(r, "In-Reply-To").unwrap(), "<report-1@reporter.test>");
    let (pt, status) = alice.decrypt(&encrypted_payload(r));
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(String::from_utf8_lossy(&pt).contains("fix is planned"));
    let log = dep.json(&["case", "log", &id, "--json"]);
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "reply" && e["who"] == "carol"));

    // A second pass creates nothing new.
    dep.run_ok(&["run", "--once"]);
    assert_eq!(dep.json(&["case", "list", "--json"]).as_array().unwrap().len(), 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(stack.count("alice@reporter.test", "INBOX"), 2);
    assert_eq!(stack.count("team@team.test", "INBOX"), 2);

    // The same report delivered again is a duplicate: one record, no second case.
    stack.deliver("security@intake.test", &report);
    dep.run_ok(&["run", "--once"]);
    assert_eq!(dep.json(&["case", "list", "--json"]).as_array().unwrap().len(), 2);
    let mails = dep.json(&["mail", "list", "--json"]);
    assert_eq!(mails.as_array().unwrap().len(), 2, "{mails:#}");
    assert_eq!(stack.count("security@intake.test", "Processed"), 3);
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
}

#[test]
fn daemon_serves_cli_over_socket_picks_up_mail_and_stops_on_sigterm() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");

    let mut child = Reaped(dep.cmd().arg("run").stderr(Stdio::piped()).spawn().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("ready")) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => log.push(l),
            Err(_) => panic!("no ready line; log: {log:#?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    // check --online logs in to IMAP and SMTP (and works while the daemon runs).
    let out = dep.run(&["check", "--online"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("IMAP login") && said.contains("SMTP connection") && said.contains("self-test"), "{said}");

    // The CLI works while the daemon holds the store.
    let empty = dep.json(&["case", "list", "--json"]);
    assert_eq!(empty, serde_json::json!([]));
    // Regression (issue 11): commands on the user's own files were relayed to the
    // daemon, which cannot read or write them. They run in the client.
    // A relative path is the client's: run from another directory than the daemon's.
    let cwd = tempfile::tempdir().unwrap();
    let out = dep.cmd().args(["keys", "wkd", "--out", "wkd-out"]).current_dir(cwd.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cwd.path().join("wkd-out/.well-known/openpgpkey/policy").exists(), "written where the user asked");

    // New mail is picked up without a restart (IDLE).
    stack.send(
        "bob@reporter.test",
        "security@intake.test",
        &plain_report("bob@reporter.test", "Path traversal", "GET /../../etc/passwd\n", "daemon-1@reporter.test"),
    );
    assert!(
        eventually(Duration::from_secs(30), || dep.json(&["case", "list", "--json"]).as_array().unwrap().len() == 1),
        "the daemon did not open a case"
    );
    stack.wait("bob@reporter.test", "INBOX", 1, 30);

    // status through the socket.
    let st = dep.json(&["status", "--json"]);
    assert_eq!(st["running"], true, "{st:#}");
    assert_eq!(st["imap_connected"], true, "{st:#}");
    assert_eq!(st["idle"], true, "{st:#}");
    assert_eq!(st["cases"], 1);
    assert!(st["last_imap_sync"].is_string());
    assert!(eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["outbox_depth"] == 0));

    // SIGHUP with a broken config: refused, the daemon keeps running on the old one.
    let good = std::fs::read_to_string(&dep.config).unwrap();
    std::fs::write(&dep.config, good.replace("poll_interval = \"30s\"", "poll_interval = \"soon\"")).unwrap();
    let pid = child.id().to_string();
    let hup = || std::process::Command::new("kill").arg("-HUP").arg(&pid).status().unwrap();
    hup();
    assert!(
        eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["last_errors"]["reload"]["error"]
            .as_str()
            .map(|e| e.contains("imap.poll_interval"))
            .unwrap_or(false)),
        "reload error not reported: {:#}",
        dep.json(&["status", "--json"])
    );
    assert!(child.try_wait().unwrap().is_none(), "daemon died on a bad reload");
    // A good config reloads.
    std::fs::write(&dep.config, good.replace("project = \"Demo Project\"", "project = \"Renamed Project\"")).unwrap();
    hup();
    assert!(
        eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["last_reload"].is_string()),
        "no reload"
    );
    assert!(dep.json(&["status", "--json"])["last_errors"].get("reload").is_none());
    // The daemon still works after the reload.
    stack.send(
        "bob@reporter.test",
        "security@intake.test",
        &plain_report("bob@reporter.test", "Second", "Another one.\n", "daemon-2@reporter.test"),
    );
    assert!(
        eventually(Duration::from_secs(30), || dep.json(&["case", "list", "--json"]).as_array().unwrap().len() == 2),
        "no case after reload"
    );

    // SIGTERM: exit 0 within 10 s.
    let t = Instant::now();
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "did not stop within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    // And the store is usable directly afterwards.
    assert_eq!(dep.json(&["case", "list", "--json"]).as_array().unwrap().len(), 2);
    let out = dep.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "status without a daemon exits 1");
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["running"], false);
}

/// kill -9 at random moments during a backlog, again and again: every message ends
/// exactly once (one record, one case), none is lost, none is counted twice.
#[test]
fn kill_9_during_backlog_loses_nothing_and_counts_nothing_twice() {
    const N: usize = 1200;
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "[limits]\nacks_per_address_per_hour = 5000\nacks_per_hour = 5000\n");
    for i in 0..N {
        stack.deliver(
            "security@intake.test",
            &plain_report(
                "bob@reporter.test",
                &format!("Report {i}"),
                &format!("Body {i}\n"),
                &format!("crash-{i}@reporter.test"),
            ),
        );
    }
    // Two messages without Message-ID: recognised by content hash.
    for i in 0..2 {
        stack.deliver(
            "security@intake.test",
            format!("From: bob@reporter.test\r\nTo: security@intake.test\r\nSubject: No id {i}\r\n\r\nNo Message-ID {i}.\r\n").as_bytes(),
        );
    }
    let total = N + 2;
    assert_eq!(stack.count("security@intake.test", "INBOX"), total);

    let mut kills = 0;
    let mut unnamed = std::collections::BTreeSet::new();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for _round in 0..80 {
        if stack.count("security@intake.test", "INBOX") == 0 {
            break;
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Short enough that each run gets through a few batches at most (it starts
        // with small ones), so the backlog takes well over 20 kills.
        let delay = Duration::from_millis(30 + seed % 300);
        let mut child = dep.cmd().args(["run", "--once"]).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        // Segments the kill left between their fsync and their batch's commit: the
        // next start removes them (checked at the end).
        let store = secintake::atrest::open(&secintake::config::Config::load(&dep.config).unwrap()).unwrap();
        unnamed.extend(store.unnamed_segments().unwrap());
    }
    // Let runs finish undisturbed until the outbox is empty: a killed attempt was
    // counted first, so its mail waits out its backoff (10 s) before the next try.
    dep.run_ok(&["run", "--once"]);
    let start = std::time::Instant::now();
    let depth = || -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&dep.run(&["status", "--json"]).stdout).unwrap()["outbox_depth"]
            .clone()
    };
    while depth() != 0 {
        assert!(start.elapsed() < Duration::from_secs(120), "outbox never drained");
        std::thread::sleep(Duration::from_secs(2));
        dep.run_ok(&["run", "--once"]);
    }
    assert!(kills >= 20, "the backlog finished before 20 kills ({kills}); make it bigger or the delays shorter");
    eprintln!("kill -9 backlog: {total} messages, {kills} kills, {} segments left unnamed", unnamed.len());

    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    assert_eq!(stack.count("security@intake.test", "Processed"), total, "every message moved exactly once");
    let mails = dep.json(&["mail", "list", "--json"]);
    let mails = mails.as_array().unwrap();
    assert_eq!(mails.len(), total, "one record per message");
    assert!(mails.iter().all(|m| m["disposition"] == "case"), "{mails:#?}");
    let cases = dep.json(&["case", "list", "--json"]);
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), total, "one case per report");
    let mut ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "case ids unique");
    assert!(cases.iter().all(|c| c["messages"].as_array().unwrap().len() == 1));
    // Acks: a crash between SMTP acceptance and the mark may resend, but always the
    // same Message-ID; every case got its ack.
    stack.wait("bob@reporter.test", "INBOX", total, 60);
    let acks = stack.fetch("bob@reporter.test", "INBOX");
    let mut ack_ids: Vec<String> = acks.iter().map(|a| header(a, "Message-ID").unwrap()).collect();
    ack_ids.sort();
    ack_ids.dedup();
    assert_eq!(ack_ids.len(), total, "one distinct ack per case");
    eprintln!("kill -9 test: {kills} kills, {} ack deliveries for {total} cases", acks.len());
    // Every case's text is where its record says, and the segments the kills left
    // half-recorded were removed by the starts after them: none is left to sweep.
    let store = secintake::atrest::open(&secintake::config::Config::load(&dep.config).unwrap()).unwrap();
    for c in cases {
        let id = c["id"].as_str().unwrap();
        let case = store.case(id).unwrap().unwrap();
        assert!(case.text.starts_with("Body ") || case.text.starts_with("No Message-ID"), "{id}: {:?}", case.text);
    }
    assert_eq!(store.unnamed_segments().unwrap(), Vec::<String>::new(), "a segment no record names survived a start");
    let texts = dep.dir.path().join("state/texts");
    assert!(unnamed.iter().all(|name| !texts.join(name).exists()), "the starts after the kills removed {unnamed:?}");
}

/// SMTP down: reports still become cases, their mail waits in the outbox and goes out
/// exactly once when SMTP is back. A header-injection attempt yields no extra header;
/// an auto-reply gets no ack.
#[test]
fn smtp_outage_injection_and_auto_reply() {
    use base64::Engine;
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    let log = dep.dir.path().join("daemon.log");
    let mut child = Reaped(dep.cmd().arg("run").stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap());
    let up = eventually(Duration::from_secs(30), || dep.run(&["status", "--json"]).status.success());
    assert!(up, "daemon not up: {}", std::fs::read_to_string(&log).unwrap());

    stack.stop_postfix();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let injected = format!(
        "From: =?UTF-8?B?{}?= <bob@reporter.test>\r\nTo: security@intake.test\r\nSubject: =?UTF-8?B?{}?=\r\n\
         Message-ID: <inject-1@reporter.test>\r\nContent-Type: text/plain\r\n\r\nInjection attempt.\r\n",
        b64("Mallory\r\nTo: victim@team.test"),
        b64("Hi\r\nBcc: carol@team.test")
    );
    stack.deliver("security@intake.test", injected.as_bytes());
    stack.deliver(
        "security@intake.test",
        b"From: alice@reporter.test\r\nTo: security@intake.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\nMessage-ID: <ooo-1@reporter.test>\r\n\r\nAway.\r\n",
    );
    assert!(
        eventually(Duration::from_secs(30), || dep.json(&["mail", "list", "--json"]).as_array().unwrap().len() == 2),
        "messages not handled"
    );
    let mails = dep.json(&["mail", "list", "--json"]);
    let ooo = mails.as_array().unwrap().iter().find(|m| m["message_id"] == "ooo-1@reporter.test").unwrap().clone();
    assert_eq!(ooo["disposition"], "non-report");
    assert_eq!(ooo["reason"], "auto-reply");
    assert!(
        eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["outbox_depth"].as_u64() == Some(2)),
        "ack and summary should wait in the outbox: {:#}",
        dep.json(&["status", "--json"])
    );
    // The server is down: the outbox says so, and waits without attempting (or
    // counting an attempt at) each mail.
    assert!(
        eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["last_errors"]["outbox"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be reached"))),
        "status should say the SMTP server cannot be reached: {:#}",
        dep.json(&["status", "--json"])
    );
    let case = dep.json(&["case", "list", "--json"]);
    let id = case[0]["id"].as_str().unwrap().to_owned();
    let shown = dep.json(&["case", "show", &id, "--json"]);
    assert!(shown["ack"].is_null(), "no ack can have been sent: {shown:#}");

    stack.start_postfix();
    stack.wait("bob@reporter.test", "INBOX", 1, 60);
    stack.wait("team@team.test", "INBOX", 1, 60);
    assert!(eventually(Duration::from_secs(10), || dep.json(&["status", "--json"])["outbox_depth"] == 0));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stack.count("bob@reporter.test", "INBOX"), 1, "ack delivered exactly once");
    assert_eq!(stack.count("team@team.test", "INBOX"), 1, "summary delivered exactly once");
    assert_eq!(stack.count("alice@reporter.test", "INBOX"), 0, "no ack to an auto-reply");
    assert_eq!(stack.count("carol@team.test", "INBOX"), 0, "no injected Bcc recipient");

    let ack = &stack.fetch("bob@reporter.test", "INBOX")[0];
    let text = String::from_utf8_lossy(&crlf(ack)).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap();
    for line in head.split("\r\n") {
        let l = line.to_ascii_lowercase();
        assert!(!l.starts_with("bcc:"), "injected header: {line}");
        assert!(!(l.starts_with("to:") && l.contains("victim")), "injected header: {line}");
    }
    assert_eq!(header(ack, "To").unwrap(), "<bob@reporter.test>");
    let case = &dep.json(&["case", "list", "--json"])[0];
    assert_eq!(case["title"], "Hi Bcc: carol@team.test");
    assert!(case["ack"]["sent_at"].is_string());

    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
}

/// Every fixture form, delivered into the real Dovecot mailbox and fetched over IMAP,
/// reaches the same conclusion as its golden JSON (disposition, reason, title,
/// signature), and ends in the right IMAP folder.
#[test]
fn every_fixture_form_end_to_end_through_dovecot() {
    let stack = MailStack::start();
    // Not carol@team.test: the command fixtures are signed by keys/team-carol, which the
    // golden deployment does not hold as a team cert (they read as reports there); a team
    // cert of another key for the same address would make them refused commands here.
    let team = Gpg::new("Team Member <member@team.test>");
    let dep = Deployment::new(&stack, &[&team], "[limits]\nmax_plaintext_bytes = \"16MiB\"\n");
    // The fixtures were encrypted to the test intake keys (one passphrase-protected).
    let keys = repo().join("keys");
    let mut tsk = std::fs::read(keys.join("test-intake.key.asc")).unwrap();
    tsk.extend(std::fs::read(keys.join("test-intake-protected.key.asc")).unwrap());
    // Keys as GnuPG 2.4 (LibrePGP AEAD) and OpenPGP.js 6 (SEIPDv2) make them: the
    // interop fixtures are encrypted to these.
    tsk.extend(std::fs::read(keys.join("test-intake-librepgp.key.asc")).unwrap());
    tsk.extend(std::fs::read(keys.join("test-intake-rfc9580.key.asc")).unwrap());
    std::fs::write(dep.dir.path().join("keys/intake.key.asc"), tsk).unwrap();
    let pass = dep.dir.path().join("pass");
    std::fs::copy(keys.join("test-intake-protected.passphrase"), &pass).unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = std::fs::read_to_string(&dep.config)
        .unwrap()
        .replace("team_certs = \"team\"", "team_certs = \"team\"\npassphrase_file = \"pass\"");
    std::fs::write(&dep.config, cfg).unwrap();

    let mut fixtures = fixture_files();
    // The case the follow-up and bounce fixtures refer to must be SEC-2026-0001.
    let first = repo().join("fixtures/pgpmime/encrypted-signed.eml");
    fixtures.retain(|f| *f != first);
    fixtures.insert(0, first);
    for f in &fixtures {
        stack.deliver("security@intake.test", &std::fs::read(f).unwrap());
    }
    let out = dep.run(&["run", "--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mails = dep.json(&["mail", "list", "--json"]);
    let mails = mails.as_array().unwrap();
    assert_eq!(mails.len(), fixtures.len(), "one record per message");
    let mut quarantined = 0;
    for f in &fixtures {
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f.with_extension("json")).unwrap()).unwrap();
        let raw = std::fs::read(f).unwrap();
        // One store for all: interop/msgid-collision reuses another fixture's
        // Message-ID; whichever of the two arrives second is kept apart under its body
        // hash with the reason message-id-reused. Tell them apart by their titles.
        let title_of = |m: &serde_json::Value| -> serde_json::Value {
            match m["case_id"].as_str() {
                Some(id) => dep.json(&["case", "show", id, "--json"])["title"].clone(),
                None => serde_json::Value::Null,
            }
        };
        let rec = match header(&raw, "Message-ID") {
            Some(mid) => {
                let mid = mid.trim_matches(['<', '>']).to_owned();
                let same: Vec<&serde_json::Value> = mails
                    .iter()
                    .filter(|m| {
                        m["message_id"] == mid.as_str()
                            || m["reason"].as_str().is_some_and(|r| r.contains(&format!("<{mid}>")))
                    })
                    .collect();
                if same.len() > 1 {
                    same.into_iter().find(|m| title_of(m) == golden["case"]["title"])
                } else {
                    same.into_iter().next()
                }
            }
            None => {
                mails.iter().find(|m| m["message_id"].as_str().unwrap().starts_with("sha256:") && m["reason"].is_null())
            }
        }
        .unwrap_or_else(|| panic!("{}: no record", f.display()));
        let name = f.display();
        assert_eq!(rec["disposition"], golden["outcome"]["disposition"], "{name}");
        let reused = rec["reason"].as_str().is_some_and(|r| r.starts_with("message-id-reused"));
        if !reused {
            assert_eq!(rec["reason"], golden["outcome"]["reason"], "{name}");
        }
        if rec["disposition"] == "quarantine" {
            quarantined += 1;
        }
        if rec["disposition"] == "case" {
            let c = dep.json(&["case", "show", rec["case_id"].as_str().unwrap(), "--json"]);
            for field in ["title", "encrypted", "decrypted", "cwe", "tlp", "cvss", "credit", "attachments"] {
                assert_eq!(c[field], golden["case"][field], "{name}: {field}");
            }
            // Unlike the golden runs (a fresh store each), Alice's key is remembered
            // from the first report, so her later signatures verify: good, except the
            // SHA-1 one, which the policy rejects (bad, never good).
            // Content outside the signed part makes it partial; Mallory's cert naming
            // Alice's address, once hers is pinned, a key conflict.
            let unsigned = c["text"].as_str().unwrap_or("").contains("[unencrypted text around")
                || c["text"].as_str().unwrap_or("").contains("[unsigned text")
                || c["attachments"].as_array().unwrap().iter().any(|a| a["signed"] == false);
            let expected = if f.ends_with("interop/forged-from-mallory.eml") {
                "key-conflict"
            } else if golden["case"]["signature"] == "unknown-key" && c["reporter"]["address"] == "alice@reporter.test"
            {
                if f.ends_with("legacy/sha1-signed.eml") {
                    "bad"
                } else if unsigned {
                    "partial"
                } else {
                    "good"
                }
            } else {
                golden["case"]["signature"].as_str().unwrap()
            };
            assert_eq!(c["signature"], expected, "{name}: signature");
        }
    }
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    assert_eq!(stack.count("security@intake.test", "Quarantine"), quarantined);
    assert_eq!(stack.count("security@intake.test", "Processed"), fixtures.len() - quarantined);
}

/// A UIDVALIDITY change makes every UID new; handled messages are still recognised
/// (Message-ID, content) and no case or ack is created twice.
#[test]
fn uidvalidity_change_creates_nothing_twice() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    let a = plain_report("bob@reporter.test", "First", "One.\n", "uidv-1@reporter.test");
    stack.deliver("security@intake.test", &a);
    dep.run_ok(&["run", "--once"]);
    assert_eq!(dep.json(&["case", "list", "--json"]).as_array().unwrap().len(), 1);
    // The same message is back in the INBOX under a new UIDVALIDITY, with a new one.
    stack.deliver("security@intake.test", &a);
    stack.set_uidvalidity("security@intake.test", "INBOX", 4242);
    stack.deliver(
        "security@intake.test",
        &plain_report("bob@reporter.test", "Second", "Two.\n", "uidv-2@reporter.test"),
    );
    let out = dep.run(&["run", "--once"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UIDVALIDITY changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dep.json(&["case", "list", "--json"]).as_array().unwrap().len(), 2);
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    stack.wait("bob@reporter.test", "INBOX", 2, 30);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.count("bob@reporter.test", "INBOX"), 2, "one ack per case, none for the duplicate");
}

/// A message over `limits.max_message_bytes` is never held whole: it is streamed only
/// to hash it, quarantined as too-large under its own Message-ID and From, and moved.
#[test]
fn oversized_message_is_hashed_in_chunks_and_quarantined() {
    use sha2::{Digest, Sha256};
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "[limits]\nmax_message_bytes = \"1MiB\"\n");
    let mut big = b"From: Bob <bob@reporter.test>\r\nTo: security@intake.test\r\nSubject: Huge PoC\r\nMessage-ID: <huge-1@reporter.test>\r\n\r\n".to_vec();
    let line = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
    while big.len() < 9 << 20 {
        big.extend_from_slice(line);
    }
    stack.deliver("security@intake.test", &big);
    let served = crlf(&stack.fetch("security@intake.test", "INBOX")[0]);
    dep.run_ok(&["run", "--once"]);
    let mails = dep.json(&["mail", "list", "--json"]);
    let m = &mails[0];
    assert_eq!(m["message_id"], "huge-1@reporter.test");
    assert_eq!(m["from"], "bob@reporter.test");
    assert_eq!(m["disposition"], "quarantine");
    assert_eq!(m["reason"], "too-large");
    assert_eq!(m["sha256"], hex::encode(Sha256::digest(&served)), "hash of the bytes IMAP served");
    assert_eq!(stack.count("security@intake.test", "Quarantine"), 1);
    assert_eq!(stack.count("security@intake.test", "INBOX"), 0);
    assert_eq!(dep.json(&["case", "list", "--json"]), serde_json::json!([]));
}

/// Encrypted to a key the intake lacks: quarantined (IMAP copy in the quarantine
/// folder). After the key is added, `quarantine retry` opens the case and the next pass
/// moves the IMAP copy to the processed folder.
#[test]
fn quarantine_retry_after_key_rotation_moves_the_imap_copy() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    stack.deliver(
        "security@intake.test",
        &std::fs::read(repo().join("fixtures/pgpmime/encrypted-unsigned.eml")).unwrap(),
    );
    dep.run_ok(&["run", "--once"]);
    let q = dep.json(&["quarantine", "list", "--json"]);
    assert_eq!(q[0]["reason"], "no-key");
    assert_eq!(stack.count("security@intake.test", "Quarantine"), 1);
    // The old key joins the key file (rotation), then the message is retried.
    let key = dep.dir.path().join("keys/intake.key.asc");
    let mut both = std::fs::read(&key).unwrap();
    both.extend(std::fs::read(repo().join("keys/test-intake.key.asc")).unwrap());
    std::fs::write(&key, both).unwrap();
    let out = dep.run_ok(&["quarantine", "retry", q[0]["id"].as_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(": case SEC-"));
    dep.run_ok(&["run", "--once"]);
    assert_eq!(stack.count("security@intake.test", "Quarantine"), 0);
    assert_eq!(stack.count("security@intake.test", "Processed"), 1);
    assert_eq!(dep.json(&["quarantine", "list", "--json"]), serde_json::json!([]));
}

/// A message that crashed or hung the daemon `MAX_ATTEMPTS` times (each attempt is
/// counted durably before it is made) is quarantined unread with its own reason, and
/// the message after it is processed: one poison message never stops intake.
#[test]
fn message_that_keeps_crashing_the_daemon_is_quarantined_and_intake_goes_on() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    stack.deliver(
        "security@intake.test",
        &plain_report("bob@reporter.test", "Poison", "Kills the parser.\n", "poison-1@reporter.test"),
    );
    stack.deliver(
        "security@intake.test",
        &plain_report("bob@reporter.test", "Next", "An ordinary report.\n", "next-1@reporter.test"),
    );
    stack.set_uidvalidity("security@intake.test", "INBOX", 777);
    // As if processing UID 1 had been attempted MAX_ATTEMPTS times, the process dying
    // each time before an outcome was recorded.
    {
        let store = secintake::atrest::open(&secintake::config::Config::load(&dep.config).unwrap()).unwrap();
        let p = secintake::pipeline::Pipeline::load(
            std::sync::Arc::new(secintake::config::Config::load(&dep.config).unwrap()),
            store,
        )
        .unwrap();
        let src = secintake::pipeline::Source { mailbox: "INBOX".into(), uidvalidity: 777, uid: 1 };
        for _ in 0..secintake::pipeline::MAX_ATTEMPTS {
            p.count_attempts(std::slice::from_ref(&src)).unwrap();
        }
    }
    dep.run_ok(&["run", "--once"]);
    let mails = dep.json(&["mail", "list", "--json"]);
    let by = |id: &str| mails.as_array().unwrap().iter().find(|m| m["message_id"] == id).unwrap().clone();
    assert_eq!(by("poison-1@reporter.test")["disposition"], "quarantine");
    assert_eq!(by("poison-1@reporter.test")["reason"], "processing-failed");
    assert_eq!(by("next-1@reporter.test")["disposition"], "case");
    assert_eq!(stack.count("security@intake.test", "Quarantine"), 1);
    assert_eq!(stack.count("security@intake.test", "Processed"), 1);
}

/// A TCP proxy on loopback that either swallows connections (accepts, reads, never
/// answers: an SMTP server that hangs) or forwards them to `target`.
struct Blackhole {
    port: u16,
    forward: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Blackhole {
    fn start(target: u16) -> Blackhole {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let forward = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fwd = forward.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let forward = fwd.load(Ordering::SeqCst);
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    if !forward {
                        let mut buf = [0u8; 4096];
                        while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
                        return;
                    }
                    let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", target)) else { return };
                    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut s2);
                        let _ = s2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.flush();
                    let _ = client.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        Blackhole { port, forward }
    }
}

/// An SMTP server that accepts connections and never answers must not hold intake
/// back (the outbox is its own task): reports keep becoming cases while it hangs, and
/// every ack goes out once it answers again.
#[test]
fn smtp_blackhole_never_stops_intake_and_acks_go_out_after() {
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "");
    let hole = Blackhole::start(stack.port("SMTP_PORT"));
    let cfg = std::fs::read_to_string(&dep.config).unwrap();
    let cfg = cfg.replacen(&format!("port = {}", stack.port("SMTP_PORT")), &format!("port = {}", hole.port), 1);
    std::fs::write(&dep.config, cfg).unwrap();
    let log = dep.dir.path().join("daemon.log");
    let mut child = Reaped(dep.cmd().arg("run").stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap());
    let up = eventually(Duration::from_secs(30), || dep.run(&["status", "--json"]).status.success());
    assert!(up, "daemon not up: {}", std::fs::read_to_string(&log).unwrap());
    // Reports arrive while SMTP hangs: each becomes a case within seconds.
    for i in 0..3 {
        stack.deliver(
            "security@intake.test",
            &plain_report("bob@reporter.test", &format!("Hang {i}"), "Body.\n", &format!("hang-{i}@reporter.test")),
        );
        assert!(
            eventually(Duration::from_secs(15), || dep.json(&["case", "list", "--json"]).as_array().unwrap().len()
                == i + 1),
            "intake stalled behind a hanging SMTP server: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_secs(12));
    }
    assert_eq!(stack.count("bob@reporter.test", "INBOX"), 0);
    // SIGTERM while sends hang: gone, cleanly, within the contract's 10 s.
    let t = std::time::Instant::now();
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    assert!(t.elapsed() < Duration::from_secs(10), "SIGTERM took {:?}", t.elapsed());
    // The server answers again: every ack goes out (after the backoff).
    hole.forward.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut child = Reaped(dep.cmd().arg("run").stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap());
    stack.wait("bob@reporter.test", "INBOX", 3, 120);
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stack.count("bob@reporter.test", "INBOX"), 3, "each ack once");
}

/// The IMAP server killed in the middle of a pass and started again: the daemon
/// reconnects and finishes; every message ends once, nothing is lost or doubled.
#[test]
fn imap_server_killed_mid_pass_loses_nothing() {
    const N: usize = 300;
    let stack = MailStack::start();
    let team = Gpg::new("Team Member <carol@team.test>");
    let dep = Deployment::new(&stack, &[&team], "[limits]\nacks_per_address_per_hour = 1000\nacks_per_hour = 1000\n");
    for i in 0..N {
        stack.deliver(
            "security@intake.test",
            &plain_report(
                "bob@reporter.test",
                &format!("Report {i}"),
                "Body.\n",
                &format!("imapkill-{i}@reporter.test"),
            ),
        );
    }
    let log = dep.dir.path().join("daemon.log");
    let mut child = Reaped(dep.cmd().arg("run").stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap());
    // As soon as the first message is recorded, the pass is under way: stop the server.
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(30) && stack.count("security@intake.test", "Processed") == 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.stop_dovecot();
    let done_before = dep.json(&["mail", "list", "--json"]).as_array().unwrap().len();
    assert!(done_before < N, "the pass ended before the server was stopped; make N bigger");
    std::thread::sleep(Duration::from_secs(3));
    stack.start_dovecot();
    assert!(
        eventually(Duration::from_secs(90), || dep.json(&["mail", "list", "--json"]).as_array().unwrap().len() == N
            && stack.count("security@intake.test", "INBOX") == 0),
        "not all handled after the IMAP restart: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(stack.count("security@intake.test", "Processed"), N, "every message moved once");
    let cases = dep.json(&["case", "list", "--json"]);
    assert_eq!(cases.as_array().unwrap().len(), N, "one case per report");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("reconnecting") || text.contains("IMAP connection failed"),
        "the outage was not noticed:\n{text}"
    );
}
