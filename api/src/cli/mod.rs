//! The subcommands: each parses its arguments into the core's types, calls the façade and prints.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use base::ErrorCode;
use clap::{Args, Parser, Subcommand};
use service::{Config, Service};

mod admin;
mod bench;
mod bench_chat;
mod bench_cluster;
mod bench_scale;
mod corpus;
mod eval_cmd;
mod shared;
mod source_cmd;

use admin::*;
use corpus::*;
pub use shared::pipeline;
use shared::*;

#[derive(Parser, Debug)]
#[command(
    name = "lariat",
    version,
    about = "A self-hostable knowledge assistant: ingest documents, search them"
)]
pub struct Cli {
    /// Where lariat keeps its database and indexes [default: the user's data dir]/lariat
    #[arg(long, global = true, env = "LARIAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML configuration file [default: DATA_DIR/lariat.toml if it exists]
    #[arg(long, global = true, env = "LARIAT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest files and folders (.pdf .md .markdown .html .htm .txt .jsonl) into a collection
    Ingest(IngestArgs),
    /// Search a collection and print ranked passages
    Search(SearchArgs),
    /// List documents with their chunk counts
    Ls(LsArgs),
    /// Delete a document (by id, or by source path) from every store
    Rm(RmArgs),
    /// Verify that SQL, vector and lexical stores hold exactly the same chunks
    Check(CheckArgs),
    /// Rebuild the vector and lexical indexes from SQL (re-embedding collections built with another model)
    Reindex,
    /// Prepare the deployment's storage and exit: apply the database migrations, make the vector
    /// and lexical indexes' tables or collections, finish what a crash interrupted (what a
    /// deployment runs once before its servers start)
    Migrate,
    /// Exit 0 when URL answers with a 2xx status within 5 s, 1 otherwise (the container image's
    /// health check, which has no curl)
    Probe(ProbeArgs),
    /// Move this embedded deployment onto shared engines: its rows into PostgreSQL, its vector and
    /// lexical indexes built there from the stored embeddings (nothing is embedded again);
    /// resumable after a kill, the source left untouched
    MigrateStore(MigrateStoreArgs),
    /// Serve the HTTP API
    Serve(ServeArgs),
    /// Serve the knowledge base over MCP on stdin/stdout, as the user of LARIAT_API_KEY (or as
    /// the local operator when it is unset); `lariat mcp site rodeo` serves a domain's site tools
    Mcp(McpArgs),
    /// Manage accounts (create the first admin, set roles and plans)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage collections (visibility, instructions, members)
    #[command(subcommand)]
    Collection(CollectionCommand),
    /// Write a conversation (of LARIAT_API_KEY's user) as PDF, Markdown or JSON
    Export(ExportArgs),
    /// Scheduled jobs: list them, their history, run one now, or run them without serving
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// A collection's sources (a folder, web pages, a sitemap) synced on a schedule, as the
    /// user of LARIAT_API_KEY (or as the local operator when it is unset)
    #[command(subcommand)]
    Source(source_cmd::SourceCommand),
    /// Evaluate retrieval quality and speed on a labelled dataset
    Eval(eval_cmd::EvalArgs),
    /// Measure ingestion and search speed on a BEIR-layout corpus (e.g. ../shared/data/scifact)
    Bench(BenchArgs),
    /// Measure the chat path (time to first token, concurrent streams, server memory) against a
    /// zero-latency local provider, on the collections in the data dir
    BenchChat(bench_chat::BenchChatArgs),
    /// Measure how search latency, disk and memory grow with a collection of 10k to 1M synthetic
    /// passages (words and vectors drawn around a BEIR corpus's), written through the normal path
    BenchScale(bench_scale::BenchScaleArgs),
    /// Measure a shared deployment under a crowd: replicas of `lariat serve` on the configured
    /// shared engines, users searching and chatting (zero-latency provider), curators uploading
    BenchCluster(bench_cluster::BenchClusterArgs),
    /// Internal: parse one file from stdin under limits, for the ingestion of untrusted files
    #[command(name = ingest::sandbox::WORKER_COMMAND, hide = true)]
    ParseWorker(ParseWorkerArgs),
}

