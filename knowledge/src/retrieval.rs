//! Fusion of ranked candidate lists.

use std::collections::HashMap;

use crate::config::Fusion;
use crate::vector::Neighbour;

/// Fuses weighted candidate lists with the configured method.
pub fn fuse(lists: &[(&[(String, f32)], f32)], fusion: Fusion, rrf_k: f32) -> Vec<(String, f32)> {
    match fusion {
        Fusion::Rrf => reciprocal_rank_fusion(lists, rrf_k),
        Fusion::Convex => convex_combination(lists),
        Fusion::Blend => blend(lists, rrf_k),
    }
}

/// The mean of the convex combination and reciprocal rank fusion, each scaled to [0, 1]: scores
/// where one list is confident, ranks where the scales mislead.
pub fn blend(lists: &[(&[(String, f32)], f32)], k: f32) -> Vec<(String, f32)> {
    let total: f32 = lists.iter().map(|(_, w)| w).sum::<f32>().max(f32::EPSILON);
    let mut scores: HashMap<&str, (f32, usize)> = HashMap::new();
    let mut order = 0;
    let convex = convex_combination(lists);
    let rrf = reciprocal_rank_fusion(lists, k);
    for (fused, scale) in [(&convex, 1.0 / total), (&rrf, (k + 1.0) / total)] {
        for (id, score) in fused {
            let entry = scores.entry(id.as_str()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += 0.5 * score * scale;
        }
    }
    sorted(scores)
}

/// Weighted sum of min-max normalised scores: each list's scores are mapped to [0, 1] over its
/// own candidates (absent candidates count 0), so BM25's unbounded scores and cosine
/// similarities become comparable. Ties keep the order of first appearance.
pub fn convex_combination(lists: &[(&[(String, f32)], f32)]) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for (list, weight) in lists {
        let max = list.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
        let min = list.iter().map(|x| x.1).fold(f32::INFINITY, f32::min);
        let span = max - min;
        for (id, score) in list.iter() {
            let norm = if span > 0.0 {
                (score - min) / span
            } else {
                1.0
            };
            let entry = scores.entry(id.as_str()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += weight * norm;
        }
    }
    sorted(scores)
}

fn sorted(scores: HashMap<&str, (f32, usize)>) -> Vec<(String, f32)> {
    let mut fused: Vec<(&str, (f32, usize))> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    fused
        .into_iter()
        .map(|(id, (score, _))| (id.to_owned(), score))
        .collect()
}

/// Weighted reciprocal rank fusion: each list contributes `weight / (k + rank)` (rank from 1) to
/// every id it holds. Ties keep the order of first appearance, so the result is deterministic.
pub fn reciprocal_rank_fusion(lists: &[(&[(String, f32)], f32)], k: f32) -> Vec<(String, f32)> {
    let mut scores: HashMap<&str, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for (list, weight) in lists {
        for (rank, (id, _)) in list.iter().enumerate() {
            let entry = scores.entry(id.as_str()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            entry.0 += weight / (k + rank as f32 + 1.0);
        }
    }
    sorted(scores)
}

/// Rocchio's feedback for a unit-length query vector: `alpha · query + (1 − alpha) · mean of
/// the passages' vectors`, scaled back to unit length. `None` when no passage has the query's
/// dimension or the sum has no length.
pub fn rocchio(query: &[f32], passages: &[Vec<f32>], alpha: f32) -> Option<Vec<f32>> {
    let same: Vec<&Vec<f32>> = passages.iter().filter(|p| p.len() == query.len()).collect();
    if same.is_empty() {
        return None;
    }
    let share = (1.0 - alpha) / same.len() as f32;
    let mut moved: Vec<f32> = query.iter().map(|q| alpha * q).collect();
    for p in same {
        for (m, x) in moved.iter_mut().zip(p) {
            *m += share * x;
        }
    }
    let length = moved.iter().map(|x| x * x).sum::<f32>().sqrt();
    (length > f32::EPSILON && length.is_finite())
        .then(|| moved.iter().map(|x| x / length).collect())
}

/// The dense candidates ranked again by cosine similarity to `query` (a unit vector), best
/// first: the feedback pass reorders what the first search found instead of searching again.
/// A candidate without a vector keeps no place.
pub fn rescored(query: &[f32], candidates: &[Neighbour]) -> Vec<(String, f32)> {
    let mut scored: Vec<(String, f32)> = candidates
        .iter()
        .filter(|n| n.vector.len() == query.len())
        .map(|n| {
            let dot: f32 = n.vector.iter().zip(query).map(|(a, b)| a * b).sum();
            let length = n.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            let cosine = if length > f32::EPSILON {
                dot / length
            } else {
                0.0
            };
            (n.chunk_id.clone(), cosine)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter().map(|i| (i.to_string(), 0.0)).collect()
    }

    fn scored(pairs: &[(&str, f32)]) -> Vec<(String, f32)> {
        pairs.iter().map(|(i, s)| (i.to_string(), *s)).collect()
    }

    #[test]
    fn items_in_both_lists_win() {
        let a = list(&["x", "y", "z"]);
        let b = list(&["z", "w", "y"]);
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 1.0)], 60.0);
        let ids: Vec<&str> = fused.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, vec!["z", "y", "x", "w"]);
        let expected_z = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((fused[0].1 - expected_z).abs() < 1e-6);
    }

    #[test]
    fn convex_combination_normalises_each_list() {
        let bm25 = scored(&[("a", 12.0), ("b", 8.0), ("c", 4.0)]);
        let dense = scored(&[("c", 0.9), ("b", 0.8), ("d", 0.5)]);
        let fused = convex_combination(&[(&bm25, 1.0), (&dense, 1.0)]);
        let got: Vec<(&str, f32)> = fused.iter().map(|(i, s)| (i.as_str(), *s)).collect();
        // a: 1 + 0; b: 0.5 + 0.75; c: 0 + 1; d: 0 + 0
        assert_eq!(got[0].0, "b");
        assert!((got[0].1 - 1.25).abs() < 1e-6);
        assert_eq!((got[1].0, got[2].0, got[3].0), ("a", "c", "d"));
        assert_eq!(fuse(&[(&bm25, 1.0)], Fusion::Rrf, 60.0)[0].0, "a");
    }

    #[test]
    fn the_blend_is_the_mean_of_convex_and_rrf_each_scaled_to_one() {
        let bm25 = scored(&[("a", 8.0), ("b", 2.0), ("c", 1.0)]);
        let dense = scored(&[("c", 0.8), ("b", 0.6)]);
        let lists = [(bm25.as_slice(), 1.0), (dense.as_slice(), 1.0)];
        let blended = fuse(&lists, Fusion::Blend, 60.0);
        let got: Vec<(&str, f32)> = blended.iter().map(|(i, s)| (i.as_str(), *s)).collect();
        // convex: a 1, b 1/7 + 0, c 0 + 1; rrf: a 1/61, b 1/62 + 1/62, c 1/63 + 1/61
        let expect = |convex: f32, rrf: f32| 0.5 * convex / 2.0 + 0.5 * rrf * 61.0 / 2.0;
        let (a, b, c) = (
            expect(1.0, 1.0 / 61.0),
            expect(1.0 / 7.0, 2.0 / 62.0),
            expect(1.0, 1.0 / 63.0 + 1.0 / 61.0),
        );
        // b, second in both lists, passes a, first in one of them
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), ["c", "b", "a"]);
        for ((_, got), want) in got.iter().zip([c, b, a]) {
            assert!((got - want).abs() < 1e-6, "{got} != {want}");
        }
        // one list alone keeps its order
        let alone = fuse(&[(&bm25, 1.0)], Fusion::Blend, 60.0);
        assert_eq!(
            alone.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn rocchio_moves_the_query_toward_the_passages_mean() {
        let moved = rocchio(&[1.0, 0.0], &[vec![0.0, 1.0], vec![0.0, 1.0]], 0.5).unwrap();
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((moved[0] - half).abs() < 1e-6 && (moved[1] - half).abs() < 1e-6);
        // the passages' mean, not their sum: two passages weigh as much as one
        let moved = rocchio(&[1.0, 0.0], &[vec![0.0, 1.0], vec![0.0, 0.0]], 0.5).unwrap();
        assert!((moved[0] / moved[1] - 2.0).abs() < 1e-5, "{moved:?}");
        // alpha 1 keeps the query; passages of another dimension are ignored
        assert_eq!(
            rocchio(&[0.6, 0.8], &[vec![1.0, 0.0]], 1.0).unwrap(),
            [0.6, 0.8]
        );
        assert_eq!(rocchio(&[1.0, 0.0], &[vec![1.0, 0.0, 0.0]], 0.5), None);
        assert_eq!(rocchio(&[1.0, 0.0], &[], 0.5), None);
        // opposite vectors cancel: nothing to search with
        assert_eq!(rocchio(&[1.0, 0.0], &[vec![-1.0, 0.0]], 0.5), None);
    }

    #[test]
    fn rescoring_orders_the_candidates_by_cosine_to_the_moved_query() {
        let n = |id: &str, v: Vec<f32>| Neighbour {
            chunk_id: id.into(),
            score: 0.0,
            vector: v,
        };
        let candidates = [
            n("a", vec![1.0, 0.0]),
            n("b", vec![0.0, 2.0]),
            n("c", vec![3.0, 3.0]),
            n("short", vec![1.0]),
            n("none", vec![]),
        ];
        let got = rescored(&[0.0, 1.0], &candidates);
        let ids: Vec<&str> = got.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "c", "a"],
            "unscaled cosine; wrong or no vector drops"
        );
        assert!((got[0].1 - 1.0).abs() < 1e-6 && (got[1].1 - 0.5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn weights_shift_the_order() {
        let a = list(&["x"]);
        let b = list(&["y"]);
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 2.0)], 60.0);
        assert_eq!(fused[0].0, "y");
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 1.0)], 60.0);
        assert_eq!(fused[0].0, "x", "ties keep first appearance");
    }
}
