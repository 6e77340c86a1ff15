//! IMAP intake: connect (implicit TLS, STARTTLS, or plain on loopback), find every
//! message in `imap.mailbox`, hand each to the pipeline, and move it to the processed
//! or quarantine folder once its outcome is durable. Never deletes, never sets flags.
//!
//! A message is recognised by (mailbox, UIDVALIDITY, UID) first; a UIDVALIDITY change
//! makes every UID new again, and the Message-ID/content-hash dedupe in the pipeline
//! keeps that from creating second cases.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Config, Tls};
use crate::net::{Stream, tls_config};
use crate::pipeline::{Pipeline, Source};
use crate::store::{Disposition, QuarantineReason};

/// A connect or login that takes longer than this is treated as a failure, retried.
/// Below the watchdog (`WatchdogSec=120s` in systemd/secintake.service).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest an IMAP command may go without a byte from the server; past it the
/// connection is treated as hung and rebuilt. Well below the watchdog (`WatchdogSec=
/// 120s`), so a dead server costs a reconnect, never a kill. A FETCH that is moving
/// (every byte beats `crate::heartbeat`) may take longer, up to [`COMMAND_MAX`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest any IMAP command may take however it trickles: a batch FETCH of 32 MiB
/// plus one message of 50 MiB at 0.1 MiB/s.
pub const COMMAND_MAX: Duration = Duration::from_secs(15 * 60);

/// Every IMAP step goes through here: given up after [`COMMAND_TIMEOUT`] without a
/// byte from the server, or after [`COMMAND_MAX`] in all.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    crate::heartbeat::beat();
    let start = std::time::Instant::now();
    tokio::pin!(f);
    loop {
        tokio::select! {
            r = &mut f => {
                crate::heartbeat::beat();
                return r;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if crate::heartbeat::since() > COMMAND_TIMEOUT {
                    bail!("IMAP {what} timed out: nothing from the server for {COMMAND_TIMEOUT:?}");
                }
                if start.elapsed() > COMMAND_MAX {
                    bail!("IMAP {what} timed out after {COMMAND_MAX:?}");
                }
            }
        }
    }
}

/// The transport under the IMAP client: a [`net::Stream`] whose reads beat
/// `crate::heartbeat` (bytes from the IMAP server are progress: a long FETCH that moves is
/// not hung). Only IMAP beats it: sending mail must not hide a wedged intake.
#[derive(Debug)]
pub struct ImapStream(pub Stream);

impl AsyncRead for ImapStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.get_mut().0).poll_read(cx, buf);
        if buf.filled().len() > before {
            crate::heartbeat::beat();
        }
        r
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// A logged-in IMAP session.
pub type ImapSession = Session<ImapStream>;

async fn tls_wrap(tcp: TcpStream, cfg: &Config) -> Result<Stream> {
    let tls = tls_config(cfg.imap.ca_file.as_deref(), "imap.ca_file")?;
    let name = rustls_pki_types::ServerName::try_from(cfg.imap.host.clone())
        .map_err(|e| anyhow!("imap.host {:?} is not a valid TLS server name: {e}", cfg.imap.host))?;
    let s = TlsConnector::from(tls).connect(name, tcp).await.context("TLS handshake with the IMAP server")?;
    Ok(Stream::Tls(Box::new(s)))
}

/// Connects and logs in.
pub async fn connect(cfg: &Config) -> Result<ImapSession> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(cfg))
        .await
        .map_err(|_| anyhow!("IMAP connect/login to {}:{} timed out", cfg.imap.host, cfg.imap.port))?
}

async fn connect_inner(cfg: &Config) -> Result<ImapSession> {
    let addr = (cfg.imap.host.as_str(), cfg.imap.port);
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("Connecting to IMAP {}:{} (imap.host, imap.port)", cfg.imap.host, cfg.imap.port))?;
    let stream = match cfg.imap.tls {
        Tls::Implicit => tls_wrap(tcp, cfg).await?,
        Tls::None => Stream::Plain(tcp),
        Tls::Starttls => {
            let mut client = Client::new(ImapStream(Stream::Plain(tcp)));
            client.read_response().await.context("Reading the IMAP greeting")?;
            client.run_command_and_check_ok("STARTTLS", None).await.context("IMAP STARTTLS")?;
            let ImapStream(Stream::Plain(tcp)) = client.into_inner() else { bail!("unexpected stream state") };
            let tls = tls_wrap(tcp, cfg).await?;
            // No second greeting after STARTTLS.
            let client = Client::new(ImapStream(tls));
            return login(client, cfg).await;
        }
    };
    let mut client = Client::new(ImapStream(stream));
    client.read_response().await.context("Reading the IMAP greeting")?;
    login(client, cfg).await
}

