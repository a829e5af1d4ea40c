//! The corpus commands: ingest, search, ls, rm, check and export.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use base::{CollectionName, SearchResults, Visibility};
use indicatif::{ProgressBar, ProgressStyle};
use ingest::IngestReport;
use knowledge::SearchRequest;
use service::Config;

use super::shared::*;
use super::*;

/// `lariat export`: a conversation of `LARIAT_API_KEY`'s user written to a file.
pub(super) async fn export(config: &Config, args: ExportArgs) -> Result<u8> {
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

pub(super) async fn ingest(config: &Config, args: IngestArgs) -> Result<u8> {
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
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} passages ({per_sec}, {eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = Bar::new(bar);
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
    progress.bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_ingest_report(&report);
    }
    Ok(if report.failed > 0 { EXIT_PARTIAL } else { 0 })
}

pub(super) fn print_ingest_report(r: &IngestReport) {
    println!(
        "collection {}: {} added, {} updated, {} unchanged, {} failed; {} chunks written in {:.1}s",
        r.collection, r.added, r.updated, r.unchanged, r.failed, r.chunks, r.seconds
    );
    for f in &r.failures {
        println!("  failed: {}: {}", f.path, f.reason);
    }
}

pub(super) async fn search(config: &Config, args: SearchArgs) -> Result<u8> {
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

pub(super) fn print_results(results: &SearchResults) {
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

pub(super) async fn ls(config: &Config, args: LsArgs) -> Result<u8> {
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

pub(super) async fn rm(config: &Config, args: RmArgs) -> Result<u8> {
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

pub(super) async fn check(config: &Config, args: CheckArgs) -> Result<u8> {
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
        print_check(&report);
    }
    Ok(if report.is_consistent() {
        0
    } else {
        EXIT_INCONSISTENT
    })
}

struct MoveBar;

impl knowledge::MoveProgress for MoveBar {
    fn copied(&self, p: &base::copy::TableProgress) {
        eprintln!("copied {}: {}/{} rows", p.table, p.copied, p.total);
    }
    fn indexing(&self) {
        eprintln!(
            "rows copied; building the vector and lexical indexes from the stored embeddings"
        );
    }
}

/// `lariat migrate-store`: the deployment moved onto PostgreSQL and its chosen engines.
pub(super) async fn migrate_store(config: &Config, args: super::MigrateStoreArgs) -> Result<u8> {
    use knowledge::config::{LexicalBackend, VectorBackend};
    let mut retrieval = config.retrieval.clone();
    retrieval.vector_store = match args.vectors.as_str() {
        "pgvector" => VectorBackend::Pgvector,
        "qdrant" => VectorBackend::Qdrant,
        other => {
            return Err(base::Error::InvalidInput(format!(
                "--vectors must be pgvector or qdrant, not {other:?}"
            ))
            .into());
        }
    };
    retrieval.lexical_store = match args.lexical.as_str() {
        "database" => LexicalBackend::Database,
        "qdrant" => LexicalBackend::Qdrant,
        other => {
            return Err(base::Error::InvalidInput(format!(
                "--lexical must be database or qdrant, not {other:?}"
            ))
            .into());
        }
    };
    if !args.to.starts_with("postgres://") && !args.to.starts_with("postgresql://") {
        return Err(base::Error::InvalidInput("--to must be a postgres:// URL".into()).into());
    }
    let url = base::config::Secret::new(args.to);
    let from = config.knowledge();
    let to = knowledge::config::Setup {
        database_url: Some(&url),
        retrieval: &retrieval,
        ..from
    };
    let report = knowledge::Knowledge::move_store(&from, &to, &MoveBar).await?;
    let rows: i64 = report.tables.iter().map(|(_, n)| n).sum();
    println!(
        "moved {rows} rows in {} tables and indexed {} chunks",
        report.tables.len(),
        report.chunks
    );
    print_check(&report.check);
    Ok(if report.check.is_consistent() {
        0
    } else {
        super::EXIT_INCONSISTENT
    })
}

/// A consistency report for people.
fn print_check(report: &knowledge::CheckReport) {
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
