//! Test support: a private mail stack (Dovecot + Postfix on loopback, via
//! tests/mailstack/mailstack.sh), real GnuPG homes playing reporters and the team, and
//! a secintake config wired to both. Nothing here reaches beyond 127.0.0.1.
#![allow(dead_code)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_secintake"))
}

/// A world-traversable temporary directory (Dovecot needs every parent traversable).
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix(&format!("si-{tag}-")).tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running private Dovecot + Postfix. Stopped on drop.
pub struct MailStack {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl MailStack {
    pub fn start() -> MailStack {
        let dir = tempdir("stack");
        let out = run_ok(Command::new(repo().join("tests/mailstack/mailstack.sh")).arg("start").arg(dir.path()));
        let mut env = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                env.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        assert!(env.contains_key("IMAP_PORT"), "mailstack env: {env:?}");
        MailStack { dir, env }
    }

    fn script(&self) -> Command {
        let mut c = Command::new(repo().join("tests/mailstack/mailstack.sh"));
        c.stdin(Stdio::null());
        c
    }

    pub fn port(&self, key: &str) -> u16 {
        self.env[key].parse().unwrap()
    }

    /// Submits `message` through Postfix. A submission that fails is tried again a
    /// few times (a loaded machine can make Postfix's smtpd slow to start); the test's
    /// input must arrive, and what secintake does with it is what is under test.
    pub fn send(&self, from: &str, to: &str, message: &[u8]) {
        let f = self.dir.path().join(format!("send-{}.eml", rand_tag()));
        std::fs::write(&f, message).unwrap();
        for attempt in 1..=3 {
            let out = self.script().arg("send").arg(self.dir.path()).arg(from).arg(to).arg(&f).output().unwrap();
            if out.status.success() {
                return;
            }
            eprintln!("mailstack send attempt {attempt} failed: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_secs(1));
        }
        run_ok(self.script().arg("send").arg(self.dir.path()).arg(from).arg(to).arg(&f));
    }

    pub fn deliver(&self, user: &str, message: &[u8]) {
        let f = self.dir.path().join(format!("deliver-{}.eml", rand_tag()));
        std::fs::write(&f, message).unwrap();
        run_ok(self.script().arg("deliver").arg(self.dir.path()).arg(user).arg(&f));
    }

    pub fn count(&self, user: &str, mailbox: &str) -> usize {
        let out = run_ok(self.script().arg("count").arg(self.dir.path()).arg(user).arg(mailbox));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }

    pub fn wait(&self, user: &str, mailbox: &str, n: usize, timeout_s: u64) {
        run_ok(
            self.script()
                .arg("wait")
                .arg(self.dir.path())
                .arg(user)
                .arg(mailbox)
                .arg(n.to_string())
                .arg(timeout_s.to_string()),
        );
    }

    /// Every message in the mailbox, raw.
    pub fn fetch(&self, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
        let out = self.dir.path().join(format!("fetch-{}", rand_tag()));
        std::fs::create_dir_all(&out).unwrap();
        run_ok(self.script().arg("fetch").arg(self.dir.path()).arg(user).arg(mailbox).arg(&out));
        let mut files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0));
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Sets a mailbox's UIDVALIDITY (as a server migration or re-creation would).
    pub fn set_uidvalidity(&self, user: &str, mailbox: &str, value: u32) {
        run_ok(Command::new("doveadm").arg("-c").arg(&self.env["DOVECOT_CONF"]).args([
            "mailbox",
            "update",
            "-u",
            user,
            "--uid-validity",
            &value.to_string(),
            mailbox,
        ]));
    }

    /// Kills the IMAP server outright (SIGKILL to Dovecot's whole process group, its
    /// imap processes included): connections drop mid-command, as in a crash.
    pub fn stop_dovecot(&self) {
        let pidfile = self.dir.path().join("run/master.pid");
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        let pgid = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().split(' ').nth(4).unwrap().to_owned();
        run_ok(Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]));
        let _ = std::fs::remove_file(pidfile);
    }

    pub fn start_dovecot(&self) {
        // Dovecot daemonizes: its children must not hold our pipes open.
        let st = Command::new("dovecot")
            .arg("-c")
            .arg(&self.env["DOVECOT_CONF"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "dovecot did not start again");
    }

    pub fn stop_postfix(&self) {
        run_ok(Command::new("postfix").arg("-c").arg(&self.env["POSTFIX_DIR"]).arg("stop"));
    }

    pub fn start_postfix(&self) {
        run_ok(Command::new("postfix").arg("-c").arg(&self.env["POSTFIX_DIR"]).arg("start"));
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = self.script().arg("stop").arg(self.dir.path()).output();
    }
}

