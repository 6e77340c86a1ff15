//! CSAF 2.0 `csaf_security_advisory` drafts (checked by BSI's validator in
//! tests/validators), with TLP 2.0 labels mapped to the TLP 1.0 CSAF 2.0 carries. Pure.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::*;
use crate::case::{Case, rfc3339};

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
    if case.cvss_unassessed() {
        notes.push(json!({ "category": "other", "title": "CVSS", "text": assess_cvss() }));
    }
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
    let mut acks = Vec::new();
    if let Some(name) = CreditAs::of(case).name() {
        acks.push(json!({ "names": [name], "summary": "reporting this vulnerability" }));
    }
    let others: Vec<&str> = super::also_credits(case).into_iter().filter_map(CreditAs::name).collect();
    if !others.is_empty() {
        acks.push(json!({ "names": others, "summary": "also reporting this vulnerability, independently" }));
    }
    if !acks.is_empty() {
        vuln.insert("acknowledgments".into(), Value::Array(acks));
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
