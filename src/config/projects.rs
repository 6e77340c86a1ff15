//! `[[projects]]`: one daemon serving several projects, each with its own `security@`
//! address(es), case prefix, policy, team list, key and maintainers.
//!
//! The top-level `[intake]`, `[policy]`, `[team]` and `[keys]` are the default project, so a
//! config without `[[projects]]` is a one-project config, unchanged. A project's policy is
//! the default project's with the keys the entry holds (`policy::read` over the default:
//! the one merge rule). Clashes (a name, prefix or address in two projects) are errors that
//! name both. Routing a message to its project is [`Config::project_for`].

use std::path::PathBuf;

use toml::{Table, Value};

use super::{Config, Policy, Reader, Secret, policy, valid_address};

/// The keys a `[[projects]]` entry takes besides every `[policy]` key.
pub const KEYS: &[&str] =
    &["name", "addresses", "case_prefix", "list_address", "intake_secret", "passphrase_file", "team_certs", "purl"];

/// One project besides the default one.
#[derive(Clone, Debug)]
pub struct Project {
    /// Unique; what `--project NAME` and the case JSON's `project` say.
    pub name: String,
    /// The addresses its reports arrive at (lower case), besides `security+NAME@` of the
    /// intake address.
    pub addresses: Vec<String>,
    /// Unique; its case ids are `PREFIX-YEAR-NNNN`, numbered per prefix and year.
    pub case_prefix: String,
    /// The default project's policy with this entry's keys over it.
    pub policy: Policy,
    /// Its own team list (gets its summaries besides the shared list, unless
    /// `[team] shared_list = false`).
    pub list_address: Option<String>,
    /// Its own intake key (else the default project's).
    pub intake_secret: Option<PathBuf>,
    pub passphrase: Option<Secret>,
    /// Its maintainers' certs: they get its summaries, and only its.
    pub team_certs: Option<PathBuf>,
    /// Package URL of the project (CVE 5.2 `packageURL`), without a version.
    pub purl: Option<String>,
}

impl Project {
    /// The address its mail goes out from: its first address, else the intake address.
    pub fn from_address<'a>(&'a self, intake: &'a str) -> &'a str {
        self.addresses.first().map(String::as_str).unwrap_or(intake)
    }
}

/// Reads every `[[projects]]` entry, each over the default project's `base` policy.
pub(super) fn read(r: &mut Reader, base: &Policy, default_prefix: &str, intake: &str) -> Vec<Project> {
    let Some(value) = r.root.get("projects").cloned() else { return Vec::new() };
    let Value::Array(entries) = value else {
        r.problem("projects", "must be a list of tables, written [[projects]]");
        return Vec::new();
    };
    let mut out: Vec<Project> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let label = format!("projects[{}]", i + 1);
        let Some(t) = entry.as_table() else {
            r.problem(&label, "must be a table, written [[projects]]");
            continue;
        };
        for k in t.keys() {
            if !KEYS.contains(&k.as_str()) && !policy::KEYS.contains(&k.as_str()) {
                r.problem(
                    &format!("{label}.{k}"),
                    &format!("unknown key; a project takes {} and every [policy] key", KEYS.join(", ")),
                );
            }
        }
        // The entry read as a section of its own, so every getter and message works.
        let mut root = Table::new();
        root.insert(label.clone(), Value::Table(t.clone()));
        let mut sub = Reader {
            root: &root,
            base: r.base.clone(),
            problems: Vec::new(),
            credentials_source: r.credentials_source.clone(),
        };
        let key = |k: &str| format!("{label}.{k}");
        let name = sub.string(&key("name"), None).unwrap_or_default();
        let mut addresses = Vec::new();
        match sub.get(&key("addresses")).cloned() {
            None => {}
            Some(Value::Array(list)) => {
                for a in list {
                    match a.as_str().map(|s| s.trim().to_ascii_lowercase()) {
                        Some(s) if valid_address(&s) => addresses.push(s),
                        _ => sub.problem(&key("addresses"), &format!("{a} is not a mail address; write local@domain")),
                    }
                }
            }
            Some(_) => sub.problem(&key("addresses"), "must be a list of addresses, e.g. [\"security@proj.example\"]"),
        }
        let case_prefix = sub.case_prefix(&key("case_prefix"), None);
        let p = Project {
            policy: {
                let mut pol = policy::read(&mut sub, &label, base);
                if sub.get(&key("project")).is_none() {
                    pol.project = name.clone();
                }
                pol
            },
            name,
            addresses,
            case_prefix,
            list_address: if sub.get(&key("list_address")).is_some() {
                sub.address(&key("list_address"))
            } else {
                None
            },
            intake_secret: if sub.get(&key("intake_secret")).is_some() {
                sub.secret_path(&key("intake_secret"))
            } else {
                None
            },
            passphrase: sub.secret(&key("passphrase_file"), false),
            team_certs: sub.path_opt(&key("team_certs"), true),
            purl: sub.string_opt(&key("purl")).filter(|p| {
                p.starts_with("pkg:") && !p.contains('@') && !p.chars().any(|c| c.is_whitespace() || c.is_control())
            }),
        };
        if sub.get(&key("purl")).is_some() && p.purl.is_none() {
            sub.problem(&key("purl"), "must be a package URL without a version, e.g. \"pkg:pypi/numpy\"");
        }
        if sub.credentials_source.is_some() {
            r.credentials_source = sub.credentials_source.clone();
        }
        r.problems.append(&mut sub.problems);
        // Clashes, named by both sides.
        if let Some(o) = out.iter().find(|o| o.name == p.name) {
            r.problem(&key("name"), &format!("{:?} is also the name of another project ({})", o.name, o.name));
        }
        if p.case_prefix == default_prefix {
            r.problem(
                &key("case_prefix"),
                &format!("{:?} is also intake.case_prefix; give each project its own", p.case_prefix),
            );
        }
        if let Some(o) = out.iter().find(|o| o.case_prefix == p.case_prefix) {
            r.problem(&key("case_prefix"), &format!("{:?} is also the prefix of project {}", p.case_prefix, o.name));
        }
        for a in &p.addresses {
            if a.eq_ignore_ascii_case(intake) {
                r.problem(&key("addresses"), &format!("{a} is intake.address (the default project's)"));
            }
            if let Some(o) = out.iter().find(|o| o.addresses.contains(a)) {
                r.problem(&key("addresses"), &format!("{a} is also an address of project {}", o.name));
            }
        }
        out.push(p);
    }
    out
}

