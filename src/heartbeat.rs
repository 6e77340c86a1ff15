//! The daemon's sign of life for systemd's watchdog.
//!
//! Work that can take long (an IMAP command, a 50 MiB FETCH in 4 MiB steps, an SMTP
//! attempt, a message through the pipeline) calls [`beat`] as it makes progress; the
//! service pings the watchdog only while the last beat is recent ([`stalled`]). A
//! daemon that makes progress is never killed for being slow; one that is wedged
//! stops beating and systemd restarts it. Process-wide: there is one daemon loop.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the process started counting (monotonic: a clock step changes nothing).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Milliseconds since [`origin`] at the last beat.
static LAST: AtomicU64 = AtomicU64::new(0);

/// Records progress now.
pub fn beat() {
    LAST.store(origin().elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// How long since the last beat.
pub fn since() -> Duration {
    let now = origin().elapsed().as_millis() as u64;
    Duration::from_millis(now.saturating_sub(LAST.load(Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beat_resets_the_age() {
        beat();
        assert!(since() < Duration::from_secs(5));
    }
}
