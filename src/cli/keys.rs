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
    #[command(after_help = "Example:\n  secintake keys generate --uid \"Security <security@example.org>\" --out /etc/secintake/credentials")]
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
    #[command(after_help = "Example:\n  gpg --export --armor carol@example.org > carol.asc\n  secintake keys import-team carol.asc")]
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
    #[command(after_help = "Example:\n  secintake keys wkd --out /var/www/example.org\n  # then serve DIR/.well-known/openpgpkey/ over https")]
    Wkd {
        /// The web root to write .well-known/openpgpkey/ into
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// How to rotate the intake key without losing old reports
    #[command(after_help = "Example:\n  secintake keys rotate")]
    Rotate,
}

pub fn generate(uid: &str, out: &Path) -> Result<i32> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if !uid.contains('@') || uid.chars().any(|c| c.is_control()) {
        return Err(super::usage(format!("--uid {uid:?} must hold an address, e.g. \"Security <security@example.org>\"")));
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
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secret)
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

pub fn execute_store(cmd: &KeysCmd, ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        KeysCmd::Generate { uid, out: dir } => generate(uid, dir),
        KeysCmd::Show => {
            let keys = crate::pipeline::load_intake_keys(&ctx.cfg)?;
            let p = pgp::policy();
            for (i, c) in keys.certs().iter().enumerate() {
                writeln!(out, "intake key {}{}", c.fingerprint().to_hex(), if i == 0 { " (signs; decrypts)" } else { " (decrypts)" })?;
                for u in c.userids() {
                    writeln!(out, "  uid   {}", String::from_utf8_lossy(u.userid().value()))?;
                }
                for k in c.keys() {
                    let exp = c
                        .with_policy(&p, None)
                        .ok()
                        .and_then(|vc| vc.keys().key_handle(k.key().fingerprint()).next().and_then(|ka| ka.key_expiration_time()))
                        .map(|t| crate::case::rfc3339(&DateTime::<Utc>::from(t)))
                        .unwrap_or_else(|| "never".into());
                    writeln!(out, "  key   {} {:?} expires {}", k.key().fingerprint().to_hex(), k.key().pk_algo(), exp)?;
                }
            }
            let (team, problems) = crate::pipeline::read_cert_dir(&ctx.cfg.keys.team_certs);
            for (file, c) in team {
                let state = match pgp::can_encrypt(&c, SystemTime::now()) {
                    Ok(()) => "usable".to_owned(),
                    Err(e) => format!("UNUSABLE: {e}"),
                };
                writeln!(out, "team cert {} {} ({file}) {state}", c.fingerprint().to_hex(), pgp::primary_email(&c).unwrap_or_default())?;
            }
            for p in problems {
                writeln!(out, "team certs: {p}")?;
            }
            Ok(EXIT_OK)
        }
        KeysCmd::ImportTeam { file } => {
            let bytes = std::fs::read(file).map_err(|e| super::usage(format!("{}: {e}", file.display())))?;
            let certs = pgp::parse_certs(&bytes);
            if certs.is_empty() {
                return Err(super::usage(format!("{} holds no OpenPGP cert", file.display())));
            }
            for c in &certs {
                pgp::can_encrypt(c, SystemTime::now())
                    .map_err(|e| super::usage(format!("{} ({}) is unusable: {e}", file.display(), c.fingerprint().to_hex())))?;
                let name = format!("{}.asc", c.fingerprint().to_hex());
                let dest = ctx.cfg.keys.team_certs.join(&name);
                std::fs::write(&dest, pgp::armor_cert(c)?).with_context(|| format!("Writing {}", dest.display()))?;
                writeln!(out, "imported {} {} -> {}", c.fingerprint().to_hex(), pgp::primary_email(c).unwrap_or_default(), dest.display())?;
            }
            writeln!(out, "reload the daemon (systemctl reload secintake) to use it")?;
            Ok(EXIT_OK)
        }
        KeysCmd::ListTeam { json } => {
            let rows = team_rows(ctx);
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for r in &rows {
                    writeln!(
                        out,
                        "{}  {}  {}",
                        r["fingerprint"].as_str().unwrap_or("-"),
                        r["email"].as_str().unwrap_or("-"),
                        if r["usable"] == true { "usable".to_owned() } else { format!("UNUSABLE: {}", r["problem"].as_str().unwrap_or("")) }
                    )?;
                }
            }
            Ok(EXIT_OK)
        }
        KeysCmd::Wkd { out: dir } => wkd(ctx, dir, out),
        KeysCmd::Rotate => {
            writeln!(out, "Rotating the intake key without losing old reports:")?;
            writeln!(out, "  1. secintake keys generate --uid \"Security <{}>\" --out NEWDIR", ctx.cfg.intake.address)?;
            writeln!(out, "  2. cat NEWDIR/intake.key.asc {} > combined.asc; chmod 600 combined.asc", ctx.cfg.keys.intake_secret.display())?;
            writeln!(out, "     (the first key signs and is advertised; every key in the file decrypts)")?;
            writeln!(out, "  3. point keys.intake_secret at combined.asc; secintake check; systemctl reload secintake")?;
            writeln!(out, "  4. publish the new key: secintake security-txt, secintake keys wkd --out DIR")?;
            writeln!(out, "  5. keep the old key in the file as long as reports may still be encrypted to it")?;
            Ok(EXIT_OK)
        }
    }
}

fn team_rows(ctx: &Ctx) -> Vec<serde_json::Value> {
    let (team, problems) = crate::pipeline::read_cert_dir(&ctx.cfg.keys.team_certs);
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

fn wkd(ctx: &Ctx, out_dir: &Path, out: &mut dyn Write) -> Result<i32> {
    let keys = crate::pipeline::load_intake_keys(&ctx.cfg)?;
    let addr = &ctx.cfg.intake.address;
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
    writeln!(out, "advanced: {}/hu/{hash}  (https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}?l={local})", advanced.display())?;
    writeln!(out, "direct:   {}/hu/{hash}  (https://{domain}/.well-known/openpgpkey/hu/{hash}?l={local})", direct.display())?;
    Ok(EXIT_OK)
}

pub fn security_txt(ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    let keys = crate::pipeline::load_intake_keys(&ctx.cfg)?;
    let now = Utc::now();
    let expires = now + chrono::Duration::days(365);
    let mut text = format!(
        "# Security contact for {project}; reports are encrypted to the key below.\n\
         Contact: mailto:{addr}\n\
         Expires: {exp}\n\
         Encryption: openpgp4fpr:{fpr}\n",
        project = ctx.cfg.policy.project,
        addr = ctx.cfg.intake.address,
        exp = crate::case::rfc3339(&expires),
        fpr = keys.fingerprint().to_hex().to_ascii_lowercase(),
    );
    if let Some(u) = &ctx.cfg.policy.url {
        text.push_str(&format!("Policy: {u}\n"));
    }
    text.push_str("Preferred-Languages: en\n");
    if let Some(u) = &ctx.cfg.policy.security_txt_url {
        text.push_str(&format!("Canonical: {u}\n"));
    }
    let signed = keys.sign_cleartext(text.as_bytes(), now.into())?;
    out.write_all(&signed)?;
    Ok(EXIT_OK)
}
