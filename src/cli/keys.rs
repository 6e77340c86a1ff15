//! `secintake keys ...` and `security-txt`.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::{Ctx, EXIT_OK};
use crate::openpgp as pgp;

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Generate a new intake key (Cv25519) into DIR
    #[command(
        after_help = "Example:\n  secintake keys generate --uid \"Security <security@example.org>\" --out /etc/secintake/credentials"
    )]
    Generate {
        /// The User ID, e.g. "Security <security@example.org>"
        #[arg(long)]
        uid: String,
        /// Directory for intake.key.asc (secret, mode 600) and intake.pub.asc
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Show the intake key(s) and team certs
    #[command(after_help = "Example:\n  secintake keys show")]
    Show,
    /// Add a team member's cert to keys.team_certs (validated first)
    #[command(
        after_help = "Example:\n  gpg --export --armor carol@example.org > carol.asc\n  secintake keys import-team carol.asc"
    )]
    ImportTeam {
        /// An armored or binary cert file
        file: std::path::PathBuf,
    },
    /// The team certs with their usability (expired, revoked, no encryption subkey)
    #[command(after_help = "Example:\n  secintake keys list-team --json")]
    ListTeam {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write the Web Key Directory for the intake key (advanced and direct layouts)
    #[command(
        after_help = "Example:\n  secintake keys wkd --out /var/www/example.org\n  # then serve DIR/.well-known/openpgpkey/ over https"
    )]
    Wkd {
        /// The web root to write .well-known/openpgpkey/ into
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// How to rotate the intake key without losing old reports
    #[command(after_help = "Example:\n  secintake keys rotate")]
    Rotate,
    /// Extend the intake key's expiry (new self-signatures, same fingerprint); writes the
    /// renewed key to a new file, never over the old one
    #[command(
        after_help = "Examples:\n  secintake keys renew\n  secintake keys renew --for 1y --out /etc/secintake/keys/intake.renewed.key.asc"
    )]
    Renew {
        /// How long the key stays valid from now (e.g. 2y, 18months, 400d)
        #[arg(long = "for", value_name = "DURATION", default_value = "2y", value_parser = humantime::parse_duration)]
        valid_for: std::time::Duration,
        /// The renewed secret key file [default: beside keys.intake_secret, named *.renewed.asc]
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Reporter certs secintake holds (pinned on first use): list, set, forget
    #[command(
        subcommand,
        after_help = "Example:\n  secintake keys reporter list\n  secintake keys reporter set alice@example.net alice.asc"
    )]
    Reporter(ReporterCmd),
}

#[derive(Subcommand, Debug)]
pub enum ReporterCmd {
    /// Every held reporter cert: address, fingerprint, where it came from
    #[command(after_help = "Example:\n  secintake keys reporter list --json")]
    List {
        /// Print JSON: [{address, fingerprint, source}]
        #[arg(long)]
        json: bool,
    },
    /// Pin FILE's cert for ADDRESS (replacing the held one; after checking it with the
    /// reporter out of band)
    #[command(after_help = "Example:\n  secintake keys reporter set alice@example.net alice.asc")]
    Set {
        /// The reporter's address
        address: String,
        /// An armored or binary cert with a valid User ID for ADDRESS (`-` for stdin)
        file: String,
    },
    /// Forget the cert held for ADDRESS (the next one the reporter sends is pinned)
    #[command(after_help = "Example:\n  secintake keys reporter forget alice@example.net")]
    Forget {
        /// The reporter's address
        address: String,
    },
}

pub fn generate(uid: &str, out: &Path) -> Result<i32> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if !uid.contains('@') || uid.chars().any(|c| c.is_control()) {
        return Err(super::usage(format!(
            "--uid {uid:?} must hold an address, e.g. \"Security <security@example.org>\""
        )));
    }
    // A directory made here holds a secret key: owner only (an existing one is left as is).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .with_context(|| format!("Creating {}", out.display()))?;
    let secret = out.join("intake.key.asc");
    let public = out.join("intake.pub.asc");
    if secret.exists() {
        bail!("{} exists; refusing to overwrite an intake key (move it away first)", secret.display());
    }
    let (cert, tsk, pubkey) = pgp::generate(uid)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| format!("Creating {}", secret.display()))?;
    f.write_all(tsk.as_bytes())?;
    f.sync_all()?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(&public, pubkey.as_bytes())?;
    println!("{}", cert.fingerprint().to_hex());
    eprintln!("secret key: {} (set keys.intake_secret to it)", secret.display());
    eprintln!("public key: {} (publish it; give it to reporters)", public.display());
    Ok(EXIT_OK)
}

