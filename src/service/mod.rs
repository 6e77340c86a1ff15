//! The daemon: the intake/outbox loop, signals, readiness, and the control socket.
//!
//! Waiting (IDLE, poll sleep, backoff) is interruptible; doing is not: a stop request
//! is honoured between messages, after the message in hand is durable and moved.

pub mod control;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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

/// Why the daemon could not start, when the caller must tell it apart (a
/// configuration problem is exit 2 for the CLI; the service knows no exit codes).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The keys, certs or templates the config names do not load.
    #[error("{0}")]
    Config(String),
}

/// What the daemon shares with the control socket's command handler.
#[derive(Clone)]
pub struct Shared {
    /// The live pipeline (and its config); replaced as a whole on SIGHUP.
    live: Arc<RwLock<Pipeline>>,
    pub store: Store,
    /// Wakes the main loop (new mail queued by `ingest` through the socket, a reload).
    pub wake: Arc<Notify>,
    /// Wakes the outbox task: new mail was queued.
    pub outbox_wake: Arc<Notify>,
    /// What `secintake status` reports about the running tasks.
    pub status: Arc<Mutex<TaskStatus>>,
    /// Set by SIGHUP; the main loop reloads between units of work.
    pub reload: Arc<AtomicBool>,
}

impl Shared {
    /// The current pipeline (cheap clone).
    pub fn pipeline(&self) -> Pipeline {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current config.
    pub fn cfg(&self) -> Arc<Config> {
        self.pipeline().cfg
    }

    pub(crate) fn set_error(&self, task: &str, error: Option<String>) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(e) => {
                *st.error_counts.entry(task.to_owned()).or_default() += 1;
                st.last_errors.insert(task.to_owned(), TaskError { at: Utc::now(), error: e });
            }
            None => {
                st.last_errors.remove(task);
            }
        }
    }
}

/// A task's last error, for `status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TaskError {
    #[serde(with = "crate::case::ts")]
    pub at: chrono::DateTime<Utc>,
    pub error: String,
}

/// The daemon's view of itself, for `secintake status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TaskStatus {
    #[serde(with = "crate::case::ts")]
    pub up_since: chrono::DateTime<Utc>,
    #[serde(with = "crate::case::ts::opt")]
    pub last_imap_sync: Option<chrono::DateTime<Utc>>,
    pub imap_connected: bool,
    pub idle: bool,
    /// Messages in the mailbox not yet handled at the last sync.
    pub messages_waiting: usize,
    #[serde(with = "crate::case::ts::opt")]
    pub last_reload: Option<chrono::DateTime<Utc>>,
    /// Last error per task (`imap`, `outbox`, `reload`); cleared when the task succeeds.
    pub last_errors: std::collections::BTreeMap<String, TaskError>,
    /// The last time the SMTP server accepted a mail of ours (for `[metrics] textfile`).
    #[serde(with = "crate::case::ts::opt")]
    pub last_smtp_send: Option<chrono::DateTime<Utc>>,
    /// Errors per task since start (for `[metrics] textfile`).
    pub error_counts: std::collections::BTreeMap<String, u64>,
}

/// How long the intake loop may go without a heartbeat (see `crate::heartbeat`)
/// before the watchdog stops being pinged: longer than any wait of the loop (the ping
/// interval, WatchdogSec/2, plus IDLE DONE's 10 s) and than [`intake::COMMAND_TIMEOUT`],
/// below `WatchdogSec` (120 s in systemd/secintake.service).
pub const STALL: Duration = Duration::from_secs(80);

/// systemd's watchdog: pings at half the interval systemd asked for, from the loop
/// that does the work and from a ticker that pings only while the loop makes progress
/// (a heartbeat within [`STALL`]: a FETCH that is moving counts), so a slow 50 MiB
/// FETCH is not killed and a wedged loop stops pinging and gets restarted.
struct Watchdog {
    every: Option<Duration>,
    last: Mutex<std::time::Instant>,
}

