//! Duplicates and credit by receipt time: the duplicate candidates a case carries, the
//! reporters of the same vulnerability an original lists (`also_reported_by`), and the
//! one rule that links a duplicate to its original.
//!
//! Pure: cases in, cases changed and what to say out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Case, Status, rfc3339, ts};

/// A duplicate candidate of a case, found at intake (or by `case similar`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Duplicate {
    pub case: String,
    /// 0.0 to 1.0 (`triage::similar::score`).
    pub score: f64,
    /// Each signal that matched, in words.
    pub why: Vec<String>,
}

/// Another reporter of the vulnerability an original case is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlsoReported {
    /// Their case, rejected as a duplicate of this one.
    pub case: String,
    /// Their address.
    pub reporter: String,
    #[serde(with = "ts")]
    pub received_at: DateTime<Utc>,
    /// The name they asked to be credited with (extension; None: not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<String>,
    /// They asked to stay anonymous (extension): never named, not even as "also".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

impl AlsoReported {
    pub fn of(c: &Case) -> AlsoReported {
        AlsoReported {
            case: c.id.clone(),
            reporter: c.reporter.address.clone(),
            received_at: c.received_at,
            credit: c.credit.name.clone().filter(|n| !n.trim().is_empty()),
            anonymous: c.credit.anonymous,
        }
    }
}

/// The case a `duplicate:ID` rejection names, if `c` is one.
pub fn duplicate_of(c: &Case) -> Option<&str> {
    (c.status == Status::Rejected).then_some(())?;
    c.reject_reason.as_deref()?.strip_prefix("duplicate:")
}

/// Why `dup` should not be the duplicate of `orig`: it came first. The CLI says so and
/// asks for `--swap` or `--force`.
pub fn came_first(dup: &Case, orig: &Case) -> Option<String> {
    (dup.received_at < orig.received_at).then(|| {
        format!(
            "{} was received {} , before {} ({}): its reporter came first. Pass --swap to make {} the original \
             and {} its duplicate, or --force to keep {} as the original",
            dup.id,
            rfc3339(&dup.received_at),
            orig.id,
            rfc3339(&orig.received_at),
            dup.id,
            orig.id,
            orig.id
        )
        .replace(" ,", ",")
    })
}

/// Links `dup` (already rejected as `duplicate:<orig>`) to `orig`: `orig` lists dup's
/// reporter and everyone `dup` listed, in order of receipt, once each; `dup` lists no
/// one. Returns the log line for `orig`.
pub fn link(dup: &mut Case, orig: &mut Case) -> String {
    let mut moved = std::mem::take(&mut dup.also_reported_by);
    moved.push(AlsoReported::of(dup));
    for a in moved {
        if a.case != orig.id && !orig.also_reported_by.iter().any(|b| b.case == a.case) {
            orig.also_reported_by.push(a);
        }
    }
    orig.also_reported_by.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.case.cmp(&b.case)));
    format!("also reported by {} ({}, {})", dup.reporter.address, dup.id, rfc3339(&dup.received_at))
}

/// Forgets `dup` from `orig`'s list (the duplicate was reopened or re-linked).
pub fn unlink(dup_id: &str, orig: &mut Case) {
    orig.also_reported_by.retain(|a| a.case != dup_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_keeps_receipt_order_and_moves_the_list() {
        let base = crate::case::export::tests_case();
        let at = |h: i64| DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap();
        let mk = |id: &str, who: &str, h: i64| {
            let mut c = base.clone();
            c.id = id.into();
            c.reporter.address = who.into();
            c.received_at = at(h);
            c
        };
        let (mut a, mut b, mut c) = (mk("A", "a@x", 1), mk("B", "b@x", 2), mk("C", "c@x", 3));
        // C was linked to B first, then B found to duplicate A.
        link(&mut c, &mut b);
        assert_eq!(b.also_reported_by.len(), 1);
        assert!(came_first(&a, &b).is_some());
        assert!(came_first(&b, &a).is_none());
        link(&mut b, &mut a);
        assert!(b.also_reported_by.is_empty());
        let order: Vec<&str> = a.also_reported_by.iter().map(|x| x.case.as_str()).collect();
        assert_eq!(order, vec!["B", "C"]);
        link(&mut b, &mut a);
        assert_eq!(a.also_reported_by.len(), 2, "linked once");
    }
}
