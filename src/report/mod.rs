//! Pure extraction of structured fields from a report's text: title, CWE ids, TLP,
//! affected versions, credit. Unknown or missing fields stay empty: never invent.
//!
//! Every function here is linear in the text (one scan, set lookups, no search of
//! what was already found) and every list it returns is capped: the text is
//! attacker-controlled. A cap that drops something says so in a warning, never silently.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// How the reporter asked to be credited: a name, anonymity ("N/A"), or nothing said.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Credit {
    pub name: Option<String>,
    pub anonymous: bool,
}

/// A scored CVSS vector (3.0, 3.1 or 4.0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    pub version: String,
    pub vector: String,
    pub score: f64,
    pub severity: String,
}

/// Most CWE ids kept from one report. A real report names one to a handful; a hostile
/// one naming 160,000 would bloat the case, its JSON and every list that shows it.
pub const MAX_CWES: usize = 64;
/// Most affected versions kept (the field is at most 300 characters, so 150 at most).
pub const MAX_VERSIONS: usize = 64;
/// Most `CVSS:` candidates tried (each costs up to 400 characters and a parse): a text
/// of repeated `CVSS:` would otherwise cost 400 times its length.
pub const MAX_CVSS_CANDIDATES: usize = 64;

/// The list fields of a report, capped, with a warning for each cap that dropped ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lists {
    pub cwe: Vec<String>,
    pub affected_versions: Vec<String>,
    /// "only the first 64 were kept", ...: recorded on the case for the team.
    pub warnings: Vec<String>,
}

/// CWE ids and affected versions, each capped, with truncation warnings.
pub fn lists(text: &str) -> Lists {
    let (cwe, more_cwes) = cwes_capped(text, MAX_CWES);
    let (affected_versions, more_versions) = versions_capped(text, MAX_VERSIONS);
    let mut warnings = Vec::new();
    if more_cwes {
        warnings.push(format!(
            "the report names more than {MAX_CWES} distinct CWE ids; only the first {MAX_CWES} were kept"
        ));
    }
    if more_versions {
        warnings.push(format!(
            "the report lists more than {MAX_VERSIONS} affected versions; only the first {MAX_VERSIONS} were kept"
        ));
    }
    Lists { cwe, affected_versions, warnings }
}

/// Subjects that mail clients put on the outside of encrypted mail: not a title.
const PLACEHOLDER_SUBJECTS: &[&str] =
    &["", "...", "encrypted message", "encrypted email", "pgp message", "(no subject)"];

/// Looks for `Label: value` lines (case-insensitive label match); returns the value.
pub fn field(text: &str, labels: &[&str]) -> Option<String> {
    for line in text.lines() {
        let l = line.trim().trim_start_matches(['*', '#', '-', ' ']);
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim().trim_matches('*').trim().to_ascii_lowercase();
            if labels.iter().any(|lab| k == *lab) {
                let v = v.trim().trim_matches('*').trim();
                if !v.is_empty() {
                    return Some(v.chars().take(300).collect());
                }
            }
        }
    }
    None
}

/// The case title: protected subject, a title field, else the (non-placeholder) subject.
pub fn title(protected_subject: Option<&str>, text: &str, outer_subject: &str) -> String {
    let usable = |s: &str| !PLACEHOLDER_SUBJECTS.contains(&s.trim().to_ascii_lowercase().as_str());
    if let Some(s) = protected_subject.filter(|s| usable(s)) {
        return s.trim().to_owned();
    }
    if let Some(t) = field(text, &["vulnerability title", "title", "summary"]) {
        return t;
    }
    if usable(outer_subject) {
        return outer_subject.trim().to_owned();
    }
    "(no subject)".to_owned()
}

/// CWE ids mentioned anywhere (`CWE-78`), in order, without duplicates, at most
/// [`MAX_CWES`] (see [`lists`] for the truncation warning).
pub fn cwes(text: &str) -> Vec<String> {
    cwes_capped(text, MAX_CWES).0
}

/// The first `cap` distinct CWE ids, and whether the text names more. One scan; the
/// ids found so far are a set, so each mention costs the same however many came before.
fn cwes_capped(text: &str, cap: usize) -> (Vec<String>, bool) {
    let mut out: Vec<String> = Vec::new();
    // By number: a mention already kept costs a lookup, no allocation.
    let mut seen: HashSet<u32> = HashSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        // "CWE-", any case, at a word boundary.
        if b[i + 3] != b'-' || !b[i..i + 3].eq_ignore_ascii_case(b"CWE") || (i > 0 && b[i - 1].is_ascii_alphanumeric())
        {
            i += 1;
            continue;
        }
        let start = i + 4;
        let len = b[start..].iter().take(6).take_while(|c| c.is_ascii_digit()).count();
        i = start;
        // At most 6 ASCII digits: fits a u32.
        let n = b[start..start + len].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        if n == 0 || seen.contains(&n) {
            continue;
        }
        if out.len() == cap {
            return (out, true);
        }
        seen.insert(n);
        out.push(format!("CWE-{n}"));
    }
    (out, false)
}

