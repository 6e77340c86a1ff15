//! The command line: clap definitions and the code that runs each command.
//!
//! Commands that read or change the store run in the daemon through its control
//! socket when `run` is up (sled allows one process), and open the store directly
//! otherwise. Output goes to the writer given (stdout, or the socket's answer); logs
//! go to stderr only.

pub mod case;
pub mod check;
mod credits;
pub mod keys;
pub mod mail;
pub mod reporter;
pub mod search;
pub mod stats;
pub mod store;
pub mod term;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::service::{self, Shared, control};
use crate::store::Store;

/// Exit codes of the contract.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
/// `ingest` could not store the message (store busy, disk, the daemon's store failing,
/// an invalid config): EX_TEMPFAIL, so an MTA delivering through a pipe keeps the
/// message and retries instead of bouncing it.
pub const EXIT_TEMPFAIL: i32 = 75;
/// `ingest` refuses the message for good (over `limits.max_message_bytes`): EX_DATAERR.
/// Its stderr starts with an RFC 3463 status code (`5.2.3`), which Postfix's pipe(8)
/// puts in the bounce in place of the exit status's generic one.
pub const EXIT_DATAERR: i32 = 65;

#[derive(Parser, Debug)]
#[command(
    name = "secintake",
    version,
    about = "Encrypted intake daemon for a project's security@ mailbox",
    long_about = "secintake fetches vulnerability reports over IMAP, decrypts and verifies them \
                  (OpenPGP), opens a case for each, acknowledges the reporter with a signed \
                  receipt and forwards an encrypted summary to the security team.",
    after_help = "Examples:\n  secintake check\n  secintake run\n  secintake case list --status new\n  \
                  secintake case show SEC-2026-0001 --json\n  secintake mail list"
)]
pub struct Cli {
    /// Config file [default: $SECINTAKE_CONFIG, else /etc/secintake/secintake.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: a large variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon (or one full pass with --once)
    #[command(after_help = "Example:\n  secintake --config /etc/secintake/secintake.toml run --once")]
    Run {
        /// Fetch all new mail, process it, attempt every due outbound mail, and exit
        #[arg(long)]
        once: bool,
    },
    /// Validate the config and keys (exit 2 on any problem)
    #[command(after_help = "Example:\n  secintake check && systemctl restart secintake")]
    Check {
        /// Also log in to IMAP and SMTP
        #[arg(long)]
        online: bool,
    },
    /// Intake key management
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake keys generate --uid \"Security <security@example.org>\" --out DIR\n  secintake keys show"
    )]
    Keys(keys::KeysCmd),
    /// Work cases
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake case list --status new\n  secintake case show SEC-2026-0001 --json\n  secintake case set SEC-2026-0001 --status triaged"
    )]
    Case(case::CaseCmd),
    /// Every message secintake has seen and where it went
    #[command(subcommand, after_help = "Example:\n  secintake mail list --json")]
    Mail(mail::MailCmd),
    /// Messages that could not be handled
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake quarantine list\n  secintake quarantine retry Q-0123456789abcdef"
    )]
    Quarantine(mail::QuarantineCmd),
    /// What is due and overdue
    #[command(after_help = "Example:\n  secintake sla --json")]
    Sla {
        /// Only this project's cases (`[[projects]]` name, or the default project's)
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Feed one message (a file, or - for stdin) through the pipeline
    #[command(after_help = "Example (Postfix pipe):\n  secintake ingest -")]
    Ingest {
        /// The message file, or - for stdin
        #[arg(default_value = "-")]
        file: String,
    },
    /// Reporters: their history and blocks
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake reporter list\n  secintake reporter show alice@example.org\n  \
                  secintake reporter block x@example.net --reason 'repeated invalid reports'"
    )]
    Reporter(reporter::ReporterCmd),
    /// Print an RFC 9116 security.txt, cleartext-signed by the intake key
    #[command(after_help = "Example:\n  secintake security-txt > /var/www/example.org/.well-known/security.txt")]
    SecurityTxt {
        /// The project's (`[[projects]]` name): its address, key and policy
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
    },
    /// Write the man pages and shell completions into DIR (packaging)
    #[command(hide = true)]
    Assets {
        /// Where man/ and completions/ are written
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The desk in numbers, per project and in total: reports, dispositions, statuses,
    /// rejections, flags, median and 90th percentile time to ack, triage, fix and
    /// disclosure, SLA misses, per month
    #[command(
        after_help = "Examples:\n  secintake stats\n  secintake stats --project numlib --since 2026-01-01 --json"
    )]
    Stats {
        /// Only this project's cases (`[[projects]]` name, or the default project's)
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// Only reports received on or after this day (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// The store as a cache of the mailbox: rebuild it from the mailbox, verify it, or
    /// rebuild its search and duplicate indexes
    #[command(
        subcommand,
        after_help = "Examples:\n  secintake store rebuild --into /var/lib/secintake-standby\n  secintake store verify --json\n  secintake store reindex"
    )]
    Store(store::StoreCmd),
    /// The running daemon's state: last sync, queues, errors, overdue cases
    #[command(after_help = "Example:\n  secintake status --json")]
    Status {
        /// Only this project's cases in the counts
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// The project `--project NAME` names, checked: None for the default project.
pub fn project_arg<'a>(cfg: &'a crate::config::Config, name: Option<&'a str>) -> Result<Option<&'a str>> {
    match name {
        None => Ok(None),
        Some(n) if n == cfg.default_project() => Ok(Some(n)),
        Some(n) if cfg.project(Some(n)).is_some() => Ok(Some(n)),
        Some(n) => {
            Err(usage(format!("--project {n:?}: no such project; the projects are {}", cfg.project_names().join(", "))))
        }
    }
}

/// Whether a case is `project`'s (None: every case): sent to it, or also affecting it
/// (`case set --also-affects`). Cases made before projects belong to the default project.
pub fn in_project(cfg: &crate::config::Config, c: &crate::case::Case, project: Option<&str>) -> bool {
    match project {
        None => true,
        Some(p) => c.concerns(p, cfg.default_project()),
    }
}

/// Where the config is: --config, $SECINTAKE_CONFIG, or the default.
pub fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .or_else(|| std::env::var_os("SECINTAKE_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_PATH))
}

/// Loads the config or reports every problem and exits 2.
pub fn load_config(cli: &Cli) -> std::result::Result<Config, i32> {
    match Config::load(&config_path(cli)) {
        Ok(c) => Ok(c),
        Err(e) => {
            eprint!("secintake: {e}");
            Err(EXIT_USAGE)
        }
    }
}

/// A user-facing error with its exit code (2: bad usage, 1: failure).
#[derive(Debug)]
pub struct Exit(pub i32, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Exit {}

/// Bad usage: unknown id, wrong argument.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Exit(EXIT_USAGE, msg.into()).into()
}

fn os_user() -> String {
    std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into())
}

/// The state a store command runs against.
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub store: Store,
    /// Present in the daemon, loaded on demand locally.
    pub shared: Option<Shared>,
    pub user: String,
}

