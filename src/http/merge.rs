//! Several workers' runs of one plan made into one run: latency histograms added bucket by
//! bucket (the merged p99 is the p99 of every request), counts and errors summed, rates
//! over the union of the workers' time windows, and each worker's own figures kept.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::plan::MAX_WORKERS;
use super::windows;
use crate::metrics::{LatencyRecorders, TokenLengths};
use crate::report::http::{
    self as result, Goodput, HttpRun, HttpScenario, LoadShape, MergeInfo, MergedWorker, TimeWindow,
    WorkerScenario,
};
use crate::results::RunHeader;

/// Failure messages kept per class, as a single run keeps them.
const MAX_EXAMPLES: usize = 5;

/// One worker's run and where it came from (a path, a pod), for messages.
pub struct WorkerRun {
    pub source: String,
    pub run: HttpRun,
}

/// Merge `runs` (at least one) into a run named `run_id`. `missing` names workers that
/// left no result; the merged run is then marked interrupted, as is one with an
/// interrupted worker.
pub fn merge(runs: &[WorkerRun], missing: Vec<String>, run_id: &str) -> Result<HttpRun> {
    let Some(first) = runs.first() else {
        bail!("nothing to merge: no worker left a result");
    };
    for r in runs {
        if let Some(w) = &r.run.worker {
            if w.workers == 0 || w.workers > MAX_WORKERS || w.index >= w.workers {
                bail!(
                    "{}: worker.index {} of worker.workers {} is not a place in a plan (1 to {MAX_WORKERS} workers)",
                    r.source,
                    w.index,
                    w.workers
                );
            }
        }
    }
    check_same_plan(runs)?;
    let mut missing = missing;
    if let Some(w) = &first.run.worker {
        for index in 0..w.workers {
            let present = runs
                .iter()
                .any(|r| r.run.worker.as_ref().is_some_and(|x| x.index == index));
            let named = missing
                .iter()
                .any(|m| m.starts_with(&format!("worker {index}:")));
            if !present && !named {
                missing.push(format!("worker {index}: no result given to merge"));
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.run.scenarios {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    let mut scenarios = Vec::new();
    for name in &names {
        let parts: Vec<(&WorkerRun, &HttpScenario)> = runs
            .iter()
            .filter_map(|r| {
                r.run
                    .scenarios
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| (r, s))
            })
            .collect();
        let incomplete = parts.len() < runs.len() || !missing.is_empty();
        scenarios.push(
            merge_scenario(&parts, incomplete, first.run.workload.units_per_request)
                .with_context(|| format!("scenario {name}"))?,
        );
    }
    let earliest = runs
        .iter()
        .map(|r| r.run.header.started_at.clone())
        .min()
        .unwrap_or_default();
    let header = &first.run.header;
    let mut merged_header =
        RunHeader::start(result::KIND, run_id, earliest, header.machine.clone());
    merged_header.git_commit = header.git_commit.clone();
    merged_header.crate_versions = header.crate_versions.clone();
    merged_header.inferbench_version = header.inferbench_version.clone();
    let interrupted =
        !missing.is_empty() || runs.iter().any(|r| !r.run.header.status.is_complete());
    merged_header.end(interrupted);
    let starts: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.run.worker.as_ref().map(|w| w.started_unix_s))
        .collect();
    let spread = (starts.len() > 1).then(|| {
        let max = starts.iter().copied().fold(f64::MIN, f64::max);
        let min = starts.iter().copied().fold(f64::MAX, f64::min);
        (max - min) * 1e3
    });
    let mut planned = first.run.planned_scenarios.clone();
    for name in &names {
        if !planned.contains(name) {
            planned.push(name.clone());
        }
    }
    Ok(HttpRun {
        header: merged_header,
        target: first.run.target.clone(),
        workload: first.run.workload.clone(),
        slo: first.run.slo.clone(),
        planned_scenarios: planned,
        scenarios,
        sweep: None,
        breaking_point: None,
        worker: None,
        merged: Some(MergeInfo {
            plan_id: first.run.worker.as_ref().map(|w| w.plan_id.clone()),
            planned_workers: first.run.worker.as_ref().map(|w| w.workers),
            start_spread_ms: spread,
            workers: runs.iter().map(worker_figures).collect(),
            missing,
        }),
    })
}

/// Runs merge only when they are parts of one load: the same plan (workers), or the same
/// target, workload and scenarios (runs made by hand). The first difference is named.
fn check_same_plan(runs: &[WorkerRun]) -> Result<()> {
    let first = &runs[0];
    for other in &runs[1..] {
        let (a, b) = (&first.run, &other.run);
        let pair = format!("{} and {}", first.source, other.source);
        if let Some(r) = [first, other].into_iter().find(|r| r.run.merged.is_some()) {
            bail!(
                "{}: already a merged run; merge the workers' own runs",
                r.source
            );
        }
        if a.breaking_point.is_some() || b.breaking_point.is_some() {
            bail!("{pair}: a breaking-point search decides each level on the whole load's figures; it cannot be merged");
        }
        if a.sweep.is_some() || b.sweep.is_some() {
            bail!("{pair}: a sweep decides each step on the whole load's figures; sweeps cannot be merged");
        }
        match (&a.worker, &b.worker) {
            (Some(x), Some(y)) => {
                if x.plan_id != y.plan_id {
                    bail!(
                        "{pair} come from different plans: {:?} and {:?}",
                        x.plan_id,
                        y.plan_id
                    );
                }
                if x.workers != y.workers {
                    bail!("{pair}: plans of {} and {} workers", x.workers, y.workers);
                }
                if let Some(d) = first_difference(&x.plan_args, &y.plan_args) {
                    bail!("{pair} come from different plans: {d}");
                }
                if x.index == y.index {
                    bail!("{pair} are both worker {} of plan {}", x.index, x.plan_id);
                }
            }
            (None, None) => {}
            (Some(x), None) | (None, Some(x)) => bail!(
                "{pair}: one is worker {} of plan {}, the other ran alone",
                x.index,
                x.plan_id
            ),
        }
        let fields: [(&str, String, String); 7] = [
            ("target.url", a.target.url.clone(), b.target.url.clone()),
            (
                "target.backend",
                a.target.backend.clone(),
                b.target.backend.clone(),
            ),
            (
                "target.stream",
                a.target.stream.to_string(),
                b.target.stream.to_string(),
            ),
            (
                "target.model",
                format!("{:?}", a.target.model),
                format!("{:?}", b.target.model),
            ),
            (
                "workload.source",
                a.workload.source.clone(),
                b.workload.source.clone(),
            ),
            ("slo", format!("{:?}", a.slo), format!("{:?}", b.slo)),
            (
                "planned_scenarios",
                a.planned_scenarios.join(","),
                b.planned_scenarios.join(","),
            ),
        ];
        for (field, x, y) in fields {
            if x != y {
                bail!(
                    "{pair} ran different loads: {field} is {x:?} in {} but {y:?} in {}",
                    first.source,
                    other.source
                );
            }
        }
    }
    Ok(())
}

/// The first argument where two plans part, said as both sides.
fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    if a == b {
        return None;
    }
    let at = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    let around = |v: &[String]| {
        let from = at.saturating_sub(1);
        let to = (at + 2).min(v.len());
        if from >= to {
            "(nothing)".to_string()
        } else {
            v[from..to].join(" ")
        }
    };
    Some(format!(
        "one's load arguments have `{}` where the other's have `{}`",
        around(a),
        around(b)
    ))
}

fn merge_scenario(
    parts: &[(&WorkerRun, &HttpScenario)],
    incomplete: bool,
    units_per_request: Option<f64>,
) -> Result<HttpScenario> {
    let first = parts[0].1;
    let mut recorders = LatencyRecorders::default();
    for (worker, s) in parts {
        let theirs = LatencyRecorders::from_stored(&s.latencies, &s.histograms)
            .with_context(|| worker.source.clone())?;
        recorders.merge(&theirs)?;
    }
    let sum = |f: fn(&HttpScenario) -> u64| parts.iter().map(|(_, s)| f(s)).sum::<u64>();
    let requests = sum(|s| s.requests);
    let succeeded = sum(|s| s.succeeded);
    let failed = sum(|s| s.failed);
    let input_tokens = sum(|s| s.input_tokens);
    let output_tokens = sum(|s| s.output_tokens);
    let windows: Option<Vec<TimeWindow>> = parts.iter().map(|(_, s)| s.window).collect();
    let (seconds, window) = match &windows {
        Some(w) if !w.is_empty() => (union_seconds(w), Some(hull(w))),
        // Runs written before windows were kept: the longest worker's span.
        _ => (
            parts.iter().map(|(_, s)| s.duration_s).fold(0.0, f64::max),
            None,
        ),
    };
    let per_second = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
    let all = |f: fn(&HttpScenario) -> bool| parts.iter().all(|(_, s)| f(s));
    let good: Option<u64> = parts
        .iter()
        .map(|(_, s)| {
            s.good_requests.or_else(|| {
                s.goodput
                    .as_ref()
                    .map(|g| (g.fraction * s.requests as f64).round() as u64)
            })
        })
        .sum();
    let achieved: Vec<f64> = parts.iter().filter_map(|(_, s)| s.achieved_rate).collect();
    let series: Option<Vec<&[windows::Window]>> =
        parts.iter().map(|(_, s)| s.windows.as_deref()).collect();
    let merged_windows = series.map(|s| windows::merge(&s));
    Ok(HttpScenario {
        name: first.name.clone(),
        shape: total_shape(parts.iter().map(|(_, s)| &s.shape))?,
        started_at: parts
            .iter()
            .map(|(_, s)| s.started_at.clone())
            .min()
            .unwrap_or_default(),
        duration_s: seconds,
        interrupted: incomplete || parts.iter().any(|(_, s)| s.interrupted),
        warmup_requests: sum(|s| s.warmup_requests),
        warmup_failed: sum(|s| s.warmup_failed),
        requests,
        succeeded,
        failed,
        error_rate: if requests > 0 {
            failed as f64 / requests as f64
        } else {
            0.0
        },
        errors: add_maps(parts.iter().map(|(_, s)| &s.errors)),
        status_codes: add_maps(parts.iter().map(|(_, s)| &s.status_codes)),
        error_examples: examples(parts.iter().map(|(_, s)| &s.error_examples)),
        latencies: recorders.summaries(),
        histograms: recorders.histograms(),
        requests_per_second: per_second(succeeded as f64),
        input_tokens,
        output_tokens,
        input_tokens_per_second: all(|s| s.input_tokens_per_second.is_some())
            .then(|| per_second(input_tokens as f64)),
        output_tokens_per_second: all(|s| s.output_tokens_per_second.is_some())
            .then(|| per_second(output_tokens as f64)),
        units_per_second: units_per_request.map(|u| per_second(succeeded as f64 * u)),
        achieved_rate: (!achieved.is_empty()).then(|| achieved.iter().sum()),
        delayed_by_cap: sum(|s| s.delayed_by_cap),
        goodput: match good {
            Some(good) if all(|s| s.goodput.is_some()) && requests > 0 => Some(Goodput {
                requests_per_second: per_second(good as f64),
                fraction: good as f64 / requests as f64,
            }),
            _ => None,
        },
        throughput_runs: probe_runs(parts),
        window,
        good_requests: good,
        token_lengths: parts
            .iter()
            .filter_map(|(_, s)| s.token_lengths.as_ref())
            .fold(None, |total: Option<TokenLengths>, theirs| {
                let mut total = total.unwrap_or_default();
                total.merge(theirs);
                Some(total)
            }),
        cached_prompt_tokens: parts
            .iter()
            .filter_map(|(_, s)| s.cached_prompt_tokens)
            .reduce(|a, b| a + b),
        windows: merged_windows.clone(),
        // Every worker watched the same server: one worker's view is the server's.
        server_metrics: parts.iter().find_map(|(_, s)| s.server_metrics.clone()),
        gpu_telemetry: parts.iter().find_map(|(_, s)| s.gpu_telemetry.clone()),
        e2e_drift: merged_windows.as_deref().and_then(windows::drift),
    })
}

/// The whole load the workers' shares make up.
fn total_shape<'a>(shares: impl Iterator<Item = &'a LoadShape>) -> Result<LoadShape> {
    let mut total: Option<LoadShape> = None;
    for share in shares {
        total = Some(match (total, share) {
            (None, s) => s.clone(),
            (Some(LoadShape::Closed { concurrency: a }), LoadShape::Closed { concurrency: b }) => {
                LoadShape::Closed { concurrency: a + b }
            }
            (
                Some(LoadShape::Probe {
                    concurrency: a,
                    runs,
                }),
                LoadShape::Probe { concurrency: b, .. },
            ) => LoadShape::Probe {
                concurrency: a + b,
                runs,
            },
            (
                Some(LoadShape::Open {
                    mut arrival,
                    max_concurrency: a,
                }),
                LoadShape::Open {
                    arrival: other,
                    max_concurrency: b,
                },
            ) => {
                arrival.rate += other.rate;
                LoadShape::Open {
                    arrival,
                    max_concurrency: a + b,
                }
            }
            (
                Some(LoadShape::Pattern {
                    pattern,
                    arrival,
                    burstiness,
                    max_concurrency: a,
                }),
                LoadShape::Pattern {
                    pattern: other,
                    max_concurrency: b,
                    ..
                },
            ) if pattern.scaled(0.0) == other.scaled(0.0) => LoadShape::Pattern {
                // Shares of one pattern differ only in their rates: the whole is their sum.
                pattern: pattern.added(other),
                arrival,
                burstiness,
                max_concurrency: a + b,
            },
            (
                Some(LoadShape::UserPattern { pattern }),
                LoadShape::UserPattern { pattern: other },
            ) if pattern.scaled(0.0) == other.scaled(0.0) => LoadShape::UserPattern {
                pattern: pattern.added(other),
            },
            (Some(a), b) => bail!("the workers ran different load shapes ({a:?} and {b:?})"),
        });
    }
    total.context("no scenario to merge")
}

