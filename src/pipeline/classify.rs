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
    /// The results of every signature whose signed data holds this piece (each
    /// enclosing layer's, outer first; a failed cleartext block's `bad` too): what
    /// vouches for this text, and nothing else does. A signature over an attachment,
    /// or over another part, is never here.
    pub signatures: Vec<Verification>,
    /// Key blobs carried inside this piece's content (a cert attached beside the text
    /// in the same entity): vouched for by [`Self::signatures`] exactly as the text is.
    pub keys: Vec<Vec<u8>>,
}

impl TextPiece {
    /// Whether `signer` (a fingerprint) alone vouches for this piece: signed, every
    /// signature over it valid and by `signer`. The one rule of "a signature counts
    /// only for what it covers".
    pub fn vouched_by(&self, signer: &str) -> bool {
        vouches(&self.signatures, signer)
    }
}

/// Whether `sigs` vouch for their data as `signer`'s: at least one, all good, all by
/// `signer`. An unknown-key or bad signature beside a good one is no vouching.
fn vouches(sigs: &[Verification], signer: &str) -> bool {
    !sigs.is_empty() && sigs.iter().all(|v| v.verdict == Verdict::Good && v.signer.as_deref() == Some(signer))
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
    /// The Subject header of a signed-only message's signed part (protected headers,
    /// as Thunderbird writes them signing without encrypting): covered by its signature.
    pub signed_subject: Option<String>,
    /// Key blobs found anywhere in the message (outer and inner), each once.
    pub keys: Vec<Vec<u8>>,
    /// Oddities worth recording (never fatal).
    pub warnings: Vec<String>,
    /// The project whose own intake key opened it (None: the default key, or not
    /// encrypted): a report encrypted to one project's key and sent to another's
    /// address gets a note in its case.
    pub opened_by: Option<String>,
}

impl Reading {
    /// The signature results over the main text (the first piece): the message's
    /// signatures. Results over other parts or attachments are not among them.
    pub fn signatures(&self) -> &[Verification] {
        self.texts.first().map(|t| t.signatures.as_slice()).unwrap_or(&[])
    }

    /// The keys inside content `signer` alone vouches for ([`TextPiece::vouched_by`]),
    /// once per fingerprint: only these can be a pinned cert's successor or a cert read
    /// in by a command (an Autocrypt header, a key beside the signed part or inside
    /// another signer's part is vouched for by no one that counts).
    pub fn signed_keys(&self, signer: &str) -> Vec<Vec<u8>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for k in self.texts.iter().filter(|t| t.vouched_by(signer)).flat_map(|t| t.keys.iter()) {
            let fprs: Vec<String> = pgp::parse_certs(k).iter().map(|c| c.fingerprint().to_hex()).collect();
            if !fprs.is_empty() && fprs.iter().all(|f| seen.insert(f.clone())) {
                out.push(k.clone());
            }
        }
        out
    }

    /// Adds key blobs to `keys` ([`read`] drops repeats once at its end: linear).
    fn add_keys(&mut self, keys: &[Vec<u8>]) {
        self.keys.extend(keys.iter().cloned());
    }

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

    /// Adds a piece of content with the signatures over it (`coverage.signed`: there
    /// are some).
    fn push_content(
        &mut self,
        c: Content,
        coverage: Coverage,
        note: Option<&'static str>,
        signatures: Vec<Verification>,
    ) {
        self.add_keys(&c.keys);
        self.attachments.extend(c.attachments.into_iter().map(|a| (a, coverage)));
        self.texts.push(TextPiece { text: c.text, coverage, note, signatures, keys: c.keys });
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
    TextPiece {
        text,
        coverage: Coverage { encrypted: false, signed: false },
        note: Some(note),
        signatures: Vec::new(),
        keys: Vec::new(),
    }
}

