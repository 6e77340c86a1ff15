//! Reporter keys: which cert secintake holds for an address, decided once per message.
//!
//! Trust on first use, then pinning: the first cert learned for an address (attached,
//! Autocrypt, or the signer of a good signature), and bound to that address by a valid
//! User ID, is pinned. It is replaced only by a message signed by the pinned cert that
//! carries its successor inside the signed content (key rotation), or by the team
//! (`secintake keys reporter set|forget`). A copy of the pinned cert is merged into it
//! (revocations, renewed expiry). The local keyring wins over learned certs. A
//! different cert claiming a held address is a conflict: recorded, shown to the team,
//! never used to encrypt. Pure: no store, no clock.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use crate::case::{KeySource, LogEntry};
use crate::openpgp::{self as pgp, Verdict};
use crate::store::StoredCert;

/// What one message does to the cert held for its From address.
#[derive(Clone, Debug)]
pub enum Change {
    /// Nothing to learn.
    None,
    /// First contact: pin this cert.
    Pin(Cert, KeySource),
    /// The pinned cert signed this message, which carries its successor.
    Replace { old: String, new: Cert, source: KeySource },
    /// The pinned cert again, perhaps with new signatures (a renewed expiry): merged.
    Refresh(Cert),
    /// Another cert claims the address: its fingerprint, never used.
    Conflict(String),
}

/// Decides what `from`'s message does to the held cert. `candidates` are the certs
/// the message carried (and those we already had); only those bound to `from` count.
/// `signed_certs`: the fingerprints of those carried inside signed content, the only
/// ones that can succeed the pinned cert.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    from: &str,
    verdict: Verdict,
    signer: Option<&str>,
    candidates: &[(Cert, KeySource)],
    signed_certs: &[String],
    in_keyring: bool,
    pinned: Option<&StoredCert>,
    now: SystemTime,
) -> Change {
    if from.is_empty() {
        return Change::None;
    }
    let offered: Vec<&(Cert, KeySource)> =
        candidates.iter().filter(|(c, s)| *s != KeySource::Keyring && pgp::bound_to(c, from, now)).collect();
    if in_keyring {
        // The keyring is the team's word; a learned cert that differs is a conflict.
        return match offered.iter().find(|(c, _)| {
            !candidates.iter().any(|(k, s)| *s == KeySource::Keyring && k.fingerprint() == c.fingerprint())
        }) {
            Some((c, _)) => Change::Conflict(c.fingerprint().to_hex()),
            None => Change::None,
        };
    }
    let signed_well = matches!(verdict, Verdict::Good | Verdict::Partial);
    match pinned {
        None => {
            // The signer's cert if it signed well, else the first one offered.
            let by_signer =
                offered.iter().find(|(c, _)| signed_well && Some(c.fingerprint().to_hex().as_str()) == signer);
            match by_signer.or(offered.first()) {
                Some((c, s)) => Change::Pin(c.clone(), *s),
                None => Change::None,
            }
        }
        Some(p) => {
            // The pinned cert as the message carried it, bound or not: a revocation
            // or an expiry must reach the held copy.
            let same =
                candidates.iter().find(|(c, s)| *s != KeySource::Keyring && c.fingerprint().to_hex() == p.fingerprint);
            let other = offered.iter().find(|(c, _)| c.fingerprint().to_hex() != p.fingerprint);
            // A successor: signed by the pinned cert, and inside what it signed.
            let by_pinned = signed_well && signer == Some(p.fingerprint.as_str());
            let successor = offered.iter().find(|(c, _)| {
                let f = c.fingerprint().to_hex();
                by_pinned && f != p.fingerprint && signed_certs.contains(&f)
            });
            match (successor, other, same) {
                (Some((c, s)), _, _) => Change::Replace { old: p.fingerprint.clone(), new: c.clone(), source: *s },
                (None, Some((c, _)), _) => Change::Conflict(c.fingerprint().to_hex()),
                (None, None, Some((c, _))) => Change::Refresh(c.clone()),
                (None, None, None) => Change::None,
            }
        }
    }
}

impl Change {
    /// The cert held for the address after this change (none for a conflict: the
    /// pinned one stays), with where it first came from.
    pub fn held_after(&self, pinned: Option<&StoredCert>) -> Option<(Cert, KeySource)> {
        let stored =
            || pinned.and_then(|p| pgp::parse_certs(p.armored.as_bytes()).into_iter().next().map(|c| (c, p.source)));
        match self {
            Change::Pin(c, s) => Some((c.clone(), *s)),
            Change::Replace { new, source, .. } => Some((new.clone(), *source)),
            Change::Refresh(c) => {
                stored().map(|(old, s)| (old.merge_public(c.clone()).unwrap_or_else(|_| c.clone()), s))
            }
            Change::None | Change::Conflict(_) => stored(),
        }
    }