#[derive(clap::Args, Debug)]
pub struct ParseWorkerArgs {
    #[arg(long)]
    pub memory_bytes: u64,
    #[arg(long)]
    pub cpu_seconds: u64,
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

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// The PostgreSQL database to move into (empty, or holding an unfinished move)
    #[arg(long, value_name = "postgres://…")]
    to: String,
    /// Where the vectors go: pgvector (that database) or qdrant (retrieval.qdrant's server)
    #[arg(long, default_value = "pgvector")]
    vectors: String,
    /// Where the BM25 index goes: database (that database) or qdrant
    #[arg(long, default_value = "database")]
    lexical: String,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Files and folders (folders are walked recursively), and http(s) URLs of pages (fetched
    /// under [sources]' guard: public addresses only unless allowed, robots.txt honoured)
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, short, default_value = "default")]
    collection: String,
    /// Who may read the collection: public (every signed-in user) or private (its members);
    /// a new collection is public unless told otherwise
    #[arg(long)]
    visibility: Option<String>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    query: String,
    /// Search only this collection (repeatable) [default: all]
    #[arg(long, short)]
    collection: Vec<String>,
    /// bm25, dense or hybrid
    #[arg(long, short, default_value = "hybrid")]
    mode: String,
    /// How many passages
    #[arg(short, default_value_t = 10)]
    k: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[arg(long, short)]
    collection: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["doc_id", "source"]))]
pub struct RmArgs {
    /// The document id (see `lariat ls`)
    doc_id: Option<String>,
    /// Delete the documents ingested from this path (a JSONL file's records too)
    #[arg(long)]
    source: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rebuild the derived indexes from SQL if they disagree
    #[arg(long)]
    repair: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// An http:// URL, e.g. http://127.0.0.1:8080/healthz
    url: String,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: server.addr, 127.0.0.1:8080]
    #[arg(long)]
    addr: Option<String>,
}

pub use bench::BenchArgs;

#[derive(clap::Args, Debug)]
pub struct McpArgs {
    #[command(subcommand)]
    server: Option<McpServer>,
}

