//! The result of a retrieval run (`kind: "retrieval"`): the same header as an inference run
//! (version, commit, machine, status, times), then the data set, the index, and one scenario
//! per ef of the sweep with recall beside its latency, ann-benchmarks style.

use serde::{Deserialize, Serialize};

use super::checks::{buckets, fail, rate, summary};
use super::columns::{column, Column};
use super::csv;
use crate::metrics::{LatencySummary, RateSummary, Reading};
use crate::results::{RunFile, RunHeader, RunStatus};

pub const KIND: &str = "retrieval";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrievalRun {
    /// kind "retrieval".
    #[serde(flatten)]
    pub header: RunHeader,
    /// Threads the parallel phases (generation, ground truth, build, batch queries) used.
    pub threads: usize,
    pub dataset: DatasetInfo,
    pub ground_truth: GroundTruthInfo,
    pub index: IndexInfo,
    /// The ef values asked for, in order.
    pub planned_efs: Vec<usize>,
    /// One per ef measured, in sweep order.
    pub scenarios: Vec<EfScenario>,
    /// The smallest ef whose recall reaches the headline recall, with its latency.
    pub headline: Headline,
    pub targets: Vec<Check>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// "clustered-1000000x384", "hard-...", "text:passages.txt", "vectors:emb.txt".
    pub name: String,
    /// "gaussian mixture", "all-MiniLM-L6-v2 embeddings of <file>", "vectors file <file>".
    pub source: String,
    pub vectors: usize,
    pub queries: usize,
    pub dim: usize,
    pub metric: String,
    /// The generator's parameters, for synthetic sets.
    pub parameters: Option<serde_json::Value>,
    /// Time to generate, read or embed the vectors.
    pub prepare_s: f64,
    /// True when the vectors came from the cache (embeddings).
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruthInfo {
    pub k: usize,
    pub method: String,
    /// Time to compute it, or to read it from the cache.
    pub seconds: f64,
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexInfo {
    /// Who built the graph: "hnsw_rs 0.3.5", or "inferbench-graph, saved as hnsw_rs 0.3.5".
    pub library: String,
    pub m: usize,
    pub ef_construction: usize,
    pub build_threads: usize,
    /// Build time, when this run built the index.
    pub build_s: Option<f64>,
    /// Reload time, when it came from the cache.
    pub load_s: Option<f64>,
    pub cached: bool,
    /// Why the cached index was not used, when one was there.
    pub cache_note: Option<String>,
    pub path: Option<String>,
    pub disk_bytes: Option<u64>,
    /// Resident memory the index added to the process (growth over the build or reload).
    pub memory_bytes: Reading<u64>,
    /// The up-front estimate the memory check used.
    pub estimated_memory_bytes: u64,
    /// Whose search answered the queries: "flat" (the graph laid out by inferbench-graph)
    /// or "hnsw_rs" (the library's own). Absent in runs from before the choice existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// The flat layout: how long it took and what it holds, and which nodes no search can
    /// reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutInfo>,
}

/// The flat layout of the graph, and what walking it showed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutInfo {
    pub seconds: f64,
    pub bytes: u64,
    pub layers: u8,
    /// "as-built" (the links as the graph was built), "repaired" (as built, and a link into
    /// each node no path led to) or "reselected" (chosen again, see `--links`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// Nodes no path led to in the graph as built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_nodes_as_built: Option<u64>,
    /// Nodes no path from the entry point leads to in the links searched: never returned,
    /// whatever ef.
    pub unreachable_nodes: u64,
    /// Queries whose true top-k holds an unreachable node (their recall cannot be 1).
    pub queries_with_unreachable_truth: u64,
    /// Bytes of the vectors and layer-0 links on huge pages once laid out (Linux; see
    /// `INFERBENCH_NO_HUGE_PAGES`): a search at 1M runs ~13% faster with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub huge_page_bytes: Option<u64>,
}

impl LayoutInfo {
    /// "1586 MiB on huge pages", where the kernel could be asked.
    pub fn huge_pages(&self) -> Option<String> {
        self.huge_page_bytes
            .map(|huge| format!("{:.0} MiB on huge pages", huge as f64 / 1048576.0))
    }
}

/// Whose search answered, and for the flat layout what it holds and what it repaired.
pub fn search_summary(index: &IndexInfo) -> String {
    match (index.search.as_deref(), &index.layout) {
        (Some("flat"), Some(l)) => format!(
            "flat layout, {:.1} MiB{}, {} layers, links {}, made in {:.1} s; {} nodes unreachable from the entry point{}",
            l.bytes as f64 / 1048576.0,
            match l.huge_pages() {
                Some(huge) => format!(" ({huge})"),
                None => String::new(),
            },
            l.layers,
            l.links.as_deref().unwrap_or("as-built"),
            l.seconds,
            l.unreachable_nodes,
            match l.unreachable_nodes_as_built {
                Some(before) if before != l.unreachable_nodes => format!(" ({before} as built)"),
                _ => String::new(),
            }
        ),
        (Some(other), _) => format!("{other}'s own"),
        (None, _) => "hnsw_rs's own (a run from before the flat layout)".into(),
    }
}

/// One ef of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EfScenario {
    /// "ef64".
    pub name: String,
    pub ef: usize,
    pub k: usize,
    pub queries: usize,
    /// Mean recall@k over the queries.
    pub recall: f64,
    pub recall_min: f64,
    /// How many queries had each recall value: [recall, count] pairs.
    pub recall_histogram: Vec<(f64, u64)>,
    /// One query at a time on one thread.
    pub latency: LatencySummary,
    /// The latency distribution: [milliseconds, count] pairs.
    pub latency_histogram: Vec<(f64, u64)>,
    pub single_thread_qps: f64,
    /// All queries over all threads, once per batch run.
    pub batch_qps: Option<RateSummary>,
    pub batch_threads: usize,
    pub duration_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Headline {
    pub recall_target: f64,
    pub ef: Option<usize>,
    pub recall: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub batch_qps: Option<f64>,
    /// Why there is no headline, when no ef reached the recall.
    pub note: Option<String>,
}

/// A target and whether this run met it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub target: String,
    pub met: bool,
    pub detail: String,
}