pub fn execute_store(cmd: &KeysCmd, ctx: &Ctx, input: Option<Vec<u8>>, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        KeysCmd::Reporter(r) => reporter(r, ctx, input, out),
        KeysCmd::Generate { uid, out: dir } => generate(uid, dir),
        KeysCmd::Show => {
            let keys = crate::keyfiles::load_intake_keys(&ctx.cfg)?;
            let p = pgp::policy();
            for (i, c) in keys.certs().iter().enumerate() {
                writeln!(
                    out,
                    "intake key {}{}",
                    c.fingerprint().to_hex(),
                    if i == 0 { " (signs; decrypts)" } else { " (decrypts)" }
                )?;
                for u in c.userids() {
                    writeln!(out, "  uid   {}", super::term::escape(&String::from_utf8_lossy(u.userid().value())))?;
                }
                for k in c.keys() {
                    let exp = c
                        .with_policy(&p, None)
                        .ok()
                        .and_then(|vc| {
                            vc.keys().key_handle(k.key().fingerprint()).next().and_then(|ka| ka.key_expiration_time())
                        })
                        .map(|t| crate::case::rfc3339(&DateTime::<Utc>::from(t)))
                        .unwrap_or_else(|| "never".into());
                    writeln!(
                        out,
                        "  key   {} {:?} expires {}",
                        k.key().fingerprint().to_hex(),
                        k.key().pk_algo(),
                        exp
                    )?;
                }
            }
            let (team, problems) = crate::keyfiles::read_cert_dir(&ctx.cfg.keys.team_certs);
            for (file, c) in team {
                let state = match pgp::can_encrypt(&c, SystemTime::now()) {
                    Ok(()) => "usable".to_owned(),
                    Err(e) => format!("UNUSABLE: {e}"),
                };
                let what = format!("{} ({file}) {state}", pgp::primary_email(&c).unwrap_or_default());
                writeln!(out, "team cert {} {}", c.fingerprint().to_hex(), super::term::escape(&what))?;
            }
            for p in problems {
                writeln!(out, "team certs: {}", super::term::escape(&p))?;
            }
            Ok(EXIT_OK)
        }
        KeysCmd::ImportTeam { .. } | KeysCmd::Wkd { .. } => execute_local(cmd, &ctx.cfg, out),
        KeysCmd::ListTeam { json } => {
            let rows = team_rows(ctx);
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for r in &rows {
                    let line = format!(
                        "{}  {}  {}",
                        r["fingerprint"].as_str().unwrap_or("-"),
                        r["email"].as_str().unwrap_or("-"),
                        if r["usable"] == true {
                            "usable".to_owned()
                        } else {
                            format!("UNUSABLE: {}", r["problem"].as_str().unwrap_or(""))
                        }
                    );
                    writeln!(out, "{}", super::term::escape(&line))?;
                }
            }
            Ok(EXIT_OK)
        }
        KeysCmd::Rotate => rotate(&ctx.cfg, out),
        // Reads and writes the admin's key files: runs in the client (cli::main).
        KeysCmd::Renew { .. } => Err(super::usage("keys renew runs locally; it is not served by the daemon")),
    }
}

