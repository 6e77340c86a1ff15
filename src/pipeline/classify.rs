//! Classify: what a parsed message says and who vouches for which part of it.
//!
//! Pure: bytes, keys, certs, limits and `now` in; a [`Reading`] (every piece of content
//! with whether it arrived encrypted and inside the signed data, and every signature
//! result) or a quarantine reason out. No store, no network, no clock. The verdict the
//! case records is decided here too, in one place ([`verdict`]), from the signature
//! results, what they cover, the From address and the certs held for it.

use std::time::SystemTime;

use sequoia_openpgp::Cert;

use crate::case::KeySource;
use crate::mime::{self, Content, Form, Parsed, Part};
use crate::openpgp::{self as pgp, Decryption, IntakeKeys, Verdict, Verification};
use crate::store::QuarantineReason;

/// Where a piece of content stood: inside the encryption, inside the signed data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub encrypted: bool,
    pub signed: bool,
}

/// A piece of text with its coverage and the note that introduces it in the case
/// text when it is not the main text.
#[derive(Clone, Debug)]
pub struct TextPiece {
    pub text: String,
    pub coverage: Coverage,
    pub note: Option<&'static str>,
}

/// Everything read from a message that could be read.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// The report itself arrived encrypted (and was decrypted).
    pub encrypted: bool,
    pub texts: Vec<TextPiece>,
    pub attachments: Vec<(Part, Coverage)>,
    /// Protected Subject from inside the encryption.
    pub protected_subject: Option<String>,
    /// Key blobs found anywhere in the message (outer and inner).
    pub keys: Vec<Vec<u8>>,
    /// Those of them inside signed content: only these can be a pinned cert's
    /// successor (an Autocrypt header or a key beside the signed part is covered by
    /// no signature, and a replayed signed body would carry it).
    pub signed_keys: Vec<Vec<u8>>,
    /// Signature results: the one over the main content first.
    pub signatures: Vec<Verification>,
    /// Oddities worth recording (never fatal).
    pub warnings: Vec<String>,
    /// The project whose own intake key opened it (None: the default key, or not
    /// encrypted): a report encrypted to one project's key and sent to another's
    /// address gets a note in its case.
    pub opened_by: Option<String>,
}

impl Reading {
    /// The case text: the main text, then every other piece under its note.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, t) in self.texts.iter().enumerate() {
            if i == 0 {
                out.push_str(&t.text);
                continue;
            }
            if t.text.trim().is_empty() {
                continue;
            }
            out.push_str("\n\n");
            if let Some(n) = t.note {
                out.push_str(n);
                out.push('\n');
            }
            out.push_str(t.text.trim_matches('\n'));
            out.push('\n');
        }
        out
    }

    /// Whether any kept content (text that is not blank, or an attachment) lies
    /// outside the signed data.
    pub fn has_unsigned_content(&self) -> bool {
        self.texts.iter().any(|t| !t.coverage.signed && !t.text.trim().is_empty())
            || self.attachments.iter().any(|(_, c)| !c.signed)
    }

    fn push_content(&mut self, c: Content, coverage: Coverage, note: Option<&'static str>) {
        self.texts.push(TextPiece { text: c.text, coverage, note });
        self.attachments.extend(c.attachments.into_iter().map(|a| (a, coverage)));
        if coverage.signed {
            self.signed_keys.extend(c.keys.iter().cloned());
        }
        self.keys.extend(c.keys);
    }
}

/// Why a message could not be read: the quarantine reason and its detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub reason: QuarantineReason,
    pub encrypted: bool,
    pub detail: String,
}

/// What classification needs besides the message.
pub struct Context<'a> {
    pub keys: &'a IntakeKeys,
    /// Certs that may have made a signature: keyring, the held cert, Autocrypt,
    /// attached keys.
    pub certs: &'a [Cert],
    /// `limits.max_plaintext_bytes`: for all of one message's decryptions together
    /// (the body, every encrypted attachment, a cleartext-signed block), so that many
    /// small encrypted parts cannot each decrypt to the cap.
    pub max_plaintext: u64,
    pub max_depth: u32,
    pub now: SystemTime,
    /// Plaintext bytes the message's decryptions have produced so far.
    pub spent: std::cell::Cell<u64>,
}

impl Context<'_> {
    /// What is left of the message's plaintext budget.
    fn budget(&self) -> u64 {
        self.max_plaintext.saturating_sub(self.spent.get())
    }

    fn spend(&self, n: usize) {
        self.spent.set(self.spent.get().saturating_add(n as u64));
    }
}

