//! Reading reports: decrypting with the intake keys (Sequoia's formats, and LibrePGP
//! AEAD / SEIPDv2 modes the backend lacks through [`super::librepgp`]), after the
//! PKESK cap, and handing the signatures to [`super::verify`]'s checker.
//!
//! Invariants: at most [`MAX_ESK`] PKESK/SKESK packets are looked at (more is
//! `Decryption::Malformed`, before any key is used); at most `MAX_TRIES_PER_KEY`
//! PKESKs per intake key; a session key that does not open the message does not end
//! the search; a message is opened once (signatures checked again on the session key
//! already found).

use std::time::SystemTime;

use anyhow::{Result, anyhow};
use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{DecryptionHelper, DecryptorBuilder, MessageStructure, VerificationHelper};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};
use zeroize::Zeroizing;

use super::verify::Checker;
use super::{DECRYPT_BUFFER, IntakeKeys, Verdict, librepgp, policy, read_capped, verify::Signatures};

/// What decrypting a message gave.
#[derive(Debug)]
pub enum Decryption {
    /// Read; signatures (if any) verified against the certs we were given.
    /// `encrypted`: the message had an encryption layer (PKESK/SKESK and encrypted
    /// data); false for a signed-only (or literal) OpenPGP message, which the
    /// decryptor reads too and which crossed the network in clear.
    Ok { plaintext: Vec<u8>, signatures: Signatures, encrypted: bool },
    /// Encrypted, but to no key we hold.
    NoKey { recipients: Vec<String> },
    /// The plaintext passed the cap; reading stopped there.
    TooLarge,
    /// Not a decryptable OpenPGP message (corrupt, unsupported, integrity failure).
    Failed(String),
    /// Refused before any key was used: more than [`MAX_ESK`] PKESK/SKESK packets.
    Malformed(String),
}

/// The most PKESK and SKESK packets a message may carry before its encrypted data.
/// Each PKESK naming an intake key (or none) costs an asymmetric decryption; 32 is
/// generous (a report goes to the intake key and perhaps a few team members), and a
/// message with more is quarantined `malformed` before any key is used: 40,000 of
/// them took 23.7 s of `ingest` before this cap (issue 26).
pub const MAX_ESK: usize = 32;

/// The most PKESKs one intake (sub)key tries to decrypt in one message. Wildcard
/// PKESKs (no recipient named) are tried with every key, so this, not [`MAX_ESK`],
/// bounds the work per key. Eight lets a genuine PKESK behind seven forged ones to the
/// same key still open the message.
const MAX_TRIES_PER_KEY: usize = 8;

/// A session key and the cipher its PKESK named (v3) or None (v6).
type Session = (Option<SymmetricAlgorithm>, SessionKey);

impl IntakeKeys {
    /// Decrypts `ciphertext` (armored or binary) with the intake keys, verifying any
    /// signature against `signer_certs`, and stops once more than `max_plaintext`
    /// bytes came out. Sequoia's formats only; [`Self::decrypt_message`] is the entry
    /// point that reads every format and applies the PKESK cap first.
    pub fn decrypt(&self, ciphertext: &[u8], signer_certs: &[Cert], max_plaintext: u64, now: SystemTime) -> Decryption {
        self.decrypt_sequoia(ciphertext, signer_certs, None, max_plaintext, now).0
    }

    /// Sequoia's decryptor. With `known`, the session key found before is used and no
    /// PKESK is decrypted again. Returns the session key that worked.
    fn decrypt_sequoia(
        &self,
        ciphertext: &[u8],
        signer_certs: &[Cert],
        known: Option<&Session>,
        max_plaintext: u64,
        now: SystemTime,
    ) -> (Decryption, Option<Session>) {
        let p = policy();
        let helper = Helper { keys: self, checker: Checker::new(signer_certs, now), known, session: None };
        let builder = match DecryptorBuilder::from_bytes(ciphertext) {
            Ok(b) => b,
            Err(e) => return (Decryption::Failed(format!("not an OpenPGP message: {e}")), None),
        };
        let mut dec = match builder.buffer_size(DECRYPT_BUFFER.min(max_plaintext as usize).max(1)).with_policy(
            &p,
            super::judged_at(now),
            helper,
        ) {
            Ok(d) => d,
            Err(e) => return (Decryption::Failed(format!("{e:#}")), None),
        };
        let plaintext = match read_capped(&mut dec, max_plaintext) {
            Ok(Some(p)) => p,
            Ok(None) => return (Decryption::TooLarge, None),
            Err(e) => return (Decryption::Failed(format!("decryption failed: {e}")), None),
        };
        let helper = dec.into_helper();
        let encrypted = helper.checker.encrypted;
        (Decryption::Ok { plaintext, signatures: helper.checker.signatures, encrypted }, helper.session)
    }

