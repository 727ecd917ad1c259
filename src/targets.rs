//! Targets and the run's grade: each scenario's metrics against the rules of a hardware
//! profile; the grade is the share of (scenario, rule) checks that passed.

use serde::{Deserialize, Serialize};

use crate::metrics::parse_latency_metric;

/// The throughput metrics a rule may name.
const RATES: &[&str] = &[
    "decode_tokens_per_second",
    "e2e_tokens_per_second",
    "prompt_tokens_per_second",
];

pub const METRIC_HELP: &str = "decode_tokens_per_second, e2e_tokens_per_second, \
     prompt_tokens_per_second, or {ttft,itl,tpot,e2e}_{min,mean,p50,p90,p95,p99,p999,max,sd}_ms";

/// A throughput, or a latency statistic named as `{latency}_{statistic}_ms`.
pub fn is_known_metric(name: &str) -> bool {
    RATES.contains(&name) || parse_latency_metric(name).is_some()
}

/// One target: a metric of each scenario (optionally only some scenarios) against a bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRule {
    /// A scenario metric: decode_tokens_per_second, e2e_tokens_per_second,
    /// prompt_tokens_per_second, or {ttft,itl,tpot,e2e}_{min,mean,p50,p90,p95,p99,p999,max}_ms.
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Apply only to scenarios of this batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    /// Apply only to scenarios of this prompt length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    /// Where the bound comes from (a published figure, a roofline fraction), printed with a
    /// miss so that the reader knows what was expected and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl TargetRule {
    /// "decode_tokens_per_second >= 10 (batch 1)".
    pub fn describe(&self) -> String {
        let mut s = self.metric.clone();
        if let Some(min) = self.min {
            s += &format!(" >= {min}");
        }
        if let Some(max) = self.max {
            s += &format!(" <= {max}");
        }
        let mut only = Vec::new();
        if let Some(b) = self.batch {
            only.push(format!("batch {b}"));
        }
        if let Some(p) = self.prompt_tokens {
            only.push(format!("prompt {p}"));
        }
        if !only.is_empty() {
            s += &format!(" ({})", only.join(", "));
        }
        s
    }
}

/// One rule checked against one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetOutcome {
    /// The rule, in words: "ttft_p50_ms <= 15".
    pub target: String,
    /// The scenario's value; None when it could not be measured (which counts as missed).
    pub value: Option<f64>,
    pub met: bool,
    /// The rule's `why`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Check the rules that apply to a scenario of this batch size and prompt length.
pub fn evaluate(
    rules: &[TargetRule],
    batch: u32,
    prompt_tokens: u32,
    metric: impl Fn(&str) -> Option<f64>,
) -> Vec<TargetOutcome> {
    rules
        .iter()
        .filter(|r| r.batch.is_none_or(|b| b == batch))
        .filter(|r| r.prompt_tokens.is_none_or(|p| p == prompt_tokens))
        .map(|rule| {
            let value = metric(&rule.metric);
            let met = value.is_some_and(|v| {
                rule.min.is_none_or(|min| v >= min) && rule.max.is_none_or(|max| v <= max)
            });
            TargetOutcome {
                target: rule.describe(),
                value,
                met,
                why: rule.why.clone(),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// At least 90% of the checks passed.
    Excellent,
    /// 80 to 89%.
    Good,
    /// 60 to 79%.
    Acceptable,
    /// Below 60%.
    Poor,
    /// Nothing to check against.
    Ungraded,
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Grade::Excellent => "Excellent",
            Grade::Good => "Good",
            Grade::Acceptable => "Acceptable",
            Grade::Poor => "Poor",
            Grade::Ungraded => "ungraded",
        })
    }
}

/// The run's verdict over all its scenarios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeSummary {
    pub met: usize,
    pub checked: usize,
    /// met / checked, 0..=1 (0 when nothing was checked).
    pub share: f64,
    pub grade: Grade,
}

