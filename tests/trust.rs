//! Trustworthy reading (issue 9), tried the way an attacker and real reporters' software
//! would: messages in sequence through one store (key pinning, Message-ID reuse,
//! third-party follow-ups, cannot-read notices), acks encrypted to v6 certs, and keys
//! that only advertise what this build opens, checked with rnp and OpenPGP.js encrypting
//! to a freshly generated intake key.

mod support;

use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use secintake::openpgp::{self as pgp, Decryption, IntakeKeys, Verdict};
use secintake::pipeline::Pipeline;
use secintake::store::{Disposition, Store};
use support::{crlf, encrypted_payload, pgp_mime_wrap, repo, split_signed};

fn when() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:05Z").unwrap().with_timezone(&Utc)
}

/// After every fixture key was made (see tests/golden.rs).
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-20T00:00:00Z").unwrap().with_timezone(&Utc)
}

struct World {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    store: Store,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, store) = support::fixture_deployment(dir.path());
    let pipeline = Pipeline::load(cfg, store.clone()).unwrap();
    World { _dir: dir, pipeline, store }
}

impl World {
    fn ingest(&self, raw: &[u8]) -> secintake::pipeline::Outcome {
        self.pipeline.ingest(raw, None, when(), now()).unwrap()
    }
    fn fixture(&self, name: &str) -> secintake::pipeline::Outcome {
        self.ingest(&std::fs::read(repo().join("fixtures").join(name)).unwrap())
    }
    fn case(&self, o: &secintake::pipeline::Outcome) -> serde_json::Value {
        self.store.case(o.case_id.as_ref().expect("a case")).unwrap().unwrap().to_json(true)
    }
    /// The raw outgoing mails of `kind` (for `case`, when given).
    fn out(&self, kind: &str, case: Option<&str>) -> Vec<(secintake::store::OutMail, Vec<u8>)> {
        self.store
            .outbox()
            .unwrap()
            .into_iter()
            .filter(|o| o.kind.as_str() == kind && (case.is_none() || o.case_id.as_deref() == case))
            .map(|o| {
                let raw = self.store.out_raw(&o.id).unwrap().unwrap();
                (o, raw)
            })
            .collect()
    }
}

fn secret(name: &str) -> IntakeKeys {
    IntakeKeys::from_bytes(&std::fs::read(repo().join("keys").join(name)).unwrap(), None).unwrap()
}

const ALICE: &str = "5551BF6B9AC4A5467D80841641F803E870A0ACF9";

/// Regression (issue 9 §3): a forged From carrying and signed by the attacker's own
/// cert naming the reporter's address replaced the reporter's cert, so later acks went
/// encrypted to the attacker.
#[test]
fn forged_from_with_own_cert_does_not_rekey_the_reporter() {
    let w = world();
    let first = w.fixture("pgpmime/encrypted-signed.eml");
    assert_eq!(w.case(&first)["reporter"]["key_fingerprint"], ALICE);
    assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, ALICE);

    let forged = w.fixture("interop/forged-from-mallory.eml");
    let c = w.case(&forged);
    assert_eq!(c["signature"], "key-conflict", "{c}");
    assert_eq!(c["reporter"]["key_fingerprint"], ALICE);
    let mallory = c["reporter"]["key_conflict"].as_str().expect("conflict shown").to_owned();
    assert_ne!(mallory, ALICE);
    // The pinned cert stays; the conflict is in the audit log.
    assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, ALICE);
    let log = w.store.log(forged.case_id.as_ref().unwrap()).unwrap();
    assert!(log.iter().any(|e| e.action == "reporter-key-conflict" && e.detail.contains(&mallory)), "{log:?}");
    // The ack for the forged report is encrypted to Alice, never to Mallory.
    let acks = w.out("ack", forged.case_id.as_deref());
    assert_eq!(acks.len(), 1);
    assert!(acks[0].0.encrypted);
    let ct = encrypted_payload(&acks[0].1);
    let n = SystemTime::from(now());
    assert!(matches!(secret("reporter-alice.key.asc").decrypt_message(&ct, &[], 1 << 20, n), Decryption::Ok { .. }));
    assert!(matches!(
        secret("reporter-mallory.key.asc").decrypt_message(&ct, &[], 1 << 20, n),
        Decryption::NoKey { .. }
    ));
    // The team summary says so.
    let sums = w.out("summary", forged.case_id.as_deref());
    assert_eq!(sums.len(), 1);
    let team = secret("team.key.asc");
    let Decryption::Ok { plaintext, .. } = team.decrypt_message(&encrypted_payload(&sums[0].1), &[], 1 << 20, n) else {
        panic!()
    };
    let text = String::from_utf8_lossy(&plaintext);
    assert!(text.contains("key-conflict") && text.contains(&mallory), "{text}");
}