const UNENCRYPTED_NOTE: &str = "[unencrypted text around the encrypted block]";
const UNSIGNED_NOTE: &str = "[unsigned text outside the signed part]";
const UNENCRYPTED_PART_NOTE: &str = "[unencrypted text outside the encrypted part]";
const UNENCRYPTED_UNSIGNED_NOTE: &str = "[unencrypted, unsigned text outside the encrypted part]";
const UNSIGNED_UNENCRYPTED_NOTE: &str = "[unsigned, unencrypted text outside the signed part]";
const UNSIGNED_CLEARTEXT_NOTE: &str = "[unsigned text around the signed block]";

/// The text around an inline or cleartext-signed block: neither encrypted nor signed.
fn outside(before: &str, after: &str, note: &'static str) -> TextPiece {
    let text = [before, after].iter().filter(|s| !s.trim().is_empty()).cloned().collect::<Vec<_>>().join("\n");
    TextPiece { text, coverage: Coverage { encrypted: false, signed: false }, note: Some(note) }
}

/// Content whose keys were taken already.
fn without_keys(c: Content) -> Content {
    Content { keys: Vec::new(), ..c }
}

/// Reads a parsed message: decrypts and verifies whatever form it has.
pub fn read(parsed: &Parsed, cx: &Context<'_>) -> Result<Reading, Unreadable> {
    let mut r = Reading { keys: parsed.keys.clone(), ..Reading::default() };
    match &parsed.form {
        Form::PgpMime { ciphertext } => {
            open_encrypted(ciphertext, None, cx, &mut r)?;
            // Parts beside the encrypted one (mime::structure): neither encrypted nor
            // signed. Their keys are in `r.keys` already.
            r.push_content(
                without_keys(parsed.content()),
                Coverage { encrypted: false, signed: false },
                Some(UNENCRYPTED_UNSIGNED_NOTE),
            );
        }
        Form::Inline { ciphertext, before, after } => {
            open_encrypted(ciphertext, None, cx, &mut r)?;
            r.texts.push(outside(before, after, UNENCRYPTED_NOTE));
            // Files beside the armor: encrypted ones are opened, the rest kept as
            // they came (unencrypted, unsigned).
            for a in &parsed.attachments {
                if mime::is_encrypted_attachment(a) {
                    r.attachments.push(open_attachment(a, cx, &mut r.signatures, &mut r.warnings));
                } else {
                    r.attachments.push((a.clone(), Coverage { encrypted: false, signed: false }));
                }
            }
        }
        Form::Signed { signed, signature } => {
            let outer = pgp::verify_detached(signed, signature, cx.certs, cx.now);
            // Inside the signature only PGP/MIME encryption is opened; anything else
            // there is content as it is.
            let part = mime::parse_forms(signed, mime::Forms::ENCRYPTED);
            if part.depth + 1 > cx.max_depth {
                return Err(Unreadable {
                    reason: QuarantineReason::MimeDepth,
                    encrypted: false,
                    detail: "signed part nested too deep".into(),
                });
            }
            r.keys.extend(part.keys.iter().cloned());
            r.signed_keys.extend(part.keys.iter().cloned());
            match &part.form {
                // Encrypted, then signed: the signature covers the encrypted entity;
                // open it and keep both results.
                Form::PgpMime { ciphertext } => {
                    // Keys carried beside the signature may be the signer's.
                    let certs: Vec<Cert> =
                        cx.certs.iter().cloned().chain(r.keys.iter().flat_map(|k| pgp::parse_certs(k))).collect();
                    let outer = if outer.any(Verdict::UnknownKey) {
                        pgp::verify_detached(signed, signature, &certs, cx.now)
                    } else {
                        outer
                    };
                    r.signatures.extend(outer.0);
                    open_encrypted(ciphertext, Some(true), cx, &mut r)?;
                    // Parts beside the encrypted one: signed, not encrypted.
                    r.push_content(
                        without_keys(part.content()),
                        Coverage { encrypted: false, signed: true },
                        Some(UNENCRYPTED_PART_NOTE),
                    );
                }
                _ => {
                    let certs: Vec<Cert> =
                        cx.certs.iter().cloned().chain(part.keys.iter().flat_map(|k| pgp::parse_certs(k))).collect();
                    let outer = if outer.any(Verdict::UnknownKey) && !part.keys.is_empty() {
                        pgp::verify_detached(signed, signature, &certs, cx.now)
                    } else {
                        outer
                    };
                    r.signatures.extend(outer.0);
                    r.push_content(part.content(), Coverage { encrypted: false, signed: true }, None);
                }
            }
            // A partly signed message: what lies outside the signed part (and, when that
            // was encrypted, outside the encryption too).
            let note = if r.encrypted { UNSIGNED_UNENCRYPTED_NOTE } else { UNSIGNED_NOTE };
            r.push_content(parsed.content(), Coverage { encrypted: false, signed: false }, Some(note));
        }
        Form::Cleartext { armored, before, after } => {
            match pgp::verify_inline(armored, cx.certs, cx.budget(), cx.now) {
                Some((signed_text, v)) => {
                    cx.spend(signed_text.len());
                    r.signatures.extend(v.0);
                    r.texts.push(TextPiece {
                        text: mime::decode_text(&signed_text),
                        coverage: Coverage { encrypted: false, signed: true },
                        note: None,
                    });
                    r.texts.push(outside(before, after, UNSIGNED_CLEARTEXT_NOTE));
                }
                None => {
                    r.signatures.push(Verification { verdict: Verdict::Bad, ..Default::default() });
                    r.texts.push(TextPiece {
                        text: parsed.text.clone(),
                        coverage: Coverage { encrypted: false, signed: false },
                        note: None,
                    });
                }
            }
            r.attachments
                .extend(parsed.attachments.iter().map(|a| (a.clone(), Coverage { encrypted: false, signed: false })));
        }
        Form::Plain => {
            r.push_content(parsed.content(), Coverage { encrypted: false, signed: false }, None);
            r.keys = parsed.keys.clone();
        }
    }
    Ok(r)
}