impl Ctx {
    /// A pipeline (keys loaded): the daemon's, or a new one.
    pub fn pipeline(&self) -> Result<crate::pipeline::Pipeline> {
        match &self.shared {
            Some(s) => Ok(s.pipeline()),
            None => crate::pipeline::Pipeline::load(self.cfg.clone(), self.store.clone()),
        }
    }
}

/// Runs a command that works on the store. `input` carries `ingest`'s message.
fn execute(cmd: &Command, ctx: &Ctx, input: Option<Vec<u8>>, out: &mut dyn Write) -> Result<i32> {
    match cmd {
        Command::Case(c) => case::execute(c, ctx, input, out),
        Command::Mail(c) => mail::execute_mail(c, ctx, out),
        Command::Quarantine(c) => mail::execute_quarantine(c, ctx, out),
        Command::Sla { project, json } => mail::sla(ctx, project.as_deref(), *json, out),
        Command::Ingest { .. } => mail::ingest(ctx, &input.unwrap_or_default(), out),
        Command::SecurityTxt { project } => keys::security_txt(ctx, project.as_deref(), out),
        Command::Status { project, json } => mail::status(ctx, project.as_deref(), *json, out),
        Command::Stats { project, since, json } => stats::stats(ctx, project.as_deref(), since.as_deref(), *json, out),
        Command::Keys(k) => keys::execute_store(k, ctx, input, out),
        Command::Reporter(c) => reporter::execute(c, ctx, out),
        Command::Store(store::StoreCmd::Reindex { json }) => search::reindex(*json, ctx, out),
        Command::Run { .. } | Command::Check { .. } | Command::Assets { .. } | Command::Store(_) => Ok(EXIT_USAGE),
    }
}