impl Watchdog {
    fn from_env() -> Watchdog {
        let every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|_| std::env::var("WATCHDOG_PID").map(|p| p == std::process::id().to_string()).unwrap_or(true))
            .map(|us| Duration::from_micros(us / 2));
        Watchdog { every, last: Mutex::new(std::time::Instant::now()) }
    }

    fn ping(&self) {
        let Some(every) = self.every else { return };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= every / 2 {
            sd_notify("WATCHDOG=1");
            *last = std::time::Instant::now();
        }
    }

    /// Pings every half interval while the heartbeat is fresh, until the process ends.
    fn spawn_ticker(&self) {
        let Some(every) = self.every else { return };
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every / 2).await;
                if crate::heartbeat::since() < STALL {
                    sd_notify("WATCHDOG=1");
                } else {
                    tracing::warn!(stalled_for = ?crate::heartbeat::since(), "Intake makes no progress; no longer pinging the watchdog");
                }
            }
        });
    }

    fn cap(&self, d: Duration) -> Duration {
        match self.every {
            Some(e) => d.min(e),
            None => d,
        }
    }
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
/// `handler` serves control-socket requests (the CLI's commands); `reload` is set by
/// SIGHUP.
pub async fn run(
    cfg: Arc<Config>,
    once: bool,
    mut stop: watch::Receiver<bool>,
    handler: Option<control::Handler>,
    reload: Arc<AtomicBool>,
    wake: Arc<Notify>,
) -> Result<()> {
    // A CLI command may hold the store for a moment; wait for it rather than fail.
    let store = crate::atrest::open_waiting(&cfg, None)?;
    for p in crate::atrest::unsealed_copies(&cfg.store_path) {
        tracing::warn!(
            folder = %p.display(),
            "A store moved aside by an older `store rebuild` holds decrypted reports in clear: remove it once no longer needed"
        );
    }
    // What a crash left half-written: segments no record names. Not a reason to stop.
    match store.sweep_segments() {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed text segments no record names (left by an interrupted commit)"),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "could not sweep unnamed text segments; they only take disk space")
        }
    }
    // A key that does not load is a configuration problem (exit 2), as `check` says.
    let pipeline = Pipeline::load(cfg.clone(), store.clone())
        .map_err(|e| anyhow::Error::new(StartError::Config(format!("{e:#}"))))?;
    crate::pipeline::ensure_indexes(&store)?;
    let shared = Shared {
        live: Arc::new(RwLock::new(pipeline)),
        store: store.clone(),
        wake,
        outbox_wake: Arc::new(Notify::new()),
        status: Arc::new(Mutex::new(TaskStatus {
            up_since: Utc::now(),
            last_imap_sync: None,
            imap_connected: false,
            idle: false,
            messages_waiting: 0,
            last_reload: None,
            last_errors: Default::default(),
            last_smtp_send: None,
            error_counts: Default::default(),
        })),
        reload,
    };
    let socket = control::socket_path(&cfg);

    let mut socket_task = None;
    if let Some(h) = handler {
        socket_task = Some(control::serve(shared.clone(), h, stop.clone()).await?);
    }

    // The outbox is its own task: acks go out while intake works through a backlog,
    // and intake never waits on SMTP. `drain` asks it to finish after one more pass
    // (`run --once`).
    let drain = Arc::new(AtomicBool::new(false));
    let outbox_task = tokio::spawn(outbox_loop(shared.clone(), stop.clone(), drain.clone()));

    let mut outbox_task = outbox_task;
    // The journal task appends what intake does not (team commands, outbox results,
    // the clock) over its own IMAP session; `drain` as for the outbox.
    let journal_drain = Arc::new(AtomicBool::new(false));
    let mut journal_task = tokio::spawn(crate::journal::task(shared.clone(), stop.clone(), journal_drain.clone()));
    let watchdog = Arc::new(Watchdog::from_env());
    crate::heartbeat::beat();
    watchdog.spawn_ticker();
    let stop_now = {
        let stop = stop.clone();
        let wd = watchdog.clone();
        // Called between messages: also the watchdog's keep-alive during a backlog.
        move || {
            crate::heartbeat::beat();
            wd.ping();
            *stop.borrow()
        }
    };
    let mut session: Option<ImapSession> = None;
    let mut reconnect = RECONNECT_MIN;
    let mut ready = false;
    let mut idle_ok = None;
    let mut again = false;
    loop {
        if stop_now() {
            break;
        }
        // The journal task ends early only on a store failure.
        if journal_task.is_finished() {
            return match (&mut journal_task).await {
                Ok(Err(e)) => Err(fatal(e.context("Journal"))),
                Ok(Ok(())) => Err(anyhow::anyhow!("the journal task ended")),
                Err(e) => Err(anyhow::anyhow!("journal task: {e}")),
            };
        }
        // The outbox task ends early only on a store failure (see `fatal`).
        if outbox_task.is_finished() {
            return match (&mut outbox_task).await {
                Ok(Err(e)) => Err(fatal(e.context("Outbox pass"))),
                Ok(Ok(())) => Err(anyhow::anyhow!("the outbox task ended")),
                Err(e) => Err(anyhow::anyhow!("outbox task: {e}")),
            };
        }
        if shared.reload.swap(false, Ordering::SeqCst) && reload_config(&shared) {
            // New IMAP settings take effect on the next login.
            if let Some(mut s) = session.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
            }
            idle_ok = None;
        }
        let pipeline = shared.pipeline();
        let cfg = pipeline.cfg.clone();
        // Intake.
        if session.is_none() {
            let attempt = tokio::select! {
                r = intake::connect(&cfg) => Some(r),
                _ = stop.changed() => None,
            };
            let Some(attempt) = attempt else { break };
            match attempt {
                Ok(s) => {
                    tracing::info!(host = %cfg.imap.host, port = cfg.imap.port, "IMAP logged in");
                    session = Some(s);
                    reconnect = RECONNECT_MIN;
                    shared.set_error("imap", None);
                }
                Err(e) => {
                    if once {
                        return Err(e);
                    }
                    tracing::error!(error = %format!("{e:#}"), retry_in = ?reconnect, "IMAP connection failed");
                    shared.set_error("imap", Some(format!("{e:#}")));
                }
            }
        }
        shared.status.lock().unwrap_or_else(|e| e.into_inner()).imap_connected = session.is_some();
        if !ready && !once {
            ready = true;
            tracing::info!(socket = %socket.display(), "secintake ready");
            sd_notify("READY=1");
        }
        if let Some(s) = session.as_mut() {
            let wake_outbox = || shared.outbox_wake.notify_one();
            match intake::pass(s, &pipeline, &stop_now, &wake_outbox).await {
                Ok(st) => {
                    // Mail that arrived while this pass worked raised no IDLE event for
                    // us: look again before waiting.
                    again = st.new > 0;
                    if st.seen > 0 {
                        tracing::info!(seen = st.seen, new = st.new, moved = st.moved, "Intake pass done");
                    }
                    let mut status = shared.status.lock().unwrap_or_else(|e| e.into_inner());
                    status.last_imap_sync = Some(Utc::now());
                    status.messages_waiting = st.seen.saturating_sub(st.moved);
                    drop(status);
                    shared.set_error("imap", None);
                }
                Err(e) => {
                    if once || crate::store::is_io_failure(&e) {
                        return Err(fatal(e.context("IMAP intake pass")));
                    }
                    tracing::error!(error = %format!("{e:#}"), "IMAP intake pass failed; reconnecting");
                    shared.set_error("imap", Some(format!("{e:#}")));
                    session = None;
                }
            }
        }
        // SLA clock: reminders due now go into the outbox (each once).
        let p = pipeline.clone();
        match tokio::task::spawn_blocking(move || p.queue_reminders(Utc::now())).await {
            Ok(Ok(_)) => shared.set_error("sla", None),
            Ok(Err(e)) if crate::store::is_io_failure(&e) => return Err(fatal(e.context("SLA clock"))),
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "SLA clock failed");
                shared.set_error("sla", Some(format!("{e:#}")));
            }
            Err(e) => tracing::error!(error = %e, "SLA clock task failed"),
        }
        shared.outbox_wake.notify_one();
        // Permanent failures go to the team list (queued now, sent next pass).
        let p = pipeline.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || p.report_failures(Utc::now())).await {
            if crate::store::is_io_failure(&e) {
                return Err(fatal(e.context("Reporting failed mail")));
            }
            tracing::error!(error = %format!("{e:#}"), "Reporting failed mail to the team failed");
        }
        write_metrics(&shared).await;
        watchdog.ping();
        if once {
            // One full pass: every due mail is attempted before exiting.
            drain.store(true, Ordering::SeqCst);
            shared.outbox_wake.notify_one();
            match outbox_task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.context("Outbox pass")),
                Err(e) => return Err(anyhow::anyhow!("outbox task: {e}")),
            }
            // What the pass and the outbox changed is on the server before exiting.
            journal_drain.store(true, Ordering::SeqCst);
            shared.store.journal_kick();
            match journal_task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.context("Journal")),
                Err(e) => return Err(anyhow::anyhow!("journal task: {e}")),
            }
            write_metrics(&shared).await;
            break;
        }
        if stop_now() {
            break;
        }

        if again {
            again = false;
            continue;
        }
        // Wait for work: new mail (IDLE), the poll interval, the next outbox retry,
        // a wake-up from the control socket or SIGHUP, or a stop request.
        let mut wait = cfg.imap.poll_interval;
        if session.is_none() {
            wait = wait.min(reconnect);
            reconnect = (reconnect * 2).min(RECONNECT_MAX);
        }
        wait = watchdog.cap(wait);
        if let Some(mut s) = session.take() {
            if idle_ok.is_none() {
                idle_ok = Some(cfg.imap.idle && intake::has_idle(&mut s).await);
                shared.status.lock().unwrap_or_else(|e| e.into_inner()).idle = idle_ok == Some(true);
            }
            if idle_ok == Some(true) {
                match idle_wait(s, wait.min(IDLE_MAX), &mut stop, &shared.wake).await {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "IMAP IDLE failed; reconnecting");
                        shared.set_error("imap", Some(format!("{e:#}")));
                    }
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
    // However the steps below go, the process is gone within the 10 s the contract
    // promises: everything that matters was committed before each step.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(8));
        tracing::warn!("Shutdown took too long; exiting");
        std::process::exit(0);
    });
    if let Some(mut s) = session {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
    }
    if let Some(t) = socket_task {
        t.abort();
    }
    let _ = std::fs::remove_file(&socket);
    store.sync().context("Final store sync")?;
    tracing::info!("secintake stopped");
    Ok(())
}

