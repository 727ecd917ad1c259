//! Results over time: `inferbench history add` appends a run (any kind) or a Criterion run to
//! a local SQLite file; `inferbench history show` prints each benchmark's series and the change
//! points in it, so a slow drift or a step that no single comparison flagged shows up.

pub mod changes;
pub mod store;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use regex::Regex;

use crate::device::MachineInfo;
use crate::regress::stats::Statistic;
use crate::regress::{self, baseline, Benchmark, MetricData};
use crate::report::instructions::grouped;
use crate::results::{now_rfc3339, run_file};
use store::{Entry, Point, Store};

/// Where the history lives unless told otherwise.
pub const DEFAULT_FILE: &str = "results/history.sqlite";

/// Minimum effects for a change point: deterministic counts move little, times a lot.
pub const MIN_EFFECT_COUNTS: f64 = 0.01;

/// What to add: a run.json (or its folder), or a Criterion folder and the run in it.
pub struct AddRequest<'a> {
    pub source: &'a Path,
    /// Criterion: which saved run (default `new`, the last `cargo bench`).
    pub criterion_run: &'a str,
    pub branch: Option<&'a str>,
    pub commit: Option<&'a str>,
}

/// The points of some benchmarks: one value per benchmark, metric and statistic (latencies:
/// p50 and p95; throughputs: the mean; errors: the rate; counts: the count).
pub fn points_of(benchmarks: &[Benchmark]) -> Vec<Point> {
    let mut points = Vec::new();
    for b in benchmarks {
        for m in &b.metrics {
            let mut push = |statistic: &str, value: f64| {
                if value.is_finite() {
                    points.push(Point {
                        benchmark: b.name.clone(),
                        metric: m.name.clone(),
                        statistic: statistic.into(),
                        unit: m.unit.clone(),
                        value,
                    });
                }
            };
            match &m.data {
                MetricData::Latency(s) | MetricData::AdvisoryLatency(s) => {
                    push("p50", s.statistic(Statistic::Quantile(0.5)));
                    push("p95", s.statistic(Statistic::Quantile(0.95)));
                }
                MetricData::Throughput(s) => push("throughput", s.statistic(Statistic::Mean)),
                MetricData::ThroughputRuns(runs) if !runs.is_empty() => {
                    push("throughput", runs.iter().sum::<f64>() / runs.len() as f64)
                }
                MetricData::ThroughputRuns(_) => {}
                MetricData::Errors { failed, total } if *total > 0 => {
                    push("error_rate", *failed as f64 / *total as f64)
                }
                MetricData::Errors { .. } => {}
                MetricData::Count(v) => push("count", *v),
            }
        }
    }
    points
}

/// Append one run to the history at `db`; returns the entry and how many points it added.
pub fn add(db: &Path, request: &AddRequest) -> Result<(Entry, usize)> {
    let source = request.source;
    let (mut entry, benchmarks) = if run_file(source).is_file() {
        let run = regress::suite::load(source)?;
        let machine = match &run.count_profile {
            Some(p) => format!("{} ({})", p.slug(), p.rustc),
            None => baseline::default_profile(&run.header.machine),
        };
        let entry = Entry {
            id: 0,
            added_at: now_rfc3339(),
            source: source.display().to_string(),
            kind: run.header.kind.clone(),
            run_id: run.header.run_id.clone(),
            branch: String::new(),
            git_commit: run.header.git_commit.clone(),
            machine,
        };
        (entry, run.benchmarks)
    } else if source.is_dir() {
        let benchmarks = regress::criterion::load(source, request.criterion_run)?;
        let entry = Entry {
            id: 0,
            added_at: now_rfc3339(),
            source: source.display().to_string(),
            kind: "criterion".into(),
            run_id: request.criterion_run.into(),
            branch: String::new(),
            git_commit: crate::build_info::git_commit().into(),
            machine: baseline::default_profile(&MachineInfo::collect()),
        };
        (entry, benchmarks)
    } else {
        anyhow::bail!(
            "{}: neither a run (run.json or its folder) nor a Criterion folder",
            source.display()
        );
    };
    if let Some(b) = request.branch {
        entry.branch = b.into();
    }
    if let Some(c) = request.commit {
        entry.git_commit = c.into();
    }
    let points = points_of(&benchmarks);
    if points.is_empty() {
        anyhow::bail!("{}: no measured values to add", source.display());
    }
    let mut store = Store::open(db, true)?;
    entry.id = store
        .add(&entry, &points)
        .with_context(|| format!("{}: cannot add to the history", db.display()))?;
    Ok((entry, points.len()))
}

/// One series: a benchmark's metric and statistic on one machine, in the order added, with
/// its change points (none when it has too few points).
pub struct Series {
    pub benchmark: String,
    pub metric: String,
    pub statistic: String,
    pub machine: String,
    pub unit: String,
    /// (entry id, value)
    pub values: Vec<(i64, f64)>,
    pub changes: Vec<changes::Change>,
}