/// The TLP 2.0 label, without the prefix; TLP:WHITE is CLEAR.
pub fn tlp(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let pos = upper.find("TLP:")?;
    let rest: String =
        upper[pos + 4..].trim_start().chars().take_while(|c| c.is_ascii_alphabetic() || *c == '+').take(16).collect();
    match rest.as_str() {
        "CLEAR" | "WHITE" => Some("CLEAR".into()),
        "GREEN" => Some("GREEN".into()),
        "AMBER+STRICT" => Some("AMBER+STRICT".into()),
        "AMBER" => Some("AMBER".into()),
        "RED" => Some("RED".into()),
        _ => None,
    }
}

/// Affected versions from an `Affected Version(s):` style field, split on commas,
/// without duplicates: the first `cap`, and whether the field lists more.
fn versions_capped(text: &str, cap: usize) -> (Vec<String>, bool) {
    let Some(v) =
        field(text, &["affected version(s)", "affected versions", "affected version", "versions affected", "version"])
    else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for s in v.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()) {
        if seen.contains(s) {
            continue;
        }
        if out.len() == cap {
            return (out, true);
        }
        seen.insert(s);
        out.push(s.to_owned());
    }
    (out, false)
}

/// Credit wishes: a name for credits, or anonymity ("N/A", "anonymous").
pub fn credit(text: &str) -> Credit {
    const LABELS: &[&str] = &[
        "full name (for credits)",
        "full name",
        "credit",
        "credit as",
        "credit me as",
        "please credit",
        "name for credits",
        "name for credit",
        "credits",
        "crédito",
        "crédit",
        "credito",
    ];
    // The value on the label's line, or on the next line ("Credit:\nYes, as ...").
    if let Some(v) = field(text, LABELS).or_else(|| next_line_of(text, LABELS)) {
        let l = v.to_lowercase();
        if matches!(l.as_str(), "n/a" | "na" | "none" | "anonymous" | "anon" | "-")
            || ["anonym", "anónim", "anonim"].iter().any(|a| l.contains(a))
        {
            return Credit { name: None, anonymous: true };
        }
        return Credit { name: Some(credit_name(&v)), anonymous: false };
    }
    let lower = text.to_ascii_lowercase();
    if let Some(pos) = lower.find("i would like credit as") {
        let rest = &text[pos + "i would like credit as".len()..];
        let name: String = rest.lines().next().unwrap_or("").trim().trim_end_matches('.').chars().take(200).collect();
        let name = name.trim_matches(['"', '\'']).trim().to_owned();
        if !name.is_empty() {
            return Credit { name: Some(name), anonymous: false };
        }
    }
    // Anonymity only when the reporter asks for it, not when a report says that an
    // attacker "can remain anonymous".
    let asks = |l: &str| {
        (l.contains("anonym")
            || l.contains("do not credit")
            || l.contains("don't credit")
            || l.contains("not be named"))
            && ["i would", "i'd", "i want", "i prefer", "i wish", "please", "credit"].iter().any(|k| l.contains(k))
    };
    if lower.lines().any(asks) {
        return Credit { name: None, anonymous: true };
    }
    Credit::default()
}

/// The value of a bare `Label:` line that stands on the next line.
fn next_line_of(text: &str, labels: &[&str]) -> Option<String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let l = line.trim().trim_matches(['*', '#', ' ']).trim_end_matches(':').trim().to_lowercase();
        if line.trim_end().ends_with(':') && labels.contains(&l.as_str()) {
            let v = lines.next()?.trim();
            return (!v.is_empty()).then(|| v.chars().take(300).collect());
        }
    }
    None
}

/// `Yes please, as "Tomás Ferreira (independent)"` → `Tomás Ferreira (independent)`.
fn credit_name(v: &str) -> String {
    let quoted =
        v.split_once(['"', '“', '«']).and_then(|(_, rest)| rest.split_once(['"', '”', '»']).map(|(n, _)| n.trim()));
    match quoted {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => v.to_owned(),
    }
}

