//! Generates the backlog benchmark's input (tests/bench/backlog.sh): N encrypted and
//! signed ~4 KiB PGP/MIME reports (RFC 3156, laid out as Thunderbird sends them), each
//! from its own reporter address with its own Cv25519 key in an Autocrypt header,
//! encrypted to the intake cert.
//!
//! ```text
//! cargo run --release --example gen_reports -- INTAKE_PUB.asc N OUT_DIR
//! ```
//! writes `OUT_DIR/eml/NNNNNN.eml` (the messages), `OUT_DIR/ct/NNNNNN.asc` (the armored
//! ciphertext inside each, for `gpg --decrypt` and the in-process floor),
//! `OUT_DIR/cert/NNNNNN.pgp` (the reporter's binary cert, as the Autocrypt header
//! carries it) and `OUT_DIR/reporters.asc` (all reporter certs, for gpg's keyring).
//!
//! Ciphertexts are SEIPDv1 (what gpg 2.2 and Thunderbird send, and what gpg can read
//! back); reporter keys advertise SEIPDv1 only, like a gpg 2.2 key. The report text is
//! deterministic (a seeded generator); keys and session keys are random. Two threads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use sequoia_openpgp as openpgp;

use openpgp::KeyHandle;
use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::Features;

/// Size of the report's text body: the issue's "4 KiB reports".
const BODY_BYTES: usize = 4096;

/// Words the report text is drawn from (never compressible to nothing, always ASCII).
const WORDS: &[&str] = &[
    "the",
    "parser",
    "overflow",
    "heap",
    "buffer",
    "request",
    "header",
    "length",
    "when",
    "an",
    "attacker",
    "sends",
    "crafted",
    "input",
    "to",
    "endpoint",
    "server",
    "crashes",
    "memory",
    "read",
    "out",
    "of",
    "bounds",
    "in",
    "function",
    "decode",
    "allows",
    "remote",
    "code",
    "execution",
    "via",
    "malformed",
    "packet",
    "token",
    "session",
    "cookie",
    "path",
    "traversal",
    "upload",
    "file",
    "reproduce",
    "with",
    "following",
    "steps",
    "version",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, intake_pub, n, out] = &args[..] else {
        return Err(anyhow!("usage: gen_reports INTAKE_PUB.asc N OUT_DIR"));
    };
    let n: usize = n.parse().context("N must be a number")?;
    let intake = Cert::from_file(intake_pub).with_context(|| format!("reading {intake_pub}"))?;
    let out = PathBuf::from(out);
    for d in ["eml", "ct", "cert"] {
        std::fs::create_dir_all(out.join(d))?;
    }
    let run_id = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_micros();
    let threads = 2;
    let armored: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (intake, out) = (&intake, &out);
                s.spawn(move || -> Result<Vec<(usize, Vec<u8>)>> {
                    (0..n).filter(|i| i % threads == t).map(|i| Ok((i, one(i, intake, out, run_id)?))).collect()
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow!("generator thread panicked"))??);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok::<_, anyhow::Error>(all.into_iter().map(|(_, a)| a).collect())
    })?;
    std::fs::write(out.join("reporters.asc"), armored.concat())?;
    eprintln!("gen_reports: {n} reports in {}", out.display());
    Ok(())
}

