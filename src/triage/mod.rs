//! The first round of triage, read from a report's text: which of the policy's fields
//! it holds, whether it declares AI use, and flags with the evidence that set them.
//!
//! Pure: text and attachment names in, values out; no I/O, no clock. Linear and capped:
//! the text is read once into a [`text::Doc`] (at most [`text::MAX_TEXT`] bytes and
//! [`text::MAX_LINES`] lines), and every recogniser walks that once with a fixed
//! vocabulary. Measured on `fixtures/triage/` (tests/triage_corpus.rs): a flag is set
//! only on evidence, and a missing flag is preferred to a wrong one.
//!
//! | file | reads |
//! |---|---|
//! | `text.rs` | lines, labels and sections, list items, code, sentences |
//! | `fields.rs` | the fields of `[policy] required` |
//! | `versions.rs` | affected versions in context |
//! | `ai.rs` | declared AI use |
//! | `scanner.rs` | `scanner-output` |
//! | `flags.rs` | `multiple-issues`, `third-party`, `exploited` |
//! | `similar.rs` | duplicate signals (attachment and PoC digests, component, versions, MinHash) and the one duplicate score |
//! | `search.rs` | the terms `case search` indexes and looks up |

mod ai;
mod fields;
mod flags;
mod scanner;
pub mod search;
pub mod similar;
pub mod text;
mod versions;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The fixed vocabulary of `[policy] required`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Description,
    Steps,
    Poc,
    Versions,
    Impact,
    Cvss,
    Cwe,
    Credit,
    AiUse,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Description,
        Field::Steps,
        Field::Poc,
        Field::Versions,
        Field::Impact,
        Field::Cvss,
        Field::Cwe,
        Field::Credit,
        Field::AiUse,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::Steps => "steps",
            Field::Poc => "poc",
            Field::Versions => "versions",
            Field::Impact => "impact",
            Field::Cvss => "cvss",
            Field::Cwe => "cwe",
            Field::Credit => "credit",
            Field::AiUse => "ai_use",
        }
    }
    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }
    /// The field in the policy's plain words, as the reporter is asked for it.
    pub fn plain(self) -> &'static str {
        match self {
            Field::Description => "a description of the vulnerability",
            Field::Steps => "steps to reproduce (or to detect) it",
            Field::Poc => "a proof of concept (a script, request or file that shows it)",
            Field::Versions => "the affected versions",
            Field::Impact => "its impact (what an attacker gains)",
            Field::Cvss => "a CVSS 3.1 or 4.0 vector",
            Field::Cwe => "the CWE id of the weakness",
            Field::Credit => "how you wish to be credited (a name, or N/A to stay anonymous)",
            Field::AiUse => "whether AI tools were used for the report, and for what",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
/// The fixed vocabulary of flags (README, "What counts").
pub enum Flag {
    ScannerOutput,
    NoPoc,
    MultipleIssues,
    ThirdParty,
    AiUndeclared,
    Exploited,
    /// The sender is blocked (reporter bans, issue 22): in the vocabulary, set by nothing yet.
    BlockedReporter,
}

impl Flag {
    pub const ALL: [Flag; 7] = [
        Flag::ScannerOutput,
        Flag::NoPoc,
        Flag::MultipleIssues,
        Flag::ThirdParty,
        Flag::AiUndeclared,
        Flag::Exploited,
        Flag::BlockedReporter,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::ScannerOutput => "scanner-output",
            Flag::NoPoc => "no-poc",
            Flag::MultipleIssues => "multiple-issues",
            Flag::ThirdParty => "third-party",
            Flag::AiUndeclared => "ai-undeclared",
            Flag::Exploited => "exploited",
            Flag::BlockedReporter => "blocked-reporter",
        }
    }
    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiDeclared {
    None,
    Used,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AiUse {
    pub declared: Option<AiDeclared>,
    pub statement: Option<String>,
}

/// What the desk knows of an attachment without reading it.
pub struct AttachmentInfo<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: u64,
}

/// What one message holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    pub present: BTreeSet<Field>,
    pub ai_use: AiUse,
    /// Each flag with the reason that set it.
    pub flags: BTreeMap<Flag, String>,
    /// The text went beyond the caps: only its start was triaged.
    pub truncated: bool,
}