/// Serves a control-socket request inside the daemon.
pub fn handle_request(shared: &Shared, req: control::Request) -> control::Response {
    use base64::Engine;
    let mut argv = vec!["secintake".to_owned()];
    argv.extend(req.args);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => return control::Response { code: EXIT_USAGE, stdout: String::new(), stderr: e.to_string() },
    };
    let input = match req.input.map(|s| base64::engine::general_purpose::STANDARD.decode(s)).transpose() {
        Ok(i) => i,
        Err(e) => {
            let code = if matches!(cli.command, Command::Ingest { .. }) { EXIT_TEMPFAIL } else { EXIT_FAIL };
            return control::Response {
                code,
                stdout: String::new(),
                stderr: format!("secintake: bad input in the control request: {e}\n"),
            };
        }
    };
    let ctx = Ctx { cfg: shared.cfg(), store: shared.store.clone(), shared: Some(shared.clone()), user: req.user };
    let mut out = Vec::new();
    let (code, stderr) = match execute(&cli.command, &ctx, input, &mut out) {
        Ok(code) => (code, String::new()),
        Err(e) => error_code(&e),
    };
    // A message the daemon could not store (its store failing, say) is the MTA's to
    // retry, exactly as when `ingest` runs locally.
    let code = if code == EXIT_FAIL && matches!(cli.command, Command::Ingest { .. }) { EXIT_TEMPFAIL } else { code };
    if matches!(
        cli.command,
        Command::Ingest { .. }
            | Command::Quarantine(mail::QuarantineCmd::Retry { .. })
            | Command::Case(case::CaseCmd::Reply { .. })
            | Command::Case(case::CaseCmd::Ask { .. })
            | Command::Case(case::CaseCmd::Readin(case::ReadinCmd::Add { .. }))
    ) {
        shared.wake.notify_one();
    }
    control::Response { code, stdout: String::from_utf8_lossy(&out).into_owned(), stderr }
}

/// An error's exit code and its message, escaped for the terminal (errors quote
/// server answers, file names, ids).
fn error_code(e: &anyhow::Error) -> (i32, String) {
    let (code, msg) = if let Some(Exit(code, msg)) = e.downcast_ref::<Exit>() {
        (*code, msg.clone())
    } else if let Some(crate::service::StartError::Config(msg)) = e.downcast_ref::<crate::service::StartError>() {
        (EXIT_USAGE, msg.clone())
    } else {
        (EXIT_FAIL, format!("{e:#}"))
    };
    let msg = term::lines(msg.trim_end()).collect::<Vec<_>>().join("\n");
    // A refusal starts with its status code, for the MTA's bounce (see EXIT_DATAERR).
    if code == EXIT_DATAERR { (code, format!("{msg}\n")) } else { (code, format!("secintake: {msg}\n")) }
}

/// Entry point from main: returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    let ingest = matches!(cli.command, Command::Ingest { .. });
    let code = run_command(cli).await;
    // `ingest` is an MTA's delivery command: whatever stopped it (config, store, daemon),
    // the message was not stored, so EX_TEMPFAIL makes the MTA keep it and retry instead
    // of bouncing a report back to its sender. The one exception is a deliberate
    // refusal (EX_DATAERR, a message over the size limit), which must bounce.
    if ingest && code != EXIT_OK && code != EXIT_DATAERR { EXIT_TEMPFAIL } else { code }
}

