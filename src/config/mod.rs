//! Configuration: the TOML file an admin writes, turned into a validated [`Config`].
//!
//! Every problem in a file is collected and reported at once, each naming its key
//! (`imap.port`) and the fix, so an admin fixes a config in one round trip. Secrets
//! never appear inline: they are read from `*_file` paths (or systemd credentials via
//! `$CREDENTIALS_DIRECTORY`), and a secret file readable by group or others is refused.
//! This module must never log a secret's value.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Table;

mod policy;
mod projects;
mod reader;
mod triage;

pub use policy::Policy;
pub use projects::Project;
pub use reader::CREDENTIALS_SOURCE_DIR;
use reader::Reader;
pub use triage::{DEFAULT_DUPLICATE_THRESHOLD, Triage};

/// Where `secintake` looks for its config when neither `--config` nor
/// `SECINTAKE_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/secintake/secintake.toml";

/// How a connection to a mail server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain greeting, then STARTTLS before anything secret is sent.
    Starttls,
    /// No TLS at all: only accepted when the host is loopback.
    None,
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tls::Implicit => "implicit",
            Tls::Starttls => "starttls",
            Tls::None => "none",
        })
    }
}

/// A secret read from a file. `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret {
    /// The file it came from, for error messages.
    pub path: PathBuf,
    value: String,
}

impl Secret {
    /// The secret itself, trailing newline removed.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.path.display())
    }
}

/// `[intake]`: who we are.
#[derive(Clone, Debug)]
pub struct Intake {
    /// The `security@` address reports arrive at; acks come from it and it is the
    /// envelope sender so bounces come back to us.
    pub address: String,
    /// Prefix of case ids (`SEC` gives `SEC-2026-0001`).
    pub case_prefix: String,
}

/// `[imap]`: the mailbox we read.
#[derive(Clone, Debug)]
pub struct Imap {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// PEM file of CAs trusted instead of the public roots (private CAs).
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// The folder reports arrive in; every message in it is unhandled.
    pub mailbox: String,
    /// Where handled messages go (created when missing).
    pub processed_folder: String,
    /// Where messages we could not handle go (created when missing).
    pub quarantine_folder: String,
    /// Where the journal (every change the mailbox does not hold, encrypted and signed)
    /// is appended (created when missing): with the folders above, what `store rebuild`
    /// reads.
    pub journal_folder: String,
    /// Use IMAP IDLE when the server offers it.
    pub idle: bool,
    /// How often to poll when IDLE is off or unavailable.
    pub poll_interval: Duration,
}

/// `[smtp]`: where outgoing mail is submitted.
#[derive(Clone, Debug)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub ca_file: Option<PathBuf>,
    /// AUTH is optional: a local MTA often relays for loopback without it.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// How many connections the outbox sends over at once (extension, default 4).
    pub connections: usize,
}

/// `[keys]`: the OpenPGP material.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Armored TSK(s) of the intake key; several keys allow rotation.
    pub intake_secret: PathBuf,
    pub passphrase: Option<Secret>,
    /// Directory of armored certs of the security team (summary recipients).
    pub team_certs: PathBuf,
    /// Optional directory of reporters' armored certs (extension of the contract).
    pub keyring: Option<PathBuf>,
}

/// `limits.max_message_bytes` when the config does not say: large enough for a PoC
/// video, small enough to hold in memory a few times over.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 50 << 20;

/// `[commands]`: the team's commands by signed mail (`pipeline/commands.rs`).
#[derive(Clone, Debug)]
pub struct Commands {
    /// `enabled` (default true); false: a command mail is a report like any other.
    pub enabled: bool,
    /// `max_age` (default 72h): a signature older than this at arrival applies
    /// nothing (a command mail kept and sent again later is not a new command).
    pub max_age: std::time::Duration,
}

