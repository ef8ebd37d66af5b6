//! The `jemalloc` feature: jemalloc as the program's allocator, with a background thread that
//! returns freed memory to the system within a second. After 1,000 connections each held an
//! unfinished 64 KiB message, glibc's allocator kept 35 of the 135 MiB they took and mimalloc
//! all of it; jemalloc so configured came back within 13% of the level before
//! (`jamsocket-cli/tests/cli/attacks.rs`).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its settings from this symbol: dirty pages are returned after a second, by a
/// background thread so that idle worker threads return theirs too.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub(crate) static malloc_conf: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
