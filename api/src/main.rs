//! The `lariat` binary: parses the command line, loads the layered configuration and hands each
//! subcommand to the core. Errors leave with an exit code chosen by their [`ErrorCode`].

mod cli;
mod http;
mod server;
mod session;
mod web;

use std::process::ExitCode;

use base::ErrorCode;
use clap::Parser;
use cli::{Cli, Command, exit_code};

/// mimalloc instead of glibc's malloc: glibc's adaptive mmap threshold kept every argon2 hash's
/// 19 MiB after it was freed (RSS grew ~19 MB per sign-up, without bound; see
/// scripts/bench-abuse.py); mimalloc reuses and returns it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The parser worker needs no configuration, logging or runtime: it limits itself first.
    if let Command::ParseWorker(args) = &cli.command {
        return ExitCode::from(ingest::sandbox::serve_worker(
            args.memory_bytes,
            args.cpu_seconds,
        ));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("LARIAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // LARIAT_LOG_FORMAT=json: one JSON object per line, span fields (request ids) included.
    if std::env::var("LARIAT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(cli::run(cli));
    // work nobody waits for any more (an embedding whose request was ended) must not hold the
    // process: the write protocol recovers whatever it leaves
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e
                .downcast_ref::<base::Error>()
                .map(|k| k.code())
                .unwrap_or(ErrorCode::Internal);
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(code))
        }
    }
}
