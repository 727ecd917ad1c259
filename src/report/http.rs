//! The result of a serving benchmark (`kind: "http"`): the same header as every run, the
//! target and workload, then one scenario per concurrency or request rate, with TTFT, ITL,
//! TPOT and end-to-end latency, throughput, goodput and classified errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::checks::{buckets, fail, latencies, non_negative, rate};
use super::columns::{column, Column};
use super::csv::{self, number};
use crate::metrics::{
    Latencies, Latency, LatencyHistograms, RateSummary, Statistic, TokenHistogram, TokenLengths,
};
use crate::results::{RunFile, RunHeader};
use crate::workload::arrival::{ArrivalKind, ArrivalProcess};
use crate::workload::pattern::Pattern;

pub const KIND: &str = "http";

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No connection: refused, unreachable, DNS, TLS handshake.
    Connect,
    /// No complete answer within --timeout (a stalled stream included).
    Timeout,
    /// The server answered with a non-2xx status.
    HttpStatus,
    /// The connection broke after it was made (reset, closed mid-answer).
    Disconnected,
    /// The answer is not what the API defines: bad JSON or SSE, a stream without its end
    /// marker, an answer over --max-response-bytes.
    Malformed,
    /// A 2xx answer that carries an error object.
    ServerError,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::HttpStatus,
        ErrorClass::Disconnected,
        ErrorClass::Malformed,
        ErrorClass::ServerError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Disconnected => "disconnected",
            ErrorClass::Malformed => "malformed",
            ErrorClass::ServerError => "server_error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpRun {
    /// kind "http"; the machine is the generator's (the server may be elsewhere).
    #[serde(flatten)]
    pub header: RunHeader,
    pub target: TargetInfo,
    pub workload: WorkloadInfo,
    /// Service-level objectives goodput counts against.
    pub slo: Vec<Slo>,
    /// Scenario names planned, in order (a sweep adds its steps as it goes).
    pub planned_scenarios: Vec<String>,
    pub scenarios: Vec<HttpScenario>,
    pub sweep: Option<SweepSummary>,
    /// `--breaking-point`: the levels tried, the last that held and the first that broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaking_point: Option<BreakingPoint>,
    /// A worker's share of a plan run by several (`load --plan`): which, and when it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerInfo>,
    /// Several workers' runs merged into this one (`inferbench merge`, `load --workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
}

/// One worker of a plan: its index among `workers`, and how its start met the plan's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub plan_id: String,
    pub index: u32,
    pub workers: u32,
    /// The plan's `load` arguments (the whole load; this worker sent its share).
    pub plan_args: Vec<String>,
    /// When the plan said to start, and when this worker did (Unix seconds).
    pub start_at_unix_s: f64,
    pub started_unix_s: f64,
    /// How late this worker started (0 when it waited for the start time).
    pub late_ms: f64,
}

/// What a merged run was made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeInfo {
    pub plan_id: Option<String>,
    /// Workers the plan had; None when the runs came from no plan.
    pub planned_workers: Option<u32>,
    /// Latest start minus earliest start across workers.
    pub start_spread_ms: Option<f64>,
    pub workers: Vec<MergedWorker>,
    /// Workers with no result, and why (a failed pod, a log without the result markers).
    pub missing: Vec<String>,
}

/// One worker's own figures, kept in the merged run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedWorker {
    pub index: Option<u32>,
    pub run_id: String,
    pub host: Option<String>,
    pub late_ms: Option<f64>,
    pub interrupted: bool,
    pub scenarios: Vec<WorkerScenario>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerScenario {
    pub name: String,
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub requests_per_second: f64,
    pub output_tokens_per_second: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
}

