//! Affected versions in a report's text: a version number with a word of context, a
//! release line (`2.x`), a commit id, "all versions". A number in a URL or a path, an IP
//! address, a date, a protocol (HTTP/1.1, TLS 1.2), a CVSS vector or the version of a
//! runtime or OS the reporter tested on is not an affected version.

use super::text::{Kind, Line};

/// "all versions", "every release", "toutes les versions", "todas las versiones".
pub fn names_all_versions(s: &str) -> bool {
    [
        "all versions",
        "every version",
        "all releases",
        "all released",
        "alle versionen",
        "toutes les versions",
        "todas las versiones",
        "latest",
        "main branch",
        "master branch",
        "current main",
        "current master",
        "head of",
    ]
    .iter()
    .any(|p| s.contains(p))
}

/// Words that put a number in the context of a version of the product.
const VERSION_CONTEXT: &[&str] = &[
    "version",
    "release",
    "tested on",
    "tested with",
    "tested against",
    "affected",
    "affects",
    "affecting",
    "vulnerable",
    "before",
    "prior to",
    "earlier",
    "and later",
    "up to",
    "through",
    "since",
    "fixed in",
    "until",
    "introduced in",
    "regression in",
    "<=",
    "< ",
    "≤",
    "versión",
    "versiones",
    "betroffen",
    "getestet",
    "probado",
    "testé",
    "jusqu",
    "bis ",
    "hasta",
    "antes de",
    "avant",
];

/// A version number with a word of context on the same line: "tested on 2.4.1",
/// "v3.2.0 and earlier", "all releases before 1.9", "commit 4f2a9c1 on main". A number
/// in a URL, an IP address, a date, a protocol (HTTP/1.1, TLS 1.2) or a CVSS vector is not.
pub fn version_in_context(l: &Line) -> bool {
    if !matches!(l.kind, Kind::Prose | Kind::Item | Kind::Label) {
        return false;
    }
    let s = &l.lower;
    if names_all_versions(s) && s.contains("version") {
        return true;
    }
    if has_commit(s) {
        return true;
    }
    if !has_version(s) {
        return false;
    }
    VERSION_CONTEXT.iter().any(|c| s.contains(c)) || s.split_whitespace().any(is_v_version) || has_triple(s)
}

/// "2.4.1", "11.2.0+2291": three parts read as a version wherever they stand (an IP
/// address has four, a date a year).
fn has_triple(s: &str) -> bool {
    s.split_whitespace().any(|w| {
        let bare = w.trim_matches(|c: char| !c.is_alphanumeric());
        let bare = bare.strip_prefix('v').unwrap_or(bare);
        !w.contains("://")
            && !w.starts_with('/')
            && version_token(bare)
            && bare.split(['-', '+']).next().is_some_and(|c| c.split('.').count() == 3)
    }) && has_version(s)
}

/// "v2.3", "v10.0.1".
fn is_v_version(w: &str) -> bool {
    let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.');
    w.strip_prefix('v').is_some_and(version_token)
}

/// "commit 4f2a9c1", "at a1b2c3d4": seven or more hex digits after the word commit.
pub fn has_commit(s: &str) -> bool {
    let mut words = s.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w.starts_with("commit")
            && let Some(next) = words.peek()
        {
            let h = next.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if h.len() >= 7
                && h.len() <= 40
                && h.bytes().all(|b| b.is_ascii_hexdigit())
                && h.bytes().any(|b| b.is_ascii_digit())
            {
                return true;
            }
        }
    }
    false
}

/// A word of the line is a version number (not in a URL, an address, a date, a protocol).
pub fn has_version(s: &str) -> bool {
    let mut prev = "";
    for w in s.split_whitespace() {
        let bare = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '-' && c != '<' && c != '=');
        let bare = bare.trim_start_matches(['<', '=', '>', '~', '^']).trim_end_matches('.');
        let skip = w.contains("://")
            || w.starts_with('/')
            || w.starts_with("www.")
            || w.contains("http/")
            || w.contains("cvss:")
            || matches!(
                prev,
                "tls"
                    | "ssl"
                    | "tlsv"
                    | "http"
                    | "http/"
                    | "cvss"
                    | "python"
                    | "node"
                    | "java"
                    | "php"
                    | "ubuntu"
                    | "debian"
                    | "windows"
                    | "macos"
                    | "ios"
                    | "android"
                    | "chrome"
                    | "firefox"
            );
        prev = w;
        if skip {
            continue;
        }
        let bare = bare.strip_prefix('v').unwrap_or(bare);
        if version_token(bare) {
            return true;
        }
    }
    false
}

/// `1.2`, `2.3.4`, `1.0.0-rc1`, `4.2b3`; not `127.0.0.1`, not `2026.12.07`, not `07.12.2026`.
fn version_token(t: &str) -> bool {
    let core = t.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() < 2 || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return false;
    }
    // "2.x", "1.4.*": a release line.
    if parts.len() <= 3 && matches!(*parts.last().unwrap_or(&""), "x" | "*") {
        return parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
    }
    if !parts[0].bytes().all(|b| b.is_ascii_digit()) || !parts[1].bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return false;
    }
    if parts.len() == 4 && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        return false; // an IPv4 address
    }
    let year = |p: &str| p.len() == 4 && (p.starts_with("19") || p.starts_with("20"));
    if parts.len() == 3 && (year(parts[0]) || year(parts[2])) {
        return false; // a date
    }
    parts[0].len() <= 4
}
