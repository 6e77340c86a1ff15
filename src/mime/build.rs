//! Building outgoing PGP/MIME (RFC 3156) messages byte by byte.
//!
//! We build the bytes ourselves rather than through a mail builder so that what is
//! signed is exactly what is sent. Every header value passes through [`header_text`]
//! or [`crate::config::valid_address`]: no byte of an incoming header reaches an
//! outgoing one unchecked.

use chrono::{DateTime, Utc};

/// RFC 2047 encodes `s` if needed, after removing control characters: a CR or LF
/// cannot survive into a header.
pub fn header_text(s: &str) -> String {
    use base64::Engine;
    let cleaned = super::clean(s);
    if cleaned.is_ascii() && cleaned.len() < 900 {
        return cleaned;
    }
    // Encoded words of at most ~60 bytes of UTF-8 each, split on char boundaries.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in cleaned.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The headers of an outgoing message.
#[derive(Debug, Clone)]
pub struct Headers {
    pub from: String,
    pub from_name: String,
    pub to: Vec<String>,
    pub subject: String,
    /// Without brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub date: DateTime<Utc>,
    pub auto_submitted: bool,
    /// The Autocrypt header value (already folded).
    pub autocrypt: Option<String>,
    /// Reply-To (a validated address): team mail's casual replies go to the list.
    pub reply_to: Option<String>,
}

impl Headers {
    fn write(&self, out: &mut String) {
        let name = header_text(&self.from_name).replace('"', "");
        if name.is_empty() {
            out.push_str(&format!("From: <{}>\r\n", self.from));
        } else {
            out.push_str(&format!("From: \"{}\" <{}>\r\n", name, self.from));
        }
        let to: Vec<String> = self.to.iter().map(|a| format!("<{a}>")).collect();
        out.push_str(&format!("To: {}\r\n", to.join(", ")));
        out.push_str(&format!("Subject: {}\r\n", header_text(&self.subject)));
        out.push_str(&format!("Date: {}\r\n", self.date.to_rfc2822()));
        out.push_str(&format!("Message-ID: <{}>\r\n", self.message_id));
        if let Some(irt) = self.in_reply_to.as_deref().and_then(super::clean_msgid) {
            out.push_str(&format!("In-Reply-To: <{irt}>\r\n"));
        }
        let refs: Vec<String> =
            self.references.iter().filter_map(|r| super::clean_msgid(r)).map(|r| format!("<{r}>")).collect();
        if !refs.is_empty() {
            out.push_str(&format!("References: {}\r\n", refs.join("\r\n ")));
        }
        if let Some(r) = self.reply_to.as_deref().filter(|r| crate::config::valid_address(r)) {
            out.push_str(&format!("Reply-To: <{r}>\r\n"));
        }
        if self.auto_submitted {
            out.push_str("Auto-Submitted: auto-replied\r\n");
        }
        if let Some(ac) = &self.autocrypt {
            out.push_str(&format!("Autocrypt: {ac}\r\n"));
        }
        out.push_str("MIME-Version: 1.0\r\n");
    }
}

/// An Autocrypt header value (`addr=...; prefer-encrypt=mutual; keydata=...`), folded.
pub fn autocrypt_value(addr: &str, keydata: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(keydata);
    let mut v = format!("addr={addr}; prefer-encrypt=mutual; keydata=");
    for (i, chunk) in b64.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            v.push_str("\r\n ");
        }
        v.push_str(std::str::from_utf8(chunk).unwrap_or(""));
    }
    v
}

/// Quoted-printable with soft breaks at 76, escaping `=`, non-ASCII, trailing white
/// space and a line start of "From " (which some MTAs mangle, breaking signatures).
pub fn quoted_printable(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Written byte by byte into one buffer: a 256 KiB summary is one allocation, not one
    // per byte.
    let mut out = String::with_capacity(text.len() + text.len() / 10);
    let normalized = text.replace("\r\n", "\n");
    for (li, line) in normalized.split('\n').enumerate() {
        if li > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let from_start = i == 0 && line.starts_with("From ");
            let dot_start = i == 0 && line.starts_with('.');
            let enc = b == b'='
                || b >= 0x7f
                || (b < 0x20 && b != b'\t')
                || ((b == b' ' || b == b'\t') && last)
                || from_start
                || dot_start;
            let width = if enc { 3 } else { 1 };
            if col + width > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            if enc {
                out.push('=');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            } else {
                // Not encoded: printable ASCII or a tab.
                out.push(char::from(b));
            }
            col += width;
        }
    }
    out
}

/// A MIME boundary unlikely to collide with content (derived from the Message-ID
/// hash; base64/QP bodies cannot contain it since it has `=_`).
fn boundary(seed: &str, n: u8) -> String {
    format!("=_secintake_{}_{n}", &super::sha256_hex(seed.as_bytes())[..24])
}

/// A text/plain part (headers + QP body), CRLF, without a final newline.
pub fn text_part(text: &str, extra_headers: &str) -> String {
    format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n{extra_headers}\r\n{}",
        quoted_printable(text)
    )
}

