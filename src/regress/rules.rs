//! The rules that turn a measured change into a verdict. Defaults follow the project's seed:
//! FAIL when p95 latency worsens by more than 20% or the error rate exceeds 1%; WARN when p95
//! worsens by more than 10%, p50 moves by more than 15%, or throughput moves by more than 15%.
//! Relative rules fire only on a statistically significant change.

use std::fmt;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::stats::RatioEstimate;

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
            ],
        }
    }
}

/// Statistics a rule may name.
pub const STATISTICS: &[&str] = &[
    "p50",
    "p90",
    "p95",
    "p99",
    "mean",
    "throughput",
    "error_rate",
];

/// One rule: a statistic (of every metric, or of one) and what change of it gives a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressRule {
    /// p50, p90, p95, p99 or mean of a latency; throughput; error_rate.
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

    /// Does this rule fire on this estimate of current / baseline? `higher_is_worse` is
    /// true for latencies and error rates.
    pub fn fires(
        &self,
        e: &RatioEstimate,
        current: f64,
        higher_is_worse: bool,
        significance: Significance,
    ) -> bool {
        // Map everything so that "worse" is a ratio above 1.
        let flip = |r: f64| if higher_is_worse { r } else { 2.0 - r };
        let (ratio, low, high) = if higher_is_worse {
            (e.ratio, e.low, e.high)
        } else {
            (flip(e.ratio), flip(e.high), flip(e.low))
        };
        let tested = low.is_finite() && high.is_finite();
        let worse_beyond = |f: f64| match significance {
            Significance::BeyondThreshold => tested && low > 1.0 + f,
            Significance::Differs => e.significant && ratio > 1.0 + f,
        };
        let better_beyond = |f: f64| match significance {
            Significance::BeyondThreshold => tested && high < 1.0 - f,
            Significance::Differs => e.significant && ratio < 1.0 - f,
        };
        let by_worse = self.worse_by.is_some_and(worse_beyond);
        let by_move = self
            .moves_by
            .is_some_and(|f| worse_beyond(f) || better_beyond(f));
        let by_level = self.above.is_some_and(|x| current > x);
        by_worse || by_move || by_level
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
            if !STATISTICS.contains(&r.statistic.as_str()) {
                bail!(
                    "regress.rules[{i}].statistic: {:?} is not one of {}",
                    r.statistic,
                    STATISTICS.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<RegressRule> {
        RegressSection::default().rules
    }

    /// An estimate: ratio with an interval of +-3%, significant when it excludes 1.
    fn est(ratio: f64) -> RatioEstimate {
        let (low, high) = (ratio - 0.03, ratio + 0.03);
        RatioEstimate {
            ratio,
            low,
            high,
            significant: low > 1.0 || high < 1.0,
        }
    }

    /// The worst verdict the default rules give a change of one statistic.
    fn verdict_with(
        statistic: &str,
        e: RatioEstimate,
        current: f64,
        higher_is_worse: bool,
        significance: Significance,
    ) -> Verdict {
        rules()
            .iter()
            .filter(|r| r.applies_to("ttft", statistic))
            .filter(|r| r.fires(&e, current, higher_is_worse, significance))
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }

    fn verdict(statistic: &str, e: RatioEstimate, current: f64, higher_is_worse: bool) -> Verdict {
        verdict_with(
            statistic,
            e,
            current,
            higher_is_worse,
            Significance::BeyondThreshold,
        )
    }

    #[test]
    fn each_default_rule() {
        // p95: confidently > 20% worse fails, > 10% warns; faster is fine.
        assert_eq!(verdict("p95", est(1.25), 0.0, true), Verdict::Fail);
        assert_eq!(
            verdict("p95", RatioEstimate::untested(1.25), 0.0, true),
            Verdict::Ok
        );
        assert_eq!(verdict("p95", est(1.15), 0.0, true), Verdict::Warn);
        assert_eq!(verdict("p95", est(1.05), 0.0, true), Verdict::Ok);
        assert_eq!(verdict("p95", est(0.5), 0.0, true), Verdict::Ok);
        // Past 20% but the interval reaches below it: only the 10% rule is sure.
        assert_eq!(verdict("p95", est(1.22), 0.0, true), Verdict::Warn);
        // p50: a move of > 15% either way warns.
        assert_eq!(verdict("p50", est(1.2), 0.0, true), Verdict::Warn);
        assert_eq!(verdict("p50", est(0.8), 0.0, true), Verdict::Warn);
        assert_eq!(verdict("p50", est(1.1), 0.0, true), Verdict::Ok);
        // Throughput: either way, > 15%, significant.
        assert_eq!(verdict("throughput", est(0.8), 0.0, false), Verdict::Warn);
        assert_eq!(verdict("throughput", est(1.2), 0.0, false), Verdict::Warn);
        assert_eq!(
            verdict("throughput", RatioEstimate::untested(0.8), 0.0, false),
            Verdict::Ok
        );
        // Error rate: an absolute level, no significance needed.
        assert_eq!(
            verdict("error_rate", RatioEstimate::untested(1.0), 0.02, true),
            Verdict::Fail
        );
        assert_eq!(verdict("error_rate", est(9.0), 0.009, true), Verdict::Ok);
    }

    #[test]
    fn differs_mode_needs_only_the_point_past_the_threshold() {
        let d = |e| verdict_with("p95", e, 0.0, true, Significance::Differs);
        assert_eq!(d(est(1.22)), Verdict::Fail);
        let wide = RatioEstimate {
            ratio: 1.3,
            low: 0.9,
            high: 1.7,
            significant: false,
        };
        assert_eq!(d(wide), Verdict::Ok, "not significant");
    }

    #[test]
    fn rules_for_one_metric_only() {
        let r = RegressRule {
            statistic: "p99".into(),
            metric: Some("itl".into()),
            worse_by: Some(0.5),
            moves_by: None,
            above: None,
            verdict: Verdict::Fail,
        };
        assert!(r.applies_to("itl", "p99") && !r.applies_to("ttft", "p99"));
        assert_eq!(r.describe(), "itl p99 worse by > 50%");
    }

    #[test]
    fn bad_rules_name_the_field() {
        let mut s = RegressSection::default();
        s.rules[0].statistic = "p42".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("regress.rules[0].statistic"));
        let mut s = RegressSection::default();
        s.rules[1].above = None;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("regress.rules[1]"));
        let s = RegressSection {
            confidence: 1.5,
            ..RegressSection::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("regress.confidence"));
    }
}
