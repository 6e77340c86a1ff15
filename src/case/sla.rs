//! SLA clocks: which reminders are due for a case at a given time.
//!
//! Pure: the case, the reminders already sent and `now` in; the reminders to send out.
//! Each reminder has a stable key so it is sent once, however often the clock ticks.

use chrono::{DateTime, Duration, Utc};

use super::{Case, rfc3339};

/// A reminder to the team list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reminder {
    /// Stable key (`ack-1h`, `disclosure-7d`, ...): sent once per case.
    pub key: &'static str,
    /// One line for the team.
    pub text: String,
}

/// The reminders due for `case` at `now` that are not in `sent`.
pub fn due(case: &Case, sent: &[String], now: DateTime<Utc>) -> Vec<Reminder> {
    let mut out = Vec::new();
    let mut add = |key: &'static str, when: DateTime<Utc>, text: String| {
        if now >= when && !sent.iter().any(|s| s == key) {
            out.push(Reminder { key, text });
        }
    };
    // The deadlines that matter are the case's one rule (`Case::deadlines`).
    for (clock, due) in case.deadlines() {
        match clock {
            "ack" => {
                add(
                    "ack-1h",
                    due - Duration::hours(1),
                    format!("No acknowledgement delivered yet; due {}", rfc3339(&due)),
                );
                add("ack-overdue", due, format!("Acknowledgement OVERDUE since {}", rfc3339(&due)));
            }
            "update" => {
                add(
                    "update-1d",
                    due - Duration::days(1),
                    format!("Status update to the reporter due {}", rfc3339(&due)),
                );
                add("update-overdue", due, format!("Status update OVERDUE since {}", rfc3339(&due)));
            }
            "cra-early-warning" | "cra-notification" | "cra-final" => {
                let (soon, overdue, what) = match clock {
                    "cra-early-warning" => ("cra-early-warning-soon", "cra-early-warning-overdue", "CRA early warning"),
                    "cra-notification" => {
                        ("cra-notification-soon", "cra-notification-overdue", "CRA vulnerability notification")
                    }
                    _ => ("cra-final-soon", "cra-final-overdue", "CRA final report"),
                };
                // The short clocks warn 6 h ahead, the final report's a day ahead.
                let ahead = if clock == "cra-final" { Duration::days(1) } else { Duration::hours(6) };
                add(soon, due - ahead, format!("{what} to ENISA due {}", rfc3339(&due)));
                add(overdue, due, format!("{what} OVERDUE since {}", rfc3339(&due)));
            }
            _ => {
                for (key, days) in [("disclosure-14d", 14), ("disclosure-7d", 7), ("disclosure-1d", 1)] {
                    add(key, due - Duration::days(days), format!("Disclosure in {days} day(s): {}", rfc3339(&due)));
                }
                add("disclosure-due", due, format!("Disclosure date reached: {}", rfc3339(&due)));
            }
        }
    }
    // When several came due at once (a daemon that was down), only the most urgent of
    // each clock is worth a mail; the others are marked sent with it.
    out
}

/// Keys that a sent reminder makes moot (an overdue one covers its early warning).
pub fn covers(key: &str) -> &'static [&'static str] {
    match key {
        "ack-overdue" => &["ack-1h"],
        "update-overdue" => &["update-1d"],
        "disclosure-due" => &["disclosure-14d", "disclosure-7d", "disclosure-1d"],
        "disclosure-1d" => &["disclosure-14d", "disclosure-7d"],
        "disclosure-7d" => &["disclosure-14d"],
        "cra-early-warning-overdue" => &["cra-early-warning-soon"],
        "cra-notification-overdue" => &["cra-notification-soon"],
        "cra-final-overdue" => &["cra-final-soon"],
        _ => &[],
    }
}

