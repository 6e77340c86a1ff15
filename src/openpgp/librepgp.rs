//! LibrePGP's AEAD Encrypted Data packet (tag 20, "AEAD v1"), as GnuPG 2.4+ and
//! Thunderbird's RNP (`--aead=ocb|eax`) and OpenPGP.js 5 (`aeadProtect`) write it.
//!
//! Sequoia 2 does not read tag 20 (it follows RFC 9580, which replaced it with
//! SEIPDv2). Keys made by GnuPG 2.4 advertise it (Features 0x02), so every report from
//! those senders would be unreadable. This module is the small part Sequoia lacks: the
//! session key still comes from Sequoia's PKESK decryption with the intake key, and the
//! decrypted packet stream (compressed, one-pass signed, literal) is handed back to
//! Sequoia's verifier. Only the chunked AEAD layer lives here, on RustCrypto's audited
//! AES, OCB3 and EAX implementations.
//!
//! Format (draft-koch-librepgp §5.16, the same as RFC 4880bis-10 §5.16):
//! `version(1) | cipher(1) | aead(1) | chunk-size octet c | IV (16 EAX, 15 OCB) |
//! chunks | final tag`. Each chunk is up to `2^(c+6)` bytes of ciphertext followed by a
//! 16-byte tag. The nonce of chunk `i` is the IV with its last eight bytes XORed with
//! `i` (big-endian); its associated data is `0xD4 | version | cipher | aead | c | i`
//! (i as 8 bytes, big-endian). The final tag authenticates the empty string under the
//! nonce of index `n` (the number of chunks) with associated data
//! `0xD4 | version | cipher | aead | c | n | total plaintext length` (8 bytes each).
//!
//! The same chunk machinery also opens RFC 9580 SEIPDv2 packets whose AEAD mode the
//! crypto backend lacks (EAX: OpenSSL has none, yet RFC 9580 allows it and OpenPGP.js 6
//! keys list it): [`decrypt_seipdv2`] (RFC 9580 §5.13.2: HKDF-SHA256 over the session
//! key, salted, gives the message key and the nonce prefix; the chunk index is in the
//! nonce, not in the associated data).
//!
//! No I/O, no clock. Plaintext released by this module has passed every chunk tag and
//! the final tag: a truncated or reordered message is an error, never partial text.

use aes::{Aes128, Aes192, Aes256};
use eax::Eax;
use eax::aead::consts::{U15, U16};
use eax::aead::generic_array::GenericArray;
use eax::aead::{AeadInPlace, KeyInit};
use ocb3::Ocb3;

/// Why a tag-20 packet could not be opened. The text is for the quarantine detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The AEAD modes LibrePGP defines (RFC 4880bis ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eax = 1,
    Ocb = 2,
}

impl Mode {
    pub fn from_id(id: u8) -> Option<Mode> {
        match id {
            1 => Some(Mode::Eax),
            2 => Some(Mode::Ocb),
            _ => None,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Mode::Eax => 16,
            Mode::Ocb => 15,
        }
    }
}

/// Tag length of both modes.
const TAG: usize = 16;

/// The largest chunk-size octet accepted. GnuPG's maximum is 2^27 bytes (c = 21);
/// a larger chunk is refused rather than trusted (it only decides how much of the
/// buffered body one chunk spans, but nobody writes more).
const MAX_CHUNK_OCTET: u8 = 21;

/// The packet tag octet in new format, bound into every chunk's associated data.
const TAG_OCTET: u8 = 0xC0 | 20;

/// OpenPGP symmetric algorithm ids for AES (RFC 9580 §9.3).
fn key_len(cipher: u8) -> Option<usize> {
    match cipher {
        7 => Some(16),
        8 => Some(24),
        9 => Some(32),
        _ => None,
    }
}