/// `[limits]`: what hostile input may cost us.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub max_plaintext_bytes: u64,
    pub max_mime_depth: u32,
    pub acks_per_address_per_hour: u32,
    pub acks_per_hour: u32,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file this came from; relative paths are resolved against its folder.
    pub file: PathBuf,
    pub intake: Intake,
    pub imap: Imap,
    pub smtp: Smtp,
    pub keys: Keys,
    /// `[team] list_address`: the security team's list.
    pub team_list_address: String,
    /// `[team] shared_list` (default true): the shared list gets every project's
    /// summaries; false: a project with its own list gets them there only.
    pub shared_list: bool,
    /// `[[projects]]`: the projects besides the default one (the top-level sections).
    pub projects: Vec<Project>,
    pub policy: Policy,
    /// `[store] path`: the state directory (the database and the control socket).
    pub store_path: PathBuf,
    /// `[store] key_file`: the store key (32 bytes, or 64 hex digits), typically a systemd
    /// credential; None: the key is kept in the state directory wrapped by the intake key
    /// (`crate::atrest`).
    pub store_key_file: Option<PathBuf>,
    /// `[templates] dir` (extension): an admin's `ack.txt` overriding the built-in wording.
    pub templates_dir: Option<PathBuf>,
    pub commands: Commands,
    /// `[metrics] textfile`: where the daemon writes its numbers after every sync (for
    /// node_exporter's textfile collector); None: not written.
    pub metrics_textfile: Option<PathBuf>,
    pub limits: Limits,
    /// `[triage]`: duplicates and blocked reporters.
    pub triage: Triage,
    /// Set when a `$CREDENTIALS_DIRECTORY/...` path was read outside systemd, from the
    /// credentials' source directory instead; `check` says so.
    pub credentials_source: Option<PathBuf>,
}