/// When a scenario's first request was sent and its last answer ended, in Unix seconds:
/// what merging several workers' scenarios takes the union of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub first_sent_unix_s: f64,
    pub last_end_unix_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The endpoint requests went to.
    pub url: String,
    pub backend: String,
    pub stream: bool,
    /// The `model` field sent (OpenAI backends), and where it came from.
    pub model: Option<String>,
    /// Whether an API key was sent (the key itself is never written).
    pub api_key_sent: bool,
    pub timeout_s: f64,
    pub ignore_eos: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadInfo {
    /// "prompts file fixtures/prompts.jsonl" or "synthetic: 128 input / 64 output tokens".
    pub source: String,
    pub prompts: usize,
    /// How tokens were counted: "server usage", "tokenizer <name>", "stream events".
    pub token_counting: String,
    /// Generic backend: workload units each request carries (images, documents, ...).
    pub units_per_request: Option<f64>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// ttft, tpot, itl or e2e.
    pub metric: String,
    pub max_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum LoadShape {
    /// N users, each sending its next request when the last one ends.
    Closed { concurrency: u32 },
    /// Requests sent on an arrival schedule, whatever is in flight (up to a cap).
    Open {
        arrival: ArrivalProcess,
        max_concurrency: u32,
    },
    /// Max-throughput probe: runs of `concurrency` requests released at once.
    Probe { concurrency: u32, runs: u32 },
    /// Closed loop whose number of users follows a pattern over time (ramp, step).
    UserPattern { pattern: Pattern },
    /// Open loop whose rate follows a pattern over time (ramp, step, spike, soak).
    Pattern {
        pattern: Pattern,
        arrival: ArrivalKind,
        burstiness: f64,
        max_concurrency: u32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpScenario {
    /// "c4", "rate8-poisson", "probe-c16".
    pub name: String,
    pub shape: LoadShape,
    pub started_at: String,
    /// First request sent to last answer: what the rates divide by.
    pub duration_s: f64,
    /// Ctrl-C stopped it: fewer requests than planned.
    pub interrupted: bool,
    pub warmup_requests: u64,
    pub warmup_failed: u64,
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub error_rate: f64,
    /// Failures by class (connect, timeout, http_status, disconnected, malformed, server_error).
    pub errors: BTreeMap<String, u64>,
    /// HTTP status codes of the http_status failures.
    pub status_codes: BTreeMap<String, u64>,
    /// Up to five distinct failure messages per class.
    pub error_examples: BTreeMap<String, Vec<String>>,
    /// Request sent to the first generated text (streams), gaps between network reads that
    /// carried text (streams), TPOT, request sent to the whole answer.
    #[serde(flatten)]
    pub latencies: Latencies,
    pub histograms: LatencyHistograms,
    pub requests_per_second: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub input_tokens_per_second: Option<f64>,
    pub output_tokens_per_second: Option<f64>,
    /// Generic backend: workload units per second.
    pub units_per_second: Option<f64>,
    /// Open loop: requests actually sent per second, and how many waited for the cap.
    pub achieved_rate: Option<f64>,
    pub delayed_by_cap: u64,
    /// Requests meeting every SLO, per second and as a share of all requests.
    pub goodput: Option<Goodput>,
    /// Probe: output tokens/s (or units/s) of each run.
    pub throughput_runs: Option<RateSummary>,
    /// Wall-clock span of the requests; merged runs: the union of the workers' spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TimeWindow>,
    /// Requests meeting every SLO (goodput's numerator), kept exact for merging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_requests: Option<u64>,
    /// Token lengths of the successful requests: sent, asked for, generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lengths: Option<TokenLengths>,
    /// Prompt tokens the server served from its prefix cache (its
    /// `usage.prompt_tokens_details.cached_tokens`); absent when it never said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<u64>,
    /// The scenario second by second: offered and sent load, in flight, completions,
    /// errors, tokens and latency percentiles (merged runs: percentiles are the highest
    /// worker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<Window>>,
    /// E2E p50 of the last tenth of the windows over the first tenth's: above 1, the server
    /// slowed down as the run went on (20 windows or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_drift: Option<f64>,
    /// The server's own metrics during the scenario (`--server-metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<ServerMetrics>,
    /// The GPU of this machine during the scenario (NVML energy, power, utilisation), when
    /// the target is on this machine and a GPU is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_telemetry: Option<crate::telemetry::PhaseTelemetry>,
}

/// What the server's Prometheus endpoint said during a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    pub url: String,
    pub interval_s: f64,
    pub scrapes: u64,
    pub failed_scrapes: u64,
    /// Up to five distinct reasons scrapes failed.
    pub errors: Vec<String>,
    /// Each counter's change from the first scrape to the last (series with labels).
    pub counter_deltas: BTreeMap<String, f64>,
    /// Counters that went down (a server restart): their delta counts from zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters_reset: Vec<String>,
    pub gauges: BTreeMap<String, GaugeSummary>,
    /// Known serving series (vLLM, TGI, inferbench serve), `[seconds from the scenario's
    /// start, value]` per scrape.
    pub series: BTreeMap<String, Vec<[f64; 2]>>,
    /// The server exposed more series than this; the rest were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_cut_at: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GaugeSummary {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

/// One window's figures. Counts of offered and sent requests are by when they were due and
/// sent; completions, errors, tokens and latencies by when the request ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Seconds from the scenario's start to the window's start.
    pub t: u64,
    /// Requests the schedule asked for (closed loop: those sent).
    pub offered: u64,
    pub sent: u64,
    /// Mean requests in flight over the window.
    pub in_flight: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub output_tokens: u64,
    /// Of the requests that succeeded in this window, ms.
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goodput {
    pub requests_per_second: f64,
    pub fraction: f64,
}

/// Where a server stopped keeping up, found by `load --breaking-point`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakingPoint {
    /// The rate of each level, in the order run.
    pub rates: Vec<f64>,
    /// The highest rate that held: the maximum sustainable load.
    pub held_rate: Option<f64>,
    pub held_scenario: Option<String>,
    /// The lowest rate that broke, and why.
    pub broke_rate: Option<f64>,
    pub broke_scenario: Option<String>,
    pub broke_because: Option<String>,
    pub stopped_because: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepSummary {
    /// The rate of each step, in order.
    pub rates: Vec<f64>,
    /// The step with the highest throughput before growth stopped or a target broke.
    pub saturation_rate: Option<f64>,
    pub saturation_throughput: Option<f64>,
    /// Why the sweep stopped.
    pub stopped_because: String,
}

impl RunFile for HttpRun {
    const KIND: &'static str = KIND;
    const WHAT: &'static str = "HTTP load result";

    fn header(&self) -> &RunHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut RunHeader {
        &mut self.header
    }

    fn csv(&self) -> String {
        csv::write(&csv_columns(), &self.scenarios)
    }

    fn check(&self) -> Result<(), String> {
        check_run(self)
    }
}

/// One row per scenario.
fn csv_columns<'a>() -> Vec<Column<'a, HttpScenario>> {
    type Row = HttpScenario;
    let mode = |s: &Row| match &s.shape {
        LoadShape::Closed { concurrency } => ("closed", concurrency.to_string(), String::new()),
        LoadShape::Open { arrival, .. } => ("open", String::new(), arrival.rate.to_string()),
        LoadShape::Probe { concurrency, .. } => ("probe", concurrency.to_string(), String::new()),
        LoadShape::Pattern { pattern, .. } => ("pattern", String::new(), pattern.label()),
        LoadShape::UserPattern { pattern } => ("users-pattern", pattern.label(), String::new()),
    };
    let mut columns = vec![
        column("scenario", |s: &Row| s.name.clone()),
        column("mode", move |s: &Row| mode(s).0.to_string()),
        column("concurrency", move |s: &Row| mode(s).1),
        column("rate", move |s: &Row| mode(s).2),
        column("requests", |s: &Row| s.requests.to_string()),
        column("succeeded", |s: &Row| s.succeeded.to_string()),
        column("failed", |s: &Row| s.failed.to_string()),
        column("error_rate", |s: &Row| format!("{:.4}", s.error_rate)),
        column("duration_s", |s: &Row| format!("{:.3}", s.duration_s)),
        column("requests_per_second", |s: &Row| {
            format!("{:.4}", s.requests_per_second)
        }),
        column("input_tokens_per_second", |s: &Row| {
            number(s.input_tokens_per_second)
        }),
        column("output_tokens_per_second", |s: &Row| {
            number(s.output_tokens_per_second)
        }),
        column("goodput_rps", |s: &Row| {
            number(s.goodput.as_ref().map(|g| g.requests_per_second))
        }),
    ];
    columns.extend(csv::latency_columns(
        Latency::ALL,
        |s: &Row, l| s.latencies.get(l),
        false,
    ));
    for class in ErrorClass::ALL {
        columns.push(column(
            format!("errors_{}", class.name()),
            move |s: &Row| s.errors.get(class.name()).copied().unwrap_or(0).to_string(),
        ));
    }
    // What was sent and got back per successful request (empty in runs written before).
    type LengthsOf = fn(&TokenLengths) -> &TokenHistogram;
    let lengths: [(&str, LengthsOf); 3] = [
        ("input", |t| &t.input),
        ("requested_output", |t| &t.requested_output),
        ("output", |t| &t.output),
    ];
    for (name, of) in lengths {
        columns.push(column(format!("{name}_tokens_mean"), move |s: &Row| {
            number(s.token_lengths.as_ref().and_then(|t| of(t).mean()))
        }));
        columns.push(column(format!("{name}_tokens_max"), move |s: &Row| {
            s.token_lengths
                .as_ref()
                .filter(|t| of(t).count > 0)
                .map_or(String::new(), |t| of(t).max.to_string())
        }));
    }
    columns.push(column("cached_prompt_tokens", |s: &Row| {
        s.cached_prompt_tokens
            .map_or(String::new(), |n| n.to_string())
    }));
    columns.push(column("e2e_drift", |s: &Row| number(s.e2e_drift)));
    columns
}

/// The terminal table: one row per scenario.
pub fn table(run: &HttpRun) -> String {
    type Row = HttpScenario;
    let latency = |latency: Latency, statistic: Statistic| {
        column(
            format!("{} {statistic}", latency.label()),
            move |s: &Row| {
                s.latencies
                    .get(latency)
                    .map_or("-".into(), |x| format!("{:.1} ms", x.statistic(statistic)))
            },
        )
    };
    let columns = [
        column("scenario", |s: &Row| {
            let note = if s.interrupted { " (interrupted)" } else { "" };
            format!("{}{note}", s.name)
        }),
        column("ok/total", |s: &Row| {
            format!("{}/{}", s.succeeded, s.requests)
        }),
        column("err %", |s: &Row| format!("{:.1}", s.error_rate * 100.0)),
        column("req/s", |s: &Row| format!("{:.2}", s.requests_per_second)),
        column("out tok/s", |s: &Row| {
            s.output_tokens_per_second
                .or(s.units_per_second)
                .map_or("-".into(), |v| format!("{v:.1}"))
        }),
        latency(Latency::Ttft, Statistic::P50),
        latency(Latency::Ttft, Statistic::P95),
        latency(Latency::Itl, Statistic::P50),
        latency(Latency::Itl, Statistic::P95),
        latency(Latency::Tpot, Statistic::P50),
        latency(Latency::E2e, Statistic::P50),
        latency(Latency::E2e, Statistic::P95),
        latency(Latency::E2e, Statistic::P99),
        column("goodput", |s: &Row| {
            s.goodput.as_ref().map_or("-".into(), |g| {
                format!(
                    "{:.2}/s ({:.0}%)",
                    g.requests_per_second,
                    g.fraction * 100.0
                )
            })
        }),
        column("errors", error_words),
    ];
    let mut out = format!(
        "{} {} ({}{}), {}; tokens counted by {}\n\n",
        run.target.backend,
        run.target.url,
        if run.target.stream {
            "streaming"
        } else {
            "not streaming"
        },
        run.target
            .model
            .as_ref()
            .map(|m| format!(", model {m}"))
            .unwrap_or_default(),
        run.workload.source,
        run.workload.token_counting,
    );
    out += &super::table::markdown_of(&columns, &run.scenarios);
    for s in &run.scenarios {
        if let Some(over_time) = over_time_table(s) {
            out += &over_time;
        }
        if let Some(r) = &s.throughput_runs {
            let unit = if s.units_per_second.is_some() {
                "units/s"
            } else {
                "out tok/s"
            };
            let runs: Vec<String> = r.runs.iter().map(|v| format!("{v:.1}")).collect();
            out += &format!(
                "\n{}: best run {:.1} {unit} (runs: {})\n",
                s.name,
                r.max,
                runs.join(", ")
            );
        }
    }
    if let Some(sweep) = &run.sweep {
        out += &format!(
            "\nsweep: {}; stopped because {}\n",
            match (sweep.saturation_rate, sweep.saturation_throughput) {
                (Some(r), Some(t)) => format!("saturation at {r} req/s ({t:.1} out tok/s)"),
                _ => "no saturation point".into(),
            },
            sweep.stopped_because
        );
    }
    if let Some(bp) = &run.breaking_point {
        out += &breaking_point_text(run, bp);
    }
    if !run.slo.is_empty() {
        let slo: Vec<String> = run
            .slo
            .iter()
            .map(|s| format!("{} <= {} ms", s.metric, s.max_ms))
            .collect();
        out += &format!("\ngoodput counts requests with {}\n", slo.join(", "));
    }
    out
}

/// Consecutive seconds of a scenario taken together: one row of its over-time table.
struct Segment<'a> {
    windows: &'a [Window],
}

impl Segment<'_> {
    fn per_second(&self, pick: fn(&Window) -> u64) -> f64 {
        self.windows.iter().map(pick).sum::<u64>() as f64 / self.windows.len().max(1) as f64
    }
}

/// A pattern's scenario in at most ten stretches of time (load offered and answered, users
/// in flight, the worst second's E2E p95, errors): how the server followed the pattern, in
/// the terminal. Steady scenarios have none.
fn over_time_table(s: &HttpScenario) -> Option<String> {
    if !matches!(
        s.shape,
        LoadShape::Pattern { .. } | LoadShape::UserPattern { .. }
    ) {
        return None;
    }
    let windows = s.windows.as_deref().filter(|w| w.len() >= 2)?;
    let size = windows.len().div_ceil(10);
    let segments: Vec<Segment> = windows
        .chunks(size)
        .map(|windows| Segment { windows })
        .collect();
    let columns = [
        column("seconds", |g: &Segment| {
            let (a, b) = (g.windows[0].t, g.windows[g.windows.len() - 1].t + 1);
            format!("{a}-{b}")
        }),
        column("offered req/s", |g: &Segment| {
            format!("{:.1}", g.per_second(|w| w.offered))
        }),
        column("answered req/s", |g: &Segment| {
            format!("{:.1}", g.per_second(|w| w.succeeded))
        }),
        column("in flight", |g: &Segment| {
            let mean = g.windows.iter().map(|w| w.in_flight).sum::<f64>() / g.windows.len() as f64;
            format!("{mean:.1}")
        }),
        column("E2E p95 (worst second)", |g: &Segment| {
            g.windows
                .iter()
                .filter_map(|w| w.e2e_p95_ms)
                .reduce(f64::max)
                .map_or("-".into(), |v| format!("{v:.1} ms"))
        }),
        column("failed", |g: &Segment| {
            format!("{}", g.windows.iter().map(|w| w.failed).sum::<u64>())
        }),
    ];
    Some(format!(
        "\n{} over time:\n{}",
        s.name,
        super::table::markdown_of(&columns, &segments)
    ))
}

/// "breaking point: held at 32 req/s (E2E p95 ..., 0.0% errors); broke at 64 req/s: why".
fn breaking_point_text(run: &HttpRun, bp: &BreakingPoint) -> String {
    let figures = |name: &Option<String>| {
        let s = run
            .scenarios
            .iter()
            .find(|s| Some(&s.name) == name.as_ref())?;
        Some(format!(
            " ({:.2} req/s done, E2E p95 {}, {:.1}% errors)",
            s.requests_per_second,
            s.latencies
                .e2e
                .as_ref()
                .map_or("-".into(), |l| format!("{:.1} ms", l.p95_ms)),
            s.error_rate * 100.0
        ))
    };
    let held = match bp.held_rate {
        Some(r) => format!(
            "the maximum sustainable load is {r} req/s{}",
            figures(&bp.held_scenario).unwrap_or_default()
        ),
        None => "no level held".into(),
    };
    let broke = match (bp.broke_rate, &bp.broke_because) {
        (Some(r), Some(why)) => format!("; it broke at {r} req/s: {why}"),
        _ => String::new(),
    };
    format!(
        "\nbreaking point: {held}{broke}; stopped because {}\n",
        bp.stopped_because
    )
}

/// A scenario's failures by class, with the status codes of http_status ones: "timeout 2,
/// http_status 3 (503×3)"; "-" when none failed.
fn error_words(s: &HttpScenario) -> String {
    let errors: Vec<String> = s
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(class, n)| {
            let codes: Vec<String> = if class == "http_status" {
                s.status_codes
                    .iter()
                    .map(|(c, n)| format!("{c}×{n}"))
                    .collect()
            } else {
                Vec::new()
            };
            if codes.is_empty() {
                format!("{class} {n}")
            } else {
                format!("{class} {n} ({})", codes.join(" "))
            }
        })
        .collect();
    if errors.is_empty() {
        "-".into()
    } else {
        errors.join(", ")
    }
}

