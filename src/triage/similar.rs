//! Duplicate signals of a report and the one rule that scores two reports as duplicates.
//!
//! Pure: a report's text, title, attachments, CWE ids and versions in, a [`Signals`]
//! value out; two [`Signals`] in, a score with its reasons out. No I/O, no clock. The
//! store keeps each case's `Signals` and indexes them (`store/dupes.rs`), so that a new
//! report is compared with the few cases its keys name, never with every case.
//!
//! The signals, each independent and each named in the reasons:
//! - the SHA-256 of an attachment (the same PoC file);
//! - the SHA-256 of a PoC after normalising it ([`poc_digest`]): code blocks of the text
//!   and text attachments, with comments, whitespace, case and host names aside, and an
//!   HTTP request's volatile headers dropped and the others sorted;
//! - the same CWE with the same component ([`component`]) and overlapping versions;
//! - text similarity: the Jaccard similarity of the reports' word shingles (content words
//!   and word pairs, after normalising: lower case, hosts and stop words out, a light
//!   stemmer, a small table of synonyms), estimated by MinHash ([`MINHASH`] values) and
//!   found through LSH ([`BANDS`] bands of [`ROWS`] rows, see there).
//!
//! Linear and capped: at most [`super::text::MAX_TEXT`] bytes of text are read (through
//! [`super::text::Doc`]), at most [`MAX_POC_BYTES`] of each attachment, [`MAX_POCS`]
//! PoCs and [`MAX_FEATURES`] shingles.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::text::{Doc, Kind};

/// MinHash values kept per report: the estimate's standard error is about
/// sqrt(J(1-J)/64), 0.06 at J = 0.5, fine next to the other signals; 64 values are
/// 512 bytes in the store.
pub const MINHASH: usize = 64;
/// LSH bands and rows per band (`BANDS * ROWS <= MINHASH`; the last value is only
/// scored). Three rows a band: two texts at Jaccard 0.56 (the least similar reworded copy
/// of the generated set) share a band with probability 1-(1-0.56^3)^21 = 0.98, two
/// reports of one product's boilerplate at 0.15 with 0.07, so the candidates of a new
/// report stay few; the store caps what one band bucket returns in any case.
pub const BANDS: usize = 21;
pub const ROWS: usize = 3;
/// At most this many distinct shingles are hashed (a 256 KiB text has ~40,000 words).
pub const MAX_FEATURES: usize = 50_000;
/// Bytes of an attachment read for its PoC digest (a PoC is a script or a request).
pub const MAX_POC_BYTES: usize = 256 * 1024;
/// PoC digests kept per report (code blocks and attachments).
pub const MAX_POCS: usize = 8;
/// Shingles (content words and their pairs) from which a text's similarity counts fully:
/// about three sentences of content.
const SHORT_TEXT: f64 = 60.0;
/// A normalised PoC shorter than this says too little to match on (`ls`, `id`).
const MIN_POC_BYTES: usize = 24;

/// What a report is compared on, as the store keeps it for each case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// SHA-256 (hex) of each attachment.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Digests of the normalised PoCs ([`poc_digest`]).
    #[serde(default)]
    pub pocs: Vec<String>,
    #[serde(default)]
    pub cwe: Vec<String>,
    /// What the report is about ([`component`]), lower case.
    #[serde(default)]
    pub component: Option<String>,
    /// Version numbers the report names as affected (`2.3.4`), normalised.
    #[serde(default)]
    pub versions: Vec<String>,
    /// MinHash of the text's shingles, [`MINHASH`] values as hex; empty for a text
    /// without content words.
    #[serde(default)]
    pub minhash: String,
    /// How many distinct shingles the MinHash is of: two three-word notes ("see the
    /// attachment") are not similar texts, however equal.
    #[serde(default)]
    pub shingles: u32,
}

