//! The control socket: while `run` holds the store (sled is one process at a time),
//! every other command is sent here and executed inside the daemon.
//!
//! The socket lives in the state directory (mode 0700) and is itself 0600; a peer
//! whose credentials cannot be read, or whose uid is neither ours nor root, is refused.
//! One request per connection: a JSON line with the command's arguments (and its input
//! for `ingest`), answered by a JSON line with the exit code and the output. A request
//! larger than the largest message allows, or not sent within [`REQUEST_TIMEOUT`], is
//! refused: a stuck or hostile client never holds a task or memory for long.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::Shared;
use crate::config::Config;

/// Longest a client may take to send its request, and the daemon to write its answer.
/// Local clients send even a 50 MiB `ingest` in well under a second.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest request accepted: an `ingest` of a message at `limits.max_message_bytes`,
/// base64 (4/3), plus room for the arguments.
pub fn max_request(max_message_bytes: u64) -> u64 {
    max_message_bytes.saturating_mul(4) / 3 + (1 << 20)
}

/// Whether a peer may talk to the daemon: its credentials must be readable, its uid
/// ours or root's (the socket's mode already keeps others out; this holds if a
/// directory mode is loosened).
fn admit(cred: std::io::Result<tokio::net::unix::UCred>, me: u32) -> std::result::Result<u32, String> {
    match cred {
        Err(e) => Err(format!("peer credentials cannot be read: {e}")),
        Ok(c) if c.uid() == me || c.uid() == 0 => Ok(c.uid()),
        Ok(c) => Err(format!("peer uid {} is neither the daemon's ({me}) nor root", c.uid())),
    }
}

/// A command sent to the daemon.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The command line after the program name (global options removed).
    pub args: Vec<String>,
    /// Input for commands that read a file or stdin (`ingest`), base64.
    pub input: Option<String>,
    /// Who ran the command, for audit records.
    pub user: String,
}

/// The daemon's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Executes a request against the daemon's state (provided by the CLI layer).
pub type Handler = Arc<dyn Fn(&Shared, Request) -> Response + Send + Sync>;

/// Where the control socket of the store at `cfg.store_path` lives.
pub fn socket_path(cfg: &Config) -> PathBuf {
    cfg.store_path.join("control.sock")
}

/// Binds the socket and serves it until `stop`.
pub async fn serve(
    shared: Shared,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(&shared.cfg());
    if UnixStream::connect(&path).await.is_ok() {
        anyhow::bail!("another secintake is already serving {}", path.display());
    }
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("Binding the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let me = unsafe_free_uid();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                acc = listener.accept() => {
                    let Ok((conn, _)) = acc else { continue };
                    if let Err(why) = admit(conn.peer_cred(), me) {
                        tracing::warn!(reason = %why, "Control socket: peer refused");
                        continue;
                    }
                    let shared = shared.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(conn, shared, handler).await {
                            tracing::warn!(error = %format!("{e:#}"), "Control socket request failed");
                        }
                    });
                }
            }
        }
    }))
}

/// Our uid, read from /proc so no libc call is needed.
fn unsafe_free_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

async fn handle(conn: UnixStream, shared: Shared, handler: Handler) -> Result<()> {
    let (rd, mut wr) = conn.into_split();
    let cap = max_request(shared.cfg().limits.max_message_bytes);
    let resp = match read_request(rd, cap, REQUEST_TIMEOUT).await {
        Ok(req) => tokio::task::spawn_blocking(move || handler(&shared, req)).await?,
        Err(e) => {
            // Said to the client too, so it does not wait for an answer that never comes.
            tracing::warn!(error = %format!("{e:#}"), "Control socket: request refused");
            Response {
                code: 1,
                stdout: String::new(),
                stderr: format!("secintake: the daemon refused the request: {e:#}\n"),
            }
        }
    };
    let mut out = serde_json::to_vec(&resp)?;
    out.push(b'\n');
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        wr.write_all(&out).await?;
        wr.shutdown().await
    })
    .await
    .context("Writing the answer timed out")??;
    Ok(())
}

