//! Commands by signed mail end to end on the real mail stack (issue 21): a team member
//! answers the summary from their mail client, signed and encrypted with gpg, through
//! Postfix into Dovecot; secintake applies it, confirms on the list (threaded), and the
//! `/reply` reaches the reporter, who decrypts it; a fixer read in by mail gets the
//! summary so far and the reporter's next follow-up, and decrypts both.

mod support;

use support::*;

#[test]
fn a_signed_reply_to_the_summary_changes_the_case_confirms_on_the_list_and_answers_the_reporter() {
    let stack = MailStack::start();
    let carol = Gpg::new("Carol Team <carol@team.test>");
    let dep = Deployment::new(&stack, &[&carol], "");
    let alice = Gpg::new("Alice <alice@reporter.test>");
    alice.import(&dep.intake_pub);
    carol.import(&dep.intake_pub);

    let report = pgp_mime_report(
        &alice,
        "alice@reporter.test",
        &dep.intake_fpr,
        "SQL injection in the login form",
        "Affected versions: 1.2.0, 1.2.1\n\nSteps to reproduce:\n1. user name x' OR 1=1--\n2. logged in as admin\n",
        "report-1@reporter.test",
        true,
    );
    stack.send("alice@reporter.test", "security@intake.test", &report);
    stack.wait("security@intake.test", "INBOX", 1, 30);
    let out = dep.cmd().args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
    let id = dep.json(&["case", "list", "--json"])[0]["id"].as_str().unwrap().to_owned();

    // The summary on the list: Reply-To the list, and how to act by reply at its end.
    stack.wait("team@team.test", "INBOX", 1, 30);
    let summary = stack.fetch("team@team.test", "INBOX").remove(0);
    assert_eq!(header(&summary, "Reply-To").as_deref(), Some("<team@team.test>"));
    let summary_id = header(&summary, "Message-ID").unwrap();
    let (text, _) = carol.decrypt(&encrypted_payload(&summary));
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(text.contains("Act by signed reply to security@intake.test"), "{text}");

    // Carol answers it (a deliberate reply to the intake), signed and encrypted.
    let body = "/status triaged\r\n/tlp amber\r\n/reply\r\nThank you, we reproduced it and are preparing a fix.\r\n\r\n\
                On 07/12/2026 10:00, Demo Project Security wrote:\r\n> New report\r\n";
    let inner = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\nSubject: Re: [{id}] New report\r\n\r\n{body}"
    );
    let ct = carol.encrypt_sign(inner.as_bytes(), &dep.intake_fpr);
    let head = format!(
        "From: Carol Team <carol@team.test>\r\nTo: security@intake.test\r\nSubject: ...\r\nMessage-ID: <cmd-1@team.test>\r\n\
         In-Reply-To: {summary_id}\r\nReferences: {summary_id}\r\nDate: Mon, 07 Dec 2026 10:05:00 +0000\r\nMIME-Version: 1.0\r\n"
    );
    stack.send("carol@team.test", "security@intake.test", &pgp_mime_wrap(&head, &ct));
    stack.wait("security@intake.test", "INBOX", 1, 30);
    let out = dep.cmd().args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));

    // The change, with its signer in the audit log.
    let shown = dep.json(&["case", "show", &id, "--json"]);
    assert_eq!(shown["status"], "triaged");
    assert_eq!(shown["tlp"], "AMBER");
    assert_eq!(shown["readin"], serde_json::json!([]));
    let log = dep.json(&["case", "log", &id, "--json"]);
    let set = log.as_array().unwrap().iter().find(|e| e["action"] == "set").unwrap();
    assert_eq!(set["by"], "carol@team.test");
    assert_eq!(set["by_fingerprint"], carol.fpr.as_str());
    assert_eq!(set["via"], "cmd-1@team.test");
    let mails = dep.json(&["mail", "list", "--json"]);
    assert!(
        mails.as_array().unwrap().iter().any(|m| m["message_id"] == "cmd-1@team.test" && m["disposition"] == "command")
    );

    // The confirmation on the list, threaded under Carol's mail.
    stack.wait("team@team.test", "INBOX", 2, 30);
    let conf = stack
        .fetch("team@team.test", "INBOX")
        .into_iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.ends_with("] Changed")));
    let conf = conf.expect("a confirmation on the list");
    assert_eq!(header(&conf, "In-Reply-To").as_deref(), Some("<cmd-1@team.test>"));
    let (text, status) = carol.decrypt(&encrypted_payload(&conf));
    assert!(status.contains("GOODSIG"), "{status}");
    let text = String::from_utf8_lossy(&text).into_owned();
    // Who changed it is said inside only (the outer Subject is "[ID] Changed").
    assert!(text.contains("Changed by carol@team.test"), "{text}");
    assert!(text.contains("status: acknowledged -> triaged") && text.contains("tlp: none -> AMBER"), "{text}");

    // The reporter's reply: encrypted to Alice, who decrypts it.
    stack.wait("alice@reporter.test", "INBOX", 2, 30);
    let reply = stack
        .fetch("alice@reporter.test", "INBOX")
        .into_iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.contains("Update on your report")))
        .expect("the reply to the reporter");
    let (text, status) = alice.decrypt(&encrypted_payload(&reply));
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(String::from_utf8_lossy(&text).contains("we reproduced it and are preparing a fix"));

    // Carol reads Bob in as the fixer, his cert attached to her signed, encrypted mail.
    let bob = Gpg::new("Bob Fixer <bob@reporter.test>");
    bob.import(&dep.intake_pub);
    let key = String::from_utf8(crlf(&bob.export())).unwrap();
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"IN\"; protected-headers=\"v1\"\r\nSubject: [{id}]\r\n\r\n\
         --IN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n/readin add fixer\r\n\r\n--IN\r\n\
         Content-Type: application/pgp-keys; name=\"bob.asc\"\r\n\r\n{key}\r\n--IN--\r\n"
    );
    let ct = carol.encrypt_sign(inner.as_bytes(), &dep.intake_fpr);
    let head = "From: Carol Team <carol@team.test>\r\nTo: security@intake.test\r\nSubject: ...\r\n\
                Message-ID: <cmd-2@team.test>\r\nDate: Mon, 07 Dec 2026 10:10:00 +0000\r\nMIME-Version: 1.0\r\n";
    stack.send("carol@team.test", "security@intake.test", &pgp_mime_wrap(head, &ct));
    stack.wait("security@intake.test", "INBOX", 1, 30);
    let out = dep.cmd().args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
    let shown = dep.json(&["case", "show", &id, "--json"]);
    assert_eq!(shown["readin"][0]["fingerprint"], bob.fpr.as_str());
    assert_eq!(shown["readin"][0]["by"], "carol@team.test");
    stack.wait("bob@reporter.test", "INBOX", 1, 30);
    let welcome = stack.fetch("bob@reporter.test", "INBOX").remove(0);
    let (text, status) = bob.decrypt(&encrypted_payload(&welcome));
    assert!(status.contains("GOODSIG"), "{status}");
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(text.contains("You have been read in") && text.contains("logged in as admin"), "{text}");

    // The reporter's next follow-up reaches Bob too, encrypted to him.
    let fu = plain_report(
        "alice@reporter.test",
        &format!("Re: [{id}] Report received"),
        "1.1.9 too.\n",
        "fu-1@reporter.test",
    );
    stack.send("alice@reporter.test", "security@intake.test", &fu);
    stack.wait("security@intake.test", "INBOX", 1, 30);
    let out = dep.cmd().args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
    stack.wait("bob@reporter.test", "INBOX", 2, 30);
    let copy = stack
        .fetch("bob@reporter.test", "INBOX")
        .into_iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.contains("Follow-up")))
        .expect("the follow-up's copy for the fixer");
    let (text, _) = bob.decrypt(&encrypted_payload(&copy));
    assert!(String::from_utf8_lossy(&text).contains("1.1.9 too."));
}
