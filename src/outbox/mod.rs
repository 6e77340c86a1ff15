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
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::case::{Ack, Status};
use crate::config::{Config, Tls};
use crate::store::{Batch, MailKind, OutMail, OutStatus, Store};

/// First retry after this long; doubled per attempt.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Never wait longer than this between attempts, so a mail goes out soon after a
/// long SMTP outage ends.
const BACKOFF_CAP: Duration = Duration::from_secs(15 * 60);
/// A hung server must not wedge the daemon.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds lettre's SMTP transport from `[smtp]`: what `check --online` tests the
/// connection with. Sending uses [`Smtp`] (reused connections, TCP_NODELAY).
pub fn transport(cfg: &Config) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let s = &cfg.smtp;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .timeout(Some(SMTP_TIMEOUT));
    if s.tls != Tls::None {
        let params = tls_parameters(s)?;
        b = b.tls(if s.tls == Tls::Implicit { SmtpTls::Wrapper(params) } else { SmtpTls::Required(params) });
    }
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        b = b.credentials(Credentials::new(u.clone(), p.expose().to_owned()));
    }
    Ok(b.build())
}

/// How an attempt ended.
#[derive(Debug)]
pub enum SendResult {
    Sent,
    Retry(String),
    Failed(String),
}

/// Counts of one outbox pass.
#[derive(Debug, Default, Clone)]
pub struct PassStats {
    pub sent: usize,
    pub retry: usize,
    pub failed: usize,
    /// The server could not be reached: nothing was attempted (nor counted) this pass;
    /// `retry` holds how many mails wait.
    pub unreachable: bool,
}

/// Whether a mail whose next attempt was set to `next` is due at `now`. A backoff is
/// never longer than [`BACKOFF_CAP`]: a `next` further ahead means the wall clock was
/// stepped back since it was set, and the mail is due now rather than hours late.
pub fn is_due(next: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    next <= now || next - now > chrono::Duration::from_std(BACKOFF_CAP).unwrap_or(chrono::Duration::MAX)
}

fn backoff(attempts: u32) -> chrono::Duration {
    let secs = BACKOFF_BASE.as_secs().saturating_mul(1u64 << attempts.min(16)).min(BACKOFF_CAP.as_secs());
    chrono::Duration::seconds(secs as i64)
}

/// Results recorded per commit: one fsync for this many mails. A crash loses at most
/// the marks of these (they are then sent again, with the same Message-ID).
const RECORD_BATCH: usize = 32;

/// Queued mails read (and their attempts counted, in one commit) at a time: what a
/// pass holds in memory, however long the queue.
const PAGE: usize = 256;

