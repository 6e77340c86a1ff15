//! Read-in (SPEC-11 step 3): the people outside the security team brought into one
//! case (the maintainers who fix it), each with their cert, role, sponsor and expiry.
//!
//! Pure: the entry, its role and the one rule of when it receives mail
//! ([`ReadIn::active`]); the store keeps them (`store/readin.rs`), the pipeline encrypts
//! the case's team mail to them too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ts;

/// What a person read in does on the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Fixer,
    Coordinator,
    Observer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Fixer, Role::Coordinator, Role::Observer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Fixer => "fixer",
            Role::Coordinator => "coordinator",
            Role::Observer => "observer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One person read in on a case, as case JSON `readin` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadIn {
    /// The cert's primary fingerprint (upper-case hex).
    pub fingerprint: String,
    /// The cert's User IDs (valid ones; the addresses mail goes to are among them).
    pub uids: Vec<String>,
    pub role: Role,
    /// Who read them in: the CLI user (`--as`) or the signer of a command mail.
    pub by: String,
    #[serde(with = "ts")]
    pub at: DateTime<Utc>,
    /// Until when they receive the case's mail; None: until removed.
    #[serde(default, with = "ts::opt")]
    pub expires: Option<DateTime<Utc>>,
}

impl ReadIn {
    /// Whether the entry still receives the case's mail at `now` (the one rule).
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// The addresses the entry's User IDs name (`Name <addr>` or a bare address).
    pub fn addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for u in &self.uids {
            let a = match (u.rfind('<'), u.rfind('>')) {
                (Some(s), Some(e)) if s < e => &u[s + 1..e],
                _ => u.as_str(),
            };
            let a = a.trim().to_ascii_lowercase();
            if crate::config::valid_address(&a) && !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_ends_the_entry_and_addresses_come_from_uids() {
        let t = Utc::now();
        let r = ReadIn {
            fingerprint: "AB".into(),
            uids: vec!["Fixer <Fix@Maint.test>".into(), "fix@maint.test".into(), "no address".into()],
            role: Role::Fixer,
            by: "alice".into(),
            at: t,
            expires: Some(t + chrono::Duration::days(1)),
        };
        assert!(r.active(t));
        assert!(!r.active(t + chrono::Duration::days(1)));
        assert_eq!(r.addresses(), vec!["fix@maint.test".to_owned()]);
        assert_eq!(Role::parse("Fixer"), Some(Role::Fixer));
    }
}
