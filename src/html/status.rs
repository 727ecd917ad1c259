//! Green, yellow, red: how a finished scenario stands against its targets, decided once here
//! for the static report and the live dashboard alike.

use serde::Serialize;

use crate::report::http::HttpScenario;
use crate::report::retrieval::EfScenario;
use crate::report::ScenarioResult;
use crate::targets::TargetRule;

/// A missed target within this share of its bound is yellow, not red.
const NEAR_MISS: f64 = 0.10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to check against.
    None,
    /// Every target met.
    Ok,
    /// A target missed narrowly, or a warning sign (some errors, goodput under 99%).
    Warn,
    /// A target missed.
    Bad,
}

impl Status {
    pub fn class(self) -> &'static str {
        match self {
            Status::None => "status-none",
            Status::Ok => "status-ok",
            Status::Warn => "status-warn",
            Status::Bad => "status-bad",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Status::None => "no targets",
            Status::Ok => "met",
            Status::Warn => "near miss",
            Status::Bad => "missed",
        }
    }
}

/// An inference scenario: the worst of its targets; a miss within 10% of the bound is yellow.
pub fn inference(scenario: &ScenarioResult, rules: &[TargetRule]) -> Status {
    scenario
        .targets
        .iter()
        .map(|outcome| {
            if outcome.met {
                return Status::Ok;
            }
            let rule = rules.iter().find(|r| r.describe() == outcome.target);
            match (rule, outcome.value) {
                (Some(rule), Some(value)) if near(rule, value) => Status::Warn,
                _ => Status::Bad,
            }
        })
        .max()
        .unwrap_or(Status::None)
}

fn near(rule: &TargetRule, value: f64) -> bool {
    let within = |bound: f64| (value - bound).abs() <= bound.abs() * NEAR_MISS;
    rule.min.is_none_or(|min| value >= min || within(min))
        && rule.max.is_none_or(|max| value <= max || within(max))
}

/// An HTTP scenario: red where the sweep would call it broken (errors over 1% or fewer than
/// 90% of requests within the SLOs), yellow on any error or goodput under 99%.
pub fn http(scenario: &HttpScenario) -> Status {
    let goodput = scenario.goodput.as_ref().map(|g| g.fraction);
    if scenario.requests == 0 {
        Status::None
    } else if scenario.error_rate > 0.01 || goodput.is_some_and(|g| g < 0.9) {
        Status::Bad
    } else if scenario.failed > 0 || goodput.is_some_and(|g| g < 0.99) {
        Status::Warn
    } else {
        Status::Ok
    }
}

/// A retrieval ef: the headline recall reached, or within 0.02 of it (yellow), or not.
pub fn retrieval(scenario: &EfScenario, recall_target: f64) -> Status {
    if scenario.recall >= recall_target {
        Status::Ok
    } else if scenario.recall >= recall_target - 0.02 {
        Status::Warn
    } else {
        Status::Bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_miss_is_yellow_and_a_far_one_red() {
        let rule = TargetRule {
            metric: "decode_tokens_per_second".into(),
            min: Some(100.0),
            max: None,
            batch: None,
            prompt_tokens: None,
            why: None,
        };
        assert!(near(&rule, 95.0));
        assert!(!near(&rule, 85.0));
        let max = TargetRule {
            min: None,
            max: Some(20.0),
            ..rule
        };
        assert!(near(&max, 21.0) && !near(&max, 25.0));
    }
}
