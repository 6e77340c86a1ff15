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
    #[command(after_help = "Example:\n  secintake keys generate --uid \"Security <security@example.org>\" --out /etc/secintake/keys")]
    Generate {
        /// The User ID, e.g. "Security <security@example.org>"
        #[arg(long)]
        uid: String,
        /// Directory for intake.key.asc (secret, mode 600) and intake.pub.asc
        #[arg(long, value_name = "DIR")]
        out: std::path::PathBuf,
    },
    /// Show the intake key(s) and team certs
    Show,
}

pub fn generate(uid: &str, out: &Path) -> Result<i32> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !uid.contains('@') || uid.chars().any(|c| c.is_control()) {
        return Err(super::usage(format!("--uid {uid:?} must hold an address, e.g. \"Security <security@example.org>\"")));
    }
    std::fs::create_dir_all(out).with_context(|| format!("Creating {}", out.display()))?;
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
    }
}

pub fn security_txt(ctx: &Ctx, out: &mut dyn Write) -> Result<i32> {
    let keys = crate::pipeline::load_intake_keys(&ctx.cfg)?;
    let now = Utc::now();
    let expires = now + chrono::Duration::days(365);
    let text = format!(
        "# Security contact for {project}; reports are encrypted to the key below.\n\
         Contact: mailto:{addr}\n\
         Expires: {exp}\n\
         Encryption: openpgp4fpr:{fpr}\n\
         Preferred-Languages: en\n",
        project = ctx.cfg.policy.project,
        addr = ctx.cfg.intake.address,
        exp = crate::case::rfc3339(&expires),
        fpr = keys.fingerprint().to_hex().to_ascii_lowercase(),
    );
    let signed = keys.sign_cleartext(text.as_bytes(), now.into())?;
    out.write_all(&signed)?;
    Ok(EXIT_OK)
}
