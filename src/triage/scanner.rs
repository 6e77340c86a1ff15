//! Is the report, or most of it, the output of an automated scanner? Each tool's output
//! has lines no person writes by hand (nuclei's `[template] [http] [high] url`, ZAP's
//! `Risk:`/`Confidence:` blocks, bandit's `>> Issue: [B602:...]`, SARIF's `"ruleId"`);
//! the report is scanner output when such lines are a large share of it and it has no
//! steps of its own. Two quoted lines of nuclei under a person's steps are not.

use super::text::{Doc, Kind};

/// One tool and the line shapes that give it away.
struct Tool {
    name: &'static str,
    /// Lowercased line prefixes.
    starts: &'static [&'static str],
    /// Lowercased substrings.
    contains: &'static [&'static str],
    /// Lowercased line prefixes that open one finding (nuclei: every matched template
    /// line; ZAP: `Alert:`; bandit: `>> Issue:`).
    finding: &'static [&'static str],
    /// Lowercased substrings that mark a line as one finding.
    finding_in: &'static [&'static str],
    /// The tool audits dependencies: what it finds is in someone else's code.
    dependencies: bool,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "nuclei",
        starts: &[],
        contains: &[
            "] [http] [",
            "] [dns] [",
            "] [tcp] [",
            "] [ssl] [",
            "] [network] [",
            "] [file] [",
            "] [javascript] [",
            "[inf] ",
            "projectdiscovery.io",
        ],
        finding: &[],
        finding_in: &[
            "] [http] [",
            "] [dns] [",
            "] [tcp] [",
            "] [ssl] [",
            "] [network] [",
            "] [file] [",
            "] [javascript] [",
        ],
        dependencies: false,
    },
    Tool {
        name: "OWASP ZAP",
        starts: &[
            "alert:",
            "risk:",
            "confidence:",
            "cwe id:",
            "wasc id:",
            "plugin id:",
            "evidence:",
            "parameter:",
            "attack:",
            "instances:",
            "reference:",
            "other info:",
            "alert detail",
            "risk=",
            "zap scanning report",
            "zap by checkmarx",
        ],
        contains: &["zaproxy.org", "risk=", "confidence="],
        finding: &["alert:"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "Burp Scanner",
        starts: &[
            "issue:",
            "issue detail",
            "issue background",
            "issue remediation",
            "remediation background",
            "remediation detail",
            "vulnerability classifications",
            "severity:",
            "confidence:",
            "host:",
            "path:",
            "request 1",
            "response 1",
        ],
        contains: &["burp scanner", "burp suite scanner", "portswigger.net/kb/issues"],
        finding: &["issue:"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "Nessus/OpenVAS",
        starts: &[
            "plugin id",
            "plugin name",
            "risk factor",
            "synopsis",
            "plugin output",
            "see also",
            "cvss v3.0 base score",
            "cvss base score",
            "nvt:",
            "oid:",
            "vulnerability detection result",
            "vulnerability detection method",
            "quality of detection",
            "vulnerability insight",
            "product detection result",
            "log method",
        ],
        contains: &["tenable.com/plugins", "nessus", "openvas", "greenbone"],
        finding: &["plugin id", "nvt:"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "Nikto",
        starts: &[
            "+ server:",
            "+ target ip:",
            "+ target hostname:",
            "+ target port:",
            "+ start time:",
            "+ end time:",
            "+ osvdb-",
            "+ /",
            "+ the anti-clickjacking",
            "+ the x-",
            "+ no cgi directories",
            "- nikto v",
        ],
        contains: &["osvdb-", "nikto"],
        finding: &["+ /", "+ osvdb-"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "sqlmap",
        starts: &[
            "parameter:",
            "type:",
            "title:",
            "payload:",
            "back-end dbms:",
            "web server operating system:",
            "web application technology:",
        ],
        contains: &[
            "] [info] ",
            "] [warning] ",
            "] [critical] ",
            "sqlmap identified",
            "sqlmap resumed",
            "sqlmap.org",
            "back-end dbms",
        ],
        finding: &["parameter:"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "Semgrep",
        starts: &["❯❱", "❱", "❯❯❱", "┌─", "│", "└─", "⋮┆", "ruleid:", "semgrep"],
        contains: &["semgrep", "❯❱", "⋮┆", "details: https://sg.run/"],
        finding: &["❯❱", "❯❯❱", "❱"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "Bandit",
        starts: &[
            ">> issue: [b",
            "severity: low",
            "severity: medium",
            "severity: high",
            "location:",
            "more info: https://bandit",
            "cwe: cwe-",
            "run started:",
            "test results:",
            "code scanned:",
            "total lines of code:",
            "total issues (by severity):",
            "total issues (by confidence):",
        ],
        contains: &["bandit.readthedocs.io", ">> issue: [b"],
        finding: &[">> issue: [b"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "SARIF (CodeQL and others)",
        starts: &[
            "\"ruleid\":",
            "\"$schema\":",
            "\"runs\":",
            "\"results\":",
            "\"physicallocation\":",
            "\"artifactlocation\":",
            "\"region\":",
            "\"startline\":",
            "\"driver\":",
            "\"tool\":",
            "\"level\":",
            "\"message\":",
            "\"uri\":",
        ],
        contains: &["sarif-schema", "json.schemastore.org/sarif", "\"ruleid\""],
        finding: &["\"ruleid\":"],
        finding_in: &[],
        dependencies: false,
    },
    Tool {
        name: "npm audit",
        starts: &[
            "# npm audit report",
            "severity:",
            "fix available via",
            "node_modules/",
            "depends on vulnerable versions",
            "no fix available",
            "to address all issues",
            "to address issues that do not require attention",
        ],
        contains: &["npm audit fix", "vulnerabilities (", "github.com/advisories/ghsa-"],
        finding: &["severity:"],
        finding_in: &[],
        dependencies: true,
    },
    Tool {
        name: "pip-audit",
        starts: &["found ", "name ", "---- ", "pysec-", "ghsa-"],
        contains: &["known vulnerabilities in", "known vulnerability in", "pip-audit", " pysec-", " ghsa-"],
        finding: &[],
        finding_in: &[" ghsa-", " pysec-"],
        dependencies: true,
    },
    Tool {
        name: "Snyk",
        starts: &[
            "testing ",
            "✗ ",
            "tested ",
            "introduced through:",
            "from:",
            "organization:",
            "package manager:",
            "target file:",
            "project name:",
            "open source:",
            "project path:",
            "licenses:",
            "issues to fix by upgrading",
            "issues with no direct upgrade",
        ],
        contains: &["snyk", "severity vulnerability found in", "security.snyk.io"],
        finding: &["✗ "],
        finding_in: &[],
        dependencies: true,
    },
];

/// The scanner a line came from, if it reads as one's output.
fn tool_of(lower: &str) -> Option<usize> {
    TOOLS
        .iter()
        .position(|t| t.starts.iter().any(|s| lower.starts_with(s)) || t.contains.iter().any(|c| lower.contains(c)))
}

/// The line has the shape of a scanner's output.
pub fn is_tool_line(lower: &str) -> bool {
    tool_of(lower).is_some()
}

/// File names of scanner reports: `zap-report.html`, `results.sarif`, `scan.nessus`.
pub fn is_scanner_report_name(lower_name: &str) -> bool {
    lower_name.ends_with(".sarif")
        || lower_name.ends_with(".sarif.json")
        || lower_name.ends_with(".nessus")
        || [
            "nuclei",
            "zap-report",
            "zap_report",
            "zapreport",
            "burp",
            "openvas",
            "nikto",
            "sqlmap",
            "snyk",
            "semgrep",
            "bandit",
            "npm-audit",
            "pip-audit",
            "scan-report",
            "scan_report",
        ]
        .iter()
        .any(|w| lower_name.contains(w))
}

/// What the scanner lines say: which tool, and how many findings it lists.
#[derive(Clone, Debug, PartialEq)]
pub struct ScannerOutput {
    /// Why the report reads as scanner output.
    pub evidence: String,
    pub tool: &'static str,
    /// Distinct finding lines of that tool (0 when read from an attachment's name).
    pub findings: usize,
    /// The tool audits dependencies (npm audit, pip-audit, Snyk).
    pub dependencies: bool,
}

/// The report read as scanner output, or None. `has_steps`: the report has steps of a
/// person's own (then a scanner's lines are its evidence, not the report).
pub fn scanner_output(doc: &Doc, has_steps: bool, attachment_names: &[String]) -> Option<ScannerOutput> {
    if has_steps {
        return None;
    }
    let mut counts = [0usize; TOOLS.len()];
    let mut content = 0usize;
    for l in doc.lines.iter().filter(|l| !matches!(l.kind, Kind::Blank | Kind::Fence | Kind::Quoted)) {
        content += 1;
        if let Some(t) = tool_of(&l.lower) {
            counts[t] += 1;
        }
    }
    let (best, &n) = counts.iter().enumerate().max_by_key(|(_, n)| **n)?;
    let all: usize = counts.iter().sum();
    // Three lines of one tool, and tool lines at least a third of the report.
    if n >= 3 && all * 3 >= content {
        let tool = &TOOLS[best];
        let mut seen: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for l in doc.lines.iter().filter(|l| !matches!(l.kind, Kind::Blank | Kind::Fence | Kind::Quoted)) {
            let t = l.lower.trim_start();
            let one = tool.finding.iter().any(|f| t.starts_with(f)) || tool.finding_in.iter().any(|f| t.contains(f));
            if one && seen.len() < 1000 {
                seen.insert(t);
            }
        }
        return Some(ScannerOutput {
            evidence: format!("{all} of {content} lines read as {} output", tool.name),
            tool: tool.name,
            findings: seen.len(),
            dependencies: tool.dependencies,
        });
    }
    let name = attachment_names.iter().find(|n| is_scanner_report_name(&n.to_lowercase()))?;
    let shown: String = name.chars().take(60).collect();
    Some(ScannerOutput {
        evidence: format!("the attached {shown:?} is a scanner's report and the text has no steps of its own"),
        tool: "an attached scanner report",
        findings: 0,
        dependencies: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nuclei_dump_is_scanner_output_and_two_quoted_lines_under_steps_are_not() {
        let dump = "Hi, my tool found these:\n[CVE-2021-44228] [http] [critical] https://x.test/api\n[tech-detect:nginx] [http] [info] https://x.test/\n[missing-sri] [http] [info] https://x.test/\n";
        assert!(scanner_output(&Doc::read(dump), false, &[]).is_some_and(|e| e.tool == "nuclei" && e.findings == 3));
        assert_eq!(scanner_output(&Doc::read(dump), true, &[]), None);
        let human = "I confirmed it by hand.\nThe page reflects the q parameter into a script block without escaping it.\nAfter that the cookie is sent to my host.\n[xss-reflected] [http] [high] https://x.test/?q=1\n[xss-reflected] [http] [high] https://x.test/?q=2\n";
        assert_eq!(scanner_output(&Doc::read(human), false, &[]), None);
    }
}
