//! Field extraction benchmark (issue 10: CWE dedupe was quadratic).
//!
//! Runs every extractor of `secintake::report` (title, CWE, TLP, versions, credit,
//! CVSS) on hostile texts of 10k, 40k and 160k mentions and prints the time of each.
//! Linear extraction shows ~4x the time for 4x the mentions. Then the triage desk's
//! `triage::assess` on hostile shapes of the same sizes (it reads at most
//! `triage::text::MAX_TEXT` bytes, so its time stops growing at the cap), and on the
//! labelled corpus `fixtures/triage/` (time per report).
//!
//!     cargo run --release --example extract_bench

use std::time::Instant;

use secintake::report;

/// The fastest of `n` runs of `f`: these shared machines drift between seconds, and the
/// minimum is the run least disturbed by other work.
fn fastest(n: usize, f: impl Fn()) -> f64 {
    let mut runs: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[0]
}

fn time(text: &str) -> f64 {
    fastest(9, || {
        let lists = report::lists(text);
        let all = (report::title(None, text, "Report"), report::tlp(text), report::credit(text), report::cvss(text));
        std::hint::black_box((lists, all));
    })
}

fn time_triage(text: &str) -> f64 {
    fastest(5, || {
        std::hint::black_box(secintake::triage::assess(text, &[]));
    })
}

type Shape = (&'static str, fn(usize) -> String);

/// One table: each shape at each size, its time, and the growth from the size before.
fn table(title: &str, shapes: &[Shape], sizes: &[usize], time: fn(&str) -> f64) {
    println!("{title:<22} {:>9} {:>10} {:>11} {:>8}", "mentions", "bytes", "time (ms)", "ns/byte");
    for (name, make) in shapes {
        let mut prev: Option<f64> = None;
        for &n in sizes {
            let text = make(n);
            let t = time(&text);
            let growth = prev.map(|p| format!("  x{:.1}", t / p)).unwrap_or_default();
            println!(
                "{name:<22} {n:>9} {:>10} {:>11.2} {:>8.2}{growth}",
                text.len(),
                t * 1e3,
                t * 1e9 / text.len() as f64
            );
            prev = Some(t);
        }
    }
}

fn main() {
    let report_shapes: [Shape; 4] = [
        ("distinct CWE ids", |n| (1..=n).map(|i| format!("CWE-{i} ")).collect()),
        ("64 CWE ids repeated", |n| (0..n).map(|i| format!("cwe-{} ", i % 64 + 1)).collect()),
        ("bogus CVSS: vectors", |n| "CVSS:3.1/AV:X ".repeat(n)),
        ("control bytes + CWE", |n| (0..n).map(|i| format!("\x1b[2J\x07CWE-{i}\r")).collect()),
    ];
    table("input", &report_shapes, &[10_000, 40_000, 160_000], time);
    let triage_shapes: [Shape; 5] = [
        ("numbered steps", |n| (1..=n).map(|i| format!("{i}. Open the page {i}\n")).collect()),
        ("labels", |n| (0..n).map(|i| format!("Steps to reproduce {i}:\n")).collect()),
        ("sentences", |n| "An attacker can exploit it in the wild. I used no AI. ".repeat(n)),
        ("one long line", |n| "x".repeat(n * 8)),
        ("nuclei lines", |n| "[cve-2021-1] [http] [high] https://x.test/v1.2.3\n".repeat(n)),
    ];
    println!();
    table("triage::assess", &triage_shapes, &[1_000, 4_000, 16_000, 64_000], time_triage);
    corpus();
}

/// triage::assess on the labelled corpus: time per report.
fn corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/triage");
    let texts: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "txt"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if !texts.is_empty() {
        let bytes: usize = texts.iter().map(String::len).sum();
        let t: f64 = texts.iter().map(|t| time_triage(t)).sum();
        println!(
            "corpus fixtures/triage: {} reports, {bytes} bytes, {:.1} µs per report, {:.0} ns/byte",
            texts.len(),
            t * 1e6 / texts.len() as f64,
            t * 1e9 / bytes as f64
        );
    }
}
