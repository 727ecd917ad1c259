//! The statistics behind a verdict: is the current run's statistic different from the
//! baseline's beyond noise? Percentiles get a bootstrap confidence interval of the ratio
//! current / baseline; means of a few per-run values (throughput) get Welch's t-test.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use serde::{Deserialize, Serialize};

use super::exact_bootstrap::{ratio_quantile, QuantileLaw};
use super::special::regularized_incomplete_beta;

/// An empirical distribution: sorted distinct values, each with how often it was seen.
/// Latency histograms arrive in this form; raw samples are folded into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    values: Vec<f64>,
    counts: Vec<u64>,
    total: u64,
}

impl Samples {
    /// None when there is no finite value.
    pub fn from_values(values: &[f64]) -> Option<Self> {
        Self::from_weighted(values.iter().map(|&v| (v, 1)))
    }

    /// From (value, count) pairs in any order; non-finite values and zero counts are dropped.
    pub fn from_weighted(pairs: impl IntoIterator<Item = (f64, u64)>) -> Option<Self> {
        let mut pairs: Vec<(f64, u64)> = pairs
            .into_iter()
            .filter(|(v, c)| v.is_finite() && *c > 0)
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut values: Vec<f64> = Vec::with_capacity(pairs.len());
        let mut counts: Vec<u64> = Vec::with_capacity(pairs.len());
        for (v, c) in pairs {
            if values.last() == Some(&v) {
                *counts.last_mut().expect("a count per value") += c;
            } else {
                values.push(v);
                counts.push(c);
            }
        }
        let total = counts.iter().sum();
        (total > 0).then_some(Samples {
            values,
            counts,
            total,
        })
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn statistic(&self, statistic: Statistic) -> f64 {
        statistic.of(&self.values, &self.counts, self.total)
    }

    /// A bootstrap resample: n draws with replacement, as new counts per distinct value
    /// (a multinomial draw, one binomial per value), so its cost does not grow with n.
    fn resample(&self, rng: &mut StdRng, out: &mut [u64]) {
        let mut remaining = self.total;
        let mut mass_left = self.total;
        for (slot, &count) in out.iter_mut().zip(&self.counts) {
            if remaining == 0 {
                *slot = 0;
                continue;
            }
            let p = (count as f64 / mass_left as f64).min(1.0);
            *slot = Binomial::new(remaining, p).map_or(0, |b| b.sample(rng));
            remaining -= *slot;
            mass_left -= count;
        }
    }
}

/// Which statistic of a distribution to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Mean,
    /// Nearest-rank quantile, 0 < q <= 1 (p50 is 0.5).
    Quantile(f64),
}

impl Statistic {
    fn of(self, values: &[f64], counts: &[u64], total: u64) -> f64 {
        match self {
            Statistic::Mean => {
                let sum: f64 = values.iter().zip(counts).map(|(v, &c)| v * c as f64).sum();
                sum / total as f64
            }
            Statistic::Quantile(q) => {
                let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
                let mut seen = 0;
                for (v, &c) in values.iter().zip(counts) {
                    seen += c;
                    if seen >= rank {
                        return *v;
                    }
                }
                *values.last().unwrap_or(&f64::NAN)
            }
        }
    }
}

/// current / baseline with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatioEstimate {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// Whether the interval excludes 1 (no change); false when it could not be tested.
    pub significant: bool,
}

impl RatioEstimate {
    fn new(ratio: f64, low: f64, high: f64) -> Self {
        RatioEstimate {
            ratio,
            low,
            high,
            significant: low > 1.0 || high < 1.0,
        }
    }

    /// A deterministic measurement: the ratio is the truth, its interval a point.
    pub fn exact(ratio: f64) -> Self {
        RatioEstimate {
            ratio,
            low: ratio,
            high: ratio,
            significant: ratio != 1.0,
        }
    }

    /// A point estimate only: too few samples to test.
    pub fn untested(ratio: f64) -> Self {
        RatioEstimate {
            ratio,
            low: f64::NAN,
            high: f64::NAN,
            significant: false,
        }
    }
}

