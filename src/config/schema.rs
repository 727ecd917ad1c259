//! The fields of a run configuration, their defaults, and the checks on their values.
//! Every struct denies unknown fields, so a typo is an error rather than a silent default.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use super::regress::RegressSection;
use crate::device::DeviceRequest;
use crate::model::{self, LoadOptions, ModelRef, Repack, WeightsMode};
use crate::targets::TargetRule;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// One line on what this configuration is for.
    pub description: Option<String>,
    /// The preset or file this one builds on; applied (and cleared) when the config resolves.
    #[serde(skip_serializing)]
    pub extends: Option<String>,
    pub model: ModelSection,
    pub scenarios: ScenarioSection,
    pub targets: TargetsSection,
    /// How `inferbench compare` judges a change (default: the project's seed rules).
    pub regress: RegressSection,
    pub telemetry: TelemetrySection,
}

/// The background sampler of power, memory, clocks (energy counters are read regardless).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySection {
    /// Sampling interval in milliseconds; 0 turns the sampler off.
    pub interval_ms: u64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            interval_ms: crate::telemetry::DEFAULT_INTERVAL.as_millis() as u64,
        }
    }
}

/// Which model, on which device, loaded how: the same choices as `inferbench generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// A local file or folder, or a hub repo id; default the SmolLM2-135M-Instruct GGUF.
    pub model: Option<String>,
    pub model_file: Option<String>,
    pub revision: Option<String>,
    /// "real" or "dummy".
    pub weights: String,
    /// "f32", "f16" or "bf16" for safetensors and dummy weights.
    pub dtype: Option<String>,
    /// "auto", "none", "q8_0", "q4_0" or "f32".
    pub repack: String,
    pub prefill_gemm_rows: Option<usize>,
    /// MiB of dequantised weights the prefill GEMM keeps (default 2048; 0 none).
    pub prefill_cache_mb: Option<u64>,
    pub tokenizer: Option<PathBuf>,
    /// "auto", "cpu", "cuda" or "cuda:N".
    pub device: String,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            model: None,
            model_file: None,
            revision: None,
            weights: "real".into(),
            dtype: None,
            repack: "auto".into(),
            prefill_gemm_rows: None,
            prefill_cache_mb: None,
            tokenizer: None,
            device: "auto".into(),
        }
    }
}

/// The scenarios are every combination of batch size × prompt length × output length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioSection {
    pub batch_sizes: Vec<u32>,
    /// Synthetic prompts of exactly this many tokens.
    pub prompt_tokens: Vec<u32>,
    /// Tokens generated per request.
    pub output_tokens: Vec<u32>,
    /// Untimed generations before the measured ones, reported apart.
    pub warmup_runs: u32,
    pub measured_runs: u32,
    /// Generate past end-of-sequence, so every request has exactly output_tokens tokens.
    pub ignore_eos: bool,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
}

impl Default for ScenarioSection {
    fn default() -> Self {
        ScenarioSection {
            batch_sizes: vec![1],
            prompt_tokens: vec![128],
            output_tokens: vec![128],
            warmup_runs: 1,
            measured_runs: 3,
            ignore_eos: true,
            temperature: 0.0,
            top_p: 1.0,
            seed: 299792458,
        }
    }
}

/// Which targets a run is graded against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetsSection {
    /// Used when `rules` is empty: "auto" (the hardware profile preset of the device the run
    /// lands on: cpu_only, rtx_4090, h100, h200), "none", or a preset name whose rules to use.
    pub profile: String,
    pub rules: Vec<TargetRule>,
}

impl Default for TargetsSection {
    fn default() -> Self {
        TargetsSection {
            profile: "auto".into(),
            rules: Vec::new(),
        }
    }
}

impl Config {
    /// Check every value; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let s = &self.scenarios;
        for (field, values) in [
            ("scenarios.batch_sizes", &s.batch_sizes),
            ("scenarios.prompt_tokens", &s.prompt_tokens),
            ("scenarios.output_tokens", &s.output_tokens),
        ] {
            if values.is_empty() {
                bail!("{field}: give at least one value");
            }
            if values.contains(&0) {
                bail!("{field}: every value must be at least 1, got {values:?}");
            }
        }
        if s.measured_runs == 0 {
            bail!("scenarios.measured_runs: must be at least 1");
        }
        if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
            bail!(
                "scenarios.temperature: must be 0 (greedy) or more, got {}",
                s.temperature
            );
        }
        if !(s.top_p > 0.0 && s.top_p <= 1.0) {
            bail!("scenarios.top_p: must be in (0, 1], got {}", s.top_p);
        }
        self.load_options()?;
        self.device_request()?;
        self.regress.validate()?;
        self.validate_targets()
    }

    fn validate_targets(&self) -> Result<()> {
        let t = &self.targets;
        if !matches!(t.profile.as_str(), "auto" | "none")
            && super::presets::name(&t.profile).is_none()
        {
            bail!(
                "targets.profile: {:?} is not auto, none or a preset ({})",
                t.profile,
                super::presets::names().join(", ")
            );
        }
        for (i, rule) in t.rules.iter().enumerate() {
            if !crate::targets::is_known_metric(&rule.metric) {
                bail!(
                    "targets.rules[{i}].metric: {:?} is not a scenario metric ({})",
                    rule.metric,
                    crate::targets::METRIC_HELP
                );
            }
            if rule.min.is_none() && rule.max.is_none() {
                bail!("targets.rules[{i}] ({}): give min or max", rule.metric);
            }
        }
        Ok(())
    }

    /// The model section as loader options.
    pub fn load_options(&self) -> Result<LoadOptions> {
        let m = &self.model;
        let field = |name: &str, e: String| anyhow!("model.{name}: {e}");
        let model = ModelRef::from_parts(
            m.model.as_deref(),
            m.model_file.as_deref(),
            m.revision.as_deref(),
        );
        Ok(LoadOptions {
            model,
            weights: m
                .weights
                .parse::<WeightsMode>()
                .map_err(|e| field("weights", e))?,
            dtype: m
                .dtype
                .as_deref()
                .map(model::parse_dtype)
                .transpose()
                .map_err(|e| field("dtype", e))?,
            repack: m.repack.parse::<Repack>().map_err(|e| field("repack", e))?,
            prefill_gemm_rows: m.prefill_gemm_rows,
            prefill_cache_mb: m.prefill_cache_mb,
            tokenizer: m.tokenizer.clone(),
        })
    }

    pub fn device_request(&self) -> Result<DeviceRequest> {
        self.model
            .device
            .parse()
            .map_err(|e: String| anyhow!("model.device: {e}"))
    }
}
