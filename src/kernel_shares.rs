//! Each kernel benchmark's share of this machine's peaks: Criterion's results read back from
//! its folder (the median time of an iteration and the bytes or elements an iteration
//! declared), as achieved GB/s or GFLOP/s and a percentage of the measured triad, GEMM or
//! device copy. What the kernels bench prints at its end, so a kernel engineer sees how far
//! each kernel is from the roofline without dividing by hand.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::roofline::Ceiling;

/// What an iteration of a benchmark does, as Criterion recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    /// Bytes moved: compared with the bandwidth peak.
    Bytes(u64),
    /// Elements, FLOPs in the kernels bench: compared with the FLOP peak.
    Elements(u64),
}

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelFigure {
    /// "qmatmul/cpu/q8_0-smollm2-135m-1": Criterion's full id.
    pub id: String,
    pub median_ns: f64,
    pub work: Work,
}

#[derive(Deserialize)]
struct BenchmarkJson {
    full_id: String,
    /// `{"Bytes": n}`, `{"Elements": n}`, ... (Criterion's `Throughput`), or null.
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct EstimatesJson {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// Read one benchmark's `new/` folder; None when it declared no throughput.
pub fn read(new_dir: &Path) -> Result<Option<KernelFigure>> {
    let text = |name: &str| {
        let path = new_dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))
    };
    let bench: BenchmarkJson = serde_json::from_str(&text("benchmark.json")?)
        .with_context(|| format!("{}: not Criterion's benchmark.json", new_dir.display()))?;
    let estimates: EstimatesJson = serde_json::from_str(&text("estimates.json")?)
        .with_context(|| format!("{}: not Criterion's estimates.json", new_dir.display()))?;
    let throughput = bench.throughput.unwrap_or_default();
    let count = |key: &str| throughput.get(key).and_then(serde_json::Value::as_u64);
    let work = match (count("Bytes").or(count("BytesDecimal")), count("Elements")) {
        (Some(n), _) => Work::Bytes(n),
        (None, Some(n)) => Work::Elements(n),
        (None, None) => return Ok(None),
    };
    Ok(Some(KernelFigure {
        id: bench.full_id,
        median_ns: estimates.median.point_estimate,
        work,
    }))
}

/// Every benchmark under `root` (Criterion's folder) whose results were written at or after
/// `since` (this bench run's), in id order. Folders that cannot be read are skipped.
pub fn collect(root: &Path, since: SystemTime) -> Vec<KernelFigure> {
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let written = path
                .join("benchmark.json")
                .metadata()
                .and_then(|m| m.modified())
                .ok();
            if path.file_name().is_some_and(|n| n == "new") {
                if written.is_some_and(|w| w >= since) {
                    if let Ok(Some(f)) = read(&path) {
                        found.push(f);
                    }
                }
            } else if path
                .file_name()
                .is_none_or(|n| n != "base" && n != "report")
            {
                stack.push(path);
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// "qmatmul/cpu/...: 21.3 GB/s, 54% of the peak": the figure against the ceiling of its
/// device (a "cuda" in its id means the GPU's).
pub fn line(f: &KernelFigure, cpu: &Ceiling, gpu: &Ceiling) -> String {
    let ceiling = if f.id.contains("cuda") { gpu } else { cpu };
    let seconds = f.median_ns * 1e-9;
    if seconds <= 0.0 || !seconds.is_finite() {
        return format!("{}: no time measured", f.id);
    }
    let (rate, unit, peak) = match f.work {
        Work::Bytes(n) => (n as f64 / seconds, "GB/s", ceiling.bandwidth),
        Work::Elements(n) => (n as f64 / seconds, "GFLOP/s", ceiling.flops),
    };
    let share = peak
        .filter(|p| *p > 0.0)
        .map_or("peak not known".into(), |p| {
            format!("{:.0}% of the peak", 100.0 * rate / p)
        });
    format!("{}: {:.1} {unit}, {share}", f.id, rate / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(root: &Path, id: &str, throughput: &str, median_ns: f64) {
        let dir = root.join(id.replace('/', "_")).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("benchmark.json"),
            format!(r#"{{"group_id": "g", "full_id": "{id}", "throughput": {throughput}}}"#),
        )
        .unwrap();
        std::fs::write(
            dir.join("estimates.json"),
            format!(r#"{{"mean": {{"point_estimate": 1.0}}, "median": {{"point_estimate": {median_ns}}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn figures_are_read_back_and_held_against_their_device_s_peak() {
        let root = tempfile::tempdir().unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(5);
        // 1 GB in 0.1 s: 10 GB/s; 2 GFLOP in 0.1 s: 20 GFLOP/s.
        bench(
            root.path(),
            "qmatmul/cpu/q8",
            r#"{"Bytes": 1000000000}"#,
            1e8,
        );
        bench(
            root.path(),
            "matmul/cpu/f32",
            r#"{"Elements": 2000000000}"#,
            1e8,
        );
        bench(
            root.path(),
            "matmul/cuda0/f16",
            r#"{"Bytes": 4000000000}"#,
            1e8,
        );
        bench(root.path(), "noop/cpu", "null", 1e8);
        let found = collect(root.path(), before);
        assert_eq!(found.len(), 3, "{found:?}");
        let cpu = Ceiling {
            bandwidth: Some(40e9),
            flops: Some(100e9),
            what: String::new(),
        };
        let gpu = Ceiling {
            bandwidth: Some(400e9),
            flops: None,
            what: String::new(),
        };
        let lines: Vec<String> = found.iter().map(|f| line(f, &cpu, &gpu)).collect();
        assert_eq!(
            lines,
            [
                "matmul/cpu/f32: 20.0 GFLOP/s, 20% of the peak",
                "matmul/cuda0/f16: 40.0 GB/s, 10% of the peak",
                "qmatmul/cpu/q8: 10.0 GB/s, 25% of the peak",
            ]
        );
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(
            collect(root.path(), later).is_empty(),
            "older results are not this run's"
        );
        let unknown = Ceiling {
            bandwidth: None,
            flops: None,
            what: String::new(),
        };
        assert!(line(&found[2], &unknown, &unknown).ends_with("peak not known"));
    }
}
