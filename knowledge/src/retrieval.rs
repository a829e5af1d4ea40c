//! Fusion of ranked candidate lists.

use std::collections::HashMap;

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
    let mut fused: Vec<(&str, (f32, usize))> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    fused
        .into_iter()
        .map(|(id, (score, _))| (id.to_owned(), score))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter().map(|i| (i.to_string(), 0.0)).collect()
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
    fn weights_shift_the_order() {
        let a = list(&["x"]);
        let b = list(&["y"]);
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 2.0)], 60.0);
        assert_eq!(fused[0].0, "y");
        let fused = reciprocal_rank_fusion(&[(&a, 1.0), (&b, 1.0)], 60.0);
        assert_eq!(fused[0].0, "x", "ties keep first appearance");
    }
}
