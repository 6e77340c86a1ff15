//! MIME in and out: what an incoming message is (its headers, its crypto form, its
//! parts) and how outgoing PGP/MIME messages are built.
//!
//! Parsing never fails: mail-parser gives its best effort and we note what was odd.
//! Every header, filename and part is hostile input; nothing here touches the disk or
//! the network, and a filename is only ever data.

pub mod build;
mod structure;

pub use structure::signed_bytes;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use structure::{preambles, structure};

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The crypto form of an incoming message.
#[derive(Debug, Clone)]
pub enum Form {
    /// RFC 3156 multipart/encrypted: the OpenPGP message. `Parsed::text` and
    /// `Parsed::attachments` hold what lies beside it, outside the encryption.
    PgpMime { ciphertext: Vec<u8> },
    /// An armored `PGP MESSAGE` in a text body or an encrypted attachment.
    Inline { ciphertext: Vec<u8>, before: String, after: String },
    /// RFC 3156 multipart/signed: the signed part (its first part) as CRLF bytes and
    /// the signature (its second). `Parsed::text` and `Parsed::attachments` hold only
    /// what lies outside the signed part (beside the multipart/signed, or inside it in
    /// a place RFC 3156 gives no part): content the signature does not cover.
    Signed { signed: Vec<u8>, signature: Vec<u8> },
    /// A cleartext-signed block (`BEGIN PGP SIGNED MESSAGE`) in a text body.
    Cleartext { armored: Vec<u8>, before: String, after: String },
    /// No encryption.
    Plain,
}

/// What we need from a message's outer headers; every string already cleaned of
/// control characters.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub message_id: Option<String>,
    pub from_address: Option<String>,
    pub from_name: String,
    pub subject: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub return_path_empty: bool,
    pub is_list: bool,
    pub is_bulk: bool,
    pub is_dsn: bool,
    /// `addr` and `keydata` of an Autocrypt header.
    pub autocrypt: Option<(String, Vec<u8>)>,
    /// The addresses it was delivered to, in routing order: every `Delivered-To`, then
    /// `X-Original-To`, then `To` and `Cc` (lower case, valid addresses only, at most
    /// [`MAX_DELIVERED_TO`]): which project a report belongs to.
    pub delivered_to: Vec<String>,
}

/// An attachment as it arrived.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A parsed message: outer headers, crypto form, body text and attachments.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub envelope: Envelope,
    pub form: Form,
    /// The readable text (plain message) or empty when encrypted.
    pub text: String,
    pub attachments: Vec<Part>,
    /// Keys attached as `application/pgp-keys` (or `.asc` keys).
    pub keys: Vec<Vec<u8>>,
    /// Deepest multipart nesting seen.
    pub depth: u32,
    /// The parser could not make sense of the message at all.
    pub unparseable: bool,
    /// Oddities found while parsing (recorded, never fatal).
    pub warnings: Vec<String>,
}

/// The body of a raw message: the bytes after the first empty line (all of it when
/// there is none).
pub fn body_of(raw: &[u8]) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => &raw[a.min(b)..],
        (Some(a), None) | (None, Some(a)) => &raw[a..],
        (None, None) => raw,
    }
}

/// Removes CR, LF and other control characters and trims: the only form in which an
/// incoming header value may be stored or shown.
pub fn clean(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    while out.contains("  ") {
        out = out.replace("  ", " ");
    }
    out.trim().to_owned()
}

/// A Message-ID as we store it: no angle brackets, nothing but msg-id characters.
pub fn clean_msgid(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>').trim();
    if s.is_empty() || s.len() > 250 {
        return None;
    }
    if s.chars().all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\" ".contains(c)) { Some(s.to_owned()) } else { None }
}

fn header_list(v: &HeaderValue) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => t.split_whitespace().filter_map(clean_msgid).collect(),
        HeaderValue::TextList(l) => l.iter().flat_map(|t| t.split_whitespace().filter_map(clean_msgid)).collect(),
        _ => Vec::new(),
    }
}

fn first_addr(a: Option<&Address>) -> (Option<String>, String) {
    let Some(addr) = a.and_then(|a| a.first()) else { return (None, String::new()) };
    let address = addr.address().map(|s| clean(s).to_ascii_lowercase()).filter(|s| crate::config::valid_address(s));
    (address, addr.name().map(clean).unwrap_or_default())
}

