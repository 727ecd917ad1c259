//! The suite's own results (run.json) as benchmarks to compare. Inference runs: per scenario,
//! the latency distributions (from their stored histograms) and the per-run throughputs.
//! Retrieval runs: per ef, the query latency distribution, the batch queries/s of each pass,
//! and the per-query recall (a drop is a loss, like throughput's). HTTP runs: per scenario,
//! the request latency distributions, the error rate, and the throughput (per probe run;
//! one value otherwise, shown but not tested).

use std::path::Path;

use anyhow::{bail, Result};

use super::stats::Samples;
use super::{Benchmark, Metric, MetricData};
use crate::metrics::{Latency, LatencyHistograms};
use crate::report::http::HttpRun;
use crate::report::instructions::{CountProfile, InstructionRun};
use crate::report::retrieval::RetrievalRun;
use crate::report::RunResult;
use crate::results::{kind_of, run_file, RunFile, RunHeader};

/// What a comparison needs of a run, whatever its kind.
pub struct LoadedRun {
    pub header: RunHeader,
    pub benchmarks: Vec<Benchmark>,
    /// Instruction counts: what they depend on besides the code.
    pub count_profile: Option<CountProfile>,
}

/// A run.json (or its folder) of any kind, as benchmarks.
pub fn load(path: &Path) -> Result<LoadedRun> {
    let file = run_file(path);
    fn loaded<R: RunFile>(file: &Path, benchmarks: fn(&R) -> Vec<Benchmark>) -> Result<LoadedRun> {
        let run = R::load(file)?;
        Ok(LoadedRun {
            benchmarks: benchmarks(&run),
            header: run.header().clone(),
            count_profile: None,
        })
    }
    match kind_of(&file)?.0.as_str() {
        RunResult::KIND => loaded(&file, benchmarks),
        RetrievalRun::KIND => loaded(&file, retrieval_benchmarks),
        HttpRun::KIND => loaded(&file, http_benchmarks),
        InstructionRun::KIND => {
            let run = InstructionRun::load(&file)?;
            Ok(LoadedRun {
                benchmarks: instruction_benchmarks(&run),
                header: run.header,
                count_profile: run.profile,
            })
        }
        other => bail!(
            "{}: unknown kind {other:?} (this inferbench reads {}, {}, {} and {} runs)",
            file.display(),
            RunResult::KIND,
            RetrievalRun::KIND,
            HttpRun::KIND,
            InstructionRun::KIND
        ),
    }
}

/// TTFT, ITL, TPOT and end-to-end latency, from their stored histograms.
fn latency_metrics(h: &LatencyHistograms) -> Vec<Metric> {
    Latency::ALL
        .iter()
        .copied()
        .filter_map(|latency| {
            let buckets = h.of(latency);
            Samples::from_weighted(buckets.iter().copied()).map(|samples| Metric {
                name: latency.name().into(),
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
                name: format!("{}/{}", run.header.kind, s.name),
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

/// One benchmark per workload: "instructions/qmatmul/smollm2-135m/Q8_0", with its
/// instructions and estimated cycles (exact counts) and its native times (advisory).
pub fn instruction_benchmarks(run: &InstructionRun) -> Vec<Benchmark> {
    run.benchmarks
        .iter()
        .map(|b| {
            let mut metrics = Vec::new();
            for (event, name, unit) in [
                ("Ir", "instructions", "instr"),
                ("EstimatedCycles", "estimated_cycles", "cycles"),
            ] {
                if let Some(v) = b.per_iteration.get(event) {
                    metrics.push(Metric {
                        name: name.into(),
                        unit: unit.into(),
                        data: MetricData::Count(*v),
                    });
                }
            }
            if let Some(samples) = Samples::from_values(&b.time_ns) {
                metrics.push(Metric {
                    name: "time".into(),
                    unit: "ns".into(),
                    data: MetricData::AdvisoryLatency(samples),
                });
            }
            Benchmark {
                name: format!("{}/{}", run.header.kind, b.name),
                metrics,
            }
        })
        .collect()
}
