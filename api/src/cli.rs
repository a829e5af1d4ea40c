//! The subcommands: each parses its arguments into the core's types, calls the façade and prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use base::{CollectionName, MemberRole, SearchResults, Visibility};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ingest::{Chunker, IngestOptions, IngestReport, Progress};
use knowledge::{Knowledge, SearchRequest};
use service::{Config, Service};

use crate::{Cli, Command, EXIT_INCONSISTENT, EXIT_PARTIAL};

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
pub struct ServeArgs {
    /// Address to listen on [default: server.addr, 127.0.0.1:8080]
    #[arg(long)]
    addr: Option<String>,
}

pub use crate::bench::BenchArgs;

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

pub async fn open(config: &Config) -> Result<Arc<Knowledge>> {
    Ok(Arc::new(Knowledge::open(&config.knowledge()).await?))
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
        Command::Serve(args) => {
            let addr = args.addr.unwrap_or_else(|| config.server.addr.clone());
            let uploads = pipeline(&config)?;
            let service = Arc::new(Service::open(&config, uploads.clone()).await?);
            crate::http::serve(service, uploads, &addr, &config).await?;
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
        Command::Source(cmd) => crate::source_cmd::run(&config, cmd).await,
        Command::Bench(args) => crate::bench::run(&config, args).await,
        Command::BenchChat(args) => crate::bench_chat::run(&config.data_dir, args).await,
        Command::Eval(args) => crate::eval_cmd::run(&config, args).await,
        Command::ParseWorker(_) => {
            unreachable!("main serves the parser worker before the runtime starts")
        }
    }
}

/// `lariat jobs …`.
async fn jobs(config: &Config, cmd: JobsCommand) -> Result<u8> {
    let service = open_service(config).await?;
    let jobs = service.jobs.clone();
    let time = |ms: Option<i64>| ms.map_or("-".to_owned(), base::format_time);
    let print_runs = |runs: &[operations::store::JobRun]| runs.iter().for_each(print_run);
    match cmd {
        JobsCommand::Ls { json } => {
            let list = jobs.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            for j in list.iter().filter(|_| !json) {
                let last = j.last_run.as_ref().map_or("never run".to_owned(), |r| {
                    format!("last {} {} ({})", time(Some(r.slot)), r.status, r.trigger)
                });
                println!(
                    "{}\t{}\tnext {}\t{last}",
                    j.name,
                    j.schedule,
                    time(j.next_run)
                );
            }
        }
        JobsCommand::History { name, limit, json } => {
            let runs = jobs.history(name.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print_runs(&runs);
            }
        }
        JobsCommand::Run { name } => {
            let run = jobs.run_now(&name).await?;
            print_runs(std::slice::from_ref(&run));
            service.knowledge.flush().await?;
            return Ok(if run.status == "succeeded" { 0 } else { 1 });
        }
        JobsCommand::Worker => {
            eprintln!("lariat job runner {} started", jobs.owner());
            tokio::select! {
                result = jobs.run() => result?,
                _ = tokio::signal::ctrl_c() => {}
            }
            service.knowledge.flush().await?;
        }
    }
    Ok(0)
}

/// One run of a job on a line.
pub fn print_run(r: &operations::store::JobRun) {
    let detail = if r.error.is_empty() {
        r.outcome.to_string()
    } else {
        r.error.clone()
    };
    println!(
        "{}\t{}\t{}\tattempt {}\t{} ms\t{}\t{}",
        r.job,
        base::format_time(r.slot),
        r.status,
        r.attempt,
        r.duration_ms.unwrap_or(0),
        r.owner,
        detail
    );
}

/// Whom the CLI acts for where an account matters: the user of `LARIAT_API_KEY`, or the local
/// operator when it is unset.
pub async fn acting_user(service: &Service) -> Result<base::principal::Principal> {
    Ok(match std::env::var("LARIAT_API_KEY") {
        Ok(key) if !key.trim().is_empty() => service.accounts.authenticate(&key).await?,
        _ => service.accounts.local_operator().await?,
    })
}

