//! The result of an instruction-count run (`kind: "instructions"`): the usual header, the
//! count profile (what the counts depend on besides the code), and per workload callgrind's
//! events per iteration with advisory wall times.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::columns::{column, Column};
use super::csv;
use crate::results::{RunFile, RunHeader, RunStatus};

pub const KIND: &str = "instructions";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstructionRun {
    /// kind "instructions".
    #[serde(flatten)]
    pub header: RunHeader,
    /// None only when nothing was counted.
    pub profile: Option<CountProfile>,
    /// Whether the caches were simulated (misses and estimated cycles present).
    pub cache_sim: bool,
    /// The workloads asked for, in order.
    pub planned: Vec<String>,
    pub benchmarks: Vec<Counted>,
}

/// What a count depends on besides the code (see `instructions::profile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountProfile {
    /// "x86_64", "aarch64".
    pub arch: String,
    /// Extensions that change which kernels run: "avx2", "fma", "avx512f", "f16c", "neon".
    pub features: Vec<String>,
    /// `rustc --version` of the build.
    pub rustc: String,
    /// "release" or "debug" (debug assertions on: the test profile).
    pub build: String,
    /// The cargo features the binary was built with ("cuda" links other code paths).
    #[serde(default)]
    pub cargo_features: Vec<String>,
    /// `valgrind --version`.
    pub valgrind: String,
}

impl CountProfile {
    /// A short name for folders and tables: "x86_64-avx2-fma-debug".
    pub fn slug(&self) -> String {
        let mut parts = vec![self.arch.clone()];
        parts.extend(self.features.iter().cloned());
        parts.push(self.build.clone());
        parts.join("-")
    }

    fn fields(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("arch", self.arch.clone()),
            ("features", self.features.join(",")),
            ("rustc", self.rustc.clone()),
            ("build", self.build.clone()),
            ("cargo features", self.cargo_features.join(",")),
            ("valgrind", self.valgrind.clone()),
        ])
    }

    /// "rustc: 1.95.0 vs 1.96.0" for each field that differs.
    pub fn differences(&self, other: &CountProfile) -> Vec<String> {
        let (a, b) = (self.fields(), other.fields());
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} vs {}", b.get(k).map_or("", |s| s.as_str())))
            .collect()
    }
}

/// One workload's figures: counts per iteration, and advisory times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Counted {
    pub name: String,
    pub what: String,
    pub iterations: u32,
    /// Callgrind's events per iteration: Ir (instructions), and with the cache simulation
    /// Dr, Dw, I1mr, D1mr, D1mw, ILmr, DLmr, DLmw and EstimatedCycles.
    pub per_iteration: BTreeMap<String, f64>,
    /// Nanoseconds per iteration, one per sample, measured natively (advisory).
    pub time_ns: Vec<f64>,
    /// callgrind's output file, relative to the run folder.
    pub callgrind_file: String,
    /// Seconds the counted process took under valgrind.
    pub count_seconds: f64,
}

impl Counted {
    pub fn instructions(&self) -> f64 {
        self.per_iteration.get("Ir").copied().unwrap_or(f64::NAN)
    }
}

impl RunFile for InstructionRun {
    const KIND: &'static str = KIND;
    const WHAT: &'static str = "instruction-count result";

    fn header(&self) -> &RunHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut RunHeader {
        &mut self.header
    }

    fn csv(&self) -> String {
        csv::write(&columns(), &self.benchmarks)
    }

    fn check(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for (i, b) in self.benchmarks.iter().enumerate() {
            let field = |f: &str| format!("benchmarks[{i}].{f}");
            if !names.insert(b.name.as_str()) {
                return Err(format!("{}: {:?} is listed twice", field("name"), b.name));
            }
            if b.iterations == 0 {
                return Err(format!("{}: must be at least 1", field("iterations")));
            }
            if !b.per_iteration.contains_key("Ir") {
                return Err(format!("{}: no Ir (instructions)", field("per_iteration")));
            }
            for (event, v) in &b.per_iteration {
                if !(v.is_finite() && *v >= 0.0) {
                    return Err(format!(
                        "{}: {v} is not a count",
                        field(&format!("per_iteration.{event}"))
                    ));
                }
            }
            if let Some(v) = b.time_ns.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(format!("{}: {v} is not a time", field("time_ns")));
            }
        }
        if !self.benchmarks.is_empty() && self.profile.is_none() {
            return Err("profile: missing, but there are counts".into());
        }
        Ok(())
    }
}

