//! Change points in a benchmark's series: where its level moved, and by how much.
//!
//! Binary segmentation with Welch's t statistic: in a segment, the split (at least
//! `MIN_SEGMENT` points on each side) with the largest |t| between the means before and after
//! is a change point when |t| ≥ `T_THRESHOLD` and the means differ by at least the minimum
//! effect; then both halves are searched again. Deterministic counts have no spread within a
//! segment, so any shift past the minimum effect is a change there.

/// Points each side of a change needs.
pub const MIN_SEGMENT: usize = 3;
/// |t| a split must reach: conservative, since every split of a series is tried.
pub const T_THRESHOLD: f64 = 5.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Index of the first point after the change.
    pub at: usize,
    pub before: f64,
    pub after: f64,
}

impl Change {
    /// after / before - 1.
    pub fn relative(&self) -> f64 {
        if self.before == 0.0 {
            f64::INFINITY
        } else {
            self.after / self.before - 1.0
        }
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn variance(x: &[f64], m: f64) -> f64 {
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// |t| of Welch's test between two segments; infinite when neither varies but they differ.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let se = (variance(a, ma) / a.len() as f64 + variance(b, mb) / b.len() as f64).sqrt();
    if se == 0.0 {
        if ma == mb {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (ma - mb).abs() / se
    }
}

/// Every change point of `series` moving the level by at least `min_effect` (0.05 is 5%),
/// in order.
pub fn change_points(series: &[f64], min_effect: f64) -> Vec<Change> {
    let mut found = Vec::new();
    segment(series, 0, min_effect, &mut found);
    found.sort_by_key(|c| c.at);
    found
}

fn segment(x: &[f64], offset: usize, min_effect: f64, found: &mut Vec<Change>) {
    if x.len() < 2 * MIN_SEGMENT {
        return;
    }
    let best = (MIN_SEGMENT..=x.len() - MIN_SEGMENT)
        .map(|k| (k, welch_t(&x[..k], &x[k..])))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((k, t)) = best else { return };
    let change = Change {
        at: offset + k,
        before: mean(&x[..k]),
        after: mean(&x[k..]),
    };
    if t < T_THRESHOLD || change.relative().abs() < min_effect {
        return;
    }
    found.push(change);
    segment(&x[..k], offset, min_effect, found);
    segment(&x[k..], offset + k, min_effect, found);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level with ±1% wobble that repeats every 5 points.
    fn level(value: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| value * (1.0 + [0.0, 0.01, -0.01, 0.005, -0.005][i % 5]))
            .collect()
    }

    #[test]
    fn a_step_is_found_where_it_happened() {
        let mut s = level(100.0, 8);
        s.extend(level(120.0, 8));
        let c = change_points(&s, 0.05);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].at, 8);
        assert!((c[0].relative() - 0.2).abs() < 0.01);
    }

    #[test]
    fn noise_and_small_shifts_are_not_changes() {
        assert!(change_points(&level(100.0, 30), 0.05).is_empty());
        let mut s = level(100.0, 10);
        s.extend(level(102.0, 10));
        assert!(
            change_points(&s, 0.05).is_empty(),
            "2% is below the 5% effect"
        );
    }

    #[test]
    fn exact_counts_change_at_any_shift_past_the_effect() {
        // Two steps: the larger split is found first, then the other inside its half.
        let mut s = vec![1000.0; 6];
        s.extend([1030.0; 6]);
        s.extend([990.0; 6]);
        let c = change_points(&s, 0.01);
        let at: Vec<usize> = c.iter().map(|c| c.at).collect();
        assert_eq!(at, [6, 12]);
        assert!((c[0].relative() - 0.03).abs() < 1e-9);
    }

    #[test]
    fn short_series_have_no_change_points() {
        assert!(change_points(&[1.0, 100.0, 1.0, 100.0, 1.0], 0.01).is_empty());
        assert!(change_points(&[], 0.01).is_empty());
    }
}