pub fn rand_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A GnuPG home playing one party (a reporter or a team member).
pub struct Gpg {
    pub home: tempfile::TempDir,
    pub fpr: String,
    pub uid: String,
}

impl Gpg {
    /// A new party with an Ed25519/Cv25519 key for `uid` ("Name <addr>").
    pub fn new(uid: &str) -> Gpg {
        let home = tempfile::Builder::new().prefix("si-gpg-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut g = Gpg { home, fpr: String::new(), uid: uid.to_owned() };
        g.run(&["--quick-gen-key", uid, "future-default", "default", "never"]);
        let out = g.run(&["--with-colons", "--list-secret-keys", uid]);
        g.fpr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned();
        g
    }

    /// A party whose key was made at `time` (gpg's `--faked-system-time`, e.g.
    /// `20251201T120000`) and expires `expiry` after it (`1d`).
    pub fn new_at(uid: &str, time: &str, expiry: &str) -> Gpg {
        let home = tempfile::Builder::new().prefix("si-gpg-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut g = Gpg { home, fpr: String::new(), uid: uid.to_owned() };
        g.run(&["--faked-system-time", time, "--quick-gen-key", uid, "future-default", "default", expiry]);
        let out = g.run(&["--faked-system-time", time, "--with-colons", "--list-secret-keys", uid]);
        g.fpr = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_owned();
        g
    }

    /// [`Self::encrypt_sign`] at `time` (gpg's `--faked-system-time`).
    pub fn encrypt_sign_at(&self, data: &[u8], recipient: &str, time: &str) -> Vec<u8> {
        let f = self.home.path().join(format!("in-{}", rand_tag()));
        std::fs::write(&f, data).unwrap();
        run_ok(
            self.cmd()
                .args(["--faked-system-time", time, "--trust-model", "always", "--armor", "--encrypt", "--sign"])
                .args(["--recipient", recipient, "--local-user", &self.fpr, "--output", "-"])
                .arg(&f),
        )
        .stdout
    }

    /// Revokes the key with the revocation certificate gpg made with it.
    pub fn revoke(&self) {
        let rev = self.home.path().join(format!("openpgp-revocs.d/{}.rev", self.fpr));
        let text = std::fs::read_to_string(&rev)
            .unwrap()
            .replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----");
        let f = self.home.path().join("revoke.asc");
        std::fs::write(&f, text).unwrap();
        self.import(&f);
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""])
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_ok(self.cmd().args(args))
    }

    pub fn import(&self, armored_file: &Path) {
        run_ok(self.cmd().arg("--import").arg(armored_file));
    }

    pub fn export(&self) -> Vec<u8> {
        self.run(&["--armor", "--export", &self.fpr]).stdout
    }

    pub fn export_binary(&self) -> Vec<u8> {
        self.run(&["--export", "--export-options", "export-minimal", &self.fpr]).stdout
    }

    /// `gpg --encrypt --sign --armor` of `data` to `recipient` (a fingerprint).
    pub fn encrypt_sign(&self, data: &[u8], recipient: &str) -> Vec<u8> {
        let f = self.home.path().join(format!("in-{}", rand_tag()));
        std::fs::write(&f, data).unwrap();
        let out = run_ok(
            self.cmd()
                .args([
                    "--trust-model",
                    "always",
                    "--armor",
                    "--encrypt",
                    "--sign",
                    "--recipient",
                    recipient,
                    "--local-user",
                    &self.fpr,
                    "--output",
                    "-",
                ])
                .arg(&f),
        );
        out.stdout
    }

    /// `gpg --detach-sign --armor` (SHA-256) of `data`.
    pub fn detach_sign(&self, data: &[u8]) -> Vec<u8> {
        let f = self.home.path().join(format!("ds-{}", rand_tag()));
        std::fs::write(&f, data).unwrap();
        run_ok(
            self.cmd()
                .args([
                    "--armor",
                    "--detach-sign",
                    "--digest-algo",
                    "SHA256",
                    "--local-user",
                    &self.fpr,
                    "--output",
                    "-",
                ])
                .arg(&f),
        )
        .stdout
    }