/// The median of some samples (None when there are none).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

fn event(b: &Counted, name: &str) -> Option<f64> {
    b.per_iteration.get(name).copied()
}

/// Callgrind's miss events of the first-level caches (instruction, data read, data write).
pub const L1_MISS_EVENTS: [&str; 3] = ["I1mr", "D1mr", "D1mw"];
/// The same at the last level.
pub const LL_MISS_EVENTS: [&str; 3] = ["ILmr", "DLmr", "DLmw"];

/// The sum of these events, when the cache was simulated.
fn misses(b: &Counted, events: &[&str]) -> Option<f64> {
    events.iter().map(|e| event(b, e)).sum()
}

fn columns<'a>() -> Vec<Column<'a, Counted>> {
    let count = |name: &'static str| {
        move |b: &Counted| event(b, name).map_or(String::new(), |v| format!("{v:.1}"))
    };
    vec![
        column("benchmark", |b: &Counted| b.name.clone()),
        column("iterations", |b: &Counted| b.iterations.to_string()),
        column("instructions", count("Ir")),
        column("estimated_cycles", count("EstimatedCycles")),
        column("l1_misses", |b: &Counted| {
            misses(b, &L1_MISS_EVENTS).map_or(String::new(), |v| format!("{v:.1}"))
        }),
        column("ll_misses", |b: &Counted| {
            misses(b, &LL_MISS_EVENTS).map_or(String::new(), |v| format!("{v:.1}"))
        }),
        column("time_p50_ns", |b: &Counted| {
            median(&b.time_ns).map_or(String::new(), |v| format!("{v:.0}"))
        }),
    ]
}

/// A count for people: 1234567 -> "1,234,567".
pub fn grouped(v: f64) -> String {
    let digits = format!("{:.0}", v.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The terminal table: one row per workload.
pub fn table(run: &InstructionRun) -> String {
    let columns = [
        column("benchmark", |b: &Counted| b.name.clone()),
        column("instructions", |b: &Counted| grouped(b.instructions())),
        column("est. cycles", |b: &Counted| {
            event(b, "EstimatedCycles").map_or("-".into(), grouped)
        }),
        column("L1 miss", |b: &Counted| {
            misses(b, &L1_MISS_EVENTS).map_or("-".into(), grouped)
        }),
        column("LL miss", |b: &Counted| {
            misses(b, &LL_MISS_EVENTS).map_or("-".into(), grouped)
        }),
        column("time p50", |b: &Counted| {
            median(&b.time_ns).map_or("-".into(), |ns| {
                if ns >= 1e6 {
                    format!("{:.2} ms", ns / 1e6)
                } else {
                    format!("{:.1} µs", ns / 1e3)
                }
            })
        }),
    ];
    let done = run.benchmarks.len();
    let status = match run.header.status {
        RunStatus::Complete => format!("complete, {done} workloads"),
        RunStatus::Interrupted => format!("interrupted: {done} of {} workloads", run.planned.len()),
        RunStatus::Running => format!("incomplete: {done} of {} workloads", run.planned.len()),
    };
    let profile = run.profile.as_ref().map_or("-".into(), |p| {
        format!("{} | {} | {}", p.slug(), p.rustc, p.valgrind)
    });
    let mut out = format!("run {} [{status}] | {profile}\n\n", run.header.run_id);
    out += &super::table::markdown_of(&columns, &run.benchmarks);
    out += "\nCounts are per iteration, from callgrind (deterministic); times are native and advisory.\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_and_medians_taken() {
        assert_eq!(grouped(1234567.4), "1,234,567");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