/// Triage of one message: its text and what is known of its attachments.
pub fn assess(text: &str, attachments: &[AttachmentInfo]) -> Assessment {
    let doc = text::Doc::read(text);
    let mut present = fields::present(&doc, attachments);
    // The extractors the case already uses, on the reporter's own lines only.
    let own: String = doc.own().filter(|l| l.kind != text::Kind::Code).map(|l| l.text).collect::<Vec<_>>().join("\n");
    if crate::report::cvss(&own).is_some() {
        present.insert(Field::Cvss);
    }
    if !crate::report::cwes(&own).is_empty() {
        present.insert(Field::Cwe);
    }
    let credit = crate::report::credit(&own);
    if credit.name.is_some() || credit.anonymous {
        present.insert(Field::Credit);
    }
    let ai_use = ai::declared(&doc);
    if ai_use.declared.is_some() {
        present.insert(Field::AiUse);
    }
    let mut flags = BTreeMap::new();
    let has_steps = present.contains(&Field::Steps);
    let names: Vec<String> = attachments.iter().map(|a| a.name.to_owned()).collect();
    let scanner = scanner::scanner_output(&doc, has_steps, &names);
    if let Some(sc) = &scanner {
        flags.insert(Flag::ScannerOutput, sc.evidence.clone());
        if sc.findings >= 2 {
            flags.insert(Flag::MultipleIssues, format!("{} lists {} findings", sc.tool, sc.findings));
        }
        if sc.dependencies {
            flags.insert(Flag::ThirdParty, format!("{} audits dependencies: its findings are in them", sc.tool));
        }
    }
    if !has_steps && !present.contains(&Field::Poc) {
        flags.insert(Flag::NoPoc, "neither steps to reproduce nor a proof of concept".to_owned());
    }
    if !flags.contains_key(&Flag::MultipleIssues)
        && let Some(e) = flags::multiple_issues(&doc)
    {
        flags.insert(Flag::MultipleIssues, e);
    }
    if !flags.contains_key(&Flag::ThirdParty)
        && let Some(e) = flags::third_party(&doc)
    {
        flags.insert(Flag::ThirdParty, e);
    }
    if let Some(e) = flags::exploited(&doc) {
        flags.insert(Flag::Exploited, e);
    }
    Assessment { present, ai_use, flags, truncated: doc.truncated }
}

impl Assessment {
    /// Folds a later message of the same reporter in: fields add up, a declaration
    /// made later counts, flags that read the report's kind stay the first message's.
    pub fn merge(&mut self, later: &Assessment) {
        self.present.extend(later.present.iter().copied());
        if self.ai_use.declared.is_none() {
            self.ai_use = later.ai_use.clone();
        }
        if self.present.contains(&Field::Steps) || self.present.contains(&Field::Poc) {
            self.flags.remove(&Flag::NoPoc);
        }
    }
}

/// The required fields not present, in the policy's order.
pub fn missing(required: &[Field], present: &BTreeSet<Field>) -> Vec<Field> {
    required.iter().copied().filter(|f| !present.contains(f)).collect()
}

/// The flags that depend on the policy: `ai-undeclared` when it requires `ai_use`.
pub fn policy_flags(a: &Assessment, required: &[Field]) -> BTreeMap<Flag, String> {
    let mut m = BTreeMap::new();
    if required.contains(&Field::AiUse) && a.ai_use.declared.is_none() {
        m.insert(Flag::AiUndeclared, "the policy asks for a declaration of AI use; the report makes none".into());
    }
    m
}
