//! Latency recording and the statistics every report shows: percentiles from an HDR histogram,
//! exact mean and standard deviation, and the spike rate.

use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;

mod latencies;
mod names;
mod reading;
mod token_lengths;

pub use latencies::{ExactHistograms, Latencies, LatencyHistograms, LatencyRecorders};
pub use names::{latency_metric_name, parse_latency_metric, Latency, Statistic};
pub use reading::Reading;
pub use token_lengths::{TokenHistogram, TokenLengths};

/// Highest latency the histogram holds: one hour, in microseconds.
const MAX_MICROS: u64 = 3_600_000_000;

/// Records latencies with microsecond resolution and 3 significant digits (0.1% error).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    /// Welford's running mean and sum of squares, exact, in microseconds.
    count: u64,
    mean: f64,
    m2: f64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> Self {
        LatencyRecorder {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("valid histogram bounds"),
            count: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }

    pub fn record(&mut self, latency: Duration) -> Result<()> {
        let micros = (latency.as_secs_f64() * 1e6).round().max(1.0) as u64;
        self.histogram
            .record(micros.min(MAX_MICROS))
            .context("recording a latency")?;
        self.count += 1;
        let x = latency.as_secs_f64() * 1e6;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The recorded distribution as (milliseconds, count) pairs, one per histogram bucket
    /// that holds anything: what a comparison resamples.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let h = &self.histogram;
        h.iter_recorded()
            .map(|v| {
                let micros = h.median_equivalent(v.value_iterated_to());
                (micros as f64 / 1e3, v.count_at_value())
            })
            .collect()
    }

    /// The histogram, losslessly: HdrHistogram's V2 serialisation (microseconds, 3
    /// significant digits) in base64, the form other HDR tools read too.
    pub fn exact(&self) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        // Serialising into memory cannot fail for a histogram this type built.
        let _ = V2Serializer::new().serialize(&self.histogram, &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A recorder again from a stored histogram and the summary stored beside it (which
    /// carries the exact mean and standard deviation), ready to merge with others.
    pub fn from_exact(exact: &str, summary: Option<&LatencySummary>) -> Result<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(exact.trim())
            .context("the histogram is not base64")?;
        let stored: Histogram<u64> = Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| anyhow::anyhow!("not an HdrHistogram V2 serialisation ({e:?})"))?;
        let mut recorder = LatencyRecorder::new();
        recorder
            .histogram
            .add(&stored)
            .map_err(|e| anyhow::anyhow!("the histogram's range does not fit ({e:?})"))?;
        let count = recorder.histogram.len();
        match summary {
            Some(s) if s.count == count => {
                recorder.count = count;
                recorder.mean = s.mean_ms * 1e3;
                recorder.m2 = (s.sd_ms * 1e3).powi(2) * count.saturating_sub(1) as f64;
            }
            None if count == 0 => {}
            _ => anyhow::bail!(
                "the histogram holds {count} samples but its summary says {}",
                summary.map_or(0, |s| s.count)
            ),
        }
        Ok(recorder)
    }

    /// Fold another recorder in: the histograms add bucket by bucket, so every percentile
    /// of the result is the percentile of all samples together; mean and variance combine
    /// exactly (Chan et al.'s parallel update).
    pub fn merge(&mut self, other: &LatencyRecorder) -> Result<()> {
        self.histogram
            .add(&other.histogram)
            .map_err(|e| anyhow::anyhow!("adding histograms ({e:?})"))?;
        let (n_a, n_b) = (self.count as f64, other.count as f64);
        let n = n_a + n_b;
        if other.count > 0 {
            let delta = other.mean - self.mean;
            self.mean += delta * n_b / n;
            self.m2 += other.m2 + delta * delta * n_a * n_b / n;
            self.count += other.count;
        }
        Ok(())
    }

    /// The statistics of everything recorded so far; None when nothing was.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.count == 0 {
            return None;
        }
        let h = &self.histogram;
        let ms = |micros: u64| micros as f64 / 1e3;
        let sd_micros = if self.count > 1 {
            (self.m2 / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        let spike_threshold = self.mean + 3.0 * sd_micros;
        let spikes: u64 = h
            .iter_recorded()
            .filter(|v| v.value_iterated_to() as f64 > spike_threshold)
            .map(|v| v.count_at_value())
            .sum();
        Some(LatencySummary {
            count: self.count,
            min_ms: ms(h.min()),
            mean_ms: self.mean / 1e3,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            sd_ms: sd_micros / 1e3,
            spike_rate: spikes as f64 / self.count as f64,
        })
    }
}

