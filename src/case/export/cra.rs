//! EU CRA Article 14 filings as form-ready text: for each stage (early warning within
//! 24 h, vulnerability notification within 72 h, final report within 14 days after a fix),
//! the answers ENISA's single reporting platform asks for: the product, the nature of the
//! vulnerability, whether it is actively exploited, the corrective or mitigating measures,
//! and the notice to users; with each stage's due time, filing time and reference.
//!
//! Pure, and like every export a draft for publication to an authority: never the
//! reporter's words, address or key; gaps are `[TO FILL: ...]`.

use chrono::{DateTime, Utc};

use super::*;
use crate::case::cra::StageName;
use crate::case::{Case, rfc3339};

/// The form text of every stage, the owed ones first.
pub fn cra(case: &Case, project: &str, now: DateTime<Utc>) -> String {
    let project = or_fill(project, "product name");
    let c = &case.cra;
    let mut t = format!("EU CRA Article 14 reporting for {} ({project})\n", case.id);
    t.push_str(&format!("Prepared: {}\n", rfc3339(&now)));
    if !c.exploited {
        t.push_str(
            "\nActive exploitation is not confirmed for this case: Article 14 reporting does not apply yet.\n\
             When the team confirms it: secintake case set ID --exploited true [--aware-at TIME]\n",
        );
    }
    let aware = c.aware_at.map(|a| rfc3339(&a)).unwrap_or_else(|| to_fill("when the manufacturer became aware"));
    let affected = versions(&case.affected_versions);
    let affected = if affected.is_empty() { to_fill("affected versions") } else { affected.join(", ") };
    let fixed = versions(&case.fixed_versions);
    let weakness: Vec<String> = cwe_ids(case)
        .iter()
        .map(|id| match cwe_name(id) {
            Some(n) => format!("{id} ({n})"),
            None => id.to_string(),
        })
        .collect();
    let weakness = if weakness.is_empty() { to_fill("CWE") } else { weakness.join(", ") };
    let severity = match score(case) {
        Some(s) => s.phrase(),
        None if case.cvss_unassessed() => assess_cvss(),
        None => to_fill("CVSS score"),
    };
    let measures = if fixed.is_empty() {
        to_fill("corrective or mitigating measures, and when they are available")
    } else {
        format!("Fixed in {project} {}.", fixed.join(", "))
    };
    for stage in StageName::ALL {
        let s = c.stage(stage);
        let title = match stage {
            StageName::EarlyWarning => "Early warning (within 24 hours of becoming aware)",
            StageName::Notification => "Vulnerability notification (within 72 hours of becoming aware)",
            StageName::Final => "Final report (within 14 days after a corrective or mitigating measure is available)",
        };
        t.push_str(&format!("\n== {title}\n"));
        let due = match (s.due, stage) {
            (Some(d), _) => rfc3339(&d),
            (None, StageName::Final) if c.exploited => "once a fix or mitigation is available (not yet)".into(),
            (None, _) => "-".into(),
        };
        t.push_str(&format!("Due:                      {due}\n"));
        match (&s.filed_at, &s.reference) {
            (Some(at), r) => t.push_str(&format!(
                "Filed:                    {} (reference {})\n",
                rfc3339(at),
                r.as_deref().unwrap_or("-")
            )),
            (None, _) => t.push_str(&format!(
                "Filed:                    not yet (record it: secintake case set {} --cra-stage {} --ref REF)\n",
                case.id,
                stage.as_str()
            )),
        }
        t.push_str(&format!("Product:                  {project}, versions {affected}\n"));
        t.push_str(&format!(
            "Actively exploited:       {} (aware since {aware})\n",
            if c.exploited { "yes" } else { "not confirmed" }
        ));
        if stage != StageName::EarlyWarning {
            t.push_str(&format!(
                "Nature of vulnerability:  {} ; {weakness}; {severity}\n",
                or_fill(&case.title, "summary")
            ));
            t.push_str(&format!(
                "Exploit information:      {}\n",
                to_fill("what is known of the exploitation (no reporter data)")
            ));
            t.push_str(&format!("Corrective measures:      {measures}\n"));
            t.push_str(&format!(
                "User notice:              {}\n",
                if fixed.is_empty() {
                    to_fill("what users should do until a fix is available")
                } else {
                    format!("Users should upgrade to {project} {}.", fixed.join(" or "))
                }
            ));
        } else {
            t.push_str(&format!("Member States concerned:  {}\n", to_fill("where the product is made available")));
        }
        if stage == StageName::Final {
            t.push_str(&format!("Root cause:               {}\n", to_fill("root cause")));
            t.push_str(&format!(
                "CVE:                      {}\n",
                case.cve.clone().unwrap_or_else(|| to_fill("CVE id"))
            ));
        }
    }
    t
}
