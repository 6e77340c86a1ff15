//! Disclosure artefacts drafted from a case: OSV (`osv.rs`), CVE JSON 5 (`cve5.rs`) and
//! CSAF 2.0 (`csaf.rs`) advisories, the SPEC-11 announcement (`announce.rs`), and credit
//! lines for release notes; what they share (placeholders, credit, CWE names, the score
//! they may publish) is here. [`Format::writer`] is the one table of formats.
//!
//! Pure: takes the case, the project's name and `now`, returns values; never reads the
//! clock, the disk or the network. Everything made here is a draft for publication, so it
//! must never carry the reporter's own words (`text`, messages), address or key, nor name
//! a reporter who asked for anonymity or did not say how to be credited. Gaps the team
//! must fill are written `[TO FILL: ...]`; where a schema needs a well-formed value (ids,
//! UUIDs, URLs) a placeholder that still validates stands in, and says it is one.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Case, Cvss, Status};

mod announce;
mod cra;
mod csaf;
mod cve5;
mod osv;
#[cfg(test)]
mod tests;
/// The exports' test case, for the other case modules' tests.
#[cfg(test)]
pub(crate) fn tests_case() -> Case {
    tests::case()
}

pub use announce::announce;
pub use csaf::{csaf, tlp_v1};
pub use cve5::cve5;
pub use osv::{osv, osv_id};

/// CVE id of a record whose CVE is not assigned yet: matches the CVE schema's
/// `^CVE-[0-9]{4}-[0-9]{4,19}$` while year 0000 can never be a real assignment.
pub const PLACEHOLDER_CVE: &str = "CVE-0000-0000";

/// The CNA's organisation UUID until the team puts the real one. The CVE schema wants a
/// version-4 UUID (`...-4xxx-[89ab]xxx-...`), which the nil UUID is not; this is the
/// smallest value of that form.
pub const PLACEHOLDER_ORG_ID: &str = "00000000-0000-4000-8000-000000000000";

/// `.invalid` is reserved (RFC 2606) and never resolves: a forgotten placeholder link
/// cannot point readers anywhere.
const PLACEHOLDER_BASE: &str = "https://example.invalid";

/// A gap for the team, written the same way everywhere so one search finds them all.
pub fn to_fill(what: &str) -> String {
    format!("[TO FILL: {what}]")
}

/// The placeholder advisory link for a case.
pub fn placeholder_url(case_id: &str) -> String {
    format!("{PLACEHOLDER_BASE}/security/{case_id}")
}

/// The advisory formats `case export` writes. (`clap::ValueEnum` only gives them their
/// command-line names: osv, cve5, csaf.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// OSV 1.x.
    Osv,
    /// A whole CVE record, format 5.2.0.
    Cve5,
    /// CSAF 2.0, `csaf_security_advisory`.
    Csaf,
    /// EU CRA Article 14 filings: form-ready text for each stage (early warning,
    /// notification, final report).
    Cra,
}

/// A draft: a JSON document (the advisory formats) or form-ready text (CRA).
#[derive(Clone, Debug, PartialEq)]
pub enum Draft {
    Json(Value),
    Text(String),
}

impl Draft {
    /// The draft as printed: pretty JSON or the text, ending in a newline.
    pub fn to_text(&self) -> String {
        match self {
            Draft::Json(v) => format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
            Draft::Text(t) if t.ends_with('\n') => t.clone(),
            Draft::Text(t) => format!("{t}\n"),
        }
    }
}

/// What an export says about the product: the case's project.
#[derive(Clone, Copy, Debug, Default)]
pub struct Product<'a> {
    /// The project's name (`[policy] project`): vendor, product, the CNA's short name.
    pub name: &'a str,
    /// Its package URL without a version (`[[projects]] purl`): CVE 5.2 `packageURL`.
    pub purl: Option<&'a str>,
}

