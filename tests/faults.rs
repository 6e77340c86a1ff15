//! Hostile input and faults (issue 10): what reaches the terminal, what an MTA pipe is
//! told, whose files the store holds, and what a full disk does. One test per bug,
//! named after it. Tests that need root (tmpfs, chown) say so and are skipped without it.

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn run(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--config").arg(cfg).args(args).stdin(Stdio::null()).output().unwrap()
}

fn run_stdin(cfg: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = support::spawn_piped(cfg, args);
    // The child may stop reading early (a refusal); a broken pipe is its answer.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Issue 10: `case list` and `case show` printed titles and texts raw, so a report
/// could clear the team's screen (ESC[2J), ring (BEL), retitle the terminal (OSC) or
/// flip text with bidi overrides.
#[test]
fn terminal_escapes_in_a_report_are_not_printed_raw() {
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let body = "Title: \x1b[2J\x07Pwned \u{202e}fdp.exe\nCWE-79\n\x1b]0;owned\x07 and a\rcarriage return\n";
    let msg = d.path().join("esc.eml");
    std::fs::write(&msg, plain_report("eve@reporter.test", "Report", body, "esc-1@reporter.test")).unwrap();
    let out = run(&cfg, &["ingest", msg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).split_whitespace().nth(1).unwrap().to_owned();
    let raw = |b: &[u8]| {
        let t = text(b);
        t.contains('\x1b') || t.contains('\x07') || t.contains('\r') || t.contains('\u{202e}')
    };
    for args in
        [vec!["case", "list"], vec!["case", "show", &id], vec!["case", "similar", &id], vec!["case", "log", &id]]
    {
        let out = run(&cfg, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!raw(&out.stdout), "{args:?} printed control characters raw: {:?}", text(&out.stdout));
    }
    let show = text(&run(&cfg, &["case", "show", &id]).stdout);
    assert!(show.contains("\\x1b[2J\\x07Pwned \\u{202e}fdp.exe"), "{show}");
    assert!(show.contains("\\x1b]0;owned\\x07 and a\\x0dcarriage return"), "{show}");
    // JSON keeps the exact title, JSON-escaped (C0 controls; bidi marks are text to JSON).
    let json = run(&cfg, &["case", "show", &id, "--json"]);
    assert!(!text(&json.stdout).contains(['\x1b', '\x07', '\r']), "{}", text(&json.stdout));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["title"], "\x1b[2J\x07Pwned \u{202e}fdp.exe");
}

fn limited_config(dir: &Path) -> std::path::PathBuf {
    write_config(dir, "\n[limits]\nmax_message_bytes = \"64KiB\"\n")
}

fn big_report(n: usize) -> Vec<u8> {
    let mut m = plain_report("bob@reporter.test", "Huge PoC", "See below.\n", "big-1@reporter.test");
    while m.len() < n {
        m.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n");
    }
    m
}

/// Issue 10: `ingest` of a message over `limits.max_message_bytes` exited 0 and kept no
/// copy (quarantined as too-large, hash only): piped mail was lost. It is now refused
/// with EX_DATAERR and a status code Postfix puts in the bounce.
#[test]
fn ingest_of_oversized_mail_is_refused_for_a_bounce_not_dropped() {
    let d = tempdir("faults");
    let cfg = limited_config(d.path());
    let big = big_report(200 << 10);
    let out = run_stdin(&cfg, &["ingest", "-"], &big);
    assert_eq!(out.status.code(), Some(65), "stdout {} stderr {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).starts_with("5.2.3 "), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("limits.max_message_bytes"), "{}", text(&out.stderr));
    let f = d.path().join("big.eml");
    std::fs::write(&f, &big).unwrap();
    let out = run(&cfg, &["ingest", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    // Nothing recorded as if it had been kept.
    assert_eq!(text(&run(&cfg, &["mail", "list", "--json"]).stdout).trim(), "[]");
    // Just under the limit: kept.
    let out = run_stdin(&cfg, &["ingest", "-"], &big_report(60 << 10));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A daemon on this config (IMAP unreachable: it still serves its socket), stopped on drop.
struct Daemon(std::process::Child);

impl Daemon {
    fn start(cfg: &Path, state: &Path) -> Daemon {
        let child = Command::new(bin())
            .arg("--config")
            .arg(cfg)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            eventually(Duration::from_secs(20), || state.join("control.sock").exists()),
            "daemon did not serve its socket"
        );
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Mounts a small tmpfs at `dir` (root only); unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_owned())
    }

    /// Fills the filesystem: every later write fails with ENOSPC.
    fn fill(&self) -> std::path::PathBuf {
        let f = self.0.join("filler");
        let mut file = std::fs::File::create(&f).unwrap();
        let block = vec![0u8; 64 << 10];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0]);
        f
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 10: through a running daemon, a message its store could not keep made
/// `ingest` exit 1 (the MTA bounces it) instead of 75 (the MTA retries).
#[test]
fn ingest_through_the_daemon_exits_75_when_its_store_fails() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let state = d.path().join("state");
    let fs = Tmpfs::mount(&state, "4m");
    let daemon = Daemon::start(&cfg, &state);
    let msg = plain_report("bob@reporter.test", "One", "First.\n", "tf-1@reporter.test");
    let out = run_stdin(&cfg, &["ingest", "-"], &msg);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    fs.fill();
    let msg = plain_report("bob@reporter.test", "Two", &"Second report. ".repeat(20_000), "tf-2@reporter.test");
    let out = run_stdin(&cfg, &["ingest", "-"], &msg);
    assert_eq!(out.status.code(), Some(75), "stdout {} stderr {}", text(&out.stdout), text(&out.stderr));
    // The daemon does not go on as if nothing happened: it exits (store I/O error), or
    // at the latest 10 s after SIGTERM even when sled blocks.
    let mut daemon = daemon;
    let _ = Command::new("kill").arg(daemon.0.id().to_string()).status();
    assert!(
        eventually(Duration::from_secs(12), || daemon.0.try_wait().unwrap().is_some()),
        "daemon still running 12 s after SIGTERM"
    );
}

/// Issue 10: a CLI command run as root against a store owned by the service user,
/// with the service stopped, created root-owned store files the service then could not
/// open. It now refuses, naming the fix, and creates nothing.
#[test]
fn cli_as_another_user_than_the_store_owner_refuses_and_creates_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to chown the store to nobody");
        return;
    }
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let state = d.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    for args in [vec!["case", "list"], vec!["mail", "list", "--json"], vec!["run", "--once"]] {
        let out = run(&cfg, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("sudo -u nobody") && err.contains("store.path"), "{args:?}: {err}");
    }
    let msg = d.path().join("m.eml");
    std::fs::write(&msg, plain_report("bob@reporter.test", "Hi", "Report.\n", "own-1@reporter.test")).unwrap();
    let out = run(&cfg, &["ingest", msg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(75), "an MTA retries once the owner is fixed: {}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "files created in the foreign store: {left:?}");
}

mod keys_made_now {
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::serialize::SerializeInto;
    use std::time::{Duration, SystemTime};

    pub const DAY: Duration = Duration::from_secs(86400);

    /// A key created `age` ago, valid for `validity`: (fingerprint, armored TSK, armored cert).
    pub fn key(uid: &str, age: Duration, validity: Duration) -> (String, Vec<u8>, Vec<u8>) {
        let (c, _) = CertBuilder::general_purpose(Some(uid))
            .set_creation_time(SystemTime::now() - age)
            .set_validity_period(validity)
            .generate()
            .unwrap();
        (c.fingerprint().to_hex(), c.as_tsk().armored().to_vec().unwrap(), c.armored().to_vec().unwrap())
    }
}

/// Issue 10: one expired team cert among several made `check` exit 2, and the unit
/// runs `check` as ExecStartPre: the next restart left intake down.
#[test]
fn check_warns_instead_of_failing_on_an_expired_team_cert_among_several() {
    use keys_made_now::*;
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let (fpr, _, cert) = key("Old Member <old@team.test>", 10 * DAY, 5 * DAY);
    std::fs::write(d.path().join("team/expired.asc"), cert).unwrap();
    let out = run(&cfg, &["check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning") && err.contains(&fpr) && err.contains("expired.asc"), "{err}");
}

/// Issue 10: `check` warned of a soon-expiring intake key with a command that does not
/// extend it (`keys rotate`); it now names the key and `keys renew`.
#[test]
fn check_warns_30_days_before_the_intake_key_expires() {
    use keys_made_now::*;
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let (fpr, tsk, _) = key("Security <security@intake.test>", 30 * DAY, 40 * DAY);
    std::fs::write(d.path().join("keys/intake.key.asc"), tsk).unwrap();
    let out = run(&cfg, &["check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&fpr) && err.contains("expires in 9 days") && err.contains("secintake keys renew"), "{err}");
}

/// Issue 10: an intake key past its expiry (keys from `keys generate` expire after 3
/// years) could only be replaced. `keys renew` extends it beside the old file, never
/// over it, and says how to republish.
#[test]
fn keys_renew_extends_an_expired_intake_key_without_overwriting_it() {
    use keys_made_now::*;
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir("faults");
    let cfg = write_config(d.path(), "");
    let (fpr, tsk, _) = key("Security <security@intake.test>", 400 * DAY, 365 * DAY);
    let old = d.path().join("keys/intake.key.asc");
    std::fs::write(&old, &tsk).unwrap();
    let out = run(&cfg, &["keys", "renew", "--for", "1y"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(text(&out.stdout).trim(), fpr);
    assert!(err.contains("security-txt") && err.contains("wkd"), "guidance to republish: {err}");
    assert_eq!(std::fs::read(&old).unwrap(), tsk, "the old key file is untouched");
    let renewed = d.path().join("keys/intake.key.renewed.asc");
    assert_eq!(std::fs::metadata(&renewed).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(d.path().join("keys/intake.key.renewed.pub.asc").exists());
    let again = run(&cfg, &["keys", "renew"]);
    assert_eq!(again.status.code(), Some(1), "never overwrites: {}", text(&again.stderr));
    std::fs::copy(&renewed, &old).unwrap();
    let check = run(&cfg, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(!text(&check.stderr).contains("expires in"), "{}", text(&check.stderr));
}
