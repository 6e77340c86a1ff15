//! Verifying signatures: the verdict values, every result of a signed layer kept
//! (one good signature never hides a bad one), detached and inline verification, and
//! the checker the decryptor shares. A signature by a key expired or revoked now is
//! `bad`, whenever it claims to have been made.

use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::{Cert, KeyHandle};

use super::{policy, read_capped};

/// The signature verdict on a message, as the case JSON spells it. This module only
/// says whether signatures verify (good, bad, unknown-key, none); the pipeline, which
/// knows the From address, the certs held for it and what the signature covers, turns
/// `Good` into one of the finer verdicts (see README "Signature verdicts").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    #[default]
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    pub verdict: Verdict,
    /// Fingerprint of the signer (or the issuer named by the signature when we
    /// lack the key), upper-case hex.
    pub signer: Option<String>,
    /// When the signature says it was made (the signer's claim).
    pub created: Option<SystemTime>,
    /// What identifies this one signature: SHA-256 over the signer and the digest it
    /// signs (data and hashed subpackets), so the same signed body sent again, under any
    /// Message-ID and with any unhashed subpackets, has the same value. Only for a
    /// signature that verified.
    pub digest: Option<String>,
}

/// Every signature result of one signed layer, none left out: one good signature
/// never hides a bad one or a second signer (the verdict rule,
/// `pipeline::classify::verdict`, sees them all). Empty: not signed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures(pub Vec<Verification>);

impl Signatures {
    fn bad() -> Self {
        Signatures(vec![Verification { verdict: Verdict::Bad, ..Default::default() }])
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
            let fpr = good.ka.cert().fingerprint().to_hex();
            let digest = good.sig.computed_digest().map(|d| {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update(fpr.as_bytes());
                h.update(b"\0");
                h.update(d);
                h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
            });
            let created = good.sig.signature_creation_time();
            let signer = Some(fpr);
            let p = policy();
            let valid_now = good.ka.cert().with_policy(&p, now).is_ok_and(|vc| {
                vc.alive().is_ok()
                    && !matches!(vc.revocation_status(), openpgp::types::RevocationStatus::Revoked(_))
                    && vc.keys().key_handle(good.ka.key().key_handle()).alive().revoked(false).next().is_some()
            });
            Verification { verdict: if valid_now { Verdict::Good } else { Verdict::Bad }, signer, created, digest }
        }
        Err(VerificationError::MissingKey { sig }) => Verification {
            verdict: Verdict::UnknownKey,
            signer: issuer_of(sig),
            created: sig.signature_creation_time(),
            digest: None,
        },
        Err(VerificationError::BadKey { sig, ka, .. } | VerificationError::BadSignature { sig, ka, .. }) => {
            Verification {
                verdict: Verdict::Bad,
                signer: Some(ka.cert().fingerprint().to_hex()),
                created: sig.signature_creation_time(),
                digest: None,
            }
        }
        Err(VerificationError::UnboundKey { cert, .. }) => {
            Verification { verdict: Verdict::Bad, signer: Some(cert.fingerprint().to_hex()), ..Default::default() }
        }
        Err(VerificationError::MalformedSignature { sig, .. }) => {
            Verification { verdict: Verdict::Bad, signer: issuer_of(sig), ..Default::default() }
        }
        Err(_) => Verification { verdict: Verdict::Bad, ..Default::default() },
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
    let mut v = VerifierBuilder::from_bytes(signed).ok()?.with_policy(&p, super::judged_at(now), helper).ok()?;
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
    let mut v = match builder.with_policy(&p, super::judged_at(now), helper) {
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
pub(super) struct Checker<'a> {
    certs: &'a [Cert],
    now: SystemTime,
    pub(super) signatures: Signatures,
    /// The message structure had an encryption layer.
    pub(super) encrypted: bool,
}

impl<'a> Checker<'a> {
    pub(super) fn new(certs: &'a [Cert], now: SystemTime) -> Self {
        Checker { certs, now, signatures: Signatures::default(), encrypted: false }
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
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    self.signatures.0.extend(results.iter().map(|r| verification_of(r, self.now)));
                }
                MessageLayer::Encryption { .. } => self.encrypted = true,
                _ => {}
            }
        }
        Ok(())
    }
}
