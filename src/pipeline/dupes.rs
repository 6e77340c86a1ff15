//! Duplicate candidates against every case: a case's signals (`triage::similar`), the
//! index keys they are recorded under (`store/dupes.rs`), and the candidates those keys
//! name, scored by the one rule (`triage::similar::score`). Intake, `case similar` and
//! `store reindex` all go through here.
//!
//! The cost per new report is bounded: at most `BANDS + attachments + PoCs + CWEs` keys
//! are looked up, each returning at most `store::BUCKET_CAP` cases, whose signal records
//! are read by key; nothing scans the cases.

use anyhow::Result;

use crate::case::Case;
use crate::case::credit::Duplicate;
use crate::store::{Batch, Store};
use crate::triage::similar::{self, PocFile, Signals};

/// Candidates a case lists at most (the contract's five).
pub const MAX_LISTED: usize = 5;
/// A candidate scoring below this is not listed: it only shares a word or two. Under the
/// lowest score of a true duplicate on the generated set (README, "Duplicates").
pub const MIN_LISTED: f64 = 0.25;

/// The signals of a case, from its record, its text and the attachments in hand (their
/// bytes: only at intake; afterwards the record's SHA-256s stand in).
pub fn signals_of(case: &Case, files: &[PocFile]) -> Signals {
    let mut s = similar::signals(&case.title, &case.text, files, &case.cwe, &case.affected_versions);
    for a in &case.attachments {
        if !s.attachments.contains(&a.sha256) {
            s.attachments.push(a.sha256.clone());
        }
    }
    s
}

/// The keys a case's signals are indexed under.
pub fn index_keys(s: &Signals) -> Vec<String> {
    let mut keys: Vec<String> =
        similar::bands(&s.minhash).iter().enumerate().map(|(i, h)| format!("lsh:{i:02}:{h:016x}")).collect();
    keys.extend(s.attachments.iter().map(|a| format!("sha:{a}")));
    keys.extend(s.pocs.iter().map(|p| format!("poc:{p}")));
    if let Some(c) = &s.component {
        let comp = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(c.as_bytes())[..8]);
        keys.extend(s.cwe.iter().map(|cwe| format!("cwe:{}:{comp}", cwe.replace(['/', ':'], "_"))));
    }
    keys
}

/// The best candidates for a case with signals `s` among every other indexed case,
/// best first, at most [`MAX_LISTED`].
pub fn candidates(store: &Store, case_id: &str, s: &Signals) -> Result<Vec<Duplicate>> {
    let mut found: Vec<Duplicate> = Vec::new();
    let keys = index_keys(s);
    let (bands, strong): (Vec<String>, Vec<String>) = keys.into_iter().partition(|k| k.starts_with("lsh:"));
    let strong = store.dup_lookup(&strong, case_id)?;
    let mine = similar::minhash_bytes(s);
    let mut ids = strong.clone();
    for id in store.dup_lookup(&bands, case_id)? {
        // Found by its text alone: its MinHash first (256 bytes), the rest only if the
        // text could make it a candidate.
        if !strong.contains(&id)
            && store.dup_minhash(&id)?.is_some_and(|m| similar::jaccard_raw(&mine, &m) >= similar::MIN_TEXT)
        {
            ids.insert(id);
        }
    }
    for id in ids {
        let Some(other) = store.dup_signals::<Signals>(&id)? else { continue };
        let (score, why) = similar::score(s, &other);
        if score >= MIN_LISTED {
            found.push(Duplicate { case: id, score, why });
        }
    }
    found.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.case.cmp(&b.case)));
    found.truncate(MAX_LISTED);
    Ok(found)
}

/// Writes a case's signals and keys into `b`.
pub fn record(b: &mut Batch, case_id: &str, s: &Signals) {
    b.put_dup_signals(case_id, s, &similar::minhash_bytes(s), &index_keys(s));
}

/// The line the team summary starts with when the best candidate reaches `threshold`.
pub fn summary_line(case: &Case, threshold: f64) -> Option<String> {
    let top = case.duplicates.first().filter(|d| d.score >= threshold)?;
    Some(format!(
        "POSSIBLE DUPLICATE of {} (score {:.2}): {}\n  secintake case similar {}\n\n",
        top.case,
        top.score,
        top.why.join("; "),
        case.id
    ))
}

/// Indexes every case that has no signals yet (a store from before the index), once:
/// the daemon and the commands that read the index call this; a no-op once marked.
pub fn ensure_index(store: &Store) -> Result<usize> {
    if store.dupes_indexed()? {
        return Ok(0);
    }
    reindex(store, false)
}

/// Rebuilds the duplicate index from the store (`store reindex`): every case's signals
/// from its record and texts (a PoC digest of an attachment, made at intake from its
/// bytes, is kept); with `all`, cases already indexed too.
pub fn reindex(store: &Store, all: bool) -> Result<usize> {
    let tx = store.begin();
    let mut ids = Vec::new();
    store.each_case(|c| {
        ids.push(c.id);
        Ok(())
    })?;
    let mut n = 0;
    let mut b = Batch::default();
    for id in ids {
        let old = store.dup_signals::<Signals>(&id)?;
        if old.is_some() && !all {
            continue;
        }
        let Some(c) = store.case(&id)? else { continue };
        let mut s = signals_of(&c, &[]);
        if let Some(old) = &old {
            b.remove_dup_keys(&id, &index_keys(old));
            for p in &old.pocs {
                if !s.pocs.contains(p) {
                    s.pocs.push(p.clone());
                }
            }
        }
        record(&mut b, &id, &s);
        n += 1;
        // Bounded batches: a store of years of mail is not one sled batch in memory.
        if b.len() > 20_000 {
            tx.commit(std::mem::take(&mut b))?;
        }
    }
    b.put_dupes_indexed();
    tx.commit(b)?;
    Ok(n)
}
