//! `[policy]`: the promises and rules of a project's disclosure policy, as one type.
//!
//! Every policy key lives here, is read once by [`read`], and has its default in
//! [`Policy::builtin`]. A section that overrides some keys (a `[[projects]]` entry) is read
//! with the default project's policy as its base: the one merge rule, a key absent from the
//! section keeps the base's value, lives in [`read`] and nowhere else.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toml::Value;

use super::Reader;
use crate::triage::Field;

/// The keys `[policy]` takes (a project entry takes them too).
pub const KEYS: &[&str] = &[
    "project",
    "ack_within",
    "update_within",
    "disclosure_after",
    "url",
    "security_txt_url",
    "required",
    "close_incomplete_after",
    "paused_until",
    "pause_reason",
];

/// `required` when the config does not say: what every policy we serve asks for.
pub const DEFAULT_REQUIRED: [Field; 3] = [Field::Description, Field::Steps, Field::Versions];

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
    /// The fields a report must hold (`[policy] required`); what a report lacks is asked
    /// for in its acknowledgement.
    pub required: Vec<Field>,
    /// A case still missing fields this long after the request, with no reply from the
    /// reporter, is rejected as `incomplete`. None (the default): never.
    pub close_incomplete_after: Option<Duration>,
    /// The program is paused until then: reports are still recorded and acknowledged,
    /// the ack says so, and the reporter's timeline counts from this date.
    pub paused_until: Option<DateTime<Utc>>,
    /// Why it is paused, in the ack's words.
    pub pause_reason: Option<String>,
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
            required: DEFAULT_REQUIRED.to_vec(),
            close_incomplete_after: None,
            paused_until: None,
            pause_reason: None,
        }
    }

    /// Whether intake is paused at `now`.
    pub fn paused_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.paused_until.filter(|until| now < *until)
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
        required: if has(r, "required") { required(r, &key("required")) } else { base.required.clone() },
        close_incomplete_after: if has(r, "close_incomplete_after") {
            Some(r.duration(&key("close_incomplete_after"), "14d"))
        } else {
            base.close_incomplete_after
        },
        paused_until: if has(r, "paused_until") { date(r, &key("paused_until")) } else { base.paused_until },
        pause_reason: if has(r, "pause_reason") {
            r.string_opt(&key("pause_reason")).map(|s| s.chars().filter(|c| !c.is_control()).collect())
        } else {
            base.pause_reason.clone()
        },
    }
}

/// `required = ["description", ...]`: names from the fixed vocabulary, each once.
fn required(r: &mut Reader, key: &str) -> Vec<Field> {
    let allowed = Field::ALL.map(Field::as_str).join(", ");
    let Some(Value::Array(items)) = r.get(key).cloned() else {
        r.problem(
            key,
            &format!("must be a list of field names, e.g. [\"description\", \"steps\"]; the names are {allowed}"),
        );
        return DEFAULT_REQUIRED.to_vec();
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_str().and_then(Field::parse) {
            Some(f) if !out.contains(&f) => out.push(f),
            Some(_) => {}
            None => r.problem(key, &format!("{item} is not a field name; the names are {allowed}")),
        }
    }
    out
}

/// A day (`"2027-01-15"`, midnight UTC), an RFC 3339 time, or a TOML date.
fn date(r: &mut Reader, key: &str) -> Option<DateTime<Utc>> {
    let text = match r.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Datetime(d)) => d.to_string(),
        _ => String::new(),
    };
    match super::parse_date(&text) {
        Some(t) => Some(t),
        None => {
            r.problem(key, &format!("{text:?} is not a date; write e.g. \"2027-01-15\" or \"2027-01-15T09:00:00Z\""));
            None
        }
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