#[derive(clap::Subcommand, Debug)]
enum McpServer {
    /// Serve a domain's site-automation tools (events, standings, entries) instead
    Site {
        /// The domain: rodeo
        domain: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The conversation's id (as the API and the web app's address show it)
    conversation: String,
    /// pdf, md or json
    #[arg(long, short = 'f', default_value = "pdf")]
    format: String,
    /// Where to write it ("-": standard output) [default: a file named after the title, here]
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Replace the output file if it exists
    #[arg(long)]
    force: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an admin account. The password is read from LARIAT_ADMIN_PASSWORD or, if unset,
    /// from the first line of standard input. An existing account is refused unless
    /// --reset-password is given
    Create {
        email: String,
        /// The account exists: give it this password, revoke every session and API key it has,
        /// unlink its sign-in providers, and make it an admin
        #[arg(long)]
        reset_password: bool,
    },
    /// Open an account for someone (the way in when sign-up is invite-only). The password is
    /// read like `admin create`'s
    AddUser {
        email: String,
        /// user, curator or admin
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// Erase a user's account and everything held about them (cannot be undone)
    Erase { email: String },
    /// The audit log, newest first: sign-ins, resets, keys, role and plan changes…
    Audit {
        /// Only this event (signed_in, sign_in_failed, key_created, user_changed, …)
        #[arg(long)]
        event: Option<String>,
        /// Only entries about or by this user
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// The `next` cursor a previous page printed
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a user's role (user, curator, admin) and/or plan
    SetUser {
        email: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        plan: Option<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum JobsCommand {
    /// The jobs, their schedules, next runs and how their last runs went
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Past runs, newest first
    History {
        /// Only this job's
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Run a job now, outside its schedule (for setups without `lariat serve`); exits 1 if it
    /// failed
    Run { name: String },
    /// Run the scheduled jobs without serving (another runner on the same database is fine:
    /// each occurrence runs once)
    Worker,
}

#[derive(clap::Subcommand, Debug)]
pub enum CollectionCommand {
    /// List collections with their visibility and counts
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Change a collection's visibility or domain instructions
    Set {
        name: String,
        /// public or private
        #[arg(long)]
        visibility: Option<String>,
        /// A text file whose contents open the assistant's prompt for this collection
        #[arg(long)]
        instructions_file: Option<PathBuf>,
        /// Delete conversations scoped to or citing this collection once untouched for this
        /// many days (0 keeps them as long as their owners' plans do)
        #[arg(long, value_name = "DAYS")]
        conversation_retention_days: Option<u32>,
    },
    /// Make a user a reader or curator of a collection, or (with --role none) remove them
    Member {
        name: String,
        email: String,
        /// reader, curator or none
        #[arg(long)]
        role: String,
    },
}

fn load_config(cli: &Cli) -> Result<Config> {
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(base::config::default_data_dir);
    Ok(Config::load(
        &data_dir,
        cli.config.as_deref(),
        std::env::vars(),
    )?)
}

pub async fn run(cli: Cli) -> Result<u8> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Ingest(args) => ingest(&config, args).await,
        Command::Search(args) => search(&config, args).await,
        Command::Ls(args) => ls(&config, args).await,
        Command::Rm(args) => rm(&config, args).await,
        Command::Check(args) => check(&config, args).await,
        Command::Reindex => {
            let k = open(&config).await?;
            let n = k.reindex().await?;
            println!("reindexed {n} chunks from SQL");
            Ok(0)
        }
        Command::MigrateStore(args) => migrate_store(&config, args).await,
        Command::Migrate => {
            let k = open(&config).await?;
            k.flush().await?;
            // the backends' names as the configuration spells them
            let named = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            println!(
                "ready: the database ({}), the vector store ({}) and the lexical index ({})",
                k.store_backend(),
                named(serde_json::to_value(config.retrieval.vector_store)?),
                named(serde_json::to_value(config.retrieval.lexical_store)?)
            );
            Ok(0)
        }
        Command::Probe(args) => probe(&args.url).await,
        Command::Serve(args) => {
            let addr = args.addr.unwrap_or_else(|| config.server.addr.clone());
            let uploads = pipeline(&config)?;
            let service = Arc::new(Service::open(&config, uploads.clone()).await?);
            crate::server::serve(service, uploads, &addr, &config).await?;
            Ok(0)
        }
        Command::Admin(cmd) => admin(&config, cmd).await,
        Command::Mcp(args) => {
            if let Some(McpServer::Site { domain }) = &args.server
                && !mcp::site::DOMAINS.contains(&domain.as_str())
            {
                return Err(base::Error::InvalidInput(format!(
                    "no site tools for the domain {domain:?}; there are: {}",
                    mcp::site::DOMAINS.join(", ")
                ))
                .into());
            }
            let service = Arc::new(open_service(&config).await?);
            let principal = acting_user(&service).await?;
            match args.server {
                None => {
                    mcp::serve_stdio(mcp::KnowledgeServer::new(service.clone(), Some(principal)))
                        .await?
                }
                Some(McpServer::Site { domain }) => {
                    let server = mcp::site::SiteServer::new(
                        service.clone(),
                        Some(principal),
                        &domain,
                        &config,
                    );
                    mcp::serve_stdio(server).await?
                }
            }
            service.knowledge.flush().await?;
            Ok(0)
        }
        Command::Collection(cmd) => collection(&config, cmd).await,
        Command::Export(args) => export(&config, args).await,
        Command::Jobs(cmd) => jobs(&config, cmd).await,
        Command::Source(cmd) => source_cmd::run(&config, cmd).await,
        Command::Bench(args) => bench::run(&config, args).await,
        Command::BenchChat(args) => bench_chat::run(&config.data_dir, args).await,
        Command::BenchScale(args) => bench_scale::run(&config, args).await,
        Command::BenchCluster(args) => bench_cluster::run(&config, args).await,
        Command::Eval(args) => eval_cmd::run(&config, args).await,
        Command::ParseWorker(_) => {
            unreachable!("main serves the parser worker before the runtime starts")
        }
    }
}

/// `lariat probe URL`: 0 when the URL answers with a 2xx status within 5 s (redirects not
/// followed), 1 when it answers otherwise or not at all.
async fn probe(url: &str) -> Result<u8> {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            base::Error::InvalidInput(format!("{url:?} is not an http:// or https:// URL"))
        })?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    match client.get(parsed).send().await {
        Ok(answer) if answer.status().is_success() => Ok(0),
        Ok(answer) => {
            eprintln!("probe: {url} answered {}", answer.status());
            Ok(1)
        }
        Err(e) => {
            eprintln!("probe: {url}: {e}");
            Ok(1)
        }
    }
}
