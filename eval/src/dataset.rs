//! A retrieval dataset in BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
//! Datasets are taken as they are published: documents with nothing in them, and judgements for
//! documents or queries that are absent, are counted and left out. Only malformed input (bad
//! JSON, a missing or duplicate id, a judgement that is not three or four tab-separated fields
//! with an integer score) stops, with the file and line named.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EvalError;

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub split: String,
    pub corpus_path: PathBuf,
    /// Documents with a title or text (the ones ingested).
    pub corpus_docs: usize,
    /// Queries that have at least one relevant judgement in the split, in file order.
    pub queries: Vec<(String, String)>,
    /// query id → document id → judgement (graded relevance as given).
    pub qrels: HashMap<String, HashMap<String, i32>>,
    pub skipped: Skipped,
}

/// What the dataset holds that cannot be evaluated, counted rather than refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Documents with neither title nor text: never ingested, so never retrieved (a judgement
    /// for one still counts against recall, as in trec_eval).
    pub empty_documents: usize,
    /// Judgements naming a document the corpus does not have.
    pub judgements_for_absent_documents: usize,
    /// Judgements naming a query `queries.jsonl` does not have.
    pub judgements_for_absent_queries: usize,
    /// Judged queries with no text.
    pub empty_queries: usize,
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
    id: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// A JSONL file's records as (id, title, text), each line checked and each id once.
fn records(path: &Path) -> Result<Vec<(String, String, String)>, EvalError> {
    let text = read(path)?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| bad(path, i + 1, e))?;
        let id = match r.id {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                return Err(bad(
                    path,
                    i + 1,
                    "\"_id\" must be a non-empty string or number",
                ));
            }
        };
        if !seen.insert(id.clone()) {
            return Err(bad(path, i + 1, format!("duplicate _id {id:?}")));
        }
        out.push((id, r.title.unwrap_or_default(), r.text.unwrap_or_default()));
    }
    Ok(out)
}

/// The split to use when none is named: `test` if the dataset has it, else its only split.
pub fn default_split(dir: &Path) -> Result<String, EvalError> {
    let qrels = dir.join("qrels");
    if qrels.join("test.tsv").exists() {
        return Ok("test".into());
    }
    let splits: Vec<String> = std::fs::read_dir(&qrels)
        .map_err(|e| EvalError::Dataset(format!("{}: {e}", qrels.display())))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".tsv"))
                .map(str::to_owned)
        })
        .collect();
    match splits.as_slice() {
        [only] => Ok(only.clone()),
        _ => Err(EvalError::Dataset(format!(
            "{}: no test.tsv, and {} other splits: name one with --split",
            qrels.display(),
            splits.len()
        ))),
    }
}

impl Dataset {
    pub fn load(dir: &Path, split: &str) -> Result<Self, EvalError> {
        let corpus_path = dir.join("corpus.jsonl");
        let queries_path = dir.join("queries.jsonl");
        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        let mut skipped = Skipped::default();
        let mut corpus_ids = HashSet::new();
        let mut corpus_docs = 0;
        for (id, title, text) in records(&corpus_path)? {
            if title.trim().is_empty() && text.trim().is_empty() {
                skipped.empty_documents += 1;
            } else {
                corpus_docs += 1;
            }
            corpus_ids.insert(id);
        }
        if corpus_docs == 0 {
            return Err(EvalError::Dataset(format!(
                "{}: no document has a title or text",
                corpus_path.display()
            )));
        }
        let queries_in_file = records(&queries_path)?;
        let query_ids: HashSet<&str> = queries_in_file.iter().map(|(id, ..)| id.as_str()).collect();
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
                skipped.judgements_for_absent_documents += 1;
                continue;
            }
            if !query_ids.contains(q) {
                skipped.judgements_for_absent_queries += 1;
                continue;
            }
            qrels
                .entry(q.to_owned())
                .or_default()
                .insert(d.to_owned(), r);
        }
        let mut queries = Vec::new();
        for (id, title, text) in queries_in_file {
            if qrels.get(&id).is_some_and(|j| j.values().any(|&r| r > 0)) {
                // BEIR queries carry their text in `text`; a few exports put it in `title`
                let text = if text.trim().is_empty() { title } else { text };
                if text.trim().is_empty() {
                    skipped.empty_queries += 1;
                    qrels.remove(&id);
                    continue;
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
            corpus_docs,
            queries,
            qrels,
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(corpus: &str, queries: &str, qrels: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tiny");
        std::fs::create_dir_all(root.join("qrels")).unwrap();
        std::fs::write(root.join("corpus.jsonl"), corpus).unwrap();
        std::fs::write(root.join("queries.jsonl"), queries).unwrap();
        std::fs::write(root.join("qrels/test.tsv"), qrels).unwrap();
        (dir, root)
    }

    #[test]
    fn datasets_are_taken_as_published() {
        let corpus = "{\"_id\": \"d1\", \"title\": \"Bulls\", \"text\": \"Bull riding.\"}\n\
                      {\"_id\": \"d2\", \"title\": \"\", \"text\": \"\"}\n\
                      {\"_id\": \"d3\", \"text\": \"Barrels.\"}\n";
        let queries = "{\"_id\": \"q1\", \"text\": \"bulls\"}\n{\"_id\": \"q2\", \"text\": \"\"}\n\
                       {\"_id\": \"q3\", \"text\": \"nothing relevant\"}\n";
        let qrels = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq1\tgone\t1\n\
                     q2\td3\t1\nq9\td1\t1\nq3\td3\t0\n";
        let (_dir, root) = dataset(corpus, queries, qrels);
        let d = Dataset::load(&root, "test").unwrap();
        assert_eq!(d.name, "tiny");
        assert_eq!(d.corpus_docs, 2);
        assert_eq!(d.queries, [("q1".to_owned(), "bulls".to_owned())]);
        // graded, and the empty document's judgement kept (it counts against recall)
        assert_eq!(d.qrels["q1"]["d1"], 2);
        assert_eq!(d.qrels["q1"]["d2"], 1);
        assert_eq!(
            d.skipped,
            Skipped {
                empty_documents: 1,
                judgements_for_absent_documents: 1,
                judgements_for_absent_queries: 1,
                empty_queries: 1,
            }
        );
        assert_eq!(default_split(&root).unwrap(), "test");
    }

    #[test]
    fn malformed_input_is_named_by_line() {
        let q = "{\"_id\": \"q1\", \"text\": \"bulls\"}\n";
        let j = "q1\td1\t1\n";
        for (corpus, queries, qrels, expect) in [
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n{oops\n",
                q,
                j,
                "corpus.jsonl:2:",
            ),
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n{\"_id\": \"d1\", \"text\": \"y\"}\n",
                q,
                j,
                "corpus.jsonl:2: duplicate _id",
            ),
            ("{\"text\": \"x\"}\n", q, j, "corpus.jsonl:1: \"_id\""),
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n",
                "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q1\", \"text\": \"b\"}\n",
                j,
                "queries.jsonl:2: duplicate",
            ),
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n",
                q,
                "q1\td1\tvery\n",
                "test.tsv:1: score",
            ),
            (
                "{\"_id\": \"d1\", \"text\": \"x\"}\n",
                q,
                "q1 d1 1\n",
                "test.tsv:1: expected",
            ),
            (
                "{\"_id\": \"d1\", \"text\": \"\"}\n",
                q,
                j,
                "no document has a title or text",
            ),
        ] {
            let (_dir, root) = dataset(corpus, queries, qrels);
            let err = Dataset::load(&root, "test").unwrap_err().to_string();
            assert!(err.contains(expect), "{expect:?} not in {err:?}");
        }
    }
}