/// One AEAD operation on one chunk, in place; `tag` is checked (decrypt) or filled
/// (encrypt). The arguments are the AEAD's own inputs; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn seal_or_open(
    cipher: u8,
    mode: Mode,
    key: &[u8],
    nonce: &[u8],
    ad: &[u8],
    buf: &mut [u8],
    tag: &mut [u8; TAG],
    encrypt: bool,
) -> Result<(), Error> {
    macro_rules! run {
        ($aead:ty) => {{
            let a = <$aead>::new_from_slice(key).map_err(|_| Error("bad session key length".into()))?;
            let nonce = GenericArray::from_slice(nonce);
            if encrypt {
                let t =
                    a.encrypt_in_place_detached(nonce, ad, buf).map_err(|_| Error("AEAD encryption failed".into()))?;
                tag.copy_from_slice(&t);
                Ok(())
            } else {
                a.decrypt_in_place_detached(nonce, ad, buf, GenericArray::from_slice(&tag[..]))
                    .map_err(|_| Error("AEAD authentication failed: the message was altered or truncated".into()))
            }
        }};
    }
    match (mode, cipher) {
        (Mode::Eax, 7) => run!(Eax<Aes128>),
        (Mode::Eax, 8) => run!(Eax<Aes192>),
        (Mode::Eax, 9) => run!(Eax<Aes256>),
        (Mode::Ocb, 7) => run!(Ocb3<Aes128, U15, U16>),
        (Mode::Ocb, 8) => run!(Ocb3<Aes192, U15, U16>),
        (Mode::Ocb, 9) => run!(Ocb3<Aes256, U15, U16>),
        _ => Err(Error(format!("unsupported cipher {cipher} for LibrePGP AEAD"))),
    }
}

/// SEIPDv2's nonce: the derived prefix followed by the chunk index.
fn nonce_v2(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut n = prefix.to_vec();
    n.extend_from_slice(&index.to_be_bytes());
    n
}

/// The SEIPDv2 packet tag octet (new format, tag 18).
const SEIPD_TAG_OCTET: u8 = 0xC0 | 18;

/// A SEIPDv2 message's derived key, nonce prefix and associated data.
type MessageKeys = (Vec<u8>, Vec<u8>, [u8; 5]);

/// Derives the message key and nonce prefix of a SEIPDv2 packet.
fn seipdv2_keys(
    cipher: u8,
    mode: Mode,
    chunk_octet: u8,
    salt: &[u8; 32],
    session_key: &[u8],
) -> Result<MessageKeys, Error> {
    let klen = key_len(cipher).ok_or_else(|| Error(format!("cipher {cipher} is not AES")))?;
    if session_key.len() != klen {
        return Err(Error("session key length does not fit the cipher".into()));
    }
    let info = [SEIPD_TAG_OCTET, 2, cipher, mode as u8, chunk_octet];
    let prefix_len = mode.iv_len() - 8;
    let mut okm = vec![0u8; klen + prefix_len];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), session_key)
        .expand(&info, &mut okm)
        .map_err(|_| Error("HKDF failed".into()))?;
    let prefix = okm.split_off(klen);
    Ok((okm, prefix, info))
}

/// Decrypts the chunks of an RFC 9580 SEIPDv2 packet (the body after its header:
/// chunks, then the final tag) whose mode is one this module has. At most `max`
/// bytes out; `Ok(None)` past it.
pub fn decrypt_seipdv2(
    cipher: u8,
    mode: Mode,
    chunk_size: u64,
    salt: &[u8; 32],
    body: &[u8],
    session_key: &[u8],
    max: u64,
) -> Result<Option<Vec<u8>>, Error> {
    if !chunk_size.is_power_of_two() || !(64..=1 << (MAX_CHUNK_OCTET + 6)).contains(&chunk_size) {
        return Err(Error(format!("SEIPDv2 chunk size {chunk_size} is not allowed")));
    }
    let chunk_octet = (chunk_size.trailing_zeros() - 6) as u8;
    let (key, prefix, info) = seipdv2_keys(cipher, mode, chunk_octet, salt, session_key)?;
    open_chunks(cipher, mode, &key, body, chunk_size as usize, max, |index, total| {
        // SEIPDv2: the index is in the nonce; the final tag's data adds the length.
        let mut ad = info.to_vec();
        if let Some(total) = total {
            ad.extend_from_slice(&total.to_be_bytes());
        }
        (nonce_v2(&prefix, index), ad)
    })
}

