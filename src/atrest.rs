//! The store key: where it comes from, and opening the store with it.
//!
//! Everything the store writes is sealed with one 32-byte store key (`store::atrest`). The
//! key is kept one of two ways, chosen by the config:
//! - by default, in the state directory as `store-key.pgp`: an OpenPGP message encrypted to
//!   every intake key (`keys.intake_secret`) and signed by the first, made with the store.
//!   Whoever can read the intake key can open the store, and nobody else: a copy of the
//!   state directory (a backup, a disk) is as readable as the mail, no more. An intake key
//!   added to the file (`keys rotate`) gets the store key at the next open; a renewed key is
//!   the same key.
//! - `[store] key_file`: a file holding the key (32 bytes, or 64 hex digits), typically a
//!   systemd credential (`LoadCredentialEncrypted=`, `$CREDENTIALS_DIRECTORY/store.key`),
//!   for admins who keep it apart from the intake key, in a TPM.
//!
//! Invariant: a `store-key.pgp` is made once and never replaced by another key: when two
//! processes open a new state directory at once (the daemon's first start and a command),
//! the first file written is the store's key and the other process takes it (a new key
//! replacing it would leave the store sealed with a key nobody has). Re-wrapping the same
//! key (rotation) replaces the file.
//!
//! Losing the key loses the store (`store rebuild` makes a new one from the mailbox, as long
//! as the intake key is there). Never logs the key; problems name the file and the config
//! key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use sequoia_openpgp as openpgp;

use crate::config::Config;
use crate::openpgp::{Decryption, IntakeKeys, Verdict};
use crate::store::{OpenError, Store, StoreKey};

/// The wrapped store key's file, in the state directory.
pub const WRAPPED_FILE: &str = "store-key.pgp";

/// How long an open waits for another process to let go of the store.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a store's key came from.
enum Found {
    /// Read (a key file, or an existing `store-key.pgp`).
    Existing,
    /// Made now, its `store-key.pgp` written: removed again if the store does not open
    /// with it.
    Made(PathBuf),
}

/// Opens the store of `cfg` (its `store.path`) with its key.
pub fn open(cfg: &Config) -> Result<Store> {
    try_open_at(cfg, &cfg.store_path, None).map_err(anyhow::Error::from)
}

/// [`open`], waiting while another process holds the store (the daemon's start).
pub fn open_waiting(cfg: &Config, keys: Option<&IntakeKeys>) -> Result<Store> {
    let start = std::time::Instant::now();
    loop {
        match try_open_at(cfg, &cfg.store_path, keys) {
            Err(OpenError::Locked(_)) if start.elapsed() < WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            r => return r.map_err(anyhow::Error::from),
        }
    }
}

/// Opens (creating) the store in the state directory `state` with the key `cfg` says,
/// telling "held by another process" apart. `keys`: the intake keys when the caller has
/// them loaded already.
pub fn try_open_at(cfg: &Config, state: &Path, keys: Option<&IntakeKeys>) -> std::result::Result<Store, OpenError> {
    let (key, found) = store_key(cfg, state, keys).map_err(|e| OpenError::Other(format!("{e:#}")))?;
    // A key made now that the store refuses is removed again; one made now while another
    // process holds the store stays: that process may be the one that read it and sealed
    // a new store with it (two first opens at once). The one case this leaves wrong: a
    // daemon running on while its `store-key.pgp` was removed, and a command meanwhile.
    match (Store::try_open(state, &key), found) {
        (Err(OpenError::WrongKey(dir)), Found::Made(file)) => {
            let _ = std::fs::remove_file(&file);
            Err(OpenError::Other(format!(
                "the store {} is sealed and its key file {} is missing: restore it from the backup \
                 (README, \"Back up\"), or rebuild the store from the mailbox with `secintake store rebuild`",
                dir.display(),
                file.display()
            )))
        }
        (r, _) => r,
    }
}