impl RunFile for RetrievalRun {
    const KIND: &'static str = KIND;
    const WHAT: &'static str = "retrieval result";

    fn header(&self) -> &RunHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut RunHeader {
        &mut self.header
    }

    fn csv(&self) -> String {
        csv::write(&csv_columns(self), &self.scenarios)
    }

    fn check(&self) -> Result<(), String> {
        check_run(self)
    }
}

/// One row per ef.
fn csv_columns(run: &RetrievalRun) -> Vec<Column<'_, EfScenario>> {
    type Row = EfScenario;
    let (data, index) = (&run.dataset, &run.index);
    let ms = |v: f64| format!("{v:.4}");
    vec![
        column("dataset", |_: &Row| data.name.clone()),
        column("vectors", |_: &Row| data.vectors.to_string()),
        column("dim", |_: &Row| data.dim.to_string()),
        column("metric", |_: &Row| data.metric.clone()),
        column("m", |_: &Row| index.m.to_string()),
        column("ef_construction", |_: &Row| {
            index.ef_construction.to_string()
        }),
        column("ef", |s: &Row| s.ef.to_string()),
        column("k", |s: &Row| s.k.to_string()),
        column("queries", |s: &Row| s.queries.to_string()),
        column("recall", |s: &Row| format!("{:.4}", s.recall)),
        column("recall_min", |s: &Row| format!("{:.4}", s.recall_min)),
        column("p50_ms", move |s: &Row| ms(s.latency.p50_ms)),
        column("p90_ms", move |s: &Row| ms(s.latency.p90_ms)),
        column("p95_ms", move |s: &Row| ms(s.latency.p95_ms)),
        column("p99_ms", move |s: &Row| ms(s.latency.p99_ms)),
        column("max_ms", move |s: &Row| ms(s.latency.max_ms)),
        column("mean_ms", move |s: &Row| ms(s.latency.mean_ms)),
        column("single_thread_qps", |s: &Row| {
            format!("{:.1}", s.single_thread_qps)
        }),
        column("batch_qps", |s: &Row| {
            s.batch_qps
                .as_ref()
                .map(|r| format!("{:.1}", r.median))
                .unwrap_or_default()
        }),
        column("batch_threads", |s: &Row| s.batch_threads.to_string()),
    ]
}