    /// `gpg --encrypt --armor` (no signature) of `data` to `recipient`.
    pub fn encrypt_only(&self, data: &[u8], recipient: &str) -> Vec<u8> {
        let f = self.home.path().join(format!("eo-{}", rand_tag()));
        std::fs::write(&f, data).unwrap();
        run_ok(
            self.cmd()
                .args(["--trust-model", "always", "--armor", "--encrypt", "--recipient", recipient, "--output", "-"])
                .arg(&f),
        )
        .stdout
    }

    /// `gpg --decrypt`: (plaintext, status lines).
    pub fn decrypt(&self, data: &[u8]) -> (Vec<u8>, String) {
        let f = self.home.path().join(format!("ct-{}", rand_tag()));
        std::fs::write(&f, data).unwrap();
        let out = run_ok(self.cmd().args(["--status-fd", "2", "--decrypt", "--output", "-"]).arg(&f));
        (out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `gpg --verify SIG DATA`: the status lines, or a panic when gpg says no.
    pub fn verify(&self, data: &[u8], sig: &[u8]) -> String {
        let d = self.home.path().join(format!("data-{}", rand_tag()));
        let s = self.home.path().join(format!("sig-{}", rand_tag()));
        std::fs::write(&d, data).unwrap();
        std::fs::write(&s, sig).unwrap();
        let out = run_ok(self.cmd().args(["--status-fd", "2", "--verify"]).arg(&s).arg(&d));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf").env("GNUPGHOME", self.home.path()).args(["--kill", "all"]).output();
    }
}

/// A child process (a daemon) killed when the test ends, also when it fails: a leaked
/// daemon would keep its store, ports and inherited file descriptors.
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A secintake deployment: config, intake key, team cert, state, wired to a stack.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub intake_fpr: String,
    pub intake_pub: PathBuf,
}

impl Deployment {
    /// `team` certs go to keys.team_certs; `extra` is appended to the config.
    pub fn new(stack: &MailStack, team: &[&Gpg], extra: &str) -> Deployment {
        let dir = tempdir("deploy");
        let d = dir.path();
        let out = run_ok(
            Command::new(bin())
                .args(["keys", "generate", "--uid", "Security <security@intake.test>", "--out"])
                .arg(d.join("keys")),
        );
        let intake_fpr = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        std::fs::create_dir_all(d.join("team")).unwrap();
        for (i, g) in team.iter().enumerate() {
            std::fs::write(d.join(format!("team/member{i}.asc")), g.export()).unwrap();
        }
        let pw = d.join("imap-password");
        std::fs::write(&pw, "secret").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ca = &stack.env["CA_FILE"];
        let config = d.join("secintake.toml");
        let text = format!(
            r#"[intake]
address = "security@intake.test"
case_prefix = "SEC"

[imap]
host = "127.0.0.1"
port = {imap}
tls = "starttls"
ca_file = "{ca}"
username = "security@intake.test"
password_file = "imap-password"
mailbox = "INBOX"
processed_folder = "Processed"
quarantine_folder = "Quarantine"
idle = true
poll_interval = "30s"

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "starttls"
ca_file = "{ca}"

[keys]
intake_secret = "keys/intake.key.asc"
team_certs = "team"

[team]
list_address = "team@team.test"

[policy]
project = "Demo Project"

[store]
path = "state"
{extra}
"#,
            imap = stack.port("IMAP_PORT"),
            smtp = stack.port("SMTP_PORT"),
        );
        std::fs::write(&config, text).unwrap();
        Deployment { intake_pub: d.join("keys/intake.pub.asc"), dir, config, intake_fpr }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--config").arg(&self.config).stdin(Stdio::null());
        c
    }