    /// Like [`Self::decrypt`], for every format intake reads (Sequoia's, LibrePGP AEAD,
    /// SEIPDv2 in a mode the backend lacks), after the PKESK cap ([`MAX_ESK`]: more is
    /// [`Decryption::Malformed`]), and telling "no key" apart from other failures.
    pub fn decrypt_message(
        &self,
        ciphertext: &[u8],
        signer_certs: &[Cert],
        max_plaintext: u64,
        now: SystemTime,
    ) -> Decryption {
        self.decrypt_message_then(ciphertext, signer_certs, |_| Vec::new(), max_plaintext, now)
    }

    /// [`Self::decrypt_message`], and when a signature's key is unknown, `more_certs`
    /// sees the plaintext (a signer key attached inside the encryption): the certs it
    /// returns join `signer_certs` and the signatures are checked again, with the
    /// session key already found (the message is opened once: no PKESK is decrypted
    /// twice).
    pub fn decrypt_message_then(
        &self,
        ciphertext: &[u8],
        signer_certs: &[Cert],
        more_certs: impl Fn(&[u8]) -> Vec<Cert>,
        max_plaintext: u64,
        now: SystemTime,
    ) -> Decryption {
        let head = match read_head(ciphertext) {
            Ok(h) => h,
            Err(TooManyEsks) => {
                return Decryption::Malformed(format!(
                    "more than {MAX_ESK} PKESK/SKESK packets; not opened (a message to the intake needs a few)"
                ));
            }
        };
        let wanted = |d: &Decryption| match d {
            Decryption::Ok { plaintext, signatures, .. } if signatures.any(Verdict::UnknownKey) => {
                let extra = more_certs(plaintext);
                (!extra.is_empty()).then(|| [signer_certs, &extra].concat())
            }
            _ => None,
        };
        // Sequoia 2.4 can panic on some truncated messages (an unwrap in
        // PacketParser::decrypt_, found by our mutation test): a hostile message must
        // not take the daemon down, so a panic here is a failed decryption.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &head.fallback {
            Some(f) => match self.open_fallback(f, max_plaintext) {
                Err(d) => d,
                Ok(inner) => {
                    let d = verify_inner(&inner, signer_certs, max_plaintext, now);
                    match wanted(&d) {
                        Some(all) => verify_inner(&inner, &all, max_plaintext, now),
                        None => d,
                    }
                }
            },
            None => {
                let (d, session) = self.decrypt_sequoia(ciphertext, signer_certs, None, max_plaintext, now);
                match (wanted(&d), session) {
                    (Some(all), Some(session)) => {
                        self.decrypt_sequoia(ciphertext, &all, Some(&session), max_plaintext, now).0
                    }
                    _ => d,
                }
            }
        }))
        .unwrap_or_else(|_| Decryption::Failed("the OpenPGP parser failed on this message (internal panic)".into()));
        match attempt {
            Decryption::Failed(e) if !head.recipients.is_empty() && !self.holds_any(&head.recipients) => {
                tracing::debug!(error = %e, "No intake key among the recipients");
                Decryption::NoKey { recipients: head.recipients }
            }
            other => other,
        }
    }

    /// Tries the PKESKs `accept` pairs with the message on the intake keys, in order,
    /// until `open` takes a session key: at most [`MAX_TRIES_PER_KEY`] per key, each
    /// key's secret made into a keypair once. A session key that `open` refuses (a
    /// forged PKESK: anyone can encrypt to the public intake key) does not stop the
    /// search. Returns the cert whose key worked.
    fn find_session(
        &self,
        pkesks: &[PKESK],
        accept: impl Fn(&PKESK) -> bool,
        hint: Option<SymmetricAlgorithm>,
        mut open: impl FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> Option<&Cert> {
        let p = policy();
        // Decryption must not depend on the key's validity now: a report encrypted
        // to a key that has since expired is still ours to read.
        for cert in &self.certs {
            for ka in cert.keys().secret().with_policy(&p, None).for_transport_encryption().for_storage_encryption() {
                let handle = ka.key().key_handle();
                let mut pair = None;
                let mine = pkesks
                    .iter()
                    .take(MAX_ESK)
                    .filter(|pkesk| accept(pkesk) && pkesk.recipient().map(|r| r.aliases(&handle)).unwrap_or(true));
                for pkesk in mine.take(MAX_TRIES_PER_KEY) {
                    if pair.is_none() {
                        let Ok(made) = ka.key().clone().into_keypair() else { break };
                        pair = Some(made);
                    }
                    let Some(pair) = pair.as_mut() else { break };
                    if let Some((algo, sk)) = pkesk.decrypt(pair, hint)
                        && open(algo, &sk)
                    {
                        return Some(cert);
                    }
                }
            }
        }
        None
    }

    /// Opens what Sequoia's backend cannot: a LibrePGP AEAD (tag 20) message, or a
    /// SEIPDv2 one in a mode the backend lacks. The session key from Sequoia's PKESK
    /// decryption (v3 PKESKs, whose cipher must be the packet's, for tag 20; v6 for
    /// SEIPDv2; the cipher passed to Sequoia as a hint), the chunks by [`librepgp`].
    /// Returns the packet stream inside (compression, signatures, literal data), for
    /// [`verify_inner`]; wiped when dropped.
    fn open_fallback(&self, f: &Fallback, max_plaintext: u64) -> Result<Zeroizing<Vec<u8>>, Decryption> {
        let (hint, version) = match &f.layer {
            FallbackLayer::Tag20 { body } => match librepgp::header(body) {
                Ok(h) => (SymmetricAlgorithm::from(h.cipher), 3),
                Err(e) => return Err(Decryption::Failed(format!("LibrePGP AEAD packet: {e}"))),
            },
            FallbackLayer::Seipd2 { cipher, .. } => (SymmetricAlgorithm::from(*cipher), 6),
        };
        // The packet stream inside is at most as large as the plaintext it carries
        // plus framing, unless compressed (then smaller): the same cap bounds it.
        let cap = max_plaintext.saturating_add(1 << 16);
        let mut opened: Option<Result<Option<Vec<u8>>, librepgp::Error>> = None;
        let mut last_err = None;
        let found = self.find_session(
            &f.pkesks,
            |pkesk| pkesk.version() == version,
            Some(hint),
            |algo, sk| {
                let r = match &f.layer {
                    FallbackLayer::Tag20 { body } => match algo {
                        Some(algo) => librepgp::decrypt(body, u8::from(algo), sk, cap),
                        None => Err(librepgp::Error("the PKESK names no cipher".into())),
                    },
                    FallbackLayer::Seipd2 { cipher, mode, chunk_size, salt, body } => {
                        librepgp::decrypt_seipdv2(*cipher, *mode, *chunk_size, salt, body, sk, cap)
                    }
                };
                match r {
                    Err(e) => {
                        last_err = Some(e);
                        false
                    }
                    ok => {
                        opened = Some(ok);
                        true
                    }
                }
            },
        );
        match (found, opened) {
            (Some(_), Some(Ok(Some(inner)))) => Ok(Zeroizing::new(inner)),
            (Some(_), Some(Ok(None))) => Err(Decryption::TooLarge),
            _ => Err(Decryption::Failed(match last_err {
                Some(e) => format!("LibrePGP AEAD: {e}"),
                None => "no intake key decrypts this message".into(),
            })),
        }
    }

    fn holds_any(&self, recipients: &[String]) -> bool {
        recipients.iter().any(|r| {
            r == "*"
                || self
                    .certs
                    .iter()
                    .any(|c| c.keys().any(|k| k.key().keyid().to_hex() == *r || k.key().fingerprint().to_hex() == *r))
        })
    }
}