/// `raw` with its Message-ID and Autocrypt headers replaced by `extra` (CRLF lines).
fn with_headers(raw: &[u8], extra: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if line.starts_with([' ', '\t']) {
            if !skipping {
                kept.push(line);
            }
            continue;
        }
        skipping = lower.starts_with("message-id:") || lower.starts_with("autocrypt:");
        if !skipping {
            kept.push(line);
        }
    }
    format!("{}\r\n{extra}\r\n\r\n{body}", kept.join("\r\n")).into_bytes()
}

/// Regression (attacker review): Alice's signed report, replayed byte for byte with
/// Mallory's cert where no signature covers it (an Autocrypt header, a key part beside
/// the signed part), replaced Alice's pinned cert, so her next ack went encrypted to
/// Mallory. A successor counts only from inside what the pinned cert signed.
#[test]
fn a_replayed_signed_body_with_a_key_beside_it_does_not_rekey_the_reporter() {
    use base64::Engine as _;
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    let mallory_asc = std::fs::read_to_string(repo().join("keys/reporter-mallory.pub.asc")).unwrap();
    let mallory = sequoia_openpgp::Cert::from_bytes(mallory_asc.as_bytes()).unwrap();
    let mallory_fpr = mallory.fingerprint().to_hex();
    let keydata = base64::engine::general_purpose::STANDARD.encode(mallory.to_vec().unwrap());
    let folded: Vec<String> =
        keydata.as_bytes().chunks(72).map(|c| format!(" {}", std::str::from_utf8(c).unwrap())).collect();
    let signed = std::fs::read(repo().join("fixtures/signed/pgpmime-signed.eml")).unwrap();
    let (head, body) = signed.split_at(signed.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
    let content_type = String::from_utf8_lossy(head)
        .split("\r\n")
        .skip_while(|l| !l.to_ascii_lowercase().starts_with("content-type:"))
        .take_while(|l| l.to_ascii_lowercase().starts_with("content-type:") || l.starts_with([' ', '\t']))
        .collect::<Vec<_>>()
        .join("\r\n");
    let beside = {
        let mut m = String::from("From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\n");
        m.push_str("Subject: Missing rate limit on password reset\r\nMessage-ID: <replay-2@attacker.test>\r\n");
        m.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n");
        m.push_str(&content_type);
        m.push_str("\r\n\r\n");
        let mut m = m.into_bytes();
        m.extend_from_slice(body);
        m.extend_from_slice(b"\r\n--outer\r\nContent-Type: application/pgp-keys; name=\"new-key.asc\"\r\n");
        m.extend_from_slice(b"Content-Disposition: attachment; filename=\"new-key.asc\"\r\n\r\n");
        m.extend_from_slice(mallory_asc.replace('\n', "\r\n").as_bytes());
        m.extend_from_slice(b"\r\n--outer--\r\n");
        m
    };
    let replays = [
        with_headers(
            &signed,
            &format!(
                "Message-ID: <replay-1@attacker.test>\r\nAutocrypt: addr=alice@reporter.test; keydata=\r\n{}",
                folded.join("\r\n")
            ),
        ),
        beside,
    ];
    for raw in replays {
        let w = world();
        w.fixture("pgpmime/encrypted-signed.eml");
        assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, ALICE);
        let o = w.ingest(&raw);
        let c = w.case(&o);
        assert_eq!(c["messages"][0]["signer_fingerprint"], ALICE, "{c}");
        assert_eq!(c["reporter"]["key_fingerprint"], ALICE, "{c}");
        assert_eq!(c["reporter"]["key_conflict"], mallory_fpr.as_str(), "{c}");
        assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, ALICE);
        let log = w.store.log(o.case_id.as_ref().unwrap()).unwrap();
        assert!(!log.iter().any(|e| e.action == "reporter-key-replaced"), "{log:?}");
    }
}