/// What writes one format: the case, the project, `now` in; the draft out.
pub type Writer = fn(&Case, &Product<'_>, DateTime<Utc>) -> Draft;

impl Format {
    /// The one table from a format to the file that writes it: a new format is a new
    /// file and a line here.
    pub fn writer(self) -> Writer {
        match self {
            Format::Osv => |case, p, now| Draft::Json(osv::osv(case, p.name, now)),
            Format::Cve5 => |case, p, now| Draft::Json(cve5::cve5(case, p.name, p.name, p.purl, now)),
            Format::Csaf => |case, p, now| Draft::Json(csaf::csaf(case, p.name, now)),
            Format::Cra => |case, p, now| Draft::Text(cra::cra(case, p.name, now)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Osv => "osv",
            Format::Cve5 => "cve5",
            Format::Csaf => "csaf",
            Format::Cra => "cra",
        }
    }
}

/// The draft in `format`. The CVE record's assigner short name is the project's until
/// the team names its CNA.
pub fn render(format: Format, case: &Case, project: &str, now: DateTime<Utc>) -> Draft {
    render_for(format, case, &Product { name: project, purl: None }, now)
}

/// The draft in `format` for the case's project `product` (its name and package URL).
pub fn render_for(format: Format, case: &Case, product: &Product<'_>, now: DateTime<Utc>) -> Draft {
    (format.writer())(case, product, now)
}

/// How a reporter may be named in public, from what they asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditAs<'a> {
    /// They gave a name for the credit.
    Named(&'a str),
    /// They asked to stay anonymous: "an anonymous reporter", never a name.
    Anonymous,
    /// They said nothing (`credit.name` null, `anonymous` false). Their From name is not
    /// consent to be named in public, so no name is used: the text asks the team to ask.
    NotAsked,
}

impl<'a> CreditAs<'a> {
    pub fn of(case: &'a Case) -> CreditAs<'a> {
        if case.credit.anonymous {
            return CreditAs::Anonymous;
        }
        match case.credit.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => CreditAs::Named(n),
            _ => CreditAs::NotAsked,
        }
    }

    /// The words for "Thanks to ___": a name only when one was given for this purpose.
    pub fn phrase(self) -> String {
        match self {
            CreditAs::Named(n) => n.to_owned(),
            CreditAs::Anonymous => "an anonymous reporter".to_owned(),
            CreditAs::NotAsked => to_fill("credit; the reporter has not said how to be credited, ask them"),
        }
    }

    /// The name for a structured credit field (OSV, CVE, CSAF): only `Named` has one;
    /// the others get no credit entry at all.
    pub fn name(self) -> Option<&'a str> {
        match self {
            CreditAs::Named(n) => Some(n),
            _ => None,
        }
    }
}

/// How each other reporter of the case's vulnerability may be named, in order of
/// receipt; those who asked for anonymity are left out (`also_reported_by`).
pub fn also_credits(case: &Case) -> Vec<CreditAs<'_>> {
    case.also_reported_by
        .iter()
        .filter(|a| !a.anonymous)
        .map(|a| match a.credit.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => CreditAs::Named(n),
            _ => CreditAs::NotAsked,
        })
        .collect()
}

