//! The in-process Sequoia floor of the backlog benchmark (tests/bench/backlog.sh): the
//! crypto secintake does per report, with the product's own code
//! (`secintake::openpgp::IntakeKeys`), and nothing else: no IMAP, MIME, store or SMTP.
//!
//! ```text
//! cargo run --release --example bench_floor -- INTAKE_KEY.asc TEAM_CERT.asc DIR N
//! ```
//! reads the first N (and one more, to warm up on) of `DIR/ct/*.asc` and `DIR/cert/*.pgp`
//! (written by gen_reports) into memory, then times, per message:
//! - `decrypt+verify`: parse the reporter cert (as from its Autocrypt header), then
//!   `decrypt_message` with it as the signer cert; 1 thread and 2 threads;
//! - `+ack+summary`: the same plus `encrypt_and_sign` of a ~1.5 KiB ack to the reporter
//!   and of a summary (fields + the report text) to the team cert; 1 and 2 threads.
//!
//! Every decryption must give a good signature, or the run fails. Prints one line per
//! measurement, the best of up to 3 rounds:
//! `floor NAME THREADS N SECONDS MSGS_PER_S`.
//!
//! Each round runs in a fresh process (this program again, with `--round NAME THREADS`):
//! Sequoia caches every signature it verified, process-wide, so a second round in the
//! same process would verify nothing (the reporter certs' self-signatures and the
//! messages' signatures are most of decrypt+verify) and the floor would be what the
//! daemon, which sees each message once, can never be.

use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use secintake::openpgp::{Decryption, IntakeKeys, Verdict, parse_certs};

// The product's allocator, so that the floor and the daemon are measured alike.
secintake::product_allocator!();

/// The plaintext cap the product uses by default (`limits.max_plaintext_bytes`).
const MAX_PLAINTEXT: u64 = 200 << 20;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (files, round) = match &args[1..] {
        [tsk, team, dir, n] => ([tsk, team, dir, n], None),
        [tsk, team, dir, n, flag, name, threads] if flag == "--round" => ([tsk, team, dir, n], Some((name, threads))),
        _ => return Err(anyhow!("usage: bench_floor INTAKE_KEY.asc TEAM_CERT.asc DIR N")),
    };
    let [tsk, team, dir, n] = files;
    let n: usize = n.parse().ok().filter(|&n| n > 0).context("N must be a positive number")?;
    let Some((name, threads)) = round else {
        return parent(&args[1..5], n);
    };
    let threads: usize = threads.parse().context("THREADS must be a number")?;
    let full = match name.as_str() {
        "decrypt+verify" => false,
        "+ack+summary" => true,
        other => return Err(anyhow!("unknown measurement {other}")),
    };
    let keys = IntakeKeys::from_bytes(&std::fs::read(tsk).with_context(|| format!("reading {tsk}"))?, None)?;
    let team = parse_certs(&std::fs::read(team).with_context(|| format!("reading {team}"))?);
    if team.is_empty() {
        return Err(anyhow!("no cert in the team cert file"));
    }
    // One more message than measured: the last is the untimed warm-up (page faults,
    // lazy statics), so that no measured message's signatures are in the cache.
    let mut msgs = Vec::with_capacity(n + 1);
    for i in 1..=n + 1 {
        let ct = std::fs::read(format!("{dir}/ct/{i:06}.asc")).with_context(|| format!("message {i}"));
        let cert = std::fs::read(format!("{dir}/cert/{i:06}.pgp")).with_context(|| format!("cert {i}"));
        match (ct, cert) {
            (Ok(ct), Ok(cert)) => msgs.push((ct, cert)),
            // The set holds exactly N: warm up on the first, which is then measured
            // with its signatures cached (one message in N).
            (Err(_), _) | (_, Err(_)) if i == n + 1 => msgs.push(msgs[0].clone()),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        }
    }
    let w = Work { keys: &keys, team: &team, msgs: &msgs };
    w.one(n, true)?;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let w = &w;
                s.spawn(move || -> Result<()> { (0..n).filter(|i| i % threads == t).try_for_each(|i| w.one(i, full)) })
            })
            .collect();
        hs.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow!("worker panicked"))?)
    })?;
    println!("{:.6}", t0.elapsed().as_secs_f64());
    Ok(())
}

/// Runs every measurement, each round in a fresh process, and prints the best round.
fn parent(files: &[String], n: usize) -> Result<()> {
    let me = std::env::current_exe().context("finding this program")?;
    // Best of a few rounds (fewer for big N): the floor is what the machine can do, and
    // other processes on a shared machine only ever make a round slower.
    let rounds = (6000 / n).clamp(1, 3);
    for name in ["decrypt+verify", "+ack+summary"] {
        for threads in [1, 2] {
            let mut best = f64::MAX;
            for _ in 0..rounds {
                let out = std::process::Command::new(&me)
                    .args(files)
                    .args(["--round", name, &threads.to_string()])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .context("running a round")?;
                if !out.status.success() {
                    return Err(anyhow!("round {name} {threads} failed: {}", out.status));
                }
                let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("a round's time")?;
                best = best.min(secs);
            }
            println!("floor {name} {threads} {n} {best:.3} {:.1}", n as f64 / best);
        }
    }
    Ok(())
}

struct Work<'a> {
    keys: &'a IntakeKeys,
    team: &'a [sequoia_openpgp::Cert],
    msgs: &'a [(Vec<u8>, Vec<u8>)],
}

impl Work<'_> {
    fn one(&self, i: usize, full: bool) -> Result<()> {
        let now = SystemTime::now();
        let (ct, cert) = &self.msgs[i];
        let certs = parse_certs(cert);
        let plaintext = match self.keys.decrypt_message(ct, &certs, MAX_PLAINTEXT, now) {
            Decryption::Ok { plaintext, signatures, .. } if signatures.verdict() == Verdict::Good => plaintext,
            Decryption::Ok { signatures, .. } => {
                return Err(anyhow!("message {}: signature {:?}", i + 1, signatures.verdict()));
            }
            other => return Err(anyhow!("message {}: {other:?}", i + 1)),
        };
        if full {
            let ack = ack_text(i);
            self.keys.encrypt_and_sign(ack.as_bytes(), &certs, now)?;
            let mut summary = summary_head(i).into_bytes();
            summary.extend_from_slice(&plaintext);
            self.keys.encrypt_and_sign(&summary, self.team, now)?;
        }
        Ok(())
    }
}

/// An acknowledgement's inner MIME part of the product's size (~1.5 KiB).
fn ack_text(i: usize) -> String {
    let mut s = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
         Subject: [SEC-2026-{i:04}] Report received\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         Thank you for your report. It was received and recorded as case SEC-2026-{i:04}.\r\n"
    );
    while s.len() < 1536 {
        s.push_str("Received at 2026-12-01T00:00:00Z; SHA-256 0123456789abcdef0123456789abcdef0123456789abcdef.\r\n");
    }
    s
}

/// The team summary's fields before the report text.
fn summary_head(i: usize) -> String {
    format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
         Subject: [SEC-2026-{i:04}] New report\r\n\r\n\
         Case: SEC-2026-{i:04}\r\nReporter: r{i}@reporter.test\r\nSignature: good\r\n\
         CVSS: 9.8 critical\r\nCWE: CWE-787\r\nDue: ack 2026-12-02, update 2026-12-08\r\n\r\n"
    )
}