/// A text part with RFC 9788 protected headers inside (for encrypted mail).
pub fn protected_text_part(h: &Headers, text: &str) -> String {
    let mut hdr = String::new();
    hdr.push_str(&format!("Subject: {}\r\n", header_text(&h.subject)));
    hdr.push_str(&format!("From: <{}>\r\n", h.from));
    let to: Vec<String> = h.to.iter().map(|a| format!("<{a}>")).collect();
    hdr.push_str(&format!("To: {}\r\n", to.join(", ")));
    hdr.push_str(&format!("Message-ID: <{}>\r\n", h.message_id));
    hdr.push_str(&format!("Date: {}\r\n", h.date.to_rfc2822()));
    format!(
        "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n{hdr}\r\n{}",
        quoted_printable(text)
    )
}

/// A multipart/signed message (RFC 3156 section 5). `sign` receives the exact bytes
/// of the signed part, CRLF, without the CRLF that belongs to the boundary, and
/// returns an armored detached signature (hash SHA-256, matching `micalg`).
pub fn signed<F>(h: &Headers, part: &str, sign: F) -> anyhow::Result<Vec<u8>>
where
    F: FnOnce(&[u8]) -> anyhow::Result<Vec<u8>>,
{
    let b = boundary(&h.message_id, 1);
    let sig = sign(part.as_bytes())?;
    let sig = String::from_utf8(sig)?.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = String::new();
    h.write(&mut out);
    out.push_str(&format!(
        "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\";\r\n boundary=\"{b}\"\r\n\r\n"
    ));
    out.push_str("This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n");
    out.push_str(&format!("--{b}\r\n{part}\r\n--{b}\r\n"));
    out.push_str("Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n");
    out.push_str("Content-Description: OpenPGP digital signature\r\n");
    out.push_str("Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n");
    out.push_str(sig.trim_end());
    out.push_str(&format!("\r\n--{b}--\r\n"));
    Ok(out.into_bytes())
}

/// A multipart/encrypted message (RFC 3156 section 4) around armored `ciphertext`.
pub fn encrypted(h: &Headers, ciphertext: &[u8]) -> anyhow::Result<Vec<u8>> {
    let b = boundary(&h.message_id, 2);
    let ct = String::from_utf8(ciphertext.to_vec())?.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = String::new();
    h.write(&mut out);
    out.push_str(&format!(
        "Content-Type: multipart/encrypted;\r\n protocol=\"application/pgp-encrypted\";\r\n boundary=\"{b}\"\r\n\r\n"
    ));
    out.push_str("This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n");
    out.push_str(&format!("--{b}\r\n"));
    out.push_str("Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n");
    out.push_str(&format!("--{b}\r\n"));
    out.push_str("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n");
    out.push_str("Content-Description: OpenPGP encrypted message\r\n");
    out.push_str("Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n");
    out.push_str(ct.trim_end());
    out.push_str(&format!("\r\n--{b}--\r\n"));
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_is_neutralised() {
        let v = header_text("Hello\r\nBcc: victim@example.org");
        assert!(!v.contains('\n') && !v.contains('\r'));
        let h = Headers {
            from: "security@intake.test".into(),
            from_name: "Evil\r\nBcc: x@y.z".into(),
            to: vec!["a@b.test".into()],
            subject: "[SEC-2026-0001] Report received".into(),
            message_id: "m@intake.test".into(),
            in_reply_to: Some("<x@y>\r\nBcc: z@z.z".into()),
            references: vec!["ok@ref".into(), "bad ref\r\nX: y".into()],
            date: Utc::now(),
            auto_submitted: true,
            autocrypt: None,
            reply_to: Some("bad\r\nBcc: v@x.y".into()),
        };
        let mut s = String::new();
        h.write(&mut s);
        for line in s.split("\r\n") {
            assert!(!line.starts_with("Bcc") && !line.starts_with("X:"), "{s}");
        }
        assert!(s.contains("References: <ok@ref>\r\n"));
        assert!(!s.contains("In-Reply-To"));
    }

    #[test]
    fn qp_escapes_from_and_trailing_space() {
        let q = quoted_printable("From me \nok=1 ünï");
        assert!(q.starts_with("=46rom me=20\r\n"), "{q}");
        assert!(q.contains("ok=3D1"));
        assert!(q.lines().all(|l| l.len() <= 76));
    }

    /// Decoding gives the text back (CRLF lines), for every byte value and long lines.
    #[test]
    fn qp_round_trips() {
        fn decode(q: &str) -> Vec<u8> {
            let b = q.replace("=\r\n", "").into_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'=' {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            out
        }
        let all: String = (1u32..0x250).filter_map(char::from_u32).collect();
        let text = format!("{all}\n.dot\nFrom x\n{} \r\nend\t", "x=".repeat(100));
        let q = quoted_printable(&text);
        assert!(q.lines().all(|l| l.len() <= 76 && l.is_ascii()), "{q}");
        assert_eq!(decode(&q), text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes());
    }

    #[test]
    fn non_ascii_subject_is_encoded() {
        let v = header_text("Schwachstelle in Über");
        assert!(v.starts_with("=?UTF-8?B?"));
    }
}