/// When an update was sent to the reporter, the update clock restarts and its
/// reminders may fire again.
pub const UPDATE_KEYS: &[&str] = &["update-1d", "update-overdue"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::*;
    use crate::openpgp::Verdict;

    fn case(received: DateTime<Utc>) -> Case {
        let p = crate::config::Policy::for_tests();
        Case {
            id: "SEC-2026-0001".into(),
            status: Status::New,
            title: "t".into(),
            reporter: Reporter {
                address: "a@b.test".into(),
                name: String::new(),
                key_fingerprint: None,
                key_source: None,
                key_conflict: None,
            },
            credit: Credit::default(),
            received_at: received,
            encrypted: false,
            decrypted: false,
            signature: Verdict::None,
            cvss: None,
            cwe: vec![],
            tlp: None,
            affected_versions: vec![],
            attachments: vec![],
            messages: vec![],
            ack: None,
            due: Due::from_policy(received, &p),
            text: String::new(),
            reject_reason: None,
            assignee: None,
            cve: None,
            fixed_versions: vec![],
            waiting_on_reporter: false,
            resend_of: Vec::new(),
            cvss_claimed: None,
            cvss_assessed: None,
            completeness: None,
            ai_use: None,
            flags: Vec::new(),
            flag_evidence: Default::default(),
            cra: Default::default(),
            project: None,
            projects_affected: Vec::new(),
            duplicates: Vec::new(),
            also_reported_by: Vec::new(),
        }
    }

    fn keys(r: &[Reminder]) -> Vec<&'static str> {
        r.iter().map(|r| r.key).collect()
    }

    /// Regression (issue 11): a case with a follow-up got "update overdue" mail while
    /// `sla` and `status` did not list it: four rules for one question. Now one.
    #[test]
    fn every_view_of_what_is_due_agrees() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut c = case(t0);
        c.ack = Some(crate::case::Ack { sent_at: t0, message_id: "a".into(), encrypted: false, undelivered: false });
        let followup = crate::case::CaseMessage {
            message_id: "f".into(),
            from: "a@b.test".into(),
            third_party: false,
            received_at: t0,
            encrypted: false,
            decrypted: false,
            signature: Verdict::None,
            signer_fingerprint: None,
            sha256: String::new(),
            text: String::new(),
        };
        c.messages = vec![followup.clone(), followup];
        let late = c.due.update + Duration::hours(1);
        assert!(c.deadlines().iter().any(|(k, _)| *k == "update"));
        assert!(c.overdue(late));
        assert!(keys(&due(&c, &[], late)).contains(&"update-overdue"));
        assert!(c.next_due() <= c.due.update);
        // Waiting on the reporter pauses it everywhere at once.
        c.waiting_on_reporter = true;
        assert!(!c.deadlines().iter().any(|(k, _)| *k == "update"));
        assert!(!keys(&due(&c, &[], late)).contains(&"update-overdue"));
        assert!(!c.overdue(late));
        // A closed case has no deadlines, so no reminders and nothing overdue.
        c.status = Status::Closed;
        assert!(c.deadlines().is_empty() && due(&c, &[], late + Duration::days(400)).is_empty());
    }

    #[test]
    fn reminders_fire_at_their_times_once() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let c = case(t0);
        assert!(due(&c, &[], t0).is_empty());
        assert!(due(&c, &[], t0 + Duration::hours(22)).is_empty());
        assert_eq!(keys(&due(&c, &[], t0 + Duration::hours(23))), vec!["ack-1h"]);
        assert!(due(&c, &["ack-1h".into()], t0 + Duration::hours(23) + Duration::minutes(30)).is_empty());
        assert_eq!(keys(&due(&c, &["ack-1h".into()], t0 + Duration::hours(24))), vec!["ack-overdue"]);
        let mut acked = c.clone();
        acked.ack = Some(Ack { sent_at: t0, message_id: "m".into(), encrypted: false, undelivered: false });
        assert_eq!(keys(&due(&acked, &[], t0 + Duration::days(6))), vec!["update-1d"]);
        assert_eq!(keys(&due(&acked, &["update-1d".into()], t0 + Duration::days(7))), vec!["update-overdue"]);
        let all: Vec<String> = ["update-1d", "update-overdue"].iter().map(|s| s.to_string()).collect();
        assert_eq!(keys(&due(&acked, &all, t0 + Duration::days(76))), vec!["disclosure-14d"]);
        assert_eq!(keys(&due(&acked, &all, t0 + Duration::days(89))).len(), 3);
        let mut paused = acked.clone();
        paused.waiting_on_reporter = true;
        assert!(due(&paused, &[], t0 + Duration::days(8)).is_empty());
        let mut done = acked.clone();
        done.status = Status::Closed;
        assert!(due(&done, &[], t0 + Duration::days(100)).is_empty());
    }
}
