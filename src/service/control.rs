//! The control socket: while `run` holds the store (sled is one process at a time),
//! every other command is sent here and executed inside the daemon.
//!
//! The socket lives in the state directory (mode 0700) and is itself 0600; a peer
//! whose uid is neither ours nor root is refused. One request per connection: a JSON
//! line with the command's arguments (and its input for `ingest`), answered by a JSON
//! line with the exit code and the output.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::Shared;
use crate::config::Config;

/// Largest request accepted (an `ingest` of a message at the size limit, base64).
const MAX_REQUEST: u64 = 100 << 20;

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
pub async fn serve(shared: Shared, handler: Handler, mut stop: watch::Receiver<bool>) -> Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(&shared.cfg());
    if UnixStream::connect(&path).await.is_ok() {
        anyhow::bail!("another secintake is already serving {}", path.display());
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_context(|| format!("Binding the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let me = unsafe_free_uid();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                acc = listener.accept() => {
                    let Ok((conn, _)) = acc else { continue };
                    if let Ok(cred) = conn.peer_cred() {
                        if cred.uid() != me && cred.uid() != 0 {
                            tracing::warn!(uid = cred.uid(), "Control socket: refused a peer of another user");
                            continue;
                        }
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
    let mut line = String::new();
    BufReader::new(rd).take(MAX_REQUEST).read_line(&mut line).await?;
    let req: Request = serde_json::from_str(&line).context("Bad control request")?;
    let resp = tokio::task::spawn_blocking(move || handler(&shared, req)).await?;
    let mut out = serde_json::to_vec(&resp)?;
    out.push(b'\n');
    wr.write_all(&out).await?;
    wr.shutdown().await?;
    Ok(())
}

/// Sends a request to a running daemon. `Ok(None)` when no daemon listens.
pub fn call(cfg: &Config, req: &Request) -> Result<Option<Response>> {
    call_at(&socket_path(cfg), req)
}

/// Like [`call`], with the socket path given.
pub fn call_at(path: &std::path::Path, req: &Request) -> Result<Option<Response>> {
    use std::io::{BufRead, Write};
    let mut conn = match std::os::unix::net::UnixStream::connect(&path) {
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
