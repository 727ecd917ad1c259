//! Regression detection: the current run against a saved baseline, benchmark by benchmark
//! and metric by metric, each change tested for significance and judged by the rules.
//! Inputs are Criterion's stored runs or the suite's own run.json, both turned into
//! `Benchmark`s first, so one comparison serves both.

pub mod baseline;
pub mod criterion;
mod exact_bootstrap;
pub mod render;
pub mod rules;
pub mod sides;
mod special;
pub mod stats;
pub mod suite;

use serde::{Deserialize, Serialize};

use crate::config::regress::LATENCY_STATISTICS;
pub use rules::{RegressRule, RegressSection, Significance, Verdict};
pub use sides::{CompareInput, Sides};
use stats::{RatioEstimate, Samples, Statistic};

/// One benchmark's measurements, ready to compare.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// "pointwise/rms_norm/cpu/smollm2-135m" or "inference/b8_p128_o64".
    pub name: String,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone)]
pub struct Metric {
    /// "time", "ttft", "decode_tokens_per_second", "errors".
    pub name: String,
    /// "ns", "ms", "tok/s", "B/s", "elem/s".
    pub unit: String,
    pub data: MetricData,
}

#[derive(Debug, Clone)]
pub enum MetricData {
    /// A latency distribution (lower is better).
    Latency(Samples),
    /// A throughput distribution: many samples (lower is worse).
    Throughput(Samples),
    /// One throughput value per run: few samples, compared by Welch's t-test.
    ThroughputRuns(Vec<f64>),
    /// Failed requests out of all.
    Errors { failed: u64, total: u64 },
    /// A deterministic count (instructions, estimated cycles): lower is better, and any
    /// difference is real, so it is compared exactly.
    Count(f64),
    /// A latency distribution reported beside deterministic counts: compared like a latency,
    /// but it can only warn, never fail.
    AdvisoryLatency(Samples),
}

/// One statistic of one metric of one benchmark, baseline against current.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub benchmark: String,
    pub metric: String,
    /// p50, p95, mean, throughput, error_rate.
    pub statistic: String,
    pub unit: String,
    pub baseline: f64,
    pub current: f64,
    /// current / baseline, with its confidence interval.
    pub estimate: RatioEstimate,
    /// "bootstrap", "welch" or "level".
    pub test: String,
    pub verdict: Verdict,
    /// The rules that fired.
    pub fired: Vec<String>,
}

/// The whole comparison: every row, what appeared or disappeared, and warnings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub current: String,
    pub rows: Vec<Row>,
    /// In the baseline, not in the current run.
    pub removed: Vec<String>,
    /// In the current run, not in the baseline.
    pub added: Vec<String>,
    /// Things to know before trusting the verdict: other hardware, changed units.
    pub notes: Vec<String>,
    pub rules: Vec<String>,
    pub verdict: Verdict,
}

impl Comparison {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == verdict).count()
    }
}

/// Compare every benchmark present on both sides.
pub fn compare(
    baseline: &[Benchmark],
    current: &[Benchmark],
    settings: &RegressSection,
    labels: (&str, &str),
) -> Comparison {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let find = |list: &[Benchmark], name: &str| list.iter().position(|b| b.name == name);
    for cur in current {
        let Some(i) = find(baseline, &cur.name) else {
            continue;
        };
        let base = &baseline[i];
        for metric in &cur.metrics {
            let Some(base_metric) = base.metrics.iter().find(|m| m.name == metric.name) else {
                notes.push(format!(
                    "{}: metric {} is new (not in the baseline)",
                    cur.name, metric.name
                ));
                continue;
            };
            if base_metric.unit != metric.unit {
                notes.push(format!(
                    "{}: {} was measured in {} and is now in {}: not compared",
                    cur.name, metric.name, base_metric.unit, metric.unit
                ));
                continue;
            }
            rows.extend(compare_metric(&cur.name, base_metric, metric, settings));
        }
    }
    let names = |list: &[Benchmark], other: &[Benchmark]| -> Vec<String> {
        list.iter()
            .filter(|b| find(other, &b.name).is_none())
            .map(|b| b.name.clone())
            .collect()
    };
    let verdict = rows.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Ok);
    Comparison {
        baseline: labels.0.into(),
        current: labels.1.into(),
        rows,
        removed: names(baseline, current),
        added: names(current, baseline),
        notes,
        rules: settings
            .rules
            .iter()
            .map(|r| format!("{}: {}", r.verdict, r.describe()))
            .collect(),
        verdict,
    }
}

