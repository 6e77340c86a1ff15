//! The memory allocator of the programs that run the pipeline (the `secintake` binary
//! and the benchmark's floor): jemalloc instead of glibc's malloc.
//!
//! Measured on the backlog benchmark (`tests/bench/backlog.sh`, intake only, 2 cores):
//! with glibc's malloc the daemon's peak RSS grew from 109 MiB at 1,000 reports to
//! 196 MiB at 10,000 while its live heap grew by 20 MB (heaptrack): freed memory stayed
//! in per-thread arenas, fragmented by Sequoia's 4 MiB partial-body buffers between
//! sled's long-lived cache entries. jemalloc returns what it frees (the decay options
//! below) and made the same pass about a quarter faster at 10,000 (it is
//! allocation-heavy: Sequoia, sled, serde).
//!
//! A binary opts in with [`crate::product_allocator!`]; the library itself (tests, the
//! fuzz target under its sanitizer) keeps the system allocator.

pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (`malloc_conf`, see jemalloc(3)):
/// two arenas (two cores' worth), freed pages returned to the system after a second
/// instead of ten, and by a background thread rather than on the allocating path.
pub const MALLOC_CONF: &std::ffi::CStr = c"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";

/// Makes jemalloc, with [`MALLOC_CONF`], the allocator of the binary it is used in.
#[macro_export]
macro_rules! product_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;

        /// jemalloc reads its options from this symbol (the crate prefixes its names
        /// with `_rjem_`); the type is the C declaration's, `const char *`.
        #[unsafe(export_name = "_rjem_malloc_conf")]
        static MALLOC_CONF: Option<&'static std::ffi::c_char> =
            Some(unsafe { &*$crate::allocator::MALLOC_CONF.as_ptr() });
    };
}