/// An attachment as the signals read it.
pub struct PocFile<'a> {
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// The signals of a report.
pub fn signals(title: &str, text: &str, files: &[PocFile], cwe: &[String], versions: &[String]) -> Signals {
    let doc = Doc::read(text);
    let mut pocs: Vec<String> = Vec::new();
    let mut push = |d: Option<String>| {
        if let Some(d) = d
            && !pocs.contains(&d)
            && pocs.len() < MAX_POCS
        {
            pocs.push(d);
        }
    };
    // Code blocks of the text: each run of code lines is one PoC.
    let mut block = String::new();
    for l in doc.own() {
        match l.kind {
            Kind::Code => {
                block.push_str(l.text);
                block.push('\n');
            }
            Kind::Blank if !block.is_empty() => block.push('\n'),
            _ => {
                if !block.trim().is_empty() {
                    push(poc_digest(&block));
                }
                block.clear();
            }
        }
    }
    if !block.trim().is_empty() {
        push(poc_digest(&block));
    }
    for f in files {
        if is_text_poc(f) {
            let end = f.bytes.len().min(MAX_POC_BYTES);
            push(poc_digest(&String::from_utf8_lossy(&f.bytes[..end])));
        }
    }
    let mut features: BTreeSet<u64> = BTreeSet::new();
    let words = content_words(&format!("{title}\n{}", &text[..doc_end(text)]));
    for (i, w) in words.iter().enumerate() {
        if features.len() >= MAX_FEATURES {
            break;
        }
        features.insert(fnv(w.as_bytes()));
        if let Some(next) = words.get(i + 1) {
            features.insert(fnv(format!("{w} {next}").as_bytes()));
        }
    }
    Signals {
        attachments: files.iter().map(|f| hex::encode(Sha256::digest(f.bytes))).collect(),
        pocs,
        cwe: cwe.to_vec(),
        component: component(&doc),
        versions: version_numbers(versions),
        minhash: if features.is_empty() { String::new() } else { minhash_hex(&features) },
        shingles: features.len() as u32,
    }
}

