//! The structure of RFC 3156 multiparts, read in one place: which parts a
//! multipart/encrypted's or multipart/signed's crypto reads (by the places RFC 3156
//! gives them), the signed bytes cut from the raw message by the boundary, and the text
//! of preambles and epilogues. Everything a structured multipart holds besides what its
//! crypto reads is content of the message: this module never drops a part, it only
//! says which ones are read elsewhere. Hostile input: linear scans, no recursion.

use std::collections::HashSet;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::{ARMOR_BEGIN, Form, Forms, ctype_of, decode_text, to_crlf};

/// The one rule for structured multiparts (RFC 3156 multipart/encrypted and
/// multipart/signed): their crypto reads only the parts in the places the RFC gives
/// them, and only those are returned, to be left out of the entity's plain content.
/// multipart/encrypted: the encrypted part (the control part carries nothing).
/// multipart/signed: the first part (the signed data) and the second (the signature),
/// the second only when it is a signature. Every other part below a structured
/// multipart, whatever its position (more parts, fewer, another order), and the text
/// of its preamble and epilogue, stays content of the entity: outside the encryption
/// or the signature, and marked so by the reader. A signed part that is not where RFC
/// 3156 puts it is thus kept as unsigned content, and the signature, checked over what
/// is in the first place, fails.
pub(super) fn structure(msg: &Message, forms: Forms, warnings: &mut Vec<String>) -> (Form, HashSet<usize>) {
    let root = msg.root_part();
    if forms.encrypted && ctype_of(root) == "multipart/encrypted" {
        let children: Vec<usize> = root.sub_parts().unwrap_or(&[]).iter().map(|c| *c as usize).collect();
        match encrypted_part(msg, &children) {
            Some(id) => {
                let ciphertext = msg.parts.get(id).map(|p| p.contents().to_vec()).unwrap_or_default();
                return (Form::PgpMime { ciphertext }, HashSet::from([id]));
            }
            None => warnings.push("multipart/encrypted without an encrypted part".into()),
        }
    }
    // The whole message, or (partly signed mail) the first one inside it.
    if forms.signed
        && let Some(id) = first_pgp_signed(msg)
        && let Some((signed, signature, read)) = signed_pair(msg, id)
    {
        return (Form::Signed { signed, signature }, read);
    }
    (Form::Plain, HashSet::new())
}

/// The encrypted part of a multipart/encrypted: the first application/octet-stream part
/// that begins as an OpenPGP message does (RFC 3156 puts it second, after the control
/// part; another file put before it must not be taken for it), else the first
/// application/octet-stream part, else the second part.
fn encrypted_part(msg: &Message, children: &[usize]) -> Option<usize> {
    let octets: Vec<usize> = children
        .iter()
        .copied()
        .filter(|id| msg.parts.get(*id).is_some_and(|p| ctype_of(p) == "application/octet-stream"))
        .collect();
    octets
        .iter()
        .copied()
        .find(|id| msg.parts.get(*id).is_some_and(|p| looks_encrypted(p.contents())))
        .or(octets.first().copied())
        .or(children.get(1).copied().filter(|id| msg.parts.get(*id).is_some()))
}

/// Whether bytes begin as an OpenPGP message: armor, or a binary PKESK, SKESK or
/// marker packet (old or new packet format).
fn looks_encrypted(b: &[u8]) -> bool {
    b.windows(ARMOR_BEGIN.len()).take(4096).any(|w| w == ARMOR_BEGIN.as_bytes())
        || matches!(b.first(), Some(0x84..=0x87 | 0x8c..=0x8f | 0xa8..=0xab | 0xc1 | 0xc3 | 0xca))
}

fn is_pgp_signed(p: &MessagePart) -> bool {
    ctype_of(p) == "multipart/signed"
        && p.content_type()
            .and_then(|c| c.attribute("protocol"))
            .map(|v| v.eq_ignore_ascii_case("application/pgp-signature"))
            .unwrap_or(false)
}

/// The first RFC 3156 multipart/signed part, depth first from the root.
fn first_pgp_signed(msg: &Message) -> Option<usize> {
    let mut stack = vec![0usize];
    let mut seen = 0;
    while let Some(id) = stack.pop() {
        seen += 1;
        if seen > 10_000 {
            return None;
        }
        let p = msg.parts.get(id)?;
        if is_pgp_signed(p) {
            return Some(id);
        }
        if let PartType::Multipart(children) = &p.body {
            stack.extend(children.iter().rev().map(|c| *c as usize));
        }
    }
    None
}

/// Every part below `id`, and `id` itself.
fn descendants(msg: &Message, id: usize) -> HashSet<usize> {
    let mut out = HashSet::new();
    let mut stack = vec![id];
    while let Some(i) = stack.pop() {
        if out.len() > 100_000 || !out.insert(i) {
            continue;
        }
        if let Some(PartType::Multipart(children)) = msg.parts.get(i).map(|p| &p.body) {
            stack.extend(children.iter().map(|c| *c as usize));
        }
    }
    out
}