impl Config {
    /// The project a message belongs to, from the addresses it was delivered to, in the
    /// order given (`Delivered-To`, `X-Original-To`, `To`, `Cc`): the first that names a
    /// project's address, or the intake address plus-addressed with a project's name
    /// (`security+NAME@domain`), wins. None: the default project. The intake address
    /// itself decides nothing: it is where every message ends (the mailbox's own
    /// `Delivered-To` when the MTA aliases a project's address to it, with the project's
    /// address in `X-Original-To`).
    pub fn project_for<'a>(&self, delivered_to: impl IntoIterator<Item = &'a str>) -> Option<&Project> {
        let (local, domain) = self.intake.address.rsplit_once('@')?;
        for a in delivered_to {
            let a = a.trim().trim_matches(['<', '>']).to_ascii_lowercase();
            if let Some(p) = self.projects.iter().find(|p| p.addresses.contains(&a)) {
                return Some(p);
            }
            if let Some((l, d)) = a.rsplit_once('@')
                && d.eq_ignore_ascii_case(domain)
                && let Some(tag) = l.strip_prefix(&format!("{}+", local.to_ascii_lowercase()))
                && let Some(p) = self.projects.iter().find(|p| p.name.eq_ignore_ascii_case(tag))
            {
                return Some(p);
            }
        }
        None
    }

    /// The project called `name` (None: the default project, or no such project).
    pub fn project(&self, name: Option<&str>) -> Option<&Project> {
        let name = name?;
        self.projects.iter().find(|p| p.name == name)
    }

    /// The name of the default project (`[policy] project`).
    pub fn default_project(&self) -> &str {
        &self.policy.project
    }

    /// Every project's name, the default one first.
    pub fn project_names(&self) -> Vec<&str> {
        std::iter::once(self.default_project()).chain(self.projects.iter().map(|p| p.name.as_str())).collect()
    }

    /// The policy of the project called `name` (the default's for None or the default's name).
    pub fn policy_of(&self, name: Option<&str>) -> &Policy {
        self.project(name).map(|p| &p.policy).unwrap_or(&self.policy)
    }

    /// The case prefix of the project called `name`.
    pub fn prefix_of(&self, name: Option<&str>) -> &str {
        self.project(name).map(|p| p.case_prefix.as_str()).unwrap_or(&self.intake.case_prefix)
    }

    /// The address the project's mail goes out from.
    pub fn address_of(&self, name: Option<&str>) -> &str {
        self.project(name).map(|p| p.from_address(&self.intake.address)).unwrap_or(&self.intake.address)
    }

    /// Whether `prefix` is any project's case prefix (for case ids in Subjects).
    pub fn prefixes(&self) -> Vec<&str> {
        std::iter::once(self.intake.case_prefix.as_str())
            .chain(self.projects.iter().map(|p| p.case_prefix.as_str()))
            .collect()
    }
}