impl Series {
    /// Enough points for change points to be looked for.
    pub fn enough(&self) -> bool {
        self.values.len() >= 2 * changes::MIN_SEGMENT
    }
}

/// Benchmark, metric, statistic, machine.
type SeriesKey = (String, String, String, String);

/// Every series of the history matching `bench`, with their change points, and the entries
/// (by id) they come from.
pub fn read(
    db: &Path,
    bench: Option<&Regex>,
    min_effect: f64,
) -> Result<(BTreeMap<i64, Entry>, Vec<Series>)> {
    let store = Store::open(db, false)?;
    let entries: BTreeMap<i64, Entry> = store.entries()?.into_iter().map(|e| (e.id, e)).collect();
    let mut grouped: BTreeMap<SeriesKey, (String, Vec<(i64, f64)>)> = BTreeMap::new();
    for (entry, p) in store.points()? {
        if bench.is_some_and(|re| !re.is_match(&p.benchmark)) {
            continue;
        }
        let machine = entries
            .get(&entry)
            .map_or(String::new(), |e| e.machine.clone());
        grouped
            .entry((p.benchmark, p.metric, p.statistic, machine))
            .or_insert_with(|| (p.unit, Vec::new()))
            .1
            .push((entry, p.value));
    }
    let series = grouped
        .into_iter()
        .map(
            |((benchmark, metric, statistic, machine), (unit, values))| {
                let effect = if statistic == "count" {
                    MIN_EFFECT_COUNTS
                } else {
                    min_effect
                };
                let numbers: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
                let changes = if numbers.len() >= 2 * changes::MIN_SEGMENT {
                    changes::change_points(&numbers, effect)
                } else {
                    Vec::new()
                };
                Series {
                    benchmark,
                    metric,
                    statistic,
                    machine,
                    unit,
                    values,
                    changes,
                }
            },
        )
        .collect();
    Ok((entries, series))
}

/// The history as text: each series matching `bench` with its change points.
pub fn show(db: &Path, bench: Option<&Regex>, min_effect: f64, last: usize) -> Result<String> {
    let (entries, series) = read(db, bench, min_effect)?;
    let mut out = format!(
        "history {}: {} entries, {} series\nchange points: |Welch t| >= {} between segments of >= {} points, \
         and a shift >= {:.0}% (counts: >= {:.0}%)\n",
        db.display(),
        entries.len(),
        series.len(),
        changes::T_THRESHOLD,
        changes::MIN_SEGMENT,
        min_effect * 100.0,
        MIN_EFFECT_COUNTS * 100.0
    );
    if series.is_empty() {
        out += "\nno series";
        out += if bench.is_some() {
            " match --bench\n"
        } else {
            "\n"
        };
    }
    let needed = 2 * changes::MIN_SEGMENT;
    for s in &series {
        let values: Vec<f64> = s.values.iter().map(|(_, v)| *v).collect();
        let fmt = |v: f64| regress::render::value(v, &s.unit);
        out += &format!(
            "\n{} · {} {} · {}\n",
            s.benchmark, s.metric, s.statistic, s.machine
        );
        let shown = &values[values.len().saturating_sub(last)..];
        let listed: Vec<String> = shown.iter().map(|v| short(*v, &s.unit)).collect();
        let skipped = values.len() - shown.len();
        out += &format!(
            "  {} point{}{}: {}\n",
            values.len(),
            if values.len() == 1 { "" } else { "s" },
            if skipped > 0 {
                format!(" (last {last})")
            } else {
                String::new()
            },
            listed.join(" ")
        );
        if !s.enough() {
            out += &format!(
                "  not enough data for change points ({} of the {needed} points needed)\n",
                values.len()
            );
            continue;
        }
        if s.changes.is_empty() {
            out += "  no change point\n";
        }
        for c in &s.changes {
            let entry = entries.get(&s.values[c.at].0);
            let at = entry.map_or(String::new(), |e| {
                let branch = if e.branch.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", e.branch)
                };
                format!(" ({}{branch}, {})", e.git_commit, e.added_at)
            });
            out += &format!(
                "  CHANGE at point {}{at}: {} -> {} ({:+.1}%)\n",
                c.at + 1,
                fmt(c.before),
                fmt(c.after),
                c.relative() * 100.0
            );
        }
    }
    Ok(out)
}

/// A value for a series line: counts grouped, others to about 4 significant digits.
fn short(v: f64, unit: &str) -> String {
    match unit {
        "instr" | "cycles" => grouped(v),
        _ if v.abs() >= 1000.0 => format!("{v:.0}"),
        _ if v.abs() >= 100.0 => format!("{v:.1}"),
        _ if v.abs() >= 1.0 => format!("{v:.3}"),
        _ => format!("{v:.4}"),
    }
}