/// The end of the text the signals read: [`super::text::MAX_TEXT`] at a char boundary.
fn doc_end(text: &str) -> usize {
    let mut end = text.len().min(super::text::MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// How much two reports look like the same finding, 0..1, and why: the one rule that
/// intake, `case similar` and the summary share.
pub fn score(a: &Signals, b: &Signals) -> (f64, Vec<String>) {
    let mut why = Vec::new();
    let mut strong: f64 = 0.0;
    if let Some(sha) = a.attachments.iter().find(|s| b.attachments.contains(s)) {
        why.push(format!("same attachment (SHA-256 {})", &sha[..sha.len().min(16)]));
        strong = 1.0;
    }
    if a.pocs.iter().any(|p| b.pocs.contains(p)) {
        why.push("same PoC after normalising (whitespace, comments, hosts aside)".to_owned());
        strong = strong.max(0.95);
    }
    let mut soft = 0.0;
    let text = jaccard(&a.minhash, &b.minhash);
    if text >= 0.05 {
        why.push(format!("text similarity {text:.2} (MinHash of word shingles)"));
    }
    // Reports share boilerplate (greetings, "steps to reproduce", the same writer's or
    // model's phrasing): unrelated reports of one product reached 0.39 on the generated
    // set, reworded copies 0.56 and more. The text counts from 0.25 and is worth 0.8 at
    // 0.65 (README, "Duplicates").
    // A short text says little: full weight from SHORT_TEXT shingles on.
    let weight = (f64::from(a.shingles.min(b.shingles)) / SHORT_TEXT).min(1.0);
    soft += ((text - MIN_TEXT) / 0.4).clamp(0.0, 1.0) * 0.8 * weight;
    let cwe = a.cwe.iter().find(|c| b.cwe.contains(c));
    let component = a.component.as_ref().filter(|c| b.component.as_ref() == Some(*c));
    let versions = a.versions.iter().find(|v| b.versions.contains(v));
    match (cwe, component, versions) {
        (Some(c), Some(k), Some(v)) => {
            why.push(format!("same {c} in {k}, overlapping versions ({v})"));
            soft += 0.3;
        }
        (Some(c), Some(k), None) => {
            why.push(format!("same {c} in {k}"));
            soft += 0.2;
        }
        (None, Some(k), _) => {
            why.push(format!("same component {k}"));
            soft += 0.1;
        }
        _ => {}
    }
    let s = strong.max(soft).min(1.0);
    (((s * 100.0).round() / 100.0), why)
}

/// The LSH band keys of a MinHash ([`BANDS`] of them): reports sharing one are candidates.
pub fn bands(minhash: &str) -> Vec<u64> {
    let v = minhash_values(minhash);
    if v.len() != MINHASH {
        return Vec::new();
    }
    v.chunks_exact(ROWS)
        .take(BANDS)
        .enumerate()
        .map(|(i, rows)| {
            let mut bytes = vec![i as u8];
            for r in rows {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            fnv(&bytes)
        })
        .collect()
}

/// The estimated Jaccard similarity of two MinHashes: the share of equal values.
pub fn jaccard(a: &str, b: &str) -> f64 {
    jaccard_raw(&hex::decode(a).unwrap_or_default(), &hex::decode(b).unwrap_or_default())
}

/// [`jaccard`] of two MinHashes as raw bytes ([`minhash_bytes`]): the cheap first look
/// at a candidate, before its whole signals are read.
pub fn jaccard_raw(a: &[u8], b: &[u8]) -> f64 {
    if a.len() != MINHASH * 4 || b.len() != MINHASH * 4 {
        return 0.0;
    }
    a.chunks_exact(4).zip(b.chunks_exact(4)).filter(|(x, y)| x == y).count() as f64 / MINHASH as f64
}

/// A MinHash as the raw bytes the store keeps beside the signals.
pub fn minhash_bytes(s: &Signals) -> Vec<u8> {
    hex::decode(&s.minhash).unwrap_or_default()
}

/// The least text similarity at which a candidate found only by its text can be listed
/// (see [`score`]: the text counts from 0.25).
pub const MIN_TEXT: f64 = 0.25;

fn minhash_values(hex_str: &str) -> Vec<u32> {
    hex::decode(hex_str)
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn minhash_hex(features: &BTreeSet<u64>) -> String {
    let mut mins = [u32::MAX; MINHASH];
    for &f in features {
        for (i, m) in mins.iter_mut().enumerate() {
            // One hash function per slot: the feature mixed with the slot's seed.
            let h = splitmix(f ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1))) as u32;
            if h < *m {
                *m = h;
            }
        }
    }
    let mut bytes = Vec::with_capacity(MINHASH * 4);
    for m in mins {
        bytes.extend_from_slice(&m.to_le_bytes());
    }
    hex::encode(bytes)
}

/// FNV-1a, 64 bits: stable across Rust versions (the MinHash is stored).
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Words that say nothing about which finding a report is: function words and what
/// every report says.
const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "that",
    "this",
    "with",
    "are",
    "was",
    "were",
    "can",
    "could",
    "will",
    "would",
    "from",
    "into",
    "onto",
    "then",
    "than",
    "when",
    "which",
    "while",
    "where",
    "there",
    "their",
    "they",
    "them",
    "its",
    "has",
    "have",
    "had",
    "not",
    "but",
    "all",
    "any",
    "our",
    "your",
    "you",
    "his",
    "her",
    "one",
    "also",
    "such",
    "via",
    "using",
    "use",
    "used",
    "been",
    "being",
    "out",
    "who",
    "what",
    "how",
    "after",
    "before",
    "does",
    "did",
    "just",
    "only",
    "very",
    "may",
    "might",
    "should",
    "must",
    "some",
    "more",
    "most",
    "other",
    "about",
    "these",
    "those",
    "each",
    "both",
    "here",
    "hello",
    "regards",
    "thanks",
    "thank",
    "team",
    "security",
    "report",
    "reporting",
    "issue",
    "vulnerability",
    "found",
    "please",
    "let",
    "know",
    "dear",
    "step",
    "steps",
    "reproduce",
    "version",
    "versions",
    "affected",
    "impact",
    "summary",
    "description",
    "poc",
    "proof",
    "concept",
    "http",
    "https",
    "www",
    "com",
    "org",
    "net",
];

/// Words that reports use for the same thing, folded to one (after stemming).
const SYNONYMS: &[(&str, &str)] = &[
    ("adversary", "attacker"),
    ("hacker", "attacker"),
    ("malicious", "craft"),
    ("specially", "craft"),
    ("forge", "craft"),
    ("unauthenticat", "unauth"),
    ("anonymous", "unauth"),
    ("unprivileg", "unauth"),
    ("retriev", "read"),
    ("obtain", "read"),
    ("disclos", "leak"),
    ("expos", "leak"),
    ("reveal", "leak"),
    ("arbitrary", "any"),
    ("execut", "run"),
    ("invok", "run"),
    ("launch", "run"),
    ("start", "run"),
    ("send", "submit"),
    ("post", "submit"),
    ("issu", "submit"),
    ("input", "param"),
    ("parameter", "param"),
    ("argument", "param"),
    ("field", "param"),
    ("query", "sql"),
    ("databas", "sql"),
    ("inject", "inject"),
    ("crash", "crash"),
    ("segfault", "crash"),
    ("abort", "crash"),
    ("overflow", "overflow"),
    ("overrun", "overflow"),
    ("endpoint", "route"),
    ("path", "route"),
    ("url", "route"),
    ("page", "route"),
    ("bypass", "bypass"),
    ("circumvent", "bypass"),
    ("sanitiz", "escap"),
    ("filter", "escap"),
    ("validat", "escap"),
    ("escap", "escap"),
    ("contain", "includ"),
    ("includ", "includ"),
    ("observ", "see"),
    ("notic", "see"),
    ("show", "see"),
];

/// A report's content words, in order: lower case, URLs without their host, host names
/// and addresses dropped, stop words out, stemmed, synonyms folded.
pub fn content_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in text.split_whitespace() {
        let raw = raw.to_lowercase();
        let word: &str = match raw.find("://") {
            Some(i) => raw[i + 3..].find('/').map(|p| &raw[i + 3 + p..]).unwrap_or(""),
            None if is_host(raw.trim_matches(|c: char| !c.is_alphanumeric())) => "",
            None => &raw,
        };
        for t in word.split(|c: char| !c.is_alphanumeric() && c != '_') {
            if t.len() < 3 || t.len() > 40 || t.bytes().all(|b| b.is_ascii_digit()) || STOP.contains(&t) {
                continue;
            }
            let s = stem(t);
            let s = SYNONYMS.iter().find(|(from, _)| s.starts_with(from)).map(|(_, to)| *to).unwrap_or(s);
            out.push(s.to_owned());
        }
    }
    out
}

