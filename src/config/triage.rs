//! `[triage]`: what the desk does with duplicates and blocked reporters.

use toml::Value;

use super::Reader;

/// The keys `[triage]` takes.
pub const KEYS: &[&str] = &["duplicate_threshold", "block_notice"];

/// The score from which the team summary names a duplicate candidate in its first lines.
/// Measured on the generated set of `tests/duplicates.rs` (reworded copies, same-PoC
/// copies, unrelated reports of one CWE class): README, "Duplicates".
pub const DEFAULT_DUPLICATE_THRESHOLD: f64 = 0.6;

/// `[triage]`.
#[derive(Clone, Debug)]
pub struct Triage {
    /// A candidate scoring this or more heads the team summary (0.0 to 1.0).
    pub duplicate_threshold: f64,
    /// A blocked reporter gets one signed notice per block period (false: none).
    pub block_notice: bool,
}

impl Default for Triage {
    fn default() -> Triage {
        Triage { duplicate_threshold: DEFAULT_DUPLICATE_THRESHOLD, block_notice: true }
    }
}

pub(super) fn read(r: &mut Reader) -> Triage {
    let key = "triage.duplicate_threshold";
    let duplicate_threshold = match r.get(key) {
        None => DEFAULT_DUPLICATE_THRESHOLD,
        Some(Value::Float(f)) if (0.0..=1.0).contains(f) => *f,
        Some(Value::Integer(i)) if (0..=1).contains(i) => *i as f64,
        Some(_) => {
            r.problem(key, "must be a number from 0.0 to 1.0, e.g. 0.5");
            DEFAULT_DUPLICATE_THRESHOLD
        }
    };
    Triage { duplicate_threshold, block_notice: r.boolean("triage.block_notice", true) }
}
