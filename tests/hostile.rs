//! Hostile input costs bounded (issue 10): a small compressed message that decrypts to
//! 19 MiB of control bytes, fed to the real binary through `ingest`, measured from
//! outside (store growth on disk, the process's peak RSS, what `case list` costs
//! afterwards). Figures are printed; the limits are the issue's.

mod support;

use std::io::Write;
use std::path::Path;

use openpgp::parse::Parse;
use openpgp::serialize::stream::{Armorer, Compressor, Encryptor, LiteralWriter, Message};
use sequoia_openpgp as openpgp;

/// Bytes of all files below `dir`.
fn du(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            n += if p.is_dir() { du(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) };
        }
    }
    n
}

/// Runs the binary with `input` on stdin; returns (exit ok, stdout, peak RSS in bytes),
/// the peak read from /proc (VmHWM only grows) until the process exits.
fn run_measured(cfg: &Path, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, u64) {
    let mut child = support::spawn_piped(cfg, args);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    // Drain stdout while waiting: a large `case show` would otherwise block on a full
    // pipe.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    let status_path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    writer.join().unwrap();
    let stdout = reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), stdout, peak)
}

const MIB: u64 = 1 << 20;

#[test]
fn control_byte_flood_costs_bounded_store_memory_and_listing() {
    let dir = support::tempdir("amp");
    let cfg = support::write_config(dir.path(), "");
    let intake = openpgp::Cert::from_bytes(&std::fs::read(dir.path().join("keys/intake.pub.asc")).unwrap()).unwrap();

    // An ordinary report first: what `case list` costs with it is the baseline.
    let plain = support::plain_report("bob@reporter.test", "Baseline", "Title: Baseline\n", "base-1@reporter.test");
    let (ok, _, _) = run_measured(&cfg, &["ingest", "-"], &plain);
    assert!(ok);
    let (ok, base_list, base_rss) = run_measured(&cfg, &["case", "list", "--json"], b"");
    assert!(ok);
    let store_before = du(&dir.path().join("state"));

    // 19 MiB of control characters (every byte that JSON must escape), compressed.
    let flood: Vec<u8> = (0..19 * MIB as usize).map(|i| [0x01u8, 0x1b, 0x07, 0x00, 0x1f, b'\t'][i % 6]).collect();
    let policy = openpgp::policy::StandardPolicy::new();
    let recipients =
        intake.keys().with_policy(&policy, None).supported().alive().revoked(false).for_transport_encryption();
    let mut armored = Vec::new();
    {
        let msg = Message::new(&mut armored);
        let msg = Armorer::new(msg).build().unwrap();
        let msg = Encryptor::for_recipients(msg, recipients).build().unwrap();
        let msg = Compressor::new(msg).build().unwrap();
        let mut lit = LiteralWriter::new(msg).build().unwrap();
        lit.write_all(b"Content-Type: text/plain; charset=utf-8\r\nSubject: flood\r\n\r\n").unwrap();
        lit.write_all(&flood).unwrap();
        lit.finalize().unwrap();
    }
    let mut mail = b"From: Mallory <mallory@reporter.test>\r\nTo: security@intake.test\r\nSubject: ...\r\n\
        Message-ID: <flood-1@reporter.test>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
        --b\r\nContent-Type: application/octet-stream\r\n\r\n"
        .to_vec();
    mail.extend_from_slice(&armored);
    mail.extend_from_slice(b"\r\n--b--\r\n");

    let (ok, _, ingest_rss) = run_measured(&cfg, &["ingest", "-"], &mail);
    assert!(ok, "ingest failed");
    let growth = du(&dir.path().join("state")).saturating_sub(store_before);
    let (ok, list, list_rss) = run_measured(&cfg, &["case", "list", "--json"], b"");
    assert!(ok);
    eprintln!(
        "flood: message {} KiB, plaintext {} MiB; store +{:.1} MiB; ingest peak RSS {:.1} MiB; \
         case list {} -> {} bytes, peak RSS {:.1} -> {:.1} MiB",
        mail.len() / 1024,
        flood.len() as u64 / MIB,
        growth as f64 / MIB as f64,
        ingest_rss as f64 / MIB as f64,
        base_list.len(),
        list.len(),
        base_rss as f64 / MIB as f64,
        list_rss as f64 / MIB as f64
    );
    assert!(growth <= 3 * flood.len() as u64, "store grew {growth} bytes for {} bytes of text", flood.len());
    assert!(ingest_rss <= 256 * MIB, "ingest peaked at {ingest_rss} bytes");
    // `case list` never reads report texts: its output and memory do not grow with them.
    assert!(list.len() < 2 * base_list.len() + 4096, "case list grew from {} to {} bytes", base_list.len(), list.len());
    assert!(list_rss < base_rss + 16 * MIB, "case list peak RSS {base_rss} -> {list_rss}");
    // The text is all there for `case show`.
    let cases: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let id =
        cases.as_array().unwrap().iter().find(|c| c["reporter"]["address"] == "mallory@reporter.test").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let (ok, show, _) = run_measured(&cfg, &["case", "show", &id, "--json"], b"");
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_slice(&show).unwrap();
    assert_eq!(shown["text"].as_str().unwrap().len(), flood.len(), "the whole text is kept");
}