/// Probe runs happen together on every worker: run k's throughput is the workers' run k
/// added up.
fn probe_runs(parts: &[(&WorkerRun, &HttpScenario)]) -> Option<crate::metrics::RateSummary> {
    let runs: Vec<&Vec<f64>> = parts
        .iter()
        .map(|(_, s)| s.throughput_runs.as_ref().map(|r| &r.runs))
        .collect::<Option<_>>()?;
    let len = runs.iter().map(|r| r.len()).min()?;
    let summed = (0..len).map(|k| runs.iter().map(|r| r[k]).sum()).collect();
    crate::metrics::RateSummary::from_runs(summed)
}

/// Seconds covered by at least one window: overlapping windows count once, gaps not at all.
pub fn union_seconds(windows: &[TimeWindow]) -> f64 {
    let mut spans: Vec<(f64, f64)> = windows
        .iter()
        .map(|w| {
            (
                w.first_sent_unix_s,
                w.last_end_unix_s.max(w.first_sent_unix_s),
            )
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in spans {
        current = match current {
            Some((a, b)) if start <= b => Some((a, b.max(end))),
            Some((a, b)) => {
                total += b - a;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(a, b)| b - a)
}

fn hull(windows: &[TimeWindow]) -> TimeWindow {
    TimeWindow {
        first_sent_unix_s: windows
            .iter()
            .map(|w| w.first_sent_unix_s)
            .fold(f64::MAX, f64::min),
        last_end_unix_s: windows
            .iter()
            .map(|w| w.last_end_unix_s)
            .fold(f64::MIN, f64::max),
    }
}

fn add_maps<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for map in maps {
        for (k, v) in map {
            *total.entry(k.clone()).or_default() += v;
        }
    }
    total
}

fn examples<'a>(
    maps: impl Iterator<Item = &'a BTreeMap<String, Vec<String>>>,
) -> BTreeMap<String, Vec<String>> {
    let mut total: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for map in maps {
        for (class, messages) in map {
            let kept = total.entry(class.clone()).or_default();
            for m in messages {
                if kept.len() < MAX_EXAMPLES && !kept.contains(m) {
                    kept.push(m.clone());
                }
            }
        }
    }
    total
}

fn worker_figures(r: &WorkerRun) -> MergedWorker {
    let p = |l: &Option<crate::metrics::LatencySummary>,
             f: fn(&crate::metrics::LatencySummary) -> f64| { l.as_ref().map(f) };
    MergedWorker {
        index: r.run.worker.as_ref().map(|w| w.index),
        run_id: r.run.header.run_id.clone(),
        host: r.run.header.machine.hostname.clone(),
        late_ms: r.run.worker.as_ref().map(|w| w.late_ms),
        interrupted: !r.run.header.status.is_complete(),
        scenarios: r
            .run
            .scenarios
            .iter()
            .map(|s| WorkerScenario {
                name: s.name.clone(),
                requests: s.requests,
                succeeded: s.succeeded,
                failed: s.failed,
                requests_per_second: s.requests_per_second,
                output_tokens_per_second: s.output_tokens_per_second,
                ttft_p99_ms: p(&s.latencies.ttft, |l| l.p99_ms),
                e2e_p50_ms: p(&s.latencies.e2e, |l| l.p50_ms),
                e2e_p99_ms: p(&s.latencies.e2e, |l| l.p99_ms),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: f64, b: f64) -> TimeWindow {
        TimeWindow {
            first_sent_unix_s: a,
            last_end_unix_s: b,
        }
    }

    #[test]
    fn the_union_of_windows_counts_overlaps_once_and_gaps_not_at_all() {
        assert_eq!(union_seconds(&[w(0.0, 10.0), w(2.0, 12.0)]), 12.0);
        assert_eq!(union_seconds(&[w(20.0, 25.0), w(0.0, 10.0)]), 15.0);
        assert_eq!(
            union_seconds(&[w(0.0, 10.0), w(1.0, 2.0), w(10.0, 11.0)]),
            11.0
        );
        assert_eq!(union_seconds(&[]), 0.0);
    }

    #[test]
    fn plans_that_differ_are_named_by_their_first_difference() {
        let a: Vec<String> = ["-c", "8", "--rate", "10"].map(String::from).to_vec();
        let b: Vec<String> = ["-c", "8", "--rate", "20"].map(String::from).to_vec();
        let d = first_difference(&a, &b).unwrap();
        assert!(
            d.contains("`--rate 10`") && d.contains("`--rate 20`"),
            "{d}"
        );
        assert!(first_difference(&a, &a).is_none());
    }
}
