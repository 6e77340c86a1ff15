//! `[policy]`: the promises and rules of a project's disclosure policy, as one type.
//!
//! Every policy key lives here, is read once by [`read`], and has its default in
//! [`Policy::builtin`]. A section that overrides some keys (a `[[projects]]` entry) is read
//! with the default project's policy as its base: the one merge rule, a key absent from the
//! section keeps the base's value, lives in [`read`] and nowhere else.

use std::time::Duration;

use super::Reader;

/// The keys `[policy]` takes (a project entry takes them too).
pub const KEYS: &[&str] = &["project", "ack_within", "update_within", "disclosure_after", "url", "security_txt_url"];

/// `[policy]`: the promises of the disclosure policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Project name used in mail wording.
    pub project: String,
    /// How soon a report is acknowledged (the ack is sent at once; this is the promise
    /// the due dates and SLA reminders count).
    pub ack_within: Duration,
    /// How soon after the last contact the reporter gets a status update.
    pub update_within: Duration,
    /// The disclosure deadline after receipt.
    pub disclosure_after: Duration,
    /// The published disclosure policy (security.txt `Policy:`). Extension.
    pub url: Option<String>,
    /// Where security.txt is served (its `Canonical:`). Extension.
    pub security_txt_url: Option<String>,
}

impl Policy {
    /// The defaults of every key: the contract's promises (24 h, 7 d, 90 d); the project
    /// named after the intake address's domain when the config does not name it.
    pub fn builtin(intake_address: &str) -> Policy {
        Policy {
            project: intake_address.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_else(|| "the project".into()),
            ack_within: Duration::from_secs(24 * 3600),
            update_within: Duration::from_secs(7 * 86400),
            disclosure_after: Duration::from_secs(90 * 86400),
            url: None,
            security_txt_url: None,
        }
    }

    /// The contract's default promises (24 h, 7 d, 90 d), for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Policy {
        Policy { project: "Project".into(), ..Policy::builtin("security@example.org") }
    }
}

/// Reads the policy keys of `section` (`policy`, or a project's table), each key the
/// section does not hold taken from `base`. Problems name `section.key`.
pub(super) fn read(r: &mut Reader, section: &str, base: &Policy) -> Policy {
    let key = |k: &str| format!("{section}.{k}");
    let has = |r: &Reader, k: &str| r.get(&key(k)).is_some();
    let duration = |r: &mut Reader, k: &str, base: Duration| if has(r, k) { r.duration(&key(k), "60s") } else { base };
    let url =
        |r: &mut Reader, k: &str, base: &Option<String>| if has(r, k) { r.https_url(&key(k)) } else { base.clone() };
    Policy {
        project: r.string_opt(&key("project")).unwrap_or_else(|| base.project.clone()),
        ack_within: duration(r, "ack_within", base.ack_within),
        update_within: duration(r, "update_within", base.update_within),
        disclosure_after: duration(r, "disclosure_after", base.disclosure_after),
        url: url(r, "url", &base.url),
        security_txt_url: url(r, "security_txt_url", &base.security_txt_url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(table: &toml::Table) -> Reader<'_> {
        Reader { root: table, base: ".".into(), problems: Vec::new(), credentials_source: None }
    }

    #[test]
    fn a_section_overrides_only_the_keys_it_holds() {
        let table: toml::Table =
            toml::from_str("[policy]\nproject = \"Base\"\nupdate_within = \"3d\"\n[p]\ndisclosure_after = \"30d\"\n")
                .unwrap();
        let mut r = reader(&table);
        let base = read(&mut r, "policy", &Policy::builtin("security@example.org"));
        assert_eq!(base.project, "Base");
        assert_eq!(base.update_within, Duration::from_secs(3 * 86400));
        assert_eq!(base.ack_within, Duration::from_secs(86400), "builtin default");
        let over = read(&mut r, "p", &base);
        assert_eq!(over.project, "Base");
        assert_eq!(over.update_within, base.update_within);
        assert_eq!(over.disclosure_after, Duration::from_secs(30 * 86400));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn a_bad_override_names_its_section_and_key() {
        let table: toml::Table = toml::from_str("[p]\nack_within = \"soon\"\n").unwrap();
        let mut r = reader(&table);
        read(&mut r, "p", &Policy::builtin("security@example.org"));
        assert!(r.problems.iter().any(|p| p.starts_with("p.ack_within:")), "{:?}", r.problems);
    }
}
