//! The result schema every runner fills and every writer and comparison reads. Versioned:
//! a reader refuses a schema_version it does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, TargetRule};
use crate::device::MachineInfo;
use crate::metrics::{LatencySummary, RateSummary};
use crate::model::ModelInfo;
use crate::targets::{GradeSummary, TargetOutcome};
use crate::telemetry::PhaseTelemetry;

pub const SCHEMA_VERSION: u32 = 1;

/// A value that may not be measurable on this machine: never a silent 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reading<T> {
    Measured {
        value: T,
    },
    /// Derived indirectly (e.g. energy integrated from power samples); `method` says how.
    Estimated {
        value: T,
        method: String,
    },
    Unavailable {
        reason: String,
    },
}

impl<T: Copy> Reading<T> {
    /// The same kind of reading with its value transformed.
    pub fn map<U>(&self, f: impl FnOnce(T) -> U) -> Reading<U> {
        match self {
            Reading::Measured { value } => Reading::Measured { value: f(*value) },
            Reading::Estimated { value, method } => Reading::Estimated {
                value: f(*value),
                method: method.clone(),
            },
            Reading::Unavailable { reason } => Reading::Unavailable {
                reason: reason.clone(),
            },
        }
    }

    pub fn value(&self) -> Option<T> {
        match self {
            Reading::Measured { value } | Reading::Estimated { value, .. } => Some(*value),
            Reading::Unavailable { .. } => None,
        }
    }

    pub fn unavailable(reason: impl Into<String>) -> Self {
        Reading::Unavailable {
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being measured, or the process died while it was: the scenarios listed are finished.
    Running,
    /// Stopped by the user (Ctrl-C) after the scenarios listed.
    Interrupted,
    Complete,
}

impl RunStatus {
    pub fn is_complete(self) -> bool {
        self == RunStatus::Complete
    }
}

/// One run of the suite: everything needed to read, reproduce and compare it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    /// "inference" for in-process runs (later also "retrieval", "http").
    pub kind: String,
    pub run_id: String,
    pub status: RunStatus,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub inferbench_version: String,
    /// The commit the binary was built from ("-dirty" when the tree had changes).
    pub git_commit: String,
    /// Versions of the crates that do the measured work.
    pub crate_versions: BTreeMap<String, String>,
    pub machine: MachineInfo,
    pub config_name: String,
    /// The config files, the one asked for first and then what it extends.
    pub config_sources: Vec<String>,
    /// The configuration after `extends` was applied.
    pub config: Config,
    /// Scenario names this run measures, in order (after --filter).
    pub planned_scenarios: Vec<String>,
    pub device: DeviceUsed,
    pub model: ModelInfo,
    pub targets: TargetsUsed,
    /// The telemetry sources and why any is missing.
    pub telemetry: String,
    /// Loading the model (of the run's first start).
    pub load_phase: PhaseTelemetry,
    /// Finished scenarios, in the order they ran.
    pub scenarios: Vec<ScenarioResult>,
    pub grade: GradeSummary,
}

impl RunResult {
    pub fn is_finished(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s.name == scenario)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceUsed {
    /// "cpu" or "cuda:N".
    pub name: String,
    /// Why this device was chosen.
    pub reason: String,
    /// The GPU's name, on CUDA.
    pub gpu_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetsUsed {
    /// Where the rules come from: "config", "preset cpu_only (auto: cpu)", or why there are none.
    pub from: String,
    pub rules: Vec<TargetRule>,
}

/// One scenario: batch size × prompt length × output length, over its measured runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// "b8_p128_o64".
    pub name: String,
    pub batch: u32,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub started_at: String,
    /// Wall time of the scenario, warm-up included.
    pub duration_s: f64,
    pub warmup: WarmupSummary,
    pub measured_runs: u32,
    /// Requests measured: measured_runs × batch (each row of a batch is one request).
    pub requests: u64,
    /// Tokens generated over the measured runs (all rows).
    pub generated_tokens: u64,
    /// Prefill start to each request's first token.
    pub ttft: Option<LatencySummary>,
    /// Every gap between consecutive tokens of a request.
    pub itl: Option<LatencySummary>,
    /// Per request: (end-to-end - TTFT) / (tokens - 1).
    pub tpot: Option<LatencySummary>,
    /// Prefill start to each request's last token.
    pub e2e: Option<LatencySummary>,
    /// Tokens after the first, all rows, over the time from first to last token; per run.
    pub decode_tokens_per_second: Option<RateSummary>,
    /// All generated tokens over prefill start to the last token; per run.
    pub e2e_tokens_per_second: Option<RateSummary>,
    /// Prompt tokens × batch over the TTFT; per run.
    pub prompt_tokens_per_second: Option<RateSummary>,
    /// The process's peak resident memory over the scenario (kernel high-water mark).
    pub peak_host_rss_bytes: Reading<u64>,
    /// Device-wide GPU memory in use, highest sample over the measured runs.
    pub peak_device_memory_bytes: Reading<u64>,
    pub energy: EnergySummary,
    /// Warm-up and measured phases: energy, power, utilisation, clocks, memory.
    pub phases: Vec<PhaseTelemetry>,
    pub targets: Vec<TargetOutcome>,
    /// The latency distributions behind the summaries, for comparisons.
    #[serde(default)]
    pub histograms: LatencyHistograms,
}

/// Energy of the measured runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergySummary {
    /// Whose energy the per-token figures use: "gpu", "cpu package (RAPL)" or "none".
    pub source: String,
    pub gpu_joules: Reading<f64>,
    pub cpu_joules: Reading<f64>,
    /// The source's energy in prefill (prefill start to first token) and decode, all runs.
    pub prefill_joules: Reading<f64>,
    pub decode_joules: Reading<f64>,
    /// The source's energy over all generated tokens.
    pub joules_per_token: Reading<f64>,
    pub tokens_per_joule: Reading<f64>,
}

/// Each latency's distribution as [milliseconds, count] pairs (HDR buckets, 3 significant
/// digits): compact, and enough to resample percentiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyHistograms {
    pub ttft: Vec<(f64, u64)>,
    pub itl: Vec<(f64, u64)>,
    pub tpot: Vec<(f64, u64)>,
    pub e2e: Vec<(f64, u64)>,
}

