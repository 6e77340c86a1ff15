//! EU Cyber Resilience Act, Article 14: the three reporting clocks of an actively
//! exploited vulnerability, and the form-ready text of each filing.
//!
//! Since 11 September 2026 a manufacturer that becomes aware of an actively exploited
//! vulnerability in its product sends ENISA's single reporting platform an early warning
//! within 24 hours, a vulnerability notification within 72 hours, and a final report
//! within 14 days after a corrective or mitigating measure is available. The clocks start
//! when the team confirms exploitation (`case set --exploited true`); the final report's
//! clock starts when a fix is available (the case's fixed versions are first set, or it
//! is disclosed). Pure: times in, times out.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ts;

/// Early warning: within 24 h of becoming aware (Art. 14(2)(a)).
pub const EARLY_WARNING_WITHIN: Duration = Duration::hours(24);
/// Vulnerability notification: within 72 h of becoming aware (Art. 14(2)(b)).
pub const NOTIFICATION_WITHIN: Duration = Duration::hours(72);
/// Final report: within 14 days after a corrective or mitigating measure is available
/// (Art. 14(2)(c)).
pub const FINAL_WITHIN: Duration = Duration::days(14);

/// One filing: when it is due, when and under which reference it was filed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    #[serde(default, with = "ts::opt")]
    pub due: Option<DateTime<Utc>>,
    #[serde(default, with = "ts::opt")]
    pub filed_at: Option<DateTime<Utc>>,
    /// The platform's reference of the filing, as the team typed it.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// The stages, as `--cra-stage` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StageName {
    EarlyWarning,
    Notification,
    Final,
}

impl StageName {
    pub const ALL: [StageName; 3] = [StageName::EarlyWarning, StageName::Notification, StageName::Final];

    pub fn as_str(self) -> &'static str {
        match self {
            StageName::EarlyWarning => "early-warning",
            StageName::Notification => "notification",
            StageName::Final => "final",
        }
    }

    pub fn parse(s: &str) -> Option<StageName> {
        StageName::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The deadline's name in `sla`, `case list` and the reminders.
    pub fn clock(self) -> &'static str {
        match self {
            StageName::EarlyWarning => "cra-early-warning",
            StageName::Notification => "cra-notification",
            StageName::Final => "cra-final",
        }
    }
}

/// A case's CRA state, as the case JSON's `cra` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cra {
    /// The team confirmed the vulnerability is actively exploited.
    #[serde(default)]
    pub exploited: bool,
    /// When the manufacturer became aware of the exploitation: the clocks count from it.
    #[serde(default, with = "ts::opt")]
    pub aware_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub early_warning: Stage,
    #[serde(default)]
    pub notification: Stage,
    #[serde(default, rename = "final")]
    pub final_report: Stage,
    /// When a fix or mitigation became available: the final report counts from it
    /// (extension).
    #[serde(default, with = "ts::opt", skip_serializing_if = "Option::is_none")]
    pub fix_available_at: Option<DateTime<Utc>>,
}

impl Cra {
    /// Sets whether the vulnerability is exploited; confirming it starts the clocks at
    /// `aware_at`. Filings already made are kept either way.
    pub fn set_exploited(&mut self, exploited: bool, aware_at: DateTime<Utc>) {
        self.exploited = exploited;
        if exploited {
            self.aware_at = Some(aware_at);
            self.early_warning.due = Some(aware_at + EARLY_WARNING_WITHIN);
            self.notification.due = Some(aware_at + NOTIFICATION_WITHIN);
            self.final_report.due = self.fix_available_at.map(|f| f + FINAL_WITHIN);
        } else {
            for s in [&mut self.early_warning, &mut self.notification, &mut self.final_report] {
                s.due = None;
            }
        }
    }

    /// A fix or mitigation is available from `at` (the first time only counts).
    pub fn fix_available(&mut self, at: DateTime<Utc>) {
        if self.fix_available_at.is_none() {
            self.fix_available_at = Some(at);
        }
        if self.exploited {
            self.final_report.due = self.fix_available_at.map(|f| f + FINAL_WITHIN);
        }
    }

    pub fn stage(&self, n: StageName) -> &Stage {
        match n {
            StageName::EarlyWarning => &self.early_warning,
            StageName::Notification => &self.notification,
            StageName::Final => &self.final_report,
        }
    }

    pub fn stage_mut(&mut self, n: StageName) -> &mut Stage {
        match n {
            StageName::EarlyWarning => &mut self.early_warning,
            StageName::Notification => &mut self.notification,
            StageName::Final => &mut self.final_report,
        }
    }

    /// The filings still owed, with their due times (exploited, due known, not filed).
    pub fn deadlines(&self) -> Vec<(&'static str, DateTime<Utc>)> {
        if !self.exploited {
            return Vec::new();
        }
        StageName::ALL
            .into_iter()
            .filter_map(|n| {
                let s = self.stage(n);
                match (s.due, s.filed_at) {
                    (Some(due), None) => Some((n.clock(), due)),
                    _ => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn clocks_start_on_confirmation_and_the_final_one_on_the_fix() {
        let mut c = Cra::default();
        assert!(c.deadlines().is_empty());
        c.set_exploited(true, at("2026-12-01T10:00:00Z"));
        let d = c.deadlines();
        assert_eq!(
            d,
            vec![("cra-early-warning", at("2026-12-02T10:00:00Z")), ("cra-notification", at("2026-12-04T10:00:00Z"))]
        );
        c.fix_available(at("2026-12-05T00:00:00Z"));
        c.fix_available(at("2026-12-06T00:00:00Z"));
        assert_eq!(c.final_report.due, Some(at("2026-12-19T00:00:00Z")), "the first fix counts");
        c.stage_mut(StageName::EarlyWarning).filed_at = Some(at("2026-12-01T12:00:00Z"));
        assert_eq!(c.deadlines().len(), 2, "a filed stage is no longer owed");
        c.set_exploited(false, at("2026-12-01T10:00:00Z"));
        assert!(c.deadlines().is_empty());
    }
}
