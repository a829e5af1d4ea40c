//! Ranking metrics with trec_eval's definitions (as `pytrec_eval` computes them): documents are
//! ranked by score descending, ties broken by document id descending; a judgement above 0 is
//! relevant; nDCG uses the judgement as a linear gain and log2(rank + 1) as the discount, with the
//! ideal ranking built from every judged document.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The metrics of one query or their mean over queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    #[serde(rename = "recall@10")]
    pub recall_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_100: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_10: f64,
    #[serde(rename = "map@100")]
    pub map_100: f64,
}

impl Metrics {
    pub const NAMES: [&'static str; 5] =
        ["ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100"];

    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "ndcg@10" => self.ndcg_10,
            "recall@10" => self.recall_10,
            "recall@100" => self.recall_100,
            "mrr@10" => self.mrr_10,
            "map@100" => self.map_100,
            _ => return None,
        })
    }

    pub fn mean(all: &[Metrics]) -> Metrics {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&Metrics) -> f64| all.iter().map(f).sum::<f64>() / n;
        Metrics {
            ndcg_10: sum(|m| m.ndcg_10),
            recall_10: sum(|m| m.recall_10),
            recall_100: sum(|m| m.recall_100),
            mrr_10: sum(|m| m.mrr_10),
            map_100: sum(|m| m.map_100),
        }
    }
}

/// Sorts a run the way trec_eval does: score descending, then document id descending.
pub fn trec_order(run: &mut [(String, f64)]) {
    run.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
}

/// Metrics of one query. `run` must already be in [`trec_order`]; `qrels` maps document ids to
/// judgements.
pub fn evaluate(run: &[(String, f64)], qrels: &HashMap<String, i32>) -> Metrics {
    let relevant = qrels.values().filter(|&&r| r > 0).count();
    if relevant == 0 {
        return Metrics::default();
    }
    let rel = |doc: &str| qrels.get(doc).copied().unwrap_or(0);

    let dcg = |gains: &mut dyn Iterator<Item = i32>| -> f64 {
        gains
            .take(10)
            .enumerate()
            .map(|(i, g)| f64::from(g.max(0)) / ((i + 2) as f64).log2())
            .sum()
    };
    let mut ideal: Vec<i32> = qrels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg = dcg(&mut ideal.into_iter());
    let ndcg_10 = if idcg > 0.0 {
        dcg(&mut run.iter().map(|(d, _)| rel(d))) / idcg
    } else {
        0.0
    };

    let found = |k: usize| run.iter().take(k).filter(|(d, _)| rel(d) > 0).count() as f64;
    let mrr_10 = run
        .iter()
        .take(10)
        .position(|(d, _)| rel(d) > 0)
        .map(|p| 1.0 / (p + 1) as f64)
        .unwrap_or(0.0);
    let mut hits = 0.0;
    let mut precision_sum = 0.0;
    for (i, (d, _)) in run.iter().take(100).enumerate() {
        if rel(d) > 0 {
            hits += 1.0;
            precision_sum += hits / (i + 1) as f64;
        }
    }
    Metrics {
        ndcg_10,
        recall_10: found(10) / relevant as f64,
        recall_100: found(100) / relevant as f64,
        mrr_10,
        map_100: precision_sum / relevant as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ids: &[&str]) -> Vec<(String, f64)> {
        ids.iter()
            .enumerate()
            .map(|(i, d)| (d.to_string(), 100.0 - i as f64))
            .collect()
    }

    #[test]
    fn hand_computed_values() {
        let qrels: HashMap<String, i32> = [("a", 1), ("b", 2), ("z", 1)]
            .iter()
            .map(|(d, r)| (d.to_string(), *r))
            .collect();
        let m = evaluate(&run(&["x", "b", "y", "a"]), &qrels);
        let dcg = 2.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m.ndcg_10 - dcg / idcg).abs() < 1e-12);
        assert!((m.recall_10 - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.mrr_10 - 0.5).abs() < 1e-12);
        assert!((m.map_100 - (0.5 + 0.5) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn ties_break_by_document_id_descending() {
        let mut r = vec![
            ("a".to_string(), 1.0),
            ("c".to_string(), 1.0),
            ("b".to_string(), 2.0),
        ];
        trec_order(&mut r);
        let ids: Vec<&str> = r.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(ids, vec!["b", "c", "a"]);
    }

    #[test]
    fn no_relevant_documents_score_zero() {
        let qrels: HashMap<String, i32> = [("a".to_string(), 0)].into_iter().collect();
        assert_eq!(evaluate(&run(&["a"]), &qrels), Metrics::default());
    }
}