/// A store I/O error ends the daemon: sled's error sticks (after ENOSPC every later
/// write fails), so going on would only fail every message while pinging the
/// watchdog. Exiting non-zero lets systemd restart it (`Restart=on-failure`); the
/// message in hand was not moved and stays in the mailbox.
fn fatal(e: anyhow::Error) -> anyhow::Error {
    if crate::store::is_io_failure(&e) {
        tracing::error!(error = %format!("{e:#}"), "Store I/O error; exiting so the service is restarted (unprocessed mail stays in the mailbox)");
        sd_notify("STOPPING=1");
    }
    e
}

/// Re-reads the config, keys and team certs; keeps the running ones when anything is
/// wrong, saying why. Returns whether the new configuration is now live.
fn reload_config(shared: &Shared) -> bool {
    sd_notify("RELOADING=1");
    let old = shared.cfg();
    let result = (|| -> Result<Pipeline> {
        let new = crate::config::Config::load(&old.file).map_err(|e| anyhow::anyhow!("{e}"))?;
        if new.store_path != old.store_path {
            anyhow::bail!("store.path cannot change on reload (restart the service to move the store)");
        }
        Pipeline::load(Arc::new(new), shared.store.clone())
    })();
    let ok = match result {
        Ok(p) => {
            *shared.live.write().unwrap_or_else(|e| e.into_inner()) = p;
            shared.status.lock().unwrap_or_else(|e| e.into_inner()).last_reload = Some(Utc::now());
            shared.set_error("reload", None);
            tracing::info!(config = %old.file.display(), "Configuration reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "Reload refused; keeping the running configuration");
            shared.set_error("reload", Some(format!("{e:#}")));
            false
        }
    };
    sd_notify("READY=1");
    ok
}

/// Writes `[metrics] textfile`, when set (off the async threads: it reads the store).
/// A failure is logged and counted, never fatal: metrics must not stop intake.
async fn write_metrics(shared: &Shared) {
    let cfg = shared.cfg();
    let Some(path) = cfg.metrics_textfile.clone() else { return };
    let (store, status) = (shared.store.clone(), shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let done = tokio::task::spawn_blocking(move || {
        let snap = metrics::collect(&store, &cfg, &status, Utc::now())?;
        metrics::write_atomic(&path, &metrics::render(&snap))
    })
    .await;
    match done {
        Ok(Ok(())) => shared.set_error("metrics", None),
        Ok(Err(e)) => {
            tracing::warn!(error = %format!("{e:#}"), "Metrics file not written");
            shared.set_error("metrics", Some(format!("{e:#}")));
        }
        Err(e) => tracing::warn!(error = %e, "Metrics task failed"),
    }
}

/// The outbox task: sends what is due, then waits for new mail (a wake-up), the next
/// retry, or a stop. Each attempt was counted before it was made, so a stop mid-send
/// only means that mail is tried again (same Message-ID). With `drain` set it returns
/// after one more pass (`run --once`).
async fn outbox_loop(shared: Shared, mut stop: watch::Receiver<bool>, drain: Arc<AtomicBool>) -> Result<()> {
    // While the SMTP server cannot be reached: how long to wait before trying again
    // (doubling, capped), however much mail intake queues meanwhile.
    let mut down_wait: Option<Duration> = None;
    loop {
        let draining = drain.load(Ordering::SeqCst);
        let cfg = shared.cfg();
        let sent = tokio::select! {
            r = outbox::send_due(&shared.store, &cfg, Utc::now()) => Some(r),
            _ = stop.changed() => None,
        };
        let Some(sent) = sent else { return Ok(()) };
        match sent {
            Ok(st) if st.unreachable => {
                shared.set_error(
                    "outbox",
                    Some(format!("{} mail(s) waiting: the SMTP server cannot be reached (see the log)", st.retry)),
                );
                if draining || *stop.borrow() {
                    return Ok(());
                }
                let wait = down_wait.map_or(Duration::from_secs(2), |w| (w * 2).min(Duration::from_secs(60)));
                down_wait = Some(wait);
                // New mail does not bring the server back: only time, stopping, or the
                // last pass of `run --once` ends this wait.
                let until = tokio::time::Instant::now() + wait;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = stop.changed() => return Ok(()),
                        _ = shared.outbox_wake.notified() => if drain.load(Ordering::SeqCst) { break },
                    }
                }
                continue;
            }
            Ok(st) => {
                down_wait = None;
                if st.sent > 0 {
                    shared.status.lock().unwrap_or_else(|e| e.into_inner()).last_smtp_send = Some(Utc::now());
                }
                if st.sent + st.retry + st.failed > 0 {
                    tracing::info!(sent = st.sent, retry = st.retry, failed = st.failed, "Outbox pass done");
                }
                shared.set_error(
                    "outbox",
                    if st.retry > 0 { Some(format!("{} mail(s) waiting to retry", st.retry)) } else { None },
                );
            }
            Err(e) => {
                // A store failure ends the task, and the main loop ends the daemon.
                if draining || crate::store::is_io_failure(&e) {
                    return Err(e);
                }
                tracing::error!(error = %format!("{e:#}"), "Outbox pass failed");
                shared.set_error("outbox", Some(format!("{e:#}")));
            }
        }
        if draining || *stop.borrow() {
            return Ok(());
        }
        let mut wait = Duration::from_secs(60);
        if let Some(next) = next_outbox_due(&shared.store) {
            let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(Duration::from_millis(200)));
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
            _ = shared.outbox_wake.notified() => {}
        }
    }
}