/// Commands that read or write the user's own files (a cert to import, a directory
/// for WKD): they run in the client, as the invoking user, never through the socket
/// into the sandboxed daemon, which can neither read nor write them.
pub fn execute_local(cmd: &KeysCmd, cfg: &crate::config::Config, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        KeysCmd::ImportTeam { file } => {
            let bytes = std::fs::read(file).map_err(|e| super::usage(format!("{}: {e}", file.display())))?;
            let certs = pgp::parse_certs(&bytes);
            if certs.is_empty() {
                return Err(super::usage(format!("{} holds no OpenPGP cert", file.display())));
            }
            for c in &certs {
                pgp::can_encrypt(c, SystemTime::now()).map_err(|e| {
                    super::usage(format!("{} ({}) is unusable: {e}", file.display(), c.fingerprint().to_hex()))
                })?;
                let name = format!("{}.asc", c.fingerprint().to_hex());
                let dest = cfg.keys.team_certs.join(&name);
                std::fs::write(&dest, pgp::armor_cert(c)?).with_context(|| format!("Writing {}", dest.display()))?;
                let what = format!("{} -> {}", pgp::primary_email(c).unwrap_or_default(), dest.display());
                writeln!(out, "imported {} {}", c.fingerprint().to_hex(), super::term::escape(&what))?;
            }
            writeln!(out, "reload the daemon (systemctl reload secintake) to use it")?;
            Ok(EXIT_OK)
        }
        KeysCmd::Wkd { out: dir } => wkd(cfg, dir, out),
        KeysCmd::Renew { valid_for, out: file } => renew(cfg, *valid_for, file.as_deref(), out),
        _ => Ok(EXIT_OK),
    }
}

/// `keys renew`: the intake key file with its first (signing) key renewed, written to
/// `file` or beside the old file; the old file is left as it is.
fn renew(
    cfg: &crate::config::Config,
    valid_for: std::time::Duration,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let old = &cfg.keys.intake_secret;
    let tsk = std::fs::read(old).with_context(|| format!("Reading keys.intake_secret {}", old.display()))?;
    let (armored, cert, until) =
        renew_tsk(&tsk, cfg.keys.passphrase.as_ref().map(|p| p.expose()), valid_for, SystemTime::now())
            .with_context(|| format!("Renewing {}", old.display()))?;
    let secret = match file {
        Some(p) => p.to_path_buf(),
        None => old.with_extension("renewed.asc"),
    };
    let public = secret.with_extension("pub.asc");
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secret).with_context(|| {
            format!("Creating {} (an existing file is never overwritten; move it away or pass --out)", secret.display())
        })?;
    f.write_all(armored.as_bytes())?;
    f.sync_all()?;
    std::fs::write(&public, pgp::armor_cert(&cert.clone().strip_secret_key_material())?)
        .with_context(|| format!("Writing {}", public.display()))?;
    let until = crate::case::rfc3339(&DateTime::<Utc>::from(until));
    writeln!(out, "{}", cert.fingerprint().to_hex())?;
    eprintln!("renewed intake key {} now expires {until}", cert.fingerprint().to_hex());
    eprintln!("secret key: {} (mode 600; {} is unchanged)", secret.display(), old.display());
    eprintln!("public key: {}", public.display());
    eprintln!("next:");
    eprintln!(
        "  1. install it: cp {} {} (keep a copy of the old file); secintake check; systemctl reload secintake",
        secret.display(),
        old.display()
    );
    eprintln!(
        "  2. republish the public key, or reporters' copies stay expired: secintake security-txt > .../.well-known/security.txt;"
    );
    eprintln!("     secintake keys wkd --out DIR; re-upload it wherever it was published (keys.openpgp.org)");
    Ok(EXIT_OK)
}

