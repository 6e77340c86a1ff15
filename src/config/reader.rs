//! Reading the TOML table: typed getters that collect every problem (naming the key and
//! the fix) instead of stopping at the first, path resolution against the config's folder
//! and systemd credentials, and secret files refused when others can read them.
//!
//! Never logs or returns a secret's value in a problem.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::{Secret, Tls, check_secret_file, is_loopback, parse_size, valid_address};

/// The keys each section may hold; anything else is reported (typos are the usual
/// reason a setting "does nothing").
const KNOWN: &[(&str, &[&str])] = &[
    ("intake", &["address", "case_prefix"]),
    (
        "imap",
        &[
            "host",
            "port",
            "tls",
            "ca_file",
            "username",
            "password_file",
            "mailbox",
            "processed_folder",
            "quarantine_folder",
            "journal_folder",
            "idle",
            "poll_interval",
        ],
    ),
    ("smtp", &["host", "port", "tls", "ca_file", "username", "password_file", "connections"]),
    ("keys", &["intake_secret", "passphrase_file", "team_certs", "keyring"]),
    ("team", &["list_address", "shared_list"]),
    ("policy", super::policy::KEYS),
    ("store", &["path", "key_file"]),
    ("templates", &["dir"]),
    ("commands", &["enabled", "max_age"]),
    ("metrics", &["textfile"]),
    ("triage", super::triage::KEYS),
    (
        "limits",
        &["max_message_bytes", "max_plaintext_bytes", "max_mime_depth", "acks_per_address_per_hour", "acks_per_hour"],
    ),
];

/// The directory beside the config file that holds the secrets systemd passes to the
/// unit: `LoadCredential=NAME:/etc/secintake/credentials/NAME` in systemd/secintake.service.
pub const CREDENTIALS_SOURCE_DIR: &str = "credentials";

/// Walks the TOML table, collecting problems instead of stopping at the first.
pub(super) struct Reader<'a> {
    pub(super) root: &'a Table,
    pub(super) base: PathBuf,
    pub(super) problems: Vec<String>,
    /// Where `$CREDENTIALS_DIRECTORY` pointed when it was not set (see `resolve`).
    pub(super) credentials_source: Option<PathBuf>,
}