fn next_outbox_due(store: &Store) -> Option<chrono::DateTime<Utc>> {
    let now = Utc::now();
    let mut next: Option<chrono::DateTime<Utc>> = None;
    store
        .each_queued(|o| {
            if o.status == OutStatus::Queued {
                let at = if outbox::is_due(o.next_attempt, now) { now } else { o.next_attempt };
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        })
        .ok()?;
    next
}

async fn idle_wait(
    s: ImapSession,
    dur: Duration,
    stop: &mut watch::Receiver<bool>,
    wake: &Notify,
) -> Result<ImapSession> {
    let mut handle = s.idle();
    tokio::time::timeout(intake::COMMAND_TIMEOUT, handle.init())
        .await
        .context("IMAP IDLE start timed out")?
        .context("IMAP IDLE")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn watchdog_sec() -> Duration {
        let unit = include_str!("../../systemd/secintake.service");
        let v = unit.lines().find_map(|l| l.trim().strip_prefix("WatchdogSec=")).expect("WatchdogSec in the unit");
        humantime::parse_duration(v.trim()).expect("a duration")
    }

    /// Issue 10: COMMAND_TIMEOUT (300 s) exceeded WatchdogSec (120 s), so a hung IMAP
    /// server got the daemon killed by the watchdog instead of reconnected.
    #[test]
    fn imap_timeouts_are_below_the_watchdog() {
        let wd = watchdog_sec();
        assert!(intake::COMMAND_TIMEOUT < STALL, "a command in progress must keep the watchdog pinged");
        assert!(intake::CONNECT_TIMEOUT < STALL);
        assert!(intake::COMMAND_TIMEOUT <= wd / 2, "COMMAND_TIMEOUT must be well below WatchdogSec");
        assert!(STALL < wd, "STALL must be below WatchdogSec");
        // The loop's longest wait (the ping interval, WatchdogSec/2) plus IDLE DONE's
        // 10 s stays within STALL, so waiting is never taken for a stall.
        assert!(wd / 2 + Duration::from_secs(10) < STALL);
    }
}