async fn login(client: Client<ImapStream>, cfg: &Config) -> Result<ImapSession> {
    client.login(&cfg.imap.username, cfg.imap.password.expose()).await.map_err(|(e, _)| {
        anyhow!("IMAP login as {} failed: {e}; check imap.username and imap.password_file", cfg.imap.username)
    })
}

/// Creates `folder` if it does not exist.
pub async fn ensure_folder(s: &mut ImapSession, folder: &str) -> Result<()> {
    // Another client (the daemon and `check`, two standbys) may create the same folder,
    // or its parent, at the same moment: a CREATE that fails is fine when the folder is
    // there after it; otherwise it is tried once more before it is an error.
    let mut attempt = 0;
    loop {
        let exists = bounded("LIST", async {
            let names: Vec<_> = s.list(Some(""), Some(folder)).await?.try_collect().await?;
            Ok(names.iter().any(|n| n.name() == folder))
        })
        .await?;
        if exists {
            return Ok(());
        }
        match bounded("CREATE", async { Ok(s.create(folder).await?) }).await {
            Ok(()) => {
                tracing::info!(folder, "Created IMAP folder");
                return Ok(());
            }
            Err(e) if attempt == 2 => return Err(e.context(format!("Creating IMAP folder {folder}"))),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
        attempt += 1;
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassStats {
    pub seen: usize,
    pub new: usize,
    pub moved: usize,
    /// Messages left in the mailbox after an error (retried next pass).
    pub failed: usize,
}

/// One full pass over the mailbox: every message is processed, made durable, then
/// moved. Returns when the mailbox is empty of handled mail. `stop` is checked
/// between messages only: a message in hand is always finished.
pub async fn pass(
    s: &mut ImapSession,
    pipeline: &Pipeline,
    stop: &dyn Fn() -> bool,
    queued: &dyn Fn(),
) -> Result<PassStats> {
    let cfg = &pipeline.cfg;
    let mb = bounded("SELECT", async { Ok(s.select(&cfg.imap.mailbox).await?) })
        .await
        .with_context(|| format!("Selecting imap.mailbox {}", cfg.imap.mailbox))?;
    let uidvalidity = mb.uid_validity.unwrap_or(0);
    // A UIDVALIDITY change (mailbox recreated, server migrated) makes every UID new:
    // the pipeline then recognises handled messages by Message-ID or content hash, so
    // no case is created twice. Say so, and remember the new value.
    let known = pipeline.store.uidvalidity(&cfg.imap.mailbox)?;
    if known != Some(uidvalidity) {
        if let Some(old) = known {
            tracing::warn!(mailbox = %cfg.imap.mailbox, old, new = uidvalidity, "UIDVALIDITY changed; recognising messages by Message-ID and content");
        }
        let mut b = crate::store::Batch::default();
        b.put_uidvalidity(&cfg.imap.mailbox, uidvalidity);
        pipeline.store.write(|tx| tx.commit(b))?;
    }
    let mut uids: Vec<u32> =
        bounded("UID SEARCH", async { Ok(s.uid_search("ALL").await?) }).await?.into_iter().collect();
    uids.sort_unstable();
    let mut stats = PassStats { seen: uids.len(), ..Default::default() };
    if uids.is_empty() {
        move_resolved(s, pipeline).await?;
        return Ok(stats);
    }
    ensure_folder(s, &cfg.imap.processed_folder).await?;
    ensure_folder(s, &cfg.imap.quarantine_folder).await?;
    // Stages overlap: while one batch is recorded (decided, sealed, made durable), the
    // next is already read on every core and the one after it fetched; batches are
    // recorded in mailbox order and each is moved once its outcomes are durable.
    // Batches start small (the first acks go out at once) and grow.
    let mut inflight: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
    let mut last_turn: Option<std::sync::mpsc::Receiver<()>> = None;
    let mut batch_len = FIRST_BATCH;
    let mut rest: &[u32] = &uids;
    while !rest.is_empty() && !stop() {
        let window = &rest[..rest.len().min(SIZE_WINDOW)];
        rest = &rest[window.len()..];
        let planned = match plan_window(s, pipeline, uidvalidity, window, stop).await {
            Ok(p) => p,
            Err(e) => {
                // What is being recorded still ends durable (or not at all); its
                // messages are recognised and moved on the next pass.
                for f in inflight {
                    let _ = f.task.await;
                }
                return Err(e);
            }
        };
        let (mut to_processed, mut to_quarantine) = (planned.to_processed, planned.to_quarantine);
        let mut small = planned.small.into_iter().peekable();
        while small.peek().is_some() || !to_processed.is_empty() || !to_quarantine.is_empty() {
            if stop() {
                break;
            }
            let mut batch = Vec::new();
            let mut bytes = 0u64;
            while let Some(next) = small.next_if(|_| batch.len() < batch_len && bytes < MAX_BATCH_BYTES) {
                bytes += next.3;
                batch.push((next.0, next.1, next.2));
            }
            let items = match fetch_bodies(s, batch).await {
                Ok(items) => items,
                Err(e) => {
                    for f in inflight {
                        let _ = f.task.await;
                    }
                    return Err(e);
                }
            };
            batch_len = (batch_len * 2).min(MAX_BATCH);
            // Its turn to record comes when the batch before is recorded (or failed).
            let (turn_done, turn) = std::sync::mpsc::channel();
            let task = tokio::spawn(process(pipeline.clone(), items, last_turn.replace(turn), turn_done));
            inflight.push_back(InFlight {
                task,
                to_processed: std::mem::take(&mut to_processed),
                to_quarantine: std::mem::take(&mut to_quarantine),
            });
            while inflight.len() > 1 {
                if let Some(f) = inflight.pop_front() {
                    finish(s, pipeline, f, &mut stats, queued).await?;
                }
            }
        }
    }
    while let Some(f) = inflight.pop_front() {
        finish(s, pipeline, f, &mut stats, queued).await?;
    }
    move_resolved(s, pipeline).await?;
    Ok(stats)
}

/// Messages whose sizes are fetched per round trip (a few bytes each).
const SIZE_WINDOW: usize = 500;
/// The first batch of a pass: small, so the first acks go out within a second.
const FIRST_BATCH: usize = 8;
/// Batches double up to this many messages...
const MAX_BATCH: usize = 128;
/// ... and this many bytes (a message over it is a batch of its own): memory stays
/// bounded, and a batch is recorded within seconds.
const MAX_BATCH_BYTES: u64 = 32 << 20;

/// What a window's sizes said: messages handled before (to move as they are), and
/// the ones to fetch and process, with their sizes.
struct Planned {
    to_processed: Vec<u32>,
    to_quarantine: Vec<u32>,
    small: Vec<(u32, Source, DateTime<Utc>, u64)>,
}

/// The outcome of each message of a batch, by UID.
type BatchOutcomes = Vec<(u32, Result<crate::pipeline::Outcome>)>;

/// A batch being processed, and what to move with it once it is durable.
struct InFlight {
    task: tokio::task::JoinHandle<Result<BatchOutcomes>>,
    to_processed: Vec<u32>,
    to_quarantine: Vec<u32>,
}

/// Fetches the sizes of `window`; records oversized messages (streamed only to hash
/// them) and sorts out those handled before.
async fn plan_window(
    s: &mut ImapSession,
    pipeline: &Pipeline,
    uidvalidity: u32,
    window: &[u32],
    stop: &dyn Fn() -> bool,
) -> Result<Planned> {
    let cfg = &pipeline.cfg;
    let set = window.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
    // Sizes first: a message over the limit is quarantined without downloading it.
    let sizes: Vec<(u32, u32, Option<DateTime<Utc>>)> = {
        let fetches: Vec<_> = bounded("UID FETCH", async {
            Ok(s.uid_fetch(&set, "(UID RFC822.SIZE INTERNALDATE)").await?.try_collect::<Vec<_>>().await?)
        })
        .await?;
        let mut v: Vec<_> = fetches
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0), f.internal_date().map(|d| d.with_timezone(&Utc)))))
            .collect();
        v.sort_unstable_by_key(|(u, _, _)| *u);
        v
    };
    let mut out = Planned { to_processed: Vec::new(), to_quarantine: Vec::new(), small: Vec::new() };
    for (uid, size, date) in sizes {
        if stop() {
            break;
        }
        let received_at = date.unwrap_or_else(Utc::now);
        let src = Source { mailbox: cfg.imap.mailbox.clone(), uidvalidity, uid };
        // Handled before (a crash between the commit and the move): move it on.
        if let Some(rec) =
            pipeline.store.uid(&src.mailbox, uidvalidity, uid)?.and_then(|k| pipeline.store.mail(&k).ok().flatten())
        {
            if rec.disposition == Disposition::Quarantine {
                out.to_quarantine.push(uid)
            } else {
                out.to_processed.push(uid)
            }
        } else if u64::from(size) > cfg.limits.max_message_bytes {
            // Too large to hold: stream it in chunks only to hash it (the record
            // carries the hash of the bytes the server holds), keep the header.
            let (head, sha, body_sha) = stream_hash(s, uid).await?;
            let p = pipeline.clone();
            let rec = tokio::task::spawn_blocking(move || {
                p.ingest_oversized(&head, &sha, &body_sha, u64::from(size), Some(&src), received_at)
            })
            .await
            .context("Pipeline task")??;
            tracing::info!(uid, disposition = rec.disposition.as_str(), "Oversized message recorded");
            if rec.disposition == Disposition::Quarantine {
                out.to_quarantine.push(uid);
            } else {
                out.to_processed.push(uid);
            }
        } else {
            out.small.push((uid, src, received_at, u64::from(size)));
        }
    }
    Ok(out)
}

