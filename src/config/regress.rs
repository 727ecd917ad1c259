//! The `[regress]` section of a config: the rules that turn a measured change into a
//! verdict. Defaults follow the project's seed: FAIL when p95 latency worsens by more than
//! 20% or the error rate exceeds 1%; WARN when p95 worsens by more than 10%, p50 moves by more
//! than 15%, or throughput moves by more than 15%. How a rule fires is `regress::rules`.

use std::fmt;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::metrics::Statistic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// What "significant" asks of a change before a relative rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Significance {
    /// The whole confidence interval lies beyond the threshold: confidently worse by more
    /// than 20%, say. Fewer false alarms on a noisy machine; a change just past the threshold
    /// may pass.
    BeyondThreshold,
    /// The point estimate is beyond the threshold and the interval excludes no change.
    Differs,
}

/// The `[regress]` section of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegressSection {
    /// Confidence level of the intervals a change must clear to count.
    pub confidence: f64,
    pub significance: Significance,
    /// Bootstrap resamples per comparison.
    pub resamples: usize,
    pub rules: Vec<RegressRule>,
}

impl Default for RegressSection {
    fn default() -> Self {
        let rule = |statistic: &str, verdict, worse_by, moves_by, above| RegressRule {
            statistic: statistic.into(),
            metric: None,
            worse_by,
            moves_by,
            above,
            verdict,
        };
        RegressSection {
            confidence: 0.95,
            significance: Significance::BeyondThreshold,
            resamples: 2000,
            rules: vec![
                rule("p95", Verdict::Fail, Some(0.20), None, None),
                rule("error_rate", Verdict::Fail, None, None, Some(0.01)),
                rule("p95", Verdict::Warn, Some(0.10), None, None),
                rule("p50", Verdict::Warn, None, Some(0.15), None),
                rule("throughput", Verdict::Warn, None, Some(0.15), None),
                // Deterministic counts (`inferbench instructions`): no noise to allow for.
                RegressRule {
                    metric: Some("instructions".into()),
                    ..rule("count", Verdict::Fail, Some(0.02), None, None)
                },
                rule("count", Verdict::Warn, None, Some(0.02), None),
            ],
        }
    }
}

/// Latency statistics a rule may name; compare resamples each from the stored distributions.
pub const LATENCY_STATISTICS: [Statistic; 5] = [
    Statistic::P50,
    Statistic::P90,
    Statistic::P95,
    Statistic::P99,
    Statistic::Mean,
];

/// Statistics of other metrics a rule may name.
const OTHER_STATISTICS: [&str; 3] = ["throughput", "error_rate", "count"];

/// Every statistic a rule may name, in the order errors list them.
fn rule_statistics() -> Vec<&'static str> {
    let latency = LATENCY_STATISTICS.iter().map(|s| s.name());
    latency.chain(OTHER_STATISTICS).collect()
}

/// One rule: a statistic (of every metric, or of one) and what change of it gives a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressRule {
    /// p50, p90, p95, p99 or mean of a latency; throughput; error_rate; count (instructions,
    /// estimated cycles).
    pub statistic: String,
    /// Only this metric (ttft, itl, tpot, e2e, time, decode_tokens_per_second, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Fires when the statistic gets worse (latency up, throughput down) by more than this
    /// fraction, significantly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worse_by: Option<f64>,
    /// Fires when the statistic moves either way by more than this fraction, significantly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves_by: Option<f64>,
    /// Fires when the current value is above this (error_rate: a fraction of requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    pub verdict: Verdict,
}

impl RegressRule {
    /// "p95 worse by > 20%".
    pub fn describe(&self) -> String {
        let subject = match &self.metric {
            Some(m) => format!("{m} {}", self.statistic),
            None => self.statistic.clone(),
        };
        let mut parts = Vec::new();
        if let Some(f) = self.worse_by {
            parts.push(format!("worse by > {:.0}%", f * 100.0));
        }
        if let Some(f) = self.moves_by {
            parts.push(format!("moves by > {:.0}%", f * 100.0));
        }
        if let Some(x) = self.above {
            parts.push(format!("above {x}"));
        }
        format!("{subject} {}", parts.join(", "))
    }

    pub fn applies_to(&self, metric: &str, statistic: &str) -> bool {
        self.statistic == statistic && self.metric.as_deref().is_none_or(|m| m == metric)
    }
}

impl RegressSection {
    pub fn validate(&self) -> Result<()> {
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            bail!(
                "regress.confidence: must be between 0.5 and 1, got {}",
                self.confidence
            );
        }
        for (i, r) in self.rules.iter().enumerate() {
            let known = rule_statistics();
            if !known.contains(&r.statistic.as_str()) {
                bail!(
                    "regress.rules[{i}].statistic: {:?} is not one of {}",
                    r.statistic,
                    known.join(", ")
                );
            }
            if r.worse_by.is_none() && r.moves_by.is_none() && r.above.is_none() {
                bail!("regress.rules[{i}]: give worse_by, moves_by or above");
            }
            for (name, v) in [("worse_by", r.worse_by), ("moves_by", r.moves_by)] {
                if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                    bail!("regress.rules[{i}].{name}: must be a fraction >= 0 (0.2 is 20%)");
                }
            }
        }
        Ok(())
    }
}