/// Every problem found in a config file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid config {}:", self.file.display())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = Self::read(path)?;
        Self::parse(&text, path)
    }

    /// Like [`Config::load`], but a config with problems still comes back (unset or
    /// invalid values left at their defaults) with its problem list, so `check` can go on
    /// to test the keys and certs it names. Err only when the file cannot be read or is
    /// not TOML.
    pub fn load_lenient(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let text = Self::read(path)?;
        Self::parse_lenient(&text, path)
    }

    fn read(path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![format!("cannot read the config file: {e}; pass --config FILE or set SECINTAKE_CONFIG")],
        })
    }

    /// Validates config text; `path` locates relative paths and names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (config, problems) = Self::parse_lenient(text, path)?;
        if problems.is_empty() { Ok(config) } else { Err(ConfigError { file: path.to_owned(), problems }) }
    }

    /// The config and every problem found in it (see [`Config::load_lenient`]).
    pub fn parse_lenient(text: &str, path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![format!("not valid TOML: {}", e.to_string().trim())],
        })?;
        let base = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let mut r = Reader { root: &table, base, problems: Vec::new(), credentials_source: None };
        r.check_known();

        let intake = Intake {
            address: r.address("intake.address").unwrap_or_default(),
            case_prefix: r.case_prefix("intake.case_prefix", Some("SEC")),
        };

        let imap_tls = r.tls("imap.tls", Tls::Implicit);
        let imap_host = r.string("imap.host", None).unwrap_or_default();
        r.plain_only_on_loopback("imap", &imap_host, imap_tls);
        let imap = Imap {
            port: r.port("imap.port", if imap_tls == Tls::Implicit { 993 } else { 143 }),
            host: imap_host,
            tls: imap_tls,
            ca_file: r.path_opt("imap.ca_file", false),
            username: r.string("imap.username", None).unwrap_or_default(),
            password: r.secret("imap.password_file", true).unwrap_or_else(Secret::missing),
            mailbox: r.string("imap.mailbox", Some("INBOX")).unwrap_or_default(),
            processed_folder: r.string("imap.processed_folder", Some("Processed")).unwrap_or_default(),
            quarantine_folder: r.string("imap.quarantine_folder", Some("Quarantine")).unwrap_or_default(),
            journal_folder: r.string("imap.journal_folder", Some("Secintake/Journal")).unwrap_or_default(),
            idle: r.boolean("imap.idle", true),
            poll_interval: r.duration("imap.poll_interval", "60s"),
        };
        if [&imap.processed_folder, &imap.quarantine_folder, &imap.mailbox].contains(&&imap.journal_folder) {
            r.problem(
                "imap.journal_folder",
                "must differ from imap.mailbox, processed_folder and quarantine_folder; name a folder of its own",
            );
        }
        if imap.processed_folder == imap.mailbox || imap.quarantine_folder == imap.mailbox {
            r.problem(
                "imap.processed_folder",
                "must differ from imap.mailbox, or handled mail would be read again; name another folder",
            );
        }

        let smtp_tls = r.tls("smtp.tls", Tls::Starttls);
        let smtp_host = r.string("smtp.host", None).unwrap_or_default();
        r.plain_only_on_loopback("smtp", &smtp_host, smtp_tls);
        let smtp_user = r.string_opt("smtp.username");
        let smtp_password = r.secret("smtp.password_file", false);
        if smtp_user.is_some() != smtp_password.is_some() {
            r.problem(
                "smtp.username",
                "smtp.username and smtp.password_file go together; set both for AUTH or neither",
            );
        }
        let smtp = Smtp {
            port: r.port(
                "smtp.port",
                match smtp_tls {
                    Tls::Implicit => 465,
                    Tls::Starttls => 587,
                    Tls::None => 25,
                },
            ),
            host: smtp_host,
            tls: smtp_tls,
            ca_file: r.path_opt("smtp.ca_file", false),
            username: smtp_user,
            password: smtp_password,
            connections: r.integer("smtp.connections", 4, 1, 32) as usize,
        };

        let keys = Keys {
            intake_secret: r.secret_path("keys.intake_secret").unwrap_or_default(),
            passphrase: r.secret("keys.passphrase_file", false),
            team_certs: r.path_opt("keys.team_certs", true).unwrap_or_default(),
            keyring: r.path_opt("keys.keyring", true),
        };
        if r.get("keys.team_certs").is_none() {
            r.problem("keys.team_certs", "missing; set it to a directory of the team's armored certs");
        }

        let team_list_address = r.address("team.list_address").unwrap_or_default();

        let policy = policy::read(&mut r, "policy", &Policy::builtin(&intake.address));
        let projects = projects::read(&mut r, &policy, &intake.case_prefix, &intake.address);
        let shared_list = r.boolean("team.shared_list", true);

        let store_path = match r.get("store.path") {
            Some(_) => r.path_opt("store.path", false).unwrap_or_default(),
            None => PathBuf::from("/var/lib/secintake"),
        };

        let store_key_file = if r.get("store.key_file").is_some() { r.secret_path("store.key_file") } else { None };
        let templates_dir = r.path_opt("templates.dir", true);
        let commands =
            Commands { enabled: r.boolean("commands.enabled", true), max_age: r.duration("commands.max_age", "72h") };
        let metrics_textfile = r.path_opt("metrics.textfile", false);
        if let Some(p) = &metrics_textfile {
            if !p.parent().is_some_and(|d| d.is_dir()) {
                r.problem("metrics.textfile", &format!("{}: its folder does not exist; create it", p.display()));
            } else if p.extension().is_none_or(|e| e != "prom") {
                r.problem(
                    "metrics.textfile",
                    "must end in .prom (node_exporter's textfile collector reads only those)",
                );
            }
        }

        let limits = Limits {
            max_message_bytes: r.size("limits.max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
            max_plaintext_bytes: r.size("limits.max_plaintext_bytes", 200 << 20),
            max_mime_depth: r.count("limits.max_mime_depth", 32),
            acks_per_address_per_hour: r.count("limits.acks_per_address_per_hour", 5),
            acks_per_hour: r.count("limits.acks_per_hour", 200),
        };

        let triage = triage::read(&mut r);
        let config = Config {
            file: path.to_owned(),
            intake,
            imap,
            smtp,
            keys,
            team_list_address,
            shared_list,
            projects,
            policy,
            store_path,
            store_key_file,
            templates_dir,
            commands,
            metrics_textfile,
            limits,
            triage,
            credentials_source: r.credentials_source,
        };
        Ok((config, r.problems))
    }

    /// The canned replies' directory: `replies/` beside the config file.
    pub fn replies_dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."))
            .join("replies")
    }

    /// Where the state directory is according to a config file that may be invalid
    /// otherwise, so the CLI can still reach a running daemon while an admin fixes it.
    pub fn store_path_hint(path: &Path) -> Option<PathBuf> {
        let text = std::fs::read_to_string(path).ok()?;
        let table: Table = toml::from_str(&text).ok()?;
        let base = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })?;
        let base = std::fs::canonicalize(base).ok()?;
        match table.get("store").and_then(|s| s.get("path")).and_then(|p| p.as_str()) {
            Some(p) => {
                let p = PathBuf::from(p);
                Some(if p.is_absolute() { p } else { base.join(p) })
            }
            None => Some(PathBuf::from("/var/lib/secintake")),
        }
    }

    /// The domain of the intake address, used for Message-IDs we generate.
    pub fn intake_domain(&self) -> &str {
        self.intake.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}

