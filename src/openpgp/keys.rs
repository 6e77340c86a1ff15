//! The intake keys and certificates: loading and unlocking the intake TSKs, what a
//! cert is bound to and can do, parsing certs from mail (secret material stripped),
//! generating keys, WKD hashes. No network, no disk: keys come in as bytes.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow};
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::{KeyPair, Password};
use openpgp::parse::Parse;
use openpgp::policy::Policy;
use openpgp::serialize::{Serialize, SerializeInto};
use openpgp::{Cert, Fingerprint};

use super::policy;

/// The intake key(s) with their secrets unlocked, held for the daemon's lifetime.
pub struct IntakeKeys {
    /// All intake certs; the first one signs, all of them decrypt (key rotation).
    pub(super) certs: Vec<Cert>,
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

    pub(super) fn signing_keypair(&self, p: &dyn Policy, now: SystemTime) -> Result<KeyPair> {
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

/// Whether `cert` is valid at `now` under our policy: alive, not revoked (a team cert
/// that signs commands must be).
pub fn valid_now(cert: &Cert, now: SystemTime) -> bool {
    let p = policy();
    cert.with_policy(&p, now).is_ok_and(|vc| {
        vc.alive().is_ok() && !matches!(vc.revocation_status(), openpgp::types::RevocationStatus::Revoked(_))
    })
}

/// The cert's User IDs whose binding is valid at `now`, as text.
pub fn user_ids(cert: &Cert, now: SystemTime) -> Vec<String> {
    let p = policy();
    let Ok(vc) = cert.with_policy(&p, now) else { return Vec::new() };
    vc.userids().revoked(false).map(|u| String::from_utf8_lossy(u.userid().value()).into_owned()).take(16).collect()
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
