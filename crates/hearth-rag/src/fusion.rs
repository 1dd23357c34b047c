//! Reciprocal rank fusion: one ranking from several, by rank alone, so scores on different
//! scales (BM25, cosine) need no calibration. Each list adds `weight / (k + rank)` to an item.

use std::collections::HashMap;
use std::hash::Hash;

/// One ranked list to fuse: items best first, with the list's weight.
#[derive(Clone, Debug)]
pub struct Ranking<T> {
    pub items: Vec<T>,
    pub weight: f64,
}

/// Fuses `rankings` with constant `k` (60 in the original paper): items by fused score, best
/// first; ties keep the order in which items were first seen.
pub fn reciprocal_rank_fusion<T: Clone + Eq + Hash>(
    rankings: &[Ranking<T>],
    k: f64,
) -> Vec<(T, f64)> {
    let mut scores: HashMap<T, (f64, usize)> = HashMap::new();
    let mut seen = 0usize;
    for ranking in rankings {
        for (rank, item) in ranking.items.iter().enumerate() {
            let add = ranking.weight / (k + rank as f64 + 1.0);
            let entry = scores.entry(item.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += add;
        }
    }
    let mut fused: Vec<(T, f64, usize)> = scores
        .into_iter()
        .map(|(item, (score, order))| (item, score, order))
        .collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused
        .into_iter()
        .map(|(item, score, _)| (item, score))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_in_both_lists_rise_and_weights_count() {
        let bm25 = Ranking {
            items: vec!["a", "b", "c"],
            weight: 1.0,
        };
        let vector = Ranking {
            items: vec!["c", "d", "a"],
            weight: 1.0,
        };
        let fused = reciprocal_rank_fusion(&[bm25.clone(), vector.clone()], 60.0);
        let order: Vec<_> = fused.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec!["a", "c", "b", "d"]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12);

        // Weighting the vector list makes its top item win.
        let heavy = Ranking {
            weight: 3.0,
            ..vector
        };
        let fused = reciprocal_rank_fusion(&[bm25, heavy], 60.0);
        assert_eq!(fused[0].0, "c");
        assert!(reciprocal_rank_fusion::<u8>(&[], 60.0).is_empty());
    }
}