/// The rows of one metric: one per statistic some rule looks at.
fn compare_metric(
    benchmark: &str,
    base: &Metric,
    cur: &Metric,
    settings: &RegressSection,
) -> Vec<Row> {
    let applicable = |statistic: &str| {
        settings
            .rules
            .iter()
            .filter(|r| r.applies_to(&cur.name, statistic))
            .collect::<Vec<_>>()
    };
    // A seed per row, so every comparison is reproducible.
    let seed = |statistic: &str| {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in benchmark
            .bytes()
            .chain(cur.name.bytes())
            .chain(statistic.bytes())
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        h
    };
    let mut rows = Vec::new();
    let advisory = matches!(cur.data, MetricData::AdvisoryLatency(_));
    let mut push = |statistic: &str,
                    (b, c): (f64, f64),
                    estimate: RatioEstimate,
                    test: &str,
                    higher_is_worse: bool| {
        let rules = applicable(statistic);
        if rules.is_empty() {
            return; // no rule looks at this statistic
        }
        let fired: Vec<&RegressRule> = rules
            .iter()
            .copied()
            .filter(|r| r.fires(&estimate, c, higher_is_worse, settings.significance))
            .collect();
        let mut verdict = fired.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Ok);
        let mut fired: Vec<String> = fired.iter().map(|r| r.describe()).collect();
        if advisory && verdict == Verdict::Fail {
            verdict = Verdict::Warn;
            fired.push("advisory: warns only".into());
        }
        rows.push(Row {
            benchmark: benchmark.into(),
            metric: cur.name.clone(),
            statistic: statistic.into(),
            unit: cur.unit.clone(),
            baseline: b,
            current: c,
            estimate,
            test: test.into(),
            verdict,
            fired,
        });
    };
    let (conf, n) = (settings.confidence, settings.resamples);
    match (&base.data, &cur.data) {
        (MetricData::Latency(b), MetricData::Latency(c))
        | (MetricData::AdvisoryLatency(b), MetricData::AdvisoryLatency(c)) => {
            for latency_statistic in LATENCY_STATISTICS {
                let statistic = latency_statistic.name();
                if applicable(statistic).is_empty() {
                    continue;
                }
                let stat = match latency_statistic.quantile() {
                    Some(q) => Statistic::Quantile(q),
                    None => Statistic::Mean,
                };
                let e = stats::bootstrap_ratio(b, c, stat, conf, n, seed(statistic));
                push(
                    statistic,
                    (b.statistic(stat), c.statistic(stat)),
                    e,
                    "bootstrap",
                    true,
                );
            }
        }
        (MetricData::Throughput(b), MetricData::Throughput(c)) => {
            let e = stats::bootstrap_ratio(b, c, Statistic::Mean, conf, n, seed("throughput"));
            let values = (b.statistic(Statistic::Mean), c.statistic(Statistic::Mean));
            push("throughput", values, e, "bootstrap", false);
        }
        (MetricData::ThroughputRuns(b), MetricData::ThroughputRuns(c)) => {
            let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
            let e = stats::welch_ratio(b, c, conf);
            push("throughput", (mean(b), mean(c)), e, "welch", false);
        }
        (
            MetricData::Errors {
                failed: fb,
                total: tb,
            },
            MetricData::Errors {
                failed: fc,
                total: tc,
            },
        ) => {
            let rate = |f: u64, t: u64| if t == 0 { 0.0 } else { f as f64 / t as f64 };
            let (b, c) = (rate(*fb, *tb), rate(*fc, *tc));
            let ratio = if b > 0.0 { c / b } else { f64::NAN };
            push(
                "error_rate",
                (b, c),
                RatioEstimate::untested(ratio),
                "level",
                true,
            );
        }
        (MetricData::Count(b), MetricData::Count(c)) => {
            let ratio = match (*b > 0.0, *c > 0.0) {
                (true, _) => c / b,
                (false, false) => 1.0,
                (false, true) => f64::INFINITY,
            };
            push(
                "count",
                (*b, *c),
                RatioEstimate::exact(ratio),
                "exact",
                true,
            );
        }
        _ => {}
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(name: &str, values: &[f64]) -> Benchmark {
        Benchmark {
            name: name.into(),
            metrics: vec![Metric {
                name: "time".into(),
                unit: "ns".into(),
                data: MetricData::Latency(Samples::from_values(values).unwrap()),
            }],
        }
    }

    fn spread(center: f64) -> Vec<f64> {
        (0..50)
            .map(|i| center * (1.0 + (i as f64 - 25.0) / 1000.0))
            .collect()
    }

    #[test]
    fn a_slower_benchmark_fails_and_lists_removed_and_new() {
        let base = vec![latency("a", &spread(100.0)), latency("gone", &spread(1.0))];
        let cur = vec![latency("a", &spread(130.0)), latency("fresh", &spread(1.0))];
        let c = compare(&base, &cur, &RegressSection::default(), ("main", "new"));
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.removed, ["gone"]);
        assert_eq!(c.added, ["fresh"]);
        // Default rules look at p50 and p95 of a latency.
        let stats: Vec<&str> = c.rows.iter().map(|r| r.statistic.as_str()).collect();
        assert_eq!(stats, ["p50", "p95"]);
        let p95 = &c.rows[1];
        assert!(p95.estimate.significant && (p95.estimate.ratio - 1.3).abs() < 0.01);
        assert_eq!(p95.fired.len(), 2, "both p95 rules fire: {:?}", p95.fired);
    }

    #[test]
    fn unchanged_benchmarks_pass_and_unit_changes_are_noted() {
        let base = vec![latency("a", &spread(100.0))];
        let cur = vec![latency("a", &spread(100.0))];
        let c = compare(&base, &cur, &RegressSection::default(), ("main", "new"));
        assert_eq!(c.verdict, Verdict::Ok);
        assert!(c.rows.iter().all(|r| !r.estimate.significant));
        let mut other_unit = cur.clone();
        other_unit[0].metrics[0].unit = "ms".into();
        let c = compare(
            &base,
            &other_unit,
            &RegressSection::default(),
            ("main", "new"),
        );
        assert!(c.rows.is_empty());
        assert!(
            c.notes[0].contains("ns") && c.notes[0].contains("ms"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn error_rate_fails_above_one_percent() {
        let errors = |failed| Benchmark {
            name: "http/c16".into(),
            metrics: vec![Metric {
                name: "errors".into(),
                unit: "requests".into(),
                data: MetricData::Errors { failed, total: 100 },
            }],
        };
        let c = compare(
            &[errors(0)],
            &[errors(2)],
            &RegressSection::default(),
            ("a", "b"),
        );
        assert_eq!(c.verdict, Verdict::Fail);
        let c = compare(
            &[errors(0)],
            &[errors(1)],
            &RegressSection::default(),
            ("a", "b"),
        );
        assert_eq!(c.verdict, Verdict::Ok, "exactly 1% is not above 1%");
    }

    fn counted(instructions: f64, times: &[f64]) -> Benchmark {
        Benchmark {
            name: "instructions/distance/l2/384".into(),
            metrics: vec![
                Metric {
                    name: "instructions".into(),
                    unit: "instr".into(),
                    data: MetricData::Count(instructions),
                },
                Metric {
                    name: "time".into(),
                    unit: "ns".into(),
                    data: MetricData::AdvisoryLatency(Samples::from_values(times).unwrap()),
                },
            ],
        }
    }

    #[test]
    fn counts_are_exact_and_held_to_two_percent_while_times_only_warn() {
        let verdict = |instructions, times: &[f64]| {
            let base = [counted(1_000_000.0, &spread(100.0))];
            let cur = [counted(instructions, times)];
            compare(&base, &cur, &RegressSection::default(), ("a", "b"))
        };
        // +2.5% instructions fails, though nothing else moved.
        let c = verdict(1_025_000.0, &spread(100.0));
        assert_eq!(c.verdict, Verdict::Fail);
        let row = c.rows.iter().find(|r| r.metric == "instructions").unwrap();
        assert_eq!(
            (row.test.as_str(), row.statistic.as_str()),
            ("exact", "count")
        );
        // +1.5% passes; -3% warns (the baseline is stale); +0% is not noise but exact.
        assert_eq!(verdict(1_015_000.0, &spread(100.0)).verdict, Verdict::Ok);
        assert_eq!(verdict(970_000.0, &spread(100.0)).verdict, Verdict::Warn);
        // Wall times twice as slow: a warning, never a failure.
        let c = verdict(1_000_000.0, &spread(200.0));
        assert_eq!(c.verdict, Verdict::Warn);
        let p95 = c.rows.iter().find(|r| r.statistic == "p95").unwrap();
        assert!(
            p95.fired.iter().any(|f| f.contains("advisory")),
            "{:?}",
            p95.fired
        );
    }
}