/// The untimed runs before the measured ones, reported apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WarmupSummary {
    pub runs: u32,
    pub ttft_ms: Vec<f64>,
    pub decode_tokens_per_second: Vec<Option<f64>>,
}

impl ScenarioResult {
    /// A metric by the name target rules use (see `targets::METRIC_HELP`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "decode_tokens_per_second" => self.decode_tokens_per_second.as_ref().map(|r| r.mean),
            "e2e_tokens_per_second" => self.e2e_tokens_per_second.as_ref().map(|r| r.mean),
            "prompt_tokens_per_second" => self.prompt_tokens_per_second.as_ref().map(|r| r.mean),
            _ => {
                let (latency, statistic) = crate::targets::parse_latency_metric(name)?;
                let summary = match latency {
                    "ttft" => &self.ttft,
                    "itl" => &self.itl,
                    "tpot" => &self.tpot,
                    "e2e" => &self.e2e,
                    _ => return None,
                };
                summary.as_ref().and_then(|s| s.statistic(statistic))
            }
        }
    }
}

/// What every result file of a non-inference kind (retrieval, http) starts with: identity,
/// status and times, provenance, machine. Flattened into the file, so the fields sit at
/// the top level as in an inference run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHeader {
    pub schema_version: u32,
    pub kind: String,
    pub run_id: String,
    pub status: RunStatus,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub inferbench_version: String,
    pub git_commit: String,
    pub crate_versions: BTreeMap<String, String>,
    /// The machine that measured (for HTTP runs: the generator's; the server may be elsewhere).
    pub machine: MachineInfo,
}

impl RunHeader {
    /// A new run of `kind` in folder `dir` (its name is the run id), running, on this machine.
    pub fn start(kind: &str, dir: &std::path::Path, started_at: String) -> Self {
        RunHeader {
            schema_version: SCHEMA_VERSION,
            kind: kind.into(),
            run_id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            status: RunStatus::Running,
            updated_at: started_at.clone(),
            started_at,
            finished_at: None,
            inferbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: crate::build_info::git_commit().into(),
            crate_versions: crate::build_info::crate_versions(),
            machine: MachineInfo::collect(),
        }
    }

    pub fn touch(&mut self) {
        self.updated_at = crate::suite::now_rfc3339();
    }

    /// The run ended: complete (with a finish time) or interrupted.
    pub fn end(&mut self, interrupted: bool) {
        self.touch();
        if interrupted {
            self.status = RunStatus::Interrupted;
        } else {
            self.status = RunStatus::Complete;
            self.finished_at = Some(self.updated_at.clone());
        }
    }
}