/// Renews the first cert of an intake key file: its primary key and every subkey that
/// has an expiry get new binding signatures expiring `valid_for` after `now` (revoked
/// subkeys are left alone). The other certs (older keys kept for decryption) are
/// copied unchanged; secret key material stays as it was (encrypted stays encrypted).
/// Returns the armored file, the renewed cert and its new expiry.
pub fn renew_tsk(
    tsk: &[u8],
    passphrase: Option<&str>,
    valid_for: std::time::Duration,
    now: SystemTime,
) -> Result<(String, sequoia_openpgp::Cert, SystemTime)> {
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::crypto::{KeyPair, Password};
    use sequoia_openpgp::packet::key::{KeyParts, KeyRole};
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    fn keypair<P: KeyParts, R: KeyRole>(
        key: &sequoia_openpgp::packet::Key<P, R>,
        passphrase: Option<&str>,
    ) -> Result<KeyPair> {
        let mut key = key.clone().parts_into_secret().context("the intake key file holds no secret key")?;
        if key.secret().is_encrypted() {
            let pw = passphrase
                .ok_or_else(|| anyhow::anyhow!("the key is passphrase-protected; set keys.passphrase_file"))?;
            key = key
                .decrypt_secret(&Password::from(pw))
                .map_err(|_| anyhow::anyhow!("keys.passphrase_file does not unlock the key"))?;
        }
        key.into_keypair()
    }
    let mut certs: Vec<Cert> = CertParser::from_bytes(tsk)?.collect::<sequoia_openpgp::Result<_>>()?;
    if certs.is_empty() {
        bail!("the key file holds no key");
    }
    let until = now + valid_for;
    let p = pgp::policy();
    let first = certs.remove(0);
    let mut primary = keypair(first.primary_key().key(), passphrase)?;
    let vc = first.with_policy(&p, now).context("the intake key has no valid self-signature")?;
    let mut sigs = vc.primary_key().set_expiration_time(&mut primary, Some(until))?;
    for ka in vc.keys().subkeys().revoked(false) {
        if ka.key_expiration_time().is_none() {
            continue;
        }
        if ka.for_signing() {
            // A signing subkey's binding carries its own back-signature.
            let mut sub = keypair(ka.key(), passphrase)?;
            let sub: &mut dyn sequoia_openpgp::crypto::Signer = &mut sub;
            sigs.extend(ka.set_expiration_time(&mut primary, Some(sub), Some(until))?);
        } else {
            sigs.extend(ka.set_expiration_time(&mut primary, None, Some(until))?);
        }
    }
    let renewed = first.insert_packets(sigs)?.0;
    let mut armored = String::from_utf8(renewed.as_tsk().armored().to_vec()?)?;
    for c in &certs {
        armored.push_str(&String::from_utf8(c.as_tsk().armored().to_vec()?)?);
    }
    Ok((armored, renewed, until))
}

fn rotate(cfg: &crate::config::Config, out: &mut dyn Write) -> Result<i32> {
    writeln!(out, "Rotating the intake key without losing old reports:")?;
    writeln!(out, "  1. secintake keys generate --uid \"Security <{}>\" --out NEWDIR", cfg.intake.address)?;
    writeln!(
        out,
        "  2. cat NEWDIR/intake.key.asc {} > combined.asc; chmod 600 combined.asc",
        cfg.keys.intake_secret.display()
    )?;
    writeln!(out, "     (the first key signs and is advertised; every key in the file decrypts)")?;
    writeln!(out, "  3. point keys.intake_secret at combined.asc; secintake check; systemctl reload secintake")?;
    writeln!(out, "  4. publish the new key: secintake security-txt, secintake keys wkd --out DIR")?;
    writeln!(out, "  5. keep the old key in the file as long as reports may still be encrypted to it")?;
    Ok(EXIT_OK)
}