    /// Runs secintake with `args`; returns the output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn run_ok(&self, args: &[&str]) -> Output {
        run_ok(self.cmd().args(args))
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run_ok(args);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// A PGP/MIME encrypted report as Thunderbird sends it: protected Subject inside,
/// "..." outside, the sender's key in an Autocrypt header.
pub fn pgp_mime_report(
    reporter: &Gpg,
    from: &str,
    intake_fpr: &str,
    subject: &str,
    body: &str,
    msgid: &str,
    autocrypt: bool,
) -> Vec<u8> {
    use base64::Engine;
    let inner = format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\nSubject: {subject}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
        body.replace('\n', "\r\n")
    );
    let ct = reporter.encrypt_sign(inner.as_bytes(), intake_fpr);
    let mut m = String::new();
    m.push_str(&format!("From: Reporter <{from}>\r\nTo: security@intake.test\r\nSubject: ...\r\nMessage-ID: <{msgid}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"));
    if autocrypt {
        let kd = base64::engine::general_purpose::STANDARD.encode(reporter.export_binary());
        let folded: Vec<&str> = kd.as_bytes().chunks(72).map(|c| std::str::from_utf8(c).unwrap()).collect();
        m.push_str(&format!("Autocrypt: addr={from}; keydata=\r\n {}\r\n", folded.join("\r\n ")));
    }
    pgp_mime_wrap(&m, &ct)
}

/// A PGP/MIME (RFC 3156) encrypted message: `headers` (each line ending in CRLF) above
/// the multipart/encrypted envelope around the armored `ct`.
pub fn pgp_mime_wrap(headers: &str, ct: &[u8]) -> Vec<u8> {
    let mut m = headers.to_owned();
    m.push_str("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"XYZ\"\r\n\r\n");
    m.push_str("This is an OpenPGP/MIME encrypted message\r\n--XYZ\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--XYZ\r\n");
    m.push_str("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n");
    let mut m = m.into_bytes();
    m.extend(crlf(ct));
    m.extend_from_slice(b"\r\n--XYZ--\r\n");
    m
}

pub fn plain_report(from: &str, subject: &str, body: &str, msgid: &str) -> Vec<u8> {
    format!(
        "From: Bob <{from}>\r\nTo: security@intake.test\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// CRLF line endings (a mail store may hand messages out with LF).
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(raw).replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

/// The value of header `name` in a raw message's top-level header block.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&crlf(raw)).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Splits an RFC 3156 multipart/signed message into (signed part bytes, signature).
pub fn split_signed(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let ct = header(raw, "Content-Type").unwrap();
    assert!(ct.starts_with("multipart/signed"), "not multipart/signed: {ct}");
    let b = ct.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap();
    let text = String::from_utf8_lossy(&crlf(raw)).into_owned();
    let delim = format!("\r\n--{b}\r\n");
    let first = text.find(&format!("--{b}\r\n")).unwrap() + b.len() + 4;
    let rest = &text[first..];
    let end = rest.find(&delim).unwrap();
    let signed = rest.as_bytes()[..end].to_vec();
    let sigpart = &rest[end + delim.len()..];
    let sig_start = sigpart.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    let sig_end = sigpart.find("-----END PGP SIGNATURE-----").unwrap() + "-----END PGP SIGNATURE-----".len();
    (signed, sigpart.as_bytes()[sig_start..sig_end].to_vec())
}

/// The armored OpenPGP message inside an RFC 3156 multipart/encrypted message.
pub fn encrypted_payload(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let s = text.find("-----BEGIN PGP MESSAGE-----").expect("no PGP MESSAGE");
    let e = text.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
    text[s..e].as_bytes().to_vec()
}

/// Polls `f` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// A deployment for CLI tests: a generated intake key, a gpg team cert, mail servers
/// unreachable (port 1, so mail stays queued). `imap_extra` is appended to `[imap]`.
pub fn write_config(dir: &std::path::Path, imap_extra: &str) -> std::path::PathBuf {
    let out = Command::new(bin())
        .args(["keys", "generate", "--uid", "Security <security@intake.test>", "--out"])
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let team = Gpg::new("Team <team@team.test>");
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::write(dir.join("team/t.asc"), team.export()).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.join("secintake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intake]\naddress = \"security@intake.test\"\n\n[imap]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nusername = \"security@intake.test\"\npassword_file = \"pw\"\n{imap_extra}\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\n\n[keys]\nintake_secret = \"keys/intake.key.asc\"\nteam_certs = \"team\"\n\n\
             [team]\nlist_address = \"team@team.test\"\n\n[policy]\nproject = \"Demo\"\n\n[store]\npath = \"state\"\n"
        ),
    )
    .unwrap();
    cfg
}

/// Every `fixtures/**/*.eml`, sorted.
pub fn fixture_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo().join("fixtures")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().and_then(|e| e.to_str()) == Some("eml") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

/// A deployment (no network) with every test intake key (one passphrase-protected, one
/// LibrePGP, one RFC 9580), the team cert, and a 16 MiB plaintext cap (the bomb fixture
/// holds 64 MiB). Returns the config and a store in `dir`.
pub fn fixture_deployment(dir: &Path) -> (std::sync::Arc<secintake::config::Config>, secintake::store::Store) {
    let keys = repo().join("keys");
    let mut tsk = std::fs::read(keys.join("test-intake.key.asc")).unwrap();
    tsk.extend(std::fs::read(keys.join("test-intake-protected.key.asc")).unwrap());
    // Keys as GnuPG 2.4 (LibrePGP AEAD) and OpenPGP.js 6 (SEIPDv2) make them: the
    // interop fixtures are encrypted to these.
    tsk.extend(std::fs::read(keys.join("test-intake-librepgp.key.asc")).unwrap());
    tsk.extend(std::fs::read(keys.join("test-intake-rfc9580.key.asc")).unwrap());
    let secret = dir.join("intake.key.asc");
    std::fs::write(&secret, tsk).unwrap();
    let pass = dir.join("passphrase");
    std::fs::copy(keys.join("test-intake-protected.passphrase"), &pass).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, "x").unwrap();
    for f in [&secret, &pass, &pw] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::copy(keys.join("team.pub.asc"), dir.join("team/team.asc")).unwrap();
    let text = "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"intake.key.asc\"\npassphrase_file = \"passphrase\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[policy]\nproject = \"Golden\"\n[store]\npath = \"state\"\n[limits]\nmax_plaintext_bytes = \"16MiB\"\n".to_string();
    let cfg = std::sync::Arc::new(secintake::config::Config::parse(&text, &dir.join("secintake.toml")).unwrap());
    let store = secintake::atrest::open(&cfg).unwrap();
    (cfg, store)
}

/// The binary with `--config cfg args`, every stdio piped.
pub fn spawn_piped(cfg: &Path, args: &[&str]) -> std::process::Child {
    Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A pipeline on a fresh store in `dir` with no server behind it (the ingest path alone):
/// the test intake key, the team list's cert, project `project`; `policy_extra` goes
/// into `[policy]`, `extra` after every table (more tables).
pub fn offline_pipeline(dir: &Path, project: &str, policy_extra: &str, extra: &str) -> secintake::pipeline::Pipeline {
    use std::os::unix::fs::PermissionsExt;
    let keys = repo().join("keys");
    let secret = dir.join("intake.key.asc");
    std::fs::copy(keys.join("test-intake.key.asc"), &secret).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, "x").unwrap();
    for f in [&secret, &pw] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::create_dir_all(dir.join("team")).unwrap();
    std::fs::copy(keys.join("team.pub.asc"), dir.join("team/team.asc")).unwrap();
    let text = format!(
        "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"intake.key.asc\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[policy]\nproject = \"{project}\"\n{policy_extra}\n[store]\npath = \"state\"\n{extra}\n"
    );
    let cfg = std::sync::Arc::new(secintake::config::Config::parse(&text, &dir.join("secintake.toml")).unwrap());
    let store = secintake::atrest::open(&cfg).unwrap();
    secintake::pipeline::Pipeline::load(cfg, store).unwrap()
}

/// [`offline_pipeline`] for the command-mail tests: `team` certs in keys.team_certs
/// (beside the list's own) and the shipped reply templates in `replies/`.
pub fn command_pipeline(dir: &Path, team: &[&Gpg], extra: &str) -> secintake::pipeline::Pipeline {
    std::fs::create_dir_all(dir.join("team")).unwrap();
    for (i, g) in team.iter().enumerate() {
        std::fs::write(dir.join(format!("team/member{i}.asc")), g.export()).unwrap();
    }
    std::fs::create_dir_all(dir.join("replies")).unwrap();
    for e in std::fs::read_dir(repo().join("config/replies")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("replies").join(e.file_name())).unwrap();
    }
    offline_pipeline(dir, "Cmd", "", extra)
}

/// A party whose gpg home can encrypt to the test intake key.
pub fn intake_party(uid: &str) -> Gpg {
    let g = Gpg::new(uid);
    g.import(&repo().join("keys/test-intake.pub.asc"));
    g
}
