//! `lariat eval beir`: retrieval quality and speed on BEIR-layout datasets (several in one run,
//! with their mean); `lariat eval answers`: answers to a question set, scored. Both with a
//! regression gate against a baseline. `lariat eval feedback`: readers' well-rated answers
//! written as a BEIR dataset, for `eval beir` to measure and gate on.

use std::path::{Path, PathBuf};

use anyhow::Result;
use base::SearchMode;
use clap::{Args, Subcommand};
use eval::answers::AnswerReport;
use eval::{Dataset, EvalError, EvalOptions};
use service::Config;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// Evaluate datasets in BEIR layout (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)
    Beir(BeirArgs),
    /// Ask a question set through the chat path (the configured model, or the extractive answer
    /// without one) and score the answers: key facts, F1, citations, refusals, latency
    Answers(AnswersArgs),
    /// Write the questions readers rated well, with the documents their answers cited as the
    /// judgements, as a BEIR dataset (corpus.jsonl: every document of the collections they
    /// cite; queries.jsonl; qrels/test.tsv) for `lariat eval beir` to measure and gate on
    Feedback(FeedbackArgs),
}

#[derive(Args, Debug)]
struct FeedbackArgs {
    /// The folder to write (created; must be empty if it exists)
    out: PathBuf,
    /// Only ratings of answers citing these collections (default: all)
    #[arg(long, value_delimiter = ',')]
    collections: Vec<String>,
}

#[derive(Args, Debug)]
struct AnswersArgs {
    /// The questions, one JSON object a line: id, question, answer (null: none in the corpus),
    /// facts, sources
    questions: PathBuf,
    /// The collection asked (ingested beforehand)
    #[arg(long, short)]
    collection: String,
    /// Write the report as JSON
    #[arg(long)]
    json: Option<PathBuf>,
    /// Fail when a figure falls more than --max-drop below this baseline (a report written by
    /// --json)
    #[arg(long)]
    baseline: Option<PathBuf>,
    #[arg(long, default_value_t = 0.02, requires = "baseline")]
    max_drop: f64,
}

#[derive(Args, Debug)]
struct BeirArgs {
    /// One or more dataset folders
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The judgements to use (qrels/SPLIT.tsv); default: test, or a dataset's only split
    #[arg(long)]
    split: Option<String>,
    /// Comma-separated: bm25, dense, hybrid
    #[arg(long, default_value = "bm25,dense,hybrid", value_delimiter = ',')]
    modes: Vec<String>,
    /// Write the reports (each dataset's and the means) as JSON
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the ranked documents as a TREC run file (one file per mode when several; one
    /// dataset only)
    #[arg(long)]
    run_file: Option<PathBuf>,
    /// Fail when a metric falls more than --max-drop below this baseline (a report written by
    /// --json)
    #[arg(long)]
    baseline: Option<PathBuf>,
    #[arg(long, default_value_t = 0.01, requires = "baseline")]
    max_drop: f64,
    /// Also measure throughput with N queries in flight
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Passages retrieved per query before aggregation into documents
    #[arg(long, default_value_t = 300)]
    depth: usize,
}

/// A metric fell below the baseline by more than the allowed drop.
pub const EXIT_REGRESSION: u8 = 8;

fn to_knowledge(e: EvalError) -> anyhow::Error {
    match e {
        EvalError::Knowledge(k) => k.into(),
        other => base::Error::InvalidInput(other.to_string()).into(),
    }
}

fn run_file_path(base: &Path, mode: SearchMode, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{mode}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{mode}"),
    };
    base.with_file_name(name)
}

/// Writes through a temporary file and a rename, so a failed run leaves nothing half-written.
fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub async fn run(config: &Config, args: EvalArgs) -> Result<u8> {
    match args.command {
        EvalCommand::Beir(args) => beir(config, args).await,
        EvalCommand::Answers(args) => answers(config, args).await,
        EvalCommand::Feedback(args) => feedback(config, args).await,
    }
}