/// The store key for the state directory `state`: from `store.key_file`, or unwrapped from
/// `state/store-key.pgp` (made when missing).
fn store_key(cfg: &Config, state: &Path, keys: Option<&IntakeKeys>) -> Result<(StoreKey, Found)> {
    if let Some(file) = &cfg.store_key_file {
        return Ok((read_key_file(file)?, Found::Existing));
    }
    let loaded;
    let keys = match keys {
        Some(k) => k,
        None => {
            loaded = crate::keyfiles::load_intake_keys(cfg)
                .context("The store key is wrapped by keys.intake_secret, which does not load")?;
            &loaded
        }
    };
    let file = state.join(WRAPPED_FILE);
    match std::fs::read(&file) {
        Ok(bytes) => {
            let (key, fresh) =
                unwrap(&bytes, keys).with_context(|| format!("Opening the store key {}", file.display()))?;
            if !fresh || !wrapped_to_all(&bytes, keys) {
                // An intake key added (rotation), or the signer not the current key, or
                // no longer valid: wrapped again, to every key, signed by the current one.
                match wrap(&key, keys) {
                    Ok(w) => {
                        write_atomically(&file, &w, Write::Replace)?;
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "could not wrap the store key to every intake key")
                    }
                }
            }
            Ok((key, Found::Existing))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = StoreKey::generate()?;
            let wrapped = wrap(&key, keys).context("Wrapping the store key with the intake key")?;
            std::fs::create_dir_all(state)
                .with_context(|| format!("Creating the state directory {} (store.path)", state.display()))?;
            if write_atomically(&file, &wrapped, Write::New)? {
                return Ok((key, Found::Made(file)));
            }
            // Another process made it meanwhile (the daemon's first start and a command
            // at once): its key is the store's.
            let bytes = std::fs::read(&file).with_context(|| format!("Reading the store key {}", file.display()))?;
            let (key, _) = unwrap(&bytes, keys).with_context(|| format!("Opening the store key {}", file.display()))?;
            Ok((key, Found::Existing))
        }
        Err(e) => Err(e).with_context(|| format!("Reading the store key {}", file.display())),
    }
}

