//! Retrieval metrics over ranked document lists with binary relevance.

use std::collections::HashSet;

/// nDCG@k: the discounted gain of the relevant items in `ranked[..k]` over the best possible.
pub fn ndcg_at<T: Eq + std::hash::Hash>(ranked: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, item)| relevant.contains(*item))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    dcg / ideal
}

/// Recall@k: the share of relevant items found in `ranked[..k]`.
pub fn recall_at<T: Eq + std::hash::Hash>(ranked: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|item| relevant.contains(*item))
        .count();
    found as f64 / relevant.len() as f64
}

/// Reciprocal rank of the first relevant item in `ranked[..k]` (0 when none).
pub fn reciprocal_rank_at<T: Eq + std::hash::Hash>(
    ranked: &[T],
    relevant: &HashSet<T>,
    k: usize,
) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|item| relevant.contains(item))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Items in order of first appearance (several chunks of one document count once).
pub fn first_occurrences<T: Eq + std::hash::Hash + Clone>(
    items: impl IntoIterator<Item = T>,
) -> Vec<T> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let relevant: HashSet<&str> = ["a", "b"].into();
        let perfect = ["a", "b", "c"];
        assert!((ndcg_at(&perfect, &relevant, 10) - 1.0).abs() < 1e-12);
        let late = ["c", "a", "d", "b"];
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&late, &relevant, 10) - dcg / ideal).abs() < 1e-12);
        assert!((recall_at(&late, &relevant, 2) - 0.5).abs() < 1e-12);
        assert!((reciprocal_rank_at(&late, &relevant, 10) - 0.5).abs() < 1e-12);
        assert_eq!(ndcg_at(&["x"], &relevant, 10), 0.0);
        assert_eq!(reciprocal_rank_at(&["x"], &relevant, 10), 0.0);
        assert_eq!(
            first_occurrences(["a", "b", "a", "c", "b"]),
            vec!["a", "b", "c"]
        );
    }
}