/// One FETCH for a batch's bodies (pipelined on the server side).
async fn fetch_bodies(
    s: &mut ImapSession,
    small: Vec<(u32, Source, DateTime<Utc>)>,
) -> Result<Vec<(Vec<u8>, Option<Source>, DateTime<Utc>)>> {
    if small.is_empty() {
        return Ok(Vec::new());
    }
    let set = small.iter().map(|(u, _, _)| u.to_string()).collect::<Vec<_>>().join(",");
    let fetched: Vec<_> = bounded("UID FETCH", async {
        Ok(s.uid_fetch(&set, "(UID BODY.PEEK[])").await?.try_collect::<Vec<_>>().await?)
    })
    .await?;
    let mut bodies: std::collections::HashMap<u32, Vec<u8>> =
        fetched.iter().filter_map(|f| Some((f.uid?, f.body()?.to_vec()))).collect();
    let mut items = Vec::new();
    for (uid, src, at) in small {
        match bodies.remove(&uid) {
            Some(b) => items.push((b, Some(src), at)),
            None => tracing::warn!(uid, "Message vanished before it was fetched"),
        }
    }
    Ok(items)
}

/// Waits for a batch's outcomes to be durable, then moves its messages.
async fn finish(
    s: &mut ImapSession,
    pipeline: &Pipeline,
    f: InFlight,
    stats: &mut PassStats,
    queued: &dyn Fn(),
) -> Result<()> {
    let cfg = &pipeline.cfg;
    let InFlight { task, mut to_processed, mut to_quarantine } = f;
    let outcomes = task.await.context("Pipeline task")??;
    // The batch's mail is durable: the outbox may send it while we go on.
    if !outcomes.is_empty() {
        queued();
    }
    for (uid, out) in outcomes {
        match out {
            Ok(out) => {
                if !out.seen_before {
                    stats.new += 1;
                }
                tracing::info!(
                    uid,
                    disposition = out.disposition.as_str(),
                    case = out.case_id.as_deref().unwrap_or("-"),
                    "Message handled"
                );
                if out.disposition == Disposition::Quarantine {
                    to_quarantine.push(uid);
                } else {
                    to_processed.push(uid);
                }
            }
            // The store cannot write (disk full, I/O error; sled's error then
            // sticks): every later message would fail too. Stop the pass; the
            // daemon exits and systemd restarts it. The message stays put.
            Err(e) if crate::store::is_io_failure(&e) => {
                return Err(e.context(format!("Storing the message with UID {uid}")));
            }
            Err(e) => {
                // Nothing was committed for it: it stays in the mailbox and is
                // tried again next pass; the messages after it are not held up.
                tracing::error!(uid, error = %format!("{e:#}"), "Message could not be stored; left in the mailbox for the next pass");
                stats.failed += 1;
            }
        }
    }
    // Outcomes are durable (the group commit synced); their journal goes to the
    // server before the messages move, so no message is in a folder of handled mail
    // while what became of it is only on this machine; then move the batch.
    if !to_processed.is_empty() || !to_quarantine.is_empty() {
        crate::journal::append_pending(s, &pipeline.store, &pipeline.keys, cfg).await?;
    }
    for (uids, folder) in [(&to_processed, &cfg.imap.processed_folder), (&to_quarantine, &cfg.imap.quarantine_folder)] {
        if uids.is_empty() {
            continue;
        }
        let set = uids.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
        bounded("UID MOVE", async { Ok(s.uid_mv(&set, folder).await?) })
            .await
            .with_context(|| format!("Moving messages to {folder}"))?;
        stats.moved += uids.len();
    }
    Ok(())
}