/// Decrypts the report's ciphertext and reads the MIME inside. `outer_signed`: the
/// whole entity is covered by an outer signature (encrypted, then signed).
fn open_encrypted(
    ciphertext: &[u8],
    outer_signed: Option<bool>,
    cx: &Context<'_>,
    r: &mut Reading,
) -> Result<(), Unreadable> {
    let mut certs: Vec<Cert> = cx.certs.to_vec();
    certs.extend(r.keys.iter().flat_map(|k| pgp::parse_certs(k)));
    // A signer key attached inside the encryption: the signatures are checked again
    // with it, on the session key already found (the message is opened once).
    let attached = |plaintext: &[u8]| -> Vec<Cert> {
        mime::parse_inner(plaintext).content.keys.iter().flat_map(|k| pgp::parse_certs(k)).collect()
    };
    let dec = cx.keys.decrypt_message_then(ciphertext, &certs, attached, cx.budget(), cx.now);
    let (plaintext, signatures) = match dec {
        Decryption::Ok { plaintext, signatures } => {
            cx.spend(plaintext.len());
            (plaintext, signatures)
        }
        Decryption::NoKey { recipients } => {
            return Err(Unreadable {
                reason: QuarantineReason::NoKey,
                encrypted: true,
                detail: format!("encrypted to {}", recipients.join(", ")),
            });
        }
        Decryption::TooLarge => {
            return Err(Unreadable {
                reason: QuarantineReason::PlaintextLimit,
                encrypted: true,
                detail: "decrypted output passed limits.max_plaintext_bytes".into(),
            });
        }
        Decryption::Failed(e) => {
            return Err(Unreadable { reason: QuarantineReason::DecryptFailed, encrypted: true, detail: e });
        }
        Decryption::Malformed(e) => {
            return Err(Unreadable { reason: QuarantineReason::Malformed, encrypted: true, detail: e });
        }
    };
    let inner = mime::parse_inner(&plaintext);
    if inner.depth > cx.max_depth {
        return Err(Unreadable {
            reason: QuarantineReason::MimeDepth,
            encrypted: true,
            detail: "inner MIME too deep".into(),
        });
    }
    r.encrypted = true;
    r.protected_subject = inner.subject.clone();
    r.warnings.extend(inner.warnings.iter().cloned());
    if inner.nested_encrypted {
        r.warnings.push("the decrypted content is itself encrypted; kept as it is".into());
    }
    let openpgp_signed = signatures.is_signed();
    let outer = outer_signed.unwrap_or(false);
    // Signed, then encrypted (RFC 3156 6.1): the signature is inside.
    let inner_sig = inner.signed.as_ref().map(|(signed, sig)| {
        let mut all = certs.clone();
        all.extend(inner.content.keys.iter().chain(inner.outside.keys.iter()).flat_map(|k| pgp::parse_certs(k)));
        pgp::verify_detached(signed, sig, &all, cx.now)
    });
    r.signatures.extend(signatures.0);
    if let Some(v) = inner_sig {
        r.signatures.extend(v.0);
    }
    let covered = openpgp_signed || outer || inner.signed.is_some();
    r.push_content(inner.content, Coverage { encrypted: true, signed: covered }, None);
    if !inner.outside.is_empty() {
        r.push_content(
            inner.outside,
            Coverage { encrypted: true, signed: openpgp_signed || outer },
            Some(UNSIGNED_NOTE),
        );
    }
    Ok(())
}

