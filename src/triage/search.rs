//! The terms `case search` indexes and looks up: one tokenizer for the documents and
//! the queries, so that a query term is found exactly when the text holds it.
//!
//! Pure and capped: at most [`MAX_TEXT`] bytes of a document are read, terms are 2 to
//! [`MAX_TERM`] bytes. A word with inner punctuation (`CVE-2026-1234`,
//! `alice@example.org`, `/api/search`, `parse_header`) is a term whole and each of its
//! parts is one too, so both the id and its pieces are found.

use std::collections::BTreeMap;

/// Bytes of one document indexed (its title, texts, names, ids and notes together).
pub const MAX_TEXT: usize = 1 << 20;
/// The longest term kept; longer words (base64, hex dumps) are noise for a search.
pub const MAX_TERM: usize = 48;

/// Every term of `text`, in order (with repeats: the index counts them).
pub fn terms(text: &str) -> Vec<String> {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::new();
    for word in text[..end].split(|c: char| c.is_whitespace() || "\"'`()<>[]{},;!?*=|".contains(c)) {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        if word.is_empty() {
            continue;
        }
        let parts: Vec<&str> = word.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()).collect();
        if parts.len() > 1 && word.len() <= MAX_TERM {
            out.push(word.clone());
        }
        for p in parts {
            if (2..=MAX_TERM).contains(&p.len()) {
                out.push(p.to_owned());
            }
        }
    }
    out
}

/// The terms of a query, once each: a word with inner punctuation (an id, an address)
/// is looked up whole, its parts only when it has no other (`CVE-2026-1234` is one
/// term, not `cve`, `2026` and `1234`, which every case of the year holds).
pub fn query_terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split_whitespace() {
        let t = terms(word);
        let keep: Vec<String> = match t.first() {
            Some(first) if t.len() > 1 && first.contains(|c: char| !c.is_alphanumeric()) => vec![first.clone()],
            _ => t,
        };
        for k in keep {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// Term frequencies of a document: term -> how often it occurs, and the document's
/// length in terms.
pub fn frequencies(text: &str) -> (BTreeMap<String, u32>, u32) {
    let mut tf = BTreeMap::new();
    let mut n = 0u32;
    for t in terms(text) {
        *tf.entry(t).or_insert(0) += 1;
        n = n.saturating_add(1);
    }
    (tf, n)
}

/// A short passage of `text` around the first term of `query` it holds (about `width`
/// characters, on one line), or its start when it holds none.
pub fn snippet(text: &str, query: &[String], width: usize) -> String {
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths (rare scripts): then fall back to the start.
    let at = if lower.len() == text.len() {
        query.iter().filter_map(|q| lower.find(q.as_str())).min().unwrap_or(0)
    } else {
        0
    };
    let mut start = at.saturating_sub(width / 3);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let passage: String = text[start..].chars().take(width).collect();
    let one_line: String = passage.split_whitespace().collect::<Vec<_>>().join(" ");
    if start > 0 { format!("…{one_line}") } else { one_line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_addresses_are_terms_whole_and_in_parts() {
        let t = terms("See CVE-2026-1234 from alice@example.org, in /api/search.");
        for want in
            ["cve-2026-1234", "cve", "2026", "1234", "alice@example.org", "alice", "example", "api/search", "search"]
        {
            assert!(t.contains(&want.to_owned()), "{want}: {t:?}");
        }
        assert_eq!(terms("a I x"), Vec::<String>::new());
        assert_eq!(query_terms("CVE-2026-1234 overflow overflow"), vec!["cve-2026-1234", "overflow"]);
    }

    #[test]
    fn snippet_shows_the_match() {
        let text = format!("{} the overflow is in parse_header here", "filler ".repeat(50));
        let s = snippet(&text, &["parse_header".into()], 60);
        assert!(s.contains("parse_header"), "{s}");
        assert!(s.starts_with('…'));
    }
}
