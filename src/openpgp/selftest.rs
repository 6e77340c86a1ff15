//! `check`'s self-test: a message in every format each intake key advertises,
//! written (by Sequoia, or by [`super::librepgp`] where the backend cannot) and read
//! back the way intake reads it, so a key never invites mail this build cannot open.

use std::io::Write;
use std::time::SystemTime;

use anyhow::anyhow;
use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::packet::PKESK;
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::types::SymmetricAlgorithm;

use super::{Decryption, IntakeKeys, librepgp, policy};

impl IntakeKeys {
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