async fn run_command(cli: Cli) -> i32 {
    match &cli.command {
        Command::Keys(keys::KeysCmd::Generate { uid, out }) => {
            return report(keys::generate(uid, out));
        }
        Command::Assets { out } => {
            return report(assets(out));
        }
        Command::Run { once } => {
            let cfg = match load_config(&cli) {
                Ok(c) => Arc::new(c),
                Err(code) => return code,
            };
            if let Some(msg) = foreign_store(&cfg.store_path) {
                eprintln!("secintake: {msg}");
                return EXIT_FAIL;
            }
            let (tx, rx) = tokio::sync::watch::channel(false);
            let reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let wake = Arc::new(tokio::sync::Notify::new());
            spawn_signal_handler(tx, reload.clone(), wake.clone());
            let handler: control::Handler = Arc::new(handle_request);
            let handler = if *once { None } else { Some(handler) };
            return report(service::run(cfg, *once, rx, handler, reload, wake).await.map(|_| EXIT_OK));
        }
        Command::Store(c) if !matches!(c, store::StoreCmd::Reindex { .. }) => {
            // In the client: it logs in to IMAP and writes a folder the user names.
            let cfg = match load_config(&cli) {
                Ok(c) => Arc::new(c),
                Err(code) => return code,
            };
            return report(store::execute(c, cfg, &mut std::io::stdout().lock()).await);
        }
        Command::Check { online } => {
            // A config with problems is still checked as far as it goes: keys and certs
            // too, so an admin sees everything in one run.
            let (cfg, problems) = match Config::load_lenient(&config_path(&cli)) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("secintake: {e}");
                    return EXIT_USAGE;
                }
            };
            return check::check(&cfg, problems, *online).await;
        }
        _ => {}
    }
    // Commands on the user's own files run here, as the user, never in the daemon.
    if let Command::Keys(
        k @ (keys::KeysCmd::ImportTeam { .. } | keys::KeysCmd::Wkd { .. } | keys::KeysCmd::Renew { .. }),
    ) = &cli.command
    {
        let cfg = match load_config(&cli) {
            Ok(c) => c,
            Err(code) => return code,
        };
        return report(keys::execute_local(k, &cfg, &mut std::io::stdout().lock()));
    }
    let is_ingest = matches!(cli.command, Command::Ingest { .. });
    // `ingest` is an MTA's delivery: whatever keeps it from storing the message now is
    // temporary (75, the MTA retries), except a refusal for good (65, the MTA bounces).
    let fail = if is_ingest { EXIT_TEMPFAIL } else { EXIT_FAIL };
    let cfg_path = config_path(&cli);
    let loaded = Config::load(&cfg_path);
    // Input is read here, once, whether the daemon or this process will use it, and
    // never more than the limit allows: a message over it is refused unread.
    let input_file: Option<String> = match &cli.command {
        Command::Ingest { file } | Command::Case(case::CaseCmd::Reply { file, template: None, .. }) => {
            Some(file.clone())
        }
        Command::Case(case::CaseCmd::Readin(case::ReadinCmd::Add { cert, .. })) => Some(cert.clone()),
        Command::Keys(keys::KeysCmd::Reporter(keys::ReporterCmd::Set { file, .. })) => Some(file.clone()),
        Command::Case(case::CaseCmd::Note { file: Some(f), .. }) => Some(f.clone()),
        Command::Case(case::CaseCmd::Ask { text: Some(f), .. }) => Some(f.clone()),
        Command::Case(case::CaseCmd::Note { file: None, text, .. }) if text.is_empty() => Some("-".into()),
        _ => None,
    };
    let limit = match &loaded {
        Ok(c) => c.limits.max_message_bytes,
        Err(_) => crate::config::DEFAULT_MAX_MESSAGE_BYTES,
    };
    let input = match input_file.as_deref().map(|f| read_input(f, limit)) {
        Some(Ok(Input::Whole(b))) => Some(b),
        Some(Ok(Input::TooLarge(n))) => {
            if !is_ingest {
                eprintln!("secintake: the input is {n} bytes, over limits.max_message_bytes ({limit} bytes)");
                return EXIT_USAGE;
            }
            if loaded.is_err() {
                eprintln!(
                    "secintake: the input is over {limit} bytes and the config does not load, so its limit is unknown; fix the config"
                );
                return fail;
            }
            eprintln!("{}", too_large(n, limit));
            return EXIT_DATAERR;
        }
        Some(Err(e)) => {
            eprintln!("secintake: {e:#}");
            return fail;
        }
        None => None,
    };
    // Through the daemon when it runs. Its socket is found even when the config file
    // is being edited and does not validate (the daemon runs on what it loaded).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = strip_config_arg(args);
    let req = control::Request {
        args,
        input: input.as_ref().map(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }),
        user: os_user(),
    };
    let socket = match &loaded {
        Ok(c) => Some(control::socket_path(c)),
        Err(_) => Config::store_path_hint(&cfg_path).map(|p| p.join("control.sock")),
    };
    if let Some(socket) = socket {
        match control::call_at(&socket, &req) {
            Ok(Some(resp)) => {
                if let Err(e) = &loaded {
                    eprint!("secintake: warning: the daemon answers, but {e}");
                }
                print!("{}", resp.stdout);
                eprint!("{}", resp.stderr);
                return resp.code;
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("secintake: talking to the running daemon: {e:#}");
                return fail;
            }
        }
    }
    let cfg = match loaded {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprint!("secintake: {e}");
            return if is_ingest { EXIT_TEMPFAIL } else { EXIT_USAGE };
        }
    };
    if let Some(msg) = foreign_store(&cfg.store_path) {
        eprintln!("secintake: {msg}");
        return fail;
    }
    // Locally. If the store is held (the daemon starting, another command), wait a
    // little, asking the socket again in case the daemon came up meanwhile.
    let start = std::time::Instant::now();
    let store = loop {
        match crate::atrest::try_open_at(&cfg, &cfg.store_path, None) {
            Ok(s) => break s,
            Err(crate::store::OpenError::Locked(_)) if start.elapsed() < std::time::Duration::from_secs(10) => {
                if let Ok(Some(resp)) = control::call(&cfg, &req) {
                    print!("{}", resp.stdout);
                    eprint!("{}", resp.stderr);
                    return resp.code;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => {
                eprintln!("secintake: {e}");
                return if matches!(cli.command, Command::Ingest { .. }) { EXIT_TEMPFAIL } else { EXIT_FAIL };
            }
        }
    };
    let ctx = Ctx { cfg: cfg.clone(), store: store.clone(), shared: None, user: os_user() };
    let mut out = std::io::stdout().lock();
    let code = match execute(&cli.command, &ctx, input, &mut out) {
        Ok(c) => c,
        Err(e) => {
            let (code, msg) = error_code(&e);
            eprint!("{msg}");
            if code == EXIT_FAIL && matches!(cli.command, Command::Ingest { .. }) { EXIT_TEMPFAIL } else { code }
        }
    };
    drop(out);
    // What a local ingest or retry queued goes out now, as `run --once` would send it.
    if code == EXIT_OK
        && matches!(
            cli.command,
            Command::Ingest { .. }
                | Command::Quarantine(mail::QuarantineCmd::Retry { .. })
                | Command::Case(case::CaseCmd::Reply { .. })
                | Command::Case(case::CaseCmd::Ask { .. })
                | Command::Case(case::CaseCmd::Readin(case::ReadinCmd::Add { .. }))
        )
        && let Err(e) = crate::outbox::send_due(&store, &cfg, chrono::Utc::now()).await
    {
        tracing::warn!(error = %format!("{e:#}"), "Outbox pass after ingest failed; `run` will retry");
    }
    code
}

/// Our effective uid, read from /proc so no libc call is needed.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// A user name for `uid` from /etc/passwd (systemd's dynamic users are not there).
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// Why this process must not open the store at `path` itself: it belongs to another
/// user (the service's), and sled would leave files that user cannot open (root's,
/// say, after `sudo secintake case list` while the service is stopped). `None` when
/// it is ours or does not exist yet.
fn foreign_store(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(path).ok()?.uid();
    let me = current_uid();
    if owner == me {
        return None;
    }
    let (who, sudo) = match user_name(owner) {
        Some(n) => (format!("{n} (uid {owner})"), format!("sudo -u {n}")),
        None => (format!("uid {owner}"), format!("sudo -u '#{owner}'")),
    };
    Some(format!(
        "the store {} (store.path) belongs to {who}, and this command runs as uid {me}: it would leave files \
         the service cannot open. Run it as that user ({sudo} secintake ...), or start the service \
         (while it runs, commands go through its socket)",
        path.display()
    ))
}

/// Man pages (one per command, `secintake.1`, `secintake-case.1`, ...) and bash, zsh
/// and fish completions, generated from the same clap definitions the binary parses.
fn assets(out: &std::path::Path) -> Result<i32> {
    use clap::CommandFactory;
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd.clone(), &man).context("Writing man pages")?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "secintake", &comp).context("Writing completions")?;
    }
    println!("{}", out.display());
    Ok(EXIT_OK)
}

