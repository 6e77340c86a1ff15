//! The PKESK cap and the session-key retry (issue 26 §2), through `secintake ingest`:
//! a message with more than 32 PKESK/SKESK packets is quarantined `malformed` before
//! any key is used (a flood of 40,000 altered copies of a real PKESK once cost 23.7 s
//! of asymmetric decryptions), and a forged PKESK placed ahead of the genuine one does
//! not turn a genuine report into `decrypt-failed`, also on the LibrePGP path.
//!
//! `PKESK_FLOOD_DUMP=<dir>` keeps the flood's config and message there, so its cost can
//! be timed against another build (`secintake --config <dir>/secintake.toml ingest
//! <dir>/flood.eml`).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use openpgp::crypto::SessionKey;
use openpgp::packet::PKESK;
use openpgp::packet::pkesk::PKESK3;
use openpgp::parse::Parse;
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Packet};
use sequoia_openpgp as openpgp;

use secintake::openpgp::librepgp;

const INNER: &str = "Content-Type: text/plain; charset=utf-8\r\nSubject: Heap overflow in the parser\r\n\r\n\
    Title: Heap overflow in the parser\r\nA crafted header overflows the buffer.\r\n";

fn intake_cert(dir: &Path) -> Cert {
    Cert::from_bytes(&std::fs::read(dir.join("keys/intake.pub.asc")).unwrap()).unwrap()
}

fn encryption_key(
    cert: &Cert,
) -> openpgp::packet::Key<openpgp::packet::key::PublicParts, openpgp::packet::key::UnspecifiedRole> {
    let p = openpgp::policy::StandardPolicy::new();
    cert.keys().with_policy(&p, None).for_transport_encryption().next().unwrap().key().clone()
}

/// A genuine report to the intake key, binary: PKESK, SEIPDv1.
fn genuine(cert: &Cert) -> Vec<u8> {
    let p = openpgp::policy::StandardPolicy::new();
    let recipients = cert.keys().with_policy(&p, None).supported().for_transport_encryption();
    let mut ct = Vec::new();
    {
        let msg = Message::new(&mut ct);
        let msg = Encryptor::for_recipients(msg, recipients).build().unwrap();
        let mut lit = LiteralWriter::new(msg).build().unwrap();
        lit.write_all(INNER.as_bytes()).unwrap();
        lit.finalize().unwrap();
    }
    ct
}

/// The serialized first packet of `ct` (its PKESK) and the rest.
fn split_first_packet(ct: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let pile = openpgp::PacketPile::from_bytes(ct).unwrap();
    let first = pile.children().next().unwrap();
    let mut bytes = Vec::new();
    first.serialize(&mut bytes).unwrap();
    assert!(matches!(first, Packet::PKESK(_)));
    assert_eq!(&ct[..bytes.len()], &bytes[..], "the first packet serializes as it came");
    (bytes.clone(), ct[bytes.len()..].to_vec())
}

/// `n` copies of `pkesk` with the last byte of the encrypted session key altered:
/// each still names the intake key, none decrypts.
fn altered_copies(pkesk: &[u8], n: usize) -> Vec<u8> {
    let mut one = pkesk.to_vec();
    let last = one.len() - 1;
    one[last] ^= 0x5a;
    one.repeat(n)
}

fn armored(bin: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Message).unwrap();
    w.write_all(bin).unwrap();
    w.finalize().unwrap();
    out
}