/// Processes fetched messages: their attempts counted first (one commit), then the
/// ones tried before, one group each (a message that crashed the process must not take
/// its neighbours down with it again), the rest in one group; a message that crashed
/// or hung [`crate::pipeline::MAX_ATTEMPTS`] times is quarantined unread. Returns
/// (uid, outcome) in order.
/// `prev` ends (sent or dropped) when the batch before is recorded: this one is read
/// meanwhile, and recorded after it. `done` is dropped when this one is.
async fn process(
    p: Pipeline,
    items: Vec<(Vec<u8>, Option<Source>, DateTime<Utc>)>,
    prev: Option<std::sync::mpsc::Receiver<()>>,
    done: std::sync::mpsc::Sender<()>,
) -> Result<BatchOutcomes> {
    tokio::task::spawn_blocking(move || -> Result<BatchOutcomes> {
        let _done = done;
        let mut prev = prev;
        let mut wait_turn = || {
            if let Some(rx) = prev.take() {
                let _ = rx.recv();
            }
        };
        let now = Utc::now();
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        let mut suspects = Vec::new();
        for item in items {
            let Some(src) = item.1.as_ref() else { continue };
            if p.store.attempts(&src.mailbox, src.uidvalidity, src.uid)? == 0 {
                fresh.push(item);
            } else {
                suspects.push(item);
            }
        }
        // Suspects in a different order each start: restarts that happen to come at the
        // same moment after start-up must not keep landing on the same innocent message.
        let n = suspects.len().max(1);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        suspects.rotate_left(nanos as usize % n);
        if !suspects.is_empty() {
            wait_turn();
        }
        for item in suspects {
            let Some(src) = item.1.clone() else { continue };
            // Tried before without an outcome: the process died or hung meanwhile.
            // Alone this time, its own attempt counted, so only the culprit adds up.
            let n = p.count_attempts(std::slice::from_ref(&src))?[0];
            if n > crate::pipeline::MAX_ATTEMPTS {
                tracing::error!(
                    uid = src.uid,
                    attempts = n - 1,
                    "Message crashed or hung processing before; quarantined unread"
                );
                let r = p.quarantine_after_panic(&item.0, Some(&src), item.2, QuarantineReason::ProcessingFailed);
                if r.is_ok() {
                    p.clear_attempts(std::slice::from_ref(&src))?;
                }
                out.push((src.uid, r));
            } else {
                tracing::warn!(
                    uid = src.uid,
                    attempt = n,
                    "Message was being processed when the daemon stopped; trying it alone"
                );
                let r = p.ingest_group(std::slice::from_ref(&item), now)?;
                out.extend(r.into_iter().map(|o| (src.uid, o)));
            }
        }
        if !fresh.is_empty() {
            let sources: Vec<Source> = fresh.iter().filter_map(|(_, s, _)| s.clone()).collect();
            p.count_attempts(&sources)?;
            let read = p.read_group(&fresh, now);
            wait_turn();
            let r = p.record_group(&fresh, read, now)?;
            out.extend(sources.iter().map(|s| s.uid).zip(r));
        }
        Ok(out)
    })
    .await
    .context("Pipeline task")?
}