/// Parses an Autocrypt header value (`addr=...; keydata=...`).
fn parse_autocrypt(v: &str) -> Option<(String, Vec<u8>)> {
    use base64::Engine;
    let mut addr = None;
    let mut keydata = None;
    for attr in v.split(';') {
        let (k, val) = attr.split_once('=')?;
        match k.trim() {
            "addr" => addr = Some(val.trim().to_ascii_lowercase()),
            "keydata" => {
                let b64: String = val.chars().filter(|c| !c.is_whitespace()).collect();
                keydata = base64::engine::general_purpose::STANDARD.decode(b64).ok();
            }
            _ => {}
        }
    }
    Some((addr?, keydata?))
}

fn ctype_of(p: &MessagePart) -> String {
    match p.content_type() {
        Some(ct) => format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase(),
        None => "text/plain".into(),
    }
}

const ARMOR_BEGIN: &str = "-----BEGIN PGP MESSAGE-----";
const SIGNED_BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";

/// Finds a cleartext-signed block; returns (before, block, after).
pub fn find_cleartext(text: &str) -> Option<(String, String, String)> {
    let start = text.find(SIGNED_BEGIN)?;
    let end = start + text[start..].find(SIGNATURE_END)? + SIGNATURE_END.len();
    Some((text[..start].trim().to_owned(), text[start..end].to_owned(), text[end..].trim().to_owned()))
}
const ARMOR_END: &str = "-----END PGP MESSAGE-----";

/// Finds an armored PGP MESSAGE in text; returns (before, armor, after).
pub fn find_armor(text: &str) -> Option<(String, String, String)> {
    let start = text.find(ARMOR_BEGIN)?;
    let end_rel = text[start..].find(ARMOR_END)?;
    let end = start + end_rel + ARMOR_END.len();
    Some((text[..start].trim().to_owned(), text[start..end].to_owned(), text[end..].trim().to_owned()))
}

/// Depth of the multipart tree below `root` (iterative: a 60-deep message must not
/// cost stack).
fn depth(msg: &Message) -> u32 {
    let mut max = 0;
    let mut stack = vec![(0usize, 0u32)];
    let mut seen = 0usize;
    while let Some((id, d)) = stack.pop() {
        seen += 1;
        if seen > 100_000 {
            break;
        }
        max = max.max(d);
        if let Some(p) = msg.parts.get(id)
            && let PartType::Multipart(children) = &p.body
        {
            for c in children {
                stack.push((*c as usize, d + 1));
            }
        }
    }
    max
}

/// How many delivery addresses are kept: a hostile header list costs no more.
pub const MAX_DELIVERED_TO: usize = 64;

/// The delivery addresses of `msg` in routing order (see [`Envelope::delivered_to`]).
fn delivered_to(msg: &mail_parser::Message) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |a: &str| {
        let a = clean(a).trim().trim_matches(['<', '>']).to_ascii_lowercase();
        if out.len() < MAX_DELIVERED_TO && crate::config::valid_address(&a) && !out.contains(&a) {
            out.push(a);
        }
    };
    for name in ["Delivered-To", "X-Original-To"] {
        for h in msg.root_part().headers().iter().filter(|h| h.name().eq_ignore_ascii_case(name)).take(MAX_DELIVERED_TO)
        {
            if let Some(v) = msg.raw_message().get(h.offset_start() as usize..h.offset_end() as usize) {
                push(&String::from_utf8_lossy(v));
            }
        }
    }
    for list in [msg.to(), msg.cc()].into_iter().flatten() {
        for a in list.iter().take(MAX_DELIVERED_TO) {
            if let Some(addr) = a.address() {
                push(addr);
            }
        }
    }
    out
}

/// Which crypto forms a parse reads; what it does not read is plain content of the
/// entity. A message is read for all of them; an entity already inside a signature or
/// an encryption only for the layers its reader opens there ([`parse_inner`],
/// `pipeline::classify`), so that nothing a form would take out is lost unread.
#[derive(Clone, Copy, Debug)]
pub struct Forms {
    /// RFC 3156 multipart/encrypted as the whole entity.
    pub encrypted: bool,
    /// RFC 3156 multipart/signed (the first one, depth first).
    pub signed: bool,
    /// An armored block or a cleartext-signed block in the text, an encrypted
    /// attachment.
    pub inline: bool,
}

impl Forms {
    pub const ALL: Forms = Forms { encrypted: true, signed: true, inline: true };
    pub const NONE: Forms = Forms { encrypted: false, signed: false, inline: false };
    pub const ENCRYPTED: Forms = Forms { encrypted: true, ..Forms::NONE };
}

/// Parses an incoming message. Never fails.
pub fn parse(raw: &[u8]) -> Parsed {
    parse_forms(raw, Forms::ALL)
}

