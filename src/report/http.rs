//! The result of a serving benchmark (`kind: "http"`): the same header as every run, the
//! target and workload, then one scenario per concurrency or request rate, with TTFT, ITL,
//! TPOT and end-to-end latency, throughput, goodput and classified errors.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::schema::{LatencyHistograms, RunHeader};
use crate::http::arrival::ArrivalProcess;
use crate::metrics::{LatencySummary, RateSummary};

pub const KIND: &str = "http";

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
    /// Request sent to the first generated text (streams).
    pub ttft: Option<LatencySummary>,
    /// Gaps between network reads that carried text (streams).
    pub itl: Option<LatencySummary>,
    /// Per request: (end-to-end - TTFT) / (output tokens - 1).
    pub tpot: Option<LatencySummary>,
    pub e2e: Option<LatencySummary>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goodput {
    pub requests_per_second: f64,
    pub fraction: f64,
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

pub fn save(dir: &Path, run: &HttpRun) -> Result<()> {
    let json = serde_json::to_vec_pretty(run).context("serialising the HTTP result")?;
    super::json::write_atomic(&dir.join(super::json::CSV_FILE), csv(run).as_bytes())?;
    super::json::write_atomic(&dir.join(super::json::RUN_FILE), &json)
}

pub fn load(path: &Path) -> Result<HttpRun> {
    serde_json::from_value(super::json::read_versioned(path)?)
        .with_context(|| format!("{}: not a valid HTTP load result", path.display()))
}

const LATENCIES: [&str; 4] = ["ttft", "itl", "tpot", "e2e"];

/// The statistics of each latency the CSV carries.
const CSV_STATISTICS: [&str; 9] = [
    "min", "mean", "p50", "p90", "p95", "p99", "p999", "max", "sd",
];

fn latency<'a>(s: &'a HttpScenario, name: &str) -> Option<&'a LatencySummary> {
    match name {
        "ttft" => s.ttft.as_ref(),
        "itl" => s.itl.as_ref(),
        "tpot" => s.tpot.as_ref(),
        _ => s.e2e.as_ref(),
    }
}

/// One row per scenario.
pub fn csv(run: &HttpRun) -> String {
    let mut header: Vec<String> = [
        "scenario",
        "mode",
        "concurrency",
        "rate",
        "requests",
        "succeeded",
        "failed",
        "error_rate",
        "duration_s",
        "requests_per_second",
        "input_tokens_per_second",
        "output_tokens_per_second",
        "goodput_rps",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for l in LATENCIES {
        for stat in CSV_STATISTICS {
            header.push(format!("{l}_{stat}_ms"));
        }
    }
    for class in crate::http::client::ErrorClass::ALL {
        header.push(format!("errors_{}", class.name()));
    }
    let mut out = super::csv::line(&header);
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for s in &run.scenarios {
        let (mode, concurrency, rate) = match &s.shape {
            LoadShape::Closed { concurrency } => ("closed", concurrency.to_string(), String::new()),
            LoadShape::Open { arrival, .. } => ("open", String::new(), arrival.rate.to_string()),
            LoadShape::Probe { concurrency, .. } => {
                ("probe", concurrency.to_string(), String::new())
            }
        };
        let mut fields = vec![
            s.name.clone(),
            mode.into(),
            concurrency,
            rate,
            s.requests.to_string(),
            s.succeeded.to_string(),
            s.failed.to_string(),
            format!("{:.4}", s.error_rate),
            format!("{:.3}", s.duration_s),
            format!("{:.4}", s.requests_per_second),
            opt(s.input_tokens_per_second),
            opt(s.output_tokens_per_second),
            opt(s.goodput.as_ref().map(|g| g.requests_per_second)),
        ];
        for l in LATENCIES {
            let summary = latency(s, l);
            for stat in CSV_STATISTICS {
                fields.push(opt(summary.and_then(|x| x.statistic(stat))));
            }
        }
        for class in crate::http::client::ErrorClass::ALL {
            fields.push(s.errors.get(class.name()).copied().unwrap_or(0).to_string());
        }
        out += &super::csv::line(&fields);
    }
    out
}

/// The terminal table: one row per scenario.
pub fn table(run: &HttpRun) -> String {
    let header = [
        "scenario",
        "ok/total",
        "err %",
        "req/s",
        "out tok/s",
        "TTFT p50",
        "TTFT p95",
        "ITL p50",
        "ITL p95",
        "TPOT p50",
        "E2E p50",
        "E2E p95",
        "E2E p99",
        "goodput",
        "errors",
    ];
    let ms = |v: Option<&LatencySummary>, stat: &str| {
        v.and_then(|x| x.statistic(stat))
            .map_or("-".into(), |v| format!("{v:.1} ms"))
    };
    let rows: Vec<Vec<String>> = run
        .scenarios
        .iter()
        .map(|s| {
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
            vec![
                format!(
                    "{}{}",
                    s.name,
                    if s.interrupted { " (interrupted)" } else { "" }
                ),
                format!("{}/{}", s.succeeded, s.requests),
                format!("{:.1}", s.error_rate * 100.0),
                format!("{:.2}", s.requests_per_second),
                s.output_tokens_per_second
                    .or(s.units_per_second)
                    .map_or("-".into(), |v| format!("{v:.1}")),
                ms(s.ttft.as_ref(), "p50"),
                ms(s.ttft.as_ref(), "p95"),
                ms(s.itl.as_ref(), "p50"),
                ms(s.itl.as_ref(), "p95"),
                ms(s.tpot.as_ref(), "p50"),
                ms(s.e2e.as_ref(), "p50"),
                ms(s.e2e.as_ref(), "p95"),
                ms(s.e2e.as_ref(), "p99"),
                s.goodput.as_ref().map_or("-".into(), |g| {
                    format!(
                        "{:.2}/s ({:.0}%)",
                        g.requests_per_second,
                        g.fraction * 100.0
                    )
                }),
                if errors.is_empty() {
                    "-".into()
                } else {
                    errors.join(", ")
                },
            ]
        })
        .collect();
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
    out += &super::table::markdown(&header, &rows);
    for s in &run.scenarios {
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
