//! The duplicate and search indexes at the scale of years of mail (issue 22): a store
//! filled through the real pipeline (`Pipeline::ingest_group`, groups of 64 as intake
//! records a FETCH batch) with generated plain-text reports, each about its own
//! component with its own words (drawn from a Zipf-distributed vocabulary, so some
//! words are in every report), plus the boilerplate every report has.
//!
//! ```text
//! cargo run --example index_bench -- 1000 10000
//! ```
//! For each size N (ascending; one store grown from one to the next) it prints the
//! per-message cost of intake at N (the next 256 reports, whole pipeline: parse, decide
//! with the duplicate lookup, record with the duplicate index and the search queue, group
//! commit with fsync), the duplicate lookup alone per message, the duplicate index's bytes
//! per case; at the largest N the search indexing of the queue (as the SLA clock does it,
//! off the messages' path), the search index's bytes per case and the latency of `case
//! search` queries (common, rare and id queries, median and max).
//! Then the ratio of the per-message costs at the largest and the smallest N.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use secintake::config::Config;
use secintake::pipeline::{Item, Pipeline, dupes, search};

/// Reports measured at each size.
const MEASURED: usize = 256;
/// Reports per group commit (intake's FETCH batches are 8 to 128).
const GROUP: usize = 64;

fn pipeline(dir: &Path) -> Pipeline {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys");
    let secret = dir.join("intake.key.asc");
    std::fs::copy(keys.join("test-intake.key.asc"), &secret).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, "x").unwrap();
    for f in [&secret, &pw] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::copy(keys.join("team.pub.asc"), dir.join("team/team.asc")).unwrap();
    let text = "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"intake.key.asc\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[policy]\nproject = \"Bench\"\n[store]\npath = \"state\"\n[limits]\nacks_per_hour = 100000\nacks_per_address_per_hour = 100000\n";
    let cfg = Arc::new(Config::parse(text, &dir.join("secintake.toml")).unwrap());
    let store = secintake::atrest::open(&cfg).unwrap();
    Pipeline::load(cfg, store).unwrap()
}

/// A small deterministic generator (xorshift), so every run makes the same reports.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A pronounceable word for index `i` of the vocabulary.
fn word(i: usize) -> String {
    const C: &[&str] = &["b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st", "tr"];
    const V: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
    let mut w = String::new();
    let mut x = i + 7;
    for _ in 0..3 {
        w.push_str(C[x % C.len()]);
        x /= C.len();
        w.push_str(V[x % V.len()]);
        x /= V.len();
    }
    w
}

/// Vocabulary size: each report draws its own words from it, Zipf-like.
const VOCAB: usize = 20_000;

fn zipf(rng: &mut Rng) -> usize {
    // Inverse of a harmonic-ish distribution: many small ranks, a long tail.
    let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
    ((VOCAB as f64).powf(u) as usize).min(VOCAB - 1)
}

const CWES: &[&str] = &["CWE-79", "CWE-89", "CWE-22", "CWE-918", "CWE-787", "CWE-416", "CWE-352", "CWE-287"];