/// Key rotation still works: the pinned cert signs a message (signed, then
/// encrypted) that carries its successor inside; the successor is pinned and logged.
#[test]
fn the_pinned_cert_signing_its_successor_rotates_the_pin() {
    let w = world();
    w.fixture("pgpmime/encrypted-signed.eml");
    assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, ALICE);
    let made = SystemTime::from(when()) - std::time::Duration::from_secs(3600);
    let (new, _) = sequoia_openpgp::cert::CertBuilder::general_purpose(Some("Alice Reporter <alice@reporter.test>"))
        .set_creation_time(made)
        .generate()
        .unwrap();
    let new_asc = pgp::armor_cert(&new).unwrap();
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Title: Heap overflow in the parser\r\nMy new key is attached.\r\n--in\r\n\
         Content-Type: application/pgp-keys; name=\"new.asc\"\r\nContent-Disposition: attachment; filename=\"new.asc\"\r\n\r\n\
         {}\r\n--in--\r\n",
        new_asc.replace('\n', "\r\n")
    );
    let intake = pgp::parse_certs(&std::fs::read(repo().join("keys/test-intake.pub.asc")).unwrap());
    let ct =
        secret("reporter-alice.key.asc").encrypt_and_sign(inner.as_bytes(), &intake, SystemTime::from(when())).unwrap();
    let raw = pgp_mime_wrap(
        "From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\nSubject: ...\r\n\
         Message-ID: <rotation-1@reporter.test>\r\nMIME-Version: 1.0\r\n",
        &ct,
    );
    let o = w.ingest(&raw);
    let c = w.case(&o);
    assert_eq!(c["signature"], "good", "{c}");
    assert_eq!(c["reporter"]["key_fingerprint"], new.fingerprint().to_hex(), "{c}");
    assert_eq!(w.store.cert("alice@reporter.test").unwrap().unwrap().fingerprint, new.fingerprint().to_hex());
    let log = w.store.log(o.case_id.as_ref().unwrap()).unwrap();
    assert!(log.iter().any(|e| e.action == "reporter-key-replaced"), "{log:?}");
}