/// Parses a message or entity, reading only the crypto `forms` given. Never fails.
pub fn parse_forms(raw: &[u8], forms: Forms) -> Parsed {
    let mut parsed = Parsed {
        envelope: Envelope::default(),
        form: Form::Plain,
        text: String::new(),
        attachments: Vec::new(),
        keys: Vec::new(),
        depth: 0,
        unparseable: false,
        warnings: Vec::new(),
    };
    let Some(msg) = MessageParser::default().parse(raw) else {
        parsed.unparseable = true;
        parsed.warnings.push("not a parseable RFC 5322 message".into());
        return parsed;
    };
    let env = &mut parsed.envelope;
    env.message_id = msg.message_id().and_then(clean_msgid);
    let (addr, name) = first_addr(msg.from());
    env.from_address = addr;
    env.from_name = name;
    env.subject = msg.subject().map(clean).unwrap_or_default();
    env.in_reply_to = header_list(msg.in_reply_to());
    env.references = header_list(msg.references());
    env.auto_submitted = msg.header_raw("Auto-Submitted").map(|v| clean(v).to_ascii_lowercase());
    env.return_path_empty = msg.header_raw("Return-Path").map(|v| clean(v) == "<>").unwrap_or(false);
    env.is_list = msg.header_raw("List-Id").is_some() || msg.header_raw("List-Unsubscribe").is_some();
    let precedence = msg.header_raw("Precedence").map(|v| clean(v).to_ascii_lowercase());
    env.is_bulk = matches!(precedence.as_deref(), Some("bulk" | "list" | "junk"))
        || msg.header_raw("X-Autoreply").is_some()
        || msg.header_raw("X-Autorespond").is_some();
    env.autocrypt = msg.header_raw("Autocrypt").and_then(parse_autocrypt);
    env.delivered_to = delivered_to(&msg);
    let root_ct = msg.root_part().content_type();
    let root_type = ctype_of(msg.root_part());
    env.is_dsn = root_type == "multipart/report"
        && root_ct
            .and_then(|c| c.attribute("report-type"))
            .map(|r| r.eq_ignore_ascii_case("delivery-status"))
            .unwrap_or(false);

    parsed.depth = depth(&msg);

    // The crypto form and the parts it reads; everything else is content.
    let (form, read) = structure(&msg, forms, &mut parsed.warnings);
    parsed.form = form;
    collect_content(&msg, &mut parsed, &read);
    if forms.inline && matches!(parsed.form, Form::Plain) {
        if let Some((before, armor, after)) = find_armor(&parsed.text) {
            parsed.form = Form::Inline { ciphertext: armor.into_bytes(), before, after };
        } else if let Some((before, block, after)) = find_cleartext(&parsed.text) {
            parsed.form = Form::Cleartext { armored: block.into_bytes(), before, after };
        } else if let Some(i) = parsed.attachments.iter().position(is_encrypted_attachment) {
            let a = parsed.attachments.remove(i);
            parsed.form = Form::Inline { ciphertext: a.bytes, before: parsed.text.clone(), after: String::new() };
        }
    }
    parsed
}

/// Whether an attachment is an OpenPGP message (a `.gpg`, `.pgp` or armored `.asc`
/// file, or `application/pgp-encrypted` content) rather than evidence.
pub fn is_encrypted_attachment(a: &Part) -> bool {
    let lower = a.name.to_ascii_lowercase();
    let named = lower.ends_with(".gpg") || lower.ends_with(".pgp") || lower.ends_with(".asc");
    let armored = a.bytes.windows(ARMOR_BEGIN.len()).take(4096).any(|w| w == ARMOR_BEGIN.as_bytes());
    (named || a.content_type == "application/pgp-encrypted")
        && a.content_type != "application/pgp-keys"
        && (armored || (!lower.ends_with(".asc") && a.bytes.first().map(|b| b & 0x80 != 0).unwrap_or(false)))
}

