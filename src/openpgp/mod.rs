//! OpenPGP with Sequoia: the intake keyring, decrypting and verifying reports, signing
//! and encrypting what we send, generating keys.
//!
//! No network, no disk, no clock: keys come in as bytes, the policy and the reference
//! time are passed in. Plaintext is capped while it streams out of the decryptor, so a
//! compression bomb costs at most the cap. Verdicts (no key, bad signature) are values,
//! never errors: a report must not be dropped because its crypto is odd.

use std::io::{Read, Write};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::policy::{Policy, StandardPolicy};
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle};
use zeroize::Zeroizing;

pub mod librepgp;

/// Sequoia's standard policy: the one policy we decide with (see ARCHITECTURE.md for
/// the legacy-algorithm stance).
pub fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

/// How much plaintext the decryptor may hold back for signature checking before it
/// releases data. Small, so a 50 MiB message does not cost 25 MiB of read-ahead
/// (Sequoia's default), and below any sane `max_plaintext_bytes`.
const DECRYPT_BUFFER: usize = 1 << 20;

/// The signature verdict on a message, as the case JSON spells it. This module only
/// says whether signatures verify (good, bad, unknown-key, none); the pipeline, which
/// knows the From address, the certs held for it and what the signature covers, turns
/// `Good` into one of the finer verdicts (see README "Signature verdicts").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Valid, by the cert held for the From address (or, on first contact, a cert
    /// bound to it), over everything kept from the message.
    Good,
    /// Valid and by such a cert, but some kept content lies outside the signed part.
    Partial,
    /// Valid, but by a cert without a valid User ID for the From address.
    SignerMismatch,
    /// Valid, by a cert naming the From address, while another cert is pinned for it
    /// (or in the keyring): possibly a forged From.
    KeyConflict,
    /// A signature that does not verify (altered, rejected algorithm, bad key).
    Bad,
    /// Signed by a key we do not have.
    UnknownKey,
    /// Not signed.
    None,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Partial => "partial",
            Verdict::SignerMismatch => "signer-mismatch",
            Verdict::KeyConflict => "key-conflict",
            Verdict::Bad => "bad",
            Verdict::UnknownKey => "unknown-key",
            Verdict::None => "none",
        }
    }
}

/// The result of verifying one signature: its verdict and who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub verdict: Verdict,
    /// Fingerprint of the signer (or the issuer named by the signature when we
    /// lack the key), upper-case hex.
    pub signer: Option<String>,
}

/// Every signature result of one signed layer, none left out: one good signature
/// never hides a bad one or a second signer (the verdict rule,
/// `pipeline::classify::verdict`, sees them all). Empty: not signed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures(pub Vec<Verification>);

impl Signatures {
    fn bad() -> Self {
        Signatures(vec![Verification { verdict: Verdict::Bad, signer: None }])
    }

    pub fn is_signed(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn any(&self, verdict: Verdict) -> bool {
        self.0.iter().any(|v| v.verdict == verdict)
    }

    /// The layer's verdict alone (no From, no held cert): `bad` if any signature is
    /// bad, else `good` if one is good, else `unknown-key` or `none`.
    pub fn verdict(&self) -> Verdict {
        [Verdict::Bad, Verdict::Good, Verdict::UnknownKey].into_iter().find(|v| self.any(*v)).unwrap_or(Verdict::None)
    }
}

/// What decrypting a message gave.
#[derive(Debug)]
pub enum Decryption {
    /// Decrypted; signatures (if any) verified against the certs we were given.
    Ok { plaintext: Vec<u8>, signatures: Signatures },
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

/// The intake key(s) with their secrets unlocked, held for the daemon's lifetime.
pub struct IntakeKeys {
    /// All intake certs; the first one signs, all of them decrypt (key rotation).
    certs: Vec<Cert>,
    /// The signing cert's public part, serialized (every outgoing mail's Autocrypt
    /// header): made once, not per mail.
    public_bytes: std::sync::OnceLock<Option<Vec<u8>>>,
}

impl IntakeKeys {
    /// Parses armored TSK(s) (as `gpg --export-secret-keys --armor` writes them) and
    /// unlocks them once with `passphrase` if they are protected.
    pub fn from_bytes(tsk: &[u8], passphrase: Option<&str>) -> Result<IntakeKeys> {
        let p = policy();
        let mut certs = Vec::new();
        for cert in CertParser::from_bytes(tsk).context("not an OpenPGP key file")? {
            let cert = cert.context("cannot parse a key in the key file")?;
            if !cert.is_tsk() {
                return Err(anyhow!(
                    "{} holds no secret key material; export it with `gpg --export-secret-keys --armor`",
                    cert.fingerprint()
                ));
            }
            certs.push(unlock(cert, passphrase)?);
        }
        let Some(first) = certs.first() else {
            return Err(anyhow!("the key file holds no key"));
        };
        let vc = first.with_policy(&p, None).with_context(|| {
            format!("key {} is not valid under the policy (revoked, or weak algorithms?)", first.fingerprint())
        })?;
        // Expiry does not stop the service: an expired intake key still opens reports
        // (decryption ignores it); what needs a live signing key (acks, notices) fails
        // per mail, is recorded, and `check` says so loudly until `keys renew`.
        if vc.keys().secret().for_signing().revoked(false).next().is_none() {
            return Err(anyhow!("key {} has no signing key", first.fingerprint()));
        }
        if vc.keys().secret().for_signing().alive().revoked(false).next().is_none() {
            tracing::warn!(key = %first.fingerprint(), "The intake key has expired: reports still open, acks cannot be signed until `secintake keys renew`");
        }
        if !certs.iter().any(|c| {
            c.keys().secret().with_policy(&p, None).for_storage_encryption().for_transport_encryption().next().is_some()
        }) {
            return Err(anyhow!("no intake key has an encryption subkey; reporters could not encrypt to it"));
        }
        Ok(IntakeKeys { certs, public_bytes: std::sync::OnceLock::new() })
    }

