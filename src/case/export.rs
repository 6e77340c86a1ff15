//! Disclosure artefacts drafted from a case: OSV, CVE JSON 5 and CSAF 2.0 advisories,
//! the SPEC-11 announcement, and credit lines for release notes.
//!
//! Pure: takes the case, the project's name and `now`, returns values; never reads the
//! clock, the disk or the network. Everything made here is a draft for publication, so it
//! must never carry the reporter's own words (`text`, messages), address or key, nor name
//! a reporter who asked for anonymity or did not say how to be credited. Gaps the team
//! must fill are written `[TO FILL: ...]`; where a schema needs a well-formed value (ids,
//! UUIDs, URLs) a placeholder that still validates stands in, and says it is one.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Case, Cvss, Status, rfc3339};

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

/// Prefix of OSV ids for cases without a CVE: OSV allows `x_` for databases that are
/// not registered, which a project's own intake is.
const OSV_ID_PREFIX: &str = "x_secintake-";

/// The OSV schema release the exports follow (checked by tests/validators).
const OSV_SCHEMA_VERSION: &str = "1.7.5";

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
    /// A whole CVE JSON 5.1 record.
    Cve5,
    /// CSAF 2.0, `csaf_security_advisory`.
    Csaf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Osv => "osv",
            Format::Cve5 => "cve5",
            Format::Csaf => "csaf",
        }
    }
}