fn report(i: usize, rng: &mut Rng) -> Vec<u8> {
    let component = format!("/{}/{}", word(rng.below(VOCAB)), word(rng.below(VOCAB)));
    let mut sentences = Vec::new();
    for _ in 0..8 {
        let s: Vec<String> = (0..12).map(|_| word(zipf(rng))).collect();
        sentences.push(s.join(" "));
    }
    let body = format!(
        "Hello security team,\n\nI found a vulnerability in {component}. {}.\n\n{}: {component}\nAffected versions: 4.{}.{}\n\n\
         Steps to reproduce:\n1. {}.\n2. {}.\n3. Send the request to https://host{i}.example.com{component}.\n\nImpact: {}.\n\nBest regards,\nReporter {i}\n",
        sentences[0..4].join(". "),
        CWES[rng.below(CWES.len())],
        rng.below(10),
        rng.below(20),
        sentences[4],
        sentences[5],
        sentences[6..8].join(". "),
    );
    format!(
        "From: r{i}@reporter{}.test\r\nTo: security@intake.test\r\nSubject: Vulnerability in {component}\r\nMessage-ID: <bench-{i}@r.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        i % 997,
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

fn ingest(p: &Pipeline, from: usize, to: usize, t0: DateTime<Utc>, rng: &mut Rng) {
    let mut i = from;
    while i < to {
        let end = (i + GROUP).min(to);
        let items: Vec<Item> = (i..end).map(|k| (report(k, rng), None, t0 + Duration::seconds(k as i64))).collect();
        let now = t0 + Duration::seconds(end as i64);
        for r in p.ingest_group(&items, now).unwrap() {
            r.unwrap();
        }
        i = end;
    }
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![1000, 10000];
    }
    sizes.sort();
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path());
    let t0 = DateTime::from_timestamp(Utc::now().timestamp() - 400_000, 0).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd);
    let mut have = 0;
    let mut per_message = Vec::new();
    for &n in &sizes {
        let fill = Instant::now();
        ingest(&p, have, n, t0, &mut rng);
        eprintln!("filled to {n} cases in {:.1} s", fill.elapsed().as_secs_f64());
        // The next MEASURED reports, whole pipeline, at size n.
        let mut probe = Rng(0x0bad_cafe ^ n as u64);
        let start = Instant::now();
        ingest(&p, n, n + MEASURED, t0, &mut probe);
        let ms = start.elapsed().as_secs_f64() * 1000.0 / MEASURED as f64;
        // The duplicate lookup alone, over the cases just added.
        let start = Instant::now();
        let mut candidates = 0;
        for k in n..n + MEASURED {
            let id = format!("SEC-{}-{:04}", (t0 + Duration::seconds(k as i64)).format("%Y"), k + 1);
            let s: secintake::triage::similar::Signals = p.store.dup_signals(&id).unwrap().unwrap();
            candidates += dupes::candidates(&p.store, &id, &s).unwrap().len();
        }
        let lookup_us = start.elapsed().as_secs_f64() * 1e6 / MEASURED as f64;
        have = n + MEASURED;
        let (cases, dup_bytes) = p.store.dup_index_bytes().unwrap();
        println!(
            "N={n:>6}: intake {ms:.2} ms/message (whole pipeline, groups of {GROUP}); duplicate lookup {lookup_us:.0} µs/message \
             ({:.2} candidates listed); duplicate index {} B/case",
            candidates as f64 / MEASURED as f64,
            dup_bytes / cases.max(1),
        );
        per_message.push((n, ms, lookup_us));
    }
    // What intake queued for the search index, taken in as the SLA clock does.
    let start = Instant::now();
    let indexed = search::drain(&p.store, usize::MAX).unwrap();
    println!(
        "search indexing off the message path: {indexed} cases in {:.1} s ({:.2} ms a case)",
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1000.0 / indexed.max(1) as f64
    );
    let search_bytes = p.store.search_index_bytes().unwrap();
    println!("search index {} B/case", search_bytes / have as u64);
    // Search latency at the largest size.
    let queries = [
        word(1),
        word(3),
        format!("{} {}", word(2), word(40)),
        word(15_000),
        format!("{} {} {}", word(9000), word(12_000), word(5)),
        "SEC-2026-0042".to_owned(),
        "r42@reporter42.test".to_owned(),
        "vulnerability steps reproduce".to_owned(),
    ];
    let mut times = Vec::new();
    for q in &queries {
        let start = Instant::now();
        let hits = search::search(&p.store, q, |_| true, 20).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        times.push(ms);
        println!("search {q:?}: {} hits in {ms:.1} ms", hits.len());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "search over {have} cases: median {:.1} ms, max {:.1} ms ({} queries, 20 hits with snippets)",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    if let (Some(first), Some(last)) = (per_message.first(), per_message.last())
        && per_message.len() > 1
    {
        println!(
            "per-message cost at N={} / N={}: intake {:.2}x, duplicate lookup {:.2}x",
            last.0,
            first.0,
            last.1 / first.1,
            last.2 / first.2
        );
    }
}
