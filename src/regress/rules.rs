//! How a regression rule fires: a measured change (a ratio current / baseline with its
//! confidence interval) against the rule's thresholds. Relative rules fire only on a
//! statistically significant change. The rules themselves are config (`config::regress`).

use super::stats::RatioEstimate;
pub use crate::config::regress::{RegressRule, RegressSection, Significance, Verdict};

impl RegressRule {
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
