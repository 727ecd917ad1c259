//! The result schema every runner fills and every writer and comparison reads. Versioned:
//! a reader refuses a schema_version it does not know.

use serde::{Deserialize, Serialize};

use crate::config::{Config, TargetRule};
use crate::metrics::{parse_latency_metric, Latencies, LatencyHistograms, RateSummary, Reading};
use crate::model::ModelInfo;
use crate::targets::{GradeSummary, TargetOutcome};
use crate::telemetry::PhaseTelemetry;

pub use crate::results::{RunHeader, RunStatus, SCHEMA_VERSION};

pub const KIND: &str = "inference";

/// One run of the suite: everything needed to read, reproduce and compare it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// kind "inference".
    #[serde(flatten)]
    pub header: RunHeader,
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
    /// Prefill start to each request's first token, every gap between its tokens, its
    /// TPOT, prefill start to its last token.
    #[serde(flatten)]
    pub latencies: Latencies,
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
    /// Bytes a decode step moved and FLOPs the prefill computed, at the median rates, and
    /// their share of this machine's peaks. Absent in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roofline: Option<crate::roofline::Roofline>,
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
        let mean = |rate: &Option<RateSummary>| rate.as_ref().map(|r| r.mean);
        match name {
            "decode_tokens_per_second" => mean(&self.decode_tokens_per_second),
            "e2e_tokens_per_second" => mean(&self.e2e_tokens_per_second),
            "prompt_tokens_per_second" => mean(&self.prompt_tokens_per_second),
            _ => {
                let (latency, statistic) = parse_latency_metric(name)?;
                Some(self.latencies.get(latency)?.statistic(statistic))
            }
        }
    }
}
