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
//! Key material is wiped: the derived SEIPDv2 key is `Zeroizing`, the AES round keys
//! (one AEAD instance per message) are wiped on drop by `aes`'s `zeroize` feature,
//! and the output buffer of a failed decryption (with OCB it holds the failing chunk's
//! unauthenticated output) is wiped before it is freed. The OCB offset table of
//! `ocb3` 0.1 has no zeroize support and is freed as it is.

use aes::{Aes128, Aes192, Aes256};
use eax::Eax;
use eax::aead::consts::{U15, U16};
use eax::aead::generic_array::GenericArray;
use eax::aead::{AeadInPlace, KeyInit};
use ocb3::Ocb3;
use zeroize::Zeroizing;

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

/// The largest chunk-size octet accepted: 56 (chunks of 2^62 bytes), what GnuPG's
/// reader accepts (`decrypt-data.c`; its writer uses 16, more only with
/// `--allow-large-chunks`). The body is already buffered and capped before it gets
/// here, so a large chunk only decides how much of that buffer one tag covers (the
/// chunk length is clamped to the body); refusing what GnuPG reads would quarantine
/// its users' reports. Every shift of the octet goes through [`chunk_len`].
const MAX_CHUNK_OCTET: u8 = 56;

/// The chunk length `2^(c+6)` of chunk-size octet `c`, in u64 (2^62 at most, which a
/// 32-bit usize could not hold); an octet above [`MAX_CHUNK_OCTET`] is an error.
fn chunk_len(c: u8) -> Result<u64, Error> {
    if c > MAX_CHUNK_OCTET {
        return Err(Error(format!("AEAD chunk size octet {c} is larger than any implementation accepts")));
    }
    Ok(1u64 << (u32::from(c) + 6))
}

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

/// One AEAD instance for the whole message: the key schedule (and OCB's table) made
/// once, not per chunk, and the AES round keys wiped when it drops.
enum Aead {
    Eax128(Eax<Aes128>),
    Eax192(Eax<Aes192>),
    Eax256(Eax<Aes256>),
    Ocb128(Ocb3<Aes128, U15, U16>),
    Ocb192(Ocb3<Aes192, U15, U16>),
    Ocb256(Ocb3<Aes256, U15, U16>),
}

macro_rules! each_aead {
    ($self:expr, $a:ident => $body:expr) => {
        match $self {
            Aead::Eax128($a) => $body,
            Aead::Eax192($a) => $body,
            Aead::Eax256($a) => $body,
            Aead::Ocb128($a) => $body,
            Aead::Ocb192($a) => $body,
            Aead::Ocb256($a) => $body,
        }
    };
}

impl Aead {
    fn new(cipher: u8, mode: Mode, key: &[u8]) -> Result<Aead, Error> {
        let bad = |_| Error("bad session key length".into());
        Ok(match (mode, cipher) {
            (Mode::Eax, 7) => Aead::Eax128(Eax::new_from_slice(key).map_err(bad)?),
            (Mode::Eax, 8) => Aead::Eax192(Eax::new_from_slice(key).map_err(bad)?),
            (Mode::Eax, 9) => Aead::Eax256(Eax::new_from_slice(key).map_err(bad)?),
            (Mode::Ocb, 7) => Aead::Ocb128(Ocb3::new_from_slice(key).map_err(bad)?),
            (Mode::Ocb, 8) => Aead::Ocb192(Ocb3::new_from_slice(key).map_err(bad)?),
            (Mode::Ocb, 9) => Aead::Ocb256(Ocb3::new_from_slice(key).map_err(bad)?),
            _ => return Err(Error(format!("unsupported cipher {cipher} for LibrePGP AEAD"))),
        })
    }

    /// Decrypts `buf` in place and checks `tag`. On a mismatch `buf` may hold
    /// unauthenticated output: the caller wipes it.
    fn open(&self, nonce: &[u8], ad: &[u8], buf: &mut [u8], tag: &[u8; TAG]) -> Result<(), Error> {
        let tag = GenericArray::from_slice(&tag[..]);
        each_aead!(self, a => a.decrypt_in_place_detached(GenericArray::from_slice(nonce), ad, buf, tag))
            .map_err(|_| Error("AEAD authentication failed: the message was altered or truncated".into()))
    }

