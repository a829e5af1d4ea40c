//! The `lariat` binary: parses the command line, loads the layered configuration and hands each
//! subcommand to the core. Errors leave with an exit code chosen by their [`ErrorCode`].

mod bench;
mod bench_chat;
mod cli;
mod eval_cmd;
mod http;
mod source_cmd;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use base::ErrorCode;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: glibc's adaptive mmap threshold kept every argon2 hash's
/// 19 MiB after it was freed (RSS grew ~19 MB per sign-up, without bound; see
/// scripts/bench-abuse.py); mimalloc reuses and returns it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "lariat",
    version,
    about = "A self-hostable knowledge assistant: ingest documents, search them"
)]
struct Cli {
    /// Where lariat keeps its database and indexes [default: the user's data dir]/lariat
    #[arg(long, global = true, env = "LARIAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML configuration file [default: DATA_DIR/lariat.toml if it exists]
    #[arg(long, global = true, env = "LARIAT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest files and folders (.pdf .md .markdown .html .htm .txt .jsonl) into a collection
    Ingest(cli::IngestArgs),
    /// Search a collection and print ranked passages
    Search(cli::SearchArgs),
    /// List documents with their chunk counts
    Ls(cli::LsArgs),
    /// Delete a document (by id, or by source path) from every store
    Rm(cli::RmArgs),
    /// Verify that SQL, vector and lexical stores hold exactly the same chunks
    Check(cli::CheckArgs),
    /// Rebuild the vector and lexical indexes from SQL (re-embedding collections built with another model)
    Reindex,
    /// Serve the HTTP API
    Serve(cli::ServeArgs),
    /// Serve the knowledge base over MCP on stdin/stdout, as the user of LARIAT_API_KEY (or as
    /// the local operator when it is unset); `lariat mcp site rodeo` serves a domain's site tools
    Mcp(cli::McpArgs),
    /// Manage accounts (create the first admin, set roles and plans)
    #[command(subcommand)]
    Admin(cli::AdminCommand),
    /// Manage collections (visibility, instructions, members)
    #[command(subcommand)]
    Collection(cli::CollectionCommand),
    /// Write a conversation (of LARIAT_API_KEY's user) as PDF, Markdown or JSON
    Export(cli::ExportArgs),
    /// Scheduled jobs: list them, their history, run one now, or run them without serving
    #[command(subcommand)]
    Jobs(cli::JobsCommand),
    /// A collection's sources (a folder, web pages, a sitemap) synced on a schedule, as the
    /// user of LARIAT_API_KEY (or as the local operator when it is unset)
    #[command(subcommand)]
    Source(source_cmd::SourceCommand),
    /// Evaluate retrieval quality and speed on a labelled dataset
    Eval(eval_cmd::EvalArgs),
    /// Measure ingestion and search speed on a BEIR-layout corpus (e.g. ../shared/data/scifact)
    Bench(cli::BenchArgs),
    /// Measure the chat path (time to first token, concurrent streams, server memory) against a
    /// zero-latency local provider, on the collections in the data dir
    BenchChat(bench_chat::BenchChatArgs),
    /// Internal: parse one file from stdin under limits, for the ingestion of untrusted files
    #[command(name = ingest::sandbox::WORKER_COMMAND, hide = true)]
    ParseWorker(ParseWorkerArgs),
}

#[derive(clap::Args, Debug)]
struct ParseWorkerArgs {
    #[arg(long)]
    memory_bytes: u64,
    #[arg(long)]
    cpu_seconds: u64,
}

/// Exit codes, one per error code (2 is also clap's code for bad arguments).
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::Internal => 1,
        ErrorCode::InvalidInput => 2,
        ErrorCode::NotFound => 3,
        ErrorCode::Conflict => 4,
        ErrorCode::Unavailable | ErrorCode::Upstream => 5,
        ErrorCode::Unauthorized | ErrorCode::Forbidden => 9,
        ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 10,
    }
}

/// Ingestion finished but some files failed.
pub const EXIT_PARTIAL: u8 = 6;
/// `lariat check` found the stores out of step.
pub const EXIT_INCONSISTENT: u8 = 7;

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
    match runtime.block_on(cli::run(cli)) {
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