/// A light suffix stripper: "injecting", "injected", "injects" -> "inject".
fn stem(w: &str) -> &str {
    for suffix in ["ations", "ation", "ings", "ing", "ed", "es", "s", "ly"] {
        if w.len() > suffix.len() + 3
            && let Some(s) = w.strip_suffix(suffix)
        {
            return s;
        }
    }
    w
}

/// A host name or an address: `example.com`, `10.0.0.5:8080`, `[::1]`, `localhost`.
fn is_host(w: &str) -> bool {
    let w = w.trim_start_matches('[').split(['/', ']']).next().unwrap_or("");
    let host = match w.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => w,
    };
    if host == "localhost" {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() == 4
        && labels.iter().all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    // A name: labels of letters, digits and hyphens, the last a known-shaped TLD. Version
    // numbers (2.3.4) and file names (poc.py) are not hosts.
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels.last().is_some_and(|t| {
            (2..=6).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_lowercase())
                && !["py", "sh", "js", "rb", "pl", "go", "rs", "txt", "html", "php", "c", "h", "json", "xml", "yml"]
                    .contains(t)
        })
}

/// Whether an attachment is a PoC text worth normalising (a script, a request, a text).
fn is_text_poc(f: &PocFile) -> bool {
    let name = f.name.to_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    f.content_type.starts_with("text/")
        || [
            "py", "sh", "bash", "js", "ts", "rb", "pl", "php", "go", "c", "rs", "http", "req", "txt", "html", "xml",
            "json", "yaml", "yml", "ps1",
        ]
        .contains(&ext)
}

/// HTTP headers that differ between two sendings of the same request.
const VOLATILE_HEADERS: &[&str] = &[
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-length",
    "cookie",
    "date",
    "origin",
    "referer",
    "x-forwarded-for",
    "x-request-id",
    "authorization",
    "cache-control",
    "upgrade-insecure-requests",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
];

