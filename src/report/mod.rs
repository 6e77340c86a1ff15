//! Pure extraction of structured fields from a report's text: title, CWE ids, TLP,
//! affected versions, credit. Unknown or missing fields stay empty: never invent.

use crate::case::{Credit, Cvss};

/// Subjects that mail clients put on the outside of encrypted mail: not a title.
const PLACEHOLDER_SUBJECTS: &[&str] = &["", "...", "encrypted message", "encrypted email", "pgp message", "(no subject)"];

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

/// CWE ids mentioned anywhere (`CWE-78`), in order, without duplicates.
pub fn cwes(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let upper = text.to_ascii_uppercase();
    let b = upper.as_bytes();
    let mut i = 0;
    while let Some(pos) = upper[i..].find("CWE-") {
        let at = i + pos;
        let digits: String = upper[at + 4..].chars().take_while(|c| c.is_ascii_digit()).take(6).collect();
        let boundary = at == 0 || !b[at - 1].is_ascii_alphanumeric();
        if boundary && !digits.is_empty() {
            let id = format!("CWE-{}", digits.trim_start_matches('0'));
            if id != "CWE-" && !out.contains(&id) {
                out.push(id);
            }
        }
        i = at + 4;
    }
    out
}

/// The TLP 2.0 label, without the prefix; TLP:WHITE is CLEAR.
pub fn tlp(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let pos = upper.find("TLP:")?;
    let rest: String =
        upper[pos + 4..].trim_start().chars().take_while(|c| c.is_ascii_alphabetic() || *c == '+').collect();
    match rest.as_str() {
        "CLEAR" | "WHITE" => Some("CLEAR".into()),
        "GREEN" => Some("GREEN".into()),
        "AMBER+STRICT" => Some("AMBER+STRICT".into()),
        "AMBER" => Some("AMBER".into()),
        "RED" => Some("RED".into()),
        _ => None,
    }
}

/// Affected versions from an `Affected Version(s):` style field, split on commas.
pub fn affected_versions(text: &str) -> Vec<String> {
    field(text, &["affected version(s)", "affected versions", "affected version", "versions affected", "version"])
        .map(|v| v.split([',', ';']).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// Credit wishes: a name for credits, or anonymity ("N/A", "anonymous").
pub fn credit(text: &str) -> Credit {
    if let Some(v) = field(text, &["full name (for credits)", "credit", "credit as", "name for credits", "credits"]) {
        let l = v.to_ascii_lowercase();
        if matches!(l.as_str(), "n/a" | "na" | "none" | "anonymous" | "anon" | "-") || l.contains("anonym") {
            return Credit { name: None, anonymous: true };
        }
        return Credit { name: Some(v), anonymous: false };
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
        (l.contains("anonym") || l.contains("do not credit") || l.contains("don't credit") || l.contains("not be named"))
            && ["i would", "i'd", "i want", "i prefer", "i wish", "please", "credit"].iter().any(|k| l.contains(k))
    };
    if lower.lines().any(asks) {
        return Credit { name: None, anonymous: true };
    }
    Credit::default()
}

/// The first valid CVSS vector in the text (3.0, 3.1 or 4.0), scored by the `cvss`
/// crate: `score` is the base score with one decimal, `severity` lower case.
pub fn cvss(text: &str) -> Option<Cvss> {
    let mut rest = text;
    while let Some(pos) = rest.find("CVSS:") {
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
        assert_eq!(affected_versions(t), vec!["1.2", "1.3"]);
        assert_eq!(credit(t), Credit { name: None, anonymous: true });
        assert_eq!(credit("I would like credit as Jane Doe."), Credit { name: Some("Jane Doe".into()), anonymous: false });
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
}