/// Reads a parsed message: decrypts and verifies whatever form it has.
pub fn read(parsed: &Parsed, cx: &Context<'_>) -> Result<Reading, Unreadable> {
    let mut r = Reading { keys: parsed.keys.clone(), ..Reading::default() };
    let none = Coverage { encrypted: false, signed: false };
    match &parsed.form {
        Form::PgpMime { ciphertext } => {
            open_encrypted(ciphertext, &[], cx, &mut r)?;
            // Parts beside the encrypted one (mime::structure): neither encrypted nor
            // signed.
            r.push_content(parsed.content(), none, Some(UNENCRYPTED_UNSIGNED_NOTE), Vec::new());
        }
        Form::Inline { ciphertext, before, after } => {
            open_encrypted(ciphertext, &[], cx, &mut r)?;
            r.texts.push(outside(before, after, UNENCRYPTED_NOTE));
            // Files beside the armor: encrypted ones are opened, the rest kept as
            // they came (unencrypted, unsigned). A file's own signature vouches for
            // the file alone, and only when it is the main text's signer's.
            let main: Vec<Verification> = r.signatures().to_vec();
            for a in &parsed.attachments {
                if mime::is_encrypted_attachment(a) {
                    r.attachments.push(open_attachment(a, &main, cx, &mut r.warnings));
                } else {
                    r.attachments.push((a.clone(), none));
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
            r.add_keys(&part.keys);
            // Keys carried inside the signed part may be the signer's.
            let recheck = |outer: pgp::Signatures, keys: &[Vec<u8>]| {
                if !outer.any(Verdict::UnknownKey) || keys.is_empty() {
                    return outer;
                }
                let certs: Vec<Cert> =
                    cx.certs.iter().cloned().chain(keys.iter().flat_map(|k| pgp::parse_certs(k))).collect();
                pgp::verify_detached(signed, signature, &certs, cx.now)
            };
            match &part.form {
                // Encrypted, then signed: the signature covers the encrypted entity;
                // open it; what is inside is covered by both.
                Form::PgpMime { ciphertext } => {
                    let outer = recheck(outer, &r.keys.clone());
                    open_encrypted(ciphertext, &outer.0, cx, &mut r)?;
                    // Parts beside the encrypted one: signed, not encrypted.
                    r.push_content(
                        part.content(),
                        Coverage { encrypted: false, signed: true },
                        Some(UNENCRYPTED_PART_NOTE),
                        outer.0,
                    );
                }
                _ => {
                    let outer = recheck(outer, &part.keys);
                    r.signed_subject = Some(part.envelope.subject.clone()).filter(|s| !s.is_empty());
                    r.push_content(part.content(), Coverage { encrypted: false, signed: true }, None, outer.0);
                }
            }
            // A partly signed message: what lies outside the signed part (and, when that
            // was encrypted, outside the encryption too).
            let note = if r.encrypted { UNSIGNED_UNENCRYPTED_NOTE } else { UNSIGNED_NOTE };
            r.push_content(parsed.content(), none, Some(note), Vec::new());
        }
        Form::Cleartext { armored, before, after } => {
            match pgp::verify_inline(armored, cx.certs, cx.budget(), cx.now) {
                Some((signed_text, v)) => {
                    cx.spend(signed_text.len());
                    r.texts.push(TextPiece {
                        text: mime::decode_text(&signed_text),
                        coverage: Coverage { encrypted: false, signed: true },
                        note: None,
                        signatures: v.0,
                        keys: Vec::new(),
                    });
                    r.texts.push(outside(before, after, UNSIGNED_CLEARTEXT_NOTE));
                }
                None => {
                    r.texts.push(TextPiece {
                        text: parsed.text.clone(),
                        coverage: none,
                        note: None,
                        signatures: vec![Verification { verdict: Verdict::Bad, ..Default::default() }],
                        keys: Vec::new(),
                    });
                }
            }
            r.attachments.extend(parsed.attachments.iter().map(|a| (a.clone(), none)));
        }
        Form::Plain => {
            r.push_content(parsed.content(), none, None, Vec::new());
        }
    }
    // The same key seen outside and inside (or twice inside) is one key.
    let mut seen = std::collections::HashSet::new();
    let keys = std::mem::take(&mut r.keys);
    r.keys = keys.into_iter().filter(|k| seen.insert(mime::sha256_hex(k))).collect();
    Ok(r)
}

/// Decrypts the report's ciphertext and reads the MIME inside. `outer`: the results
/// of a signature over the whole entity (encrypted, then signed), empty when none.
/// Only a message that had an encryption layer (PKESK/SKESK and encrypted data) is
/// `encrypted`: a signed-only OpenPGP message in the same wrapping is not.
fn open_encrypted(
    ciphertext: &[u8],
    outer: &[Verification],
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
    let (plaintext, signatures, encrypted) = match dec {
        Decryption::Ok { plaintext, signatures, encrypted } => {
            cx.spend(plaintext.len());
            (plaintext, signatures, encrypted)
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
            encrypted,
            detail: "inner MIME too deep".into(),
        });
    }
    if !encrypted {
        r.warnings.push("an OpenPGP message that was signed but not encrypted; recorded as unencrypted".into());
    }
    r.encrypted = encrypted;
    r.protected_subject = inner.subject.clone();
    r.warnings.extend(inner.warnings.iter().cloned());
    if inner.nested_encrypted {
        r.warnings.push("the decrypted content is itself encrypted; kept as it is".into());
    }
    // The layers around the content: the outer signature's, the message's own
    // (one-pass, inside the encryption), and for "signed, then encrypted" (RFC 3156
    // 6.1) the inner multipart/signed's, which covers the content and not what lies
    // beside it.
    let around: Vec<Verification> = outer.iter().cloned().chain(signatures.0).collect();
    let inner_sig = inner.signed.as_ref().map(|(signed, sig)| {
        let mut all = certs.clone();
        all.extend(inner.content.keys.iter().chain(inner.outside.keys.iter()).flat_map(|k| pgp::parse_certs(k)));
        pgp::verify_detached(signed, sig, &all, cx.now)
    });
    let over_content: Vec<Verification> =
        around.iter().cloned().chain(inner_sig.into_iter().flat_map(|v| v.0)).collect();
    let covered = !over_content.is_empty();
    r.push_content(inner.content, Coverage { encrypted, signed: covered }, None, over_content);
    if !inner.outside.is_empty() {
        let signed = !around.is_empty();
        r.push_content(inner.outside, Coverage { encrypted, signed }, Some(UNSIGNED_NOTE), around);
    }
    Ok(())
}

/// Opens an encrypted attachment beside an inline report. What cannot be opened is
/// kept as it came, with a warning. The file counts as signed only when its own
/// signatures are all good and by a signer of the main text (`main`): its signature
/// results never count for the message.
fn open_attachment(a: &Part, main: &[Verification], cx: &Context<'_>, warnings: &mut Vec<String>) -> (Part, Coverage) {
    match cx.keys.decrypt_message(&a.bytes, cx.certs, cx.budget(), cx.now) {
        Decryption::Ok { plaintext, signatures, encrypted } => {
            cx.spend(plaintext.len());
            let signer = main.iter().find(|v| v.verdict == Verdict::Good).and_then(|v| v.signer.clone());
            let signed = signer.as_deref().is_some_and(|s| vouches(main, s) && vouches(&signatures.0, s));
            if signatures.is_signed() && !signed {
                warnings.push(format!(
                    "attachment {} carries a signature that does not vouch for it as the message's signer's",
                    a.name
                ));
            }
            let lower = a.name.to_ascii_lowercase();
            let name = [".gpg", ".pgp", ".asc"]
                .iter()
                .find(|s| lower.ends_with(*s) && a.name.len() > s.len())
                .map(|s| a.name[..a.name.len() - s.len()].to_owned())
                .unwrap_or_else(|| a.name.clone());
            (
                Part { name, content_type: "application/octet-stream".into(), bytes: plaintext },
                Coverage { encrypted, signed },
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

/// The message's verdict, decided once, from the signatures over the main text
/// ([`Reading::signatures`]; see [`Verdict`] for each value):
/// - any of them that fails: `bad`;
/// - no valid one: `unknown-key` when signed by a key we lack, else `none`;
/// - a valid one beside one by a key we lack, or beside a valid one by another cert,
///   or by a cert without a valid User ID for `from`: `signer-mismatch`;
/// - by a cert naming `from` while another cert is held for it: `key-conflict`;
/// - else `partial` when kept content lies outside the signed data, else `good`.
///
/// Returns the verdict and the signer's fingerprint (or the issuer it names).
pub fn verdict(r: &Reading, from: &str, held: &Held<'_>, now: SystemTime) -> (Verdict, Option<String>) {
    let sigs = r.signatures();
    if let Some(bad) = sigs.iter().find(|v| v.verdict == Verdict::Bad) {
        return (Verdict::Bad, bad.signer.clone());
    }
    let Some(good) = sigs.iter().find(|v| v.verdict == Verdict::Good) else {
        return match sigs.iter().find(|v| v.verdict == Verdict::UnknownKey) {
            Some(u) => (Verdict::UnknownKey, u.signer.clone()),
            None => (Verdict::None, None),
        };
    };
    let signer = good.signer.clone();
    let cert = held.candidates.iter().map(|(c, _)| c).find(|c| Some(c.fingerprint().to_hex()) == signer);
    let bound = cert.map(|c| pgp::bound_to(c, from, now)).unwrap_or(false);
    // Every signature over the text must be a valid one by the same signer.
    let one_signer = signer.as_deref().is_some_and(|s| vouches(sigs, s));
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