fn report(r: Result<i32>) -> i32 {
    match r {
        Ok(c) => c,
        Err(e) => {
            let (code, msg) = error_code(&e);
            eprint!("{msg}");
            code
        }
    }
}

/// What was read from a command's input file or stdin.
enum Input {
    Whole(Vec<u8>),
    /// Over the limit: this many bytes (stdin is read to its end, not kept, so the
    /// writer, an MTA, sees its message consumed and reads our answer).
    TooLarge(u64),
}

/// Reads `file` (or stdin for `-`), keeping at most `limit` bytes in memory.
fn read_input(file: &str, limit: u64) -> Result<Input> {
    use std::io::Read;
    let read = |r: &mut dyn Read| -> std::io::Result<Input> {
        let mut b = Vec::new();
        r.take(limit + 1).read_to_end(&mut b)?;
        if b.len() as u64 <= limit {
            return Ok(Input::Whole(b));
        }
        let rest = std::io::copy(r, &mut std::io::sink())?;
        Ok(Input::TooLarge(b.len() as u64 + rest))
    };
    if file == "-" {
        read(&mut std::io::stdin().lock()).context("Reading the message from stdin")
    } else {
        let mut f = std::fs::File::open(file).with_context(|| format!("Reading {file}"))?;
        let size = f.metadata().with_context(|| format!("Reading {file}"))?.len();
        if size > limit {
            return Ok(Input::TooLarge(size));
        }
        read(&mut f).with_context(|| format!("Reading {file}"))
    }
}

