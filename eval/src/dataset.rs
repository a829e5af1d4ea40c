//! A retrieval dataset in BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
//! Malformed input stops with the file and line named.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::EvalError;

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub split: String,
    pub corpus_path: PathBuf,
    pub corpus_docs: usize,
    /// Queries that have at least one judgement in the split, in file order.
    pub queries: Vec<(String, String)>,
    /// query id → document id → judgement.
    pub qrels: HashMap<String, HashMap<String, i32>>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> EvalError {
    EvalError::Dataset(format!("{}:{line}: {msg}", path.display()))
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path)
        .map_err(|e| EvalError::Dataset(format!("{}: {e}", path.display())))
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "_id")]
    id: serde_json::Value,
    text: Option<String>,
}

fn record_id(path: &Path, line: usize, v: &serde_json::Value) -> Result<String, EvalError> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad(
            path,
            line,
            "\"_id\" must be a non-empty string or number",
        )),
    }
}

/// The ids of a JSONL file's records, each line checked.
fn jsonl_ids(path: &Path) -> Result<Vec<(String, Option<String>)>, EvalError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| bad(path, i + 1, e))?;
        out.push((record_id(path, i + 1, &r.id)?, r.text));
    }
    Ok(out)
}

impl Dataset {
    pub fn load(dir: &Path, split: &str) -> Result<Self, EvalError> {
        let corpus_path = dir.join("corpus.jsonl");
        let queries_path = dir.join("queries.jsonl");
        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        let corpus_ids: HashSet<String> = jsonl_ids(&corpus_path)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if corpus_ids.is_empty() {
            return Err(EvalError::Dataset(format!(
                "{}: no documents",
                corpus_path.display()
            )));
        }
        let mut qrels: HashMap<String, HashMap<String, i32>> = HashMap::new();
        let text = read(&qrels_path)?;
        for (i, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            if line.trim().is_empty() || (i == 0 && fields.first() == Some(&"query-id")) {
                continue;
            }
            let (q, d, r) = match fields.as_slice() {
                [q, d, r] => (*q, *d, *r),
                [q, _, d, r] => (*q, *d, *r), // TREC qrels: qid iteration docid rel
                _ => {
                    return Err(bad(
                        &qrels_path,
                        i + 1,
                        "expected query-id, corpus-id and score separated by tabs",
                    ));
                }
            };
            let r: i32 = r
                .parse()
                .map_err(|_| bad(&qrels_path, i + 1, format!("score {r:?} is not an integer")))?;
            if !corpus_ids.contains(d) {
                return Err(bad(
                    &qrels_path,
                    i + 1,
                    format!("corpus-id {d:?} is not in corpus.jsonl"),
                ));
            }
            qrels
                .entry(q.to_owned())
                .or_default()
                .insert(d.to_owned(), r);
        }
        let mut queries = Vec::new();
        for (id, text) in jsonl_ids(&queries_path)? {
            if qrels.get(&id).is_some_and(|j| j.values().any(|&r| r > 0)) {
                let text = text.unwrap_or_default();
                if text.trim().is_empty() {
                    return Err(EvalError::Dataset(format!(
                        "{}: query {id:?} has no text",
                        queries_path.display()
                    )));
                }
                queries.push((id, text));
            }
        }
        if queries.is_empty() {
            return Err(EvalError::Dataset(format!(
                "split {split:?} is empty: no query in {} has a relevant judgement in {}",
                queries_path.display(),
                qrels_path.display()
            )));
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "dataset".into());
        Ok(Self {
            name,
            split: split.to_owned(),
            corpus_path,
            corpus_docs: corpus_ids.len(),
            queries,
            qrels,
        })
    }
}