impl Secret {
    fn missing() -> Secret {
        Secret { path: PathBuf::new(), value: String::new() }
    }
}

/// Refuses secret files that others can read: a leaked mailbox password or intake key
/// would expose every report.
pub fn check_secret_file(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("cannot read {}: {e}; create the file or fix the path", p.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", p.display()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others (mode {:o}); run `chmod 600 {}`",
            p.display(),
            mode & 0o777,
            p.display()
        ));
    }
    if let Err(e) = std::fs::File::open(p) {
        return Err(format!("cannot read {}: {e}; check its owner and permissions", p.display()));
    }
    Ok(())
}

/// True for hosts that never leave the machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// A plain `local@domain` address, with nothing a header could be injected with.
pub fn valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && (domain.contains('.') || domain == "localhost")
        && s.chars().all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c))
}

/// Parses a day (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time: config dates and
/// the CLI's and mail commands' dates alike.
pub fn parse_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Parses "50MiB", "1GiB", "10KiB", "5MB", "1024".
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn addresses() {
        assert!(valid_address("security@example.org"));
        assert!(!valid_address("security"));
        assert!(!valid_address("a@b.org\r\nBcc: x@y.org"));
        assert!(!valid_address("<a@b.org>"));
    }

    #[test]
    fn every_problem_reported_with_its_key() {
        let text = r#"
[intake]
address = "not-an-address"
[imap]
host = "imap.example.org"
tls = "none"
port = 99999
[smtp]
host = "smtp.example.org"
[keys]
intake_secret = "/nonexistent/intake.asc"
team_certs = "/nonexistent/team"
[team]
list_address = "team@example.org"
[policy]
project = "Demo"
ack_within = "soon"
[bogus]
x = 1
"#;
        let err = Config::parse(text, Path::new("/tmp/x.toml")).unwrap_err();
        let all = err.to_string();
        for key in [
            "intake.address",
            "imap.tls",
            "imap.port",
            "imap.username",
            "imap.password_file",
            "keys.intake_secret",
            "keys.team_certs",
            "policy.ack_within",
            "bogus",
        ] {
            assert!(all.contains(&format!("{key}:")), "{key} missing from:\n{all}");
        }
    }

    #[test]
    fn policy_defaults_follow_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in ["pw", "key.asc"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
            std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::create_dir(dir.path().join("team")).unwrap();
        let text = "[intake]\naddress = \"security@example.org\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
                    [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"key.asc\"\nteam_certs = \"team\"\n[team]\nlist_address = \"t@example.org\"\n";
        let c = Config::parse(text, &dir.path().join("c.toml")).unwrap();
        assert_eq!(c.policy.project, "example.org");
        assert_eq!(c.policy.ack_within, Duration::from_secs(24 * 3600));
        assert_eq!(c.policy.update_within, Duration::from_secs(7 * 86400));
        assert_eq!(c.policy.disclosure_after, Duration::from_secs(90 * 86400));
        assert_eq!(c.intake.case_prefix, "SEC");
        assert_eq!(c.imap.mailbox, "INBOX");
        assert!(c.imap.idle);
        assert_eq!(c.imap.poll_interval, Duration::from_secs(60));
        assert_eq!(c.imap.port, 143);
        assert_eq!(c.limits.max_message_bytes, 50 << 20);
        assert_eq!(c.limits.max_plaintext_bytes, 200 << 20);
        assert_eq!(c.limits.max_mime_depth, 32);
        assert_eq!(c.limits.acks_per_address_per_hour, 5);
        assert_eq!(c.limits.acks_per_hour, 200);
        assert_eq!(c.smtp.connections, 4);
        let with = |v: &str| text.replace("[keys]\n", &format!("connections = {v}\n[keys]\n"));
        assert_eq!(Config::parse(&with("8"), &dir.path().join("c.toml")).unwrap().smtp.connections, 8);
        for bad in ["0", "33", "\"4\""] {
            let e = format!("{:#}", Config::parse(&with(bad), &dir.path().join("c.toml")).unwrap_err());
            assert!(e.contains("smtp.connections: must be a whole number from 1 to 32"), "{bad}: {e}");
        }
    }

    #[test]
    fn world_readable_secret_refused_with_chmod_hint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_secret_file(&p).unwrap_err();
        assert!(e.contains(&format!("chmod 600 {}", p.display())), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_secret_file(&p).is_ok());
    }
}