/// The refusal of a message over the limit, as the sender will read it in the bounce:
/// an RFC 3463 status code first (5.2.3, message length exceeds administrative limit).
pub fn too_large(size: u64, limit: u64) -> String {
    format!(
        "5.2.3 secintake: the message is {size} bytes, over this address's limit of {limit} bytes \
         (limits.max_message_bytes); send the report without large attachments, or share them by link"
    )
}

/// Drops `--config X` / `--config=X` (the daemon has its own).
fn strip_config_arg(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--config" {
            skip = true;
            continue;
        }
        if a.starts_with("--config=") {
            continue;
        }
        out.push(a);
    }
    out
}

/// SIGTERM/SIGINT stop the daemon (after the message in hand); SIGHUP asks for a
/// reload of config, keys and team certs.
fn spawn_signal_handler(
    tx: tokio::sync::watch::Sender<bool>,
    reload: Arc<std::sync::atomic::AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("Cannot install signal handlers");
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: finishing the message in hand, then stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: finishing the message in hand, then stopping"); break; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    reload.store(true, std::sync::atomic::Ordering::SeqCst);
                    wake.notify_one();
                }
            }
        }
        // The contract's 10 s hold in every state: a loop wedged in the store (sled
        // can block for good after a disk error) never sees the stop request.
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(9500));
            tracing::error!("Still running 9.5 s after the stop request; exiting");
            std::process::exit(0);
        });
        let _ = tx.send(true);
    });
}

/// Prints rows as an aligned table; every cell is escaped for the terminal.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| term::escape(c).into_owned()).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == n { c } else { format!("{c:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.iter().map(|s| s.to_string()).collect()))?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command (groups included) shows an example in its help.
    #[test]
    fn every_command_has_an_example() {
        use clap::CommandFactory;
        fn walk(c: &clap::Command, path: String, missing: &mut Vec<String>) {
            let has = c.get_after_help().map(|h| h.to_string().contains("Example")).unwrap_or(false);
            if !has && !c.is_hide_set() && c.get_name() != "help" {
                missing.push(path.clone());
            }
            for s in c.get_subcommands() {
                walk(s, format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "secintake".into(), &mut missing);
        assert!(missing.is_empty(), "no example in the help of: {missing:#?}");
    }

    /// Every flag and argument says what it is for, and flags that take one of a fixed set
    /// of values list them in --help (clap checks them too).
    #[test]
    fn every_flag_has_help_and_fixed_values_are_listed() {
        use clap::CommandFactory;
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in c.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let cmd = Cli::command();
        walk(&cmd, "secintake", &mut missing);
        assert!(missing.is_empty(), "no help text for: {missing:#?}");

        let find = |path: &[&str], arg: &str| -> Vec<String> {
            let mut c = &cmd;
            for p in path {
                c = c.find_subcommand(p).unwrap_or_else(|| panic!("no subcommand {p}"));
            }
            let a = c.get_arguments().find(|a| a.get_id() == arg).unwrap_or_else(|| panic!("no --{arg}"));
            a.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect()
        };
        assert_eq!(find(&["case", "set"], "status"), crate::case::Status::ALL.map(|s| s.as_str().to_owned()));
        assert_eq!(find(&["case", "list"], "status").len(), 8);
        assert_eq!(find(&["case", "set"], "reason"), crate::case::REJECT_REASONS);
        assert_eq!(find(&["case", "list"], "severity"), ["none", "low", "medium", "high", "critical"]);
        assert_eq!(find(&["case", "export"], "format"), ["osv", "cve5", "csaf", "cra"]);
        assert_eq!(find(&["case", "list"], "flag"), crate::triage::Flag::ALL.map(|f| f.as_str().to_owned()));
        assert_eq!(find(&["case", "ask"], "field"), crate::triage::Field::ALL.map(|f| f.as_str().to_owned()));
        assert_eq!(find(&["case", "set"], "cra_stage"), ["early-warning", "notification", "final"]);
    }
}