/// The ef sweep as a Markdown table, then the headline and targets.
pub fn table(run: &RetrievalRun) -> String {
    type Row = EfScenario;
    let ms = |v: f64| format!("{v:.3}");
    let columns = [
        column("ef", |s: &Row| s.ef.to_string()),
        column("recall@k", |s: &Row| format!("{:.4}", s.recall)),
        column("min recall", |s: &Row| format!("{:.2}", s.recall_min)),
        column("p50 ms", move |s: &Row| ms(s.latency.p50_ms)),
        column("p95 ms", move |s: &Row| ms(s.latency.p95_ms)),
        column("p99 ms", move |s: &Row| ms(s.latency.p99_ms)),
        column("max ms", move |s: &Row| ms(s.latency.max_ms)),
        column("QPS 1 thread", |s: &Row| {
            format!("{:.0}", s.single_thread_qps)
        }),
        column("QPS all threads", |s: &Row| {
            s.batch_qps
                .as_ref()
                .map(|r| format!("{:.0} ({}t)", r.median, s.batch_threads))
                .unwrap_or_else(|| "-".into())
        }),
    ];
    let done = run.scenarios.len();
    let status = match run.header.status {
        RunStatus::Complete => format!("complete, {done} ef values"),
        RunStatus::Interrupted => {
            format!("interrupted: {done} of {} ef values", run.planned_efs.len())
        }
        RunStatus::Running => format!("incomplete: {done} of {} ef values", run.planned_efs.len()),
    };
    let mut out = format!(
        "run {} [{status}] | {} | {} threads\n\n",
        run.header.run_id, run.header.machine.cpu_model, run.threads
    );
    out += &super::table::markdown_of(&columns, &run.scenarios);
    let d = &run.dataset;
    let i = &run.index;
    out += &format!(
        "\ndata: {} ({} vectors × {}, {} queries, {}) | k = {}\n",
        d.name, d.vectors, d.dim, d.queries, d.metric, run.ground_truth.k
    );
    let how = match (i.build_s, i.load_s) {
        (Some(b), _) => format!("built in {}", seconds(b)),
        (None, Some(l)) => format!("reloaded from the cache in {}", seconds(l)),
        _ => "-".into(),
    };
    let memory = match i.memory_bytes.value() {
        Some(b) => format!("{:.0} MiB", b as f64 / 1048576.0),
        None => "unavailable".into(),
    };
    // "hnsw_rs 0.3.5" or "inferbench-graph, saved as hnsw_rs 0.3.5": who built it.
    let builder = i.library.split([' ', ',']).next().unwrap_or("hnsw_rs");
    out += &format!(
        "index: {builder} M={} ef_construction={}, {how}, {} threads, memory {memory}\n",
        i.m, i.ef_construction, i.build_threads
    );
    out += &format!("search: {}\n", search_summary(i));
    let h = &run.headline;
    out += &match (h.ef, h.recall, h.p95_ms) {
        (Some(ef), Some(r), Some(p95)) => format!(
            "headline: recall@{} >= {} first at ef={ef}: recall {r:.4}, p95 {p95:.3} ms\n",
            run.ground_truth.k, h.recall_target
        ),
        _ => format!(
            "headline: {}\n",
            h.note.clone().unwrap_or_else(|| "none".into())
        ),
    };
    for c in &run.targets {
        let mark = if c.met { "met" } else { "missed" };
        out += &format!("target {}: {mark} ({})\n", c.target, c.detail);
    }
    out
}

fn seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1}s")
    }
}

/// What a run read back must hold (see `checks`): the field named where it does not.
fn check_run(run: &RetrievalRun) -> Result<(), String> {
    for (i, s) in run.scenarios.iter().enumerate() {
        let field = format!("scenarios[{i}] ({})", s.name);
        summary(&format!("{field}.latency"), &s.latency)?;
        let total = buckets(&format!("{field}.latency_histogram"), &s.latency_histogram)?;
        if total > 0 && total != s.latency.count {
            return fail(
                &field,
                format!(
                    "latency counts {} queries but its histogram holds {total}",
                    s.latency.count
                ),
            );
        }
        buckets(&format!("{field}.recall_histogram"), &s.recall_histogram)?;
        for (name, v) in [("recall", s.recall), ("recall_min", s.recall_min)] {
            if !(0.0..=1.0).contains(&v) {
                return fail(
                    &format!("{field}.{name}"),
                    format!("{v} is not between 0 and 1"),
                );
            }
        }
        rate(&format!("{field}.batch_qps"), s.batch_qps.as_ref())?;
    }
    Ok(())
}