/// `lariat export`: a conversation of `LARIAT_API_KEY`'s user written to a file.
async fn export(config: &Config, args: ExportArgs) -> Result<u8> {
    let format = chat::export::ExportFormat::parse(&args.format)?;
    let service = open_service(config).await?;
    let principal = acting_user(&service).await?;
    let file = service
        .chat
        .export(&principal, &args.conversation, format)
        .await
        .with_context(|| {
            format!(
                "export as {} (conversations are their owner's: set LARIAT_API_KEY to a key of \
                 theirs)",
                principal.user.email
            )
        })?;
    let path = args.output.unwrap_or_else(|| PathBuf::from(&file.filename));
    if path.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().write_all(&file.bytes)?;
        return Ok(0);
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = options.open(&path).await.with_context(|| {
        format!(
            "cannot write {}{}",
            path.display(),
            if args.force {
                ""
            } else {
                " (use --force to replace it)"
            }
        )
    })?;
    tokio::io::AsyncWriteExt::write_all(&mut out, &file.bytes).await?;
    tokio::io::AsyncWriteExt::flush(&mut out).await?;
    eprintln!("wrote {} ({} bytes)", path.display(), file.bytes.len());
    Ok(0)
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn add_total(&self, documents: u64) {
        self.0.inc_length(documents);
    }
    fn advance(&self, documents: u64) {
        self.0.inc(documents);
    }
}

pub fn chunker(config: &Config) -> Result<Arc<Chunker>> {
    Ok(Arc::new(
        Chunker::load(&config.embedding.model_dir, &config.chunking)
            .map_err(base::Error::Unavailable)?,
    ))
}

/// The ingest pipeline: uploads and sources' syncs go through it.
pub fn pipeline(config: &Config) -> Result<Arc<ingest::Pipeline>> {
    Ok(Arc::new(ingest::Pipeline {
        chunker: chunker(config)?,
        limits: config.ingest.clone(),
    }))
}

/// The service, its sources syncing through the ingest pipeline.
pub async fn open_service(config: &Config) -> Result<Service> {
    Ok(Service::open(config, pipeline(config)?).await?)
}

pub fn ingest_options(config: &Config, collection: CollectionName) -> IngestOptions {
    IngestOptions {
        collection,
        limits: config.ingest.clone(),
    }
}

async fn ingest(config: &Config, args: IngestArgs) -> Result<u8> {
    let collection = CollectionName::parse(&args.collection)?;
    let k = open(config).await?;
    let chunker = chunker(config)?;
    let bar = if !args.json && std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} documents ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = Bar(bar);
    if let Some(v) = &args.visibility {
        let v = Visibility::parse(v)?;
        k.ensure_collection(&collection).await?;
        let update = base::types::CollectionUpdate {
            visibility: Some(v),
            ..Default::default()
        };
        k.update_collection(&collection, &update).await?;
    }
    let options = ingest_options(config, collection);
    let (urls, paths): (Vec<&PathBuf>, Vec<&PathBuf>) = args.paths.iter().partition(|p| {
        let p = p.to_string_lossy();
        p.starts_with("http://") || p.starts_with("https://")
    });
    let report = if urls.is_empty() {
        ingest::ingest_paths(k, chunker, &args.paths, &options, &progress).await?
    } else {
        let fetcher = operations::sources::Fetcher::new(&config.sources)?;
        let urls: Vec<String> = urls
            .iter()
            .map(|u| u.to_string_lossy().into_owned())
            .collect();
        let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
        ingest::ingest_urls_and_paths(k, chunker, &fetcher, &urls, &paths, &options, &progress)
            .await?
    };
    progress.0.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_ingest_report(&report);
    }
    Ok(if report.failed > 0 { EXIT_PARTIAL } else { 0 })
}

fn print_ingest_report(r: &IngestReport) {
    println!(
        "collection {}: {} added, {} updated, {} unchanged, {} failed; {} chunks written in {:.1}s",
        r.collection, r.added, r.updated, r.unchanged, r.failed, r.chunks, r.seconds
    );
    for f in &r.failures {
        println!("  failed: {}: {}", f.path, f.reason);
    }
}

