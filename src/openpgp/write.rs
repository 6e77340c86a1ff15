//! Writing what goes out: detached and cleartext signatures with the intake key, and
//! sign+encrypt to the team and reporters. The signing key must be alive at `now`.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Result, anyhow};
use sequoia_openpgp as openpgp;

use openpgp::Cert;
use openpgp::serialize::stream::{Armorer, Compressor, Encryptor, LiteralWriter, Message, Signer};

use super::{IntakeKeys, policy};

impl IntakeKeys {
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
        self.encrypt_sign(data, recipients, now, false)
    }

    /// [`IntakeKeys::encrypt_and_sign`], compressed first (zlib, fastest): for our own
    /// documents (the journal), never for mail to others (a reader's software may not
    /// decompress, and compression before encryption leaks through length).
    pub fn encrypt_and_sign_compressed(&self, data: &[u8], recipients: &[Cert], now: SystemTime) -> Result<Vec<u8>> {
        self.encrypt_sign(data, recipients, now, true)
    }

    fn encrypt_sign(&self, data: &[u8], recipients: &[Cert], now: SystemTime, compress: bool) -> Result<Vec<u8>> {
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
            let mut msg = Encryptor::for_recipients(msg, keys).build()?;
            if compress {
                msg = Compressor::new(msg)
                    .algo(openpgp::types::CompressionAlgorithm::Zlib)
                    .level(openpgp::types::CompressionLevel::fastest())
                    .build()?;
            }
            let msg = Signer::new(msg, keypair)?.creation_time(now).build()?;
            let mut lit = LiteralWriter::new(msg).build()?;
            lit.write_all(data)?;
            lit.finalize()?;
        }
        Ok(out)
    }
}