/// " Also reported by A and B." (empty when no one else may be named).
pub fn also_sentence(case: &Case) -> String {
    let names: Vec<String> = also_credits(case).into_iter().map(CreditAs::phrase).collect();
    match names.len() {
        0 => String::new(),
        1 => format!(" Also reported by {}.", names[0]),
        n => format!(" Also reported by {} and {}.", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// The case has gone public: disclosed, or closed after being disclosed (a closed case
/// without a rejection reason came through `disclosed`).
pub fn disclosed(case: &Case) -> bool {
    case.status == Status::Disclosed || (case.status == Status::Closed && case.reject_reason.is_none())
}

/// Still under embargo: not disclosed and before its disclosure date. `case announce`
/// refuses then, unless forced.
pub fn embargoed(case: &Case, now: DateTime<Utc>) -> bool {
    !disclosed(case) && now < case.due.disclosure
}

/// Names of the CWE Top 25 (2024), so the common cases need no lookup; CSAF requires a
/// name with each CWE id and the CVE record shows one. Others are left for the team.
const CWE_NAMES: &[(&str, &str)] = &[
    ("CWE-20", "Improper Input Validation"),
    ("CWE-22", "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')"),
    ("CWE-77", "Improper Neutralization of Special Elements used in a Command ('Command Injection')"),
    ("CWE-78", "Improper Neutralization of Special Elements used in an OS Command ('OS Command Injection')"),
    ("CWE-79", "Improper Neutralization of Input During Web Page Generation ('Cross-site Scripting')"),
    ("CWE-89", "Improper Neutralization of Special Elements used in an SQL Command ('SQL Injection')"),
    ("CWE-94", "Improper Control of Generation of Code ('Code Injection')"),
    ("CWE-119", "Improper Restriction of Operations within the Bounds of a Memory Buffer"),
    ("CWE-125", "Out-of-bounds Read"),
    ("CWE-190", "Integer Overflow or Wraparound"),
    ("CWE-200", "Exposure of Sensitive Information to an Unauthorized Actor"),
    ("CWE-269", "Improper Privilege Management"),
    ("CWE-287", "Improper Authentication"),
    ("CWE-306", "Missing Authentication for Critical Function"),
    ("CWE-352", "Cross-Site Request Forgery (CSRF)"),
    ("CWE-400", "Uncontrolled Resource Consumption"),
    ("CWE-416", "Use After Free"),
    ("CWE-434", "Unrestricted Upload of File with Dangerous Type"),
    ("CWE-476", "NULL Pointer Dereference"),
    ("CWE-502", "Deserialization of Untrusted Data"),
    ("CWE-787", "Out-of-bounds Write"),
    ("CWE-798", "Use of Hard-coded Credentials"),
    ("CWE-862", "Missing Authorization"),
    ("CWE-863", "Incorrect Authorization"),
    ("CWE-918", "Server-Side Request Forgery (SSRF)"),
];

pub(super) fn cwe_name(id: &str) -> Option<&'static str> {
    CWE_NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The case's CWE ids in the form every schema accepts (`CWE-` and a number without a
/// leading zero, at most six digits for CSAF); anything else is dropped, not guessed.
pub(super) fn cwe_ids(case: &Case) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for id in &case.cwe {
        let ok = id.strip_prefix("CWE-").is_some_and(|n| {
            (1..=6).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
        });
        if ok && !out.contains(&id.as_str()) {
            out.push(id);
        }
    }
    out
}

/// Non-empty, distinct versions, clipped to the CVE schema's 1024 characters (its
/// `uniqueItems` would refuse a repeated one).
pub(super) fn versions(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in list {
        let v: String = v.trim().chars().take(1024).collect();
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

pub(super) fn or_fill(s: &str, what: &str) -> String {
    let s = s.trim();
    if s.is_empty() { to_fill(what) } else { s.to_owned() }
}

pub(super) fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The gap a reporter's unassessed CVSS claim leaves: never published as ours.
pub(super) fn assess_cvss() -> String {
    to_fill("assess CVSS")
}

/// The team's CVSS score (`Case::published_cvss`: never the reporter's unassessed claim)
/// as the FIRST schemas write it, or None when there is none or the case's score does not
/// hold together (a version we do not export, a vector of another version, a severity
/// outside the five names): an export never carries a score it cannot vouch for.
pub(super) struct Score<'a> {
    version: &'a str,
    vector: &'a str,
    score: f64,
    severity: String,
}

pub(super) fn score(case: &Case) -> Option<Score<'_>> {
    let Cvss { version, vector, score, severity } = case.published_cvss()?;
    let version = version.as_str();
    let known = matches!(version, "3.0" | "3.1" | "4.0");
    let severity = severity.to_ascii_uppercase();
    let severity_ok = matches!(severity.as_str(), "NONE" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL");
    if !known || !vector.starts_with(&format!("CVSS:{version}/")) || !severity_ok || !(0.0..=10.0).contains(score) {
        return None;
    }
    Some(Score { version, vector, score: *score, severity })
}

impl Score<'_> {
    /// The FIRST CVSS JSON object (`cvss-v3.x.json`, `cvss-v4.0.json`), as CVE and CSAF embed it.
    fn first_json(&self) -> Value {
        json!({
            "version": self.version,
            "vectorString": self.vector,
            "baseScore": self.score,
            "baseSeverity": self.severity,
        })
    }

    /// "CVSS 3.1 score 9.8, critical" for prose.
    fn phrase(&self) -> String {
        format!("CVSS {} score {:.1}, {}", self.version, self.score, self.severity.to_ascii_lowercase())
    }
}

/// Credit lines for release notes, one per case disclosed (see [`disclosed`]) whose
/// disclosure date is on or after `since` (all when None), oldest first:
/// "Thanks to NAME for reporting TITLE (CVE)." An anonymous reporter is "an anonymous
/// reporter"; a reporter who did not say how to be credited gets a `[TO FILL: ...]` in
/// place of a name (never the From name: writing to security@ is not consent to be named
/// in public), so the team asks them rather than silently dropping their credit.
pub fn credits(cases: &[Case], since: Option<DateTime<Utc>>) -> Vec<String> {
    let mut picked: Vec<&Case> =
        cases.iter().filter(|c| disclosed(c) && since.is_none_or(|s| c.due.disclosure >= s)).collect();
    picked.sort_by(|a, b| a.due.disclosure.cmp(&b.due.disclosure).then(a.id.cmp(&b.id)));
    picked
        .into_iter()
        .map(|c| {
            let what = or_fill(&c.title, "summary");
            let what = match &c.cve {
                Some(cve) => format!("{what} ({cve})"),
                None => what,
            };
            format!("Thanks to {} for reporting {what}.{}", CreditAs::of(c).phrase(), also_sentence(c))
        })
        .collect()
}

/// The description every draft starts with: the reporter's text is never published as is.
pub(super) fn details_placeholder(project: &str) -> String {
    to_fill(&format!(
        "description of the vulnerability in {project}, its impact and the fix, written by the security team for publication"
    ))
}
