//! Field extraction benchmark (issue 10: CWE dedupe was quadratic).
//!
//! Runs every extractor of `secintake::report` (title, CWE, TLP, versions, credit,
//! CVSS) on hostile texts of 10k, 40k and 160k mentions and prints the time of each.
//! Linear extraction shows ~4x the time for 4x the mentions.
//!
//!     cargo run --release --example extract_bench

use std::time::Instant;

use secintake::report;

/// The fastest of a few runs: these shared machines drift between seconds, and the
/// minimum is the run least disturbed by other work.
fn time(text: &str) -> f64 {
    let mut runs: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            let lists = report::lists(text);
            let all =
                (report::title(None, text, "Report"), report::tlp(text), report::credit(text), report::cvss(text));
            std::hint::black_box((lists, all));
            t.elapsed().as_secs_f64()
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[0]
}

#[allow(clippy::type_complexity)]
fn main() {
    let shapes: [(&str, fn(usize) -> String); 4] = [
        ("distinct CWE ids", |n| (1..=n).map(|i| format!("CWE-{i} ")).collect()),
        ("64 CWE ids repeated", |n| (0..n).map(|i| format!("cwe-{} ", i % 64 + 1)).collect()),
        ("bogus CVSS: vectors", |n| "CVSS:3.1/AV:X ".repeat(n)),
        ("control bytes + CWE", |n| (0..n).map(|i| format!("\x1b[2J\x07CWE-{i}\r")).collect()),
    ];
    println!("{:<22} {:>9} {:>10} {:>11} {:>8}", "input", "mentions", "bytes", "time (ms)", "ns/byte");
    for (name, make) in shapes {
        let mut prev: Option<f64> = None;
        for n in [10_000, 40_000, 160_000] {
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