    /// Encrypts `buf` in place; returns its tag.
    fn seal(&self, nonce: &[u8], ad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG], Error> {
        let t = each_aead!(self, a => a.encrypt_in_place_detached(GenericArray::from_slice(nonce), ad, buf))
            .map_err(|_| Error("AEAD encryption failed".into()))?;
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&t);
        Ok(tag)
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

/// A SEIPDv2 message's derived key (wiped on drop), nonce prefix and associated data.
type MessageKeys = (Zeroizing<Vec<u8>>, Vec<u8>, [u8; 5]);

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
    let mut okm = Zeroizing::new(vec![0u8; klen + prefix_len]);
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), session_key)
        .expand(&info, &mut okm)
        .map_err(|_| Error("HKDF failed".into()))?;
    let prefix = okm[klen..].to_vec();
    Ok((Zeroizing::new(okm[..klen].to_vec()), prefix, info))
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
    if !chunk_size.is_power_of_two() || chunk_size < 64 {
        return Err(Error(format!("SEIPDv2 chunk size {chunk_size} is not allowed")));
    }
    let chunk_octet = (chunk_size.trailing_zeros() - 6) as u8;
    chunk_len(chunk_octet)?;
    let (key, prefix, info) = seipdv2_keys(cipher, mode, chunk_octet, salt, session_key)?;
    let aead = Aead::new(cipher, mode, &key)?;
    open_chunks(&aead, body, chunk_size, max, |index, total| {
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
/// out (`Ok(None)` past it); nothing is returned unless every tag matched, and the
/// output buffer is wiped on every other way out (it is allocated once, at its final
/// size, so no copy of it is left behind by a reallocation).
fn open_chunks(
    aead: &Aead,
    body: &[u8],
    chunk: u64,
    max: u64,
    params: impl Fn(u64, Option<u64>) -> (Vec<u8>, Vec<u8>),
) -> Result<Option<Vec<u8>>, Error> {
    if body.len() < TAG {
        return Err(Error("AEAD packet too short".into()));
    }
    let (chunks, final_tag) = body.split_at(body.len() - TAG);
    // A chunk longer than the body is the body: clamped before it becomes a usize.
    let chunk = chunk.min(chunks.len() as u64) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(chunks.len().min(usize::try_from(max).unwrap_or(usize::MAX))));
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
        aead.open(&nonce, &ad, &mut out[start..], &tag)?;
        pos += take;
        index += 1;
    }
    let (nonce, ad) = params(index, Some(out.len() as u64));
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(final_tag);
    aead.open(&nonce, &ad, &mut [], &tag)
        .map_err(|_| Error("AEAD final tag does not match: the message was truncated or altered".into()))?;
    Ok(Some(std::mem::take(&mut *out)))
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
    let chunk = chunk_len(chunk_octet)?.min(plaintext.len().max(1) as u64) as usize;
    let (key, prefix, info) = seipdv2_keys(cipher, mode, chunk_octet, salt, session_key)?;
    let aead = Aead::new(cipher, mode, &key)?;
    let mut out = Vec::new();
    let mut index = 0u64;
    for piece in plaintext.chunks(chunk) {
        let mut buf = piece.to_vec();
        let tag = aead.seal(&nonce_v2(&prefix, index), &info, &mut buf)?;
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        index += 1;
    }
    let mut ad = info.to_vec();
    ad.extend_from_slice(&(plaintext.len() as u64).to_be_bytes());
    let tag = aead.seal(&nonce_v2(&prefix, index), &ad, &mut [])?;
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
    chunk_len(*c)?;
    Ok(Header { cipher: *cipher, mode, chunk_octet: *c })
}