async fn search(config: &Config, args: SearchArgs) -> Result<u8> {
    let request = SearchRequest::parse(
        &args.query,
        &args.collection,
        Some(&args.mode),
        i64::try_from(args.k).ok(),
    )?;
    let k = open(config).await?;
    let results = k.search(&request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_results(&results);
    }
    Ok(0)
}

fn print_results(results: &SearchResults) {
    if results.hits.is_empty() {
        println!("no passages match {:?}", results.query);
    }
    for h in &results.hits {
        let p = &h.passage;
        let location = if p.location.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.location)
        };
        println!("{:>2}. [{:.4}] {}{location}", h.rank, h.score, p.title);
        println!("    {}", p.source);
        let snippet: String = p.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let snippet: String = snippet.chars().take(300).collect();
        println!("    {snippet}\n");
    }
}

async fn ls(config: &Config, args: LsArgs) -> Result<u8> {
    let collection = args
        .collection
        .as_deref()
        .map(CollectionName::parse)
        .transpose()?;
    let k = open(config).await?;
    let docs = k.documents(collection.as_ref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&docs)?);
        return Ok(0);
    }
    if docs.is_empty() {
        println!("no documents");
    }
    for d in &docs {
        println!(
            "{}  {:<12} {:>5} chunks  {}  ({})",
            d.id, d.collection, d.chunks, d.source, d.title
        );
    }
    Ok(0)
}

