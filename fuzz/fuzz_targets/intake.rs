//! Fuzz target: the real intake path, `Pipeline::ingest` (recognise, read, decide,
//! record), on arbitrary bytes, with the test intake keys (so encrypted inputs are
//! really decrypted) and a real store in a temporary directory, replaced every few
//! thousand inputs so it does not grow without bound. Must never panic, hang or
//! allocate past the limits; every input must end as exactly one recorded outcome.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use secintake::config::Config;
use secintake::pipeline::Pipeline;
use secintake::store::Store;

/// Inputs per store before it is replaced.
const PER_STORE: u32 = 5_000;

/// Fields drop in order: the store closes before its folder is removed.
struct World {
    pipeline: Pipeline,
    runs: u32,
    dir: tempfile::TempDir,
}

fn world() -> World {
    use std::os::unix::fs::PermissionsExt;
    // libfuzzer-sys aborts on any panic through its hook; the product catches the
    // panics it knows (Sequoia's on some truncated SEIPDv1 packets) and quarantines the
    // message, so that catch must be allowed to happen: a panic that escapes the
    // pipeline still aborts the run.
    // The message is still printed, so an escaping panic says what it was.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    // A tmpfs when there is one: the store fsyncs every commit.
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::Builder::new().prefix("secintake-fuzz-").tempdir_in(base).expect("temp dir");
    let d = dir.path();
    let mut tsk = include_bytes!("../../keys/test-intake.key.asc").to_vec();
    tsk.extend_from_slice(include_bytes!("../../keys/test-intake-librepgp.key.asc"));
    tsk.extend_from_slice(include_bytes!("../../keys/test-intake-rfc9580.key.asc"));
    std::fs::write(d.join("intake.key.asc"), tsk).expect("key");
    std::fs::write(d.join("pw"), "x").expect("pw");
    for f in ["intake.key.asc", "pw"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600)).expect("mode");
    }
    std::fs::create_dir_all(d.join("team")).expect("team");
    std::fs::write(d.join("team/team.asc"), include_bytes!("../../keys/team.pub.asc")).expect("team cert");
    let text = "[intake]\naddress = \"security@intake.test\"\n[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[keys]\nintake_secret = \"intake.key.asc\"\nteam_certs = \"team\"\n\
         [team]\nlist_address = \"team@team.test\"\n[store]\npath = \"state\"\n[limits]\nmax_plaintext_bytes = \"4MiB\"\nmax_message_bytes = \"4MiB\"\n";
    let cfg = std::sync::Arc::new(Config::parse(text, &d.join("secintake.toml")).expect("config"));
    let store = Store::open(&cfg.store_path).expect("store");
    let pipeline = Pipeline::load(cfg, store).expect("pipeline");
    World { pipeline, runs: 0, dir }
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|w| w.runs >= PER_STORE) {
        // Drop the old store (its folder goes with its TempDir) before opening anew.
        *guard = None;
        *guard = Some(world());
    }
    let w = guard.as_mut().expect("world");
    w.runs += 1;
    let now = chrono::Utc::now();
    // Every input ends as exactly one outcome; an Err is a store failure, which a
    // tmpfs does not have.
    let out = w.pipeline.ingest(data, None, now, now).expect("an outcome for every input");
    let _ = (out, &w.dir);
});