fn mail(ct_bin: &[u8], msgid: &str) -> Vec<u8> {
    let headers = format!(
        "From: Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\nSubject: ...\r\nMessage-ID: <{msgid}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    );
    support::pgp_mime_wrap(&headers, &armored(ct_bin))
}

/// Ingests `raw` with the binary; returns its first stdout line.
fn ingest(cfg: &Path, dir: &Path, name: &str, raw: &[u8]) -> String {
    let f = dir.join(name);
    std::fs::write(&f, raw).unwrap();
    let out = Command::new(support::bin()).arg("--config").arg(cfg).arg("ingest").arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_owned()
}

fn quarantine_reasons(cfg: &Path) -> Vec<(String, String)> {
    let out =
        Command::new(support::bin()).arg("--config").arg(cfg).args(["quarantine", "list", "--json"]).output().unwrap();
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    q.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["reason"].as_str().unwrap().to_owned(), e["detail"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn more_than_32_pkesks_is_malformed_and_the_flood_is_cheap() {
    let d = support::tempdir("pkesk");
    let cfg = support::write_config(d.path(), "");
    let cert = intake_cert(d.path());
    let (pkesk, rest) = split_first_packet(&genuine(&cert));

    // The flood of the issue: 40,000 altered copies ahead of the genuine PKESK.
    let flood = [altered_copies(&pkesk, 40_000), pkesk.clone(), rest.clone()].concat();
    let raw = mail(&flood, "flood@reporter.test");
    if let Ok(keep) = std::env::var("PKESK_FLOOD_DUMP") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::write(keep.join("flood.eml"), &raw).unwrap();
        for entry in ["secintake.toml", "pw"] {
            std::fs::copy(d.path().join(entry), keep.join(entry)).unwrap();
        }
        for sub in ["keys", "team"] {
            std::fs::create_dir_all(keep.join(sub)).unwrap();
            for f in std::fs::read_dir(d.path().join(sub)).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, keep.join(sub).join(f.file_name().unwrap())).unwrap();
            }
        }
        return;
    }
    // A few altered copies ahead of the genuine PKESK: still a case.
    let few = [altered_copies(&pkesk, 3), pkesk.clone(), rest.clone()].concat();
    let line = ingest(&cfg, d.path(), "few.eml", &mail(&few, "few@reporter.test"));
    assert!(line.starts_with("case SEC-"), "{line}");

    // 33 ESK packets: malformed, whatever they hold.
    let over = [altered_copies(&pkesk, 32), pkesk.clone(), rest.clone()].concat();
    let line = ingest(&cfg, d.path(), "over.eml", &mail(&over, "over@reporter.test"));
    assert!(line.starts_with("quarantine Q-"), "{line}");
    assert_eq!(quarantine_reasons(&cfg).last().unwrap().0, "malformed");

    let start = Instant::now();
    let line = ingest(&cfg, d.path(), "flood.eml", &raw);
    let took = start.elapsed();
    eprintln!("PKESK flood: {} KiB message, ingest took {:.2} s", raw.len() / 1024, took.as_secs_f64());
    assert!(line.starts_with("quarantine Q-"), "{line}");
    assert_eq!(quarantine_reasons(&cfg).last().unwrap().0, "malformed");
    // The whole `ingest` (process start, key unlock, parse, store) in a debug build;
    // before the cap this was 20+ s.
    assert!(took.as_secs_f64() < 5.0, "the flood took {took:?}");
}

/// A LibrePGP AEAD (tag 20) message as GnuPG 2.4 writes it: PKESK v3 for `key` with
/// session key `sk`, then the chunks of `inner` (a literal data packet).
fn tag20(
    key: &openpgp::packet::Key<openpgp::packet::key::PublicParts, openpgp::packet::key::UnspecifiedRole>,
    sk: &SessionKey,
) -> (Vec<u8>, Vec<u8>) {
    let pkesk = PKESK3::for_recipient(SymmetricAlgorithm::AES256, sk, key).unwrap();
    let mut pk = Vec::new();
    Packet::from(PKESK::from(pkesk)).serialize(&mut pk).unwrap();
    let mut lit = Vec::new();
    {
        let msg = Message::new(&mut lit);
        let mut w = LiteralWriter::new(msg).build().unwrap();
        w.write_all(INNER.as_bytes()).unwrap();
        w.finalize().unwrap();
    }
    let h = librepgp::Header { cipher: 9, mode: librepgp::Mode::Ocb, chunk_octet: 0 };
    let body = librepgp::encrypt(h, &[7u8; 15], sk, &lit).unwrap();
    let mut packet = vec![0xC0 | 20, 0xFF];
    packet.extend_from_slice(&(body.len() as u32).to_be_bytes());
    packet.extend_from_slice(&body);
    (pk, packet)
}

#[test]
fn a_forged_first_pkesk_does_not_hide_a_genuine_report() {
    let d = support::tempdir("pkesk");
    let cfg = support::write_config(d.path(), "");
    let cert = intake_cert(d.path());
    let key = encryption_key(&cert);
    // Anyone can make a valid PKESK to the public intake key; its session key opens
    // nothing.
    let forged = {
        let pkesk = PKESK3::for_recipient(SymmetricAlgorithm::AES256, &SessionKey::new(32).unwrap(), &key).unwrap();
        let mut v = Vec::new();
        Packet::from(PKESK::from(pkesk)).serialize(&mut v).unwrap();
        v
    };

    // LibrePGP AEAD (our own chunk reader).
    let sk = SessionKey::new(32).unwrap();
    let (pk, packet) = tag20(&key, &sk);
    let line = ingest(&cfg, d.path(), "t20.eml", &mail(&[forged.clone(), pk, packet].concat(), "t20@reporter.test"));
    assert!(line.starts_with("case SEC-"), "LibrePGP with a forged first PKESK: {line} {:?}", quarantine_reasons(&cfg));

    // SEIPDv1 (Sequoia's own loop).
    let (pkesk, rest) = split_first_packet(&genuine(&cert));
    let line = ingest(&cfg, d.path(), "v1.eml", &mail(&[forged, pkesk, rest].concat(), "v1@reporter.test"));
    assert!(line.starts_with("case SEC-"), "SEIPDv1 with a forged first PKESK: {line}");
}