/// What `check` says of the store key, without opening the store (the daemon may hold
/// it): the key file reads, or `store-key.pgp` opens with the intake keys (`keys`: None
/// when they did not load, which `check` reports already). An error names the config key.
pub fn check(cfg: &Config, keys: Option<&IntakeKeys>) -> Result<Option<String>> {
    if let Some(file) = &cfg.store_key_file {
        read_key_file(file).map_err(|e| anyhow!("store.key_file: {e:#}"))?;
        return Ok(Some(format!("store key from store.key_file {}", file.display())));
    }
    let file = cfg.store_path.join(WRAPPED_FILE);
    let Some(keys) = keys else { return Ok(None) };
    match std::fs::read(&file) {
        Ok(bytes) => {
            let (_, fresh) =
                unwrap(&bytes, keys).map_err(|e| anyhow!("store.path: the store key {}: {e:#}", file.display()))?;
            if !fresh {
                return Ok(Some(format!(
                    "store key {} opens; it is wrapped again, by the current intake key, at the next start",
                    file.display()
                )));
            }
            Ok(Some(format!("store key {} opens with the intake key", file.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && cfg.store_path.join("db").exists() => Ok(Some(format!(
            "store key: {} is missing beside a store: an older store is sealed at the next start with a new key; \
             a sealed one does not open without it (restore it from the backup)",
            file.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Some("store key: made with the store at its first start, wrapped by the intake key".into()))
        }
        Err(e) => Err(anyhow!("store.path: reading the store key {}: {e}", file.display())),
    }
}

/// The stores moved aside by `store rebuild` (`before-rebuild-*/`) that a version before
/// at-rest sealing made: they hold the decrypted reports in clear (a copy moved aside since
/// has its `store-key.pgp` beside it).
pub fn unsealed_copies(state: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(state) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("before-rebuild-")))
        .filter(|p| p.join("db").is_dir() && !p.join(WRAPPED_FILE).exists())
        .collect();
    out.sort();
    out
}

/// A key file: 32 bytes, or 64 hex digits (and white space).
fn read_key_file(file: &Path) -> Result<StoreKey> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(file).with_context(|| {
        format!("Reading store.key_file {} (32 bytes or 64 hex digits: `openssl rand -hex 32`)", file.display())
    })?);
    if bytes.len() == 32 {
        return StoreKey::from_bytes(&bytes);
    }
    let text = std::str::from_utf8(&bytes).unwrap_or("").trim();
    let hex = zeroize::Zeroizing::new(hex::decode(text).unwrap_or_default());
    if hex.len() != 32 {
        bail!(
            "store.key_file {}: not a store key (32 bytes or 64 hex digits; make one with `openssl rand -hex 32`)",
            file.display()
        );
    }
    StoreKey::from_bytes(&hex)
}

/// The store key, encrypted to every intake cert and signed by the first.
pub fn wrap(key: &StoreKey, keys: &IntakeKeys) -> Result<Vec<u8>> {
    wrap_at(key, keys, std::time::SystemTime::now())
}

/// [`wrap`] as of `now`.
fn wrap_at(key: &StoreKey, keys: &IntakeKeys, now: std::time::SystemTime) -> Result<Vec<u8>> {
    let certs: Vec<_> = keys.certs().iter().map(|c| c.clone().strip_secret_key_material()).collect();
    // Only the certs that can take it now (an expired key still opens what it was given).
    let usable: Vec<_> = certs.into_iter().filter(|c| crate::openpgp::can_encrypt(c, now).is_ok()).collect();
    if usable.is_empty() {
        bail!("no intake key can be encrypted to now (expired?): renew it with `secintake keys renew`");
    }
    keys.encrypt_and_sign(key.expose(), &usable, now)
}

/// The store key from `store-key.pgp`: decrypted with an intake key and signed by one,
/// the signature judged when it was made (an intake key that has since expired, or was
/// retired, still vouches for what it signed then; a key compromised is refused at any
/// time). Also whether it is fresh: signed by the current signing key, valid now (else the
/// caller wraps it again).
fn unwrap(bytes: &[u8], keys: &IntakeKeys) -> Result<(StoreKey, bool)> {
    let signers: Vec<_> = keys.certs().iter().map(|c| c.clone().strip_secret_key_material()).collect();
    let ours: Vec<String> = keys.certs().iter().map(|c| c.fingerprint().to_hex()).collect();
    let by_us = |v: &crate::openpgp::Verification| v.signer.as_ref().is_some_and(|s| ours.iter().any(|o| o == s));
    let now = std::time::SystemTime::now();
    let open = |at: std::time::SystemTime| match keys.decrypt(bytes, &signers, 64, at) {
        Decryption::Ok { plaintext, signatures, encrypted: true } => {
            Ok((zeroize::Zeroizing::new(plaintext), signatures))
        }
        Decryption::Ok { .. } => bail!("it is not encrypted"),
        Decryption::NoKey { .. } => Err(anyhow!(
            "it is encrypted to no key of keys.intake_secret: put back the intake key it was made with \
             (after a rotation, keep the old key in the file until the daemon has started once)"
        )),
        Decryption::TooLarge => bail!("it is not a store key"),
        Decryption::Failed(e) | Decryption::Malformed(e) => bail!("it cannot be decrypted: {e}"),
    };
    let (plaintext, signatures) = open(now)?;
    let good_now = signatures.0.len() == 1 && signatures.0.iter().all(|v| v.verdict == Verdict::Good && by_us(v));
    if good_now {
        let current = signatures.0[0].signer.as_deref() == Some(keys.fingerprint().to_hex().as_str());
        return Ok((StoreKey::from_bytes(&plaintext)?, current));
    }
    // Judged when it was made: one signature, by one of our keys, good then.
    let made = match signatures.0.as_slice() {
        [v] if by_us(v) => v.created,
        _ => None,
    };
    let Some(made) = made else {
        bail!(
            "it is not signed by a key of keys.intake_secret: replaced, or signed by a key since taken \
             out of the file (after `keys rotate` the new key signs it: keep the new key in the file)"
        );
    };
    let (plaintext, signatures) = open(made)?;
    if !(signatures.0.len() == 1 && signatures.0.iter().all(|v| v.verdict == Verdict::Good && by_us(v))) {
        bail!("its signature by {} does not verify", signatures.0[0].signer.as_deref().unwrap_or("?"));
    }
    Ok((StoreKey::from_bytes(&plaintext)?, false))
}

/// Whether every intake cert that can be encrypted to now has a key among the wrapped
/// message's recipients.
fn wrapped_to_all(bytes: &[u8], keys: &IntakeKeys) -> bool {
    use openpgp::parse::{PacketParser, PacketParserResult, Parse};
    let mut recipients = Vec::new();
    let Ok(mut ppr) = PacketParser::from_bytes(bytes) else { return true };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            openpgp::Packet::PKESK(p) => recipients.extend(p.recipient()),
            openpgp::Packet::SKESK(_) => {}
            _ => break,
        }
        match pp.next() {
            Ok((_, next)) => ppr = next,
            Err(_) => return true,
        }
    }
    let now = std::time::SystemTime::now();
    keys.certs().iter().filter(|c| crate::openpgp::can_encrypt(c, now).is_ok()).all(|c| {
        c.keys().any(|k| {
            let h = k.key().key_handle();
            recipients.iter().any(|r| r.aliases(&h))
        })
    })
}

