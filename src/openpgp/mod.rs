//! OpenPGP with Sequoia: the intake keyring, decrypting and verifying reports, signing
//! and encrypting what we send, generating keys.
//!
//! No network, no disk, no clock: keys come in as bytes, the policy and the reference
//! time are passed in. Plaintext is capped while it streams out of the decryptor, so a
//! compression bomb costs at most the cap. Verdicts (no key, bad signature) are values,
//! never errors: a report must not be dropped because its crypto is odd.
//!
//! The rooms: `keys` (the intake keys, certs, generation), `read` (decrypting, with
//! the PKESK cap), `verify` (verdicts and the one signature checker), `write` (sign and
//! encrypt what goes out), `selftest` (`check`'s format self-test), `librepgp` (the
//! AEAD chunk layer Sequoia lacks). Callers use the re-exports below, never the rooms.

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::policy::StandardPolicy;

mod keys;
pub mod librepgp;
mod read;
mod selftest;
mod verify;
mod write;

pub use keys::{
    IntakeKeys, armor_cert, binary_cert, bound_to, can_encrypt, generate, has_address, parse_certs, primary_email,
    user_ids, valid_now, wkd_hash,
};
pub use read::{Decryption, MAX_ESK};
pub use selftest::FormatCheck;
pub use verify::{Signatures, Verdict, Verification, verify_detached, verify_inline};

/// Sequoia's standard policy: the one policy we decide with (see ARCHITECTURE.md for
/// the legacy-algorithm stance).
pub fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

/// How far a signer's clock may run ahead of ours. Sequoia judges a signature's life at
/// the time it is given with no tolerance (it allows 30 minutes only when it reads the
/// clock itself), so a signature made a second "after" our arrival time would read as
/// bad: verification is judged at `now` plus this, the key's validity still at `now`.
pub const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The time signatures are judged at: `now` with the signer's clock allowed to run
/// [`CLOCK_SKEW`] ahead.
pub fn judged_at(now: std::time::SystemTime) -> std::time::SystemTime {
    now + CLOCK_SKEW
}

/// How much plaintext the decryptor may hold back for signature checking before it
/// releases data. Small, so a 50 MiB message does not cost 25 MiB of read-ahead
/// (Sequoia's default), and below any sane `max_plaintext_bytes`.
const DECRYPT_BUFFER: usize = 1 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::Cert;
    use openpgp::cert::prelude::*;
    use openpgp::serialize::SerializeInto;
    use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
    use std::io::Write;
    use std::time::Duration;
    use std::time::SystemTime;

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
            Decryption::Ok { plaintext, signatures, .. } => {
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