/// Percentile bootstrap of stat(current) / stat(baseline): exact for quantiles, resampling
/// both sides (seeded, so the same inputs always give the same interval) for the mean.
pub fn bootstrap_ratio(
    baseline: &Samples,
    current: &Samples,
    statistic: Statistic,
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> RatioEstimate {
    let point = current.statistic(statistic) / baseline.statistic(statistic);
    if baseline.len() < 2 || current.len() < 2 || resamples == 0 {
        return RatioEstimate::untested(point);
    }
    let tail = (1.0 - confidence) / 2.0;
    if let Statistic::Quantile(q) = statistic {
        // Quantiles: the bootstrap's distribution exactly, no resampling (see exact_bootstrap).
        let law = |s: &Samples| QuantileLaw::new(&s.values, &s.counts, s.total, q);
        let (b, c) = (law(baseline), law(current));
        if let (Some(low), Some(high)) = (
            ratio_quantile(&b, &c, tail),
            ratio_quantile(&b, &c, 1.0 - tail),
        ) {
            return RatioEstimate::new(point, low, high);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut base_counts = vec![0; baseline.counts.len()];
    let mut cur_counts = vec![0; current.counts.len()];
    let mut ratios: Vec<f64> = (0..resamples)
        .map(|_| {
            baseline.resample(&mut rng, &mut base_counts);
            current.resample(&mut rng, &mut cur_counts);
            let b = statistic.of(&baseline.values, &base_counts, baseline.total);
            let c = statistic.of(&current.values, &cur_counts, current.total);
            c / b
        })
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return RatioEstimate::untested(point);
    }
    ratios.sort_by(f64::total_cmp);
    let at =
        |q: f64| ratios[((q * (ratios.len() - 1) as f64).round() as usize).min(ratios.len() - 1)];
    RatioEstimate::new(point, at(tail), at(1.0 - tail))
}

/// Welch's t-test on the means of two small samples (e.g. tokens/s of each run), as a ratio
/// of means with a confidence interval on the log scale (delta method).
pub fn welch_ratio(baseline: &[f64], current: &[f64], confidence: f64) -> RatioEstimate {
    let (nb, nc) = (baseline.len() as f64, current.len() as f64);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let var =
        |x: &[f64], m: f64| x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0);
    if baseline.is_empty() || current.is_empty() {
        return RatioEstimate::untested(f64::NAN);
    }
    let (mb, mc) = (mean(baseline), mean(current));
    let ratio = mc / mb;
    if baseline.len() < 2 || current.len() < 2 {
        return RatioEstimate::untested(ratio);
    }
    // Relative variances: the variance of log(mean) is about var / (n mean^2).
    let rb = var(baseline, mb) / (nb * mb * mb);
    let rc = var(current, mc) / (nc * mc * mc);
    let se = (rb + rc).sqrt();
    if se == 0.0 {
        return RatioEstimate::new(ratio, ratio, ratio);
    }
    let df = (rb + rc).powi(2) / (rb * rb / (nb - 1.0) + rc * rc / (nc - 1.0));
    let t = student_t_quantile(1.0 - (1.0 - confidence) / 2.0, df);
    RatioEstimate::new(ratio, ratio * (-t * se).exp(), ratio * (t * se).exp())
}

/// P(T <= t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The t value below which a share p of the distribution lies (bisection on the CDF).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if student_t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n values spread evenly (a uniform distribution) around `center` with relative
    /// standard deviation `sd`; `phase` in (0, 1) shifts the grid, so two calls give two
    /// different samples of one distribution. No randomness: the answers are known.
    fn noisy(n: usize, center: f64, sd: f64, phase: f64) -> Vec<f64> {
        let half_width = sd * 3f64.sqrt();
        let mut v: Vec<f64> = (0..n)
            .map(|i| center * (1.0 + half_width * (2.0 * (i as f64 + phase) / n as f64 - 1.0)))
            .collect();
        // Interleave, so order carries no trend.
        v.sort_by_key(|x| (x.to_bits() % 7919, x.to_bits()));
        v
    }

    fn boot(base: &[f64], cur: &[f64], stat: Statistic) -> RatioEstimate {
        let b = Samples::from_values(base).unwrap();
        let c = Samples::from_values(cur).unwrap();
        bootstrap_ratio(&b, &c, stat, 0.95, 2000, 7)
    }

    #[test]
    fn student_t_matches_tables() {
        // Two-sided 5% critical values: df 10 -> 2.228, df 30 -> 2.042, df 1000 -> 1.962.
        for (df, t) in [(10.0, 2.228), (30.0, 2.042), (1000.0, 1.962), (2.0, 4.303)] {
            let q = student_t_quantile(0.975, df);
            assert!((q - t).abs() < 2e-3, "df {df}: {q}");
        }
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-12);
        // t = 2 with df 10: two-sided p = 0.0734.
        let p = 2.0 * (1.0 - student_t_cdf(2.0, 10.0));
        assert!((p - 0.0734).abs() < 1e-3, "{p}");
    }

    #[test]
    fn quantiles_and_means_of_weighted_samples() {
        let s = Samples::from_weighted([(3.0, 1), (1.0, 2), (2.0, 1), (1.0, 1)]).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.statistic(Statistic::Quantile(0.5)), 1.0);
        assert_eq!(s.statistic(Statistic::Quantile(0.8)), 2.0);
        assert_eq!(s.statistic(Statistic::Quantile(1.0)), 3.0);
        assert!((s.statistic(Statistic::Mean) - 8.0 / 5.0).abs() < 1e-12);
        assert!(Samples::from_values(&[f64::NAN]).is_none());
    }

    #[test]
    fn no_change_is_not_significant() {
        let base = noisy(200, 100.0, 0.05, 0.3);
        let cur = noisy(200, 100.0, 0.05, 0.7);
        for stat in [
            Statistic::Quantile(0.5),
            Statistic::Quantile(0.95),
            Statistic::Mean,
        ] {
            let e = boot(&base, &cur, stat);
            assert!(!e.significant, "{stat:?}: {e:?}");
            assert!(
                e.low < 1.0 && e.high > 1.0 && (e.ratio - 1.0).abs() < 0.03,
                "{e:?}"
            );
        }
        let w = welch_ratio(
            &noisy(5, 100.0, 0.05, 0.2),
            &noisy(5, 100.0, 0.05, 0.8),
            0.95,
        );
        assert!(!w.significant, "{w:?}");
    }

    #[test]
    fn small_shift_with_low_noise_is_significant() {
        let base = noisy(100, 100.0, 0.01, 0.4);
        let cur = noisy(100, 105.0, 0.01, 0.6);
        let e = boot(&base, &cur, Statistic::Quantile(0.5));
        assert!(e.significant && (e.ratio - 1.05).abs() < 0.01, "{e:?}");
        assert!(e.low > 1.03 && e.high < 1.07, "{e:?}");
        let w = welch_ratio(
            &noisy(5, 100.0, 0.01, 0.5),
            &noisy(5, 105.0, 0.01, 0.5),
            0.95,
        );
        assert!(w.significant && (w.ratio - 1.05).abs() < 0.02, "{w:?}");
    }

    #[test]
    fn large_shift_with_high_noise_is_significant_but_wide() {
        let base = noisy(100, 100.0, 0.20, 0.5);
        let cur = noisy(100, 130.0, 0.20, 0.5);
        let e = boot(&base, &cur, Statistic::Quantile(0.5));
        assert!(e.significant, "{e:?}");
        assert!((e.ratio - 1.3).abs() < 0.1, "{e:?}");
        assert!(
            e.high - e.low > 0.1,
            "high noise gives a wide interval: {e:?}"
        );
        // The same shift hidden in three noisy runs each is not provable.
        let w = welch_ratio(&[100.0, 60.0, 140.0], &[130.0, 80.0, 180.0], 0.95);
        assert!(!w.significant, "{w:?}");
    }

    #[test]
    fn too_few_samples_are_untested() {
        let one = Samples::from_values(&[1.0]).unwrap();
        let e = bootstrap_ratio(&one, &one, Statistic::Mean, 0.95, 100, 1);
        assert!(!e.significant && e.ratio == 1.0 && e.low.is_nan());
        let w = welch_ratio(&[10.0], &[20.0], 0.95);
        assert!(!w.significant && w.ratio == 2.0);
        // Identical constant runs: no noise, so any change is real.
        let same = welch_ratio(&[10.0, 10.0], &[12.0, 12.0], 0.95);
        assert!(same.significant && (same.ratio - 1.2).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_deterministic() {
        let base = noisy(50, 10.0, 0.1, 0.5);
        let cur = noisy(50, 10.5, 0.1, 0.5);
        assert_eq!(
            boot(&base, &cur, Statistic::Quantile(0.95)),
            boot(&base, &cur, Statistic::Quantile(0.95))
        );
    }
}