/// What a report shows for one latency metric (TTFT, ITL, TPOT, end-to-end), in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Sample standard deviation.
    pub sd_ms: f64,
    /// Share of samples above mean + 3 standard deviations.
    pub spike_rate: f64,
}

impl LatencySummary {
    /// One statistic, in milliseconds.
    pub fn statistic(&self, statistic: Statistic) -> f64 {
        match statistic {
            Statistic::Min => self.min_ms,
            Statistic::Mean => self.mean_ms,
            Statistic::P50 => self.p50_ms,
            Statistic::P90 => self.p90_ms,
            Statistic::P95 => self.p95_ms,
            Statistic::P99 => self.p99_ms,
            Statistic::P999 => self.p999_ms,
            Statistic::Max => self.max_ms,
            Statistic::Sd => self.sd_ms,
        }
    }
}

/// A throughput measured once per run (tokens/s), summarised over the runs.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RateSummary {
    /// Each run's value, in run order.
    pub runs: Vec<f64>,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (0 with one run).
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl RateSummary {
    /// None when there are no values.
    pub fn from_runs(runs: Vec<f64>) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let n = runs.len() as f64;
        let mean = runs.iter().sum::<f64>() / n;
        let sd = if runs.len() > 1 {
            (runs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Some(RateSummary {
            mean,
            median,
            sd,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        // 3 significant digits: within 0.1%, plus a microsecond of rounding.
        (a - b).abs() <= b.abs() * 1e-3 + 1e-3
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_ms() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=1000u64 {
            r.record(Duration::from_millis(ms)).unwrap();
        }
        let s = r.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert!(close(s.min_ms, 1.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0), "{s:?}");
        assert!(close(s.mean_ms, 500.5), "{s:?}");
        assert!(close(s.p50_ms, 500.0), "{s:?}");
        assert!(close(s.p90_ms, 900.0), "{s:?}");
        assert!(close(s.p95_ms, 950.0), "{s:?}");
        assert!(close(s.p99_ms, 990.0), "{s:?}");
        assert!(close(s.p999_ms, 999.0), "{s:?}");
        // sample sd of 1..=1000 is sqrt(1000 * 1001 / 12) = 288.82
        assert!((s.sd_ms - 288.819).abs() < 0.01, "{s:?}");
        assert_eq!(s.spike_rate, 0.0);
    }

    #[test]
    fn spike_rate_counts_samples_beyond_three_sigma() {
        let mut r = LatencyRecorder::new();
        for _ in 0..99 {
            r.record(Duration::from_millis(10)).unwrap();
        }
        r.record(Duration::from_millis(500)).unwrap();
        let s = r.summary().unwrap();
        assert!((s.spike_rate - 0.01).abs() < 1e-12, "{s:?}");
        assert!(close(s.max_ms, 500.0));
        assert!(close(s.p50_ms, 10.0));
    }

    #[test]
    fn rate_summary_of_known_runs() {
        let r = RateSummary::from_runs(vec![40.0, 10.0, 30.0, 20.0]).unwrap();
        assert_eq!((r.min, r.max, r.mean, r.median), (10.0, 40.0, 25.0, 25.0));
        // sample sd of 10, 20, 30, 40 = sqrt(500 / 3)
        assert!((r.sd - (500.0f64 / 3.0).sqrt()).abs() < 1e-12, "{r:?}");
        assert_eq!(r.runs, vec![40.0, 10.0, 30.0, 20.0], "run order kept");
        let one = RateSummary::from_runs(vec![7.0]).unwrap();
        assert_eq!((one.median, one.sd), (7.0, 0.0));
        assert!(RateSummary::from_runs(vec![]).is_none());
    }

    #[test]
    fn buckets_hold_every_sample() {
        let mut r = LatencyRecorder::new();
        for ms in [5u64, 5, 5, 10, 200] {
            r.record(Duration::from_millis(ms)).unwrap();
        }
        let b = r.buckets();
        assert_eq!(b.iter().map(|(_, c)| c).sum::<u64>(), 5);
        assert_eq!(b.len(), 3);
        assert!(close(b[0].0, 5.0) && b[0].1 == 3, "{b:?}");
        assert!(close(b[2].0, 200.0), "{b:?}");
    }

    /// The property `inferbench merge` rests on: histograms stored by each worker, read back
    /// and added give every percentile of the one histogram of all samples, exactly; mean
    /// and standard deviation agree to rounding.
    #[test]
    fn merged_stored_histograms_are_the_histogram_of_all_samples() {
        use rand::{Rng, SeedableRng};
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let workers = rng.random_range(1..6usize);
            let mut parts = vec![LatencyRecorder::new(); workers];
            let mut all = LatencyRecorder::new();
            for _ in 0..rng.random_range(1..3000) {
                // Heavy-tailed, from microseconds to minutes, as real latencies are.
                let micros = (rng.random::<f64>().powi(6) * 1e8) as u64 + 1;
                let d = Duration::from_micros(micros);
                parts[rng.random_range(0..workers)].record(d).unwrap();
                all.record(d).unwrap();
            }
            let mut merged = LatencyRecorder::new();
            for part in &parts {
                let stored =
                    LatencyRecorder::from_exact(&part.exact(), part.summary().as_ref()).unwrap();
                merged.merge(&stored).unwrap();
            }
            let (m, a) = (merged.summary().unwrap(), all.summary().unwrap());
            assert_eq!(m.count, a.count, "seed {seed}");
            for q in [
                m.min_ms, m.p50_ms, m.p90_ms, m.p95_ms, m.p99_ms, m.p999_ms, m.max_ms,
            ]
            .iter()
            .zip([
                a.min_ms, a.p50_ms, a.p90_ms, a.p95_ms, a.p99_ms, a.p999_ms, a.max_ms,
            ]) {
                assert_eq!(*q.0, q.1, "seed {seed}: {m:?} vs {a:?}");
            }
            assert!(
                (m.mean_ms - a.mean_ms).abs() <= a.mean_ms * 1e-9,
                "seed {seed}"
            );
            assert!(
                (m.sd_ms - a.sd_ms).abs() <= a.sd_ms * 1e-6 + 1e-9,
                "seed {seed}"
            );
            assert_eq!(merged.buckets(), all.buckets(), "seed {seed}");
        }
    }

    #[test]
    fn a_stored_histogram_that_disagrees_with_its_summary_is_refused() {
        let mut r = LatencyRecorder::new();
        r.record(Duration::from_millis(3)).unwrap();
        let mut s = r.summary().unwrap();
        s.count = 2;
        let e = LatencyRecorder::from_exact(&r.exact(), Some(&s)).unwrap_err();
        assert!(format!("{e:#}").contains("holds 1 samples but its summary says 2"));
        assert!(LatencyRecorder::from_exact("!!!", None).is_err());
        assert!(LatencyRecorder::from_exact("aGVsbG8=", None).is_err());
    }

    #[test]
    fn empty_and_single_sample() {
        let mut r = LatencyRecorder::new();
        assert!(r.summary().is_none());
        r.record(Duration::from_micros(1500)).unwrap();
        let s = r.summary().unwrap();
        assert!(
            close(s.p99_ms, 1.5) && s.sd_ms == 0.0 && s.spike_rate == 0.0,
            "{s:?}"
        );
    }
}