/// The digest of a PoC with its incidental parts aside: comments (`#`, `//`, `/* */`,
/// `--` at a line's start), whitespace and case, host names and addresses (replaced by
/// `HOST`), and for an HTTP request the volatile headers (its other headers sorted).
/// None when what is left is too short to match on.
pub fn poc_digest(poc: &str) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut in_block_comment = false;
    let http = poc.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| {
        let l = l.trim().to_lowercase();
        let mut w = l.split_whitespace();
        matches!(w.next(), Some("get" | "post" | "put" | "delete" | "patch" | "head" | "options"))
            && w.nth(1).is_some_and(|v| v.starts_with("http/"))
    });
    for line in poc.lines().take(super::text::MAX_LINES) {
        let mut l = line.trim().to_lowercase();
        if http {
            // A request has no comments: `*/*` is an Accept value.
            if !(lines.is_empty() && l.is_empty()) {
                lines.push(hosts_aside(&l));
            }
            continue;
        }
        if in_block_comment {
            match l.find("*/") {
                Some(i) => {
                    l = l[i + 2..].to_owned();
                    in_block_comment = false;
                }
                None => continue,
            }
        }
        if let Some(i) = l.find("/*") {
            match l[i..].find("*/") {
                Some(j) => l = format!("{}{}", &l[..i], &l[i + j + 2..]),
                None => {
                    l.truncate(i);
                    in_block_comment = true;
                }
            }
        }
        if l.starts_with('#') || l.starts_with("//") || l.starts_with("-- ") || l.starts_with("rem ") {
            continue;
        }
        // A trailing comment: ` # ...` or ` // ...` after code (a URL's `//` follows `:`).
        for marker in [" #", " //"] {
            if let Some(i) = l.find(marker) {
                l.truncate(i);
            }
        }
        lines.push(hosts_aside(&l));
    }
    if http {
        let blank = lines.iter().position(|l| l.is_empty()).unwrap_or(lines.len());
        let (head, body) = lines.split_at(blank);
        let mut headers: Vec<&String> = head[1..]
            .iter()
            .filter(|h| {
                let name = h.split(':').next().unwrap_or("").trim();
                !VOLATILE_HEADERS.contains(&name)
            })
            .collect();
        headers.sort();
        let mut request = vec![head[0].clone()];
        request.extend(headers.into_iter().cloned());
        request.extend(body.iter().cloned());
        lines = request;
    }
    let squeezed: String = lines.concat().chars().filter(|c| !c.is_whitespace()).collect();
    if squeezed.len() < MIN_POC_BYTES {
        return None;
    }
    Some(hex::encode(&Sha256::digest(squeezed.as_bytes())[..16]))
}

/// A line with every host name, address and URL authority replaced by `HOST`.
fn hosts_aside(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for (i, word) in line.split(|c: char| c.is_whitespace() || c == '"' || c == '\'').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let replaced = match word.find("://") {
            Some(s) => {
                let rest = &word[s + 3..];
                let path = rest.find('/').map(|p| &rest[p..]).unwrap_or("");
                // The scheme too: the same request over http and https.
                format!("URL://HOST{path}")
            }
            None if word.starts_with("host:") && word.len() > 5 => "host:HOST".to_owned(),
            None => match word.find('@') {
                // user@host (ssh, curl -u): the user stays.
                Some(at) if is_host(&word[at + 1..]) => format!("{}@HOST", &word[..at]),
                _ if is_host(word.trim_end_matches([',', ';', ')'])) => "HOST".to_owned(),
                _ => word.to_owned(),
            },
        };
        out.push_str(&replaced);
    }
    out
}

/// Labels that name the component a report is about.
const COMPONENT_LABELS: &[&str] = &["component", "affected component", "module", "package", "endpoint", "file"];

