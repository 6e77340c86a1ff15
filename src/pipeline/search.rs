//! `case search`: what of a case is indexed (its parts), keeping the index current as
//! cases change, BM25 ranking over the keyed-hash postings (`store/search.rs`) and
//! snippets made at query time from the texts.
//!
//! A case is indexed in parts: `m<n>` the text of message n (written once, when the
//! message arrives), `meta` its id, title, reporter, credit, CWE, CVE, project and
//! attachment names (again on every `case set`), `notes` its notes (again on every
//! `case note`). A query's cost is its terms' postings (each holds the frequency and the
//! part's length: nothing else is read to rank) and the texts of the hits shown.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::case::Case;
use crate::store::{Batch, SearchPart, SearchStats, Store};
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

fn put(store: &Store, b: &mut Batch, case_id: &str, name: &str, text: &str, stats: &mut SearchStats) -> Result<()> {
    let (tf, len) = terms::frequencies(text);
    store.put_search_part(b, case_id, &SearchPart { name, tf: &tf, len }, stats)
}

/// Indexes a case's `meta` part and the texts of its messages from `from` on (those
/// in hand: a new case's first, a follow-up's last), in one batch.
pub fn index_case(store: &Store, b: &mut Batch, c: &Case, from: usize) -> Result<()> {
    let mut stats = store.search_stats()?;
    index_case_with(store, b, c, from, &mut stats)
}

fn index_case_with(store: &Store, b: &mut Batch, c: &Case, from: usize, stats: &mut SearchStats) -> Result<()> {
    put(store, b, &c.id, "meta", &meta_text(c), stats)?;
    for (n, m) in c.messages.iter().enumerate().skip(from) {
        put(store, b, &c.id, &format!("m{n}"), &m.text, stats)?;
    }
    Ok(())
}

/// Indexes a case's notes (its audit log's `note` entries, plus `extra` not yet in it).
pub fn index_notes(store: &Store, b: &mut Batch, case_id: &str, extra: &str) -> Result<()> {
    let mut stats = store.search_stats()?;
    index_notes_with(store, b, case_id, extra, &mut stats)
}

fn index_notes_with(store: &Store, b: &mut Batch, case_id: &str, extra: &str, stats: &mut SearchStats) -> Result<()> {
    let mut notes: Vec<String> =
        store.log(case_id)?.into_iter().filter(|e| e.action == "note").map(|e| e.detail).collect();
    notes.push(extra.to_owned());
    put(store, b, case_id, "notes", &notes.join("\n"), stats)
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
    let mut stats = SearchStats::default();
    for id in &ids {
        let Some(c) = store.case(id)? else { continue };
        index_case_with(store, &mut b, &c, 0, &mut stats)?;
        index_notes_with(store, &mut b, id, "", &mut stats)?;
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
    let q = terms::query_terms(query);
    if q.is_empty() {
        return Ok(Vec::new());
    }
    // Each part is a document for BM25 (a case's parts differ in kind and length);
    // a case scores the sum of its parts.
    let stats = store.search_stats()?;
    let n = stats.parts.max(1) as f64;
    let avg = (stats.total_len as f64 / n).max(1.0);
    let mut scores: BTreeMap<String, f64> = BTreeMap::new();
    for term in &q {
        let postings = store.search_postings(term)?;
        let df = postings.len() as f64;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        for (case, _, f, dl) in postings {
            let (f, dl) = (f64::from(f), f64::from(dl));
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