/// Reads text bodies, attachments and attached keys of a parsed message, leaving out
/// the parts in `read` (those its crypto form reads, see [`structure::structure`]),
/// then the text of preambles and epilogues.
fn collect_content(msg: &Message, parsed: &mut Parsed, read: &HashSet<usize>) {
    let kept = |ids: &[u32]| -> Vec<usize> { ids.iter().map(|i| *i as usize).filter(|i| !read.contains(i)).collect() };
    let part = |i: &usize| msg.parts.get(*i);
    let mut text = String::new();
    for p in kept(&msg.text_body).iter().filter_map(part) {
        if let Some(t) = p.text_contents() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            if p.is_text_html() {
                text.push_str(&html_to_text(t));
            } else {
                text.push_str(t);
            }
        }
    }
    if text.trim().is_empty() {
        for p in kept(&msg.html_body).iter().filter_map(part) {
            if let Some(t) = p.text_contents() {
                text.push_str(&html_to_text(t));
            }
        }
    }
    for t in preambles(msg, read) {
        if !text.trim().is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&t);
    }
    parsed.text = text.replace("\r\n", "\n");
    for (i, p) in kept(&msg.attachments).iter().filter_map(part).enumerate() {
        let ct = ctype_of(p);
        // The control part of a multipart/encrypted carries nothing. A signature part
        // that no multipart/signed reads here is kept as a file like any other.
        let control = ct == "application/pgp-encrypted"
            && p.contents().trim_ascii().starts_with(b"Version:")
            && p.contents().len() < 64;
        if control {
            continue;
        }
        let bytes = match &p.body {
            PartType::Message(m) => m.raw_message().to_vec(),
            _ => match exact_base64(msg, p) {
                Some(b) => b,
                None => p.contents().to_vec(),
            },
        };
        let name =
            p.attachment_name().map(clean).filter(|n| !n.is_empty()).unwrap_or_else(|| format!("attachment-{}", i + 1));
        let is_key = ct == "application/pgp-keys"
            || bytes.windows(36).take(4096).any(|w| w == b"-----BEGIN PGP PUBLIC KEY BLOCK-----");
        if is_key {
            parsed.keys.push(bytes);
            continue;
        }
        parsed.attachments.push(Part { name, content_type: ct, bytes });
    }
}

/// Decodes a base64 part from its raw bytes ourselves: whole groups only, stopping
/// at the first character outside the alphabet, so a truncated attachment keeps
/// exactly the bytes that arrived and nothing invented.
fn exact_base64(msg: &Message, p: &MessagePart) -> Option<Vec<u8>> {
    use base64::Engine;
    let cte = p.content_transfer_encoding()?;
    if !cte.eq_ignore_ascii_case("base64") {
        return None;
    }
    let raw = msg.raw_message();
    let (start, end) = (p.raw_body_offset() as usize, p.raw_end_offset() as usize);
    let body = raw.get(start..end.min(raw.len()))?;
    let mut chars = Vec::with_capacity(body.len());
    for &c in body {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => chars.push(c),
            b'\r' | b'\n' | b' ' | b'\t' => {}
            b'=' | b'-' => break,
            _ => return None,
        }
    }
    let keep = match chars.len() % 4 {
        1 => chars.len() - 1,
        _ => chars.len(),
    };
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(&chars[..keep]).ok()
}

/// Crude HTML to text for armored blocks pasted into HTML-only mail: tags dropped,
/// `<br>`/`<p>`/`<div>` become newlines, the common entities decoded, and the lines
/// inside a `<blockquote>` prefixed `> ` once per level (so that a quote reads as a
/// quote: a command block or a `/reply` ends there).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut depth = 0usize;
    // Appends text, each line begun inside a blockquote prefixed once per level.
    let push = |out: &mut String, text: &str, depth: usize| {
        for c in text.chars() {
            if depth > 0 && (out.is_empty() || out.ends_with('\n')) && c != '\n' {
                for _ in 0..depth.min(MAX_QUOTE_DEPTH) {
                    out.push_str("> ");
                }
            }
            out.push(c);
        }
    };
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push(&mut out, &rest[..lt], depth);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let raw = &rest[lt + 1..lt + gt];
        let closing = raw.starts_with('/');
        let tag = raw.trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if matches!(name.as_str(), "br" | "p" | "div" | "pre" | "tr" | "li" | "blockquote") {
            out.push('\n');
        }
        if name == "blockquote" {
            depth = if closing { depth.saturating_sub(1) } else { depth.saturating_add(1) };
        }
        rest = &rest[lt + gt + 1..];
    }
    push(&mut out, rest, depth);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The most `> ` a line of HTML quote gets (deeper nesting reads the same).
const MAX_QUOTE_DEPTH: usize = 8;

/// Canonical CRLF line endings (RFC 3156 signs canonical text).
pub fn to_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 40);
    let mut prev = 0u8;
    for &c in b {
        if c == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Text, attachments and keys read from one region of a message.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub text: String,
    pub attachments: Vec<Part>,
    pub keys: Vec<Vec<u8>>,
}

impl Content {
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty() && self.attachments.is_empty()
    }
}

impl Parsed {
    /// The text and attachments collected from the message (for a partly signed
    /// message: those outside the signed part).
    pub fn content(&self) -> Content {
        Content { text: self.text.clone(), attachments: self.attachments.clone(), keys: self.keys.clone() }
    }
}