/// `keys reporter ...`: the team's word on reporter certs. Every change is written to
/// the audit log of each case of that reporter.
fn reporter(cmd: &ReporterCmd, ctx: &Ctx, input: Option<Vec<u8>>, out: &mut dyn Write) -> Result<i32> {
    use crate::store::{Batch, StoredCert};
    let now = Utc::now();
    let log = |b: &mut Batch, address: &str, action: &str, detail: String| -> Result<()> {
        for c in ctx.store.cases()?.iter().filter(|c| c.reporter.address.eq_ignore_ascii_case(address)) {
            let n = ctx.store.log_len(&c.id)?;
            b.put_log(
                &c.id,
                n,
                &crate::case::LogEntry {
                    at: now,
                    who: ctx.user.clone(),
                    action: action.into(),
                    detail: detail.clone(),
                    ..Default::default()
                },
            );
        }
        Ok(())
    };
    match cmd {
        ReporterCmd::List { json } => {
            let rows = ctx.store.certs()?;
            if *json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(a, c)| serde_json::json!({"address": a, "fingerprint": c.fingerprint, "source": c.source.as_str()}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for (a, c) in rows {
                    writeln!(out, "{}  {}  {}", super::term::escape(&a), c.fingerprint, c.source.as_str())?;
                }
            }
            Ok(EXIT_OK)
        }
        ReporterCmd::Set { address, .. } => {
            let address = address.to_ascii_lowercase();
            if !crate::config::valid_address(&address) {
                return Err(super::usage(format!("{address:?} is not an e-mail address")));
            }
            let bytes = input.unwrap_or_default();
            let certs = pgp::parse_certs(&bytes);
            let Some(cert) = certs.iter().find(|c| pgp::bound_to(c, &address, SystemTime::now())) else {
                return Err(super::usage(format!(
                    "the file holds no valid cert with a User ID for {address} ({} cert(s) found)",
                    certs.len()
                )));
            };
            let tx = ctx.store.begin();
            let old = ctx.store.cert(&address)?.map(|c| c.fingerprint).unwrap_or_else(|| "none".into());
            let fpr = cert.fingerprint().to_hex();
            let mut b = Batch::default();
            b.put_cert(
                &address,
                &StoredCert {
                    fingerprint: fpr.clone(),
                    source: crate::case::KeySource::Team,
                    armored: pgp::armor_cert(cert)?,
                },
            );
            log(&mut b, &address, "reporter-key-set", format!("{address}: {old} -> {fpr} by the team"))?;
            tx.commit(b)?;
            tracing::info!(address = %address, fingerprint = %fpr, user = %ctx.user, "Reporter cert set by the team");
            writeln!(out, "{address}: {fpr} pinned (was {old})")?;
            Ok(EXIT_OK)
        }
        ReporterCmd::Forget { address } => {
            let address = address.to_ascii_lowercase();
            let tx = ctx.store.begin();
            let Some(old) = ctx.store.cert(&address)? else {
                return Err(super::usage(format!("no cert is held for {address}")));
            };
            let mut b = Batch::default();
            b.remove_cert(&address);
            log(
                &mut b,
                &address,
                "reporter-key-forgotten",
                format!("{address}: {} forgotten by the team", old.fingerprint),
            )?;
            tx.commit(b)?;
            tracing::info!(address = %address, fingerprint = %old.fingerprint, user = %ctx.user, "Reporter cert forgotten by the team");
            writeln!(out, "{address}: {} forgotten", old.fingerprint)?;
            Ok(EXIT_OK)
        }
    }
}

fn team_rows(ctx: &Ctx) -> Vec<serde_json::Value> {
    let (team, problems) = crate::keyfiles::read_cert_dir(&ctx.cfg.keys.team_certs);
    let mut rows: Vec<serde_json::Value> = team
        .iter()
        .map(|(file, c)| {
            let usable = pgp::can_encrypt(c, SystemTime::now());
            serde_json::json!({
                "file": file,
                "fingerprint": c.fingerprint().to_hex(),
                "email": pgp::primary_email(c),
                "usable": usable.is_ok(),
                "problem": usable.err().map(|e| e.to_string()),
            })
        })
        .collect();
    rows.extend(problems.into_iter().map(|p| serde_json::json!({"file": null, "usable": false, "problem": p})));
    rows
}

fn wkd(cfg: &crate::config::Config, out_dir: &Path, out: &mut dyn Write) -> Result<i32> {
    let keys = crate::keyfiles::load_intake_keys(cfg)?;
    let addr = &cfg.intake.address;
    let (local, domain) = addr.rsplit_once('@').ok_or_else(|| super::usage("intake.address has no domain"))?;
    let hash = pgp::wkd_hash(local)?;
    let cert = pgp::binary_cert(&keys.public_cert())?;
    let advanced = out_dir.join(".well-known/openpgpkey").join(domain.to_ascii_lowercase());
    let direct = out_dir.join(".well-known/openpgpkey");
    for base in [&advanced, &direct] {
        std::fs::create_dir_all(base.join("hu"))?;
        std::fs::write(base.join("hu").join(&hash), &cert)?;
        // An empty policy file says "this domain supports WKD".
        std::fs::write(base.join("policy"), b"")?;
    }
    writeln!(
        out,
        "advanced: {}/hu/{hash}  (https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}?l={local})",
        advanced.display()
    )?;
    writeln!(
        out,
        "direct:   {}/hu/{hash}  (https://{domain}/.well-known/openpgpkey/hu/{hash}?l={local})",
        direct.display()
    )?;
    Ok(EXIT_OK)
}

