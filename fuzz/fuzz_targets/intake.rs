//! Fuzz target: the real intake path, `Pipeline::ingest` (recognise, read, decide,
//! record), on arbitrary bytes, with the test intake keys (so encrypted inputs are
//! really decrypted) and the product's store (`atrest::open`: sealed, durable commits) in a
//! folder on a tmpfs. Must never panic, hang or allocate past the limits; every input
//! must end as exactly one recorded outcome.
//!
//! Cost per input: the keys and certs are loaded once per process; the store is
//! replaced every `PER_STORE` inputs (a fresh store under the same pipeline), since a
//! store that keeps growing makes every input slower (sled's tree, the scan of the
//! quarantine list for a new case's earlier unreadable attempts) without reaching
//! new code. Environment `SECINTAKE_FUZZ_PER_STORE` overrides it.
//!
//! Files: everything lives in `secintake-fuzz-<pid>` under /dev/shm (or /tmp); it is
//! removed at a normal exit, and folders of processes that are gone (a crash, a kill)
//! are removed when the next run starts.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use secintake::config::Config;
use secintake::pipeline::Pipeline;

/// Inputs per store before it is replaced.
const PER_STORE: u32 = 500;

const PREFIX: &str = "secintake-fuzz-";

struct World {
    pipeline: Pipeline,
    /// Inputs run on the current store.
    runs: u32,
    per_store: u32,
    /// Stores opened so far (each in its own folder `state-<n>`).
    stores: u32,
    dir: PathBuf,
}

fn base() -> &'static Path {
    // A tmpfs when there is one: the store fsyncs every commit.
    if Path::new("/dev/shm").is_dir() { Path::new("/dev/shm") } else { Path::new("/tmp") }
}

fn process_dir() -> PathBuf {
    base().join(format!("{PREFIX}{}", std::process::id()))
}

/// Removes the folders of fuzz processes that no longer run.
fn sweep() {
    let Ok(rd) = std::fs::read_dir(base()) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
}

/// At a normal exit (libFuzzer ends with exit(), never dropping statics).
extern "C" fn remove_process_dir() {
    let _ = std::fs::remove_dir_all(process_dir());
}

fn world() -> World {
    use std::os::unix::fs::PermissionsExt;
    // libfuzzer-sys aborts on any panic through its hook; the product catches the
    // panics it knows (Sequoia's on some truncated SEIPDv1 packets) and quarantines the
    // message, so that catch must be allowed to happen: a panic that escapes the
    // pipeline still aborts the run.
    // The message is still printed, so an escaping panic says what it was.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    sweep();
    let d = process_dir();
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("fuzz dir");
    // SAFETY: registers a plain function with no captured state.
    unsafe { atexit(remove_process_dir) };
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
         [team]\nlist_address = \"team@team.test\"\n[store]\npath = \"state-0\"\n[limits]\nmax_plaintext_bytes = \"4MiB\"\nmax_message_bytes = \"4MiB\"\n";
    let cfg = std::sync::Arc::new(Config::parse(text, &d.join("secintake.toml")).expect("config"));
    let store = secintake::atrest::open(&cfg).expect("store");
    let pipeline = Pipeline::load(cfg, store).expect("pipeline");
    let per_store = std::env::var("SECINTAKE_FUZZ_PER_STORE").ok().and_then(|v| v.parse().ok()).unwrap_or(PER_STORE);
    World { pipeline, runs: 0, per_store, stores: 1, dir: d }
}

impl World {
    /// A fresh, empty store under the same pipeline; the old one is closed, then its
    /// folder removed.
    fn next_store(&mut self) {
        let old = self.dir.join(format!("state-{}", self.stores - 1));
        let new = self.dir.join(format!("state-{}", self.stores));
        self.pipeline.store = secintake::atrest::try_open_at(&self.pipeline.cfg, &new, None).expect("store");
        self.stores += 1;
        let _ = std::fs::remove_dir_all(old);
        self.runs = 0;
    }
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    let w = guard.get_or_insert_with(world);
    if w.runs >= w.per_store {
        w.next_store();
    }
    w.runs += 1;
    let now = chrono::Utc::now();
    // Every input ends as exactly one outcome; an Err is a store failure, which a
    // tmpfs does not have.
    let _out = w.pipeline.ingest(data, None, now, now).expect("an outcome for every input");
});