/// Moves the IMAP copies of messages that `quarantine retry` resolved from the
/// quarantine folder to the processed folder (found by Message-ID; a message without
/// one stays where it is, its record says where it went).
async fn move_resolved(s: &mut ImapSession, pipeline: &Pipeline) -> Result<usize> {
    let keys = pipeline.store.resolved()?;
    if keys.is_empty() {
        return Ok(0);
    }
    let cfg = &pipeline.cfg;
    // The retries' records on the server before their messages move (see `finish`).
    crate::journal::append_pending(s, &pipeline.store, &pipeline.keys, cfg).await?;
    bounded("SELECT", async { Ok(s.select(&cfg.imap.quarantine_folder).await?) }).await?;
    let mut moved = 0;
    for key in keys {
        if let Some(mid) = crate::mime::clean_msgid(&key).filter(|k| !k.starts_with("sha256:")) {
            let q = format!("HEADER Message-ID \"{mid}\"");
            let uids: Vec<u32> =
                bounded("UID SEARCH", async { Ok(s.uid_search(&q).await?) }).await?.into_iter().collect();
            if !uids.is_empty() {
                let set = uids.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
                bounded("UID MOVE", async { Ok(s.uid_mv(&set, &cfg.imap.processed_folder).await?) }).await?;
                moved += uids.len();
            }
        }
        let mut b = crate::store::Batch::default();
        b.remove_resolved(&key);
        pipeline.store.write(|tx| tx.commit(b))?;
    }
    if moved > 0 {
        tracing::info!(moved, "Moved retried messages out of the quarantine folder");
    }
    Ok(moved)
}