/// The decrypted inner content of an encrypted message.
#[derive(Debug, Clone, Default)]
pub struct Inner {
    /// Protected Subject (RFC 9788 / Memory Hole), cleaned.
    pub subject: Option<String>,
    /// The content: all of it, or for "signed, then encrypted" the signed part's.
    pub content: Content,
    /// Content beside an inner multipart/signed, which its signature does not cover.
    pub outside: Content,
    pub depth: u32,
    pub warnings: Vec<String>,
    /// RFC 3156 6.1 "signed, then encrypted": the inner multipart/signed's signed
    /// bytes and signature, to verify after decryption.
    pub signed: Option<(Vec<u8>, Vec<u8>)>,
    /// The plaintext is itself a PGP/MIME encrypted entity (nested encryption is not
    /// opened again; recorded).
    pub nested_encrypted: bool,
}

/// Parses decrypted plaintext: a MIME entity (PGP/MIME) or bare text (inline PGP).
pub fn parse_inner(plaintext: &[u8]) -> Inner {
    let head = &plaintext[..plaintext.len().min(2048)];
    let looks_mime = head
        .split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty() && *l != b"\r")
        .any(|l| l.len() > 13 && l[..13].eq_ignore_ascii_case(b"content-type:"));
    if !looks_mime {
        return Inner { content: Content { text: decode_text(plaintext), ..Content::default() }, ..Inner::default() };
    }
    // Only the layers the reader opens inside an encryption are read as forms: an
    // inline block or an encrypted attachment in there is content, kept as it is.
    let p = parse_forms(plaintext, Forms { encrypted: true, signed: true, inline: false });
    let subject = Some(p.envelope.subject.clone()).filter(|s| !s.is_empty());
    let mut inner = Inner { subject, depth: p.depth, warnings: p.warnings.clone(), ..Inner::default() };
    match &p.form {
        Form::Signed { signed, signature } => {
            // Signed inside encrypted: the content is the signed part (all of it: no
            // further layer is opened); what lies outside it stays, as unsigned.
            let again = parse_forms(signed, Forms::NONE);
            inner.depth = inner.depth.max(again.depth + 1);
            inner.content = again.content();
            inner.outside = p.content();
            inner.signed = Some((signed.clone(), signature.clone()));
        }
        Form::PgpMime { .. } => {
            // Not opened again: all of it, the encrypted part too, is kept as it is.
            inner.nested_encrypted = true;
            inner.content = parse_forms(plaintext, Forms::NONE).content();
        }
        _ => inner.content = p.content(),
    }
    inner
}

/// Bytes to text: UTF-8, else Latin-1 (every byte maps to a char, nothing is lost).
pub fn decode_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.replace("\r\n", "\n"),
        Err(_) => b.iter().map(|&c| c as char).collect::<String>().replace("\r\n", "\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_fields() {
        let raw = b"From: \"Alice\r\n Bcc: x\" <Alice@Reporter.test>\r\nTo: security@intake.test\r\nSubject: Hello\r\nMessage-ID: <abc@reporter.test>\r\n\r\nBody text\r\n";
        let p = parse(raw);
        assert_eq!(p.envelope.message_id.as_deref(), Some("abc@reporter.test"));
        assert_eq!(p.envelope.from_address.as_deref(), Some("alice@reporter.test"));
        assert!(!p.envelope.from_name.contains('\n'));
        assert_eq!(p.text.trim(), "Body text");
        assert!(matches!(p.form, Form::Plain));
    }

    #[test]
    fn inline_armor_found() {
        let raw = b"From: a@b.test\r\nSubject: x\r\n\r\nHi\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nabc\r\n-----END PGP MESSAGE-----\r\nbye\r\n";
        match parse(raw).form {
            Form::Inline { before, after, .. } => {
                assert_eq!(before, "Hi");
                assert_eq!(after, "bye");
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn deep_multipart_measured() {
        let mut raw = String::from("From: a@b.test\r\nSubject: deep\r\n");
        for i in 0..60 {
            raw.push_str(&format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\nx\r\n");
        let p = parse(raw.as_bytes());
        assert!(p.depth > 32, "depth {}", p.depth);
    }

    #[test]
    fn html_armor() {
        assert_eq!(html_to_text("a<br>b&lt;c&amp;"), "a\nb<c&");
        assert_eq!(
            html_to_text("/reply<br>thanks<blockquote>summary<br>MISSING: x</blockquote>after"),
            "/reply\nthanks\n> summary\n> MISSING: x\nafter"
        );
    }
}
