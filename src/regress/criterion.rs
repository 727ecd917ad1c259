//! Criterion's stored runs: `target/criterion/<bench dir>/<baseline>/` holds benchmark.json
//! (the id and throughput) and sample.json (iterations and total time of each sample). The
//! samples are what the comparison tests; estimates.json is Criterion's own summary of them
//! and is not needed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::stats::Samples;
use super::{Benchmark, Metric, MetricData};

#[derive(Deserialize)]
struct BenchmarkFile {
    full_id: String,
    #[serde(default)]
    throughput: Option<Throughput>,
}

#[derive(Deserialize)]
enum Throughput {
    Bytes(u64),
    BytesDecimal(u64),
    Elements(u64),
    /// (Its byte count is not used: elements are what Criterion reports first.)
    ElementsAndBytes {
        elements: u64,
    },
    Bits(u64),
}

impl Throughput {
    /// Amount per iteration and its unit per second.
    fn per_iteration(&self) -> (u64, &'static str) {
        match self {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (*n, "B/s"),
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (*n, "elem/s")
            }
            Throughput::Bits(n) => (*n, "bit/s"),
        }
    }
}

#[derive(Deserialize)]
struct SampleFile {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// Every benchmark saved under `root` with this baseline name, sorted by id.
pub fn load(root: &Path, baseline: &str) -> Result<Vec<Benchmark>> {
    if !root.is_dir() {
        bail!(
            "{}: no Criterion results folder (run `cargo bench` first)",
            root.display()
        );
    }
    let mut dirs = Vec::new();
    find_baseline_dirs(root, baseline, &mut dirs)?;
    if dirs.is_empty() {
        bail!(
            "no Criterion baseline named {baseline:?} under {} (save one with \
             `cargo bench -- --save-baseline {baseline}`, or `inferbench baseline restore {baseline}`)",
            root.display()
        );
    }
    let mut benches = dirs
        .iter()
        .map(|d| load_one(d))
        .collect::<Result<Vec<_>>>()?;
    benches.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(benches)
}

/// Folders named `baseline` that hold a benchmark.json, anywhere below `dir` (Criterion's
/// layout; its `report` folders are skipped). Each real folder is entered once, so a symlink
/// back up the tree neither loops nor counts a benchmark twice.
pub(crate) fn find_baseline_dirs(dir: &Path, baseline: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    walk(dir, baseline, out, &mut HashSet::new())
}

fn walk(
    dir: &Path,
    baseline: &str,
    out: &mut Vec<PathBuf>,
    seen: &mut HashSet<PathBuf>,
) -> Result<()> {
    let real = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot resolve", dir.display()))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == baseline) && path.join("benchmark.json").is_file()
        {
            if path.canonicalize().is_ok_and(|real| seen.insert(real)) {
                out.push(path);
            }
        } else if path.file_name().is_none_or(|n| n != "report") {
            walk(&path, baseline, out, seen)?;
        }
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: malformed ({e})", path.display()))
}

fn load_one(dir: &Path) -> Result<Benchmark> {
    let meta: BenchmarkFile = read_json(&dir.join("benchmark.json"))?;
    let sample_path = dir.join("sample.json");
    let sample: SampleFile = read_json(&sample_path)?;
    if sample.iters.len() != sample.times.len() || sample.iters.is_empty() {
        bail!(
            "{}: {} iteration counts for {} times: not a Criterion sample",
            sample_path.display(),
            sample.iters.len(),
            sample.times.len()
        );
    }
    let bad = |what: &str, list: &[f64], ok: fn(f64) -> bool| {
        list.iter().position(|v| !ok(*v)).map(|i| {
            anyhow!(
                "{}: {what}[{i}] is {}: not a measured sample",
                sample_path.display(),
                list[i]
            )
        })
    };
    if let Some(e) = bad("iters", &sample.iters, |v| v.is_finite() && v > 0.0)
        .or_else(|| bad("times", &sample.times, |v| v.is_finite() && v >= 0.0))
    {
        return Err(e);
    }
    // Each sample's mean time per iteration, in nanoseconds.
    let per_iter: Vec<f64> = sample
        .iters
        .iter()
        .zip(&sample.times)
        .map(|(i, t)| t / i)
        .collect();
    let time = Samples::from_values(&per_iter)
        .ok_or_else(|| anyhow!("{}: no usable sample", sample_path.display()))?;
    let mut metrics = vec![Metric {
        name: "time".into(),
        unit: "ns".into(),
        data: MetricData::Latency(time),
    }];
    if let Some(t) = &meta.throughput {
        let (amount, unit) = t.per_iteration();
        let rates: Vec<f64> = per_iter
            .iter()
            .filter(|ns| **ns > 0.0)
            .map(|ns| amount as f64 / ns * 1e9)
            .collect();
        if let Some(rates) = Samples::from_values(&rates) {
            metrics.push(Metric {
                name: "throughput".into(),
                unit: unit.into(),
                data: MetricData::Throughput(rates),
            });
        }
    }
    Ok(Benchmark {
        name: meta.full_id,
        metrics,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Write one Criterion benchmark folder as criterion 0.8 does.
    pub fn write_bench(root: &Path, dir: &str, id: &str, baseline: &str, ns_per_iter: &[f64]) {
        let d = root.join(dir).join(baseline);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("benchmark.json"),
            format!(r#"{{"group_id":"g","function_id":null,"value_str":null,"throughput":{{"Bytes":1000}},"full_id":"{id}","directory_name":"{dir}","title":"{id}"}}"#),
        )
        .unwrap();
        let iters: Vec<f64> = (1..=ns_per_iter.len()).map(|i| (i * 10) as f64).collect();
        let times: Vec<f64> = iters.iter().zip(ns_per_iter).map(|(i, t)| i * t).collect();
        std::fs::write(
            d.join("sample.json"),
            serde_json::json!({"sampling_mode": "Linear", "iters": iters, "times": times})
                .to_string(),
        )
        .unwrap();
    }

    #[test]
    fn reads_time_and_throughput_per_sample() {
        let root = tempfile::tempdir().unwrap();
        write_bench(root.path(), "g/b", "g/b", "main", &[100.0, 200.0]);
        write_bench(root.path(), "g/b", "g/b", "new", &[1.0, 1.0]);
        let benches = load(root.path(), "main").unwrap();
        assert_eq!(benches.len(), 1);
        assert_eq!(benches[0].name, "g/b");
        match &benches[0].metrics[0].data {
            MetricData::Latency(s) => {
                assert_eq!(s.statistic(super::super::stats::Statistic::Mean), 150.0)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(benches[0].metrics[1].unit, "B/s");
    }

    #[test]
    fn bad_input_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let missing = format!("{:#}", load(root.path(), "main").unwrap_err());
        assert!(
            missing.contains("no Criterion baseline named \"main\""),
            "{missing}"
        );
        write_bench(root.path(), "g/b", "g/b", "main", &[1.0]);
        let sample = root.path().join("g/b/main/sample.json");
        std::fs::write(&sample, r#"{"iters": [1.0, 2.0], "times": ["#).unwrap();
        let err = format!("{:#}", load(root.path(), "main").unwrap_err());
        assert!(
            err.contains("sample.json") && err.contains("malformed"),
            "{err}"
        );
        std::fs::write(&sample, r#"{"iters": [1.0, 2.0], "times": [5.0]}"#).unwrap();
        let err = format!("{:#}", load(root.path(), "main").unwrap_err());
        assert!(err.contains("2 iteration counts for 1 times"), "{err}");
        std::fs::write(root.path().join("g/b/main/benchmark.json"), "{}").unwrap();
        let err = format!("{:#}", load(root.path(), "main").unwrap_err());
        assert!(
            err.contains("benchmark.json") && err.contains("full_id"),
            "{err}"
        );
    }
}