/// Size of the partial FETCHes that hash an oversized message: memory stays bounded.
const HASH_CHUNK: usize = 4 << 20;

/// Streams a message with partial FETCHes: (its header, SHA-256 of all of it,
/// SHA-256 of its body).
async fn stream_hash(s: &mut ImapSession, uid: u32) -> Result<(Vec<u8>, String, String)> {
    use sha2::{Digest, Sha256};
    let mut all = Sha256::new();
    let mut body = Sha256::new();
    let mut head: Option<Vec<u8>> = None;
    let mut first = Vec::new();
    let mut offset = 0usize;
    loop {
        let q = format!("(UID BODY.PEEK[]<{offset}.{HASH_CHUNK}>)");
        let f: Vec<_> =
            bounded("UID FETCH", async { Ok(s.uid_fetch(uid.to_string(), &q).await?.try_collect::<Vec<_>>().await?) })
                .await?;
        let chunk = f.first().and_then(|f| f.body()).map(|b| b.to_vec()).unwrap_or_default();
        all.update(&chunk);
        match &head {
            Some(_) => body.update(&chunk),
            None => {
                first.extend_from_slice(&chunk);
                let rest = crate::mime::body_of(&first).len();
                if rest < first.len() || chunk.len() < HASH_CHUNK {
                    let split = first.len() - rest;
                    body.update(&first[split..]);
                    head = Some(first[..split].to_vec());
                    first = Vec::new();
                } else if first.len() > 8 * HASH_CHUNK {
                    // No header end in 32 MiB: treat it all as header-less body.
                    body.update(&first);
                    head = Some(Vec::new());
                    first = Vec::new();
                }
            }
        }
        offset += chunk.len();
        if chunk.len() < HASH_CHUNK {
            break;
        }
    }
    Ok((head.unwrap_or_default(), hex::encode(all.finalize()), hex::encode(body.finalize())))
}

/// Whether the server offers IDLE.
pub async fn has_idle(s: &mut ImapSession) -> bool {
    bounded("CAPABILITY", async { Ok(s.capabilities().await?) }).await.map(|c| c.has_str("IDLE")).unwrap_or(false)
}
