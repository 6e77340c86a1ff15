//! An admin's first day, through the built binary: the config the README recommends for
//! systemd works from a root shell too, `check` reports everything in one run and warns
//! before the intake key expires, logs carry no colour codes off a terminal, and every
//! flag explains itself.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::*;

fn secintake(cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin()).arg("--config").arg(cfg).args(args).env_remove("CREDENTIALS_DIRECTORY").output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The README's systemd layout in `dir`: secintake.toml naming its secrets as
/// `$CREDENTIALS_DIRECTORY/NAME`, the secrets in `dir/credentials/` (what the unit's
/// LoadCredential= lines load), the team's certs in `dir/team/`.
fn systemd_layout(dir: &Path) -> std::path::PathBuf {
    // write_config makes the key, the team cert and a password file; move the secrets.
    let plain = write_config(dir, "");
    let creds = dir.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::rename(dir.join("pw"), creds.join("imap-password")).unwrap();
    std::fs::rename(dir.join("keys/intake.key.asc"), creds.join("intake.key.asc")).unwrap();
    let text = std::fs::read_to_string(&plain)
        .unwrap()
        .replace("password_file = \"pw\"", "password_file = \"$CREDENTIALS_DIRECTORY/imap-password\"")
        .replace(
            "intake_secret = \"keys/intake.key.asc\"",
            "intake_secret = \"$CREDENTIALS_DIRECTORY/intake.key.asc\"",
        );
    assert!(text.contains("$CREDENTIALS_DIRECTORY/intake.key.asc"));
    std::fs::write(&plain, text).unwrap();
    plain
}

#[test]
fn systemd_config_works_from_a_root_shell() {
    let d = tempdir("admin");
    let cfg = systemd_layout(d.path());
    // No $CREDENTIALS_DIRECTORY (a shell): read from the credentials' source directory.
    let out = secintake(&cfg, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("secrets read from {}", d.path().join("credentials").display())),
        "{}",
        text(&out)
    );
    for args in [&["keys", "show"][..], &["case", "list"], &["mail", "list", "--json"], &["security-txt"]] {
        let out = secintake(&cfg, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    }

    // Under the unit, systemd sets $CREDENTIALS_DIRECTORY: that directory wins.
    let run_creds = d.path().join("run-credentials");
    std::fs::create_dir(&run_creds).unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .env("CREDENTIALS_DIRECTORY", &run_creds)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&run_creds.join("imap-password").display().to_string()), "{}", text(&out));

    // Without the source directory either, the error says where secrets are looked for.
    std::fs::rename(d.path().join("credentials"), d.path().join("elsewhere")).unwrap();
    let out = secintake(&cfg, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("LoadCredential") && text(&out).contains("imap.password_file"), "{}", text(&out));
}

#[test]
fn check_reports_config_and_key_problems_in_one_run() {
    let d = tempdir("admin");
    let cfg = write_config(d.path(), "poll_interval = \"often\"\n");
    std::fs::write(d.path().join("keys/intake.key.asc"), "not a key").unwrap();
    std::fs::write(d.path().join("team/broken.asc"), "not a cert either").unwrap();
    let out = secintake(&cfg, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let all = text(&out);
    for key in ["imap.poll_interval:", "keys.intake_secret:", "keys.team_certs:"] {
        assert!(all.contains(key), "{key} missing from one run of check:\n{all}");
    }
    // --online does not try the servers with a broken config, and says so.
    let out = secintake(&cfg, &["check", "--online"]);
    assert!(text(&out).contains("--online: the servers were not tried"), "{}", text(&out));
}

#[test]
fn check_warns_30_days_before_the_intake_key_expires() {
    let d = tempdir("admin");
    let cfg = write_config(d.path(), "");
    let out = secintake(&cfg, &["check"]);
    assert!(!text(&out).contains("expires in"), "a 3-year key is no reason to warn:\n{}", text(&out));

    // An intake key from gpg that expires in 20 days.
    let g = Gpg::new("Security <security@intake.test>");
    g.run(&["--quick-set-expire", &g.fpr, "20d"]);
    g.run(&["--quick-set-expire", &g.fpr, "20d", "*"]);
    let tsk = g.run(&["--armor", "--export-secret-keys", &g.fpr]).stdout;
    std::fs::write(d.path().join("keys/intake.key.asc"), tsk).unwrap();
    let out = secintake(&cfg, &["check"]);
    assert_eq!(out.status.code(), Some(0), "a warning is not an error:\n{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: keys.intake_secret") && err.contains(&g.fpr) && err.contains("expires in 19 days"),
        "{err}"
    );
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal() {
    let d = tempdir("admin");
    let cfg = write_config(d.path(), "");
    let msg = d.path().join("m.eml");
    std::fs::write(
        &msg,
        "From: a@reporter.test\r\nTo: security@intake.test\r\nSubject: x\r\nMessage-ID: <c@r.test>\r\n\r\nHello\r\n",
    )
    .unwrap();
    // Debug level so that something is surely logged.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["ingest"])
        .arg(&msg)
        .env("SECINTAKE_LOG", "debug")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.trim().is_empty(), "nothing was logged, so the test proves nothing");
    assert!(!err.contains('\x1b'), "escape codes in piped logs:\n{err:?}");
}

#[test]
fn case_set_help_lists_the_statuses_and_refuses_others() {
    let d = tempdir("admin");
    let cfg = write_config(d.path(), "");
    let help = text(&secintake(&cfg, &["case", "set", "--help"]));
    assert!(
        help.contains("[possible values: new, acknowledged, triaged, accepted, fixing, disclosed, closed, rejected]"),
        "{help}"
    );
    assert!(help.contains("out-of-scope, duplicate, not-reproducible, spam, invalid"), "{help}");
    let out = secintake(&cfg, &["case", "set", "SEC-2026-0001", "--status", "done"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("possible values"), "{}", text(&out));
}