pub fn security_txt(ctx: &Ctx, project: Option<&str>, out: &mut dyn Write) -> Result<i32> {
    let project = super::project_arg(&ctx.cfg, project)?;
    let own = ctx.cfg.project(project);
    let keys = match own.and_then(|p| p.intake_secret.as_ref().map(|k| (p, k))) {
        Some((p, k)) => crate::keyfiles::load_keys(k, p.passphrase.as_ref(), "projects.intake_secret")?,
        None => crate::keyfiles::load_intake_keys(&ctx.cfg)?,
    };
    let policy = ctx.cfg.policy_of(project);
    let now = Utc::now();
    let expires = now + chrono::Duration::days(365);
    let mut text = format!(
        "# Security contact for {project}; reports are encrypted to the key below.\n\
         Contact: mailto:{addr}\n\
         Expires: {exp}\n\
         Encryption: openpgp4fpr:{fpr}\n",
        project = policy.project,
        addr = ctx.cfg.address_of(project),
        exp = crate::case::rfc3339(&expires),
        fpr = keys.fingerprint().to_hex().to_ascii_lowercase(),
    );
    if let Some(u) = &policy.url {
        text.push_str(&format!("Policy: {u}\n"));
    }
    text.push_str("Preferred-Languages: en\n");
    if let Some(u) = &policy.security_txt_url {
        text.push_str(&format!("Canonical: {u}\n"));
    }
    let signed = keys.sign_cleartext(text.as_bytes(), now.into())?;
    out.write_all(&signed)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sequoia_openpgp::cert::prelude::*;
    use sequoia_openpgp::parse::Parse;
    use sequoia_openpgp::serialize::SerializeInto;
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86400);

    /// An intake key made 10 days ago, valid for 5: expired now.
    fn expired_key(passphrase: Option<&str>) -> Vec<u8> {
        let mut b = CertBuilder::general_purpose(Some("Security <security@x.test>"))
            .set_creation_time(SystemTime::now() - 10 * DAY)
            .set_validity_period(5 * DAY);
        if let Some(pw) = passphrase {
            b = b.set_password(Some(pw.into()));
        }
        b.generate().unwrap().0.as_tsk().armored().to_vec().unwrap()
    }

    /// Issue 10: an intake key past its expiry had no way back but a new key; `keys
    /// renew` extends it (same fingerprint), and the renewed file loads.
    #[test]
    fn expired_intake_key_is_renewed_and_loads_again() {
        for pw in [None, Some("correct horse")] {
            let old = expired_key(pw);
            // It loads (reports still open) but cannot sign (acks are held).
            let expired = pgp::IntakeKeys::from_bytes(&old, pw).expect("an expired key still loads");
            assert!(expired.sign_detached(b"x", SystemTime::now()).is_err(), "the expired key cannot sign");
            let (armored, cert, until) = renew_tsk(&old, pw, 730 * DAY, SystemTime::now()).unwrap();
            let keys = pgp::IntakeKeys::from_bytes(armored.as_bytes(), pw).unwrap();
            assert_eq!(keys.fingerprint(), Cert::from_bytes(&old).unwrap().fingerprint());
            // The new self-signatures are made at the clock's now.
            let policy = pgp::policy();
            let vc = cert.with_policy(&policy, SystemTime::now()).unwrap();
            assert!(vc.alive().is_ok());
            assert!(
                vc.keys().for_signing().alive().next().is_some()
                    && vc.keys().for_transport_encryption().alive().next().is_some()
            );
            assert!(cert.with_policy(&policy, until + DAY).unwrap().alive().is_err(), "it expires again when asked");
            if pw.is_some() {
                assert!(cert.keys().secret().all(|k| k.key().secret().is_encrypted()), "secrets stay encrypted");
            }
        }
    }
}