/// Regression (attacker review): `limits.max_plaintext_bytes` held per decryption, so
/// 40 encrypted attachments of 9 MiB each under a 10 MiB cap decrypted 368 MB from a
/// small message. One budget now holds for all of a message's decryptions: here 16 MiB,
/// and three attachments of 6 MiB: the third is kept encrypted as it came.
#[test]
fn one_plaintext_budget_holds_for_all_of_a_message() {
    let w = world();
    let intake = pgp::parse_certs(&std::fs::read(repo().join("keys/test-intake.pub.asc")).unwrap());
    let alice = secret("reporter-alice.key.asc");
    let n = SystemTime::from(when());
    let body = alice.encrypt_and_sign(b"Title: Three big logs\r\nSee the logs.\r\n", &intake, n).unwrap();
    let mut raw = String::from(
        "From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\nSubject: Logs\r\n\
         Message-ID: <budget-1@reporter.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n",
    );
    raw.push_str(&String::from_utf8(crlf(&body)).unwrap());
    for i in 1..=3u8 {
        let data = vec![b'a' + i; 6 << 20];
        let ct = String::from_utf8(crlf(&alice.encrypt_and_sign(&data, &intake, n).unwrap())).unwrap();
        raw.push_str(&format!(
            "\r\n--b\r\nContent-Type: application/octet-stream; name=\"log{i}.asc\"\r\n\
             Content-Disposition: attachment; filename=\"log{i}.asc\"\r\n\r\n{ct}"
        ));
    }
    raw.push_str("\r\n--b--\r\n");
    let c = w.case(&w.ingest(raw.as_bytes()));
    let atts: Vec<(String, bool)> = c["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_owned(), a["encrypted"].as_bool().unwrap()))
        .collect();
    assert_eq!(atts, [("log1".to_owned(), true), ("log2".to_owned(), true), ("log3.asc".to_owned(), false)], "{c}");
}

/// A valid signature by a cert without the From address is not `good`.
#[test]
fn signature_by_a_cert_without_the_from_address_is_signer_mismatch() {
    let w = world();
    let o = w.fixture("interop/signer-not-from.eml");
    let c = w.case(&o);
    assert_eq!(c["signature"], "signer-mismatch");
    assert_eq!(c["messages"][0]["signer_fingerprint"], ALICE);
    // Carol's address learns nothing from Alice's cert.
    assert!(w.store.cert("carol@reporter.test").unwrap().is_none());
    assert!(c["reporter"]["key_fingerprint"].is_null());
}

/// Content beside the signed part is kept, marked unsigned, and the verdict says so.
#[test]
fn unsigned_content_is_kept_and_marked() {
    let w = world();
    let c = w.case(&w.fixture("interop/partly-signed.eml"));
    assert_eq!(c["signature"], "partial");
    assert!(
        c["text"].as_str().unwrap().contains("[unsigned text outside the signed part]\nAlso: here is more, unsigned")
    );
    assert_eq!(c["attachments"][0]["name"], "extra.txt");
    assert_eq!(c["attachments"][0]["signed"], false);
    let c = w.case(&w.fixture("interop/inline-with-attachments.eml"));
    assert_eq!(c["signature"], "partial");
    let names: Vec<&str> = c["attachments"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["notes.txt", "poc.bin"], "the plain and the .gpg attachment beside the armor are kept");
    assert_eq!(c["attachments"][1]["sha256"], "79377de5e174f4d17e4bc9550a5776175255f1bc0c3f2cdbb118c61b7e301d22");
}

/// Regression (issue 9 §4): a different message under a Message-ID already seen
/// vanished as a "duplicate".
#[test]
fn a_reused_message_id_is_a_message_of_its_own() {
    let w = world();
    let first = w.fixture("pgpmime/encrypted-unsigned.eml");
    let second = w.fixture("interop/msgid-collision.eml");
    assert_eq!(second.disposition, Disposition::Case, "{second:?}");
    assert_ne!(second.case_id, first.case_id);
    assert!(second.reason.as_deref().unwrap_or("").starts_with("message-id-reused"), "{second:?}");
    let mails = w.store.mails().unwrap();
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.message_id.starts_with("sha256:") && m.case_id == second.case_id));
    // The same two messages again: duplicates of themselves, nothing new.
    assert!(w.fixture("interop/msgid-collision.eml").seen_before);
    assert!(w.fixture("pgpmime/encrypted-unsigned.eml").seen_before);
    assert_eq!(w.store.cases().unwrap().len(), 2);
}

/// Anyone can put a case id in a Subject: a follow-up from another address is marked.
#[test]
fn follow_up_from_another_address_is_third_party() {
    let w = world();
    let report = w.fixture("pgpmime/encrypted-signed.eml");
    let id = report.case_id.clone().unwrap();
    let raw = format!(
        "From: Eve <eve@elsewhere.test>\r\nTo: security@intake.test\r\nSubject: Re: [{id}] more details\r\n\
         Message-ID: <eve-1@elsewhere.test>\r\nDate: Mon, 23 Nov 2026 11:00:00 +0000\r\n\r\nThe reporter is wrong, ignore it.\r\n"
    );
    let o = w.ingest(raw.as_bytes());
    assert_eq!(o.disposition, Disposition::FollowUp);
    let c = w.case(&report);
    assert_eq!(c["messages"][0]["third_party"], false);
    assert_eq!(c["messages"][1]["from"], "eve@elsewhere.test");
    assert_eq!(c["messages"][1]["third_party"], true);
    let team = w.out("followup", Some(&id));
    assert_eq!(team.len(), 1);
    assert!(support::header(&team[0].1, "Subject").unwrap().contains("third party"));
}

