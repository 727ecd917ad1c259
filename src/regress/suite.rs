//! The suite's own results (run.json) as benchmarks to compare: per scenario, the latency
//! distributions (from their stored histograms) and the per-run throughputs.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::stats::Samples;
use super::{Benchmark, Metric, MetricData};
use crate::report::{json, RunResult};

/// A run.json, or a run folder holding one.
pub fn run_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(json::RUN_FILE)
    } else {
        path.to_path_buf()
    }
}

pub fn load(path: &Path) -> Result<(RunResult, Vec<Benchmark>)> {
    let run = json::load_run(&run_file(path))?;
    let benches = benchmarks(&run);
    Ok((run, benches))
}

pub fn benchmarks(run: &RunResult) -> Vec<Benchmark> {
    run.scenarios
        .iter()
        .map(|s| {
            let mut metrics = Vec::new();
            let h = &s.histograms;
            for (name, buckets) in [
                ("ttft", &h.ttft),
                ("itl", &h.itl),
                ("tpot", &h.tpot),
                ("e2e", &h.e2e),
            ] {
                if let Some(samples) = Samples::from_weighted(buckets.iter().copied()) {
                    metrics.push(Metric {
                        name: name.into(),
                        unit: "ms".into(),
                        data: MetricData::Latency(samples),
                    });
                }
            }
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