/// Attempts every queued mail whose time has come. `now` is injected for tests.
///
/// The due mails are read a page at a time; each page's attempts are counted in one
/// commit before any of them is made; the mails then go out over up to
/// `smtp.connections` connections, each kept open for every mail of the pass (no
/// connect, STARTTLS and AUTH per mail: a few in parallel hide the server's
/// per-message latency without looking like a flood to it); results are recorded in
/// group commits. A mail is marked sent only after the server accepted it.
pub async fn send_due(store: &Store, cfg: &Config, now: DateTime<Utc>) -> Result<PassStats> {
    let mut pages = DuePages { store: store.clone(), now, cursor: None, done: false };
    let mut stats = PassStats::default();
    let Some(first_page) = pages.next()? else {
        return Ok(stats);
    };
    // One connection first: with the server down nothing is attempted, so no mail
    // has an attempt counted, and a growing queue is not written back on every pass.
    let mut first = Smtp::new(cfg);
    match first.connect().await {
        Ok(c) => first.conn = Some(c),
        Err(e) => {
            let mut waiting = 0;
            store.each_queued(|o| {
                waiting += usize::from(o.status == OutStatus::Queued && is_due(o.next_attempt, now))
            })?;
            tracing::warn!(waiting, error = %e, "SMTP server unreachable; the outbox waits");
            return Ok(PassStats { retry: waiting, unreachable: true, ..stats });
        }
    }
    let mut first = Some(first);
    // Pages flow to the connections through a channel of one page: memory stays
    // bounded by it, and a page's attempts are counted before any of its mails goes.
    let (item_tx, item_rx) = tokio::sync::mpsc::channel::<OutMail>(PAGE);
    let item_rx = std::sync::Arc::new(tokio::sync::Mutex::new(item_rx));
    let feeder = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut page = Some(first_page);
            while let Some(mut due) = page.take() {
                count_attempts(&store, &mut due, now)?;
                for item in due {
                    if item_tx.send(item).await.is_err() {
                        return Ok(());
                    }
                }
                page = pages.next()?;
            }
            anyhow::Ok(())
        })
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(OutMail, SendResult)>(RECORD_BATCH * 2);
    let mut workers = Vec::new();
    for _ in 0..cfg.smtp.connections {
        let items = item_rx.clone();
        let tx = tx.clone();
        let store = store.clone();
        let smtp = first.take().unwrap_or_else(|| Smtp::new(cfg));
        workers.push(tokio::spawn(async move {
            let mut smtp = smtp;
            loop {
                let Some(item) = items.lock().await.recv().await else { break };
                let result = match store.out_raw(&item.id) {
                    Ok(Some(raw)) => smtp.send(&item, &raw).await,
                    Ok(None) => SendResult::Failed("bytes missing from the store".into()),
                    Err(e) => SendResult::Retry(format!("reading the mail from the store: {e:#}")),
                };
                if tx.send((item, result)).await.is_err() {
                    break;
                }
            }
            smtp.quit().await;
        }));
    }
    drop(tx);
    let mut pending = Vec::new();
    while let Some(r) = rx.recv().await {
        pending.push(r);
        // Record what has arrived, in groups: one fsync for many mails.
        while pending.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(r) => pending.push(r),
                Err(_) => break,
            }
        }
        record(store, std::mem::take(&mut pending), now, &mut stats)?;
    }
    for w in workers {
        let _ = w.await;
    }
    // A page that could not be read or counted ends the pass with the error; what
    // was counted and not sent is attempted again at its next time.
    feeder.await.context("The outbox's page reader")??;
    Ok(stats)
}

/// The queue read a page at a time, keeping the mails due at `now`.
struct DuePages {
    store: Store,
    now: DateTime<Utc>,
    cursor: Option<String>,
    done: bool,
}

impl DuePages {
    /// The next page with at least one due mail, or None at the end of the queue.
    fn next(&mut self) -> Result<Option<Vec<OutMail>>> {
        while !self.done {
            let (page, cursor) = self.store.queued_page(self.cursor.as_deref(), PAGE)?;
            self.done = cursor.is_none();
            self.cursor = cursor;
            let due: Vec<OutMail> = page
                .into_iter()
                .filter(|o| o.status == OutStatus::Queued && is_due(o.next_attempt, self.now))
                .collect();
            if !due.is_empty() {
                return Ok(Some(due));
            }
        }
        Ok(None)
    }
}

/// Counts one more attempt at each mail (one commit), before any is made.
fn count_attempts(store: &Store, due: &mut [OutMail], now: DateTime<Utc>) -> Result<()> {
    let tx = store.begin();
    let mut b = Batch::default();
    for item in due {
        item.attempts += 1;
        item.next_attempt = now + backoff(item.attempts);
        b.put_out(item, None);
    }
    tx.commit(b)
}

