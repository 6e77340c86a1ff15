//! The README's MTA-pipe recipe on the real stack: the private Postfix delivers
//! security@intake.test through pipe(8) to `secintake ingest -`, as an unprivileged user.
//! While the store cannot be opened, ingest exits 75 (EX_TEMPFAIL) and Postfix defers
//! the report instead of bouncing it; once the store is back, Postfix's retry delivers
//! it and one case opens. The same message again is a duplicate, not a second case.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::*;

/// pipe(8) refuses to run commands as root; the deployment belongs to this user.
const PIPE_USER: &str = "nobody";

fn uid_gid(user: &str) -> (u32, u32) {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = Command::new("id").args(["-g", user]).output().unwrap();
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

/// The binary as an admin installs it (`/usr/bin`): a copy in the test's own directory, mode
/// 0755, that the pipe's user can reach. The build's `target/debug/secintake` lies inside the
/// clone, and a clone under root's home or a `mktemp -d` directory (mode 0700) is closed to
/// `nobody`: pipe(8) then fails with "Permission denied" (issue 27).
fn install_binary(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let installed = bin_dir.join("secintake");
    std::fs::copy(bin(), &installed).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755)).unwrap();
    installed
}

/// `secintake ARGS` as the pipe's user, the way an admin would look at the deployment.
fn secintake_as_pipe_user(installed: &Path, cfg: &Path, args: &[&str]) -> Output {
    let (uid, gid) = uid_gid(PIPE_USER);
    Command::new(installed).arg("--config").arg(cfg).args(args).uid(uid).gid(gid).output().unwrap()
}

fn postfix_log(stack: &MailStack) -> String {
    std::fs::read_to_string(stack.dir.path().join("postfix.log")).unwrap_or_default()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn postfix_pipe_to_ingest_defers_on_exit_75_then_delivers_once() {
    let stack = MailStack::start();
    let d = tempdir("pipe");
    let cfg = write_config(d.path(), "");
    let state = d.path().join("state");
    // The store is unavailable to the pipe's user (root's, mode 0700): ingest must defer.
    std::fs::create_dir(&state).unwrap();
    run_ok(Command::new("chown").args(["-R", &format!("{PIPE_USER}:")]).arg(d.path()));
    run_ok(Command::new("chown").arg("root:").arg(&state));
    run_ok(Command::new("chmod").arg("700").arg(&state));
    // Installed after the chown: root owns the binary, as under /usr/bin.
    let installed = install_binary(d.path());

    // The recipe (README, "Delivering through the MTA"): a pipe service in master.cf and
    // the intake address routed to it.
    let pf = stack.dir.path().join("postfix");
    let transport = pf.join("transport");
    std::fs::write(&transport, "security@intake.test secintake:\n").unwrap();
    let service = format!(
        "secintake unix - n n - 1 pipe flags=R user={PIPE_USER} argv={} --config {} ingest -",
        installed.display(),
        cfg.display()
    );
    run_ok(
        Command::new("postconf")
            .arg("-c")
            .arg(&pf)
            .arg("-e")
            .arg(format!("transport_maps = texthash:{}", transport.display())),
    );
    run_ok(Command::new("postconf").arg("-c").arg(&pf).arg("-M").arg(format!("secintake/unix={service}")));
    // Postfix waits for a just-written main.cf to "cool down"; backdate it.
    run_ok(
        Command::new("touch")
            .args(["-d", "1 minute ago"])
            .arg(pf.join("main.cf"))
            .arg(pf.join("master.cf"))
            .arg(&transport),
    );
    run_ok(Command::new("postfix").arg("-c").arg(&pf).arg("reload"));

    let report = b"From: Alice Reporter <alice@reporter.test>\r\nTo: security@intake.test\r\n\
        Subject: SQL injection in search\r\nMessage-ID: <pipe-1@reporter.test>\r\n\
        Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nThe q parameter is concatenated into SQL.\r\n";
    stack.send("alice@reporter.test", "security@intake.test", report);

    // Deferred (exit 75), not bounced, and nothing stored.
    assert!(
        eventually(Duration::from_secs(30), || {
            let log = postfix_log(&stack);
            log.lines().any(|l| l.contains("relay=secintake") && l.contains("status=deferred"))
        }),
        "no deferral by the pipe in the Postfix log:\n{}",
        postfix_log(&stack)
    );
    let log = postfix_log(&stack);
    assert!(!log.lines().any(|l| l.contains("relay=secintake") && l.contains("status=bounced")), "{log}");
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "nothing may be stored while deferring");
    assert_eq!(stack.count("alice@reporter.test", "INBOX"), 0, "no bounce to the reporter");

    // The store comes back: Postfix's next retry (seconds here) delivers the report.
    run_ok(Command::new("chown").arg(format!("{PIPE_USER}:")).arg(&state));
    assert!(
        eventually(Duration::from_secs(60), || {
            postfix_log(&stack).lines().any(|l| l.contains("relay=secintake") && l.contains("status=sent"))
        }),
        "the deferred report was not delivered on retry:\n{}",
        postfix_log(&stack)
    );
    let out = secintake_as_pipe_user(&installed, &cfg, &["case", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 1, "{cases}");
    assert_eq!(cases[0]["reporter"]["address"], "alice@reporter.test");

    // The same message delivered again: a duplicate, still one case.
    stack.send("alice@reporter.test", "security@intake.test", report);
    assert!(
        eventually(Duration::from_secs(30), || postfix_log(&stack)
            .lines()
            .filter(|l| l.contains("relay=secintake") && l.contains("status=sent"))
            .count()
            >= 2),
        "{}",
        postfix_log(&stack)
    );
    let out = secintake_as_pipe_user(&installed, &cfg, &["mail", "list", "--json"]);
    let mail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dispositions: Vec<&str> = mail.as_array().unwrap().iter().map(|m| m["disposition"].as_str().unwrap()).collect();
    assert_eq!(dispositions.len(), 1, "one record for one Message-ID: {mail}");
    let out = secintake_as_pipe_user(&installed, &cfg, &["case", "list", "--json"]);
    let cases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cases.as_array().unwrap().len(), 1, "{cases}");
}
