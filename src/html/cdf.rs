//! Latency distributions as cumulative curves, from the HDR buckets a run stores.

/// At most this many points per curve: enough for a smooth line, small enough that a report
/// of a million requests stays a few hundred kilobytes.
const MAX_POINTS: usize = 240;

/// (latency ms, percent of requests at or below it), from [ms, count] buckets in any order.
pub fn points(buckets: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, u64)> = buckets
        .iter()
        .copied()
        .filter(|(ms, n)| ms.is_finite() && *n > 0)
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = sorted.iter().map(|b| b.1).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut seen = 0u64;
    let all: Vec<(f64, f64)> = sorted
        .iter()
        .map(|(ms, n)| {
            seen += n;
            (*ms, seen as f64 * 100.0 / total as f64)
        })
        .collect();
    thin(all)
}

/// Keep the first and last point and evenly spaced ones between (by rank): the curve's shape
/// survives, its tail included.
fn thin(all: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if all.len() <= MAX_POINTS {
        return all;
    }
    let last = all.len() - 1;
    (0..MAX_POINTS)
        .map(|i| all[i * last / (MAX_POINTS - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_rises_to_one_hundred_percent_and_is_thinned() {
        let p = points(&[(3.0, 1), (1.0, 2), (2.0, 1)]);
        assert_eq!(p, vec![(1.0, 50.0), (2.0, 75.0), (3.0, 100.0)]);
        let many: Vec<(f64, u64)> = (1..=10_000).map(|i| (i as f64, 1)).collect();
        let thin = points(&many);
        assert_eq!(thin.len(), MAX_POINTS);
        assert_eq!(thin[0], (1.0, 0.01));
        assert_eq!(*thin.last().unwrap(), (10_000.0, 100.0));
        assert!(points(&[]).is_empty());
    }
}
