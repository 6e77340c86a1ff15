//! STUB until the triage branch lands (replaced wholesale by it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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
    pub fn plain(self) -> &'static str {
        self.as_str()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    ScannerOutput,
    NoPoc,
    MultipleIssues,
    ThirdParty,
    AiUndeclared,
    Exploited,
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

pub struct AttachmentInfo<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    pub present: BTreeSet<Field>,
    pub ai_use: AiUse,
    pub flags: BTreeMap<Flag, String>,
}

pub fn assess(text: &str, _attachments: &[AttachmentInfo]) -> Assessment {
    let mut a = Assessment::default();
    if !text.trim().is_empty() {
        a.present.insert(Field::Description);
    }
    a
}

impl Assessment {
    pub fn merge(&mut self, later: &Assessment) {
        self.present.extend(later.present.iter().copied());
    }
}

pub fn missing(required: &[Field], present: &BTreeSet<Field>) -> Vec<Field> {
    required.iter().copied().filter(|f| !present.contains(f)).collect()
}

pub fn policy_flags(a: &Assessment, required: &[Field]) -> BTreeMap<Flag, String> {
    let mut m = BTreeMap::new();
    if required.contains(&Field::AiUse) && a.ai_use.declared.is_none() {
        m.insert(Flag::AiUndeclared, "the policy asks for a declaration of AI use; none found".into());
    }
    m
}