    /// The audit-log lines this change writes (every change of a held key, and every
    /// conflict, is logged).
    pub fn log_entries(&self, address: &str, now: DateTime<Utc>) -> Vec<LogEntry> {
        let entry = |action: &str, detail: String| LogEntry {
            at: now,
            who: "secintake".into(),
            action: action.into(),
            detail,
            ..Default::default()
        };
        match self {
            Change::Pin(c, s) => vec![entry(
                "reporter-key-pinned",
                format!("{address}: {} ({}) pinned on first use", c.fingerprint().to_hex(), s.as_str()),
            )],
            Change::Replace { old, new, source } => vec![entry(
                "reporter-key-replaced",
                format!(
                    "{address}: {old} replaced by {} ({}), announced in a message signed by {old}",
                    new.fingerprint().to_hex(),
                    source.as_str()
                ),
            )],
            Change::Conflict(f) => vec![entry(
                "reporter-key-conflict",
                format!(
                    "{address}: another cert {f} claims this address; kept out, not used (`secintake keys reporter set` to accept it)"
                ),
            )],
            Change::None | Change::Refresh(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::cert::prelude::*;

    fn cert(uid: &str) -> Cert {
        CertBuilder::general_purpose(Some(uid)).generate().unwrap().0
    }

    fn stored(c: &Cert) -> StoredCert {
        StoredCert {
            fingerprint: c.fingerprint().to_hex(),
            source: KeySource::Attached,
            armored: pgp::armor_cert(c).unwrap(),
        }
    }

    /// Regression (issue 9): a forged From carrying and signed by the attacker's own
    /// cert naming the address re-keyed the reporter.
    #[test]
    fn forged_from_with_own_cert_is_a_conflict_not_a_replacement() {
        let now = SystemTime::now();
        let alice = cert("Alice <alice@r.test>");
        let mallory = cert("Mallory <alice@r.test>");
        let fpr = mallory.fingerprint().to_hex();
        let change = decide(
            "alice@r.test",
            Verdict::KeyConflict,
            Some(&fpr),
            &[(mallory, KeySource::Attached)],
            std::slice::from_ref(&fpr),
            false,
            Some(&stored(&alice)),
            now,
        );
        assert!(matches!(&change, Change::Conflict(f) if *f == fpr));
        let held = change.held_after(Some(&stored(&alice))).unwrap();
        assert_eq!(held.0.fingerprint(), alice.fingerprint());
    }

    #[test]
    fn pinned_cert_signing_its_successor_replaces_it() {
        let now = SystemTime::now();
        let old = cert("Alice <alice@r.test>");
        let new = cert("Alice <alice@r.test>");
        let signer = old.fingerprint().to_hex();
        let c = decide(
            "alice@r.test",
            Verdict::Good,
            Some(&signer),
            &[(old.clone(), KeySource::Attached), (new.clone(), KeySource::Attached)],
            &[new.fingerprint().to_hex()],
            false,
            Some(&stored(&old)),
            now,
        );
        assert!(matches!(c, Change::Replace { ref new, .. } if new.fingerprint() == new.fingerprint()));
        assert_eq!(c.held_after(Some(&stored(&old))).unwrap().0.fingerprint(), new.fingerprint());
    }

    /// Regression (attacker review): a body signed by the pinned cert, replayed with
    /// the attacker's cert in an Autocrypt header or beside the signed part, replaced
    /// the pin. A successor counts only from inside the signed content.
    #[test]
    fn a_successor_outside_the_signed_content_is_a_conflict() {
        let now = SystemTime::now();
        let alice = cert("Alice <alice@r.test>");
        let mallory = cert("Alice <alice@r.test>");
        let signer = alice.fingerprint().to_hex();
        for source in [KeySource::Autocrypt, KeySource::Attached] {
            let c = decide(
                "alice@r.test",
                Verdict::Good,
                Some(&signer),
                &[(alice.clone(), KeySource::Attached), (mallory.clone(), source)],
                &[],
                false,
                Some(&stored(&alice)),
                now,
            );
            assert!(matches!(&c, Change::Conflict(f) if *f == mallory.fingerprint().to_hex()), "{c:?}");
            assert_eq!(c.held_after(Some(&stored(&alice))).unwrap().0.fingerprint(), alice.fingerprint());
        }
    }

    /// Regression (attacker review): a revocation of the pinned cert, carried by a
    /// message, was never learned (a revoked cert is bound to no address, so it was
    /// not looked at), and later signatures by it stayed good.
    #[test]
    fn a_revocation_of_the_pinned_cert_is_learned() {
        let now = SystemTime::now();
        let (alice, rev) = CertBuilder::general_purpose(Some("Alice <alice@r.test>")).generate().unwrap();
        let revoked = alice.clone().insert_packets(rev).unwrap().0;
        let c = decide(
            "alice@r.test",
            Verdict::None,
            None,
            &[(revoked, KeySource::Attached)],
            &[],
            false,
            Some(&stored(&alice)),
            now,
        );
        assert!(matches!(c, Change::Refresh(_)), "{c:?}");
        let held = c.held_after(Some(&stored(&alice))).unwrap().0;
        assert!(matches!(
            held.revocation_status(&sequoia_openpgp::policy::StandardPolicy::new(), now),
            sequoia_openpgp::types::RevocationStatus::Revoked(_)
        ));
    }

    #[test]
    fn first_contact_pins_only_a_cert_bound_to_the_address() {
        let now = SystemTime::now();
        let other = cert("Bob <bob@r.test>");
        assert!(matches!(
            decide(
                "alice@r.test",
                Verdict::SignerMismatch,
                None,
                &[(other, KeySource::Attached)],
                &[],
                false,
                None,
                now
            ),
            Change::None
        ));
        let alice = cert("Alice <alice@r.test>");
        assert!(matches!(
            decide("alice@r.test", Verdict::None, None, &[(alice, KeySource::Autocrypt)], &[], false, None, now),
            Change::Pin(_, KeySource::Autocrypt)
        ));
    }

    #[test]
    fn keyring_wins_and_a_learned_cert_is_a_conflict() {
        let now = SystemTime::now();
        let ring = cert("Alice <alice@r.test>");
        let learned = cert("Alice <alice@r.test>");
        let c = decide(
            "alice@r.test",
            Verdict::Good,
            None,
            &[(ring, KeySource::Keyring), (learned.clone(), KeySource::Attached)],
            &[],
            true,
            None,
            now,
        );
        assert!(matches!(c, Change::Conflict(f) if f == learned.fingerprint().to_hex()));
    }
}
