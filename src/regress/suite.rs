//! The suite's own results (run.json) as benchmarks to compare. Inference runs: per scenario,
//! the latency distributions (from their stored histograms) and the per-run throughputs.
//! Retrieval runs: per ef, the query latency distribution, the batch queries/s of each pass,
//! and the per-query recall (a drop is a loss, like throughput's). HTTP runs: per scenario,
//! the request latency distributions, the error rate, and the throughput (per probe run;
//! one value otherwise, shown but not tested).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::stats::Samples;
use super::{Benchmark, Metric, MetricData};
use crate::device::MachineInfo;
use crate::report::http::{self, HttpRun};
use crate::report::retrieval::{self, RetrievalRun};
use crate::report::{json, LatencyHistograms, RunHeader, RunResult};

/// A run.json, or a run folder holding one.
pub fn run_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(json::RUN_FILE)
    } else {
        path.to_path_buf()
    }
}

/// What a comparison needs of a run, whatever its kind.
pub struct LoadedRun {
    pub kind: String,
    pub run_id: String,
    pub git_commit: String,
    pub machine: MachineInfo,
    pub benchmarks: Vec<Benchmark>,
}

impl LoadedRun {
    fn from_header(header: RunHeader, benchmarks: Vec<Benchmark>) -> Self {
        LoadedRun {
            kind: header.kind,
            run_id: header.run_id,
            git_commit: header.git_commit,
            machine: header.machine,
            benchmarks,
        }
    }
}

pub fn load(path: &Path) -> Result<LoadedRun> {
    let file = run_file(path);
    let kind = retrieval::kind_of(&file)?;
    if kind == http::KIND {
        let run = http::load(&file)?;
        return Ok(LoadedRun::from_header(
            run.header.clone(),
            http_benchmarks(&run),
        ));
    }
    if kind == retrieval::KIND {
        let run = retrieval::load(&file)?;
        return Ok(LoadedRun::from_header(
            run.header.clone(),
            retrieval_benchmarks(&run),
        ));
    }
    let run = json::load_run(&file)?;
    Ok(LoadedRun {
        kind: run.kind.clone(),
        run_id: run.run_id.clone(),
        git_commit: run.git_commit.clone(),
        benchmarks: benchmarks(&run),
        machine: run.machine,
    })
}

/// TTFT, ITL, TPOT and end-to-end latency, from their stored histograms.
fn latency_metrics(h: &LatencyHistograms) -> Vec<Metric> {
    [
        ("ttft", &h.ttft),
        ("itl", &h.itl),
        ("tpot", &h.tpot),
        ("e2e", &h.e2e),
    ]
    .into_iter()
    .filter_map(|(name, buckets)| {
        Samples::from_weighted(buckets.iter().copied()).map(|samples| Metric {
            name: name.into(),
            unit: "ms".into(),
            data: MetricData::Latency(samples),
        })
    })
    .collect()
}

pub fn benchmarks(run: &RunResult) -> Vec<Benchmark> {
    run.scenarios
        .iter()
        .map(|s| {
            let mut metrics = latency_metrics(&s.histograms);
            for (name, rate) in [
                ("decode_tokens_per_second", &s.decode_tokens_per_second),
                ("e2e_tokens_per_second", &s.e2e_tokens_per_second),
                ("prompt_tokens_per_second", &s.prompt_tokens_per_second),
            ] {
                if let Some(r) = rate {
                    metrics.push(Metric {
                        name: name.into(),
                        unit: "tok/s".into(),
                        data: MetricData::ThroughputRuns(r.runs.clone()),
                    });
                }
            }
            Benchmark {
                name: format!("{}/{}", run.kind, s.name),
                metrics,
            }
        })
        .collect()
}

/// One benchmark per ef: "retrieval/clustered-100000x384/ef64".
pub fn retrieval_benchmarks(run: &RetrievalRun) -> Vec<Benchmark> {
    run.scenarios
        .iter()
        .map(|s| {
            let mut metrics = Vec::new();
            if let Some(samples) = Samples::from_weighted(s.latency_histogram.iter().copied()) {
                metrics.push(Metric {
                    name: "query_latency".into(),
                    unit: "ms".into(),
                    data: MetricData::Latency(samples),
                });
            }
            if let Some(r) = &s.batch_qps {
                metrics.push(Metric {
                    name: "queries_per_second".into(),
                    unit: "queries/s".into(),
                    data: MetricData::ThroughputRuns(r.runs.clone()),
                });
            }
            if let Some(samples) = Samples::from_weighted(s.recall_histogram.iter().copied()) {
                metrics.push(Metric {
                    name: "recall".into(),
                    unit: format!("recall@{}", s.k),
                    data: MetricData::Throughput(samples),
                });
            }
            Benchmark {
                name: format!("{}/{}/{}", run.header.kind, run.dataset.name, s.name),
                metrics,
            }
        })
        .collect()
}

/// One benchmark per scenario: "http/c4", "http/rate8-poisson".
pub fn http_benchmarks(run: &HttpRun) -> Vec<Benchmark> {
    run.scenarios
        .iter()
        .map(|s| {
            let mut metrics = latency_metrics(&s.histograms);
            metrics.push(Metric {
                name: "errors".into(),
                unit: "requests".into(),
                data: MetricData::Errors {
                    failed: s.failed,
                    total: s.requests,
                },
            });
            let (name, unit, value) = match (s.output_tokens_per_second, s.units_per_second) {
                (Some(t), _) => ("output_tokens_per_second", "tok/s", t),
                (None, Some(u)) => ("units_per_second", "units/s", u),
                (None, None) => ("requests_per_second", "req/s", s.requests_per_second),
            };
            let runs = s
                .throughput_runs
                .as_ref()
                .map_or_else(|| vec![value], |r| r.runs.clone());
            metrics.push(Metric {
                name: name.into(),
                unit: unit.into(),
                data: MetricData::ThroughputRuns(runs),
            });
            Benchmark {
                name: format!("{}/{}", run.header.kind, s.name),
                metrics,
            }
        })
        .collect()
}
