//! The triage desk measured on its labelled corpus (`fixtures/triage/`, hand-written
//! reports in the shapes researchers and tools write, labels in `labels.json`): precision
//! and recall of every field and flag, declared AI use, and the false-flag rate on
//! complete, well-formed reports, which must be zero. Prints the table the closing note
//! and the README quote:
//!
//!     cargo test --test triage_corpus -- --nocapture

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use secintake::triage::{self, AiDeclared, Field, Flag};

#[derive(serde::Deserialize)]
struct Label {
    present: BTreeSet<String>,
    ai_use: Option<String>,
    flags: BTreeSet<String>,
    complete: bool,
    #[serde(default)]
    note: String,
}

#[derive(Default)]
struct Count {
    tp: usize,
    fp: usize,
    fn_: usize,
    /// File names of the errors, for the report.
    wrong: Vec<String>,
}

impl Count {
    fn add(&mut self, truth: bool, got: bool, name: &str, what: &str) {
        match (truth, got) {
            (true, true) => self.tp += 1,
            (false, true) => {
                self.fp += 1;
                self.wrong.push(format!("{name}: {what} set, not labelled"));
            }
            (true, false) => {
                self.fn_ += 1;
                self.wrong.push(format!("{name}: {what} labelled, not set"));
            }
            (false, false) => {}
        }
    }
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 { 1.0 } else { self.tp as f64 / (self.tp + self.fp) as f64 }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 { 1.0 } else { self.tp as f64 / (self.tp + self.fn_) as f64 }
    }
}

struct Measured {
    fields: BTreeMap<Field, Count>,
    flags: BTreeMap<Flag, Count>,
    ai: Count,
    /// Declared "none" for "used" or the reverse: never acceptable.
    ai_contradicted: Vec<String>,
    complete_clean: usize,
    complete_clean_flagged: Vec<String>,
    completeness_right: usize,
    total: usize,
}

fn measure() -> Measured {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/triage");
    let labels: BTreeMap<String, Label> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    let mut m = Measured {
        fields: Field::ALL.into_iter().map(|f| (f, Count::default())).collect(),
        flags: Flag::ALL
            .into_iter()
            .filter(|f| !matches!(f, Flag::AiUndeclared | Flag::BlockedReporter))
            .map(|f| (f, Count::default()))
            .collect(),
        ai: Count::default(),
        ai_contradicted: Vec::new(),
        complete_clean: 0,
        complete_clean_flagged: Vec::new(),
        completeness_right: 0,
        total: labels.len(),
    };
    let default_required = [Field::Description, Field::Steps, Field::Versions];
    for (name, label) in &labels {
        for f in &label.present {
            assert!(Field::parse(f).is_some(), "{name}: unknown field {f} in labels.json");
        }
        for f in &label.flags {
            assert!(Flag::parse(f).is_some(), "{name}: unknown flag {f} in labels.json");
        }
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let a = triage::assess(&text, &[]);
        for (f, c) in m.fields.iter_mut() {
            c.add(label.present.contains(f.as_str()), a.present.contains(f), name, f.as_str());
        }
        for (f, c) in m.flags.iter_mut() {
            c.add(label.flags.contains(f.as_str()), a.flags.contains_key(f), name, f.as_str());
        }
        let got = a.ai_use.declared.map(|d| match d {
            AiDeclared::None => "none",
            AiDeclared::Used => "used",
        });
        m.ai.add(label.ai_use.is_some(), got.is_some(), name, "ai_use declared");
        if let (Some(t), Some(g)) = (label.ai_use.as_deref(), got)
            && t != g
        {
            m.ai_contradicted.push(format!("{name}: labelled {t}, read {g}"));
        }
        let labelled_missing: Vec<Field> =
            default_required.iter().copied().filter(|f| !label.present.contains(f.as_str())).collect();
        if triage::missing(&default_required, &a.present) == labelled_missing {
            m.completeness_right += 1;
        }
        if label.complete && label.flags.is_empty() {
            m.complete_clean += 1;
            if !a.flags.is_empty() {
                let set: Vec<&str> = a.flags.keys().map(|f| f.as_str()).collect();
                m.complete_clean_flagged.push(format!("{name}: {set:?} ({})", label.note));
            }
        }
    }
    m
}

#[test]
fn the_labelled_corpus_precision_recall_and_false_flags() {
    let m = measure();
    println!("triage on fixtures/triage: {} reports", m.total);
    println!("{:<18} {:>4} {:>4} {:>4} {:>9} {:>7}", "field / flag", "tp", "fp", "fn", "precision", "recall");
    let row = |name: &str, c: &Count| {
        println!("{name:<18} {:>4} {:>4} {:>4} {:>9.2} {:>7.2}", c.tp, c.fp, c.fn_, c.precision(), c.recall())
    };
    for (f, c) in &m.fields {
        row(f.as_str(), c);
    }
    for (f, c) in &m.flags {
        row(f.as_str(), c);
    }
    row("ai_use declared", &m.ai);
    println!(
        "completeness (default policy) right on {} of {}; complete, well-formed reports flagged: {} of {}",
        m.completeness_right,
        m.total,
        m.complete_clean_flagged.len(),
        m.complete_clean
    );
    for c in m.fields.values().chain(m.flags.values()).chain([&m.ai]) {
        for w in &c.wrong {
            println!("  {w}");
        }
    }
    // The target: no complete, well-formed report gets a flag it should not have.
    assert!(m.complete_clean >= 20, "the corpus lost its complete reports");
    assert!(m.complete_clean_flagged.is_empty(), "false flags: {:#?}", m.complete_clean_flagged);
    // A declaration read the wrong way round misleads; a missed one only asks again.
    assert!(m.ai_contradicted.is_empty(), "{:#?}", m.ai_contradicted);
    // Prefer a missing flag to a wrong one: every flag's precision is high.
    for (f, c) in &m.flags {
        assert!(c.precision() >= 0.9, "{}: precision {:.2}: {:#?}", f.as_str(), c.precision(), c.wrong);
    }
    // The default policy's fields decide what the ack asks for: both errors cost.
    for f in [Field::Description, Field::Steps, Field::Versions] {
        let c = &m.fields[&f];
        assert!(
            c.precision() >= 0.9 && c.recall() >= 0.85,
            "{}: {:.2}/{:.2}: {:#?}",
            f.as_str(),
            c.precision(),
            c.recall(),
            c.wrong
        );
    }
}
