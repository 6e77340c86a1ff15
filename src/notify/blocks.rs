//! What is said about blocked reporters: the one notice of a block period to the
//! reporter (signed, never encrypted: it carries nothing of their report), and the
//! daily digest line of each blocked report to the team (encrypted, as all team mail).

use chrono::{DateTime, NaiveDate, Utc};

use crate::case::{Case, rfc3339};

/// The notice a blocked reporter gets, once per block period.
pub fn notice_text(project: &str, policy_url: Option<&str>, until: Option<DateTime<Utc>>) -> String {
    let until = match until {
        Some(u) => format!(" until {}", rfc3339(&u)),
        None => String::new(),
    };
    let policy = match policy_url {
        Some(u) => format!("Our disclosure policy: {u}\n"),
        None => String::new(),
    };
    format!(
        "Hello,\n\n\
         Under the security policy of {project}, reports from this address are no longer\n\
         accepted{until}. Your messages are still recorded, but they will not be answered\n\
         or acknowledged, and this is the only notice of this you will get.\n\n\
         {policy}\n\
         -- \n{project} security team (automatic message)\n"
    )
}

/// The team's digest of the blocked reports of one day: one line each.
pub fn digest_text(day: NaiveDate, cases: &[Case]) -> String {
    let mut t = format!("Reports from blocked reporters on {day}, recorded as rejected (blocked):\n\n");
    for c in cases {
        t.push_str(&format!(
            "  {}  {}  {}  {}\n",
            c.id,
            rfc3339(&c.received_at),
            c.reporter.address,
            c.title.chars().take(80).collect::<String>()
        ));
    }
    t.push_str("\nsecintake case show ID; to take one after all: secintake case set ID --status triaged\n");
    t
}