/// The signed bytes (canonical CRLF) and the signature of the multipart/signed part
/// `id`, and the parts they are read from: the first part and all below it, the second
/// when it is an application/pgp-signature (another part there is content, kept,
/// besides failing as the signature). The signed bytes are cut from the raw message by
/// the part's boundary (RFC 3156 §5, RFC 2046 §5.1.1), not taken from the parser's idea
/// of the part's extent.
fn signed_pair(msg: &Message, id: usize) -> Option<(Vec<u8>, Vec<u8>, HashSet<usize>)> {
    let part = msg.parts.get(id)?;
    let boundary = part.content_type()?.attribute("boundary")?;
    let raw = msg.raw_message();
    let body = raw.get(part.raw_body_offset() as usize..)?;
    let signed = signed_bytes(body, boundary.as_bytes())?;
    let children = part.sub_parts()?;
    let (first, second) = (*children.first()? as usize, *children.get(1)? as usize);
    let sig = msg.parts.get(second)?;
    let mut read = descendants(msg, first);
    if ctype_of(sig) == "application/pgp-signature" {
        read.insert(second);
    }
    Some((to_crlf(signed), sig.contents().to_vec(), read))
}

/// Whether `line` (without its line break) is a delimiter line of `boundary`:
/// `--boundary` then only linear white space (or `--` for the close delimiter).
fn is_delimiter(line: &[u8], boundary: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"--").and_then(|l| l.strip_prefix(boundary)) else {
        return false;
    };
    let rest = rest.strip_prefix(b"--").unwrap_or(rest);
    rest.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r'))
}

/// The bytes of the first body part of a multipart body: from after the line break
/// that ends the first delimiter line to before the line break that precedes the next
/// delimiter line (that line break belongs to the delimiter). Nested closing
/// delimiters, epilogues and a part's own final newline stay inside.
pub fn signed_bytes<'a>(body: &'a [u8], boundary: &[u8]) -> Option<&'a [u8]> {
    if boundary.is_empty() {
        return None;
    }
    let mut start = None;
    let mut pos = 0;
    while pos <= body.len() {
        let end = body[pos..].iter().position(|&c| c == b'\n').map(|e| pos + e).unwrap_or(body.len());
        let line = &body[pos..end];
        if is_delimiter(line, boundary) {
            match start {
                None => start = Some(end + 1),
                Some(s) => {
                    // The line break before this delimiter line is the delimiter's.
                    let mut stop = pos.checked_sub(1)?;
                    if stop > 0 && body[stop - 1] == b'\r' {
                        stop -= 1;
                    }
                    return body.get(s..stop.max(s));
                }
            }
        }
        pos = end + 1;
    }
    None
}

/// The text of the preambles and epilogues of the multiparts not in `read`, other than
/// the notice MUAs write there ([`is_mime_notice`]). RFC 2046 says to ignore them and
/// MUAs do, but a sender can put text there, outside any signature or encryption its
/// multipart carries; it is content like any other. Each region lies between a
/// multipart's body start and its first part, or its last part's end and its own: no
/// byte is looked at twice, so this stays linear in the message.
pub(super) fn preambles(msg: &Message, read: &HashSet<usize>) -> Vec<String> {
    let raw = msg.raw_message();
    let mut out = Vec::new();
    for (id, p) in msg.parts.iter().enumerate() {
        let PartType::Multipart(children) = &p.body else { continue };
        let Some(boundary) = p.content_type().and_then(|c| c.attribute("boundary")) else { continue };
        let first = children.first().and_then(|c| msg.parts.get(*c as usize));
        let last = children.last().and_then(|c| msg.parts.get(*c as usize));
        let (Some(first), Some(last)) = (first, last) else { continue };
        if read.contains(&id) {
            continue;
        }
        let region = |from: u32, to: u32| raw.get(from as usize..(to as usize).min(raw.len())).unwrap_or_default();
        let pre = region(p.raw_body_offset(), first.raw_header_offset());
        // An end offset the parser never set (0) must not make the region the whole
        // message once per multipart.
        let epi = if last.raw_end_offset() >= last.raw_header_offset() {
            region(last.raw_end_offset(), p.raw_end_offset())
        } else {
            &[]
        };
        let pre = before_last_delimiter(pre, boundary.as_bytes());
        let epi = after_close_delimiter(epi, boundary.as_bytes());
        for (at, bytes) in [(p.raw_body_offset(), pre), (last.raw_end_offset(), epi)] {
            let t = decode_text(bytes);
            if !is_mime_notice(&t) {
                out.push((at, t.trim_matches(['\r', '\n']).to_owned()));
            }
        }
    }
    // In the order they stand in the message.
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, t)| t).collect()
}

/// A multipart's preamble: what comes before the delimiter line that opens its first
/// part (the line break before it belongs to the delimiter).
fn before_last_delimiter<'a>(region: &'a [u8], boundary: &[u8]) -> &'a [u8] {
    let mut cut = None;
    let mut pos = 0;
    while pos < region.len() {
        let end = region[pos..].iter().position(|&c| c == b'\n').map(|e| pos + e).unwrap_or(region.len());
        if is_delimiter(&region[pos..end], boundary) {
            cut = Some(pos);
        }
        pos = end + 1;
    }
    cut.map(|c| &region[..c]).unwrap_or_default()
}

