//! The `secintake` binary: parse the command line, set up logging (stderr only), run,
//! and map the outcome to the contract's exit codes (0 ok, 1 failure, 2 usage/config).

use clap::Parser;

secintake::product_allocator!();

fn main() {
    let cli = match secintake::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("secintake: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(secintake::cli::main(cli));
    // Do not wait for blocking tasks (a stuck DNS lookup, say) on the way out.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}

/// Libraries whose debug/trace output carries protocol traffic: async-imap traces every
/// command (LOGIN with the password) and every response (message bodies). They are
/// capped at `warn` whatever the filter asks: secrets never reach the logs.
const CHATTY: &[&str] =
    &["async_imap", "imap_proto", "lettre", "rustls", "tokio_rustls", "sequoia_openpgp", "sled", "mail_parser"];

/// Logs to stderr; `SECINTAKE_LOG` or `RUST_LOG` filter (default `info`);
/// `SECINTAKE_LOG_FORMAT=json` for JSON lines. Under journald (`JOURNAL_STREAM` set)
/// timestamps are left to the journal. Colour only when stderr is a terminal (and
/// `NO_COLOR` is unset): escape codes in a log file, a pipe or the journal are noise.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        std::env::var("SECINTAKE_LOG").ok().or_else(|| std::env::var("RUST_LOG").ok()).unwrap_or_else(|| "info".into());
    let mut directives: Vec<String> = filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !CHATTY.iter().any(|c| d.starts_with(c)))
        .map(str::to_owned)
        .collect();
    directives.extend(CHATTY.iter().map(|c| format!("{c}=warn")));
    let filter = EnvFilter::try_new(directives.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let json = std::env::var("SECINTAKE_LOG_FORMAT").map(|f| f == "json").unwrap_or(false);
    match (json, std::env::var_os("JOURNAL_STREAM").is_some()) {
        (true, _) => builder.json().init(),
        (false, true) => builder.without_time().init(),
        (false, false) => builder.init(),
    }
}