/// Reads the packet stream [`IntakeKeys::open_fallback`] opened (compression,
/// signatures, literal data) with Sequoia's verifier, capped like any plaintext.
fn verify_inner(inner: &[u8], signer_certs: &[Cert], max_plaintext: u64, now: SystemTime) -> Decryption {
    use openpgp::parse::stream::VerifierBuilder;
    let p = policy();
    let checker = Checker::new(signer_certs, now);
    let mut v = match VerifierBuilder::from_bytes(inner).and_then(|b| {
        b.buffer_size(DECRYPT_BUFFER.min(max_plaintext as usize).max(1)).with_policy(&p, super::judged_at(now), checker)
    }) {
        Ok(v) => v,
        Err(e) => return Decryption::Failed(format!("LibrePGP AEAD content: {e:#}")),
    };
    match read_capped(&mut v, max_plaintext) {
        // Opened from a LibrePGP AEAD / SEIPDv2 packet: encrypted by construction.
        Ok(Some(plaintext)) => Decryption::Ok { plaintext, signatures: v.into_helper().signatures, encrypted: true },
        Ok(None) => Decryption::TooLarge,
        Err(e) => Decryption::Failed(format!("LibrePGP AEAD content: {e}")),
    }
}

/// A message Sequoia's backend cannot open by itself: its PKESKs and the encrypted
/// packet.
struct Fallback {
    pkesks: Vec<PKESK>,
    layer: FallbackLayer,
}

