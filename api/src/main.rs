//! The `lariat` binary: everything is in the library (`lib.rs`), bar the allocator.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: glibc's adaptive mmap threshold kept every argon2 hash's
/// 19 MiB after it was freed (RSS grew ~19 MB per sign-up, without bound; see
/// scripts/bench-abuse.py); mimalloc reuses and returns it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    lariat_api::main()
}
