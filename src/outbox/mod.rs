//! The durable outbox: mail is queued in the store with the change that causes it,
//! then sent through SMTP (lettre) by [`send_due`].
//!
//! The order that makes "never lost, never twice by our fault" hold: an attempt is
//! counted (committed) before it is made; a mail is marked sent only after the server
//! accepted it. A crash between acceptance and the mark resends the same bytes with
//! the same Message-ID, which receivers can deduplicate. Transient failures back off
//! exponentially (capped); permanent ones are recorded and not retried.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::case::{Ack, Status};
use crate::config::{Config, Tls};
use crate::store::{Batch, OutMail, OutStatus, Store};

/// First retry after this long; doubled per attempt.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Never wait longer than this between attempts, so a mail goes out soon after a
/// long SMTP outage ends.
const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// A hung server must not wedge the daemon.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the SMTP transport from `[smtp]`.
pub fn transport(cfg: &Config) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let s = &cfg.smtp;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .timeout(Some(SMTP_TIMEOUT));
    if s.tls != Tls::None {
        let mut tp = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("Reading smtp.ca_file {}", ca.display()))?;
            for block in pem_blocks(&pem) {
                tp = tp.add_root_certificate(
                    Certificate::from_pem(&block).map_err(|e| anyhow!("smtp.ca_file {}: {e}", ca.display()))?,
                );
            }
        }
        let params = tp.build_rustls().context("Setting up TLS for SMTP")?;
        b = b.tls(if s.tls == Tls::Implicit { SmtpTls::Wrapper(params) } else { SmtpTls::Required(params) });
    }
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        b = b.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
    }
    Ok(b.build())
}

/// Splits a PEM file into its certificate blocks.
pub fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            cur.clear();
        }
        cur.push_str(line);
        cur.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(cur.as_bytes().to_vec());
            cur.clear();
        }
    }
    out
}

/// How an attempt ended.
#[derive(Debug)]
pub enum SendResult {
    Sent,
    Retry(String),
    Failed(String),
}

/// Counts of one outbox pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassStats {
    pub sent: usize,
    pub retry: usize,
    pub failed: usize,
}

fn backoff(attempts: u32) -> chrono::Duration {
    let secs = BACKOFF_BASE.as_secs().saturating_mul(1u64 << attempts.min(16)).min(BACKOFF_CAP.as_secs());
    chrono::Duration::seconds(secs as i64)
}

/// Attempts every queued mail whose time has come. `now` is injected for tests.
pub async fn send_due(store: &Store, cfg: &Config, now: DateTime<Utc>) -> Result<PassStats> {
    let due: Vec<OutMail> = store
        .outbox()?
        .into_iter()
        .filter(|o| o.status == OutStatus::Queued && o.next_attempt <= now)
        .collect();
    let mut stats = PassStats::default();
    if due.is_empty() {
        return Ok(stats);
    }
    let transport = transport(cfg)?;
    for mut item in due {
        let Some(raw) = store.out_raw(&item.id)? else {
            tracing::error!(mail = %item.id, "Outbox entry without its bytes; marking failed");
            item.status = OutStatus::Failed;
            item.last_error = Some("bytes missing from the store".into());
            let mut b = Batch::default();
            b.put_out(&item, None);
            store.commit(b)?;
            stats.failed += 1;
            continue;
        };
        // Count the attempt before making it.
        item.attempts += 1;
        item.next_attempt = now + backoff(item.attempts);
        {
            let _g = store.lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut b = Batch::default();
            b.put_out(&item, None);
            store.commit(b)?;
        }
        let result = send_one(&transport, &item, &raw).await;
        let _g = store.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = Batch::default();
        match result {
            SendResult::Sent => {
                item.status = OutStatus::Sent;
                item.sent_at = Some(Utc::now().max(now));
                item.last_error = None;
                stats.sent += 1;
                if item.kind == "ack" {
                    if let Some(cid) = &item.case_id {
                        if let Some(mut c) = store.case_meta(cid)? {
                            c.ack = Some(Ack {
                                sent_at: item.sent_at.unwrap_or(now),
                                message_id: item.id.clone(),
                                encrypted: item.encrypted,
                                undelivered: false,
                            });
                            if c.status == Status::New {
                                c.status = Status::Acknowledged;
                            }
                            b.put_case(&c);
                        }
                    }
                }
                if let Some(cid) = &item.case_id {
                    b.put_log(cid, store.log_len(cid)?, &crate::case::LogEntry {
                        at: item.sent_at.unwrap_or(now),
                        who: "secintake".into(),
                        action: "mail-out".into(),
                        detail: format!("{} {} to {}", item.kind, item.id, item.to.join(", ")),
                    });
                }
                tracing::info!(mail = %item.id, kind = %item.kind, case = item.case_id.as_deref().unwrap_or("-"), "Mail sent");
            }
            SendResult::Retry(e) => {
                tracing::warn!(mail = %item.id, attempts = item.attempts, error = %e, "Send failed; will retry");
                item.last_error = Some(e);
                stats.retry += 1;
            }
            SendResult::Failed(e) => {
                tracing::error!(mail = %item.id, error = %e, "Send failed permanently");
                if let Some(cid) = &item.case_id {
                    b.put_log(cid, store.log_len(cid)?, &crate::case::LogEntry {
                        at: now,
                        who: "secintake".into(),
                        action: "mail-failed".into(),
                        detail: format!("{} {} to {}: {e}", item.kind, item.id, item.to.join(", ")),
                    });
                }
                item.status = OutStatus::Failed;
                item.last_error = Some(e);
                stats.failed += 1;
            }
        }
        b.put_out(&item, None);
        store.commit(b)?;
    }
    Ok(stats)
}

async fn send_one(t: &AsyncSmtpTransport<Tokio1Executor>, item: &OutMail, raw: &[u8]) -> SendResult {
    let from = match item.envelope_from.parse() {
        Ok(a) => Some(a),
        Err(e) => return SendResult::Failed(format!("bad envelope sender: {e}")),
    };
    let mut to = Vec::new();
    for r in &item.to {
        match r.parse() {
            Ok(a) => to.push(a),
            Err(e) => return SendResult::Failed(format!("bad recipient {r:?}: {e}")),
        }
    }
    let env = match Envelope::new(from, to) {
        Ok(e) => e,
        Err(e) => return SendResult::Failed(format!("bad envelope: {e}")),
    };
    match t.send_raw(&env, raw).await {
        Ok(_) => SendResult::Sent,
        Err(e) if e.is_permanent() => SendResult::Failed(e.to_string()),
        Err(e) => SendResult::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(2).num_seconds(), 20);
        assert_eq!(backoff(30).num_seconds(), BACKOFF_CAP.as_secs() as i64);
    }
}