/// Decrypts a tag-20 packet body with `session_key`, which a v3 PKESK gave together
/// with `cipher_from_pkesk`: it must be the cipher the packet names (LibrePGP binds
/// the two; a v6 PKESK names none and is not paired with tag 20). The output is the
/// packet stream inside (compressed, signed, literal), at most `max` bytes; `Ok(None)`
/// when it would be more (the caller quarantines as plaintext-limit).
pub fn decrypt(body: &[u8], cipher_from_pkesk: u8, session_key: &[u8], max: u64) -> Result<Option<Vec<u8>>, Error> {
    let h = header(body)?;
    if cipher_from_pkesk != h.cipher {
        return Err(Error(format!("session key is for cipher {cipher_from_pkesk}, the packet says {}", h.cipher)));
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
    let aead = Aead::new(h.cipher, h.mode, session_key)?;
    open_chunks(&aead, data, chunk_len(h.chunk_octet)?, max, |index, total| {
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
    let chunk = chunk_len(h.chunk_octet)?.min(plaintext.len().max(1) as u64) as usize;
    let prefix = h.prefix();
    let aead = Aead::new(h.cipher, h.mode, session_key)?;
    let mut out = vec![1, h.cipher, h.mode as u8, h.chunk_octet];
    out.extend_from_slice(iv);
    let mut index: u64 = 0;
    for piece in plaintext.chunks(chunk) {
        let mut buf = piece.to_vec();
        let mut ad = prefix.to_vec();
        ad.extend_from_slice(&index.to_be_bytes());
        let tag = aead.seal(&nonce(iv, index), &ad, &mut buf)?;
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        index += 1;
    }
    let mut ad = prefix.to_vec();
    ad.extend_from_slice(&index.to_be_bytes());
    ad.extend_from_slice(&(plaintext.len() as u64).to_be_bytes());
    let tag = aead.seal(&nonce(iv, index), &ad, &mut [])?;
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
        assert_eq!(decrypt(&body, cipher, &key, u64::MAX).unwrap().unwrap(), pt);
        // Every truncation and every single-bit flip is refused, never partial text.
        for cut in [body.len() - 1, body.len() - TAG, 4 + iv.len() + 1] {
            assert!(decrypt(&body[..cut], cipher, &key, u64::MAX).is_err(), "cut {cut}");
        }
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        assert!(decrypt(&bad, cipher, &key, u64::MAX).is_err());
        // The cap holds.
        if len > 10 {
            assert_eq!(decrypt(&body, cipher, &key, 10).unwrap(), None);
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
        assert!(decrypt(&body, 7, &key, u64::MAX).is_err());
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(header(&[]).is_err());
        assert!(header(&[2, 9, 2, 10]).is_err());
        assert!(header(&[1, 3, 2, 10]).is_err()); // CAST5
        assert!(header(&[1, 9, 3, 10]).is_err()); // GCM is not LibrePGP
        assert!(header(&[1, 9, 2, 60]).is_err());
        assert!(decrypt(&[1, 9, 2, 10, 0], 9, &[0; 32], 100).is_err());
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 4880bis-10 A.4 (EAX) and A.5 (OCB): the AEAD Encrypted Data packets'
    /// bodies (after the `d4 4a` / `d4 49` header), decrypted from their bytes.
    #[test]
    fn rfc4880bis_tag20_vectors() {
        let literal = unhex("cb1462000000000048656c6c6f2c20776f726c64210a");
        let eax = unhex(concat!(
            "0107010eb732379f73c4928de25facfe6517ec105dc11a81dc0cb8a2f6f3d90016384a56fc821ae11ae8",
            "dbcb49862655dea88d06a81486801b0ff387bd2eab013de1259586906eab2476"
        ));
        let ocb = unhex(concat!(
            "0107020e5ed2bc1e470abe8f1d644c7a6c8a567b0f7701196611a154ba9c2574cd056284a8ef68035c",
            "623d93cc708a43211bb6eaf2b27f7c18d571bcd83b20add3a08b73af15b9a098"
        ));
        for (body, key) in [(eax, "86f1efb86952329f24acd3bfd0e5346d"), (ocb, "d1f01ba30e130aa7d2582c16e050ae44")] {
            let key = unhex(key);
            assert_eq!(decrypt(&body, 7, &key, u64::MAX).unwrap().unwrap(), literal);
            // The PKESK's cipher must be the packet's.
            assert!(decrypt(&body, 9, &key, u64::MAX).is_err());
            // The chunk octet (14) and the cipher octet are bound.
            let mut c = body.clone();
            c[3] = 13;
            assert!(decrypt(&c, 7, &key, u64::MAX).is_err());
            let mut c = body.clone();
            c[1] = 8;
            assert!(decrypt(&c, 8, &[key.clone(), vec![0; 8]].concat(), u64::MAX).is_err());
        }
    }

    /// RFC 9580 A.9 (EAX) and A.10 (OCB): the SEIPDv2 packets' bodies, decrypted from
    /// their bytes with the session keys the appendix gives.
    #[test]
    fn rfc9580_seipdv2_vectors() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        let eax = b64(concat!(
            "AgcBBp/5DjsyGWTzpCkTyNzGYZMlAVIn77fq6qSfBMLmdBddSj0ibtavy5yprBIsFHDhHGPUwKskHGqTitSL",
            "+ZpambkLuoMl3mEEdUAlireVmpWtBR3alusVQx3+9fXiJVyngmFUbjOa"
        ));
        let ocb = b64(concat!(
            "AgcCBiCmYfcx/JowMrViMyYCfjpdjbV0jr7/CwxZENCezdZB/5/ThWJ1gDW8SXVM4b8//6fa0KO4EE9RM89C",
            "pBAKg+70yhtIAaiEa/QrzafIzp1l4hLzAcvNmP3K3mlKh3rUJHMj9uhX"
        ));
        let literal = unhex("cb1362000000000048656c6c6f2c20776f726c6421");
        for (body, mode, key) in
            [(eax, Mode::Eax, "3881bafe985412459b86c36f98cb9a5e"), (ocb, Mode::Ocb, "28e79ab82397d3c63de24ac217d7b791")]
        {
            let key = unhex(key);
            assert_eq!(&body[..3], &[2, 7, mode as u8]);
            let chunk = 1u64 << (body[3] + 6);
            let salt: [u8; 32] = body[4..36].try_into().unwrap();
            let out = decrypt_seipdv2(7, mode, chunk, &salt, &body[36..], &key, u64::MAX).unwrap().unwrap();
            assert!(out.starts_with(&literal), "{}", hex::encode(&out));
            let mut flipped = body[36..].to_vec();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(decrypt_seipdv2(7, mode, chunk, &salt, &flipped, &key, u64::MAX).is_err());
        }
    }

    /// What a decryption gives.
    type Opened = Result<Option<Vec<u8>>, Error>;

    /// The chunks of one encrypted body: (offset of each chunk with its tag, its length
    /// with the tag), and the offset of the final tag.
    fn layout(start: usize, body_len: usize, chunk: usize) -> (Vec<(usize, usize)>, usize) {
        let fin = body_len - TAG;
        let mut out = Vec::new();
        let mut pos = start;
        while pos < fin {
            let n = (chunk + TAG).min(fin - pos);
            out.push((pos, n));
            pos += n;
        }
        (out, fin)
    }

    /// Every mutation of the list is refused: `open` decrypts a whole body,
    /// `start` is where the chunks begin, `retag` makes a final tag for (index, total).
    fn refuses_every_mutation(
        body: &[u8],
        start: usize,
        pt: &[u8],
        open: &dyn Fn(&[u8]) -> Opened,
        retag: &dyn Fn(u64, u64) -> [u8; TAG],
    ) {
        assert_eq!(open(body).unwrap().unwrap(), pt, "the unaltered body opens");
        let (chunks, fin) = layout(start, body.len(), 64);
        assert!(chunks.len() >= 3);
        let refused = |b: &[u8], what: &str| assert!(open(b).is_err(), "{what} was accepted");
        let (last_at, _) = *chunks.last().unwrap();
        // The last chunk dropped, the final tag kept.
        refused(&[&body[..last_at], &body[fin..]].concat(), "last chunk dropped");
        // Cut at each chunk boundary.
        for (at, _) in &chunks {
            refused(&body[..*at], "cut at a chunk boundary");
        }
        refused(&body[..fin], "final tag cut");
        // A final tag for a wrong total or index.
        let n = chunks.len() as u64;
        for (index, total) in
            [(n, pt.len() as u64 + 1), (n, pt.len() as u64 - 1), (n + 1, pt.len() as u64), (n - 1, pt.len() as u64)]
        {
            refused(&[&body[..fin], &retag(index, total)[..]].concat(), "wrong final tag data");
        }
        // The right final tag is what `retag` makes (so the cases above test the data).
        assert_eq!(&retag(n, pt.len() as u64)[..], &body[fin..]);
        // A bit flip in each tag, the final one too, and in each chunk's data.
        for (at, len) in &chunks {
            for i in [*at, at + len - 1] {
                let mut b = body.to_vec();
                b[i] ^= 0x01;
                refused(&b, "bit flip");
            }
        }
        let mut b = body.to_vec();
        b[fin + 3] ^= 0x80;
        refused(&b, "bit flip in the final tag");
        // Swapped and duplicated full chunks.
        let (a, len) = chunks[0];
        let (c, _) = chunks[1];
        let mut b = body.to_vec();
        b[a..a + len].copy_from_slice(&body[c..c + len]);
        b[c..c + len].copy_from_slice(&body[a..a + len]);
        refused(&b, "swapped chunks");
        let mut b = body.to_vec();
        b[c..c + len].copy_from_slice(&body[a..a + len]);
        refused(&b, "duplicated chunk in place of the next");
        refused(&[&body[..c], &body[a..a + len], &body[c..]].concat(), "duplicated chunk inserted");
        // Appended bytes.
        refused(&[body, &[0u8][..]].concat(), "one byte appended");
        refused(&[body, &body[fin..]].concat(), "a second final tag appended");
    }

    #[test]
    fn tag20_mutations_are_refused_for_eax_and_ocb() {
        for mode in [Mode::Eax, Mode::Ocb] {
            let key = [4u8; 16];
            let iv = vec![9u8; mode.iv_len()];
            let h = Header { cipher: 7, mode, chunk_octet: 0 };
            let pt: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
            let body = encrypt(h, &iv, &key, &pt).unwrap();
            let open = |b: &[u8]| decrypt(b, 7, &key, u64::MAX);
            let retag = |index: u64, total: u64| {
                let mut ad = h.prefix().to_vec();
                ad.extend_from_slice(&index.to_be_bytes());
                ad.extend_from_slice(&total.to_be_bytes());
                Aead::new(7, mode, &key).unwrap().seal(&nonce(&iv, index), &ad, &mut []).unwrap()
            };
            refuses_every_mutation(&body, 4 + iv.len(), &pt, &open, &retag);
            // A changed chunk octet or cipher octet, a PKESK cipher not the header's.
            for (i, v) in [(3, 1u8), (1, 8), (2, 3 - mode as u8)] {
                let mut b = body.clone();
                b[i] = v;
                assert!(
                    decrypt(&b, b[1], &[key.to_vec(), vec![0; 8]].concat()[..key_len(b[1]).unwrap_or(16)], u64::MAX)
                        .is_err()
                );
            }
            assert!(decrypt(&body, 8, &key, u64::MAX).is_err(), "PKESK cipher differs from the header's");
        }
    }

    #[test]
    fn seipdv2_mutations_are_refused_for_eax_and_ocb() {
        for mode in [Mode::Eax, Mode::Ocb] {
            let sk = [5u8; 16];
            let salt = [6u8; 32];
            let pt: Vec<u8> = (0..200u32).map(|i| (i * 3) as u8).collect();
            let body = encrypt_seipdv2(7, mode, 0, &salt, &sk, &pt).unwrap();
            let open = |b: &[u8]| decrypt_seipdv2(7, mode, 64, &salt, b, &sk, u64::MAX);
            let (key, prefix, info) = seipdv2_keys(7, mode, 0, &salt, &sk).unwrap();
            let retag = |index: u64, total: u64| {
                let mut ad = info.to_vec();
                ad.extend_from_slice(&total.to_be_bytes());
                Aead::new(7, mode, &key).unwrap().seal(&nonce_v2(&prefix, index), &ad, &mut []).unwrap()
            };
            refuses_every_mutation(&body, 0, &pt, &open, &retag);
            assert!(decrypt_seipdv2(7, mode, 128, &salt, &body, &sk, u64::MAX).is_err(), "chunk size is bound");
            assert!(decrypt_seipdv2(8, mode, 64, &salt, &body, &[sk.to_vec(), vec![0; 8]].concat(), u64::MAX).is_err());
        }
    }

    #[test]
    fn chunk_octets_up_to_gnupgs_56_are_read_and_never_overflow() {
        assert_eq!(chunk_len(56).unwrap(), 1 << 62);
        assert!(chunk_len(57).is_err() && chunk_len(255).is_err());
        // One chunk spanning the whole (small) body, as c = 56 makes it.
        let key = [1u8; 16];
        let iv = [2u8; 15];
        let h = Header { cipher: 7, mode: Mode::Ocb, chunk_octet: 56 };
        let body = encrypt(h, &iv, &key, b"short").unwrap();
        assert_eq!(decrypt(&body, 7, &key, u64::MAX).unwrap().unwrap(), b"short");
        assert!(encrypt(Header { chunk_octet: 57, ..h }, &iv, &key, b"x").is_err());
        assert!(encrypt_seipdv2(7, Mode::Ocb, 57, &[0; 32], &key, b"x").is_err());
        assert!(decrypt_seipdv2(7, Mode::Ocb, 1 << 63, &[0; 32], &body, &key, u64::MAX).is_err());
    }
}