/// A multipart's epilogue: what follows its close delimiter line.
fn after_close_delimiter<'a>(region: &'a [u8], boundary: &[u8]) -> &'a [u8] {
    let mut pos = 0;
    while pos < region.len() {
        let end = region[pos..].iter().position(|&c| c == b'\n').map(|e| pos + e).unwrap_or(region.len());
        let line = &region[pos..end];
        let close =
            line.strip_prefix(b"--").and_then(|l| l.strip_prefix(boundary)).is_some_and(|r| r.starts_with(b"--"));
        if close && is_delimiter(line, boundary) {
            return region.get(end + 1..).unwrap_or_default();
        }
        pos = end + 1;
    }
    &[]
}

/// Whether a preamble or epilogue holds nothing but white space or the notice MUAs
/// write there for readers without MIME ("This is a multi-part message in MIME
/// format.", "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)", Gnus' and
/// Courier's few lines saying the reader lacks MIME): one that starts "This is a",
/// names MIME in its first line and is short. Longer text, or text of another shape, is
/// content.
fn is_mime_notice(t: &str) -> bool {
    let t = t.trim();
    let first = t.lines().next().unwrap_or("");
    t.is_empty()
        || (t.len() <= 512
            && t.lines().count() <= 8
            && first.get(..9).is_some_and(|s| s.eq_ignore_ascii_case("this is a"))
            && first.to_ascii_lowercase().contains("mime"))
}

#[cfg(test)]
mod tests {
    use super::super::{Form, parse};

    #[test]
    fn preambles_and_epilogues_are_content_notices_are_not() {
        let raw = "From: a@b.test\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
                   This is a multi-part message in MIME format.\r\n--o\r\n\
                   Content-Type: multipart/alternative; boundary=\"i\"\r\n\r\nInner preamble\r\n--i\r\n\
                   Content-Type: text/plain\r\n\r\nbody\r\n--i--\r\nInner epilogue\r\n--o\r\n\
                   Content-Type: text/plain\r\n\r\nsecond\r\n--o--\r\nOuter epilogue\r\nline two\r\n";
        let p = parse(raw.as_bytes());
        assert_eq!(
            p.text, "body\n\nsecond\n\nInner preamble\n\nInner epilogue\n\nOuter epilogue\nline two",
            "{:?}",
            p.text
        );
    }

    #[test]
    fn what_mime_writes_for_readers_without_it_is_a_notice() {
        for t in [
            "This is a multi-part message in MIME format.",
            "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
            "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
            "This is a MIME-formatted message.  If you see this text it means that your\nE-mail software does not support MIME-formatted messages.",
            "  \r\n",
        ] {
            assert!(super::is_mime_notice(t), "{t}");
        }
        for t in
            ["Run evil.sh", "This is a report.", "See the MIME parts", &format!("This is a MIME {}", "x".repeat(600))]
        {
            assert!(!super::is_mime_notice(t), "{t}");
        }
    }

    #[test]
    fn a_file_before_the_encrypted_part_is_not_taken_for_it() {
        let raw = "From: a@b.test\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
                   --e\r\nContent-Type: application/octet-stream; name=\"x.sh\"\r\n\r\n#!/bin/sh\r\n\
                   --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\
                   --e\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nx\r\n-----END PGP MESSAGE-----\r\n--e--\r\n";
        let p = parse(raw.as_bytes());
        let Form::PgpMime { ciphertext } = &p.form else { panic!("{:?}", p.form) };
        assert!(ciphertext.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        let names: Vec<&str> = p.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["x.sh"], "kept beside the encryption");
    }

    #[test]
    fn multipart_signed_reads_only_its_first_two_places() {
        let sig = "Content-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nx\r\n-----END PGP SIGNATURE-----";
        let msg = |kids: &[&str]| {
            let mut m = String::from(
                "From: a@b.test\r\nContent-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n",
            );
            for k in kids {
                m.push_str(&format!("--s\r\n{k}\r\n"));
            }
            m.push_str("--s--\r\n");
            m
        };
        let text = |t: &str| format!("Content-Type: text/plain\r\n\r\n{t}");
        // Parts after the signature: outside the signed part.
        let p = parse(msg(&[&text("signed"), sig, &text("after")]).as_bytes());
        let Form::Signed { signed, .. } = &p.form else { panic!("{:?}", p.form) };
        assert_eq!(signed, b"Content-Type: text/plain\r\n\r\nsigned");
        assert_eq!(p.text, "after");
        // The signature first: the content after it is kept (and fails as the
        // signature); the signature in the signed place carries no content.
        let p = parse(msg(&[sig, &text("content")]).as_bytes());
        let Form::Signed { signature, .. } = &p.form else { panic!("{:?}", p.form) };
        assert_eq!(signature, b"content");
        assert_eq!(p.text, "content");
        // A signature part no multipart/signed reads is kept as a file.
        let p = parse(msg(&[&text("signed"), sig, sig]).as_bytes());
        assert_eq!(p.attachments.len(), 1);
    }
}
