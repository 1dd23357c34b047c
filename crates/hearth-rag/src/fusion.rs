//! Fusing rankings into one. Reciprocal rank fusion uses ranks alone, so scores on different
//! scales (BM25, cosine) need no calibration: each list adds `weight / (k + rank)` to an item.
//! Convex combination uses the scores themselves, each list's scaled to 0–1 between the worst and
//! the best score it returned ("relative score fusion"; Bruch et al., "An Analysis of Fusion
//! Functions for Hybrid Retrieval", 2023, find score-based fusion ahead of RRF when tuned).

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
    best_first(scores)
}

/// One scored list to fuse: `(item, score)` best first, and the list's weight.
#[derive(Clone, Debug)]
pub struct Scored<T> {
    pub items: Vec<(T, f64)>,
    pub weight: f64,
}

/// Fuses `lists` by convex combination: each item scores the sum over lists of
/// `weight * (score - worst) / (best - worst)` (1 when a list's scores are all equal), 0 where a
/// list did not return it. Items by fused score, best first; ties keep the order in which items
/// were first seen.
pub fn convex_combination<T: Clone + Eq + Hash>(lists: &[Scored<T>]) -> Vec<(T, f64)> {
    let mut scores: HashMap<T, (f64, usize)> = HashMap::new();
    let mut seen = 0usize;
    for list in lists {
        let values = list.items.iter().map(|(_, s)| *s);
        let best = values.clone().fold(f64::NEG_INFINITY, f64::max);
        let worst = values.fold(f64::INFINITY, f64::min);
        let span = best - worst;
        for (item, score) in &list.items {
            let scaled = if span > 0.0 {
                ((score - worst) / span).clamp(0.0, 1.0)
            } else {
                1.0
            };
            let entry = scores.entry(item.clone()).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += list.weight * scaled;
        }
    }
    best_first(scores)
}

/// Items by score, best first; ties in the order they were first seen.
fn best_first<T>(scores: HashMap<T, (f64, usize)>) -> Vec<(T, f64)> {
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
    #[test]
    fn convex_combination_scales_each_list_between_its_worst_and_best() {
        let bm25 = Scored {
            items: vec![("a", 12.0), ("b", 8.0), ("d", 4.0)],
            weight: 1.0,
        };
        let cosine = Scored {
            items: vec![("b", 0.9), ("c", 0.7), ("a", 0.5)],
            weight: 1.0,
        };
        let fused = convex_combination(&[bm25.clone(), cosine.clone()]);
        // b: 0.5 + 1.0; a: 1.0 + 0; c: 0 + 0.5; d: 0 + 0.
        let order: Vec<_> = fused.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec!["b", "a", "c", "d"]);
        assert!((fused[0].1 - 1.5).abs() < 1e-12);
        assert!((fused[2].1 - 0.5).abs() < 1e-12);
        // Weight 0 leaves the other list's order.
        let only_bm25 = convex_combination(&[
            bm25,
            Scored {
                weight: 0.0,
                ..cosine
            },
        ]);
        assert_eq!(only_bm25[0].0, "a");
        assert!(convex_combination::<u8>(&[]).is_empty());
    }

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
