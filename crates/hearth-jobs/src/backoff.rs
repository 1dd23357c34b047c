//! How long a failed job waits before its next attempt.

use std::time::Duration;

/// The delay before retrying after failed attempt number `attempt` (from 1): `base` doubled per
/// attempt, capped at `max`, then jittered to a uniform point in its upper half, so jobs that
/// failed together (an upstream outage) do not all come back at the same moment.
pub fn retry_delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    rng: &mut impl rand::Rng,
) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let full = base
        .checked_mul(1u32 << doublings.min(31))
        .unwrap_or(max)
        .min(max);
    let half = full / 2;
    half + full.saturating_sub(half).mul_f64(rng.gen::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_double_up_to_the_cap_within_their_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..=40u32 {
            let full = Duration::from_secs(1u64 << (attempt - 1).min(20)).min(max);
            for _ in 0..50 {
                let d = retry_delay(attempt, base, max, &mut rng);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut seen: Vec<_> = (0..100)
            .map(|_| {
                retry_delay(
                    5,
                    Duration::from_secs(1),
                    Duration::from_secs(3600),
                    &mut rng,
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        assert!(
            seen.len() > 90,
            "retries after one outage should not coincide"
        );
    }

    #[test]
    fn huge_attempts_and_bases_saturate_at_the_cap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let max = Duration::from_secs(3600);
        let d = retry_delay(u32::MAX, Duration::from_secs(u64::MAX / 4), max, &mut rng);
        assert!(d <= max && d >= max / 2);
        let d = retry_delay(0, Duration::from_millis(10), max, &mut rng);
        assert!(d <= Duration::from_millis(10));
    }
}
