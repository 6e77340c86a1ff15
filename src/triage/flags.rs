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

/// Several separately titled findings: lines "Finding 1 - ...", "## Issue 2: ...",
/// "--- Issue B: ... ---", numbered headings that each name a vulnerability class, list
/// items that each carry their own severity ("3. Missing HSTS header (Medium)"), or the
/// reporter saying so ("two unrelated bugs", "zwei voneinander unabhängige
/// Schwachstellen"). A chain ("two issues that together give RCE") is one issue.
pub fn multiple_issues(doc: &Doc) -> Option<String> {
    let mut numbers: BTreeSet<u32> = BTreeSet::new();
    let mut rated = 0usize;
    for l in doc.lines.iter().filter(|l| matches!(l.kind, Kind::Label | Kind::Item | Kind::Prose)) {
        let s = l.lower.trim_start_matches(['#', '*', '_', ' ', '-', '=']);
        if let Some(n) = finding_number(s) {
            numbers.insert(n);
            continue;
        }
        if l.kind == Kind::Item && rated_item(&l.lower) {
            rated += 1;
        }
        let heading = l.label.as_ref().is_some_and(|lab| lab.heading) || l.kind == Kind::Label;
        if !heading {
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
    if numbers.len() >= 2 {
        return Some(format!("{} separately numbered findings", numbers.len()));
    }
    if rated >= 2 {
        return Some(format!("{rated} listed findings, each with its own severity"));
    }
    doc.sentences.iter().find_map(|s| counted_issues(&s.lower))
}

/// "finding 2 -", "issue #3:", "vulnerability 1", "issue b:": the number (letters count
/// from 1) after a finding word at the start of a line, followed by a separator.
fn finding_number(s: &str) -> Option<u32> {
    let word = FINDING_WORDS.iter().find(|w| s.starts_with(**w))?;
    let rest = s[word.len()..].strip_prefix('s').unwrap_or(&s[word.len()..]);
    let rest = rest.trim_start_matches([' ', '#']);
    let rest = rest.strip_prefix("no.").or_else(|| rest.strip_prefix("no ")).unwrap_or(rest).trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let (n, after) = if digits.is_empty() {
        // "Issue A:", "Finding B -": one letter, then a separator.
        let c = rest.chars().next().filter(|c| ('a'..='h').contains(c))?;
        (c as u32 - 'a' as u32 + 1, &rest[1..])
    } else {
        // "Issue 2024 ..." is a year, not a finding number.
        let n: u32 = digits.parse().ok()?;
        (n, &rest[digits.len()..])
    };
    let after = after.trim_start();
    let separated = after.is_empty() || after.starts_with([':', '-', '.', ')', '\u{2013}', '\u{2014}']);
    (n > 0 && n < 100 && separated).then_some(n)
}

/// "5. Autocomplete enabled on password field (Low)": a list item ending in a severity.
fn rated_item(lower: &str) -> bool {
    let t = lower.trim_end_matches(['.', ' ', '*']);
    ["(critical)", "(high)", "(medium)", "(moderate)", "(low)"].iter().any(|r| t.ends_with(r))
}

/// "two unrelated bugs", "three separate issues", "zwei voneinander unabhängige
/// Schwachstellen": a count of issues in the reporter's words, at most two words
/// between the count and the noun, and no word that makes them one chain.
fn counted_issues(lower: &str) -> Option<String> {
    const COUNTS: &[&str] =
        &["two", "three", "four", "five", "several", "zwei", "drei", "vier", "deux", "trois", "dos", "tres", "cuatro"];
    const NOUNS: &[&str] = &[
        "issues",
        "vulnerabilities",
        "problems",
        "bugs",
        "findings",
        "things",
        "flaws",
        "weaknesses",
        "schwachstellen",
        "probleme",
        "fehler",
        "failles",
        "vulnérabilités",
        "problèmes",
        "vulnerabilidades",
        "problemas",
        "fallos",
    ];
    const SOFT: &[&str] = &["problems", "things", "probleme", "fehler", "problèmes", "problemas"];
    const APART: &[&str] = &[
        "separate",
        "unrelated",
        "distinct",
        "different",
        "independent",
        "unabhängige",
        "getrennte",
        "verschiedene",
        "distinctes",
        "différentes",
        "indépendantes",
        "distintas",
        "distintos",
        "diferentes",
        "independientes",
    ];
    const QUALIFY: &[&str] = &[
        "more",
        "other",
        "new",
        "security",
        "small",
        "minor",
        "major",
        "serious",
        "critical",
        "potential",
        "additional",
        "voneinander",
        "weitere",
        "kleine",
        "nouvelles",
        "autres",
        "otras",
        "nuevas",
    ];
    const ONE: &[&str] = &[
        "chain",
        "combin",
        "together",
        "together,",
        "both needed",
        "zusammen",
        "kette",
        "ensemble",
        "juntos",
        "cadena",
    ];
    if ONE.iter().any(|w| lower.contains(w)) {
        return None;
    }
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .take(400)
        .collect();
    for (i, w) in words.iter().enumerate() {
        if !COUNTS.contains(w) {
            continue;
        }
        let between = &words[i + 1..(i + 4).min(words.len())];
        let Some(at) = between.iter().position(|n| NOUNS.contains(n)) else { continue };
        // Only words that qualify the noun stand between ("two tools: search_issues"
        // is not a count of issues).
        if !between[..at].iter().all(|a| APART.contains(a) || QUALIFY.contains(a)) {
            continue;
        }
        let noun = between[at];
        // "several problems", "two things": only with a word that says they are apart
        // ("several unrelated problems"), as they are as often one bug's effects.
        let soft = *w == "several" || SOFT.contains(&noun);
        if soft && !between[..at].iter().any(|a| APART.contains(a)) {
            continue;
        }
        return Some("the reporter says the mail holds several separate issues".to_owned());
    }
    None
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
        // "The flaw is SQLite's, not yours", "está en pdf.js, no en su código".
        if DISOWN.iter().any(|d| l.contains(d)) && FLAW.iter().any(|f| l.contains(f)) {
            return Some("the report says the flaw is not in the project's own code".into());
        }
        // "The bug is in ImageMagick: CVE-2022-44268": a flaw placed in something with
        // its own CVE, which the project does not get for a new report of its own.
        if FLAW.iter().any(|f| l.contains(f))
            && IS_IN.iter().any(|w| l.contains(w))
            && l.contains("cve-")
            && !["similar", "same as", "like cve", "same class", "variant", "regression", "incomplete fix"]
                .iter()
                .any(|w| l.contains(w))
        {
            return Some("the report places the flaw in another product with its own CVE".into());
        }
    }
    None
}

/// Words for the flaw itself.
const FLAW: &[&str] =
    &["bug", "flaw", "vulnerab", "issue", "schwachstelle", "fehler", "faille", "vulnérabilité", "fallo"];
/// "the bug is in", "está en", "liegt in", "est dans".
const IS_IN: &[&str] = &[
    " is in ",
    " lies in ",
    " resides in ",
    " está en ",
    " liegt in ",
    " steckt in ",
    " est dans ",
    " se trouve dans ",
];
/// The reporter says the flaw is not the project's.
const DISOWN: &[&str] = &[
    "not yours",
    "not in your code",
    "not your code",
    "not in your own code",
    "no en su código",
    "no en vuestro código",
    "no es suyo",
    "pas dans votre code",
    "pas le vôtre",
    "nicht in eurem code",
    "nicht in ihrem code",
    "nicht eurer",
];

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
        "mass exploitation",
        "mass-exploitation",
        "exploitation attempts against",
        "aktiv ausgenutzt",
        "aktive ausnutzung",
        "aktiven ausnutzung",
        "exploitation active",
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
        // A denial or a hypothetical comes before the words ("could be actively
        // exploited", "no evidence of active exploitation"), not after them.
        if let Some(at) = SAYS.iter().filter_map(|p| l.find(p)).min()
            && !NOT.iter().any(|n| l[..at].contains(n))
        {
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
    fn findings_by_letter_severity_and_count_and_what_is_one_issue() {
        let lettered = "--- Issue A: IDOR (CWE-639) ---\nx\n--- Issue B: Stored XSS ---\ny\n";
        assert!(multiple_issues(&Doc::read(lettered)).is_some());
        let rated = "I found:\n\n1. Missing HSTS header (Medium)\n2. Clickjacking on the home page (Low)\n";
        assert!(multiple_issues(&Doc::read(rated)).is_some());
        assert!(multiple_issues(&Doc::read("Two unrelated bugs in wikiforge 2.11.0.\n")).is_some());
        assert!(
            multiple_issues(&Doc::read("mir sind zwei voneinander unabhängige Schwachstellen aufgefallen.\n"))
                .is_some()
        );
        for one in [
            "Two issues combine into one RCE: the upload and the include.",
            "The assistant has two tools: `search_issues` and `add_comment`.",
            "This causes several problems for every user.",
            "Issue 2024 was the year we moved.",
            "Bug a day keeps the doctor away.",
        ] {
            assert_eq!(multiple_issues(&Doc::read(one)), None, "{one}");
        }
    }

    #[test]
    fn dependencies_and_contrasts() {
        assert!(third_party(&Doc::read("The bug is in the bundled libxml2 library, version 2.9.\n")).is_some());
        assert_eq!(third_party(&Doc::read("Unlike the upstream library, your fork drops the length check.\n")), None);
        assert!(third_party(&Doc::read("The flaw is SQLite's, not yours, but sync loads peer files.\n")).is_some());
        assert!(third_party(&Doc::read("The bug is in ImageMagick: CVE-2022-44268.\n")).is_some());
        assert!(third_party(&Doc::read("La vulnerabilidad está en pdf.js, no en su código.\n")).is_some());
        for own in [
            "The bug is in the upload handler of your API.",
            "The bug is in the parser, similar to CVE-2021-1234 in an older release.",
        ] {
            assert_eq!(third_party(&Doc::read(own)), None, "{own}");
        }
    }

    #[test]
    fn exploited_and_what_only_sounds_like_it() {
        assert!(
            exploited(&Doc::read("This is being exploited in the wild: we saw it in our honeypot logs.\n")).is_some()
        );
        assert!(exploited(&Doc::read("We have observed active exploitation against two customers.\n")).is_some());
        assert!(
            exploited(&Doc::read("We observed active exploitation: refunds for orders never returned.\n")).is_some()
        );
        assert!(exploited(&Doc::read("Our honeypots record mass exploitation since May.\n")).is_some());
        for no in [
            "This configuration is common in the wild.",
            "I am not aware of exploitation in the wild.",
            "It could be exploited in the wild by anyone.",
            "The exploit.py script below shows it.",
            "There is no evidence of active exploitation yet.",
        ] {
            assert_eq!(exploited(&Doc::read(no)), None, "{no}");
        }
    }
}
