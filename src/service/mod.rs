//! The daemon: the intake/outbox loop, signals, readiness, and the control socket.
//!
//! Waiting (IDLE, poll sleep, backoff) is interruptible; doing is not: a stop request
//! is honoured between messages, after the message in hand is durable and moved.

pub mod control;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::intake::{self, ImapSession};
use crate::outbox;
use crate::pipeline::Pipeline;
use crate::store::{OutStatus, Store};

/// Longest IDLE before it is renewed; RFC 2177 asks clients to re-issue IDLE at
/// least every 29 minutes, and NATs drop quiet connections sooner.
const IDLE_MAX: Duration = Duration::from_secs(5 * 60);
/// Reconnect backoff after an IMAP error: starts here, doubles, capped.
const RECONNECT_MIN: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(5 * 60);

/// What the daemon shares with the control socket's command handler.
#[derive(Clone)]
pub struct Shared {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub pipeline: Pipeline,
    /// Wakes the main loop (new mail queued by `ingest` through the socket, say).
    pub wake: Arc<Notify>,
    pub started: chrono::DateTime<Utc>,
}

/// Tells systemd something (`READY=1`, `STOPPING=1`, `WATCHDOG=1`), if it listens.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let p = path.to_string_lossy().into_owned();
    let res = if let Some(name) = p.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &p)
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Runs the daemon until `stop` turns true (or after one pass with `once`).
/// `handler` serves control-socket requests (the CLI's commands).
pub async fn run(
    cfg: Arc<Config>,
    once: bool,
    mut stop: watch::Receiver<bool>,
    handler: Option<control::Handler>,
) -> Result<()> {
    let store = Store::open(&cfg.store_path)?;
    let pipeline = Pipeline::load(cfg.clone(), store.clone())?;
    let shared = Shared { cfg: cfg.clone(), store: store.clone(), pipeline: pipeline.clone(), wake: Arc::new(Notify::new()), started: Utc::now() };

    let mut socket_task = None;
    if let Some(h) = handler {
        socket_task = Some(control::serve(shared.clone(), h, stop.clone()).await?);
    }

    let stop_now = {
        let stop = stop.clone();
        move || *stop.borrow()
    };
    let mut session: Option<ImapSession> = None;
    let mut reconnect = RECONNECT_MIN;
    let mut ready = false;
    let mut idle_ok = None;
    loop {
        if stop_now() {
            break;
        }
        // Intake.
        if session.is_none() {
            match intake::connect(&cfg).await {
                Ok(s) => {
                    tracing::info!(host = %cfg.imap.host, port = cfg.imap.port, "IMAP logged in");
                    session = Some(s);
                    reconnect = RECONNECT_MIN;
                }
                Err(e) => {
                    if once {
                        return Err(e);
                    }
                    tracing::error!(error = %format!("{e:#}"), retry_in = ?reconnect, "IMAP connection failed");
                }
            }
        }
        if !ready && !once {
            ready = true;
            tracing::info!(socket = %control::socket_path(&cfg).display(), "secintake ready");
            sd_notify("READY=1");
        }
        if let Some(s) = session.as_mut() {
            match intake::pass(s, &pipeline, &stop_now).await {
                Ok(st) => {
                    if st.seen > 0 {
                        tracing::info!(seen = st.seen, new = st.new, moved = st.moved, "Intake pass done");
                    }
                }
                Err(e) => {
                    if once {
                        return Err(e.context("IMAP intake pass"));
                    }
                    tracing::error!(error = %format!("{e:#}"), "IMAP intake pass failed; reconnecting");
                    session = None;
                }
            }
        }
        // Outbox.
        match outbox::send_due(&store, &cfg, Utc::now()).await {
            Ok(st) if st.sent + st.retry + st.failed > 0 => {
                tracing::info!(sent = st.sent, retry = st.retry, failed = st.failed, "Outbox pass done");
            }
            Ok(_) => {}
            Err(e) => {
                if once {
                    return Err(e.context("Outbox pass"));
                }
                tracing::error!(error = %format!("{e:#}"), "Outbox pass failed");
            }
        }
        if once || stop_now() {
            break;
        }

        // Wait for work: new mail (IDLE), the poll interval, the next outbox retry,
        // a wake-up from the control socket, or a stop request.
        let mut wait = cfg.imap.poll_interval;
        if let Some(next) = next_outbox_due(&store) {
            let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(200)));
        }
        if session.is_none() {
            wait = wait.min(reconnect);
            reconnect = (reconnect * 2).min(RECONNECT_MAX);
        }
        if let Some(mut s) = session.take() {
            if idle_ok.is_none() {
                idle_ok = Some(cfg.imap.idle && intake::has_idle(&mut s).await);
            }
            if idle_ok == Some(true) {
                match idle_wait(s, wait.min(IDLE_MAX), &mut stop, &shared.wake).await {
                    Ok(s) => session = Some(s),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "IMAP IDLE failed; reconnecting"),
                }
                continue;
            }
            session = Some(s);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
            _ = shared.wake.notified() => {}
        }
    }
    sd_notify("STOPPING=1");
    if let Some(mut s) = session {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
    }
    if let Some(t) = socket_task {
        t.abort();
    }
    let _ = std::fs::remove_file(control::socket_path(&cfg));
    store.sync().context("Final store sync")?;
    tracing::info!("secintake stopped");
    Ok(())
}

fn next_outbox_due(store: &Store) -> Option<chrono::DateTime<Utc>> {
    store.outbox().ok()?.into_iter().filter(|o| o.status == OutStatus::Queued).map(|o| o.next_attempt).min()
}

async fn idle_wait(
    s: ImapSession,
    dur: Duration,
    stop: &mut watch::Receiver<bool>,
    wake: &Notify,
) -> Result<ImapSession> {
    let mut handle = s.idle();
    handle.init().await.context("IMAP IDLE")?;
    {
        let (fut, interrupt) = handle.wait_with_timeout(dur);
        tokio::select! {
            r = fut => { r.context("IMAP IDLE wait")?; }
            _ = stop.changed() => {}
            _ = wake.notified() => {}
        }
        drop(interrupt);
    }
    let s = tokio::time::timeout(Duration::from_secs(10), handle.done())
        .await
        .context("IMAP IDLE DONE timed out")?
        .context("IMAP IDLE DONE")?;
    Ok(s)
}