async fn feedback(config: &Config, args: FeedbackArgs) -> Result<u8> {
    let collections = args
        .collections
        .iter()
        .map(|c| base::CollectionName::parse(c).map(|c| c.as_str().to_owned()))
        .collect::<base::Result<Vec<_>>>()?;
    if args.out.exists() && std::fs::read_dir(&args.out)?.next().is_some() {
        return Err(base::Error::InvalidInput(format!(
            "{} is not empty: name a new folder",
            args.out.display()
        ))
        .into());
    }
    let service = super::shared::open_service(config).await?;
    let principal = service.accounts.local_operator().await?;
    let ratings = service.chat.ratings(&principal, &collections).await?;
    let judged = chat::feedback::judgements(&ratings);
    if judged.is_empty() {
        eprintln!(
            "no question has a well-rated answer with citations yet ({} ratings)",
            ratings.len()
        );
        return Ok(1);
    }
    let mut cited: Vec<String> = judged.iter().flat_map(|j| j.collections.clone()).collect();
    cited.sort();
    cited.dedup();
    let mut corpus = String::new();
    for name in &cited {
        let Ok(name) = base::CollectionName::parse(name) else {
            continue;
        };
        // a collection deleted since its answers were rated leaves their judgements unmet
        let documents = match service.knowledge.collection_texts(&principal, &name).await {
            Ok(documents) => documents,
            Err(e) if e.code() == base::ErrorCode::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for d in documents {
            corpus.push_str(&serde_json::to_string(&serde_json::json!({
                "_id": d.id, "title": d.title, "text": d.text,
            }))?);
            corpus.push('\n');
        }
    }
    let (mut queries, mut qrels) = (String::new(), String::from("query-id\tcorpus-id\tscore\n"));
    for (i, j) in judged.iter().enumerate() {
        let id = format!("fb{}", i + 1);
        queries.push_str(&serde_json::to_string(
            &serde_json::json!({"_id": id, "text": j.question}),
        )?);
        queries.push('\n');
        for d in &j.documents {
            qrels.push_str(&format!("{id}\t{d}\t1\n"));
        }
    }
    std::fs::create_dir_all(args.out.join("qrels"))?;
    write_atomically(&args.out.join("corpus.jsonl"), &corpus)?;
    write_atomically(&args.out.join("queries.jsonl"), &queries)?;
    write_atomically(&args.out.join("qrels").join("test.tsv"), &qrels)?;
    println!(
        "{} questions judged from {} ratings, over the documents of {}: {}",
        judged.len(),
        ratings.len(),
        cited.join(", "),
        args.out.display()
    );
    Ok(0)
}

async fn answers(config: &Config, args: AnswersArgs) -> Result<u8> {
    let collection = base::CollectionName::parse(&args.collection)?;
    let cases = eval::answers::read_cases(&args.questions).map_err(to_knowledge)?;
    let baseline: Option<AnswerReport> = match &args.baseline {
        Some(path) => Some(
            serde_json::from_str(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("baseline {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let service = super::shared::open_service(config).await?;
    let principal = service.accounts.local_operator().await?;
    let name = args
        .questions
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = eval::answers::run_answers(&service.chat, &principal, &collection, &name, &cases)
        .await
        .map_err(to_knowledge)?;
    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        write_atomically(path, &serde_json::to_string_pretty(&report)?)?;
    }
    gate(
        baseline.map(|b| report.regressions(&b, args.max_drop)),
        args.max_drop,
    )
}

/// The exit code of a gated run: each regression printed, or none found.
fn gate(regressions: Option<Vec<String>>, max_drop: f64) -> Result<u8> {
    let Some(regressions) = regressions else {
        return Ok(0);
    };
    if !regressions.is_empty() {
        for r in &regressions {
            eprintln!("regression: {r}");
        }
        return Ok(EXIT_REGRESSION);
    }
    eprintln!("no metric fell more than {max_drop} below the baseline");
    Ok(0)
}

async fn beir(config: &Config, args: BeirArgs) -> Result<u8> {
    let modes: Vec<SearchMode> = args
        .modes
        .iter()
        .map(|m| m.parse())
        .collect::<base::Result<_>>()?;
    if args.concurrency == 0 {
        return Err(base::Error::InvalidInput("--concurrency must be at least 1".into()).into());
    }
    base::TopK::new(args.depth)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(eval::load_baseline)
        .transpose()
        .map_err(to_knowledge)?;
    if args.run_file.is_some() && args.dirs.len() > 1 {
        return Err(base::Error::InvalidInput(
            "--run-file takes one dataset: run the others separately".into(),
        )
        .into());
    }
    // every dataset is read (and any malformed one named) before anything is ingested
    let datasets = args
        .dirs
        .iter()
        .map(|dir| {
            let split = match &args.split {
                Some(split) => split.clone(),
                None => eval::default_split(dir)?,
            };
            Dataset::load(dir, &split)
        })
        .collect::<Result<Vec<_>, EvalError>>()
        .map_err(to_knowledge)?;
    let k = super::shared::open(config).await?;
    let chunker = super::shared::chunker(config)?;
    let options = EvalOptions {
        modes,
        depth: args.depth,
        concurrency: args.concurrency,
        ingest: config.ingest.clone(),
    };
    let mut reports = Vec::new();
    for dataset in &datasets {
        let (report, runs) = eval::run(k.clone(), chunker.clone(), dataset, &options)
            .await
            .map_err(to_knowledge)?;
        print!("{}", eval::markdown(&report));
        println!();
        if let Some(base) = &args.run_file {
            for (mode, run) in &runs {
                let path = run_file_path(base, *mode, runs.len() > 1);
                write_atomically(&path, &eval::trec_run(run, &format!("lariat-{mode}")))?;
            }
        }
        reports.push(report);
    }
    let suite = eval::Suite::new(reports);
    if suite.datasets.len() > 1 {
        print!("{}", eval::suite_markdown(&suite));
    }
    if let Some(path) = &args.json {
        write_atomically(path, &serde_json::to_string_pretty(&suite)?)?;
    }
    gate(
        baseline.map(|b| eval::suite_regressions(&suite, &b, args.max_drop)),
        args.max_drop,
    )
}
