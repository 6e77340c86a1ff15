//! `case search`: what of a case is indexed (its parts), keeping the index current as
//! cases change, BM25 ranking over the keyed-hash postings (`store/search.rs`) and
//! snippets made at query time from the texts.
//!
//! A case is indexed in parts: `m<n>` the text of message n (written once, when the
//! message arrives), `meta` its id, title, reporter, credit, CWE, CVE, project and
//! attachment names (again on every `case set`), `notes` its notes (again on every
//! `case note`). A query's cost is its terms' postings (a few thousand keys for a common
//! word over 10,000 cases) and the cases' lengths; the texts of the hits shown only.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::case::Case;
use crate::store::{Batch, SearchPart, Store};
use crate::triage::search as terms;

/// BM25's parameters, the usual ones (Robertson, Zaragoza: k1 in 1.2..2, b = 0.75).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A case's `meta` part: everything searchable that is not a text or a note.
pub fn meta_text(c: &Case) -> String {
    let mut t = vec![c.id.clone(), c.title.clone(), c.reporter.address.clone(), c.reporter.name.clone()];
    t.extend(c.credit.name.clone());
    t.extend(c.cwe.iter().cloned());
    t.extend(c.cve.clone());
    t.extend(c.project.clone());
    t.extend(c.attachments.iter().map(|a| a.name.clone()));
    t.extend(c.reject_reason.clone());
    t.join("\n")
}

fn put(store: &Store, b: &mut Batch, case_id: &str, name: &str, text: &str) -> Result<()> {
    let (tf, len) = terms::frequencies(text);
    store.put_search_part(b, case_id, &SearchPart { name, tf: &tf, len })
}

/// Indexes a case's `meta` part and the texts of its messages from `from` on (those
/// in hand: a new case's first, a follow-up's last).
pub fn index_case(store: &Store, b: &mut Batch, c: &Case, from: usize) -> Result<()> {
    put(store, b, &c.id, "meta", &meta_text(c))?;
    for (n, m) in c.messages.iter().enumerate().skip(from) {
        put(store, b, &c.id, &format!("m{n}"), &m.text)?;
    }
    Ok(())
}

/// Indexes a case's notes (its audit log's `note` entries, plus `extra` not yet in it).
pub fn index_notes(store: &Store, b: &mut Batch, case_id: &str, extra: &str) -> Result<()> {
    let mut notes: Vec<String> =
        store.log(case_id)?.into_iter().filter(|e| e.action == "note").map(|e| e.detail).collect();
    notes.push(extra.to_owned());
    put(store, b, case_id, "notes", &notes.join("\n"))
}

/// Builds the index when the store has none yet (`store reindex` builds it always).
pub fn ensure_index(store: &Store) -> Result<usize> {
    if store.search_indexed()? {
        return Ok(0);
    }
    reindex(store)
}

/// Rebuilds the search index from the store: every case, its texts and notes.
pub fn reindex(store: &Store) -> Result<usize> {
    let tx = store.begin();
    let mut clear = Batch::default();
    store.clear_search(&mut clear)?;
    tx.commit(clear)?;
    let mut ids = Vec::new();
    store.each_case(|c| {
        ids.push(c.id);
        Ok(())
    })?;
    let mut b = Batch::default();
    for id in &ids {
        let Some(c) = store.case(id)? else { continue };
        index_case(store, &mut b, &c, 0)?;
        index_notes(store, &mut b, id, "")?;
        if b.len() > 20_000 {
            tx.commit(std::mem::take(&mut b))?;
        }
    }
    store.put_search_indexed(&mut b);
    tx.commit(b)?;
    Ok(ids.len())
}

/// One search result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hit {
    pub case: String,
    pub score: f64,
    pub status: String,
    pub title: String,
    #[serde(with = "crate::case::ts")]
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// A passage around the first query term the case's text holds.
    pub snippet: String,
}

/// The cases matching `query` best first (BM25 over every part of each case), those
/// `keep` accepts, at most `limit`.
pub fn search(store: &Store, query: &str, keep: impl Fn(&Case) -> bool, limit: usize) -> Result<Vec<Hit>> {
    let q: Vec<String> = terms::terms(query).into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let lengths: BTreeMap<String, u64> = store.search_lengths()?.into_iter().collect();
    let n = lengths.len().max(1) as f64;
    let avg = (lengths.values().sum::<u64>() as f64 / n).max(1.0);
    let mut scores: BTreeMap<String, f64> = BTreeMap::new();
    for term in &q {
        // A case's frequency of the term: its parts summed.
        let mut tf: BTreeMap<String, u32> = BTreeMap::new();
        for (case, _, f) in store.search_postings(term)? {
            *tf.entry(case).or_insert(0) += f;
        }
        let df = tf.len() as f64;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for (case, f) in tf {
            let dl = lengths.get(&case).copied().unwrap_or(0) as f64;
            let f = f64::from(f);
            *scores.entry(case).or_insert(0.0) += idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * dl / avg));
        }
    }
    let mut ranked: Vec<(String, f64)> = scores.into_iter().collect();
    ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(&b.0)));
    let mut hits = Vec::new();
    for (id, score) in ranked {
        if hits.len() >= limit {
            break;
        }
        let Some(meta) = store.case_meta(&id)? else { continue };
        if !keep(&meta) {
            continue;
        }
        let c = store.case(&id)?.unwrap_or(meta);
        let notes: Vec<String> = store.log(&id)?.into_iter().filter(|e| e.action == "note").map(|e| e.detail).collect();
        let texts: Vec<&str> = c.messages.iter().map(|m| m.text.as_str()).collect();
        let body = format!("{}\n{}\n{}", texts.join("\n"), notes.join("\n"), meta_text(&c));
        hits.push(Hit {
            case: id,
            score: (score * 1000.0).round() / 1000.0,
            status: c.status.as_str().to_owned(),
            title: c.title.clone(),
            received_at: c.received_at,
            snippet: terms::snippet(&body, &q, 120),
        });
    }
    Ok(hits)
}