/// The chunk loop both formats share: `chunks` then a final tag; each chunk up to
/// `chunk` bytes of ciphertext and its tag. `params(index, None)` gives a chunk's nonce
/// and associated data, `params(n, Some(total))` the final tag's. At most `max` bytes
/// out (`Ok(None)` past it); nothing is returned unless every tag matched.
fn open_chunks(
    cipher: u8,
    mode: Mode,
    key: &[u8],
    body: &[u8],
    chunk: usize,
    max: u64,
    params: impl Fn(u64, Option<u64>) -> (Vec<u8>, Vec<u8>),
) -> Result<Option<Vec<u8>>, Error> {
    if body.len() < TAG {
        return Err(Error("AEAD packet too short".into()));
    }
    let (chunks, final_tag) = body.split_at(body.len() - TAG);
    let mut out = Vec::with_capacity(chunks.len().min(max as usize));
    let mut index: u64 = 0;
    let mut pos = 0;
    while pos < chunks.len() {
        let take = (chunk + TAG).min(chunks.len() - pos);
        if take <= TAG {
            return Err(Error("AEAD chunk without data: the message is truncated".into()));
        }
        if out.len() as u64 + (take - TAG) as u64 > max {
            return Ok(None);
        }
        let start = out.len();
        out.extend_from_slice(&chunks[pos..pos + take - TAG]);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&chunks[pos + take - TAG..pos + take]);
        let (nonce, ad) = params(index, None);
        seal_or_open(cipher, mode, key, &nonce, &ad, &mut out[start..], &mut tag, false)?;
        pos += take;
        index += 1;
    }
    let (nonce, ad) = params(index, Some(out.len() as u64));
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(final_tag);
    seal_or_open(cipher, mode, key, &nonce, &ad, &mut [], &mut tag, false)
        .map_err(|_| Error("AEAD final tag does not match: the message was truncated or altered".into()))?;
    Ok(Some(out))
}

/// Encrypts into SEIPDv2 chunks (the inverse of [`decrypt_seipdv2`]): for `check`'s
/// self-test of a mode the backend cannot write, and round-trip tests.
pub fn encrypt_seipdv2(
    cipher: u8,
    mode: Mode,
    chunk_octet: u8,
    salt: &[u8; 32],
    session_key: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let (key, prefix, info) = seipdv2_keys(cipher, mode, chunk_octet, salt, session_key)?;
    let mut out = Vec::new();
    let mut index = 0u64;
    for piece in plaintext.chunks(1 << (chunk_octet + 6)) {
        let mut buf = piece.to_vec();
        let mut tag = [0u8; TAG];
        seal_or_open(cipher, mode, &key, &nonce_v2(&prefix, index), &info, &mut buf, &mut tag, true)?;
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        index += 1;
    }
    let mut ad = info.to_vec();
    ad.extend_from_slice(&(plaintext.len() as u64).to_be_bytes());
    let mut tag = [0u8; TAG];
    seal_or_open(cipher, mode, &key, &nonce_v2(&prefix, index), &ad, &mut [], &mut tag, true)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn nonce(iv: &[u8], index: u64) -> Vec<u8> {
    let mut n = iv.to_vec();
    let l = n.len();
    for (b, i) in n[l - 8..].iter_mut().zip(index.to_be_bytes()) {
        *b ^= i;
    }
    n
}

/// The parameters at the head of a tag-20 body.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub cipher: u8,
    pub mode: Mode,
    pub chunk_octet: u8,
}