enum FallbackLayer {
    /// LibrePGP AEAD (tag 20): its whole body.
    Tag20 { body: Vec<u8> },
    /// SEIPDv2 in a mode the backend lacks: its header fields and the chunks.
    Seipd2 { cipher: u8, mode: librepgp::Mode, chunk_size: u64, salt: [u8; 32], body: Vec<u8> },
}

/// What the packets ahead of a message's encrypted data say: who it is for, and, when
/// Sequoia's backend cannot open it, what [`IntakeKeys::open_fallback`] needs.
struct Head {
    /// Recipient key ids (`*` for a hidden recipient).
    recipients: Vec<String>,
    /// Some for a tag-20 message, or a SEIPDv2 one whose AEAD mode the backend lacks
    /// and [`librepgp`] has; None for every other message (Sequoia reads those).
    fallback: Option<Fallback>,
}

/// More than [`MAX_ESK`] PKESK/SKESK packets.
struct TooManyEsks;

/// Walks the packets of `ciphertext` up to its encrypted data, at most [`MAX_ESK`]
/// PKESK/SKESK packets (the walk stops at the one past it, so a flood costs its
/// parsing up to there and nothing more).
fn read_head(ciphertext: &[u8]) -> std::result::Result<Head, TooManyEsks> {
    use openpgp::Packet;
    use openpgp::packet::{SEIP, Tag};
    use openpgp::parse::{PacketParser, PacketParserResult};
    let mut recipients = Vec::new();
    let mut pkesks = Vec::new();
    let mut esks = 0usize;
    let head = |recipients, fallback| Ok(Head { recipients, fallback });
    let Ok(mut ppr) = PacketParser::from_bytes(ciphertext) else { return head(recipients, None) };
    while let PacketParserResult::Some(mut pp) = ppr {
        match &pp.packet {
            Packet::PKESK(_) | Packet::SKESK(_) => {
                esks += 1;
                if esks > MAX_ESK {
                    return Err(TooManyEsks);
                }
                if let Packet::PKESK(p) = &pp.packet {
                    recipients.push(p.recipient().map(|h| h.to_hex()).unwrap_or_else(|| "*".into()));
                    pkesks.push(p.clone());
                }
            }
            Packet::Unknown(u) if u.tag() == Tag::AED => {
                let Ok(body) = pp.buffer_unread_content().map(|b| b.to_vec()) else { return head(recipients, None) };
                return head(recipients, Some(Fallback { pkesks, layer: FallbackLayer::Tag20 { body } }));
            }
            Packet::SEIP(SEIP::V2(s)) if !s.aead().is_supported() => {
                let Some(mode) = librepgp::Mode::from_id(u8::from(s.aead())) else { return head(recipients, None) };
                let (cipher, chunk_size, salt) = (u8::from(s.symmetric_algo()), s.chunk_size(), *s.salt());
                let Ok(body) = pp.buffer_unread_content().map(|b| b.to_vec()) else { return head(recipients, None) };
                let layer = FallbackLayer::Seipd2 { cipher, mode, chunk_size, salt, body };
                return head(recipients, Some(Fallback { pkesks, layer }));
            }
            _ => return head(recipients, None),
        }
        match pp.next() {
            Ok((_, next)) => ppr = next,
            Err(_) => return head(recipients, None),
        }
    }
    head(recipients, None)
}

/// Decrypts with the intake keys; the signatures are the [`Checker`]'s.
struct Helper<'a> {
    keys: &'a IntakeKeys,
    checker: Checker<'a>,
    /// A session key found before (checking signatures again): used instead of the
    /// PKESKs.
    known: Option<&'a Session>,
    /// The session key that opened the message.
    session: Option<Session>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        self.checker.get_certs(ids)
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        self.checker.check(structure)
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        if let Some((algo, sk)) = self.known {
            return if decrypt(*algo, sk) { Ok(None) } else { Err(anyhow!("the session key no longer fits")) };
        }
        // The same cap as `read_head`, for callers of `IntakeKeys::decrypt`.
        if pkesks.len() + skesks.len() > MAX_ESK {
            return Err(anyhow!("more than {MAX_ESK} PKESK/SKESK packets"));
        }
        let mut session = None;
        let found = self.keys.find_session(
            pkesks,
            |_| true,
            sym_algo,
            |algo, sk| {
                let ok = decrypt(algo, sk);
                if ok {
                    session = Some((algo, sk.clone()));
                }
                ok
            },
        );
        match found {
            Some(cert) => {
                self.session = session;
                Ok(Some(cert.clone()))
            }
            None => Err(anyhow!("no intake key decrypts this message")),
        }
    }
}
