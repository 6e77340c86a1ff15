//! The SPEC-11 announcement text. Pure.

use chrono::{DateTime, Utc};

use super::*;
use crate::case::Case;

/// The SPEC-11 announcement (Scientific Python SPEC 11's template: subject, versions,
/// the CVE with its CVSS score and summary, "Am I vulnerable?", mitigation, upgrade,
/// details, credit), filled from the case; what the case cannot say is `[TO FILL: ...]`.
pub fn announce(case: &Case, project: &str, now: DateTime<Utc>) -> String {
    let project = or_fill(project, "project name");
    let fixed = versions(&case.fixed_versions);
    let version = if fixed.is_empty() { to_fill("fixed version") } else { fixed.join(", ") };
    let affected = versions(&case.affected_versions);
    let affected = if affected.is_empty() { to_fill("affected versions") } else { affected.join(", ") };
    let cve = case.cve.clone().unwrap_or_else(|| to_fill("CVE id"));
    let score = score(case)
        .map(|s| s.phrase())
        .unwrap_or_else(|| if case.cvss_unassessed() { assess_cvss() } else { to_fill("CVSS score") });
    let title = or_fill(&case.title, "one-line summary");
    let weakness: Vec<String> = cwe_ids(case)
        .iter()
        .map(|id| match cwe_name(id) {
            Some(n) => format!("{id} {n}"),
            None => (*id).to_owned(),
        })
        .collect();
    let weakness = if weakness.is_empty() { to_fill("CWE") } else { weakness.join("; ") };
    let credit = CreditAs::of(case).phrase();
    let also = super::also_sentence(case);
    let date = now.format("%Y-%m-%d");
    let advisory = placeholder_url(&case.id);

    format!(
        "Subject: Security release of {project} {version} is now available\n\
         \n\
         Hello {project} community,\n\
         \n\
         The security team and the maintainers of {project} announce the availability of\n\
         {project} {version} ({date}).\n\
         \n\
         It fixes the following vulnerability:\n\
         \n\
         * {cve} ({score}): {title}\n\
         \n\
         Upgrading to {version} is encouraged to fix this issue.\n\
         \n\
         **Am I vulnerable?**\n\
         \n\
         Check the version of {project} you run (e.g. `{project} --version`, or your package\n\
         manager). Affected versions: {affected}.\n\
         {}\n\
         \n\
         **How do I mitigate the vulnerability?**\n\
         \n\
         {}\n\
         \n\
         **How do I upgrade?**\n\
         \n\
         Upgrade to {project} {version}. {}\n\
         \n\
         **Vulnerability details**\n\
         \n\
         {cve}: {title}\n\
         Weakness: {weakness}\n\
         {}\n\
         Advisory: {advisory} {}\n\
         \n\
         **Credit**\n\
         \n\
         Thanks to {credit} for reporting this issue.{also}\n",
        to_fill("features, extensions or configuration that make a system vulnerable in practice"),
        to_fill("what users who cannot upgrade yet can do, or remove this section"),
        to_fill("upgrade steps, e.g. the package manager command"),
        details_placeholder(&project),
        to_fill("the advisory's URL"),
    )
}
