//! CVE record drafts, format 5.2.0 (checked by cvelib in tests/validators). Pure.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::*;
use crate::case::{Case, rfc3339};

/// A draft CVE record (format 5.2.0), state PUBLISHED (the only state besides REJECTED the
/// schema knows). Without an assigned CVE its id is [`PLACEHOLDER_CVE`]; the CNA's org id
/// is [`PLACEHOLDER_ORG_ID`]; `references` (required) holds [`placeholder_url`]. The
/// `x_draft` object lists what still is a placeholder. `assigner_short_name` is clipped to
/// the schema's 2..32 characters. `purl`, the project's package URL without a version
/// (5.2 wants none: the versions are in `versions`), becomes the product's `packageURL`.
pub fn cve5(case: &Case, project: &str, assigner_short_name: &str, purl: Option<&str>, now: DateTime<Utc>) -> Value {
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
    if let Some(p) = purl.filter(|p| p.starts_with("pkg:") && !p.contains('@')) {
        product.insert("packageURL".into(), json!(clip(p, 2048)));
    }
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
    // The first reporter, then the others in order of receipt: each reported it to us.
    let credits: Vec<Value> = CreditAs::of(case)
        .name()
        .into_iter()
        .chain(super::also_credits(case).into_iter().filter_map(CreditAs::name))
        .map(|name| json!({ "lang": "en", "value": clip(name, 4096), "type": "reporter" }))
        .collect();
    if !credits.is_empty() {
        cna.insert("credits".into(), Value::Array(credits));
    }
    let mut draft = json!({ "generator": "secintake", "case": case.id, "placeholders": to_fill_list });
    if case.cvss_unassessed() {
        if let Some(p) = draft["placeholders"].as_array_mut() {
            p.push(json!("containers.cna.metrics"))
        }
        draft["cvss"] = json!(assess_cvss());
    }
    cna.insert("x_draft".into(), draft);

    json!({
        "dataType": "CVE_RECORD",
        "dataVersion": "5.2.0",
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
