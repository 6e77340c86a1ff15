//! OSV 1.x drafts (schema release in [`OSV_SCHEMA_VERSION`]). Pure, like every export.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::*;
use crate::case::{Case, rfc3339};

/// Prefix of OSV ids for cases without a CVE: OSV allows `x_` for databases that are
/// not registered, which a project's own intake is.
const OSV_ID_PREFIX: &str = "x_secintake-";

/// The OSV schema release the exports follow (checked by tests/validators).
const OSV_SCHEMA_VERSION: &str = "1.7.5";

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
    let mut specific = Map::new();
    if !cwes.is_empty() {
        specific.insert("cwe_ids".into(), json!(cwes));
    }
    if case.cvss_unassessed() {
        specific.insert("cvss".into(), json!(assess_cvss()));
    }
    if !specific.is_empty() {
        o.insert("database_specific".into(), Value::Object(specific));
    }
    if let Some(name) = CreditAs::of(case).name() {
        o.insert("credits".into(), json!([{ "name": name, "type": "REPORTER" }]));
    }
    v
}
