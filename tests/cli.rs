//! The built binary against temporary state, without a mail stack.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::*;

#[test]
fn check_accepts_a_good_config() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_exits_2_naming_each_bad_key() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "poll_interval = \"often\"\nidel = true\n");
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imap.poll_interval"), "{err}");
    assert!(err.contains("imap.idel: unknown key"), "{err}");
}

#[test]
fn check_refuses_world_readable_secret_with_chmod_hint() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let pw = d.path().join("pw");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imap.password_file") && err.contains(&format!("chmod 600 {}", pw.display())), "{err}");
}

#[test]
fn check_exits_2_on_a_broken_intake_key() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let key = d.path().join("keys/intake.key.asc");
    std::fs::write(&key, "not a key").unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys.intake_secret"));
}

#[test]
fn missing_config_is_exit_2() {
    let out = Command::new(bin()).args(["--config", "/nonexistent/secintake.toml", "case", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ingest_and_case_commands_without_daemon() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let list = run(&["case", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "[]");
    let msg = d.path().join("m.eml");
    std::fs::write(
        &msg,
        plain_report("bob@reporter.test", "Open redirect", "Redirects anywhere.\n", "cli-1@reporter.test"),
    )
    .unwrap();
    // SMTP on port 1 is down: the case is still opened, the ack stays queued.
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("ingest").arg(&msg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("case SEC-"), "{}", String::from_utf8_lossy(&out.stdout));
    let again = Command::new(bin()).arg("--config").arg(&cfg).arg("ingest").arg(&msg).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("duplicate"));
    let list: serde_json::Value = serde_json::from_slice(&run(&["case", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["ack"], serde_json::Value::Null);
    let unknown = run(&["case", "show", "SEC-1999-0001"]);
    assert_eq!(unknown.status.code(), Some(2));
    let auto = d.path().join("auto.eml");
    std::fs::write(
        &auto,
        b"From: someone@reporter.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\nMessage-ID: <ooo@reporter.test>\r\n\r\nAway.\r\n",
    )
    .unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("ingest").arg(&auto).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("non-report"), "{}", String::from_utf8_lossy(&out.stdout));
    let mails: serde_json::Value = serde_json::from_slice(&run(&["mail", "list", "--json"]).stdout).unwrap();
    assert_eq!(mails.as_array().unwrap().len(), 2);
}

#[test]
fn keys_generate_writes_owner_only_secret_and_refuses_overwrite() {
    let d = tempdir("cli");
    let generate = |dir: &std::path::Path| {
        Command::new(bin()).args(["keys", "generate", "--uid", "S <s@x.test>", "--out"]).arg(dir).output().unwrap()
    };
    let out = generate(&d.path().join("k"));
    assert!(out.status.success());
    let mode = std::fs::metadata(d.path().join("k/intake.key.asc")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!generate(&d.path().join("k")).status.success());
}

#[test]
fn security_txt_is_signed_and_gpg_verifies_it() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("security-txt").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Contact: mailto:security@intake.test"));
    let g = Gpg::new("V <v@x.test>");
    g.import(&d.path().join("keys/intake.pub.asc"));
    let f = d.path().join("security.txt");
    std::fs::write(&f, &out.stdout).unwrap();
    let v = g.cmd().args(["--status-fd", "2", "--verify"]).arg(&f).output().unwrap();
    assert!(String::from_utf8_lossy(&v.stderr).contains("GOODSIG"), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn case_set_note_log_enforce_rules_and_audit() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let msg = d.path().join("m.eml");
    std::fs::write(
        &msg,
        plain_report("bob@reporter.test", "Open redirect", "Redirects anywhere.\n", "set-1@reporter.test"),
    )
    .unwrap();
    let out = run(&["ingest", msg.to_str().unwrap()]);
    let id = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_owned();

    // A wrong transition says which are allowed.
    let bad = run(&["case", "set", &id, "--status", "disclosed"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("allowed: acknowledged, triaged, rejected"));
    // An invalid vector is refused with the reason.
    let bad = run(&["case", "set", &id, "--cvss", "CVSS:3.1/AV:Q"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid CVSS"));
    let bad = run(&["case", "set", &id, "--cve", "CVE-26-1"]);
    assert_eq!(bad.status.code(), Some(2));

    let ok = run(&[
        "case",
        "set",
        &id,
        "--status",
        "triaged",
        "--cvss",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "--cwe",
        "CWE-601",
        "--tlp",
        "amber",
        "--affected",
        "1.0",
        "--affected",
        "1.1",
        "--anonymous",
        "--cve",
        "CVE-2026-12345",
        "--as",
        "alice",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let c: serde_json::Value = serde_json::from_slice(&run(&["case", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(c["status"], "triaged");
    assert_eq!(c["cvss"]["score"], 9.8);
    assert_eq!(c["cvss"]["severity"], "critical");
    assert_eq!(c["cvss"]["version"], "3.1");
    assert_eq!(c["tlp"], "AMBER");
    assert_eq!(c["cwe"], serde_json::json!(["CWE-601"]));
    assert_eq!(c["affected_versions"], serde_json::json!(["1.0", "1.1"]));
    assert_eq!(c["credit"], serde_json::json!({"name": null, "anonymous": true}));

    let bad = run(&["case", "set", &id, "--status", "rejected"]);
    assert_eq!(bad.status.code(), Some(2), "rejecting needs a reason");
    assert!(run(&["case", "note", &id, "Reproduced", "on", "1.1", "--as", "bob"]).status.success());
    let log: serde_json::Value = serde_json::from_slice(&run(&["case", "log", &id, "--json"]).stdout).unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log[0]["action"], "opened");
    assert!(log.iter().any(|e| e["action"] == "set"
        && e["who"] == "alice"
        && e["detail"].as_str().unwrap().contains("status new -> triaged")));
    assert!(log.iter().any(|e| e["action"] == "note" && e["who"] == "bob" && e["detail"] == "Reproduced on 1.1"));
}

#[test]
fn quarantine_retry_after_the_key_is_added() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    // The intake holds only its generated key: the fixture encrypted to the test
    // intake key is quarantined as no-key.
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let fixture = repo().join("fixtures/pgpmime/encrypted-unsigned.eml");
    let out = run(&["ingest", fixture.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("quarantine Q-"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let q: serde_json::Value = serde_json::from_slice(&run(&["quarantine", "list", "--json"]).stdout).unwrap();
    assert_eq!(q[0]["reason"], "no-key");
    assert_eq!(q[0]["encrypted"], true);
    let qid = q[0]["id"].as_str().unwrap().to_owned();
    let show = run(&["quarantine", "show", &qid]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("no-key"));
    // Key rotation: the old key joins the key file; retry opens the case.
    let key = d.path().join("keys/intake.key.asc");
    let mut both = std::fs::read(&key).unwrap();
    both.extend(std::fs::read(repo().join("keys/test-intake.key.asc")).unwrap());
    std::fs::write(&key, both).unwrap();
    let out = run(&["quarantine", "retry", &qid]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": case SEC-"), "{}", String::from_utf8_lossy(&out.stdout));
    let cases: serde_json::Value = serde_json::from_slice(&run(&["case", "list", "--json"]).stdout).unwrap();
    assert_eq!(cases[0]["title"], "Authentication bypass via X-Forwarded-User header");
    let mails: serde_json::Value = serde_json::from_slice(&run(&["mail", "list", "--json"]).stdout).unwrap();
    assert_eq!(mails.as_array().unwrap().len(), 1, "one record, now a case");
    assert_eq!(mails[0]["disposition"], "case");
    let q: serde_json::Value = serde_json::from_slice(&run(&["quarantine", "list", "--json"]).stdout).unwrap();
    assert_eq!(q, serde_json::json!([]), "resolved entries leave the list");
}

#[test]
fn man_pages_and_completions_are_generated() {
    let d = tempdir("cli");
    let out = Command::new(bin()).args(["assets", "--out"]).arg(d.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let man = std::fs::read_to_string(d.path().join("man/secintake.1")).unwrap();
    assert!(man.contains(".TH secintake") && man.contains("security@"), "{man}");
    assert!(d.path().join("man/secintake-case.1").exists());
    let bash = std::fs::read_to_string(d.path().join("completions/secintake.bash")).unwrap();
    assert!(bash.contains("quarantine") && bash.contains("security-txt"));
    assert!(d.path().join("completions/_secintake").exists());
    assert!(d.path().join("completions/secintake.fish").exists());
}

#[test]
fn every_subcommand_help_reads_well_with_an_example() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["case", "list", "--help"],
        vec!["case", "show", "--help"],
        vec!["case", "set", "--help"],
        vec!["case", "reply", "--help"],
        vec!["case", "export", "--help"],
        vec!["ingest", "--help"],
    ] {
        let out = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Example"), "{args:?} has no example:\n{text}");
    }
}

#[test]
fn team_certs_import_list_and_wkd() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let carol = Gpg::new("Carol <carol@team.test>");
    let f = d.path().join("carol.asc");
    std::fs::write(&f, carol.export()).unwrap();
    let out = run(&["keys", "import-team", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&run(&["keys", "list-team", "--json"]).stdout).unwrap();
    assert!(
        rows.as_array().unwrap().iter().any(|r| r["fingerprint"] == carol.fpr.as_str() && r["usable"] == true),
        "{rows:#}"
    );
    // An expired cert is refused with the reason.
    let old = Gpg::new("Old <old@team.test>");
    old.run(&["--quick-set-expire", &old.fpr, "seconds=1"]);
    old.run(&["--quick-set-expire", &old.fpr, "seconds=1", "*"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let f2 = d.path().join("old.asc");
    std::fs::write(&f2, old.export()).unwrap();
    let out = run(&["keys", "import-team", f2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unusable"));
    // WKD: both layouts, the hash of "security".
    let www = d.path().join("www");
    let out = run(&["keys", "wkd", "--out", www.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // z-base32(SHA-1("security")), computed independently with Python's hashlib.
    let hash = "t5s8ztdbon8yzntexy6oz5y48etqsnbb";
    assert!(www.join(format!(".well-known/openpgpkey/intake.test/hu/{hash}")).exists());
    assert!(www.join(".well-known/openpgpkey/intake.test/policy").exists());
    assert!(www.join(format!(".well-known/openpgpkey/hu/{hash}")).exists());
}

#[test]
fn case_list_filters_and_similar() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let run = |args: &[&str]| Command::new(bin()).arg("--config").arg(&cfg).args(args).output().unwrap();
    let reports = [
        (
            "sim-1",
            "SQL injection in login",
            "The login form at /login builds SQL from the user name. CWE-89 TLP:AMBER\nAffected versions: 1.2\nCVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ),
        (
            "sim-2",
            "SQLi in the login page",
            "The login page (POST /login) builds SQL from the user name field. CWE-89\nAffected versions: 1.2",
        ),
        ("sim-3", "Typo on the website", "There is a typo in the footer."),
    ];
    for (id, subject, body) in reports {
        let f = d.path().join(format!("{id}.eml"));
        std::fs::write(&f, plain_report("bob@reporter.test", subject, body, &format!("{id}@reporter.test"))).unwrap();
        assert!(run(&["ingest", f.to_str().unwrap()]).status.success());
    }
    let list = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["case", "list", "--json"];
        a.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_slice(&run(&a).stdout).unwrap();
        v.as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(list(&["--tlp", "AMBER"]), vec!["SQL injection in login"]);
    assert_eq!(list(&["--severity", "critical"]), vec!["SQL injection in login"]);
    assert!(list(&["--overdue"]).is_empty());
    assert_eq!(run(&["case", "list", "--tlp", "PURPLE"]).status.code(), Some(2));
    let all: serde_json::Value = serde_json::from_slice(&run(&["case", "list", "--json"]).stdout).unwrap();
    let first = all.as_array().unwrap().iter().find(|c| c["title"] == "SQL injection in login").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sim: serde_json::Value = serde_json::from_slice(&run(&["case", "similar", &first, "--json"]).stdout).unwrap();
    let sim = sim.as_array().unwrap();
    assert_eq!(sim.len(), 1, "{sim:#?}");
    assert_eq!(sim[0]["title"], "SQLi in the login page");
    // The same index and reasons as intake: the CWE, the component and the version.
    let why = sim[0]["why"].as_array().unwrap();
    assert!(why.iter().any(|w| w.as_str().unwrap().contains("same CWE-89 in /login")), "{why:?}");
    let second: serde_json::Value =
        serde_json::from_slice(&run(&["case", "show", sim[0]["case"].as_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(second["duplicates"][0]["case"], first.as_str(), "found at intake too: {second:#}");
}

#[test]
fn check_catches_a_broken_ack_template() {
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    std::fs::create_dir_all(d.path().join("tpl")).unwrap();
    std::fs::write(d.path().join("tpl/ack.txt"), "Thanks from {{ project }} for {{ case_id }}{% if %}").unwrap();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[templates]\ndir = \"tpl\"\n");
    std::fs::write(&cfg, &text).unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("templates.dir: ack.txt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(d.path().join("tpl/ack.txt"), "Thanks from {{ project }} for {{ case_id }}\n").unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// RFC 3156 6.1 "signed, then encrypted": a multipart/signed inside the encryption,
/// as some clients send; the inner signature is verified.
#[test]
fn signed_then_encrypted_report_verifies_the_inner_signature() {
    use base64::Engine;
    let d = tempdir("cli");
    let cfg = write_config(d.path(), "");
    let alice = Gpg::new("Alice <alice@reporter.test>");
    alice.import(&d.path().join("keys/intake.pub.asc"));
    let intake_fpr = {
        let out = alice.run(&["--with-colons", "--list-keys", "security@intake.test"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .unwrap()
            .split(':')
            .nth(9)
            .unwrap()
            .to_owned()
    };
    let part = "Content-Type: text/plain; charset=utf-8\r\n\r\nTitle: Signed then encrypted\r\nThe report body.";
    let sig = alice.detach_sign(part.as_bytes());
    let inner = format!(
        "Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"sig-boundary-42\"\r\n\r\n--sig-boundary-42\r\n{part}\r\n--sig-boundary-42\r\n\
         Content-Type: application/pgp-signature\r\n\r\n{}\r\n--sig-boundary-42--\r\n",
        String::from_utf8_lossy(&sig).replace('\n', "\r\n")
    );
    let ct = alice.encrypt_only(inner.as_bytes(), &intake_fpr);
    let kd = base64::engine::general_purpose::STANDARD.encode(alice.export_binary());
    let msg = format!(
        "From: alice@reporter.test\r\nTo: security@intake.test\r\nSubject: ...\r\nMessage-ID: <ste-1@reporter.test>\r\n\
         Autocrypt: addr=alice@reporter.test; keydata={kd}\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc-boundary-42\"\r\n\r\n\
         --enc-boundary-42\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--enc-boundary-42\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--enc-boundary-42--\r\n",
        String::from_utf8_lossy(&ct).replace('\n', "\r\n")
    );
    let f = d.path().join("ste.eml");
    std::fs::write(&f, &msg).unwrap();
    let out = Command::new(bin()).arg("--config").arg(&cfg).arg("ingest").arg(&f).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if !said.starts_with("case ") {
        let qid = said.split_whitespace().nth(1).unwrap();
        let q = Command::new(bin()).arg("--config").arg(&cfg).args(["quarantine", "show", qid]).output().unwrap();
        panic!("{said}: {}", String::from_utf8_lossy(&q.stdout));
    }
    let id = said.split_whitespace().nth(1).unwrap().to_owned();
    let c: serde_json::Value = serde_json::from_slice(
        &Command::new(bin()).arg("--config").arg(&cfg).args(["case", "show", &id, "--json"]).output().unwrap().stdout,
    )
    .unwrap();
    assert_eq!(c["encrypted"], true);
    assert_eq!(c["signature"], "good", "{c:#}");
    assert_eq!(c["messages"][0]["signer_fingerprint"], alice.fpr.as_str());
    assert_eq!(c["title"], "Signed then encrypted");
}
