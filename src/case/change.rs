//! Case changes: the one parser of the values a team member gives, and the one place
//! that applies them to a case.
//!
//! `case set` fills a [`Request`] from its flags and the commands by signed mail
//! (`/cvss VECTOR`, `/tlp AMBER`, ..., `case::command`) fill one per line; both turn it
//! into [`Change`]s through [`Request::changes`] only, so the two can never accept
//! different values or apply them differently. Pure: the case, the change and `now` in,
//! the changed case and the audit line out; what needs the store (does `--duplicate-of`
//! name a case?) is asked through the `exists` callback, before applying.

use chrono::{DateTime, Utc};

use super::cra::StageName;
use super::{Case, Credit, Cvss, REJECT_REASONS, Status, rfc3339, valid_cve};

/// One change to a case.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new status; `reason` (the full reason, `duplicate:SEC-...`) with `rejected`.
    Status {
        to: Status,
        reason: Option<String>,
    },
    Title(String),
    /// The team's CVSS assessment (None clears it); the reporter's claim is never changed.
    Cvss(Option<Cvss>),
    Cwe(Vec<String>),
    Tlp(Option<String>),
    Affected(Vec<String>),
    Fixed(Vec<String>),
    Credit(String),
    Anonymous,
    Assignee(String),
    Cve(String),
    Disclosure(DateTime<Utc>),
    Waiting(bool),
    /// The team confirms (or denies) active exploitation; confirming starts the CRA clocks
    /// at `aware_at` (default: the report's arrival when the reporter said it was exploited,
    /// else now).
    Exploited {
        exploited: bool,
        aware_at: Option<DateTime<Utc>>,
    },
    /// A CRA filing made, with the platform's reference.
    CraStage {
        stage: StageName,
        reference: String,
    },
}

/// A CVSS 3.0/3.1/4.0 vector, scored; `none` clears.
pub fn cvss(v: &str) -> Result<Option<Cvss>, String> {
    let v = v.trim();
    if v == "none" {
        return Ok(None);
    }
    crate::report::score_vector(v).map(Some).ok_or_else(|| {
        format!("{v:?} is not a valid CVSS 3.0, 3.1 or 4.0 vector (e.g. CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)")
    })
}

/// CWE ids, each one id like `CWE-78`.
pub fn cwes<S: AsRef<str>>(list: &[S]) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for w in list {
        let found = crate::report::cwes(w.as_ref());
        if found.len() != 1 {
            return Err(format!("{:?} is not a CWE id like CWE-78", w.as_ref()));
        }
        ids.extend(found);
    }
    Ok(ids)
}

/// A TLP 2.0 label (a `TLP:` prefix is fine); `none` clears.
pub fn tlp(t: &str) -> Result<Option<String>, String> {
    let t = t.trim();
    if t == "none" {
        return Ok(None);
    }
    crate::report::tlp(&format!("TLP:{}", t.trim_start_matches("TLP:")))
        .map(Some)
        .ok_or_else(|| format!("{t:?}: use CLEAR, GREEN, AMBER, AMBER+STRICT or RED"))
}

/// A day (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time.
pub fn date(s: &str) -> Result<DateTime<Utc>, String> {
    crate::config::parse_date(s).ok_or_else(|| format!("{:?}: write YYYY-MM-DD or RFC 3339", s.trim()))
}

/// `true|false`, `yes|no`.
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        other => Err(format!("{other:?}: write true or false (yes or no)")),
    }
}

/// A CVE id like `CVE-2026-12345`.
pub fn cve(s: &str) -> Result<String, String> {
    let s = s.trim();
    if valid_cve(s) { Ok(s.to_owned()) } else { Err(format!("{s:?} is not a CVE id like CVE-2026-12345")) }
}

/// The full rejection reason from a reason name (and, for `duplicate`, the original).
pub fn reject_reason(reason: &str, duplicate_of: Option<&str>) -> Result<String, String> {
    if !REJECT_REASONS.contains(&reason) {
        return Err(format!("unknown reason {reason:?}; use one of {}", REJECT_REASONS.join(", ")));
    }
    if reason == "duplicate" {
        let orig = duplicate_of.ok_or("reason duplicate needs the original case (--duplicate-of ID)")?;
        return Ok(format!("duplicate:{orig}"));
    }
    Ok(reason.to_owned())
}