impl Header {
    fn prefix(&self) -> [u8; 5] {
        [TAG_OCTET, 1, self.cipher, self.mode as u8, self.chunk_octet]
    }
}

/// Reads the header of a tag-20 body; tells what the message asks for before any key
/// is used (for the quarantine detail and for `check`).
pub fn header(body: &[u8]) -> Result<Header, Error> {
    let [version, cipher, aead, c, ..] = body else {
        return Err(Error("AEAD packet too short".into()));
    };
    if *version != 1 {
        return Err(Error(format!("AEAD packet version {version} is not LibrePGP's 1")));
    }
    let mode = Mode::from_id(*aead).ok_or_else(|| Error(format!("unknown AEAD algorithm {aead}")))?;
    key_len(*cipher).ok_or_else(|| Error(format!("cipher {cipher} is not AES")))?;
    if *c > MAX_CHUNK_OCTET {
        return Err(Error(format!("AEAD chunk size octet {c} is larger than any implementation writes")));
    }
    Ok(Header { cipher: *cipher, mode, chunk_octet: *c })
}

/// Decrypts a tag-20 packet body with `session_key`. The output is the packet stream
/// inside (compressed, signed, literal), at most `max` bytes; `Ok(None)` when it would
/// be more (the caller quarantines as plaintext-limit).
pub fn decrypt(
    body: &[u8],
    cipher_from_pkesk: Option<u8>,
    session_key: &[u8],
    max: u64,
) -> Result<Option<Vec<u8>>, Error> {
    let h = header(body)?;
    if let Some(c) = cipher_from_pkesk
        && c != h.cipher
    {
        return Err(Error(format!("session key is for cipher {c}, the packet says {}", h.cipher)));
    }
    if Some(session_key.len()) != key_len(h.cipher) {
        return Err(Error("session key length does not fit the cipher".into()));
    }
    let iv_len = h.mode.iv_len();
    let rest = body.get(4..).ok_or_else(|| Error("AEAD packet too short".into()))?;
    if rest.len() < iv_len + TAG {
        return Err(Error("AEAD packet too short".into()));
    }
    let (iv, data) = rest.split_at(iv_len);
    let prefix = h.prefix();
    open_chunks(h.cipher, h.mode, session_key, data, 1usize << (h.chunk_octet + 6), max, |index, total| {
        // LibrePGP: the index is XORed into the IV and also bound in the data; the
        // final tag's data adds the length.
        let mut ad = prefix.to_vec();
        ad.extend_from_slice(&index.to_be_bytes());
        if let Some(total) = total {
            ad.extend_from_slice(&total.to_be_bytes());
        }
        (nonce(iv, index), ad)
    })
}