/// The draft in `format`. The CVE record's assigner short name is the project's until
/// the team names its CNA.
pub fn render(format: Format, case: &Case, project: &str, now: DateTime<Utc>) -> Value {
    match format {
        Format::Osv => osv(case, project, now),
        Format::Cve5 => cve5(case, project, project, now),
        Format::Csaf => csaf(case, project, now),
    }
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

/// The TLP 1.0 label CSAF 2.0 can carry for a TLP 2.0 label. CLEAR was WHITE; 1.0 has no
/// AMBER+STRICT, so it becomes AMBER and [`csaf`] states the restriction in words.
pub fn tlp_v1(label: &str) -> Option<&'static str> {
    match label.trim_start_matches("TLP:") {
        "CLEAR" | "WHITE" => Some("WHITE"),
        "GREEN" => Some("GREEN"),
        "AMBER" | "AMBER+STRICT" => Some("AMBER"),
        "RED" => Some("RED"),
        _ => None,
    }
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

fn cwe_name(id: &str) -> Option<&'static str> {
    CWE_NAMES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The case's CWE ids in the form every schema accepts (`CWE-` and a number without a
/// leading zero, at most six digits for CSAF); anything else is dropped, not guessed.
fn cwe_ids(case: &Case) -> Vec<&str> {
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
fn versions(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in list {
        let v: String = v.trim().chars().take(1024).collect();
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn or_fill(s: &str, what: &str) -> String {
    let s = s.trim();
    if s.is_empty() { to_fill(what) } else { s.to_owned() }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The CVSS score as the FIRST schemas write it, or None when the case's score does not
/// hold together (a version we do not export, a vector of another version, a severity
/// outside the five names): an export never carries a score it cannot vouch for.
struct Score<'a> {
    version: &'a str,
    vector: &'a str,
    score: f64,
    severity: String,
}

fn score(case: &Case) -> Option<Score<'_>> {
    let Cvss { version, vector, score, severity } = case.cvss.as_ref()?;
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

/// The OSV id: the CVE when one is assigned (OSV's `CVE-` prefix), else
/// `x_secintake-<case id>` (`x_` is OSV's prefix for unregistered databases).
pub fn osv_id(case: &Case) -> String {
    match &case.cve {
        Some(cve) => cve.clone(),
        None => format!("{OSV_ID_PREFIX}{}", case.id),
    }
}

/// A draft OSV 1.x record.
///
/// The package's ecosystem is not known to secintake (the config has only the project's
/// name) and OSV's `ecosystem` must be a registered one, so `affected` carries the
/// versions without a `package` and asks for it in `database_specific`. When the id is
/// the CVE there are no `aliases`: an id is not its own alias.
pub fn osv(case: &Case, project: &str, now: DateTime<Utc>) -> Value {
    let project = or_fill(project, "project name");
    let mut affected = Map::new();
    let affected_versions = versions(&case.affected_versions);
    if !affected_versions.is_empty() {
        affected.insert("versions".into(), json!(affected_versions));
    }
    let mut specific = Map::new();
    specific.insert("project".into(), json!(project));
    specific.insert(
        "package".into(),
        json!(to_fill("package: {\"ecosystem\": one of OSV's (PyPI, npm, crates.io, ...), \"name\": its name}")),
    );
    let fixed = versions(&case.fixed_versions);
    if !fixed.is_empty() {
        specific.insert("fixed_versions".into(), json!(fixed));
    }
    affected.insert("database_specific".into(), Value::Object(specific));

    let mut v = json!({
        "schema_version": OSV_SCHEMA_VERSION,
        "id": osv_id(case),
        "modified": rfc3339(&now),
        "published": rfc3339(&now),
        "summary": or_fill(&case.title, "summary"),
        "details": details_placeholder(&project),
        "affected": [Value::Object(affected)],
    });
    let Some(o) = v.as_object_mut() else { return v };
    if let Some(s) = score(case) {
        let kind = if s.version == "4.0" { "CVSS_V4" } else { "CVSS_V3" };
        o.insert("severity".into(), json!([{ "type": kind, "score": s.vector }]));
    }
    let cwes = cwe_ids(case);
    if !cwes.is_empty() {
        o.insert("database_specific".into(), json!({ "cwe_ids": cwes }));
    }
    if let Some(name) = CreditAs::of(case).name() {
        o.insert("credits".into(), json!([{ "name": name, "type": "REPORTER" }]));
    }
    v
}

/// The description every draft starts with: the reporter's text is never published as is.
fn details_placeholder(project: &str) -> String {
    to_fill(&format!(
        "description of the vulnerability in {project}, its impact and the fix, written by the security team for publication"
    ))
}

/// A draft CVE JSON 5.1 record, state PUBLISHED (the only state besides REJECTED the
/// schema knows). Without an assigned CVE its id is [`PLACEHOLDER_CVE`]; the CNA's org id
/// is [`PLACEHOLDER_ORG_ID`]; `references` (required) holds [`placeholder_url`]. The
/// `x_draft` object lists what still is a placeholder. `assigner_short_name` is clipped to
/// the schema's 2..32 characters.
pub fn cve5(case: &Case, project: &str, assigner_short_name: &str, now: DateTime<Utc>) -> Value {
    let project = or_fill(project, "project name");
    let short = clip(&or_fill(assigner_short_name, "CNA"), 32);
    let short = if short.chars().count() < 2 { to_fill("CNA") } else { short };
    let mut to_fill_list = vec!["containers.cna.descriptions", "containers.cna.references"];

    let cve_id = match &case.cve {
        Some(c) => c.clone(),
        None => {
            to_fill_list.push("cveMetadata.cveId");
            PLACEHOLDER_CVE.to_owned()
        }
    };
    to_fill_list.extend(["cveMetadata.assignerOrgId", "containers.cna.providerMetadata.orgId"]);

    let mut product = Map::new();
    product.insert("vendor".into(), json!(clip(&project, 512)));
    product.insert("product".into(), json!(clip(&project, 2048)));
    let mut vs: Vec<Value> =
        versions(&case.affected_versions).into_iter().map(|v| json!({ "version": v, "status": "affected" })).collect();
    let affected_count = vs.len();
    for v in versions(&case.fixed_versions) {
        let entry = json!({ "version": v, "status": "unaffected" });
        // A version listed both ways is a contradiction for the team, not for us to pick.
        if !vs.iter().any(|e| e["version"] == entry["version"]) {
            vs.push(entry);
        }
    }
    if affected_count == 0 {
        // Nothing known yet: say so rather than claim every version.
        product.insert("defaultStatus".into(), json!("unknown"));
        to_fill_list.push("containers.cna.affected");
    }
    if !vs.is_empty() {
        product.insert("versions".into(), Value::Array(vs));
    }

    let mut cna = Map::new();
    cna.insert(
        "providerMetadata".into(),
        json!({ "orgId": PLACEHOLDER_ORG_ID, "shortName": short, "dateUpdated": rfc3339(&now) }),
    );
    cna.insert("title".into(), json!(clip(&or_fill(&case.title, "title"), 256)));
    cna.insert("descriptions".into(), json!([{ "lang": "en", "value": details_placeholder(&project) }]));
    cna.insert("affected".into(), json!([Value::Object(product)]));
    let cwes = cwe_ids(case);
    if !cwes.is_empty() {
        let descriptions: Vec<Value> = cwes
            .iter()
            .map(|id| {
                let text = match cwe_name(id) {
                    Some(n) => format!("{id} {n}"),
                    None => (*id).to_owned(),
                };
                json!({ "lang": "en", "cweId": id, "description": text, "type": "CWE" })
            })
            .collect();
        cna.insert("problemTypes".into(), json!([{ "descriptions": descriptions }]));
    }
    if let Some(s) = score(case) {
        let key = match s.version {
            "3.0" => "cvssV3_0",
            "3.1" => "cvssV3_1",
            _ => "cvssV4_0",
        };
        let mut metric = Map::new();
        metric.insert("format".into(), json!("CVSS"));
        metric.insert("scenarios".into(), json!([{ "lang": "en", "value": "GENERAL" }]));
        metric.insert(key.into(), s.first_json());
        cna.insert("metrics".into(), json!([Value::Object(metric)]));
    }
    cna.insert(
        "references".into(),
        json!([{ "url": placeholder_url(&case.id), "name": to_fill("the advisory's URL"), "tags": ["vendor-advisory"] }]),
    );
    if let Some(name) = CreditAs::of(case).name() {
        cna.insert("credits".into(), json!([{ "lang": "en", "value": clip(name, 4096), "type": "reporter" }]));
    }
    cna.insert("x_draft".into(), json!({ "generator": "secintake", "case": case.id, "placeholders": to_fill_list }));

    json!({
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
        "cveMetadata": {
            "cveId": cve_id,
            "assignerOrgId": PLACEHOLDER_ORG_ID,
            "assignerShortName": short,
            "state": "PUBLISHED",
            "dateUpdated": rfc3339(&now),
        },
        "containers": { "cna": Value::Object(cna) },
    })
}

/// A draft CSAF 2.0 `csaf_security_advisory` (tracking status `draft`, version 1).
///
/// One product per affected version (`known_affected`) and per fixed version (`fixed`);
/// with no affected version known, one product whose name asks for them. CSAF 2.0 scores
/// only CVSS v2/v3, so a 4.0 vector goes into a note. TLP goes to
/// `document.distribution.tlp` as TLP 1.0 ([`tlp_v1`]).
pub fn csaf(case: &Case, project: &str, now: DateTime<Utc>) -> Value {
    let project = or_fill(project, "project name");
    let at = rfc3339(&now);
    let title = or_fill(&case.title, "title");

    let mut products: Vec<Value> = Vec::new();
    let mut affected_ids: Vec<String> = Vec::new();
    let mut fixed_ids: Vec<String> = Vec::new();
    let mut add = |name: String, ids: &mut Vec<String>| {
        let id = format!("CSAFPID-{:04}", products.len() + 1);
        products.push(json!({ "name": name, "product_id": id }));
        ids.push(id);
    };
    let affected = versions(&case.affected_versions);
    if affected.is_empty() {
        add(format!("{project} {}", to_fill("affected versions")), &mut affected_ids);
    }
    for v in &affected {
        add(format!("{project} {v}"), &mut affected_ids);
    }
    let fixed: Vec<String> = versions(&case.fixed_versions).into_iter().filter(|v| !affected.contains(v)).collect();
    for v in &fixed {
        add(format!("{project} {v}"), &mut fixed_ids);
    }

    let mut status = Map::new();
    status.insert("known_affected".into(), json!(affected_ids));
    if !fixed_ids.is_empty() {
        status.insert("fixed".into(), json!(fixed_ids));
    }

    let mut vuln = Map::new();
    if let Some(cve) = &case.cve {
        vuln.insert("cve".into(), json!(cve));
    }
    // CSAF's mandatory test 6.1.11 requires `cwe.name` to be the CWE catalogue's name for
    // the id: without a known name the id goes into a note for the team to complete.
    let cwe = cwe_ids(case).first().map(|id| (*id, cwe_name(id)));
    if let Some((id, Some(name))) = cwe {
        vuln.insert("cwe".into(), json!({ "id": id, "name": name }));
    }
    vuln.insert("title".into(), json!(title));
    let mut notes = vec![json!({ "category": "description", "text": details_placeholder(&project) })];
    if let Some((id, None)) = cwe {
        notes.push(json!({
            "category": "other",
            "title": "CWE",
            "text": format!("{id}: {}", to_fill(&format!("add cwe {{id, name}} with the CWE catalogue's name of {id}"))),
        }));
    }
    let score = score(case);
    if let Some(s) = &score {
        if s.version == "4.0" {
            notes.push(json!({
                "category": "other",
                "title": "CVSS v4.0",
                "text": format!("{} ({}). CSAF 2.0 has no field for CVSS v4.0 scores.", s.vector, s.phrase()),
            }));
        } else {
            vuln.insert("scores".into(), json!([{ "cvss_v3": s.first_json(), "products": affected_ids }]));
        }
    }
    vuln.insert("notes".into(), Value::Array(notes));
    vuln.insert("product_status".into(), Value::Object(status));
    if !fixed.is_empty() {
        vuln.insert(
            "remediations".into(),
            json!([{
                "category": "vendor_fix",
                "details": format!("Upgrade to {project} {}.", fixed.join(" or ")),
                "product_ids": affected_ids,
            }]),
        );
    }
    if let Some(name) = CreditAs::of(case).name() {
        vuln.insert("acknowledgments".into(), json!([{ "names": [name], "summary": "reporting this vulnerability" }]));
    }

    let mut document = Map::new();
    document.insert("category".into(), json!("csaf_security_advisory"));
    document.insert("csaf_version".into(), json!("2.0"));
    document.insert("lang".into(), json!("en"));
    document
        .insert("publisher".into(), json!({ "category": "vendor", "name": project, "namespace": PLACEHOLDER_BASE }));
    document.insert("title".into(), json!(title));
    document.insert(
        "tracking".into(),
        json!({
            "id": case.id,
            "status": "draft",
            "version": "1",
            "initial_release_date": at,
            "current_release_date": at,
            "revision_history": [{ "date": at, "number": "1", "summary": "Draft exported from the intake case." }],
            "generator": { "date": at, "engine": { "name": "secintake", "version": env!("CARGO_PKG_VERSION") } },
        }),
    );
    if let Some(label) = case.tlp.as_deref()
        && let Some(v1) = tlp_v1(label)
    {
        let mut dist = json!({ "tlp": { "label": v1, "url": "https://www.first.org/tlp/" } });
        if label == "AMBER+STRICT" {
            // TLP 1.0 has no STRICT: keep the narrower rule visible to every reader.
            dist["text"] = json!(
                "TLP:AMBER+STRICT: recipients may share this only within their own organization, not with its clients."
            );
        }
        document.insert("distribution".into(), dist);
    }
    document.insert("notes".into(), json!([{ "category": "summary", "text": title }]));
    document.insert(
        "references".into(),
        json!([{ "category": "self", "summary": to_fill("the advisory's URL"), "url": placeholder_url(&case.id) }]),
    );

    json!({
        "document": Value::Object(document),
        "product_tree": { "full_product_names": products },
        "vulnerabilities": [Value::Object(vuln)],
    })
}

/// The SPEC-11 announcement (Scientific Python SPEC 11's template: subject, versions,
/// the CVE with its CVSS score and summary, "Am I vulnerable?", mitigation, upgrade,
/// details, credit), filled from the case; what the case cannot say is `[TO FILL: ...]`.
pub fn announce(case: &Case, project: &str, now: DateTime<Utc>) -> String {
    let project = or_fill(project, "project name");
    let fixed = versions(&case.fixed_versions);
    let version = if fixed.is_empty() { to_fill("fixed version") } else { fixed.join(", ") };
    let affected = versions(&case.affected_versions);
    let affected = if affected.is_empty() { to_fill("affected versions") } else { affected.join(", ") };
    let cve = case.cve.clone().unwrap_or_else(|| to_fill("CVE id"));
    let score = score(case).map(|s| s.phrase()).unwrap_or_else(|| to_fill("CVSS score"));
    let title = or_fill(&case.title, "one-line summary");
    let weakness: Vec<String> = cwe_ids(case)
        .iter()
        .map(|id| match cwe_name(id) {
            Some(n) => format!("{id} {n}"),
            None => (*id).to_owned(),
        })
        .collect();
    let weakness = if weakness.is_empty() { to_fill("CWE") } else { weakness.join("; ") };
    let credit = CreditAs::of(case).phrase();
    let date = now.format("%Y-%m-%d");
    let advisory = placeholder_url(&case.id);

    format!(
        "Subject: Security release of {project} {version} is now available\n\
         \n\
         Hello {project} community,\n\
         \n\
         The security team and the maintainers of {project} announce the availability of\n\
         {project} {version} ({date}).\n\
         \n\
         It fixes the following vulnerability:\n\
         \n\
         * {cve} ({score}): {title}\n\
         \n\
         Upgrading to {version} is encouraged to fix this issue.\n\
         \n\
         **Am I vulnerable?**\n\
         \n\
         Check the version of {project} you run (e.g. `{project} --version`, or your package\n\
         manager). Affected versions: {affected}.\n\
         {}\n\
         \n\
         **How do I mitigate the vulnerability?**\n\
         \n\
         {}\n\
         \n\
         **How do I upgrade?**\n\
         \n\
         Upgrade to {project} {version}. {}\n\
         \n\
         **Vulnerability details**\n\
         \n\
         {cve}: {title}\n\
         Weakness: {weakness}\n\
         {}\n\
         Advisory: {advisory} {}\n\
         \n\
         **Credit**\n\
         \n\
         Thanks to {credit} for reporting this issue.\n",
        to_fill("features, extensions or configuration that make a system vulnerable in practice"),
        to_fill("what users who cannot upgrade yet can do, or remove this section"),
        to_fill("upgrade steps, e.g. the package manager command"),
        details_placeholder(&project),
        to_fill("the advisory's URL"),
    )
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
            format!("Thanks to {} for reporting {what}.", CreditAs::of(c).phrase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::*;
    use crate::openpgp::Verdict;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A case whose reporter's From name and text must never show in an export.
    fn case() -> Case {
        let received = at("2026-01-01T00:00:00Z");
        Case {
            id: "SEC-2026-0001".into(),
            status: Status::Accepted,
            title: "XSS in the search form".into(),
            reporter: Reporter {
                address: "mallory.secret@reporter.test".into(),
                name: "Mallory FromName".into(),
                key_fingerprint: None,
                key_source: None,
                key_conflict: None,
            },
            credit: Credit { name: Some("Jane Doe".into()), anonymous: false },
            received_at: received,
            encrypted: true,
            decrypted: true,
            signature: Verdict::Good,
            cvss: crate::report::score_vector("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
            cwe: vec!["CWE-79".into()],
            tlp: Some("AMBER+STRICT".into()),
            affected_versions: vec!["1.0".into(), "1.1".into(), "1.0".into()],
            attachments: vec![],
            messages: vec![],
            ack: None,
            due: Due { ack: received, update: received, disclosure: at("2026-04-01T00:00:00Z") },
            text: "SECRET PROOF OF CONCEPT <script>alert(1)</script>".into(),
            reject_reason: None,
            assignee: None,
            cve: Some("CVE-2026-12345".into()),
            fixed_versions: vec!["1.2".into()],
            waiting_on_reporter: false,
            resend_of: Vec::new(),
        }
    }

    fn all_text(c: &Case, now: DateTime<Utc>) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}",
            osv(c, "Demo", now),
            cve5(c, "Demo", "Demo", now),
            csaf(c, "Demo", now),
            announce(c, "Demo", now),
            credits(std::slice::from_ref(c), None).join("\n"),
        )
    }

    #[test]
    fn named_credit_everywhere_and_no_reporter_data() {
        let mut c = case();
        c.status = Status::Disclosed;
        let now = at("2026-05-01T00:00:00Z");
        let all = all_text(&c, now);
        assert!(all.contains("Jane Doe"));
        for secret in ["Mallory", "mallory.secret", "SECRET PROOF", "alert(1)"] {
            assert!(!all.contains(secret), "{secret} leaked");
        }
        assert_eq!(osv(&c, "Demo", now)["credits"], json!([{ "name": "Jane Doe", "type": "REPORTER" }]));
        assert_eq!(cve5(&c, "Demo", "Demo", now)["containers"]["cna"]["credits"][0]["value"], "Jane Doe");
        assert_eq!(csaf(&c, "Demo", now)["vulnerabilities"][0]["acknowledgments"][0]["names"], json!(["Jane Doe"]));
        assert_eq!(
            credits(&[c], None),
            vec!["Thanks to Jane Doe for reporting XSS in the search form (CVE-2026-12345)."]
        );
    }

    #[test]
    fn anonymous_is_never_named() {
        let mut c = case();
        c.status = Status::Disclosed;
        // Even a stale name beside `anonymous` must not come out.
        c.credit = Credit { name: Some("Jane Doe".into()), anonymous: true };
        let now = at("2026-05-01T00:00:00Z");
        let all = all_text(&c, now);
        for secret in ["Jane", "Mallory", "mallory.secret"] {
            assert!(!all.contains(secret), "{secret} leaked:\n{all}");
        }
        assert!(osv(&c, "Demo", now).get("credits").is_none());
        assert!(cve5(&c, "Demo", "Demo", now)["containers"]["cna"].get("credits").is_none());
        assert!(csaf(&c, "Demo", now)["vulnerabilities"][0].get("acknowledgments").is_none());
        assert!(announce(&c, "Demo", now).contains("Thanks to an anonymous reporter"));
        assert_eq!(
            credits(&[c], None),
            vec!["Thanks to an anonymous reporter for reporting XSS in the search form (CVE-2026-12345)."]
        );
    }

    #[test]
    fn no_credit_asked_names_nobody_and_asks_the_team() {
        let mut c = case();
        c.status = Status::Disclosed;
        c.credit = Credit::default();
        let now = at("2026-05-01T00:00:00Z");
        let all = all_text(&c, now);
        assert!(!all.contains("Mallory") && !all.contains("Jane"));
        let lines = credits(&[c], None);
        assert!(lines[0].starts_with("Thanks to [TO FILL: credit"), "{lines:?}");
    }

    #[test]
    fn tlp_maps_to_csaf_tlp_v1() {
        assert_eq!(tlp_v1("CLEAR"), Some("WHITE"));
        assert_eq!(tlp_v1("GREEN"), Some("GREEN"));
        assert_eq!(tlp_v1("AMBER"), Some("AMBER"));
        assert_eq!(tlp_v1("AMBER+STRICT"), Some("AMBER"));
        assert_eq!(tlp_v1("TLP:RED"), Some("RED"));
        assert_eq!(tlp_v1("PURPLE"), None);
        let c = case();
        let doc = csaf(&c, "Demo", at("2026-05-01T00:00:00Z"));
        assert_eq!(doc["document"]["distribution"]["tlp"]["label"], "AMBER");
        assert!(doc["document"]["distribution"]["text"].as_str().unwrap().contains("AMBER+STRICT"));
        let mut clear = c.clone();
        clear.tlp = Some("CLEAR".into());
        let doc = csaf(&clear, "Demo", at("2026-05-01T00:00:00Z"));
        assert_eq!(
            doc["document"]["distribution"],
            json!({ "tlp": { "label": "WHITE", "url": "https://www.first.org/tlp/" } })
        );
        clear.tlp = None;
        assert!(csaf(&clear, "Demo", at("2026-05-01T00:00:00Z"))["document"].get("distribution").is_none());
    }

    #[test]
    fn placeholders_when_no_cve_and_ids_when_there_is_one() {
        let now = at("2026-05-01T00:00:00Z");
        let mut c = case();
        assert_eq!(osv(&c, "Demo", now)["id"], "CVE-2026-12345");
        assert!(osv(&c, "Demo", now).get("aliases").is_none());
        assert_eq!(cve5(&c, "Demo", "Demo", now)["cveMetadata"]["cveId"], "CVE-2026-12345");
        assert_eq!(csaf(&c, "Demo", now)["vulnerabilities"][0]["cve"], "CVE-2026-12345");

        c.cve = None;
        assert_eq!(osv(&c, "Demo", now)["id"], "x_secintake-SEC-2026-0001");
        let rec = cve5(&c, "Demo", "Demo", now);
        assert_eq!(rec["cveMetadata"]["cveId"], PLACEHOLDER_CVE);
        assert!(valid_cve(PLACEHOLDER_CVE));
        assert!(
            rec["containers"]["cna"]["x_draft"]["placeholders"]
                .as_array()
                .unwrap()
                .contains(&json!("cveMetadata.cveId"))
        );
        assert_eq!(rec["cveMetadata"]["assignerOrgId"], PLACEHOLDER_ORG_ID);
        assert_eq!(rec["containers"]["cna"]["references"][0]["url"], "https://example.invalid/security/SEC-2026-0001");
        assert!(csaf(&c, "Demo", now)["vulnerabilities"][0].get("cve").is_none());
        assert!(announce(&c, "Demo", now).contains("[TO FILL: CVE id]"));
        // The version-4 form the CVE schema's uuidType demands.
        let b = PLACEHOLDER_ORG_ID.as_bytes();
        assert_eq!((b[14], b[19]), (b'4', b'8'));
    }

    #[test]
    fn details_are_a_placeholder_never_the_report() {
        let now = at("2026-05-01T00:00:00Z");
        let c = case();
        let o = osv(&c, "Demo", now);
        assert!(o["details"].as_str().unwrap().starts_with("[TO FILL:"));
        assert_eq!(o["summary"], "XSS in the search form");
        assert_eq!(o["affected"][0]["versions"], json!(["1.0", "1.1"]));
        assert_eq!(o["severity"][0]["type"], "CVSS_V3");
        assert_eq!(o["database_specific"]["cwe_ids"], json!(["CWE-79"]));
        let r = cve5(&c, "Demo", "Demo", now);
        let cna = &r["containers"]["cna"];
        assert!(cna["descriptions"][0]["value"].as_str().unwrap().starts_with("[TO FILL:"));
        assert_eq!(cna["metrics"][0]["cvssV3_1"]["baseSeverity"], "MEDIUM");
        assert_eq!(cna["problemTypes"][0]["descriptions"][0]["cweId"], "CWE-79");
        assert_eq!(cna["affected"][0]["versions"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn cvss4_goes_to_v4_fields_and_a_csaf_note() {
        let now = at("2026-05-01T00:00:00Z");
        let mut c = case();
        c.cvss = crate::report::score_vector("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N");
        assert!(c.cvss.is_some());
        assert_eq!(osv(&c, "Demo", now)["severity"][0]["type"], "CVSS_V4");
        assert_eq!(cve5(&c, "Demo", "Demo", now)["containers"]["cna"]["metrics"][0]["cvssV4_0"]["version"], "4.0");
        let doc = csaf(&c, "Demo", now);
        assert!(doc["vulnerabilities"][0].get("scores").is_none());
        assert!(doc["vulnerabilities"][0]["notes"][1]["text"].as_str().unwrap().starts_with("CVSS:4.0/"));
    }

    #[test]
    fn embargo_until_disclosure_date_or_status() {
        let mut c = case();
        assert!(embargoed(&c, at("2026-03-31T23:59:59Z")));
        assert!(!embargoed(&c, at("2026-04-01T00:00:00Z")));
        c.status = Status::Disclosed;
        assert!(!embargoed(&c, at("2026-02-01T00:00:00Z")));
        c.status = Status::Closed;
        assert!(!embargoed(&c, at("2026-02-01T00:00:00Z")));
        c.reject_reason = Some("spam".into());
        assert!(embargoed(&c, at("2026-02-01T00:00:00Z")));
    }

    #[test]
    fn credits_only_disclosed_since_date_in_order() {
        let mut a = case();
        a.status = Status::Disclosed;
        let mut b = case();
        b.id = "SEC-2026-0002".into();
        b.status = Status::Closed;
        b.cve = None;
        b.title = "Path traversal".into();
        b.due.disclosure = at("2026-02-01T00:00:00Z");
        let mut open = case();
        open.id = "SEC-2026-0003".into();
        let mut rejected = case();
        rejected.status = Status::Closed;
        rejected.reject_reason = Some("invalid".into());
        let all = [a, b, open, rejected];
        let lines = credits(&all, None);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "Thanks to Jane Doe for reporting Path traversal.");
        assert_eq!(credits(&all, Some(at("2026-03-01T00:00:00Z"))).len(), 1);
    }
}