/// The first valid CVSS vector in the text (3.0, 3.1 or 4.0), scored by the `cvss`
/// crate: `score` is the base score with one decimal, `severity` lower case.
pub fn cvss(text: &str) -> Option<Cvss> {
    let mut rest = text;
    let mut tried = 0;
    while let Some(pos) = rest.find("CVSS:") {
        if tried == MAX_CVSS_CANDIDATES {
            return None;
        }
        tried += 1;
        let token: String = rest[pos..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
            .take(400)
            .collect();
        let token = token.trim_end_matches(['.', '/']);
        if let Some(c) = score_vector(token) {
            return Some(c);
        }
        rest = &rest[pos + 5..];
    }
    None
}

/// Scores one vector string; None when it is not a valid 3.x or 4.0 vector.
pub fn score_vector(v: &str) -> Option<Cvss> {
    let round = |x: f64| (x * 10.0).round() / 10.0;
    if v.starts_with("CVSS:3.0/") || v.starts_with("CVSS:3.1/") {
        let parsed: cvss::v3::Vector = v.parse().ok()?;
        let score = parsed.score();
        return Some(Cvss {
            version: v[5..8].to_owned(),
            vector: parsed.to_string(),
            score: round(score.value()),
            severity: score.severity().as_str().to_owned(),
        });
    }
    if v.starts_with("CVSS:4.0/") {
        let parsed: cvss::v4::Vector = v.parse().ok()?;
        let severity = parsed.score().severity().as_str().to_owned();
        return Some(Cvss {
            version: "4.0".into(),
            vector: parsed.to_string(),
            score: round(parsed.score().value()),
            severity,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_prefers_protected_then_field_then_subject() {
        assert_eq!(title(Some("Real"), "Title: F", "Outer"), "Real");
        assert_eq!(title(Some("..."), "Vulnerability Title: SQLi in login", "Outer"), "SQLi in login");
        assert_eq!(title(None, "", "Outer"), "Outer");
        assert_eq!(title(None, "", "..."), "(no subject)");
    }

    #[test]
    fn fields() {
        let t = "CWE-78 and cwe-079 and CWE-78\nTLP:AMBER+STRICT\nAffected Version(s): 1.2, 1.3\nFull Name (for credits): N/A\n";
        assert_eq!(cwes(t), vec!["CWE-78", "CWE-79"]);
        assert_eq!(tlp(t).as_deref(), Some("AMBER+STRICT"));
        assert_eq!(tlp("TLP:WHITE").as_deref(), Some("CLEAR"));
        assert_eq!(lists(t).affected_versions, vec!["1.2", "1.3"]);
        assert_eq!(credit(t), Credit { name: None, anonymous: true });
        assert_eq!(
            credit("I would like credit as Jane Doe."),
            Credit { name: Some("Jane Doe".into()), anonymous: false }
        );
        assert_eq!(credit("nothing"), Credit::default());
        assert_eq!(credit("The attacker can remain anonymous."), Credit::default());
        assert_eq!(credit("I would like to remain anonymous."), Credit { name: None, anonymous: true });
        assert_eq!(tlp("no label"), None);
    }

    #[test]
    fn cvss_vectors_scored_by_the_crate() {
        let c = cvss("Severity: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H.").unwrap();
        assert_eq!((c.version.as_str(), c.score, c.severity.as_str()), ("3.1", 9.8, "critical"));
        let c = cvss("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N").unwrap();
        assert_eq!((c.version.as_str(), c.score, c.severity.as_str()), ("3.0", 1.8, "low"));
        let c = cvss("Severity (CVSS 4.0): CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N").unwrap();
        assert_eq!((c.version.as_str(), c.score, c.severity.as_str()), ("4.0", 9.3, "critical"));
        assert!(cvss("CVSS:3.1/AV:X/garbage").is_none());
        assert!(cvss("no vector here").is_none());
    }

    /// Issue 10: 10,000 distinct CWE ids were all kept (deduplicated by a linear search
    /// of the list, so quadratic) and stored in the case. Now the first MAX_CWES are
    /// kept and a warning says that more were dropped.
    #[test]
    fn cwe_flood_is_capped_with_a_warning() {
        let text: String = (1..=10_000).map(|n| format!("CWE-{n} ")).collect();
        let l = lists(&text);
        assert_eq!(l.cwe.len(), MAX_CWES);
        assert_eq!(l.cwe.first().map(String::as_str), Some("CWE-1"));
        assert_eq!(l.cwe.last(), Some(&format!("CWE-{MAX_CWES}")));
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("CWE"), "{:?}", l.warnings);
        // Exactly at the cap, and repeats of kept ids: nothing dropped, no warning.
        let text: String = (1..=MAX_CWES).chain(1..=MAX_CWES).map(|n| format!("cwe-{n}, ")).collect();
        let l = lists(&text);
        assert_eq!((l.cwe.len(), l.warnings.len()), (MAX_CWES, 0));
    }

    #[test]
    fn affected_versions_flood_is_capped_with_a_warning() {
        let list: Vec<String> = (0..140).map(|n| n.to_string()).collect();
        let l = lists(&format!("Affected versions: {}\n", list.join(",")));
        assert_eq!(l.affected_versions.len(), MAX_VERSIONS);
        assert!(l.warnings.iter().any(|w| w.contains("affected versions")), "{:?}", l.warnings);
        let l = lists("Affected versions: 1.0, 1.0, 1.1\n");
        assert_eq!((l.affected_versions, l.warnings.len()), (vec!["1.0".to_owned(), "1.1".to_owned()], 0));
    }

    #[test]
    fn cwe_ids_need_a_word_boundary_and_digits() {
        assert_eq!(cwes("xCWE-1 CWE- CWE-000 CWE-0079 (cwe-20)"), vec!["CWE-79", "CWE-20"]);
        assert_eq!(cwes("CWE-1234567"), vec!["CWE-123456"]);
    }

    #[test]
    fn cvss_tries_a_bounded_number_of_candidates() {
        let junk = "CVSS:9/ ".repeat(MAX_CVSS_CANDIDATES);
        let valid = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
        assert!(cvss(&format!("{}{valid}", "CVSS:9/ ".repeat(MAX_CVSS_CANDIDATES - 1))).is_some());
        assert!(cvss(&format!("{junk}{valid}")).is_none());
    }
}