/// Encrypts `plaintext` (an OpenPGP packet stream) into a tag-20 body. The product uses
/// it only for `check`'s self-test of a key that advertises LibrePGP AEAD, and tests
/// use it for round trips; reporters' software is what really writes these.
pub fn encrypt(h: Header, iv: &[u8], session_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    if iv.len() != h.mode.iv_len() {
        return Err(Error("IV length does not fit the AEAD mode".into()));
    }
    let chunk = 1usize << (h.chunk_octet + 6);
    let prefix = h.prefix();
    let mut out = vec![1, h.cipher, h.mode as u8, h.chunk_octet];
    out.extend_from_slice(iv);
    let mut index: u64 = 0;
    for piece in plaintext.chunks(chunk) {
        let mut buf = piece.to_vec();
        let mut ad = prefix.to_vec();
        ad.extend_from_slice(&index.to_be_bytes());
        let mut tag = [0u8; TAG];
        seal_or_open(h.cipher, h.mode, session_key, &nonce(iv, index), &ad, &mut buf, &mut tag, true)?;
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        index += 1;
    }
    let mut ad = prefix.to_vec();
    ad.extend_from_slice(&index.to_be_bytes());
    ad.extend_from_slice(&(plaintext.len() as u64).to_be_bytes());
    let mut tag = [0u8; TAG];
    seal_or_open(h.cipher, h.mode, session_key, &nonce(iv, index), &ad, &mut [], &mut tag, true)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mode: Mode, cipher: u8, c: u8, len: usize) {
        let key = vec![7u8; key_len(cipher).unwrap()];
        let iv = vec![3u8; mode.iv_len()];
        let pt: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let h = Header { cipher, mode, chunk_octet: c };
        let body = encrypt(h, &iv, &key, &pt).unwrap();
        assert_eq!(decrypt(&body, Some(cipher), &key, u64::MAX).unwrap().unwrap(), pt);
        // Every truncation and every single-bit flip is refused, never partial text.
        for cut in [body.len() - 1, body.len() - TAG, 4 + iv.len() + 1] {
            assert!(decrypt(&body[..cut], Some(cipher), &key, u64::MAX).is_err(), "cut {cut}");
        }
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(decrypt(&bad, Some(cipher), &key, u64::MAX).is_err());
        // The cap holds.
        if len > 10 {
            assert_eq!(decrypt(&body, Some(cipher), &key, 10).unwrap(), None);
        }
    }

    #[test]
    fn ocb_and_eax_round_trip_over_several_chunks() {
        for mode in [Mode::Ocb, Mode::Eax] {
            for cipher in [7, 8, 9] {
                round_trip(mode, cipher, 0, 1000); // 64-byte chunks, 16 of them
                round_trip(mode, cipher, 0, 128); // exactly two full chunks
                round_trip(mode, cipher, 12, 0); // empty plaintext: final tag only
            }
        }
    }

    #[test]
    fn seipdv2_round_trip_and_tamper() {
        for mode in [Mode::Eax, Mode::Ocb] {
            let key = [5u8; 32];
            let salt = [6u8; 32];
            let pt: Vec<u8> = (0..300).map(|i| i as u8).collect();
            let body = encrypt_seipdv2(9, mode, 0, &salt, &key, &pt).unwrap();
            assert_eq!(decrypt_seipdv2(9, mode, 64, &salt, &body, &key, u64::MAX).unwrap().unwrap(), pt);
            assert!(decrypt_seipdv2(9, mode, 64, &salt, &body[..body.len() - 1], &key, u64::MAX).is_err());
            assert!(decrypt_seipdv2(9, mode, 64, &[7u8; 32], &body, &key, u64::MAX).is_err(), "salt is bound");
            assert!(decrypt_seipdv2(9, mode, 128, &salt, &body, &key, u64::MAX).is_err(), "chunk size is bound");
        }
    }

    #[test]
    fn chunks_cannot_be_reordered() {
        let key = [1u8; 16];
        let iv = [2u8; 15];
        let h = Header { cipher: 7, mode: Mode::Ocb, chunk_octet: 0 };
        let pt = vec![9u8; 128];
        let mut body = encrypt(h, &iv, &key, &pt).unwrap();
        let first = 4 + 15;
        let (a, b) = (first, first + 64 + TAG);
        let chunk_a = body[a..a + 64 + TAG].to_vec();
        let chunk_b = body[b..b + 64 + TAG].to_vec();
        body[a..a + 64 + TAG].copy_from_slice(&chunk_b);
        body[b..b + 64 + TAG].copy_from_slice(&chunk_a);
        assert!(decrypt(&body, Some(7), &key, u64::MAX).is_err());
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(header(&[]).is_err());
        assert!(header(&[2, 9, 2, 10]).is_err());
        assert!(header(&[1, 3, 2, 10]).is_err()); // CAST5
        assert!(header(&[1, 9, 3, 10]).is_err()); // GCM is not LibrePGP
        assert!(header(&[1, 9, 2, 60]).is_err());
        assert!(decrypt(&[1, 9, 2, 10, 0], Some(9), &[0; 32], 100).is_err());
    }
}