/// Writes report `i`; returns the reporter's armored public cert.
fn one(i: usize, intake: &Cert, out: &Path, run_id: u128) -> Result<Vec<u8>> {
    let p = StandardPolicy::new();
    let addr = format!("r{i}@reporter.test");
    let (reporter, _) = CertBuilder::general_purpose(Some(format!("Reporter {i} <{addr}>")))
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_features(Features::empty().set_seipdv1())?
        .generate()?;
    let now = SystemTime::now();
    let title = format!("Heap overflow in the request parser (report {i})");
    let body = report_text(i);
    let msgid = format!("bench-{i}-{run_id}@reporter.test");
    let inner = format!(
        "Content-Type: multipart/mixed; boundary=\"------------mix{i}\"; protected-headers=\"v1\"\r\n\
         Subject: {title}\r\nFrom: Reporter {i} <{addr}>\r\nTo: security@intake.test\r\n\
         Message-ID: <{msgid}>\r\n\r\n\
         This is a multi-part message in MIME format.\r\n--------------mix{i}\r\n\
         Content-Type: text/plain; charset=UTF-8; format=flowed\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{body}\r\n--------------mix{i}--\r\n"
    );

    // Encrypt (SEIPDv1) to the intake cert's encryption subkeys and sign with the reporter's key.
    let recipients: Vec<Recipient> = intake
        .keys()
        .with_policy(&p, now)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption()
        .map(|ka| Recipient::new(Features::empty().set_seipdv1(), KeyHandle::from(ka.key().keyid()), ka.key()))
        .collect();
    let signer = reporter
        .keys()
        .secret()
        .with_policy(&p, now)
        .for_signing()
        .next()
        .ok_or_else(|| anyhow!("no signing key"))?
        .key()
        .clone()
        .into_keypair()?;
    let mut ct = Vec::new();
    {
        let m = Message::new(&mut ct);
        let m = Armorer::new(m).build()?;
        let m = Encryptor::for_recipients(m, recipients).build()?;
        let m = Signer::new(m, signer)?.build()?;
        let mut lit = LiteralWriter::new(m).build()?;
        lit.write_all(inner.as_bytes())?;
        lit.finalize()?;
    }
    let ct = String::from_utf8(ct)?.replace("\r\n", "\n").replace('\n', "\r\n");

    let public = reporter.clone().strip_secret_key_material();
    let mut binary = Vec::new();
    public.serialize(&mut binary)?;
    let keydata = base64::engine::general_purpose::STANDARD.encode(&binary);
    let folded: Vec<&str> = keydata.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    let date = chrono::DateTime::<chrono::Utc>::from(now).to_rfc2822();
    let b = format!("------------enc{i}");
    let eml = format!(
        "From: Reporter {i} <{addr}>\r\nTo: security@intake.test\r\nSubject: ...\r\n\
         Message-ID: <{msgid}>\r\nDate: {date}\r\nMIME-Version: 1.0\r\n\
         User-Agent: Mozilla Thunderbird\r\nContent-Language: en-US\r\n\
         Autocrypt: addr={addr}; keydata=\r\n {}\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"{b}\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n--{b}\r\n\
         Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\n\
         Version: 1\r\n\r\n--{b}\r\n\
         Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Description: OpenPGP encrypted message\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n{ct}\r\n--{b}--\r\n",
        folded.join("\r\n ")
    );
    let name = format!("{:06}", i + 1);
    std::fs::write(out.join("eml").join(format!("{name}.eml")), eml)?;
    std::fs::write(out.join("ct").join(format!("{name}.asc")), ct)?;
    std::fs::write(out.join("cert").join(format!("{name}.pgp")), &binary)?;
    let mut armored = Vec::new();
    {
        let mut w = openpgp::armor::Writer::new(&mut armored, openpgp::armor::Kind::PublicKey)?;
        w.write_all(&binary)?;
        w.finalize()?;
    }
    Ok(armored)
}

/// A deterministic report of about [`BODY_BYTES`]: a title line, fields the extractors
/// look for (CVSS, CWE, versions), then seeded words in 72-column lines.
fn report_text(i: usize) -> String {
    let mut s = format!(
        "Hello security team,\r\n\r\nI found a heap overflow in the request parser (report {i}).\r\n\
         CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\r\nCWE-787\r\nAffected versions: 1.2.0 to 1.4.{}\r\n\r\n",
        i % 10
    );
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut line = 0;
    while s.len() < BODY_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w = WORDS[(x % WORDS.len() as u64) as usize];
        if line + w.len() + 1 > 72 {
            s.push_str("\r\n");
            line = 0;
        } else if line > 0 {
            s.push(' ');
            line += 1;
        }
        s.push_str(w);
        line += w.len();
    }
    s.push_str("\r\n\r\nThanks,\r\nReporter\r\n");
    s
}