/// A report we cannot read gets a signed notice with its hash and our key; the re-sent
/// report links the first attempt.
#[test]
fn unreadable_report_gets_a_signed_notice_and_the_resend_links_it() {
    let w = world();
    let raw = std::fs::read(repo().join("fixtures/nokey/other-key.eml")).unwrap();
    let q = w.ingest(&raw);
    assert_eq!(q.reason.as_deref(), Some("no-key"));
    let notices = w.out("cannot-read", None);
    assert_eq!(notices.len(), 1);
    let (mail, body) = &notices[0];
    assert!(!mail.encrypted);
    assert_eq!(support::header(body, "Auto-Submitted").as_deref(), Some("auto-replied"));
    let (signed, sig) = split_signed(body);
    let intake = secret("test-intake.key.asc");
    let v = pgp::verify_detached(&signed, &sig, &[intake.public_cert()], SystemTime::from(now()));
    assert_eq!(v.verdict(), Verdict::Good);
    let text = quoted_printable_decode(&String::from_utf8_lossy(&signed));
    let sha = secintake::mime::sha256_hex(&raw);
    assert!(text.contains(&sha) && text.contains(&intake.fingerprint().to_hex()), "{text}");
    assert!(text.contains("BEGIN PGP PUBLIC KEY BLOCK"));
    // Re-sent, readable this time.
    let from = support::header(&raw, "From").unwrap();
    let resend = format!(
        "From: {from}\r\nTo: security@intake.test\r\nSubject: Re-sent report\r\nMessage-ID: <resend-1@reporter.test>\r\n\r\nTitle: The same report, readable\r\n"
    );
    let c = w.case(&w.ingest(resend.as_bytes()));
    assert_eq!(c["resend_of"], serde_json::json!([q.quarantine_id.unwrap()]));
}

/// A v6 reporter (RFC 9580, OpenPGP.js 6) is verified, pinned and answered encrypted to
/// that cert.
#[test]
fn v6_reporter_is_pinned_and_answered_encrypted() {
    let w = world();
    let o = w.fixture("interop/openpgpjs6-v6-attached.eml");
    let c = w.case(&o);
    assert_eq!(c["signature"], "good");
    let v6 = "90103D2CD8604707BF82FEA7D3A7E28B86B2F5E9CE549F2B9381F005E32E4D63";
    assert_eq!(c["reporter"]["key_fingerprint"], v6);
    assert_eq!(w.store.cert("vera@reporter.test").unwrap().unwrap().fingerprint, v6);
    let acks = w.out("ack", o.case_id.as_deref());
    assert!(acks[0].0.encrypted);
    let ct = encrypted_payload(&acks[0].1);
    match secret("reporter-v6.key.asc").decrypt_message(&ct, &[], 1 << 20, SystemTime::from(now())) {
        Decryption::Ok { plaintext, .. } => {
            assert!(String::from_utf8_lossy(&plaintext).contains(o.case_id.as_deref().unwrap()))
        }
        other => panic!("the v6 reporter cannot read the ack: {other:?}"),
    }
}