pub fn grade<'a>(outcomes: impl IntoIterator<Item = &'a TargetOutcome>) -> GradeSummary {
    let (mut met, mut checked) = (0, 0);
    for o in outcomes {
        checked += 1;
        met += usize::from(o.met);
    }
    let share = if checked == 0 {
        0.0
    } else {
        met as f64 / checked as f64
    };
    // Whole percent, rounded down (89.6% is not 90%), with an epsilon so 9 of 10 is 90.
    let percent = (share * 100.0 + 1e-9).floor() as u32;
    let grade = match (checked, percent) {
        (0, _) => Grade::Ungraded,
        (_, 90..) => Grade::Excellent,
        (_, 80..=89) => Grade::Good,
        (_, 60..=79) => Grade::Acceptable,
        _ => Grade::Poor,
    };
    GradeSummary {
        met,
        checked,
        share,
        grade,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: &str, min: Option<f64>, max: Option<f64>, batch: Option<u32>) -> TargetRule {
        TargetRule {
            metric: metric.into(),
            min,
            max,
            batch,
            prompt_tokens: None,
            why: None,
        }
    }

    fn outcomes(met: usize, missed: usize) -> Vec<TargetOutcome> {
        (0..met + missed)
            .map(|i| TargetOutcome {
                target: "x".into(),
                value: Some(1.0),
                met: i < met,
                why: None,
            })
            .collect()
    }

    #[test]
    fn metric_names() {
        assert!(is_known_metric("decode_tokens_per_second"));
        assert!(is_known_metric("ttft_p50_ms"));
        assert!(is_known_metric("e2e_p999_ms"));
        assert!(!is_known_metric("ttft_p50"));
        assert!(!is_known_metric("ttft_p42_ms"));
        assert!(!is_known_metric("speed"));
    }

    #[test]
    fn rules_check_bounds_and_apply_to_their_scenarios_only() {
        let rules = vec![
            rule("decode_tokens_per_second", Some(10.0), None, Some(1)),
            rule("ttft_p50_ms", None, Some(15.0), None),
        ];
        let values = |decode: f64, ttft: f64| {
            move |m: &str| match m {
                "decode_tokens_per_second" => Some(decode),
                "ttft_p50_ms" => Some(ttft),
                _ => None,
            }
        };
        let at_batch_1 = evaluate(&rules, 1, 128, values(12.0, 20.0));
        assert_eq!(at_batch_1.len(), 2);
        assert!(at_batch_1[0].met, "12 >= 10");
        assert!(!at_batch_1[1].met, "20 > 15");
        let at_batch_8 = evaluate(&rules, 8, 128, values(5.0, 15.0));
        assert_eq!(at_batch_8.len(), 1, "the decode rule is for batch 1 only");
        assert!(at_batch_8[0].met, "15 <= 15: bounds are inclusive");
        let unmeasured = evaluate(&rules, 1, 128, |_| None);
        assert!(unmeasured.iter().all(|o| !o.met && o.value.is_none()));
    }

    #[test]
    fn grade_boundaries() {
        let g = |met, missed| grade(&outcomes(met, missed)).grade;
        assert_eq!(g(10, 0), Grade::Excellent);
        assert_eq!(g(9, 1), Grade::Excellent);
        assert_eq!(g(89, 11), Grade::Good);
        assert_eq!(g(896, 104), Grade::Good, "89.6% is not 90%");
        assert_eq!(g(8, 2), Grade::Good);
        assert_eq!(g(79, 21), Grade::Acceptable);
        assert_eq!(g(6, 4), Grade::Acceptable);
        assert_eq!(g(59, 41), Grade::Poor);
        assert_eq!(g(0, 3), Grade::Poor);
        assert_eq!(g(0, 0), Grade::Ungraded);
        let s = grade(&outcomes(3, 1));
        assert_eq!((s.met, s.checked, s.share), (3, 4, 0.75));
    }
}
