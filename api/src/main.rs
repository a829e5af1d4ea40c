//! The `lariat` binary: everything is in the library (`lib.rs`), bar the allocator.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: glibc's adaptive mmap threshold kept every argon2 hash's
/// 19 MiB after it was freed (RSS grew ~19 MB per sign-up, without bound; see
/// scripts/bench-abuse.py); mimalloc reuses and returns it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option number for the purge delay (`mi_option_e` in the bundled v3 `mimalloc.h`;
/// the crate leaves the numbers out "for stability").
const MI_OPTION_PURGE_DELAY: i32 = 15;

fn main() -> ExitCode {
    tune_allocator();
    lariat_api::main()
}

/// Freed memory goes back to the system at once (mimalloc waits 10 ms by default, and 100 in its
/// arenas; the `no_thp` feature keeps those arenas off 2 MB pages too): under 1,000 streaming
/// chats the server's peak RSS fell from 495 to 357 MB (`lariat bench-chat`, the README's
/// benchmarks). Called first in `main`: mimalloc's options are not thread safe. A MIMALLOC_*
/// variable in the environment is overridden.
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: a plain integer option, set while the process has one thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}