    /// Fingerprint of the signing (current) intake key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.certs[0].fingerprint()
    }

    /// The current intake cert without secrets.
    pub fn public_cert(&self) -> Cert {
        self.certs[0].clone().strip_secret_key_material()
    }

    /// [`Self::public_cert`] in binary (Autocrypt keydata), made once.
    pub fn public_cert_bytes(&self) -> Option<&[u8]> {
        self.public_bytes.get_or_init(|| binary_cert(&self.public_cert()).ok()).as_deref()
    }

    /// All intake certs, for `keys show`.
    pub fn certs(&self) -> &[Cert] {
        &self.certs
    }

    /// The armored public cert, for Autocrypt and security.txt.
    pub fn public_armored(&self) -> Result<String> {
        armor_cert(&self.public_cert())
    }

    /// Whether the intake key can sign at `now` (an expired one cannot).
    pub fn can_sign(&self, now: SystemTime) -> Result<()> {
        self.signing_keypair(&policy(), now).map(|_| ())
    }

    fn signing_keypair(&self, p: &dyn Policy, now: SystemTime) -> Result<KeyPair> {
        let key = self.certs[0]
            .keys()
            .secret()
            .with_policy(p, now)
            .for_signing()
            .alive()
            .revoked(false)
            .next()
            .ok_or_else(|| anyhow!("the intake key has no usable signing key"))?;
        key.key().clone().into_keypair()
    }

    /// A detached, armored signature over `data` (PGP/MIME signing).
    pub fn sign_detached(&self, data: &[u8], now: SystemTime) -> Result<Vec<u8>> {
        let p = policy();
        let keypair = self.signing_keypair(&p, now)?;
        let mut out = Vec::new();
        {
            let msg = Message::new(&mut out);
            let msg = Armorer::new(msg).kind(openpgp::armor::Kind::Signature).build()?;
            let mut signer = Signer::new(msg, keypair)?.detached().creation_time(now).build()?;
            signer.write_all(data)?;
            signer.finalize()?;
        }
        Ok(out)
    }

    /// A cleartext-signed message (security.txt).
    pub fn sign_cleartext(&self, text: &[u8], now: SystemTime) -> Result<Vec<u8>> {
        let p = policy();
        let keypair = self.signing_keypair(&p, now)?;
        let mut out = Vec::new();
        {
            let msg = Message::new(&mut out);
            let mut signer = Signer::new(msg, keypair)?.cleartext().creation_time(now).build()?;
            signer.write_all(text)?;
            signer.finalize()?;
        }
        Ok(out)
    }

