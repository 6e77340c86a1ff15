//! The flags that read what kind of report this is: several issues in one mail, a flaw
//! the report places in a dependency, exploitation in the wild. Each returns the reason
//! it was set, and a sentence that is only near the words does not set it: a false flag
//! costs the team a glance, a missing one costs nothing the team would not see anyway.

use std::collections::BTreeSet;

use super::text::{Doc, Kind};

/// Words that head a finding: "Finding 2", "Issue #3", "Vulnerability 1:".
const FINDING_WORDS: &[&str] = &[
    "finding",
    "issue",
    "vulnerability",
    "vuln",
    "bug",
    "problem",
    "weakness",
    "flaw",
    "schwachstelle",
    "problème",
    "vulnérabilité",
    "vulnerabilidad",
    "hallazgo",
    "fallo",
];
/// Classes of vulnerability a numbered heading names: "## 2. IDOR in /api/users".
const CLASSES: &[&str] = &[
    "xss",
    "cross-site",
    "sql",
    "injection",
    "idor",
    "csrf",
    "ssrf",
    "rce",
    "remote code",
    "traversal",
    "overflow",
    "bypass",
    "disclosure",
    "redirect",
    "deserialization",
    "deserialisation",
    "xxe",
    "race",
    "denial of service",
    "dos",
    "takeover",
    "escalation",
    "leak",
    "exposure",
    "misconfiguration",
    "clickjacking",
    "insecure",
    "missing",
    "hardcoded",
    "hard-coded",
    "weak",
    "unauthenticated",
    "broken",
    "prototype pollution",
    "command",
    "upload",
    "enumeration",
    "spoofing",
    "smuggling",
    "poisoning",
    "hijack",
];

/// Several separately titled findings: headings or labels "Finding 1", "Issue 2: ...",
/// or numbered headings that each name a vulnerability class.
pub fn multiple_issues(doc: &Doc) -> Option<String> {
    let mut numbers: BTreeSet<u32> = BTreeSet::new();
    for l in &doc.lines {
        let heading = l.label.as_ref().is_some_and(|lab| lab.heading) || l.kind == Kind::Label;
        if !heading {
            continue;
        }
        let s = l.lower.trim_start_matches(['#', '*', '_', ' ']);
        if let Some(n) = finding_number(s) {
            numbers.insert(n);
            continue;
        }
        // "## 2. IDOR in /api/users", "**3) Stored XSS**"
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        let after = &s[digits.len()..];
        if !digits.is_empty()
            && (after.starts_with(". ") || after.starts_with(") "))
            && CLASSES.iter().any(|c| after.contains(c))
            && let Ok(n) = digits.parse()
        {
            numbers.insert(n);
        }
    }
    (numbers.len() >= 2).then(|| format!("{} separately numbered findings", numbers.len()))
}