/// Reads one request line of at most `cap` bytes within `timeout`.
async fn read_request(
    rd: impl tokio::io::AsyncRead + Unpin,
    cap: u64,
    timeout: std::time::Duration,
) -> Result<Request> {
    let mut line = Vec::new();
    let n = tokio::time::timeout(timeout, BufReader::new(rd).take(cap).read_until(b'\n', &mut line))
        .await
        .map_err(|_| anyhow::anyhow!("no complete request within {timeout:?}"))??;
    if !line.ends_with(b"\n") {
        anyhow::bail!("request larger than {cap} bytes, or cut short after {n} bytes");
    }
    serde_json::from_slice(&line).context("Bad control request")
}

/// Sends a request to a running daemon. `Ok(None)` when no daemon listens.
pub fn call(cfg: &Config, req: &Request) -> Result<Option<Response>> {
    call_at(&socket_path(cfg), req)
}

/// Like [`call`], with the socket path given.
pub fn call_at(path: &std::path::Path, req: &Request) -> Result<Option<Response>> {
    use std::io::{BufRead, Write};
    let mut conn = match std::os::unix::net::UnixStream::connect(path) {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let mut body = serde_json::to_vec(req)?;
    body.push(b'\n');
    conn.write_all(&body)?;
    let mut line = String::new();
    std::io::BufReader::new(conn).read_line(&mut line).context("Reading the daemon's answer")?;
    Ok(Some(serde_json::from_str(&line).context("Bad answer from the daemon")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10: a peer whose credentials could not be read was let in.
    #[tokio::test]
    async fn peer_without_readable_credentials_is_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mine = a.peer_cred().unwrap();
        assert!(admit(Ok(mine), mine.uid()).is_ok());
        let unreadable = std::io::Error::new(std::io::ErrorKind::Unsupported, "no SO_PEERCRED");
        assert!(admit(Err(unreadable), mine.uid()).unwrap_err().contains("cannot be read"));
        // As root, our own peer is root: allowed as the daemon's uid or as root.
        if mine.uid() != 0 {
            assert!(admit(Ok(mine), mine.uid() + 1).is_err());
        }
    }

    fn request_line(args: &[&str]) -> Vec<u8> {
        let req = Request { args: args.iter().map(|s| s.to_string()).collect(), input: None, user: "t".into() };
        let mut v = serde_json::to_vec(&req).unwrap();
        v.push(b'\n');
        v
    }

    #[tokio::test]
    async fn request_within_the_cap_is_read() {
        let line = request_line(&["status"]);
        let req = read_request(&line[..], line.len() as u64, std::time::Duration::from_secs(5)).await.unwrap();
        assert_eq!(req.args, vec!["status"]);
    }

    /// Issue 10: no size cap beyond a fixed 100 MiB, and no read timeout.
    #[tokio::test]
    async fn oversized_request_is_refused() {
        let line = request_line(&["case", "note", "SEC-2026-0001", &"x".repeat(4096)]);
        let e = read_request(&line[..], 1024, std::time::Duration::from_secs(5)).await.unwrap_err();
        assert!(format!("{e:#}").contains("larger than 1024"), "{e:#}");
    }

    #[tokio::test]
    async fn silent_client_times_out() {
        let (client, server) = UnixStream::pair().unwrap();
        let start = std::time::Instant::now();
        let e = read_request(server, 1 << 20, std::time::Duration::from_millis(200)).await.unwrap_err();
        assert!(format!("{e:#}").contains("no complete request"), "{e:#}");
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        drop(client);
    }

    #[test]
    fn cap_fits_an_ingest_at_the_message_limit() {
        let base64 = (30u64 << 20).div_ceil(3) * 4;
        assert!(max_request(30 << 20) > base64 + 4096);
    }
}