    /// Encrypts `data` to `recipients` and signs it with the intake key; armored.
    pub fn encrypt_and_sign(&self, data: &[u8], recipients: &[Cert], now: SystemTime) -> Result<Vec<u8>> {
        let p = policy();
        let keypair = self.signing_keypair(&p, now)?;
        let mut keys = Vec::new();
        for cert in recipients {
            let before = keys.len();
            for ka in cert
                .keys()
                .with_policy(&p, now)
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .for_storage_encryption()
            {
                keys.push(ka);
            }
            if keys.len() == before {
                return Err(anyhow!("cert {} has no usable encryption key", cert.fingerprint()));
            }
        }
        if keys.is_empty() {
            return Err(anyhow!("no recipients to encrypt to"));
        }
        let mut out = Vec::new();
        {
            let msg = Message::new(&mut out);
            let msg = Armorer::new(msg).build()?;
            let msg = Encryptor::for_recipients(msg, keys).build()?;
            let msg = Signer::new(msg, keypair)?.creation_time(now).build()?;
            let mut lit = LiteralWriter::new(msg).build()?;
            lit.write_all(data)?;
            lit.finalize()?;
        }
        Ok(out)
    }

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
        let mut dec =
            match builder.buffer_size(DECRYPT_BUFFER.min(max_plaintext as usize).max(1)).with_policy(&p, now, helper) {
                Ok(d) => d,
                Err(e) => return (Decryption::Failed(format!("{e:#}")), None),
            };
        let plaintext = match read_capped(&mut dec, max_plaintext) {
            Ok(Some(p)) => p,
            Ok(None) => return (Decryption::TooLarge, None),
            Err(e) => return (Decryption::Failed(format!("decryption failed: {e}")), None),
        };
        let helper = dec.into_helper();
        (Decryption::Ok { plaintext, signatures: helper.checker.signatures }, helper.session)
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
            Decryption::Ok { plaintext, signatures } if signatures.any(Verdict::UnknownKey) => {
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

    /// Encrypts a test message in every format each intake key advertises (SEIPDv1,
    /// SEIPDv2 with each AEAD ciphersuite it lists, LibrePGP AEAD with each algorithm
    /// it lists) and decrypts it the way intake does. A key must never invite mail
    /// this build cannot open: `check` prints every failure with its fix.
    pub fn self_test_formats(&self, now: SystemTime) -> Vec<FormatCheck> {
        use openpgp::cert::Preferences;
        use openpgp::serialize::stream::Recipient;
        use openpgp::types::{AEADAlgorithm, Features};
        let p = policy();
        let mut out = Vec::new();
        const TEST: &[u8] = b"secintake format self-test";
        for cert in &self.certs {
            let key = cert.fingerprint().to_hex();
            // Expiry does not matter here: decryption ignores it, and `check` says
            // so separately.
            let Ok(vc) = cert.with_policy(&p, None) else { continue };
            let features = vc.features().unwrap_or_else(Features::empty);
            let Some(enc) = vc.keys().for_transport_encryption().for_storage_encryption().next() else { continue };
            let enc = enc.key().clone().parts_into_public();
            let mut run = |format: String, ct: openpgp::Result<Vec<u8>>| {
                let result = match ct {
                    Err(e) => Err(format!("cannot even be written: {e}")),
                    Ok(ct) => match self.decrypt_message(&ct, &[], 1 << 20, now) {
                        Decryption::Ok { plaintext, .. } if plaintext == TEST => Ok(()),
                        Decryption::Ok { .. } => Err("decrypts to the wrong text".into()),
                        Decryption::Failed(e) => Err(e),
                        other => Err(format!("{other:?}")),
                    },
                };
                out.push(FormatCheck { key: key.clone(), format, result });
            };
            let sequoia =
                |features: Features, aead: Option<(SymmetricAlgorithm, AEADAlgorithm)>| -> openpgp::Result<Vec<u8>> {
                    let mut sink = Vec::new();
                    {
                        let msg = Message::new(&mut sink);
                        let r = Recipient::new(features, enc.key_handle(), &enc);
                        let mut e = Encryptor::for_recipients(msg, vec![r]);
                        if let Some((sym, aead)) = aead {
                            e = e.symmetric_algo(sym).aead_algo(aead);
                        }
                        let mut lit = LiteralWriter::new(e.build()?).build()?;
                        lit.write_all(TEST)?;
                        lit.finalize()?;
                    }
                    Ok(sink)
                };
            if features.supports_seipdv1() || !features.supports_seipdv2() {
                run("SEIPDv1".into(), sequoia(Features::empty().set_seipdv1(), None));
            }
            if features.supports_seipdv2() {
                let suites = vc
                    .preferred_aead_ciphersuites()
                    .map(|s| s.to_vec())
                    .unwrap_or_else(|| vec![(SymmetricAlgorithm::AES128, AEADAlgorithm::OCB)]);
                for (sym, aead) in suites {
                    let ct = if aead.is_supported() {
                        sequoia(Features::empty().set_seipdv2(), Some((sym, aead)))
                    } else {
                        seipdv2_test_message(&enc, sym, aead, TEST)
                    };
                    run(format!("SEIPDv2 {sym:?}/{aead:?}"), ct);
                }
            }
            if features.get(1) {
                // LibrePGP AEAD (tag 20): subpacket 34 lists the modes; without it
                // senders pick OCB (GnuPG) or EAX (RFC 4880bis): test both.
                #[allow(deprecated)] // Subpacket 34 is LibrePGP's, which is what we test.
                let tag34 = openpgp::packet::signature::subpacket::SubpacketTag::PreferredAEADAlgorithms;
                let listed: Vec<u8> = vc
                    .primary_userid()
                    .ok()
                    .and_then(|u| {
                        u.binding_signature().subpacket(tag34).map(|sp| match sp.value() {
                            openpgp::packet::signature::subpacket::SubpacketValue::Unknown { body, .. } => body.clone(),
                            _ => Vec::new(),
                        })
                    })
                    .unwrap_or_default();
                let modes = if listed.is_empty() { vec![2, 1] } else { listed };
                for m in modes {
                    let format = match librepgp::Mode::from_id(m) {
                        Some(mode) => format!("LibrePGP AEAD {mode:?}"),
                        None => format!("LibrePGP AEAD algorithm {m}"),
                    };
                    run(format, librepgp_test_message(&enc, m, TEST));
                }
            }
        }
        out
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

/// Reads everything, stopping as soon as more than `max` bytes came out (`Ok(None)`):
/// a compression bomb costs at most the cap.
fn read_capped(r: &mut impl Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(Some(out));
        }
        if out.len() as u64 + n as u64 > max {
            return Ok(None);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Reads the packet stream [`IntakeKeys::open_fallback`] opened (compression,
/// signatures, literal data) with Sequoia's verifier, capped like any plaintext.
fn verify_inner(inner: &[u8], signer_certs: &[Cert], max_plaintext: u64, now: SystemTime) -> Decryption {
    use openpgp::parse::stream::VerifierBuilder;
    let p = policy();
    let checker = Checker::new(signer_certs, now);
    let mut v = match VerifierBuilder::from_bytes(inner)
        .and_then(|b| b.buffer_size(DECRYPT_BUFFER.min(max_plaintext as usize).max(1)).with_policy(&p, now, checker))
    {
        Ok(v) => v,
        Err(e) => return Decryption::Failed(format!("LibrePGP AEAD content: {e:#}")),
    };
    match read_capped(&mut v, max_plaintext) {
        Ok(Some(plaintext)) => Decryption::Ok { plaintext, signatures: v.into_helper().signatures },
        Ok(None) => Decryption::TooLarge,
        Err(e) => Decryption::Failed(format!("LibrePGP AEAD content: {e}")),
    }
}

/// The outcome of one format in [`IntakeKeys::self_test_formats`].
#[derive(Debug, Clone)]
pub struct FormatCheck {
    /// Fingerprint of the intake key.
    pub key: String,
    /// The format it advertises, e.g. "SEIPDv2 AES256/OCB", "LibrePGP AEAD Ocb".
    pub format: String,
    /// Err: why a message in that format would be quarantined.
    pub result: std::result::Result<(), String>,
}

/// A SEIPDv2 message (PKESK v6) in a mode the backend cannot write, by [`librepgp`],
/// for the self-test.
fn seipdv2_test_message<P: openpgp::packet::key::KeyParts, R: openpgp::packet::key::KeyRole>(
    recipient: &openpgp::packet::Key<P, R>,
    sym: SymmetricAlgorithm,
    aead: openpgp::types::AEADAlgorithm,
    text: &[u8],
) -> openpgp::Result<Vec<u8>> {
    use openpgp::packet::pkesk::PKESK6;
    let mode = librepgp::Mode::from_id(u8::from(aead)).ok_or_else(|| anyhow!("no implementation of {aead:?}"))?;
    let key_len = sym.key_size()?;
    let sk = SessionKey::new(key_len)?;
    let pkesk = PKESK6::for_recipient(&sk, recipient)?;
    let mut lit = Vec::new();
    {
        let msg = Message::new(&mut lit);
        let mut w = LiteralWriter::new(msg).build()?;
        w.write_all(text)?;
        w.finalize()?;
    }
    let mut salt = [0u8; 32];
    openpgp::crypto::random(&mut salt)?;
    let chunk_octet = 6;
    let chunks =
        librepgp::encrypt_seipdv2(u8::from(sym), mode, chunk_octet, &salt, &sk, &lit).map_err(|e| anyhow!("{e}"))?;
    let mut body = vec![2, u8::from(sym), u8::from(aead), chunk_octet];
    body.extend_from_slice(&salt);
    body.extend_from_slice(&chunks);
    let mut out = Vec::new();
    openpgp::Packet::from(PKESK::from(pkesk)).serialize(&mut out)?;
    push_packet(&mut out, 18, &body);
    Ok(out)
}

/// Appends a new-format packet with tag `tag` and `body`.
fn push_packet(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(0xC0 | tag);
    let n = body.len();
    if n < 192 {
        out.push(n as u8);
    } else if n < 8384 {
        let m = n - 192;
        out.push((m >> 8) as u8 + 192);
        out.push(m as u8);
    } else {
        out.push(0xFF);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(body);
}

/// A LibrePGP AEAD (tag 20) message as GnuPG 2.4 writes it (PKESK v3, AES-256, the
/// given mode, 4 KiB chunks) holding `text` as literal data, for the self-test.
fn librepgp_test_message<P: openpgp::packet::key::KeyParts, R: openpgp::packet::key::KeyRole>(
    recipient: &openpgp::packet::Key<P, R>,
    mode: u8,
    text: &[u8],
) -> openpgp::Result<Vec<u8>> {
    use openpgp::packet::pkesk::PKESK3;
    let Some(mode) = librepgp::Mode::from_id(mode) else {
        return Err(anyhow!("the key lists AEAD algorithm {mode}, which LibrePGP does not define"));
    };
    let sk = SessionKey::new(32)?;
    let pkesk = PKESK3::for_recipient(SymmetricAlgorithm::AES256, &sk, recipient)?;
    let mut lit = Vec::new();
    {
        let msg = Message::new(&mut lit);
        let mut w = LiteralWriter::new(msg).build()?;
        w.write_all(text)?;
        w.finalize()?;
    }
    let mut iv = vec![0u8; if mode == librepgp::Mode::Eax { 16 } else { 15 }];
    openpgp::crypto::random(&mut iv)?;
    let body = librepgp::encrypt(librepgp::Header { cipher: 9, mode, chunk_octet: 6 }, &iv, &sk, &lit)
        .map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    openpgp::Packet::from(PKESK::from(pkesk)).serialize(&mut out)?;
    push_packet(&mut out, 20, &body);
    Ok(out)
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

fn unlock(cert: Cert, passphrase: Option<&str>) -> Result<Cert> {
    let fpr = cert.fingerprint();
    let mut packets: Vec<openpgp::Packet> = Vec::new();
    let mut changed = false;
    for ka in cert.keys().secret() {
        if ka.key().secret().is_encrypted() {
            let Some(pw) = passphrase else {
                return Err(anyhow!(
                    "key {fpr} is passphrase-protected; set keys.passphrase_file to a file holding the passphrase"
                ));
            };
            let key = ka
                .key()
                .clone()
                .decrypt_secret(&Password::from(pw))
                .map_err(|_| anyhow!("the passphrase in keys.passphrase_file does not unlock key {fpr}"))?;
            changed = true;
            if ka.primary() {
                packets.push(key.role_into_primary().into());
            } else {
                packets.push(key.role_into_subordinate().into());
            }
        }
    }
    if !changed {
        return Ok(cert);
    }
    let (cert, _) = cert.insert_packets(packets)?;
    Ok(cert)
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

/// The signer's fingerprint as the signature names it (Issuer Fingerprint subpacket);
/// a bare 64-bit key id is not a fingerprint, so it gives None.
fn issuer_of(sig: &openpgp::packet::Signature) -> Option<String> {
    sig.get_issuers().into_iter().find(|h| matches!(h, KeyHandle::Fingerprint(_))).map(|h| h.to_hex())
}

/// One signature's result. Sequoia judges a signature at its creation time, which the
/// signer chooses: a good one is `bad` too if its key is expired or revoked now (a
/// backdated signature by an expired key is not good).
fn verification_of(
    r: &std::result::Result<openpgp::parse::stream::GoodChecksum, VerificationError>,
    now: SystemTime,
) -> Verification {
    match r {
        Ok(good) => {
            let signer = Some(good.ka.cert().fingerprint().to_hex());
            let p = policy();
            let valid_now = good.ka.cert().with_policy(&p, now).is_ok_and(|vc| {
                vc.alive().is_ok()
                    && !matches!(vc.revocation_status(), openpgp::types::RevocationStatus::Revoked(_))
                    && vc.keys().key_handle(good.ka.key().key_handle()).alive().revoked(false).next().is_some()
            });
            Verification { verdict: if valid_now { Verdict::Good } else { Verdict::Bad }, signer }
        }
        Err(VerificationError::MissingKey { sig }) => {
            Verification { verdict: Verdict::UnknownKey, signer: issuer_of(sig) }
        }
        Err(VerificationError::BadKey { sig, ka, .. } | VerificationError::BadSignature { sig, ka, .. }) => {
            let _ = sig;
            Verification { verdict: Verdict::Bad, signer: Some(ka.cert().fingerprint().to_hex()) }
        }
        Err(VerificationError::UnboundKey { cert, .. }) => {
            Verification { verdict: Verdict::Bad, signer: Some(cert.fingerprint().to_hex()) }
        }
        Err(VerificationError::MalformedSignature { sig, .. }) => {
            Verification { verdict: Verdict::Bad, signer: issuer_of(sig) }
        }
        Err(_) => Verification { verdict: Verdict::Bad, signer: None },
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

/// Verifies an inline-signed or cleartext-signed (`BEGIN PGP SIGNED MESSAGE`) message;
/// returns the signed text (at most `max` bytes) and the verdict. None when it is not
/// a readable signed message.
pub fn verify_inline(signed: &[u8], certs: &[Cert], max: u64, now: SystemTime) -> Option<(Vec<u8>, Signatures)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_inline_inner(signed, certs, max, now)))
        .unwrap_or(None)
}

fn verify_inline_inner(signed: &[u8], certs: &[Cert], max: u64, now: SystemTime) -> Option<(Vec<u8>, Signatures)> {
    use openpgp::parse::stream::VerifierBuilder;
    let p = policy();
    let helper = Checker::new(certs, now);
    let mut v = VerifierBuilder::from_bytes(signed).ok()?.with_policy(&p, now, helper).ok()?;
    let out = read_capped(&mut v, max).ok()??;
    Some((out, v.into_helper().signatures))
}

/// Verifies a detached signature over `data` (PGP/MIME multipart/signed).
/// Never empty: a signature part that gives no result at all is one bad signature.
pub fn verify_detached(data: &[u8], signature: &[u8], certs: &[Cert], now: SystemTime) -> Signatures {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_detached_inner(data, signature, certs, now)))
        .unwrap_or_else(|_| Signatures::bad())
}

fn verify_detached_inner(data: &[u8], signature: &[u8], certs: &[Cert], now: SystemTime) -> Signatures {
    let p = policy();
    let helper = Checker::new(certs, now);
    let Ok(builder) = DetachedVerifierBuilder::from_bytes(signature) else {
        return Signatures::bad();
    };
    let mut v = match builder.with_policy(&p, now, helper) {
        Ok(v) => v,
        Err(_) => return Signatures::bad(),
    };
    // On an error the helper's check() has still recorded what it could.
    let _ = v.verify_bytes(data);
    let signatures = v.into_helper().signatures;
    if signatures.is_signed() { signatures } else { Signatures::bad() }
}

/// Verifies signatures against the certs it was given and keeps the best verdict.
/// Intake accepts unsigned and badly signed mail: the verdict is recorded, the report
/// is kept, so `check` never fails.
struct Checker<'a> {
    certs: &'a [Cert],
    now: SystemTime,
    signatures: Signatures,
}

impl<'a> Checker<'a> {
    fn new(certs: &'a [Cert], now: SystemTime) -> Self {
        Checker { certs, now, signatures: Signatures::default() }
    }
}

impl VerificationHelper for Checker<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .certs
            .iter()
            .filter(|c| c.keys().any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle()))))
            .cloned()
            .collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                self.signatures.0.extend(results.iter().map(|r| verification_of(r, self.now)));
            }
        }
        Ok(())
    }
}

