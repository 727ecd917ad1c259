//! The percentile bootstrap of a ratio of quantiles, computed exactly instead of by
//! resampling: what infinitely many resamples would give, at a cost that grows with the
//! number of distinct values near each quantile rather than with resamples × rows. A
//! comparison of thousands of scenarios then takes a fraction of a millisecond per row.
//!
//! The nearest-rank q-quantile of a resample of n draws is the k-th smallest draw
//! (k = ceil(q n)). It is at most the j-th distinct value exactly when at least k of the n
//! draws fall at or below it: P = P(Binomial(n, F_j) >= k) = I_{F_j}(k, n - k + 1), the
//! regularized incomplete beta function, where F_j is the share of samples at or below it.
//! The ratio current / baseline of two independent such quantiles has the distribution
//! P(C / B <= t) = sum_i P(B = b_i) P(C <= t b_i); its confidence bounds are found by
//! bisection on t.

/// A resampled quantile's distribution: support values and the probability of each.
pub(super) struct QuantileLaw {
    values: Vec<f64>,
    /// P(quantile <= values[i]).
    cdf: Vec<f64>,
}

/// Probabilities below this are dropped: they cannot move a 99.9% bound.
const NEGLIGIBLE: f64 = 1e-12;

impl QuantileLaw {
    /// The law of the resampled nearest-rank q-quantile of `values` (sorted, distinct)
    /// seen `counts` times, `total` in all.
    pub(super) fn new(values: &[f64], counts: &[u64], total: u64, q: f64) -> QuantileLaw {
        let n = total as f64;
        let k = ((q * n).ceil()).clamp(1.0, n);
        // Far from the quantile the probability is 0 or 1 to many digits: skip the special
        // function there (a window of 12 binomial standard deviations around q).
        let spread = 12.0 * (q * (1.0 - q) / n).sqrt() + 1.0 / n;
        let mut cdf = Vec::with_capacity(values.len());
        let mut seen = 0u64;
        for &c in counts {
            seen += c;
            let f = seen as f64 / n;
            let p = if seen == total {
                1.0
            } else if f < q - spread {
                0.0
            } else if f > q + spread {
                1.0
            } else {
                regularized_beta(f, k, n - k + 1.0)
            };
            cdf.push(p);
        }
        QuantileLaw {
            values: values.to_vec(),
            cdf,
        }
    }

    /// P(quantile <= x).
    fn cdf_at(&self, x: f64) -> f64 {
        match self.values.partition_point(|v| *v <= x) {
            0 => 0.0,
            i => self.cdf[i - 1],
        }
    }

    /// (value, probability) pairs that carry any weight.
    fn atoms(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let mut last = 0.0;
        self.values.iter().zip(&self.cdf).filter_map(move |(v, c)| {
            let p = c - last;
            last = *c;
            (p > NEGLIGIBLE).then_some((*v, p))
        })
    }
}

/// The `level` quantile (0..1) of current / baseline, both positive; None when a baseline
/// value is not positive.
pub(super) fn ratio_quantile(base: &QuantileLaw, cur: &QuantileLaw, level: f64) -> Option<f64> {
    let atoms: Vec<(f64, f64)> = base.atoms().collect();
    if atoms.iter().any(|(b, _)| *b <= 0.0) || atoms.is_empty() {
        return None;
    }
    let below = |t: f64| -> f64 { atoms.iter().map(|(b, p)| p * cur.cdf_at(t * b)).sum() };
    let (cmin, cmax) = (*cur.values.first()?, *cur.values.last()?);
    let (bmin, bmax) = (atoms[0].0, atoms[atoms.len() - 1].0);
    let (mut lo, mut hi) = (cmin / bmax * 0.5, cmax / bmin * 2.0);
    if lo <= 0.0 {
        lo = f64::MIN_POSITIVE;
    }
    // The smallest t with P(ratio <= t) >= level, to 1e-12 relative: bisection on log t.
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if below(mid) >= level {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi / lo - 1.0 < 1e-12 {
            break;
        }
    }
    Some(hi)
}

/// ln Γ(x), x > 0: Lanczos' approximation (g = 7, nine terms), about 15 digits.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let sum = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), on the side where it converges fast.
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(Binomial(n, p) >= k), summed term by term.
    fn binomial_tail(n: u64, p: f64, k: u64) -> f64 {
        (k..=n)
            .map(|i| {
                let ln_choose = ln_gamma(n as f64 + 1.0)
                    - ln_gamma(i as f64 + 1.0)
                    - ln_gamma((n - i) as f64 + 1.0);
                (ln_choose + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp()
            })
            .sum()
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut factorial = 1.0f64;
        for n in 1..30u32 {
            factorial *= n as f64;
            let got = ln_gamma(n as f64 + 1.0);
            assert!(
                (got - factorial.ln()).abs() < 1e-10 * factorial.ln().max(1.0),
                "{n}"
            );
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn the_incomplete_beta_is_the_binomial_tail() {
        for (n, k) in [
            (1u64, 1u64),
            (10, 3),
            (14, 7),
            (50, 48),
            (200, 100),
            (1000, 950),
        ] {
            for p in [0.01, 0.2, 0.5, 0.73, 0.95, 0.999] {
                let exact = binomial_tail(n, p, k);
                let got = regularized_beta(p, k as f64, (n - k + 1) as f64);
                assert!(
                    (got - exact).abs() < 1e-9,
                    "n {n} k {k} p {p}: {got} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn the_law_is_a_distribution_around_the_quantile() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let counts = vec![3u64; 100];
        let law = QuantileLaw::new(&values, &counts, 300, 0.5);
        assert_eq!(*law.cdf.last().unwrap(), 1.0);
        assert!(law.cdf.windows(2).all(|w| w[0] <= w[1] + 1e-15));
        assert!((law.cdf_at(50.0) - 0.5).abs() < 0.1, "{}", law.cdf_at(50.0));
        assert!(law.cdf_at(35.0) < 1e-3 && law.cdf_at(65.0) > 1.0 - 1e-3);
        // The same distribution on both sides: the ratio's median is 1, its bounds around it.
        let median = ratio_quantile(&law, &law, 0.5).unwrap();
        let (low, high) = (
            ratio_quantile(&law, &law, 0.025).unwrap(),
            ratio_quantile(&law, &law, 0.975).unwrap(),
        );
        assert!(
            (median - 1.0).abs() < 0.02 && low < 1.0 && high > 1.0,
            "{low} {median} {high}"
        );
    }
}