/// What a team member asks to change, as text, the way they typed it (a `case set`
/// flag or a mail command's arguments): the one input of the one parser.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub duplicate_of: Option<String>,
    pub title: Option<String>,
    pub cvss: Option<String>,
    pub cwe: Vec<String>,
    pub tlp: Option<String>,
    pub affected: Vec<String>,
    pub fixed: Vec<String>,
    pub credit: Option<String>,
    pub anonymous: bool,
    pub assignee: Option<String>,
    pub cve: Option<String>,
    pub disclosure: Option<String>,
    pub waiting: Option<String>,
    pub exploited: Option<String>,
    pub aware_at: Option<String>,
    pub cra_stage: Option<StageName>,
    pub reference: Option<String>,
}

/// Why a [`Request`] was refused: the flag (`case set`'s name for the value) and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub flag: &'static str,
    pub why: String,
}

impl Request {
    /// The changes asked for, in the order they apply. `id` is the case changed;
    /// `exists` says whether a case id names a case (for `duplicate-of`).
    pub fn changes(&self, id: &str, exists: &dyn Fn(&str) -> bool) -> Result<Vec<Change>, Refused> {
        let bad = |flag: &'static str| move |why: String| Refused { flag, why };
        let mut v = Vec::new();
        if let Some(s) = &self.status {
            let to = Status::parse(s.trim()).ok_or_else(|| {
                bad("status")(format!(
                    "unknown status {s:?}; use one of {}",
                    Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let reason = match (&self.reason, to) {
                (Some(r), Status::Rejected) => {
                    if let Some(orig) = self.duplicate_of.as_deref().filter(|_| r == "duplicate")
                        && (orig == id || !exists(orig))
                    {
                        return Err(bad("duplicate-of")(format!("{orig}: no such other case")));
                    }
                    Some(reject_reason(r, self.duplicate_of.as_deref()).map_err(bad("reason"))?)
                }
                (None, Status::Rejected) => {
                    return Err(bad("reason")(format!("rejecting needs a reason ({})", REJECT_REASONS.join(", "))));
                }
                (Some(_), _) => return Err(bad("reason")("a reason goes with status rejected".into())),
                (None, _) => None,
            };
            v.push(Change::Status { to, reason });
        } else if self.reason.is_some() {
            return Err(bad("reason")("a reason goes with status rejected".into()));
        }
        if let Some(t) = &self.title {
            v.push(Change::Title(t.clone()));
        }
        if let Some(x) = &self.cvss {
            v.push(Change::Cvss(cvss(x).map_err(bad("cvss"))?));
        }
        if !self.cwe.is_empty() {
            v.push(Change::Cwe(cwes(&self.cwe).map_err(bad("cwe"))?));
        }
        if let Some(t) = &self.tlp {
            v.push(Change::Tlp(tlp(t).map_err(bad("tlp"))?));
        }
        if !self.affected.is_empty() {
            v.push(Change::Affected(self.affected.clone()));
        }
        if !self.fixed.is_empty() {
            v.push(Change::Fixed(self.fixed.clone()));
        }
        if self.anonymous && self.credit.is_some() {
            return Err(bad("credit")("credit and anonymous exclude each other".into()));
        }
        if let Some(n) = &self.credit {
            if n.trim().is_empty() {
                return Err(bad("credit")("needs a name (or use anonymous)".into()));
            }
            v.push(Change::Credit(n.clone()));
        }
        if self.anonymous {
            v.push(Change::Anonymous);
        }
        if let Some(x) = &self.assignee {
            if x.trim().is_empty() {
                return Err(bad("assignee")("needs a name".into()));
            }
            v.push(Change::Assignee(x.clone()));
        }
        if let Some(c) = &self.cve {
            v.push(Change::Cve(cve(c).map_err(bad("cve"))?));
        }
        if let Some(d) = &self.disclosure {
            v.push(Change::Disclosure(date(d).map_err(bad("disclosure"))?));
        }
        if let Some(w) = &self.waiting {
            v.push(Change::Waiting(boolean(w).map_err(bad("waiting-on-reporter"))?));
        }
        if let Some(x) = &self.exploited {
            let exploited = boolean(x).map_err(bad("exploited"))?;
            let aware_at = self.aware_at.as_deref().map(date).transpose().map_err(bad("aware-at"))?;
            v.push(Change::Exploited { exploited, aware_at });
        }
        if let (Some(stage), Some(r)) = (self.cra_stage, &self.reference) {
            if r.trim().is_empty() {
                return Err(bad("ref")("must name the filing's reference".into()));
            }
            v.push(Change::CraStage { stage, reference: r.clone() });
        }
        Ok(v)
    }
}

impl Change {
    /// Applies the change to `c`; the audit line of what changed, or why it may not.
    pub fn apply(&self, c: &mut Case, now: DateTime<Utc>) -> Result<String, String> {
        let clean = |s: &str| crate::mime::clean(s);
        Ok(match self {
            Change::Status { to, reason } => {
                c.status.transition(*to).map_err(|e| format!("{}: {e}", c.id))?;
                let mut said = Vec::new();
                if *to == Status::Rejected {
                    let r = reason
                        .clone()
                        .ok_or_else(|| format!("rejecting needs a reason ({})", REJECT_REASONS.join(", ")))?;
                    said.push(format!("reason={r}"));
                    c.reject_reason = Some(r);
                } else if reason.is_some() {
                    return Err("a reason goes with status rejected".into());
                }
                if *to != c.status {
                    said.push(format!("status {} -> {}", c.status.as_str(), to.as_str()));
                    if matches!(*to, Status::Disclosed) {
                        c.cra.fix_available(now);
                    }
                    c.status = *to;
                }
                said.join("; ")
            }
            Change::Title(t) => {
                c.title = clean(t);
                "title".into()
            }
            Change::Cvss(v) => {
                c.cvss_assessed = v.clone();
                // `cvss` is the current one: assessed when set, else the reporter's claim.
                c.cvss = v.clone().or_else(|| c.cvss_claimed.clone());
                format!("cvss_assessed={}", v.as_ref().map(|v| v.vector.as_str()).unwrap_or("none"))
            }
            Change::Cwe(ids) => {
                c.cwe = ids.clone();
                format!("cwe={}", ids.join(","))
            }
            Change::Tlp(t) => {
                c.tlp = t.clone();
                format!("tlp={}", t.as_deref().unwrap_or("none"))
            }
            Change::Affected(v) => {
                c.affected_versions = v.iter().map(|v| clean(v)).collect();
                format!("affected={}", c.affected_versions.join(","))
            }
            Change::Fixed(v) => {
                c.fixed_versions = v.iter().map(|v| clean(v)).collect();
                if !c.fixed_versions.is_empty() {
                    c.cra.fix_available(now);
                }
                format!("fixed={}", c.fixed_versions.join(","))
            }
            Change::Credit(n) => {
                c.credit = Credit { name: Some(clean(n)), anonymous: false };
                "credit".into()
            }
            Change::Anonymous => {
                c.credit = Credit { name: None, anonymous: true };
                "credit=anonymous".into()
            }
            Change::Assignee(x) => {
                c.assignee = Some(clean(x));
                format!("assignee={}", clean(x))
            }
            Change::Cve(cve) => {
                c.cve = Some(cve.clone());
                format!("cve={cve}")
            }
            Change::Disclosure(t) => {
                c.due.disclosure = *t;
                format!("disclosure={}", rfc3339(t))
            }
            Change::Waiting(w) => {
                c.waiting_on_reporter = *w;
                format!("waiting_on_reporter={w}")
            }
            Change::Exploited { exploited, aware_at } => {
                let flagged = c.flags.contains(&crate::triage::Flag::Exploited);
                let aware = aware_at.unwrap_or(if flagged { c.received_at } else { now });
                c.cra.set_exploited(*exploited, aware);
                if *exploited {
                    format!("exploited=true; aware_at={}", rfc3339(&aware))
                } else {
                    "exploited=false".into()
                }
            }
            Change::CraStage { stage, reference } => {
                if !c.cra.exploited {
                    return Err(format!(
                        "{}: not confirmed as exploited; set --exploited true first (the CRA clocks start there)",
                        c.id
                    ));
                }
                let s = c.cra.stage_mut(*stage);
                s.filed_at = Some(now);
                s.reference = Some(clean(reference));
                format!("cra {} filed, ref {}", stage.as_str(), clean(reference))
            }
        })
    }
}
