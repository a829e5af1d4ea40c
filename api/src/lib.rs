//! The adapters behind the `lariat` binary, each thin: the command line ([`cli`]), the REST API
//! with its OpenAI-compatible and MCP endpoints (`http`), the web app (`web`) and the server that
//! mounts them (`server`). Each parses its input, calls one service of the core and maps the
//! result; none decides who may do what. `main.rs` installs the allocator and calls [`main`].
//!
//! A library with a one-line binary so that its tests (`tests/web`) link it: as the binary's own
//! unit tests they compiled every adapter a second time under `cfg(test)`, two of a cold build's
//! 25 minutes. Hence `test = false`: a test goes in `tests/`, against what this root exports.

mod cli;
mod http;
mod server;
pub mod session;
mod web;

use std::process::ExitCode;

use base::ErrorCode;
use clap::Parser;
use cli::{Cli, Command, exit_code};

pub use cli::pipeline;
pub use server::router;
pub use web::assets::url as asset_url;
pub use web::render;

/// Parses the command line, loads the layered configuration and hands the subcommand to the
/// core; errors leave with an exit code chosen by their [`ErrorCode`].
pub fn main() -> ExitCode {
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