/// Parses every cert in `bytes` (armored or binary, one or many), skipping what does
/// not parse. Secret material is stripped: a reporter attaching a TSK by mistake must
/// not make us store it.
pub fn parse_certs(bytes: &[u8]) -> Vec<Cert> {
    std::panic::catch_unwind(|| {
        let Ok(parser) = CertParser::from_bytes(bytes) else { return Vec::new() };
        parser
            .filter_map(|c| c.ok())
            .map(|c| c.strip_secret_key_material())
            // Sequoia parses some certs it then refuses to write (a signature naming
            // its issuer by a fingerprint of unknown version): such a cert could be
            // neither pinned nor shown, and storing it failed the whole message (left
            // in the mailbox, retried every pass; found by the fuzz campaign). It is
            // taken as no cert at all.
            .filter(|c| c.serialize(&mut std::io::sink()).is_ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Whether `cert` can be encrypted to now under our policy.
pub fn can_encrypt(cert: &Cert, now: SystemTime) -> Result<()> {
    let p = policy();
    let vc = cert.with_policy(&p, now).context("not valid now (expired, revoked or weak)")?;
    if let openpgp::types::RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err(anyhow!("revoked"));
    }
    vc.alive().context("expired")?;
    if vc.keys().supported().alive().revoked(false).for_transport_encryption().for_storage_encryption().next().is_none()
    {
        return Err(anyhow!("no usable encryption subkey"));
    }
    Ok(())
}

/// Whether `cert` has a User ID with `address` (case-insensitive).
pub fn has_address(cert: &Cert, address: &str) -> bool {
    cert.userids().any(|u| u.userid().email().ok().flatten().map(|e| e.eq_ignore_ascii_case(address)).unwrap_or(false))
}

/// Whether `cert` has a User ID for `address` whose binding is valid under our policy
/// at `now` (not revoked, not expired, not made with rejected algorithms): what
/// "a cert bound to the From address" means.
pub fn bound_to(cert: &Cert, address: &str, now: SystemTime) -> bool {
    let p = policy();
    let Ok(vc) = cert.with_policy(&p, now) else { return false };
    vc.userids()
        .revoked(false)
        .any(|u| u.userid().email().ok().flatten().map(|e| e.eq_ignore_ascii_case(address)).unwrap_or(false))
}

/// Armored public cert.
pub fn armor_cert(cert: &Cert) -> Result<String> {
    let bytes = cert.armored().to_vec()?;
    Ok(String::from_utf8(bytes)?)
}

/// Binary public cert (Autocrypt keydata).
pub fn binary_cert(cert: &Cert) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    cert.serialize(&mut out)?;
    Ok(out)
}

/// Generates a new intake key: Cv25519, a signing and an encryption subkey, no expiry
/// in the first three years (Sequoia's general-purpose default). Returns the armored
/// TSK and the armored public cert.
pub fn generate(uid: &str) -> Result<(Cert, String, String)> {
    let (cert, _rev) = CertBuilder::general_purpose(Some(uid)).set_cipher_suite(CipherSuite::Cv25519).generate()?;
    let tsk = String::from_utf8(cert.as_tsk().armored().to_vec()?)?;
    let public = armor_cert(&cert)?;
    Ok((cert, tsk, public))
}

/// The Web Key Directory hash of an address's local part: z-base32 of SHA-1 of the
/// lower-cased local part (draft-koch-openpgp-webkey-service).
pub fn wkd_hash(local: &str) -> Result<String> {
    let mut ctx = openpgp::types::HashAlgorithm::SHA1.context()?.for_digest();
    ctx.update(local.to_lowercase().as_bytes());
    let mut digest = vec![0u8; ctx.digest_size()];
    ctx.digest(&mut digest)?;
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for b in digest {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    Ok(out)
}

/// Reads a cert's primary email for display.
pub fn primary_email(cert: &Cert) -> Option<String> {
    cert.userids().filter_map(|u| u.userid().email().ok().flatten().map(|e| e.to_owned())).next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn round_trip_encrypt_sign_decrypt_verify() {
        let (_c, tsk, public) = generate("Security <security@example.org>").unwrap();
        let keys = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
        let me = parse_certs(public.as_bytes());
        let ct = keys.encrypt_and_sign(b"hello report", &me, now()).unwrap();
        match keys.decrypt_message(&ct, &me, 1 << 20, now()) {
            Decryption::Ok { plaintext, signatures } => {
                assert_eq!(plaintext, b"hello report");
                assert_eq!(signatures.verdict(), Verdict::Good);
                assert_eq!(signatures.0[0].signer.as_deref().unwrap(), keys.fingerprint().to_hex());
            }
            other => panic!("{other:?}"),
        }
        // Without the signer's cert the verdict is unknown-key, and the text is kept.
        match keys.decrypt_message(&ct, &[], 1 << 20, now()) {
            Decryption::Ok { signatures, .. } => assert_eq!(signatures.verdict(), Verdict::UnknownKey),
            other => panic!("{other:?}"),
        }
    }

    /// Regression (issue 10): an intake key past its expiry made every `ingest` exit
    /// 75 and the daemon refuse to start, although decryption ignores expiry.
    #[test]
    fn expired_intake_key_still_loads_and_decrypts() {
        let created = SystemTime::now() - std::time::Duration::from_secs(400 * 86400);
        let (cert, _) = CertBuilder::general_purpose(Some("S <s@example.org>"))
            .set_creation_time(created)
            .set_validity_period(std::time::Duration::from_secs(365 * 86400))
            .generate()
            .unwrap();
        let tsk = cert.as_tsk().armored().to_vec().unwrap();
        let keys = IntakeKeys::from_bytes(&tsk, None).expect("an expired intake key loads");
        // A report encrypted to it while it was valid.
        let then = created + std::time::Duration::from_secs(86400);
        let p = policy();
        let recipients: Vec<_> =
            cert.keys().with_policy(&p, then).supported().for_transport_encryption().for_storage_encryption().collect();
        let mut ct = Vec::new();
        {
            let msg = Message::new(&mut ct);
            let msg = Encryptor::for_recipients(msg, recipients).build().unwrap();
            let mut lit = LiteralWriter::new(msg).build().unwrap();
            lit.write_all(b"old report").unwrap();
            lit.finalize().unwrap();
        }
        match keys.decrypt_message(&ct, &[], 1 << 20, SystemTime::now()) {
            Decryption::Ok { plaintext, .. } => assert_eq!(plaintext, b"old report"),
            other => panic!("{other:?}"),
        }
        // Signing needs a live key: it fails, per mail, and says why.
        assert!(keys.sign_detached(b"x", SystemTime::now()).is_err());
    }

    #[test]
    fn wkd_hash_matches_the_draft_example() {
        assert_eq!(wkd_hash("Joe.Doe").unwrap(), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
    }

    #[test]
    fn plaintext_cap_stops_a_bomb() {
        let (_c, tsk, public) = generate("S <s@example.org>").unwrap();
        let keys = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
        let me = parse_certs(public.as_bytes());
        let big = vec![0u8; 3 << 20];
        let ct = keys.encrypt_and_sign(&big, &me, now()).unwrap();
        assert!(matches!(keys.decrypt_message(&ct, &me, 1 << 20, now()), Decryption::TooLarge));
    }

    #[test]
    fn message_to_another_key_is_no_key() {
        let (_c, tsk, _) = generate("S <s@example.org>").unwrap();
        let (_c2, _, other_pub) = generate("O <o@example.org>").unwrap();
        let keys = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
        let ct = keys.encrypt_and_sign(b"x", &parse_certs(other_pub.as_bytes()), now()).unwrap();
        assert!(matches!(keys.decrypt_message(&ct, &[], 1 << 20, now()), Decryption::NoKey { .. }));
    }

    /// Regression: Sequoia 2.4 panics (unwrap in PacketParser::decrypt_) on some
    /// truncated SEIPD packets; found by tests/mutation_smoke.rs. Every truncation
    /// must come out as a verdict, never a panic.
    #[test]
    fn truncated_ciphertexts_never_panic() {
        use openpgp::armor::{Kind, Reader, ReaderMode};
        // gpg's SEIPDv1 with MDC is where the panic lives: use a gpg-made fixture.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let keys =
            IntakeKeys::from_bytes(&std::fs::read(root.join("keys/test-intake.key.asc")).unwrap(), None).unwrap();
        let me: Vec<Cert> = Vec::new();
        let eml = std::fs::read_to_string(root.join("fixtures/pgpmime/encrypted-unsigned.eml")).unwrap();
        let (_, ct, _) = crate::mime::find_armor(&eml).unwrap();
        let mut bin = Vec::new();
        Reader::from_bytes(ct.as_bytes(), ReaderMode::Tolerant(Some(Kind::Message))).read_to_end(&mut bin).unwrap();
        let mut failed = 0;
        for cut in 0..bin.len() {
            match keys.decrypt_message(&bin[..cut], &me, 1 << 20, now()) {
                Decryption::Ok { .. } => {}
                _ => failed += 1,
            }
        }
        assert!(failed > 0);
    }

    #[test]
    fn detached_signature_verifies_and_detects_tampering() {
        let (_c, tsk, public) = generate("S <s@example.org>").unwrap();
        let keys = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
        let me = parse_certs(public.as_bytes());
        let sig = keys.sign_detached(b"body\r\n", now()).unwrap();
        assert_eq!(verify_detached(b"body\r\n", &sig, &me, now()).verdict(), Verdict::Good);
        assert_eq!(verify_detached(b"bodX\r\n", &sig, &me, now()).verdict(), Verdict::Bad);
        assert_eq!(verify_detached(b"body\r\n", &sig, &[], now()).verdict(), Verdict::UnknownKey);
    }

    fn dearmored(armored: &[u8]) -> Vec<u8> {
        use openpgp::armor::{Kind, Reader, ReaderMode};
        let mut bin = Vec::new();
        Reader::from_bytes(armored, ReaderMode::Tolerant(Some(Kind::Signature))).read_to_end(&mut bin).unwrap();
        bin
    }

    /// Regression (attacker review): one good signature hid a bad one and a second
    /// signer, since only the best result was kept. Every result is kept now.
    #[test]
    fn every_signature_of_a_layer_is_kept() {
        let (_c, tsk, public) = generate("S <s@example.org>").unwrap();
        let (_d, tsk2, public2) = generate("T <t@example.org>").unwrap();
        let s = IntakeKeys::from_bytes(tsk.as_bytes(), None).unwrap();
        let t = IntakeKeys::from_bytes(tsk2.as_bytes(), None).unwrap();
        let mut certs = parse_certs(public.as_bytes());
        certs.extend(parse_certs(public2.as_bytes()));
        let sig = |k: &IntakeKeys, data: &[u8]| dearmored(&k.sign_detached(data, now()).unwrap());
        let good = sig(&s, b"body\r\n");
        let over_else = sig(&s, b"else\r\n");
        let by_t = sig(&t, b"body\r\n");
        for pair in [[good.clone(), over_else.clone()], [over_else, good.clone()]] {
            let v = verify_detached(b"body\r\n", &pair.concat(), &certs, now());
            assert_eq!(v.0.len(), 2, "{v:?}");
            assert!(v.any(Verdict::Good) && v.any(Verdict::Bad), "{v:?}");
            assert_eq!(v.verdict(), Verdict::Bad);
        }
        let v = verify_detached(b"body\r\n", &[good, by_t].concat(), &certs, now());
        let signers: std::collections::BTreeSet<_> = v.0.iter().map(|v| v.signer.clone().unwrap()).collect();
        assert_eq!((v.verdict(), signers.len()), (Verdict::Good, 2), "{v:?}");
        // Nothing to verify at all is not "unsigned".
        assert_eq!(verify_detached(b"body\r\n", b"", &certs, now()).verdict(), Verdict::Bad);
    }

    /// A signature dated (by its signer) while the key was valid is bad once the key
    /// has expired: the README's table says an expired signing key is `bad`.
    #[test]
    fn a_signature_by_a_key_expired_now_is_bad() {
        let made = now() - Duration::from_secs(10 * 86400);
        let (cert, _) = CertBuilder::general_purpose(Some("E <e@example.org>"))
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(made)
            .set_validity_period(Some(Duration::from_secs(86400)))
            .generate()
            .unwrap();
        let tsk = cert.as_tsk().armored().to_vec().unwrap();
        let keys = IntakeKeys::from_bytes(&tsk, None).unwrap();
        let signed_at = made + Duration::from_secs(3600);
        let sig = keys.sign_detached(b"body\r\n", signed_at).unwrap();
        let certs = [cert.strip_secret_key_material()];
        let at = |t| verify_detached(b"body\r\n", &sig, &certs, t).verdict();
        assert_eq!(at(signed_at + Duration::from_secs(60)), Verdict::Good);
        assert_eq!(at(now()), Verdict::Bad);
    }
}