/// Records a group of send results in one commit.
fn record(store: &Store, results: Vec<(OutMail, SendResult)>, now: DateTime<Utc>, stats: &mut PassStats) -> Result<()> {
    let tx = store.begin();
    let mut b = Batch::default();
    // Log positions handed out in this group, so two mails of one case get two lines.
    let mut log_next: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut log_n = |cid: &str| -> Result<u64> {
        let n = match log_next.get(cid) {
            Some(n) => *n,
            None => store.log_len(cid)?,
        };
        log_next.insert(cid.to_owned(), n + 1);
        Ok(n)
    };
    for (mut item, result) in results {
        match result {
            SendResult::Sent => {
                item.status = OutStatus::Sent;
                item.sent_at = Some(Utc::now().max(now));
                item.last_error = None;
                stats.sent += 1;
                if item.kind == MailKind::Ack
                    && let Some(cid) = &item.case_id
                    && let Some(mut c) = store.case_meta(cid)?
                {
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
                if let Some(cid) = &item.case_id {
                    b.put_log(
                        cid,
                        log_n(cid)?,
                        &crate::case::LogEntry {
                            at: item.sent_at.unwrap_or(now),
                            who: "secintake".into(),
                            action: "mail-out".into(),
                            detail: format!("{} {} to {}", item.kind, item.id, item.to.join(", ")),
                            ..Default::default()
                        },
                    );
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
                    b.put_log(
                        cid,
                        log_n(cid)?,
                        &crate::case::LogEntry {
                            at: now,
                            who: "secintake".into(),
                            action: "mail-failed".into(),
                            detail: format!("{} {} to {}: {e}", item.kind, item.id, item.to.join(", ")),
                            ..Default::default()
                        },
                    );
                }
                item.status = OutStatus::Failed;
                item.last_error = Some(e);
                stats.failed += 1;
            }
        }
        b.put_out(&item, None);
    }
    tx.commit(b)
}

/// Our TCP stream under lettre's SMTP client: TCP_NODELAY set (lettre writes a mail's
/// body and its final `.` in two writes; with Nagle each mail would wait for the
/// server's delayed ACK, ~40 ms), implicit TLS done by us.
#[derive(Debug)]
struct SmtpStream(crate::net::Stream);

impl tokio::io::AsyncRead for SmtpStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SmtpStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for SmtpStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match &self.0 {
            crate::net::Stream::Plain(t) => t.peer_addr(),
            crate::net::Stream::Tls(t) => t.get_ref().0.peer_addr(),
        }
    }
}

/// One SMTP connection, opened on first use and reused until it fails.
struct Smtp {
    cfg: crate::config::Smtp,
    conn: Option<lettre::transport::smtp::client::AsyncSmtpConnection>,
}

impl Smtp {
    fn new(cfg: &Config) -> Smtp {
        Smtp { cfg: cfg.smtp.clone(), conn: None }
    }