/// Enough quoted-printable decoding for our own notices (soft breaks and =XX).
fn quoted_printable_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn run(cmd: &mut std::process::Command, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (tests/lib/install-deps.sh installs it)"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The installed OpenPGP.js modules (fixtures/interop/js, `npm ci` by the test set-up).
fn node_pgp(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let js = repo().join("fixtures/interop/js");
    assert!(
        js.join("node_modules/openpgp6").exists(),
        "run `npm ci` in {} (tests/lib/install-deps.sh does)",
        js.display()
    );
    run(std::process::Command::new("node").arg(js.join("pgp.mjs")).args(args).current_dir(dir), input)
}

/// A key must never advertise what the build cannot decrypt: what `keys generate`
/// makes, rnp (Thunderbird's engine), OpenPGP.js 5 and 6 encrypt to it the way they
/// choose from its preferences, and intake reads every one.
#[test]
fn generated_key_reads_what_current_clients_send_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_cert, tsk, public) = pgp::generate("Security <security@intake.test>").unwrap();
    let keys = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
    for f in keys.self_test_formats(SystemTime::now()) {
        assert!(f.result.is_ok(), "{} advertises {} but cannot read it: {:?}", f.key, f.format, f.result);
    }
    let pubf = dir.path().join("intake.pub.asc");
    std::fs::write(&pubf, &public).unwrap();
    let text = b"Title: interop probe\n";
    let mut messages: Vec<(&str, Vec<u8>)> = Vec::new();
    messages
        .push(("openpgp.js 6", node_pgp(dir.path(), &["encrypt", "--lib", "6", "--to", pubf.to_str().unwrap()], text)));
    messages
        .push(("openpgp.js 5", node_pgp(dir.path(), &["encrypt", "--lib", "5", "--to", pubf.to_str().unwrap()], text)));
    let home = dir.path().join("rnp");
    std::fs::create_dir(&home).unwrap();
    run(
        std::process::Command::new("rnpkeys").args([
            "--homedir",
            home.to_str().unwrap(),
            "--import",
            pubf.to_str().unwrap(),
        ]),
        b"",
    );
    let fpr = keys.fingerprint().to_hex();
    for aead in [None, Some("ocb"), Some("eax")] {
        let mut cmd = std::process::Command::new("rnp");
        cmd.args(["--homedir", home.to_str().unwrap(), "--encrypt", "--armor", "-r", &fpr, "--output", "-"]);
        if let Some(a) = aead {
            cmd.arg(format!("--aead={a}"));
        }
        cmd.arg("-");
        messages.push((if aead.is_some() { "rnp --aead" } else { "rnp" }, run(&mut cmd, text)));
    }
    for (who, ct) in messages {
        match keys.decrypt_message(&ct, &[], 1 << 20, SystemTime::now()) {
            Decryption::Ok { plaintext, .. } => assert_eq!(plaintext, text, "{who}"),
            other => panic!("{who}: {other:?}"),
        }
    }
}

/// `check`'s self-test on a key as GnuPG 2.4 makes it (LibrePGP AEAD advertised):
/// every advertised format is tried, tag 20 included, and opens.
#[test]
fn librepgp_key_self_test_covers_tag_20() {
    let keys = secret("test-intake-librepgp.key.asc");
    let checks = keys.self_test_formats(SystemTime::now());
    assert!(checks.iter().any(|c| c.format.starts_with("LibrePGP AEAD")), "{checks:?}");
    assert!(checks.iter().all(|c| c.result.is_ok()), "{checks:?}");
    let keys = secret("test-intake-rfc9580.key.asc");
    let checks = keys.self_test_formats(SystemTime::now());
    assert!(checks.iter().any(|c| c.format.starts_with("SEIPDv2")), "{checks:?}");
    // OpenPGP.js 6 lists EAX among the ciphersuites, which OpenSSL lacks: our own
    // SEIPDv2 chunk code opens it.
    assert!(checks.iter().any(|c| c.format.contains("EAX")), "{checks:?}");
    assert!(checks.iter().all(|c| c.result.is_ok()), "{checks:?}");
}

/// SEIPDv2 with EAX, as OpenPGP.js 6 writes it when the sender prefers EAX and the key
/// lists it (RFC 9580 allows it; Sequoia's OpenSSL backend has no EAX).
#[test]
fn seipdv2_eax_from_openpgp_js_6_is_read() {
    use sequoia_openpgp::Packet;
    use sequoia_openpgp::packet::SEIP;
    use sequoia_openpgp::parse::{PacketParser, PacketParserResult, Parse};
    let dir = tempfile::tempdir().unwrap();
    let pubf = repo().join("keys/test-intake-rfc9580.pub.asc");
    let text = b"Title: EAX probe\n";
    let ct = node_pgp(dir.path(), &["encrypt", "--lib", "6", "--aead", "eax", "--to", pubf.to_str().unwrap()], text);
    let mut aead = None;
    let mut ppr = PacketParser::from_bytes(&ct).unwrap();
    while let PacketParserResult::Some(pp) = ppr {
        if let Packet::SEIP(SEIP::V2(s)) = &pp.packet {
            aead = Some(s.aead());
            break;
        }
        ppr = pp.next().unwrap().1;
    }
    assert_eq!(aead, Some(sequoia_openpgp::types::AEADAlgorithm::EAX), "OpenPGP.js 6 did not write EAX");
    match secret("test-intake-rfc9580.key.asc").decrypt_message(&ct, &[], 1 << 20, SystemTime::now()) {
        Decryption::Ok { plaintext, .. } => assert_eq!(plaintext, text),
        other => panic!("{other:?}"),
    }
}