/// Opens an encrypted attachment beside an inline report. What cannot be opened is
/// kept as it came, with a warning.
fn open_attachment(
    a: &Part,
    cx: &Context<'_>,
    sigs: &mut Vec<Verification>,
    warnings: &mut Vec<String>,
) -> (Part, Coverage) {
    match cx.keys.decrypt_message(&a.bytes, cx.certs, cx.budget(), cx.now) {
        Decryption::Ok { plaintext, signatures } => {
            cx.spend(plaintext.len());
            let signed = signatures.is_signed();
            sigs.extend(signatures.0);
            let lower = a.name.to_ascii_lowercase();
            let name = [".gpg", ".pgp", ".asc"]
                .iter()
                .find(|s| lower.ends_with(*s) && a.name.len() > s.len())
                .map(|s| a.name[..a.name.len() - s.len()].to_owned())
                .unwrap_or_else(|| a.name.clone());
            (
                Part { name, content_type: "application/octet-stream".into(), bytes: plaintext },
                Coverage { encrypted: true, signed },
            )
        }
        other => {
            let why = match other {
                Decryption::NoKey { .. } => "encrypted to another key",
                Decryption::TooLarge => "the message's decrypted parts passed limits.max_plaintext_bytes",
                _ => "not a readable OpenPGP message",
            };
            warnings.push(format!("attachment {} kept encrypted: {why}", a.name));
            (a.clone(), Coverage { encrypted: false, signed: false })
        }
    }
}

/// What the verdict is decided against.
pub struct Held<'a> {
    /// Fingerprints of the certs held for the From address: the keyring's (which
    /// win), else the pinned one. Empty on first contact.
    pub fingerprints: Vec<String>,
    /// Every cert that may have signed, to look the signer up in.
    pub candidates: &'a [(Cert, KeySource)],
}

/// The message's verdict, decided once (see [`Verdict`] for each value):
/// - any signature that fails: `bad`;
/// - no valid one: `unknown-key` when signed by a key we lack, else `none`;
/// - a valid one by a cert without a valid User ID for `from`: `signer-mismatch`;
/// - by a cert naming `from` while another cert is held for it: `key-conflict`;
/// - else `partial` when kept content lies outside the signed data, else `good`.
///
/// Returns the verdict and the signer's fingerprint (or the issuer it names).
pub fn verdict(r: &Reading, from: &str, held: &Held<'_>, now: SystemTime) -> (Verdict, Option<String>) {
    if let Some(bad) = r.signatures.iter().find(|v| v.verdict == Verdict::Bad) {
        return (Verdict::Bad, bad.signer.clone());
    }
    let Some(good) = r.signatures.iter().find(|v| v.verdict == Verdict::Good) else {
        return match r.signatures.iter().find(|v| v.verdict == Verdict::UnknownKey) {
            Some(u) => (Verdict::UnknownKey, u.signer.clone()),
            None => (Verdict::None, None),
        };
    };
    let signer = good.signer.clone();
    let cert = held.candidates.iter().map(|(c, _)| c).find(|c| Some(c.fingerprint().to_hex()) == signer);
    let bound = cert.map(|c| pgp::bound_to(c, from, now)).unwrap_or(false);
    // Every valid signature must be by the same signer for the whole to be good.
    let one_signer = r.signatures.iter().filter(|v| v.verdict == Verdict::Good).all(|v| v.signer == signer);
    let v = if !bound || !one_signer {
        Verdict::SignerMismatch
    } else if !held.fingerprints.is_empty() && !held.fingerprints.iter().any(|f| Some(f) == signer.as_ref()) {
        Verdict::KeyConflict
    } else if r.has_unsigned_content() {
        Verdict::Partial
    } else {
        Verdict::Good
    };
    (v, signer)
}