/// "finding 2", "issue #3:", "vulnerability 1 -": the number after a finding word.
fn finding_number(s: &str) -> Option<u32> {
    let word = FINDING_WORDS.iter().find(|w| s.starts_with(**w))?;
    let rest = s[word.len()..].trim_start_matches(['s', ' ', '#', 'n', 'o', '.']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().ok()?;
    // "Issue 2024 ..." is a year, not a finding number.
    (n > 0 && n < 100).then_some(n)
}

/// The report says the flaw is in a named dependency: "the bug is in the bundled
/// libxml2", "this is an upstream vulnerability in lodash". Contrasts ("unlike the
/// upstream library, your fork ...") and denials do not count.
pub fn third_party(doc: &Doc) -> Option<String> {
    const PLACES: &[&str] = &[
        "in the upstream",
        "in upstream",
        "an upstream bug",
        "an upstream issue",
        "an upstream vulnerability",
        "upstream bug",
        "is in the bundled",
        "in the bundled",
        "in the vendored",
        "vendored copy",
        "bundled copy",
        "in the third-party",
        "in a third-party",
        "in the third party",
        "third-party library",
        "third-party package",
        "third-party dependency",
        "in the dependency",
        "in a dependency",
        "in your dependency",
        "a dependency of",
        "transitive dependency",
        "vulnerable dependency",
        "vulnerable version of",
        "inherited from",
        "comes from the",
        "root cause is in",
        "root cause lies in",
        "lies in the",
        "resides in the",
        "is in the library",
        "bug in the library",
        "flaw in the library",
        "in the underlying library",
        "underlying library",
        "in der abhängigkeit",
        "dans la dépendance",
        "dans la bibliothèque",
        "en la dependencia",
        "en la biblioteca",
    ];
    const WHAT: &[&str] = &[
        "library",
        "package",
        "dependency",
        "dependencies",
        "upstream",
        "bundled",
        "vendored",
        "module",
        "crate",
        "gem",
        "npm",
        "pypi",
        "bibliothek",
        "abhängigkeit",
        "bibliothèque",
        "dépendance",
        "biblioteca",
        "dependencia",
    ];
    const NOT: &[&str] = &[
        "unlike",
        "not in the",
        "not an upstream",
        "isn't in",
        "is not in",
        "rather than",
        "your fork",
        "your own code",
        "your code",
        "not the library",
        "not a dependency",
        "not in a dependency",
        "not upstream",
        "instead of",
        "own implementation",
        "no dependency",
        "doesn't affect the upstream",
        "does not affect the upstream",
    ];
    for s in &doc.sentences {
        let l = &s.lower;
        if PLACES.iter().any(|p| l.contains(p))
            && WHAT.iter().any(|w| l.contains(w))
            && !NOT.iter().any(|n| l.contains(n))
        {
            return Some("the report places the flaw in a dependency".into());
        }
    }
    None
}

/// The reporter says it is exploited in the wild. Hypotheticals ("could be exploited in
/// the wild"), denials ("no known exploitation") and other uses of the words ("common
/// in the wild") do not count.
pub fn exploited(doc: &Doc) -> Option<String> {
    const SAYS: &[&str] = &[
        "actively exploited",
        "active exploitation",
        "being exploited",
        "exploited in the wild",
        "exploitation in the wild",
        "in-the-wild exploitation",
        "exploited itw",
        "exploitation observed",
        "observed exploitation",
        "seen exploitation",
        "seen it exploited",
        "seen this exploited",
        "attacks observed",
        "observed attacks",
        "seen attacks",
        "under active attack",
        "exploited against",
        "attacks in the wild",
        "aktiv ausgenutzt",
        "wird ausgenutzt",
        "activement exploitée",
        "activement exploité",
        "exploitée activement",
        "explotada activamente",
        "explotado activamente",
        "siendo explotad",
    ];
    const NOT: &[&str] = &[
        "not ",
        "n't",
        "no known",
        "no evidence",
        "unaware",
        "unknown",
        "could be",
        "might be",
        "may be",
        "would be",
        "can be",
        "if ",
        "whether",
        "possible",
        "potentially",
        "no sign",
        "never",
        "nicht",
        "pas ",
        "aucune",
        "sin ",
        "ningún",
    ];
    for s in doc.sentences.iter().filter(|s| !s.lower.ends_with('?')) {
        let l = &s.lower;
        if SAYS.iter().any(|p| l.contains(p)) && !NOT.iter().any(|n| l.contains(n)) {
            return Some("the reporter says it is exploited in the wild".into());
        }
        // "we saw it used in the wild", "in the wild: attacks since Monday"
        if l.contains("in the wild")
            && ["attack", "exploit", "abused", "used against", "seen", "saw", "observed", "honeypot", "campaign"]
                .iter()
                .any(|w| l.contains(w))
            && !NOT.iter().any(|n| l.contains(n))
            && !l.contains("common in the wild")
        {
            return Some("the reporter says it is exploited in the wild".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_findings_and_a_single_one() {
        let many = "## Finding 1: XSS in search\ntext\n## Finding 2: SQL injection in login\ntext\n";
        assert!(multiple_issues(&Doc::read(many)).is_some());
        let numbered = "## 1. Stored XSS in comments\nx\n## 2. IDOR in /api/users\ny\n";
        assert!(multiple_issues(&Doc::read(numbered)).is_some());
        let one = "Finding: reflected XSS\n## 1. Summary\n## 2. Steps\n";
        assert_eq!(multiple_issues(&Doc::read(one)), None);
    }

    #[test]
    fn dependencies_and_contrasts() {
        assert!(third_party(&Doc::read("The bug is in the bundled libxml2 library, version 2.9.\n")).is_some());
        assert_eq!(third_party(&Doc::read("Unlike the upstream library, your fork drops the length check.\n")), None);
    }

    #[test]
    fn exploited_and_what_only_sounds_like_it() {
        assert!(
            exploited(&Doc::read("This is being exploited in the wild: we saw it in our honeypot logs.\n")).is_some()
        );
        assert!(exploited(&Doc::read("We have observed active exploitation against two customers.\n")).is_some());
        for no in [
            "This configuration is common in the wild.",
            "I am not aware of exploitation in the wild.",
            "It could be exploited in the wild by anyone.",
            "The exploit.py script below shows it.",
        ] {
            assert_eq!(exploited(&Doc::read(no)), None, "{no}");
        }
    }
}