/// How [`write_atomically`] treats a file already there.
#[derive(Clone, Copy, PartialEq)]
enum Write {
    /// Replaced (the same store key wrapped anew).
    Replace,
    /// Left as it is: the write does not happen (a new store key must never replace one
    /// another process has just made and may have sealed the store with).
    New,
}

/// Writes `bytes` to `file` (mode 0600) so that a crash leaves the old file or the new
/// one, never half of one. Returns false when `how` is [`Write::New`] and the file was
/// there. The temporary file's name is this writer's own (pid, and a count for the
/// threads of one process): two writers never write into one.
fn write_atomically(file: &Path, bytes: &[u8], how: Write) -> Result<bool> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = file.with_extension(format!("pgp.new-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> Result<bool> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("Creating {}", tmp.display()))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).with_context(|| format!("Writing {}", tmp.display()))?;
        match how {
            Write::Replace => std::fs::rename(&tmp, file)
                .with_context(|| format!("Renaming {} to {}", tmp.display(), file.display()))?,
            // A hard link is made only where no file is: the first writer's file stays.
            Write::New => match std::fs::hard_link(&tmp, file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => {
                    return Err(e).with_context(|| format!("Linking {} to {}", tmp.display(), file.display()));
                }
            },
        }
        Ok(true)
    })();
    let _ = std::fs::remove_file(&tmp); // after a rename: not there any more
    let written = written?;
    if written && let Some(dir) = file.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("Syncing {}", dir.display()))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::serialize::MarshalInto;

    fn keys() -> IntakeKeys {
        let tsk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-intake.key.asc")).unwrap();
        IntakeKeys::from_bytes(&tsk, Some("x")).unwrap()
    }

    #[test]
    fn a_wrapped_key_opens_with_the_intake_key_only() {
        let k = keys();
        let key = StoreKey::generate().unwrap();
        let w = wrap(&key, &k).unwrap();
        assert!(!w.windows(8).any(|x| x == &key.expose()[..8]));
        assert_eq!(unwrap(&w, &k).unwrap().0.expose(), key.expose());
        assert!(wrapped_to_all(&w, &k));
        let (other, _, _) = crate::openpgp::generate("Other <other@example.org>").unwrap();
        let other = IntakeKeys::from_bytes(&other.as_tsk().armored().to_vec().unwrap(), None).unwrap();
        assert!(unwrap(&w, &other).is_err(), "another key does not open it");
        assert!(!wrapped_to_all(&w, &other), "a key not among its recipients is seen");
    }

    /// Regression (review): an intake key that expired after it signed `store-key.pgp`
    /// still opens it (judged when signed), and the file is then to be wrapped again.
    #[test]
    fn a_key_wrapped_by_an_intake_key_since_expired_still_opens() {
        use openpgp::cert::CertBuilder;
        let day = std::time::Duration::from_secs(86_400);
        let made = std::time::SystemTime::now() - 10 * day;
        let (cert, _) = CertBuilder::new()
            .add_userid("Intake <security@example.org>")
            .set_creation_time(made)
            .set_validity_period(5 * day)
            .add_signing_subkey()
            .add_storage_encryption_subkey()
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let k = IntakeKeys::from_bytes(&cert.as_tsk().armored().to_vec().unwrap(), None).unwrap();
        let key = StoreKey::generate().unwrap();
        let w = wrap_at(&key, &k, made + day).unwrap();
        let (opened, fresh) = unwrap(&w, &k).unwrap();
        assert_eq!(opened.expose(), key.expose());
        assert!(!fresh, "signed by a key no longer valid: to be wrapped again");
        assert!(wrap(&key, &k).is_err(), "an expired key cannot be wrapped to now (check says renew)");
    }

    #[test]
    fn key_files_take_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [5u8; 32]).unwrap();
        assert_eq!(read_key_file(&raw).unwrap().expose(), &[5u8; 32]);
        let hex = dir.path().join("hex");
        std::fs::write(&hex, format!("{}\n", "0a".repeat(32))).unwrap();
        assert_eq!(read_key_file(&hex).unwrap().expose(), &[10u8; 32]);
        std::fs::write(&hex, "short").unwrap();
        let e = format!("{:#}", read_key_file(&hex).err().unwrap());
        assert!(e.contains("store.key_file") && e.contains("openssl rand -hex 32"), "{e}");
    }
}
