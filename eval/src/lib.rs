//! Retrieval evaluation on BEIR-layout datasets: the corpus goes through the normal ingestion
//! pipeline into its own collection (reused while corpus, chunking and model are unchanged),
//! every judged query is searched in each mode, passages are aggregated into document scores
//! (max), and trec_eval-exact metrics, latency and a TREC run file come out.

pub mod answers;
pub mod dataset;
pub mod metrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base::{CollectionName, QueryText, SearchMode, TopK, content_hash};
use ingest::{Chunker, IngestOptions};
use knowledge::{Knowledge, SearchRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use dataset::{Dataset, Skipped, default_split};
pub use metrics::{Metrics, evaluate, trec_order};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Dataset(String),
    #[error(transparent)]
    Knowledge(#[from] base::Error),
    #[error("baseline {path}: {msg}")]
    Baseline { path: String, msg: String },
}

impl From<tokio::task::JoinError> for EvalError {
    fn from(e: tokio::task::JoinError) -> Self {
        EvalError::Knowledge(e.into())
    }
}

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub modes: Vec<SearchMode>,
    /// Passages retrieved per query before aggregation into documents.
    pub depth: usize,
    /// Also measure throughput with this many queries in flight (1: sequential only).
    pub concurrency: usize,
    /// How the corpus is ingested (file size, batch and parser limits).
    pub ingest: knowledge::config::IngestConfig,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModeResult {
    pub mode: String,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub latency_ms: LatencyMs,
    /// Queries per second, one at a time.
    pub qps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qps_concurrent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct IngestFigures {
    pub seconds: f64,
    pub passages: usize,
    pub passages_per_s: f64,
    /// The collection from an earlier run was reused: nothing was ingested.
    pub reused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub dataset: String,
    pub split: String,
    pub queries: usize,
    pub corpus_docs: usize,
    pub config: serde_json::Value,
    pub results: Vec<ModeResult>,
    pub ingest: IngestFigures,
    /// What the dataset held that could not be evaluated (counted, not refused).
    #[serde(default)]
    pub skipped: Skipped,
}

/// Several datasets evaluated in one run, and each mode's mean nDCG@10 over them (each dataset
/// weighs the same, whatever its number of queries).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suite {
    pub datasets: Vec<Report>,
    pub mean: Vec<MeanResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeanResult {
    pub mode: String,
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
}

impl Suite {
    pub fn new(datasets: Vec<Report>) -> Self {
        let mut mean: Vec<MeanResult> = Vec::new();
        for report in &datasets {
            for r in &report.results {
                if !mean.iter().any(|m| m.mode == r.mode) {
                    let scores: Vec<f64> = datasets
                        .iter()
                        .filter_map(|d| d.results.iter().find(|x| x.mode == r.mode))
                        .map(|x| x.metrics.ndcg_10)
                        .collect();
                    mean.push(MeanResult {
                        mode: r.mode.clone(),
                        ndcg_10: scores.iter().sum::<f64>() / scores.len() as f64,
                    });
                }
            }
        }
        Suite { datasets, mean }
    }
}

/// One mode's ranked documents per query, in trec_eval order.
pub type Run = Vec<(String, Vec<(String, f64)>)>;

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn latency(mut ms: Vec<f64>) -> LatencyMs {
    ms.sort_by(f64::total_cmp);
    LatencyMs {
        p50: percentile(&ms, 50.0),
        p95: percentile(&ms, 95.0),
        p99: percentile(&ms, 99.0),
    }
}

/// The collection a dataset's corpus is ingested into: named by the hash of the corpus bytes,
/// the chunker settings and the model, so any change gets a fresh collection.
fn collection_for(
    dataset: &Dataset,
    chunker: &Chunker,
    model: &str,
) -> Result<CollectionName, EvalError> {
    let bytes = std::fs::read(&dataset.corpus_path)
        .map_err(|e| EvalError::Dataset(format!("{}: {e}", dataset.corpus_path.display())))?;
    let mut h = Sha256::new();
    h.update(content_hash(&bytes));
    h.update(chunker.fingerprint());
    h.update(model);
    let hash = hex::encode(&h.finalize()[..4]);
    let mut name: String = dataset
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    name = name.trim_matches('-').to_owned();
    Ok(CollectionName::parse(&format!("beir-{name}-{hash}"))?)
}

/// Evaluates `dataset` in every mode of `options`. Returns the report and each mode's run.
pub async fn run(
    knowledge: Arc<Knowledge>,
    chunker: Arc<Chunker>,
    dataset: &Dataset,
    options: &EvalOptions,
) -> Result<(Report, Vec<(SearchMode, Run)>), EvalError> {
    let model = knowledge.embedder().model().name.clone();
    let collection = collection_for(dataset, &chunker, &model)?;
    let fingerprint = chunker.fingerprint();
    let existing = knowledge
        .collections()
        .await?
        .into_iter()
        .find(|c| c.name == collection.as_str());
    let ingest = match existing {
        Some(c) if c.documents as usize == dataset.corpus_docs => IngestFigures {
            passages: c.chunks as usize,
            reused: true,
            ..Default::default()
        },
        _ => {
            let opts = IngestOptions {
                collection: collection.clone(),
                limits: options.ingest.clone(),
            };
            let report = ingest::ingest_paths(
                knowledge.clone(),
                chunker,
                std::slice::from_ref(&dataset.corpus_path),
                &opts,
                &(),
            )
            .await?;
            if let Some(f) = report.failures.first() {
                return Err(EvalError::Dataset(format!("{}: {}", f.path, f.reason)));
            }
            IngestFigures {
                seconds: report.seconds,
                passages: report.chunks,
                passages_per_s: report.passages_per_s,
                reused: false,
            }
        }
    };
    // Records are stored as `<path to corpus.jsonl>#<id>`; the path is wherever the dataset was
    // when the collection was built (a reused collection may come from another checkout).
    let record_id = |source: &str| {
        source
            .split_once("corpus.jsonl#")
            .map(|(_, id)| id.to_owned())
    };

    let mut results = Vec::new();
    let mut runs = Vec::new();
    for &mode in &options.modes {
        let requests: Vec<(String, SearchRequest)> = dataset
            .queries
            .iter()
            .map(|(id, text)| {
                Ok((
                    id.clone(),
                    SearchRequest {
                        query: QueryText::parse(text)?,
                        collections: Some(vec![collection.clone()]),
                        mode,
                        k: TopK::new(options.depth)?,
                    },
                ))
            })
            .collect::<Result<_, base::Error>>()?;
        let mut ms = Vec::with_capacity(requests.len());
        let mut run: Run = Vec::with_capacity(requests.len());
        let started = Instant::now();
        for (qid, request) in &requests {
            let t = Instant::now();
            let results = knowledge.search(request).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let mut best: HashMap<String, f64> = HashMap::new();
            for hit in results.hits {
                let Some(doc) = record_id(&hit.passage.source) else {
                    continue;
                };
                // Scores are kept at the precision the run file prints, so trec_eval reading the
                // file sees exactly the ties we ranked with.
                let score = (f64::from(hit.score) * 1e9).round() / 1e9;
                best.entry(doc)
                    .and_modify(|s| *s = s.max(score))
                    .or_insert(score);
            }
            let mut docs: Vec<(String, f64)> = best.into_iter().collect();
            trec_order(&mut docs);
            docs.truncate(100.max(options.depth.min(1000)));
            run.push((qid.clone(), docs));
        }
        let qps = requests.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let qps_concurrent = if options.concurrency > 1 {
            Some(concurrent_qps(&knowledge, &requests, options.concurrency).await?)
        } else {
            None
        };
        let per_query: Vec<Metrics> = run
            .iter()
            .map(|(qid, docs)| evaluate(docs, &dataset.qrels[qid]))
            .collect();
        results.push(ModeResult {
            mode: mode.as_str().to_owned(),
            metrics: Metrics::mean(&per_query),
            latency_ms: latency(ms),
            qps,
            qps_concurrent,
        });
        runs.push((mode, run));
    }
    let r = knowledge.retrieval();
    let report = Report {
        dataset: dataset.name.clone(),
        split: dataset.split.clone(),
        queries: dataset.queries.len(),
        corpus_docs: dataset.corpus_docs,
        config: serde_json::json!({
            "model": model,
            "collection": collection.as_str(),
            "depth": options.depth,
            "aggregation": "max",
            "retrieval": r,
            "chunker": fingerprint,
        }),
        results,
        ingest,
        skipped: dataset.skipped.clone(),
    };
    Ok((report, runs))
}

async fn concurrent_qps(
    knowledge: &Arc<Knowledge>,
    requests: &[(String, SearchRequest)],
    concurrency: usize,
) -> Result<f64, EvalError> {
    let queue = Arc::new(tokio::sync::Mutex::new(
        requests.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queue, knowledge) = (queue.clone(), knowledge.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().await.pop();
                let Some(request) = next else {
                    return Ok::<_, base::Error>(());
                };
                knowledge.search(&request).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(requests.len() as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// TREC run file lines: `qid Q0 docid rank score tag`.
pub fn trec_run(run: &Run, tag: &str) -> String {
    let mut out = String::new();
    for (qid, docs) in run {
        for (i, (doc, score)) in docs.iter().enumerate() {
            out.push_str(&format!("{qid} Q0 {doc} {} {score:.9} {tag}\n", i + 1));
        }
    }
    out
}

/// The Markdown table printed after a run.
pub fn markdown(report: &Report) -> String {
    let mut s = format!(
        "{} ({} split): {} queries, {} documents\n\n| mode | nDCG@10 | R@10 | R@100 | MRR@10 | MAP@100 | p50 ms | p95 ms | p99 ms | q/s |\n|---|---|---|---|---|---|---|---|---|---|\n",
        report.dataset, report.split, report.queries, report.corpus_docs
    );
    for r in &report.results {
        let m = &r.metrics;
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            r.mode,
            m.ndcg_10,
            m.recall_10,
            m.recall_100,
            m.mrr_10,
            m.map_100,
            r.latency_ms.p50,
            r.latency_ms.p95,
            r.latency_ms.p99,
            r.qps
        ));
    }
    let k = &report.skipped;
    if *k != Skipped::default() {
        s.push_str(&format!(
            "\nleft out: {} empty documents, {} judgements for absent documents, {} for absent \
             queries, {} judged queries without text\n",
            k.empty_documents,
            k.judgements_for_absent_documents,
            k.judgements_for_absent_queries,
            k.empty_queries
        ));
    }
    let i = &report.ingest;
    if i.reused {
        s.push_str(&format!(
            "\ncorpus collection reused ({} passages)\n",
            i.passages
        ));
    } else {
        s.push_str(&format!(
            "\ningested {} passages in {:.1}s ({:.1} passages/s)\n",
            i.passages, i.seconds, i.passages_per_s
        ));
    }
    s
}

/// nDCG@10 of each dataset and mode, and the means, as a Markdown table.
pub fn suite_markdown(suite: &Suite) -> String {
    let mut s = String::from("| nDCG@10 |");
    for m in &suite.mean {
        s.push_str(&format!(" {} |", m.mode));
    }
    s.push_str(&format!("\n|---|{}\n", "---|".repeat(suite.mean.len())));
    for report in &suite.datasets {
        s.push_str(&format!("| {} ({}) |", report.dataset, report.split));
        for m in &suite.mean {
            match report.results.iter().find(|r| r.mode == m.mode) {
                Some(r) => s.push_str(&format!(" {:.4} |", r.metrics.ndcg_10)),
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s.push_str("| mean |");
    for m in &suite.mean {
        s.push_str(&format!(" {:.4} |", m.ndcg_10));
    }
    s.push('\n');
    s
}

/// Every metric that fell more than `max_drop` below the baseline, dataset by dataset (matched
/// by name and split; a dataset the baseline lacks is not gated), and every mean.
pub fn suite_regressions(suite: &Suite, baseline: &Suite, max_drop: f64) -> Vec<String> {
    let mut out = Vec::new();
    for report in &suite.datasets {
        if let Some(before) = baseline
            .datasets
            .iter()
            .find(|b| b.dataset == report.dataset && b.split == report.split)
        {
            out.extend(
                regressions(report, before, max_drop)
                    .into_iter()
                    .map(|r| format!("{} ({}): {r}", report.dataset, report.split)),
            );
        }
    }
    let gated_all = suite.datasets.len() == baseline.datasets.len()
        && suite.datasets.iter().all(|r| {
            baseline
                .datasets
                .iter()
                .any(|b| b.dataset == r.dataset && b.split == r.split)
        });
    if gated_all {
        for before in &baseline.mean {
            if let Some(now) = suite.mean.iter().find(|m| m.mode == before.mode)
                && before.ndcg_10 - now.ndcg_10 > max_drop
            {
                out.push(format!(
                    "mean ndcg@10 of mode {} fell from {:.4} to {:.4} (more than {max_drop})",
                    now.mode, before.ndcg_10, now.ndcg_10
                ));
            }
        }
    }
    out
}

/// Every metric of every mode that fell more than `max_drop` below the baseline report.
pub fn regressions(report: &Report, baseline: &Report, max_drop: f64) -> Vec<String> {
    let mut out = Vec::new();
    for b in &baseline.results {
        let Some(r) = report.results.iter().find(|r| r.mode == b.mode) else {
            continue;
        };
        for name in Metrics::NAMES {
            let (now, before) = (
                r.metrics.get(name).unwrap_or(0.0),
                b.metrics.get(name).unwrap_or(0.0),
            );
            if before - now > max_drop {
                out.push(format!(
                    "{name} of mode {} fell from {before:.4} to {now:.4} (more than {max_drop})",
                    b.mode
                ));
            }
        }
    }
    out
}

/// A baseline: a suite, or one dataset's report (as earlier versions wrote).
pub fn load_baseline(path: &std::path::Path) -> Result<Suite, EvalError> {
    let bad = |msg: String| EvalError::Baseline {
        path: path.display().to_string(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if value.get("datasets").is_some() {
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    } else {
        let report: Report = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        Ok(Suite::new(vec![report]))
    }
}