/// What a report is about: a `Component:` (or module, package, endpoint, file) label's
/// value, else the first URL path or source file path the text names, lower case.
pub fn component(doc: &Doc) -> Option<String> {
    for l in doc.own() {
        if let Some(label) = &l.label
            && COMPONENT_LABELS.contains(&label.key.as_str())
            && !label.value.trim().is_empty()
        {
            return Some(label.value.trim().chars().take(80).collect());
        }
    }
    for l in doc.own() {
        for word in l.lower.split(|c: char| c.is_whitespace() || "\"'`()<>,;".contains(c)) {
            let path = match word.find("://") {
                Some(s) => word[s + 3..].find('/').map(|p| &word[s + 3 + p..]).unwrap_or(""),
                None => word,
            };
            let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches(['.', ':']);
            let segments = path.split('/').filter(|s| !s.is_empty()).count();
            let looks_like_source = path.contains('/')
                && path.rsplit_once('.').is_some_and(|(_, e)| ["c", "h", "rs", "py", "go", "js", "php"].contains(&e));
            if (path.starts_with('/') && segments >= 1 && path.len() > 3 && !path.starts_with("//"))
                || looks_like_source
            {
                return Some(path.chars().take(80).collect());
            }
        }
    }
    None
}

/// Version numbers (`2.3.4`, `v1.2`) found in the affected-versions strings.
fn version_numbers(versions: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in versions {
        for w in v.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')) {
            let w = w.trim_start_matches(['v', 'V']).trim_end_matches('.');
            if w.contains('.') && w.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                let w = w.to_owned();
                if !out.contains(&w) && out.len() < 32 {
                    out.push(w);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_another_host_and_header_order_is_the_same_poc() {
        let a = "POST /api/search HTTP/1.1\nHost: victim.example.com\nUser-Agent: curl/8.0\nContent-Type: application/json\nX-Api: 1\n\n{\"q\": \"' OR 1=1 --\"}";
        let b = "post /api/search HTTP/1.1\nX-Api: 1\nHost: 10.0.0.5:8080\nContent-Type: application/json\nAccept: */*\n\n{\"q\":  \"' OR 1=1 --\"}";
        assert_eq!(poc_digest(a), poc_digest(b));
        assert!(poc_digest(a).is_some());
        let c = a.replace("/api/search", "/api/users");
        assert_ne!(poc_digest(a), poc_digest(&c));
    }

    #[test]
    fn a_script_with_other_comments_and_hosts_is_the_same_poc() {
        let a = "#!/usr/bin/env python3\n# PoC by alice\nimport requests\nr = requests.get('https://target.example.org/download?file=../../etc/passwd')  # read it\nprint(r.text)\n";
        let b = "import requests\n\n\n// nothing\nr = requests.get('http://127.0.0.1:8000/download?file=../../etc/passwd')\nprint(r.text)";
        assert_eq!(poc_digest(a), poc_digest(b));
        assert_eq!(poc_digest("ls -la"), None);
    }

    #[test]
    fn hosts_and_versions_are_told_apart() {
        assert!(is_host("example.com"));
        assert!(is_host("10.1.2.3:80"));
        assert!(!is_host("2.3.4"));
        assert!(!is_host("poc.py"));
        assert_eq!(version_numbers(&["2.3.0 up to 2.3.4".into(), "v1.2".into()]), vec!["2.3.0", "2.3.4", "1.2"]);
    }

    #[test]
    fn same_text_scores_one_and_bands_agree() {
        let t = "The name parameter of /api/search is copied into the SQL query without escaping, so an attacker reads the users table.";
        let a = signals("SQLi", t, &[], &["CWE-89".into()], &["2.3.4".into()]);
        let b = signals("SQLi", t, &[], &["CWE-89".into()], &["2.3.4".into()]);
        assert_eq!(jaccard(&a.minhash, &b.minhash), 1.0);
        assert_eq!(bands(&a.minhash), bands(&b.minhash));
        assert_eq!(bands(&a.minhash).len(), BANDS);
        assert_eq!(a.component.as_deref(), Some("/api/search"));
        let (s, why) = score(&a, &b);
        // Short (under SHORT_TEXT shingles): the text counts for less, the CWE and component still.
        assert!(s >= 0.5, "{s} {why:?}");
        assert!(why.iter().any(|w| w.starts_with("same CWE-89 in /api/search")), "{why:?}");
    }

    #[test]
    fn huge_input_is_capped() {
        let text = "word ".repeat(2_000_000);
        let s = signals("t", &text, &[], &[], &[]);
        assert_eq!(s.minhash.len(), MINHASH * 8);
    }
}
