//! Nothing readable at rest (issue 24, part 3): a copy of the state directory, taken
//! without the store key, holds no report text, subject, attachment, note, reply or
//! reporter address; key rotation and renewal keep the store readable; a missing or
//! wrong key fails the open, naming what to do, and leaves the store as it was.
//!
//! What stays in clear by design (`src/store/atrest.rs`, "What stays in clear"), and so is
//! never searched for here: the keys that are our own ids (case ids, outbox ids, dates,
//! sequence numbers, SHA-256 digests of messages, IMAP folder names and UIDs), value
//! sizes, the search postings' counts under keyed term hashes, sled's own metadata, and
//! `store-key.pgp` (the store key encrypted to the intake key). Reporter addresses and
//! Message-IDs are in keys too (`cert/`, `block/`, `mail/`), but as HMACs: those are
//! searched for.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::Utc;
use secintake::config::Config;
use secintake::pipeline::Pipeline;
use secintake::store::{MailKind, OpenError};

/// A deployment in `dir` on the test intake key (as `support::offline_pipeline`), with
/// its config written to `dir/secintake.toml` too (the binary's commands read it):
/// `intake_secret` is the key file, `store_extra` goes into `[store]`.
fn config(dir: &Path, intake_secret: &str, store_extra: &str) -> Arc<Config> {
    use std::os::unix::fs::PermissionsExt;
    let keys = support::repo().join("keys");
    let secret = dir.join("intake.key.asc");
    if !secret.exists() {
        std::fs::copy(keys.join("test-intake.key.asc"), &secret).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let pw = dir.join("pw");
    std::fs::write(&pw, "x").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::copy(keys.join("team.pub.asc"), dir.join("team/team.asc")).unwrap();
    let text = format!(
        "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\n[keys]\nintake_secret = \"{intake_secret}\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[policy]\nproject = \"AtRest\"\n[store]\npath = \"state\"\n{store_extra}\n"
    );
    let path = dir.join("secintake.toml");
    std::fs::write(&path, &text).unwrap();
    Arc::new(Config::parse(&text, &path).unwrap())
}

/// `secintake --config DIR/secintake.toml args`, retried while the store is still held
/// by a store this process has just dropped (sled lets go of its lock a moment later).
fn cli(dir: &Path, args: &[&str]) -> String {
    let start = std::time::Instant::now();
    loop {
        let out =
            Command::new(support::bin()).arg("--config").arg(dir.join("secintake.toml")).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if !stderr.contains("in use by another process") || start.elapsed() > std::time::Duration::from_secs(10) {
            panic!("secintake {args:?} failed: {stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Opens the store of `cfg`, waiting for a store this process has just dropped.
fn open(cfg: &Config) -> secintake::store::Store {
    secintake::atrest::open_waiting(cfg, None).unwrap()
}

/// A few random lower-case letters: the reporters' addresses are not in any fixture.
fn word(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    let mut x = h.finish();
    (0..8)
        .map(|_| {
            let c = (b'a' + (x % 26) as u8) as char;
            x /= 26;
            c
        })
        .collect()
}

fn plain_mail(from: &str, subject: &str, msgid: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Reporter <{from}>\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// Up to three distinctive lines of a report (>= 30 characters: no boilerplate), quotes
/// and backslashes left out so that they read back the same from JSON.
fn sentences(body: &str) -> Vec<String> {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.chars().count() >= 30 && !l.contains('"') && !l.contains('\\') && !l.starts_with('>'))
        .collect();
    let mut picked: Vec<String> = Vec::new();
    for i in [0, lines.len() / 2, lines.len().saturating_sub(1)] {
        if let Some(l) = lines.get(i)
            && !picked.iter().any(|p| p == l)
        {
            picked.push((*l).to_owned());
        }
    }
    picked
}

/// A PGP/MIME encrypted report (signed by `reporter`) with a text body and attachments
/// (`(file name, content type, content)`), the protected Subject inside.
fn encrypted_report(
    reporter: &support::Gpg,
    from: &str,
    subject: &str,
    msgid: &str,
    body: &str,
    attachments: &[(&str, &str, &[u8])],
) -> Vec<u8> {
    use base64::Engine;
    let b = "atrest-mixed-boundary";
    let mut inner = format!(
        "Content-Type: multipart/mixed; boundary=\"{b}\"; protected-headers=\"v1\"\r\nSubject: {subject}\r\n\r\n\
         --{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    );
    for (name, ct, content) in attachments {
        let b64 = base64::engine::general_purpose::STANDARD.encode(content);
        let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
        inner.push_str(&format!(
            "--{b}\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    inner.push_str(&format!("--{b}--\r\n"));
    let ct = reporter.encrypt_sign(inner.as_bytes(), &intake_fpr());
    // The sender's key in an Autocrypt header: it is pinned (a `cert/` entry, keyed by
    // the address: hashed on disk).
    let kd = base64::engine::general_purpose::STANDARD.encode(reporter.export_binary());
    let folded: Vec<&str> = kd.as_bytes().chunks(72).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let headers = format!(
        "From: Reporter <{from}>\r\nTo: security@intake.test\r\nSubject: ...\r\nMessage-ID: <{msgid}>\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nAutocrypt: addr={from}; keydata=\r\n {}\r\n",
        folded.join("\r\n ")
    );
    support::pgp_mime_wrap(&headers, &ct)
}

/// The test intake key's fingerprint.
fn intake_fpr() -> String {
    use sequoia_openpgp::parse::Parse;
    let c = sequoia_openpgp::Cert::from_file(support::repo().join("keys/test-intake.pub.asc")).unwrap();
    c.fingerprint().to_hex()
}

/// Every file below `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The needles found in `hay` (each at least 8 bytes long), by index: one pass over
/// `hay`, looking up each 8-byte window (a debug build's `windows().any()` per needle
/// took a minute over a state directory).
fn found_in(hay: &[u8], needles: &[&[u8]]) -> Vec<usize> {
    let mut by_prefix: std::collections::HashMap<[u8; 8], Vec<usize>> = std::collections::HashMap::new();
    for (i, n) in needles.iter().enumerate() {
        assert!(n.len() >= 8, "a needle too short to mean anything: {:?}", String::from_utf8_lossy(n));
        by_prefix.entry(n[..8].try_into().unwrap()).or_default().push(i);
    }
    let mut found = std::collections::BTreeSet::new();
    for (at, w) in hay.windows(8).enumerate() {
        if let Some(candidates) = by_prefix.get(w) {
            for &i in candidates {
                if hay[at..].starts_with(needles[i]) {
                    found.insert(i);
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Every string of a JSON value, unescaped, one per line.
fn strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[test]
fn a_copy_of_the_state_directory_holds_no_report_subject_attachment_note_or_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = config(dir, "intake.key.asc", "");
    let p = Pipeline::load(cfg.clone(), open(&cfg)).unwrap();
    let now = Utc::now();

    // What must be in the store (read back below) and nowhere in its files.
    let mut needles: Vec<(String, String)> = Vec::new(); // (what, string)
    // What is searched for but not kept readable by the store (so not read back): an
    // attachment's content reaches the team inside the summary, encrypted to the team; a
    // Subject is not kept when the report's text names its own title.
    let mut unkept: Vec<(String, String)> = Vec::new();
    let mut cases: Vec<String> = Vec::new();
    let mut pinned: Vec<String> = Vec::new();

    // The triage corpus, each report as a plain mail from its own reporter.
    let mut triage: Vec<PathBuf> = std::fs::read_dir(support::repo().join("fixtures/triage"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    triage.sort();
    assert!(triage.len() >= 20, "the triage corpus: {}", triage.len());
    for (n, path) in triage.iter().enumerate() {
        let body = std::fs::read_to_string(path).unwrap();
        let w = word(n);
        let from = format!("r{n}.{w}@reporter{n}.example");
        let subject = format!("Zanthoxylum{n} {w} flaw in the quorbel{n} importer");
        let raw = plain_mail(&from, &subject, &format!("atrest-{n}@mua.example"), &body);
        let o = p.ingest(&raw, None, now, now).unwrap();
        let id = o.case_id.unwrap_or_else(|| panic!("{} made no case: {:?}", path.display(), o.reason));
        // The Subject is kept as the case's title, unless the report names its own.
        let kept = p.store.case(&id).unwrap().unwrap().title == subject;
        if kept { &mut needles } else { &mut unkept }.push((format!("subject of {}", path.display()), subject));
        cases.push(id);
        needles.push((format!("Message-ID of {}", path.display()), format!("atrest-{n}@mua.example")));
        needles.push((format!("reporter of {}", path.display()), from.clone()));
        needles.push((format!("reporter's local part of {}", path.display()), format!("r{n}.{w}")));
        for s in sentences(&body) {
            needles.push((format!("a line of {}", path.display()), s));
        }
    }

    // Encrypted reports with attachments, as a reporter's mail client sends them.
    for k in 0..2 {
        let n = 100 + k;
        let w = word(n);
        let from = format!("r{n}.{w}@reporter{n}.example");
        let reporter = support::intake_party(&format!("Reporter <{from}>"));
        let subject = format!("Encrypted report {n}: marmoset{w} overflow in the gribble decoder");
        let body = format!(
            "Title: Heap overflow in the gribble{n} decoder of frobnitz\n\
             Affected versions: 4.2.{k}\n\n\
             The gribble decoder trusts the length prefix of a frame, reported by {w}.\n\
             Steps: run exploit_{w}.py against a default frobnitz instance on port 8080.\n"
        );
        let poc =
            format!("#!/usr/bin/env python3\n# The proof of concept for the {w} gribble overflow\nprint('boom')\n");
        let log = format!("frobnitz crash log: SIGSEGV in gribble_read_frame {w} at offset 4096\n");
        let (poc_name, log_name) = (format!("exploit_{w}.py"), format!("crashlog-{w}.txt"));
        let raw = encrypted_report(
            &reporter,
            &from,
            &subject,
            &format!("atrest-{n}@mua.example"),
            &body,
            &[(&poc_name, "text/x-python", poc.as_bytes()), (&log_name, "text/plain", log.as_bytes())],
        );
        // Now, not before: the reporter's key was made just now.
        let now = Utc::now();
        let o = p.ingest(&raw, None, now, now).unwrap();
        let id = o.case_id.unwrap_or_else(|| panic!("encrypted report {n} made no case: {:?}", o.reason));
        let c = p.store.case(&id).unwrap().unwrap();
        assert!(c.messages[0].decrypted, "encrypted report {n} was not decrypted");
        cases.push(id);
        needles.push((format!("subject of encrypted report {n}"), subject));
        needles.push((format!("reporter of encrypted report {n}"), from.clone()));
        needles.push((format!("reporter's local part of encrypted report {n}"), format!("r{n}.{w}")));
        for s in sentences(&body) {
            needles.push((format!("a line of encrypted report {n}"), s));
        }
        needles.push((format!("attachment name of encrypted report {n}"), poc_name));
        needles.push((format!("attachment name of encrypted report {n}"), log_name));
        unkept.push((
            format!("attachment content of encrypted report {n}"),
            format!("proof of concept for the {w} gribble"),
        ));
        unkept.push((
            format!("attachment content of encrypted report {n}"),
            format!("SIGSEGV in gribble_read_frame {w}"),
        ));
        pinned.push(from);
    }

    // The shipped PGP/MIME fixture with attachments (poc.py, crash.bin).
    let raw = std::fs::read(support::repo().join("fixtures/pgpmime/with-attachments.eml")).unwrap();
    let o = p.ingest(&raw, None, now, now).unwrap();
    cases.push(o.case_id.expect("the with-attachments fixture made no case"));
    needles.push(("the fixture's title".into(), "Heap buffer overflow in the TIFF thumbnail decoder".into()));
    needles.push(("a line of the fixture".into(), "heap-buffer-overflow WRITE of size 2048 in tiff_read_strip".into()));
    needles.push(("the fixture's reporter".into(), "alice@reporter.test".into()));
    unkept.push((
        "the fixture's poc.py".into(),
        "Proof of concept: upload crash.bin as an avatar (heap overflow in the TIFF decoder)".into(),
    ));

    // The team at work: a reply to a reporter (in the outbox), a note, fields set.
    // (Short of a line of mail: quoted-printable breaks longer ones.)
    let reply = "We reproduced the quorbel flaw with the tamarisk payload.";
    p.reply(&cases[0], reply, "carol", now).unwrap();
    needles.push(("the reply".into(), reply.into()));
    let old_title = p.store.case(&cases[0]).unwrap().unwrap().title;
    drop(p);
    let note = "Reproduced on the staging box with the pemmican harness, fix in review";
    cli(dir, &["case", "note", &cases[1], note, "--as", "bob"]);
    needles.push(("the note".into(), note.into()));
    let title = "Stored XSS in the sassafras comment preview";
    let affected = "sassafras-web 7.7.7-atrest";
    let credit = "Philomena Quarterbridge";
    cli(dir, &["case", "set", &cases[0], "--title", title, "--affected", affected, "--credit", credit, "--as", "bob"]);
    // A block: its key is the address (`block/`, hashed on disk), its reason in the log.
    let blocked_addr = format!("r500.{}@reporter500.example", word(500));
    let reason = "Flooded the intake with the same fuzzing crash, twice a minute";
    cli(dir, &["reporter", "block", &blocked_addr, "--reason", reason, "--as", "bob"]);
    needles.push(("a blocked address".into(), blocked_addr.clone()));
    needles.push(("a block's reason".into(), reason.into()));
    needles.push(("the title set".into(), title.into()));
    // The title it replaces is no longer kept: still searched for.
    let (replaced, rest): (Vec<_>, Vec<_>) = needles.into_iter().partition(|(_, s)| *s == old_title);
    needles = rest;
    unkept.extend(replaced);
    needles.push(("a version set".into(), affected.into()));
    needles.push(("a credit set".into(), credit.into()));

    // Positive control: all of it reads back through the store, so the search below
    // looks for strings the store really holds.
    let store = open(&cfg);
    let mut hay = String::new();
    for id in &cases {
        let c = store.case(id).unwrap().unwrap();
        strings(&c.to_json(true), &mut hay);
        for e in store.log(id).unwrap() {
            strings(&serde_json::to_value(&e).unwrap(), &mut hay);
        }
    }
    for b in store.blocks().unwrap() {
        strings(&serde_json::to_value(&b).unwrap(), &mut hay);
    }
    for e in store.block_log().unwrap() {
        strings(&serde_json::to_value(&e).unwrap(), &mut hay);
    }
    assert!(store.block(&blocked_addr).unwrap().is_some(), "the block reads back by its address");
    let outbox = store.outbox().unwrap();
    for o in &outbox {
        strings(&serde_json::to_value(o).unwrap(), &mut hay);
        if let Some(raw) = store.out_raw(&o.id).unwrap() {
            hay.push_str(&String::from_utf8_lossy(&raw));
        }
    }
    for kind in [MailKind::Ack, MailKind::Summary, MailKind::Reply] {
        assert!(outbox.iter().any(|o| o.kind == kind), "no {kind:?} in the outbox");
    }
    assert!(outbox.iter().all(|o| store.out_raw(&o.id).unwrap().is_some()), "outbox mails without their bytes");
    for r in &pinned {
        assert!(store.cert(r).unwrap().is_some(), "no cert pinned for {r}");
    }
    let unread: Vec<&(String, String)> = needles.iter().filter(|(_, s)| !hay.contains(s.as_str())).collect();
    assert!(unread.is_empty(), "strings the store does not give back (the search would prove nothing): {unread:#?}");
    drop(store);

    // The copy, as a backup or a stolen disk has it.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("state"), copy.path());
    assert!(copy.path().join("store-key.pgp").is_file(), "the wrapped store key is in the state directory");
    let all = files(copy.path());
    assert!(all.len() > 3, "a state directory of {} files", all.len());
    let total: usize = all.iter().map(|(_, b)| b.len()).sum();
    let searched: Vec<&(String, String)> = needles.iter().chain(&unkept).collect();
    let bytes_of: Vec<&[u8]> = searched.iter().map(|(_, s)| s.as_bytes()).collect();
    let mut found = Vec::new();
    for (path, bytes) in &all {
        for i in found_in(bytes, &bytes_of) {
            let (what, s) = searched[i];
            found.push(format!("{what} ({s:?}) in {}", path.strip_prefix(copy.path()).unwrap().display()));
        }
    }
    assert!(
        found.is_empty(),
        "readable at rest ({} strings searched in {} files, {total} bytes):\n{}",
        needles.len() + unkept.len(),
        all.len(),
        found.join("\n")
    );
}

/// A store made under the test intake key, holding one case; returns its id and title.
fn store_with_a_case(dir: &Path) -> (Arc<Config>, String, String) {
    let cfg = config(dir, "intake.key.asc", "");
    let p = Pipeline::load(cfg.clone(), open(&cfg)).unwrap();
    let now = Utc::now();
    let raw = plain_mail(
        "reader@reporter.example",
        "Open redirect in the login form",
        "atrest-key@mua.example",
        "The next parameter of /login redirects to any host after a login.\n",
    );
    let id = p.ingest(&raw, None, now, now).unwrap().case_id.unwrap();
    let title = p.store.case(&id).unwrap().unwrap().title;
    (cfg, id, title)
}

fn reads_case(cfg: &Config, id: &str, title: &str) {
    let s = open(cfg);
    let c = s.case(id).unwrap().unwrap_or_else(|| panic!("no case {id}"));
    assert_eq!(c.title, title);
    assert!(c.messages[0].text.contains("redirects to any host"), "{:?}", c.messages[0].text);
}

#[test]
fn rotated_and_renewed_intake_keys_keep_the_store_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_, id, title) = store_with_a_case(dir);
    let wrapped = std::fs::read(dir.join("state/store-key.pgp")).unwrap();

    // keys rotate: a new key, then the old one, in one file.
    let out = Command::new(support::bin())
        .args(["keys", "generate", "--uid", "Security <security@intake.test>", "--out"])
        .arg(dir.join("new"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut combined = std::fs::read(dir.join("new/intake.key.asc")).unwrap();
    combined.extend(std::fs::read(dir.join("intake.key.asc")).unwrap());
    write_secret(&dir.join("combined.asc"), &combined);
    let cfg = config(dir, "combined.asc", "");
    reads_case(&cfg, &id, &title);
    assert_ne!(std::fs::read(dir.join("state/store-key.pgp")).unwrap(), wrapped, "the store key was wrapped anew");

    // Back to the old key alone (a rotation undone): the store key is signed by the new
    // key now, so the open refuses, saying to keep the new key in the file.
    let cfg = config(dir, "intake.key.asc", "");
    let e = open_error(&cfg, &dir.join("state")).to_string();
    assert!(e.contains("keys.intake_secret") && e.contains("keep the new key"), "{e}");

    // The store key is now wrapped to the new key: the old one can go.
    let cfg = config(dir, "new/intake.key.asc", "");
    reads_case(&cfg, &id, &title);

    // keys renew (same key, new self-signatures, written beside it).
    cli(dir, &["keys", "renew", "--for", "1y"]);
    let renewed = dir.join("new/intake.key.renewed.asc");
    assert!(renewed.is_file());
    let cfg = config(dir, "new/intake.key.renewed.asc", "");
    reads_case(&cfg, &id, &title);
}

#[test]
fn a_missing_or_wrong_store_key_fails_the_open_and_leaves_the_store_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (cfg, id, title) = store_with_a_case(dir);
    let state = dir.join("state");
    let wrapped = state.join("store-key.pgp");
    let kept = dir.join("store-key.pgp.kept");
    std::fs::rename(&wrapped, &kept).unwrap();
    // What the store holds outside sled (whose own files an open may rewrite).
    let outside_sled = || {
        let mut f: Vec<_> = files(&state).into_iter().filter(|(p, _)| !p.starts_with(state.join("db"))).collect();
        f.sort();
        f
    };
    let before = outside_sled();

    // The key file gone: the open fails, says which file and what to do.
    let e = open_error(&cfg, &state);
    assert!(matches!(e, OpenError::Other(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("store-key.pgp") && msg.contains("store rebuild"), "{msg}");
    assert!(!wrapped.exists(), "a new store key was left behind: the next open would take it for the store's");
    let after = outside_sled();
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.display().to_string())
        .chain((before.len() != after.len()).then(|| format!("{} files, then {}", before.len(), after.len())))
        .collect();
    assert!(changed.is_empty(), "the failed open changed the store: {changed:?}");
    // Put back, it opens as before.
    std::fs::rename(&kept, &wrapped).unwrap();
    reads_case(&cfg, &id, &title);

    // store.key_file with another store's key: told as a wrong key.
    write_secret(&dir.join("other.key"), format!("{}\n", "ab".repeat(32)).as_bytes());
    let cfg_other = config(dir, "intake.key.asc", "key_file = \"other.key\"");
    let e = open_error(&cfg_other, &state);
    assert!(matches!(e, OpenError::WrongKey(_)), "{e:?}");
    // Named by its config key (it said `store.key_credential`, a key no config has).
    let msg = e.to_string();
    assert!(msg.contains("store.key_file") && msg.contains("store rebuild"), "{msg}");
    // A malformed key file: named by its config key.
    write_secret(&dir.join("other.key"), b"not a key\n");
    let e = open_error(&cfg_other, &state).to_string();
    assert!(e.contains("store.key_file"), "{e}");
    // Neither touched the store.
    reads_case(&config(dir, "intake.key.asc", ""), &id, &title);

    // A store made with a key file opens with it again (raw or hex), and not without it.
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let key = secintake::store::StoreKey::generate().unwrap();
    write_secret(&dir.join("raw.key"), key.expose());
    let cfg_raw = config(dir, "intake.key.asc", "key_file = \"raw.key\"");
    drop(secintake::atrest::try_open_at(&cfg_raw, &fresh, None).unwrap());
    assert!(!fresh.join("store-key.pgp").exists(), "a key file's store has no wrapped key");
    write_secret(&dir.join("hex.key"), hex_of(key.expose()).as_bytes());
    let cfg_hex = config(dir, "intake.key.asc", "key_file = \"hex.key\"");
    wait_open(&cfg_hex, &fresh);
    let e = open_error(&config(dir, "intake.key.asc", ""), &fresh).to_string();
    assert!(e.contains("store-key.pgp") && e.contains("store rebuild"), "{e}");
}

/// Writes a key file, mode 0600 (the config refuses others).
fn write_secret(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The error of opening `state` with `cfg`, waiting out a store this process just dropped.
fn open_error(cfg: &Config, state: &Path) -> OpenError {
    let start = std::time::Instant::now();
    loop {
        match secintake::atrest::try_open_at(cfg, state, None) {
            Err(OpenError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => return e,
            Ok(_) => panic!("the store {} opened", state.display()),
        }
    }
}

fn wait_open(cfg: &Config, state: &Path) {
    let start = std::time::Instant::now();
    loop {
        match secintake::atrest::try_open_at(cfg, state, None) {
            Err(OpenError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            r => {
                r.unwrap();
                return;
            }
        }
    }
}

/// Two processes opening a new state directory at once (the daemon's first start and a
/// command) each make a store key: the store must end up with the key of its wrapped
/// file, whichever wrote it first, or it never opens again.
#[test]
fn two_first_opens_at_once_agree_on_one_store_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "intake.key.asc", "");
    for round in 0..6 {
        let state = tmp.path().join(format!("state{round}"));
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<Result<secintake::store::Store, OpenError>> = std::thread::scope(|s| {
            let open = || {
                barrier.wait();
                secintake::atrest::try_open_at(&cfg, &state, None)
            };
            let (a, b) = (s.spawn(open), s.spawn(open));
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        assert!(
            results.iter().any(|r| r.is_ok()),
            "round {round}: neither opened: {:?}",
            results.iter().map(|r| r.as_ref().err()).collect::<Vec<_>>()
        );
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, OpenError::Locked(_)), "round {round}: {e:?}");
            }
        }
        drop(results);
        // The next open (the daemon's restart) reads the store with its wrapped key.
        let start = std::time::Instant::now();
        loop {
            match secintake::atrest::try_open_at(&cfg, &state, None) {
                Err(OpenError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => {
                    r.unwrap_or_else(|e| panic!("round {round}: the store does not open again: {e}"));
                    break;
                }
            }
        }
    }
}