    async fn connect(&self) -> std::result::Result<lettre::transport::smtp::client::AsyncSmtpConnection, String> {
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        use lettre::transport::smtp::extension::ClientId;
        let s = &self.cfg;
        let tcp = tokio::time::timeout(SMTP_TIMEOUT, tokio::net::TcpStream::connect((s.host.as_str(), s.port)))
            .await
            .map_err(|_| format!("connecting to {}:{} timed out", s.host, s.port))?
            .map_err(|e| format!("connecting to {}:{}: {e}", s.host, s.port))?;
        tcp.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let stream = if s.tls == Tls::Implicit {
            let tls = crate::net::tls_config(s.ca_file.as_deref(), "smtp.ca_file").map_err(|e| format!("{e:#}"))?;
            let name = rustls_pki_types::ServerName::try_from(s.host.clone()).map_err(|e| format!("smtp.host: {e}"))?;
            let t = tokio::time::timeout(SMTP_TIMEOUT, tokio_rustls::TlsConnector::from(tls).connect(name, tcp))
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|e| format!("TLS handshake: {e}"))?;
            crate::net::Stream::Tls(Box::new(t))
        } else {
            crate::net::Stream::Plain(tcp)
        };
        let hello = ClientId::default();
        let mut conn = tokio::time::timeout(
            SMTP_TIMEOUT,
            AsyncSmtpConnection::connect_with_transport(Box::new(SmtpStream(stream)), &hello),
        )
        .await
        .map_err(|_| "SMTP greeting timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        if s.tls == Tls::Starttls {
            let params = tls_parameters(s).map_err(|e| format!("{e:#}"))?;
            tokio::time::timeout(SMTP_TIMEOUT, conn.starttls(params, &hello))
                .await
                .map_err(|_| "STARTTLS timed out".to_owned())?
                .map_err(|e| format!("STARTTLS: {e}"))?;
        }
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            let creds = Credentials::new(u.clone(), p.expose().to_owned());
            tokio::time::timeout(
                SMTP_TIMEOUT,
                conn.auth(lettre::transport::smtp::authentication::DEFAULT_MECHANISMS, &creds),
            )
            .await
            .map_err(|_| "SMTP AUTH timed out".to_owned())?
            .map_err(|e| format!("SMTP AUTH: {e}"))?;
        }
        Ok(conn)
    }

    async fn send(&mut self, item: &OutMail, raw: &[u8]) -> SendResult {
        let env = match envelope(item) {
            Ok(e) => e,
            Err(r) => return r,
        };
        if self.conn.is_none() {
            match self.connect().await {
                Ok(c) => self.conn = Some(c),
                Err(e) => return SendResult::Retry(e),
            }
        }
        let Some(conn) = self.conn.as_mut() else { return SendResult::Retry("no connection".into()) };
        match tokio::time::timeout(SMTP_TIMEOUT, conn.send(&env, raw)).await {
            Ok(Ok(_)) => SendResult::Sent,
            Ok(Err(e)) => {
                // The server refused this mail; the connection may go on, unless it
                // broke.
                if conn.has_broken() || !e.is_permanent() {
                    self.conn = None;
                } else {
                    let _ = conn.command(lettre::transport::smtp::commands::Rset).await;
                }
                if e.is_permanent() { SendResult::Failed(e.to_string()) } else { SendResult::Retry(e.to_string()) }
            }
            Err(_) => {
                self.conn = None;
                SendResult::Retry(format!("no answer from the SMTP server within {}s", SMTP_TIMEOUT.as_secs()))
            }
        }
    }

    async fn quit(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.quit()).await;
        }
    }
}

/// The SMTP envelope of a queued mail (its sender is the intake address, so bounces
/// come back to us).
fn envelope(item: &OutMail) -> std::result::Result<Envelope, SendResult> {
    let from = item.envelope_from.parse().map_err(|e| SendResult::Failed(format!("bad envelope sender: {e}")))?;
    let mut to = Vec::new();
    for r in &item.to {
        to.push(r.parse().map_err(|e| SendResult::Failed(format!("bad recipient {r:?}: {e}")))?);
    }
    Envelope::new(Some(from), to).map_err(|e| SendResult::Failed(format!("bad envelope: {e}")))
}

/// lettre's TLS parameters for STARTTLS, trusting `smtp.ca_file` when set.
fn tls_parameters(s: &crate::config::Smtp) -> Result<TlsParameters> {
    let mut tp = TlsParameters::builder(s.host.clone());
    if let Some(ca) = &s.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("Reading smtp.ca_file {}", ca.display()))?;
        for block in crate::net::pem_blocks(&pem) {
            tp = tp.add_root_certificate(
                Certificate::from_pem(&block).map_err(|e| anyhow!("smtp.ca_file {}: {e}", ca.display()))?,
            );
        }
    }
    tp.build_rustls().context("Setting up TLS for SMTP")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_stepped_back_does_not_delay_mail() {
        let now = Utc::now();
        assert!(is_due(now, now));
        assert!(!is_due(now + backoff(3), now));
        // Set before the clock went back a day: due now, not in a day.
        assert!(is_due(now + chrono::Duration::days(1), now));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(2).num_seconds(), 20);
        assert_eq!(backoff(30).num_seconds(), BACKOFF_CAP.as_secs() as i64);
    }
}
