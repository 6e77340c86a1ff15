//! A deterministic mutation run over the fixtures through the pure steps of the
//! pipeline's decision (`pipeline::examine`): bit flips, truncations, duplications
//! and splices. It runs in every test pass, so a panic on hostile input is caught
//! without cargo-fuzz;
//! `fuzz/` holds the coverage-guided target for longer runs.

mod support;

use std::path::PathBuf;
use std::time::SystemTime;

use secintake::openpgp::IntakeKeys;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn mutated_fixtures_never_panic() {
    let keys = IntakeKeys::from_bytes(&std::fs::read(repo().join("keys/test-intake.key.asc")).unwrap(), None).unwrap();
    let seeds: Vec<Vec<u8>> = support::fixture_files().iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(seeds.len() > 20);
    let mut rng: u64 = 0x2545F4914F6CDD1D;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let now = SystemTime::now();
    let mut runs = 0;
    for round in 0..40 {
        for (i, seed) in seeds.iter().enumerate() {
            let mut m = seed.clone();
            match (round + i) % 5 {
                0 => {
                    for _ in 0..8 {
                        let p = (next() as usize) % m.len().max(1);
                        if !m.is_empty() {
                            m[p] ^= 1 << (next() % 8);
                        }
                    }
                }
                1 => m.truncate((next() as usize) % (m.len() + 1)),
                2 => {
                    let a = (next() as usize) % (m.len() + 1);
                    let b = (next() as usize) % (m.len() + 1);
                    let (a, b) = (a.min(b), a.max(b));
                    let chunk = m[a..b].to_vec();
                    m.splice(a..a, chunk);
                }
                3 => {
                    let other = &seeds[(next() as usize) % seeds.len()];
                    let cut = (next() as usize) % (m.len() + 1);
                    let from = (next() as usize) % (other.len() + 1);
                    m.truncate(cut);
                    m.extend_from_slice(&other[from..]);
                }
                _ => {
                    let p = (next() as usize) % (m.len() + 1);
                    m.splice(
                        p..p,
                        b"\r\n--\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\n".iter().copied(),
                    );
                }
            }
            let _ = secintake::pipeline::examine(&m, &keys, 4 << 20, 32, now);
            runs += 1;
        }
    }
    eprintln!("{runs} mutated inputs examined");
}