/// What a run read back must hold (see `checks`): the field named where it does not.
fn check_run(run: &HttpRun) -> Result<(), String> {
    for (i, s) in run.scenarios.iter().enumerate() {
        let field = format!("scenarios[{i}] ({})", s.name);
        latencies(&field, &s.latencies, &s.histograms)?;
        if s.succeeded.checked_add(s.failed) != Some(s.requests) {
            return fail(
                &field,
                format!(
                    "{} succeeded + {} failed is not its {} requests",
                    s.succeeded, s.failed, s.requests
                ),
            );
        }
        let classified = buckets(
            &format!("{field}.errors"),
            &s.errors.values().map(|n| (0.0, *n)).collect::<Vec<_>>(),
        )?;
        if classified != s.failed {
            return fail(
                &field,
                format!(
                    "its errors by class add up to {classified}, not its {} failures",
                    s.failed
                ),
            );
        }
        if !(0.0..=1.0).contains(&s.error_rate) {
            return fail(
                &format!("{field}.error_rate"),
                format!("{} is not between 0 and 1", s.error_rate),
            );
        }
        for (name, v) in [
            ("duration_s", Some(s.duration_s)),
            ("requests_per_second", Some(s.requests_per_second)),
            ("output_tokens_per_second", s.output_tokens_per_second),
            ("units_per_second", s.units_per_second),
        ] {
            if let Some(v) = v {
                non_negative(&format!("{field}.{name}"), v)?;
            }
        }
        rate(
            &format!("{field}.throughput_runs"),
            s.throughput_runs.as_ref(),
        )?;
        http_over_time(&field, s)?;
    }
    Ok(())
}

/// A scenario's windows and the server's series: figures a chart can place.
fn http_over_time(field: &str, s: &HttpScenario) -> Result<(), String> {
    for (i, w) in s.windows.iter().flatten().enumerate() {
        let at = format!("{field}.windows[{i}]");
        non_negative(&format!("{at}.in_flight"), w.in_flight)?;
        for (name, v) in [
            ("ttft_p50_ms", w.ttft_p50_ms),
            ("ttft_p95_ms", w.ttft_p95_ms),
            ("e2e_p50_ms", w.e2e_p50_ms),
            ("e2e_p95_ms", w.e2e_p95_ms),
            ("e2e_p99_ms", w.e2e_p99_ms),
        ] {
            if let Some(v) = v {
                non_negative(&format!("{at}.{name}"), v)?;
            }
        }
    }
    if let Some(m) = &s.server_metrics {
        for (key, points) in &m.series {
            for p in points {
                if !(p[0].is_finite() && p[1].is_finite()) {
                    return fail(
                        &format!("{field}.server_metrics.series[{key}]"),
                        format!("[{}, {}] is not a point in time", p[0], p[1]),
                    );
                }
            }
        }
    }
    Ok(())
}