async fn rm(config: &Config, args: RmArgs) -> Result<u8> {
    let k = open(config).await?;
    let ids = match (&args.doc_id, &args.source) {
        (Some(id), _) => vec![id.clone()],
        (None, Some(source)) => {
            let abs = std::path::absolute(source).context("resolving the source path")?;
            k.documents_by_source(None, &abs.to_string_lossy()).await?
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    let deleted = k.delete_documents(&ids).await?;
    if deleted == 0 {
        let what = args
            .doc_id
            .map(|id| format!("document {id}"))
            .unwrap_or_else(|| {
                format!(
                    "documents from {}",
                    args.source.unwrap_or_default().display()
                )
            });
        return Err(base::Error::NotFound(format!("no {what}")).into());
    }
    println!("deleted {deleted} document(s)");
    Ok(0)
}

async fn check(config: &Config, args: CheckArgs) -> Result<u8> {
    let k = open(config).await?;
    let mut report = k.check().await?;
    if !report.is_consistent() && args.repair {
        let n = k.reindex().await?;
        eprintln!("repaired: rebuilt the derived indexes from SQL ({n} chunks)");
        report = k.check().await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "chunks: sql {}, vectors {}, lexical {}",
            report.sql_chunks, report.vector_chunks, report.lexical_chunks
        );
        let lines = [
            ("missing from the vector store", &report.missing_in_vectors),
            ("orphans in the vector store", &report.orphans_in_vectors),
            ("missing from the lexical index", &report.missing_in_lexical),
            ("orphans in the lexical index", &report.orphans_in_lexical),
        ];
        for (what, ids) in lines {
            if !ids.is_empty() {
                let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
                println!("{} {what}: {}", ids.len(), shown.join(", "));
            }
        }
        if report.duplicates_in_lexical > 0 {
            println!(
                "{} duplicate chunks in the lexical index",
                report.duplicates_in_lexical
            );
        }
        if report.pending_documents + report.tombstones > 0 {
            println!(
                "{} documents pending indexing, {} deletions pending",
                report.pending_documents, report.tombstones
            );
        }
        println!(
            "{}",
            if report.is_consistent() {
                "consistent"
            } else {
                "INCONSISTENT (run `lariat check --repair`)"
            }
        );
    }
    Ok(if report.is_consistent() {
        0
    } else {
        EXIT_INCONSISTENT
    })
}

/// The first line of standard input, or the variable when set.
fn secret_input(variable: &str, what: &str) -> Result<String> {
    if let Ok(v) = std::env::var(variable) {
        return Ok(v);
    }
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn admin(config: &Config, cmd: AdminCommand) -> Result<u8> {
    let service = open_service(config).await?;
    match cmd {
        AdminCommand::Create {
            email,
            reset_password,
        } => {
            let password = secret_input("LARIAT_ADMIN_PASSWORD", "password")?;
            let user = service
                .accounts
                .create_admin(&email, &password, reset_password)
                .await?;
            println!("{} is an admin (user id {})", user.email, user.id);
        }
        AdminCommand::AddUser { email, role } => {
            let role = base::principal::Role::parse(&role)?;
            let password = secret_input("LARIAT_ADMIN_PASSWORD", "password")?;
            let user = service.accounts.add_user(&email, &password, role).await?;
            println!(
                "{} can sign in (role {}, user id {})",
                user.email,
                user.role.as_str(),
                user.id
            );
        }
        AdminCommand::Erase { email } => {
            let user = service.accounts.user_by_email(&email).await?;
            let operator = service.accounts.local_operator().await?;
            service.privacy.erase_user(&operator, &user.id).await?;
            println!("{email} is erased (user id {})", user.id);
        }
        AdminCommand::Audit {
            event,
            user,
            limit,
            after,
            json,
        } => {
            let query = identity::audit::AuditQuery {
                event: event
                    .as_deref()
                    .map(identity::audit::AuditEvent::parse)
                    .transpose()?,
                user_id: match user {
                    Some(email) => Some(service.accounts.user_by_email(&email).await?.id),
                    None => None,
                },
                after,
                limit: Some(limit),
            };
            let operator = service.accounts.local_operator().await?;
            let page = service.audit.page(&operator, &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for e in &page.entries {
                    println!(
                        "{}\t{}\tby {}\ton {}\tfrom {}\t{}",
                        crate::web::render::datetime(&e.at),
                        e.event.as_str(),
                        e.actor_id.as_deref().unwrap_or("-"),
                        e.subject_id.as_deref().unwrap_or("-"),
                        if e.address.is_empty() {
                            "-"
                        } else {
                            &e.address
                        },
                        e.detail
                    );
                }
                if let Some(next) = &page.next {
                    eprintln!("more: --after {next}");
                }
            }
        }
        AdminCommand::SetUser { email, role, plan } => {
            let user = service.accounts.user_by_email(&email).await?;
            let update = identity::accounts::UserUpdate {
                role: role
                    .as_deref()
                    .map(base::principal::Role::parse)
                    .transpose()?,
                plan,
                ..Default::default()
            };
            let user = service.accounts.set_user(None, &user.id, &update).await?;
            println!(
                "{}: role {}, plan {}",
                user.email,
                user.role.as_str(),
                user.plan
            );
        }
    }
    Ok(0)
}

async fn collection(config: &Config, cmd: CollectionCommand) -> Result<u8> {
    match cmd {
        CollectionCommand::Ls { json } => {
            let k = open(config).await?;
            let list = k.collections().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for c in list {
                    println!(
                        "{}\t{}\t{} documents\t{} chunks\t{}",
                        c.name,
                        c.visibility.as_str(),
                        c.documents,
                        c.chunks,
                        c.model
                    );
                }
            }
        }
        CollectionCommand::Set {
            name,
            visibility,
            instructions_file,
            conversation_retention_days,
        } => {
            let name = CollectionName::parse(&name)?;
            let instructions = instructions_file
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let update = base::types::CollectionUpdate {
                visibility: visibility.as_deref().map(Visibility::parse).transpose()?,
                instructions,
                conversation_retention_days,
            };
            let service = open_service(config).await?;
            let operator = service.accounts.local_operator().await?;
            service
                .collections
                .update(&operator, &name, &update)
                .await?;
            println!("collection {name} updated");
        }
        CollectionCommand::Member { name, email, role } => {
            let name = CollectionName::parse(&name)?;
            let role = match role.as_str() {
                "none" => None,
                r => Some(MemberRole::parse(r)?),
            };
            let service = open_service(config).await?;
            let user = service.accounts.user_by_email(&email).await?;
            let operator = service.accounts.local_operator().await?;
            service
                .collections
                .set_member(&operator, &name, &user.id, role)
                .await?;
            println!(
                "{} is now {} of {name}",
                user.email,
                role.map_or("no member", |r| r.as_str())
            );
        }
    }
    Ok(0)
}
