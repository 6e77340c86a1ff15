//! How the store's memory grows with the reports it holds, apart from everything else
//! (issue 11's "peak RSS flat in N"): writes N synthetic reports' worth of records the
//! way intake does (groups of 128; per report two outgoing mails of 5 KB with their
//! index entries, a UID and a hash entry, a 3 KB text, a reporter cert, three log
//! lines) into a fresh store, and prints the process's peak RSS at 1,000 to 40,000.
//!
//! ```text
//! cargo run --release --example store_rss
//! ```

use chrono::Utc;
use secintake::store::{Batch, MailKind, OutMail, OutStatus, Store, StoredCert};
secintake::product_allocator!();
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmHWM")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), &secintake::store::StoreKey::generate().unwrap()).unwrap();
    let raw = vec![b'x'; 5000];
    let text = "t".repeat(3000);
    let cert = StoredCert {
        fingerprint: "A".repeat(40),
        source: secintake::case::KeySource::Autocrypt,
        armored: "k".repeat(1700),
    };
    let now = Utc::now();
    let mut i = 0u32;
    for target in [1000u32, 5000, 10000, 20000, 40000] {
        while i < target {
            s.write(|tx| {
                tx.group(|| {
                    for _ in 0..128 {
                        i += 1;
                        let mut b = Batch::default();
                        for k in ["ack", "sum"] {
                            let o = OutMail {
                                id: format!("sec-2026-{i:05}.{k}.0123456789abcdef@intake.test"),
                                kind: MailKind::Ack,
                                case_id: Some(format!("SEC-2026-{i:05}")),
                                envelope_from: "security@intake.test".into(),
                                to: vec![format!("r{i}@reporter.test")],
                                encrypted: true,
                                status: OutStatus::Queued,
                                attempts: 0,
                                created_at: now,
                                next_attempt: now,
                                sent_at: None,
                                last_error: None,
                            };
                            b.put_out(&o, Some(&raw));
                        }
                        b.put_uid("INBOX", 1, i, &format!("<m{i}@reporter.test>"));
                        b.put_hash(&format!("{:064x}", i), &format!("<m{i}@reporter.test>"));
                        b.put_text(&format!("SEC-2026-{i:05}"), 0, &text);
                        b.put_cert(&format!("r{i}@reporter.test"), &cert);
                        for n in 0..3 {
                            b.put_log(
                                &format!("SEC-2026-{i:05}"),
                                n,
                                &secintake::case::LogEntry {
                                    at: now,
                                    who: "secintake".into(),
                                    action: "opened".into(),
                                    detail: "x".repeat(120),
                                    ..Default::default()
                                },
                            );
                        }
                        tx.commit(b).unwrap();
                    }
                })
            })
            .unwrap();
        }
        println!("{target}: peak RSS {} KiB", rss());
    }
}
