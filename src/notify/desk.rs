//! The triage desk's texts: the request for missing fields (`case ask`), the notice of
//! a case closed as incomplete, the team's "report completed" mail, and the triage block
//! at the top of the team summary.
//!
//! What goes to the reporter names missing fields in plain words and carries ids and
//! dates, never report content: it may travel unencrypted. Only the team's texts (always
//! encrypted) show flags and their evidence.

use crate::case::{Case, rfc3339};
use crate::triage::Field;

/// The missing fields in the policy's plain words, one a line.
pub fn missing_lines(missing: &[Field]) -> Vec<String> {
    missing.iter().map(|f| f.plain().to_owned()).collect()
}

fn bullets(missing: &[Field]) -> String {
    missing_lines(missing).iter().map(|l| format!("  - {l}\n")).collect()
}

/// The request for what a report lacks. `extra` is the team's own text (only sent
/// encrypted, or when the case allows an unencrypted reply).
pub fn needs_info_text(case: &Case, project: &str, missing: &[Field], extra: Option<&str>) -> String {
    let mut t = format!("Hello,\n\nthank you for your report to the {project} security team (case {}).\n\n", case.id);
    if !missing.is_empty() {
        t.push_str("To assess it we need:\n\n");
        t.push_str(&bullets(missing));
        t.push('\n');
    }
    if let Some(x) = extra.map(str::trim).filter(|x| !x.is_empty()) {
        t.push_str(x);
        t.push_str("\n\n");
    }
    t.push_str(&format!(
        "Please reply to this message, keeping [{}] in the subject, and encrypt your reply to the key\n\
         in this message's Autocrypt header.\n",
        case.id
    ));
    t
}

/// The notice that a case closed as incomplete, and how to reopen it.
pub fn closed_incomplete_text(case: &Case, project: &str) -> String {
    let c = case.completeness.as_ref();
    let asked = c.and_then(|c| c.asked_at).map(|t| rfc3339(&t)).unwrap_or_else(|| "-".into());
    let missing = c.map(|c| c.missing.clone()).unwrap_or_default();
    format!(
        "Hello,\n\nyour report to the {project} security team (case {}) has been closed as incomplete.\n\
         On {asked} (UTC) we asked for:\n\n{}\nand have had no reply since.\n\n\
         To reopen it, reply to this message with the missing information, keeping [{}] in the\n\
         subject: a reply from you reopens the case.\n\nThis notice is automatic and signed.\n",
        case.id,
        bullets(&missing),
        case.id
    )
}

/// The team's mail when the reporter has supplied every field asked for.
pub fn completed_text(case: &Case) -> String {
    let present = case.completeness.as_ref().map(|c| c.present.clone()).unwrap_or_default();
    format!(
        "Report completed: {} ({})\nThe reporter's reply supplied every field asked for.\nNow present: {}\n\n\
         secintake case show {}\n",
        case.id,
        case.title,
        present.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
        case.id
    )
}

/// The triage lines the team summary starts with: flags with their evidence, what is
/// missing, declared AI use, and the CVSS claim against the assessment.
pub fn summary_triage(case: &Case) -> String {
    let mut t = String::new();
    for f in &case.flags {
        let why = case.flag_evidence.get(f).map(String::as_str).unwrap_or("");
        t.push_str(&format!("FLAG {}: {why}\n", f.as_str()));
    }
    if let Some(c) = &case.completeness
        && !c.missing.is_empty()
    {
        let asked = match c.asked_at {
            Some(a) => format!("asked {}", rfc3339(&a)),
            None => "not asked yet (no acknowledgement went out): secintake case ask".into(),
        };
        t.push_str(&format!(
            "MISSING: {} ({asked}{})\n",
            c.missing.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "),
            c.closes_at.map(|t| format!("; closes as incomplete {}", rfc3339(&t))).unwrap_or_default()
        ));
    }
    if let Some(ai) = &case.ai_use {
        let declared = match ai.declared {
            Some(crate::triage::AiDeclared::Used) => "used",
            Some(crate::triage::AiDeclared::None) => "none",
            None => "not declared",
        };
        t.push_str(&format!("AI use:       {declared}"));
        if let Some(s) = &ai.statement {
            t.push_str(&format!(" (\"{}\")", s.chars().take(200).collect::<String>()));
        }
        t.push('\n');
    }
    match (&case.cvss_claimed, &case.cvss_assessed) {
        (Some(c), Some(a)) if c.vector != a.vector => {
            t.push_str(&format!("CVSS claimed: {} ({} {})\n", c.vector, c.score, c.severity));
            t.push_str(&format!("CVSS assessed: {} ({} {})\n", a.vector, a.score, a.severity));
        }
        (Some(c), None) => {
            t.push_str(&format!("CVSS claimed: {} ({} {}), not assessed\n", c.vector, c.score, c.severity))
        }
        _ => {}
    }
    if !t.is_empty() {
        t.push('\n');
    }
    t
}
