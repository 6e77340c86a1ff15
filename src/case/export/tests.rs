//! Unit tests of the exports: what a draft may never carry, placeholders that validate.

use super::*;
use crate::case::*;
use crate::openpgp::Verdict;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A case whose reporter's From name and text must never show in an export.
pub(super) fn case() -> Case {
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

fn all_text(c: &Case, now: DateTime<Utc>) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        osv(c, "Demo", now),
        cve5(c, "Demo", "Demo", None, now),
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
    assert_eq!(cve5(&c, "Demo", "Demo", None, now)["containers"]["cna"]["credits"][0]["value"], "Jane Doe");
    assert_eq!(csaf(&c, "Demo", now)["vulnerabilities"][0]["acknowledgments"][0]["names"], json!(["Jane Doe"]));
    assert_eq!(credits(&[c], None), vec!["Thanks to Jane Doe for reporting XSS in the search form (CVE-2026-12345)."]);
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
    assert!(cve5(&c, "Demo", "Demo", None, now)["containers"]["cna"].get("credits").is_none());
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
    assert_eq!(cve5(&c, "Demo", "Demo", None, now)["cveMetadata"]["cveId"], "CVE-2026-12345");
    assert_eq!(csaf(&c, "Demo", now)["vulnerabilities"][0]["cve"], "CVE-2026-12345");

    c.cve = None;
    assert_eq!(osv(&c, "Demo", now)["id"], "x_secintake-SEC-2026-0001");
    let rec = cve5(&c, "Demo", "Demo", None, now);
    assert_eq!(rec["cveMetadata"]["cveId"], PLACEHOLDER_CVE);
    assert!(valid_cve(PLACEHOLDER_CVE));
    assert!(
        rec["containers"]["cna"]["x_draft"]["placeholders"].as_array().unwrap().contains(&json!("cveMetadata.cveId"))
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
    let r = cve5(&c, "Demo", "Demo", None, now);
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
    assert_eq!(cve5(&c, "Demo", "Demo", None, now)["containers"]["cna"]["metrics"][0]["cvssV4_0"]["version"], "4.0");
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