impl Reader<'_> {
    pub(super) fn problem(&mut self, key: &str, msg: &str) {
        self.problems.push(format!("{key}: {msg}"));
    }

    pub(super) fn check_known(&mut self) {
        for (section, value) in self.root.iter() {
            if section == "projects" {
                // An array of tables, checked entry by entry (`projects::read`).
                continue;
            }
            let Some((_, keys)) = KNOWN.iter().find(|(s, _)| s == section) else {
                self.problems.push(format!(
                    "{section}: unknown section; the sections are {} [[projects]]",
                    KNOWN.iter().map(|(s, _)| format!("[{s}]")).collect::<Vec<_>>().join(" ")
                ));
                continue;
            };
            let Some(t) = value.as_table() else {
                self.problems.push(format!("{section}: must be a [{section}] table"));
                continue;
            };
            for k in t.keys() {
                if !keys.contains(&k.as_str()) {
                    self.problems.push(format!("{section}.{k}: unknown key; [{section}] takes {}", keys.join(", ")));
                }
            }
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        let (section, name) = key.split_once('.')?;
        self.root.get(section)?.as_table()?.get(name)
    }

    pub(super) fn string_opt(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::String(_)) => {
                self.problem(key, "is empty; give it a value or remove it");
                None
            }
            Some(v) => {
                let t = v.type_str();
                self.problem(key, &format!("must be a string in quotes, not a {t}"));
                None
            }
        }
    }

    pub(super) fn string(&mut self, key: &str, default: Option<&str>) -> Option<String> {
        match (self.string_opt(key), default) {
            (Some(s), _) => Some(s),
            (None, Some(d)) if self.get(key).is_none() => Some(d.to_owned()),
            (None, Some(_)) => None,
            (None, None) => {
                if self.get(key).is_none() {
                    self.problem(key, "missing; this key is required");
                }
                None
            }
        }
    }

    pub(super) fn address(&mut self, key: &str) -> Option<String> {
        let s = self.string(key, None)?;
        if valid_address(&s) {
            Some(s)
        } else {
            self.problem(key, &format!("{s:?} is not a mail address; write it as local@domain"));
            None
        }
    }

    pub(super) fn case_prefix(&mut self, key: &str, default: Option<&str>) -> String {
        let s = self.string(key, default).unwrap_or_default();
        if s.is_empty() || s.len() > 16 || !s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            self.problem(key, "must be 1 to 16 upper-case letters or digits, e.g. \"SEC\"");
        }
        s
    }

    pub(super) fn https_url(&mut self, key: &str) -> Option<String> {
        let s = self.string_opt(key)?;
        if s.starts_with("https://") && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some(s)
        } else {
            self.problem(key, &format!("{s:?} must be an https:// URL (RFC 9116 requires https)"));
            None
        }
    }

    pub(super) fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(_) => {
                self.problem(key, "must be true or false");
                default
            }
        }
    }

    pub(super) fn integer(&mut self, key: &str, default: i64, min: i64, max: i64) -> i64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(i)) if (min..=max).contains(i) => *i,
            Some(_) => {
                self.problem(key, &format!("must be a whole number from {min} to {max}"));
                default
            }
        }
    }

    pub(super) fn port(&mut self, key: &str, default: u16) -> u16 {
        self.integer(key, default.into(), 1, 65535) as u16
    }

    pub(super) fn count(&mut self, key: &str, default: u32) -> u32 {
        self.integer(key, default.into(), 1, 1_000_000) as u32
    }

    pub(super) fn tls(&mut self, key: &str, default: Tls) -> Tls {
        match self.string(key, Some(&default.to_string())).as_deref() {
            Some("implicit") => Tls::Implicit,
            Some("starttls") => Tls::Starttls,
            Some("none") => Tls::None,
            Some(other) => {
                self.problem(key, &format!("{other:?} is not one of \"implicit\", \"starttls\", \"none\""));
                default
            }
            None => default,
        }
    }

    pub(super) fn plain_only_on_loopback(&mut self, section: &str, host: &str, tls: Tls) {
        if tls == Tls::None && !host.is_empty() && !is_loopback(host) {
            self.problem(
                &format!("{section}.tls"),
                &format!(
                    "\"none\" is only allowed when {section}.host is loopback (127.0.0.1, ::1, localhost), \
                     not {host:?}; use \"implicit\" or \"starttls\""
                ),
            );
        }
    }

    pub(super) fn duration(&mut self, key: &str, default: &str) -> Duration {
        let fallback = humantime::parse_duration(default).unwrap_or(Duration::from_secs(60));
        let Some(s) = self.string(key, Some(default)) else { return fallback };
        match humantime::parse_duration(&s) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.problem(key, &format!("{s:?} is not a duration; write e.g. \"60s\", \"24h\", \"7d\""));
                fallback
            }
        }
    }

    pub(super) fn size(&mut self, key: &str, default: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(Value::Integer(i)) if *i > 0 => *i as u64,
            Some(Value::String(s)) => match parse_size(s) {
                Some(n) if n > 0 => n,
                _ => {
                    self.problem(key, &format!("{s:?} is not a size; write e.g. \"50MiB\""));
                    default
                }
            },
            Some(_) => {
                self.problem(key, "must be a size such as \"50MiB\" or a number of bytes");
                default
            }
        }
    }

    /// A path from the config: relative to the config's folder, and `$CREDENTIALS_DIRECTORY/NAME`
    /// expanded. Under the unit systemd sets that variable; in a root shell it is unset, and
    /// the name is read from where the unit's `LoadCredential=` lines load it from: the
    /// `credentials` directory beside the config file (/etc/secintake/credentials). So one
    /// config works for the daemon and for every command an admin runs by hand.
    pub(super) fn resolve(&mut self, s: &str) -> Result<PathBuf, String> {
        let expanded = if let Some(rest) =
            s.strip_prefix("$CREDENTIALS_DIRECTORY/").or_else(|| s.strip_prefix("${CREDENTIALS_DIRECTORY}/"))
        {
            match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => PathBuf::from(dir).join(rest),
                None => {
                    let source = self.base.join(CREDENTIALS_SOURCE_DIR);
                    if !source.is_dir() {
                        return Err(format!(
                            "refers to $CREDENTIALS_DIRECTORY, which is not set outside systemd, and {} \
                             (where the unit's LoadCredential= reads from) does not exist; create it (mode 700) \
                             and put the secret there, or use a plain path",
                            source.display()
                        ));
                    }
                    self.credentials_source = Some(source.clone());
                    source.join(rest)
                }
            }
        } else {
            PathBuf::from(s)
        };
        Ok(if expanded.is_absolute() { expanded } else { self.base.join(expanded) })
    }

    pub(super) fn path_opt(&mut self, key: &str, must_be_dir: bool) -> Option<PathBuf> {
        let s = self.string_opt(key)?;
        match self.resolve(&s) {
            Ok(p) => {
                if must_be_dir && !p.is_dir() {
                    self.problem(key, &format!("{} is not a directory; create it or fix the path", p.display()));
                }
                Some(p)
            }
            Err(e) => {
                self.problem(key, &e);
                None
            }
        }
    }

    pub(super) fn secret_path(&mut self, key: &str) -> Option<PathBuf> {
        let s = self.string(key, None)?;
        let p = match self.resolve(&s) {
            Ok(p) => p,
            Err(e) => {
                self.problem(key, &e);
                return None;
            }
        };
        if let Err(e) = check_secret_file(&p) {
            self.problem(key, &e);
        }
        Some(p)
    }

    pub(super) fn secret(&mut self, key: &str, required: bool) -> Option<Secret> {
        if !required && self.get(key).is_none() {
            return None;
        }
        let path = self.secret_path(key)?;
        match std::fs::read_to_string(&path) {
            Ok(v) => Some(Secret { path, value: v.trim_end_matches(['\r', '\n']).to_owned() }),
            Err(_) => None, // already reported by secret_path
        }
    }
}
