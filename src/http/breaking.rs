//! `load --breaking-point`: raise an open-loop rate level by level until the server breaks
//! (errors past --max-error-rate, more than 10% of requests missing the SLOs, or the server
//! falling behind: arrivals waiting for the in-flight cap, answers behind the sends), then narrow the
//! gap between the last level that held and the first that broke, and report both.

use std::sync::atomic::Ordering;

use anyhow::Result;

use super::{record, shape_name, RunContext};
use crate::report::http::{BreakingPoint, HttpRun, HttpScenario, LoadShape, Slo};
use crate::results::RunDir;
use crate::workload::arrival::{ArrivalKind, ArrivalProcess};

/// Scenario names of a breaking-point search start with this.
pub const PREFIX: &str = "breaking-";

#[derive(Debug, Clone)]
pub struct BreakingSettings {
    pub start_rate: f64,
    pub factor: f64,
    /// Most levels of the climb (refinement levels come on top).
    pub max_steps: u32,
    /// Levels run between the last held and the first broken rate once both are known.
    pub refine: u32,
    /// A level breaks above this share of failed requests.
    pub max_error_rate: f64,
    pub arrival: ArrivalKind,
    pub burstiness: f64,
    pub max_concurrency: u32,
}

/// Share of requests that may miss the SLOs, wait for the in-flight cap, or be answered behind the sends,
/// before a level counts as broken.
const MAX_BAD_SHARE: f64 = 0.1;

/// Why a level broke, or None when it held.
pub fn broken_because(s: &HttpScenario, max_error_rate: f64, slo: &[Slo]) -> Option<String> {
    if s.requests == 0 {
        return Some("no request completed".into());
    }
    if s.error_rate > max_error_rate {
        return Some(format!(
            "{:.1}% of requests failed (over --max-error-rate {:.1}%)",
            s.error_rate * 100.0,
            max_error_rate * 100.0
        ));
    }
    if let Some(g) = s.goodput.as_ref().filter(|_| !slo.is_empty()) {
        if g.fraction < 1.0 - MAX_BAD_SHARE {
            return Some(format!(
                "{:.0}% of requests missed the SLOs",
                (1.0 - g.fraction) * 100.0
            ));
        }
    }
    let waited = s.delayed_by_cap as f64 / s.requests as f64;
    if waited > MAX_BAD_SHARE {
        return Some(format!(
            "{:.0}% of arrivals waited for --max-concurrency: the server fell behind",
            waited * 100.0
        ));
    }
    // Answers that fall behind the sends: the server queues. The last requests' own time
    // lengthens every run a little (sent over the span, answered over the span and one more
    // E2E), so that much is expected. Both rates are of the requests actually sent, so a
    // Poisson schedule's own spread is not taken for a break.
    if let (Some(sent_rate), Some(e2e)) = (s.achieved_rate, s.latencies.e2e.as_ref()) {
        if s.requests > 10 && sent_rate > 0.0 {
            let span = (s.requests - 1) as f64 / sent_rate;
            let expected = span / (span + e2e.p50_ms / 1e3);
            if s.requests_per_second / sent_rate < expected * (1.0 - MAX_BAD_SHARE) {
                return Some(format!(
                    "answers fell behind: {:.2} req/s answered of {sent_rate:.2} sent",
                    s.requests_per_second
                ));
            }
        }
    }
    None
}

/// 70.71067 -> 70.7: a rate people can read and type again.
fn three_digits(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

pub(super) async fn run(
    ctx: &RunContext<'_>,
    settings: &BreakingSettings,
    run: &mut HttpRun,
    counted_by: &mut std::collections::BTreeMap<&'static str, u64>,
    dir: &RunDir,
) -> Result<()> {
    let mut search = BreakingPoint::default();
    let level = |rate: f64| {
        let shape = LoadShape::Open {
            arrival: ArrivalProcess {
                kind: settings.arrival,
                rate,
                burstiness: settings.burstiness,
            },
            max_concurrency: settings.max_concurrency,
        };
        (format!("{PREFIX}{}", shape_name(&shape)), shape)
    };
    let mut rate = settings.start_rate;
    let mut climbing = true;
    let mut refinements = 0;
    search.stopped_because = format!("it reached {} levels without breaking", settings.max_steps);
    loop {
        if ctx.request.interrupt.load(Ordering::SeqCst) {
            search.stopped_because = "it was interrupted".into();
            break;
        }
        let (name, shape) = level(rate);
        run.planned_scenarios.push(name.clone());
        let scenario = ctx.scenario(name.clone(), shape, counted_by).await?;
        if scenario.requests == 0 && scenario.interrupted {
            search.stopped_because = "it was interrupted".into();
            break;
        }
        search.rates.push(rate);
        let verdict = broken_because(&scenario, settings.max_error_rate, &ctx.request.slo);
        eprintln!(
            "breaking point: {rate} req/s {}",
            verdict
                .as_deref()
                .map_or("held".into(), |why| format!("broke: {why}"))
        );
        record(run, scenario, counted_by, dir)?;
        match verdict {
            None => {
                search.held_rate = Some(rate);
                search.held_scenario = Some(name);
            }
            Some(why) => {
                search.broke_rate = Some(rate);
                search.broke_scenario = Some(name);
                search.broke_because = Some(why);
                climbing = false;
            }
        }
        run.breaking_point = Some(search.clone());
        dir.save(run)?;
        if climbing {
            if search.rates.len() as u32 >= settings.max_steps {
                break;
            }
            rate *= settings.factor;
            continue;
        }
        // Narrow the gap: the geometric middle of the last held and the first broken.
        match (search.held_rate, search.broke_rate) {
            (Some(held), Some(broke)) if refinements < settings.refine => {
                refinements += 1;
                rate = three_digits((held * broke).sqrt());
            }
            (None, Some(_)) => {
                search.stopped_because = "the first level already broke".into();
                break;
            }
            _ => {
                search.stopped_because = format!(
                    "a level broke{}",
                    if refinements > 0 {
                        format!(" (and {refinements} levels between were tried)")
                    } else {
                        String::new()
                    }
                );
                break;
            }
        }
    }
    run.breaking_point = Some(search);
    dir.save(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(requests: u64, failed: u64, delayed: u64, answered: f64) -> HttpScenario {
        HttpScenario {
            name: "x".into(),
            shape: LoadShape::Closed { concurrency: 1 },
            started_at: String::new(),
            duration_s: 1.0,
            interrupted: false,
            warmup_requests: 0,
            warmup_failed: 0,
            requests,
            succeeded: requests - failed,
            failed,
            error_rate: failed as f64 / requests.max(1) as f64,
            errors: Default::default(),
            status_codes: Default::default(),
            error_examples: Default::default(),
            latencies: crate::metrics::Latencies {
                e2e: Some(crate::metrics::LatencySummary {
                    count: requests,
                    min_ms: 500.0,
                    mean_ms: 500.0,
                    p50_ms: 500.0,
                    p90_ms: 500.0,
                    p95_ms: 500.0,
                    p99_ms: 500.0,
                    p999_ms: 500.0,
                    max_ms: 500.0,
                    sd_ms: 0.0,
                    spike_rate: 0.0,
                }),
                ..Default::default()
            },
            histograms: Default::default(),
            requests_per_second: answered,
            input_tokens: 0,
            output_tokens: 0,
            input_tokens_per_second: None,
            output_tokens_per_second: None,
            units_per_second: None,
            achieved_rate: Some(10.0),
            delayed_by_cap: delayed,
            goodput: None,
            throughput_runs: None,
            window: None,
            good_requests: None,
            token_lengths: None,
            cached_prompt_tokens: None,
            windows: None,
            e2e_drift: None,
            server_metrics: None,
            gpu_telemetry: None,
        }
    }

    #[test]
    fn refined_rates_are_rounded_to_three_digits() {
        assert_eq!(three_digits(70.71067811865476), 70.7);
        assert_eq!(three_digits(5.656854), 5.66);
        assert_eq!(three_digits(1414.2), 1410.0);
    }

    #[test]
    fn each_kind_of_breaking_is_named() {
        assert_eq!(broken_because(&scenario(100, 0, 0, 10.0), 0.01, &[]), None);
        let errors = broken_because(&scenario(100, 5, 0, 10.0), 0.01, &[]).unwrap();
        assert!(errors.contains("5.0% of requests failed"), "{errors}");
        let behind = broken_because(&scenario(100, 0, 30, 10.0), 0.01, &[]).unwrap();
        assert!(behind.contains("30% of arrivals waited"), "{behind}");
        // Sent at 10 req/s over 9.9 s, E2E 0.5 s: 9.5 req/s answered is what keeping up
        // looks like; 8 is falling behind.
        assert_eq!(broken_because(&scenario(100, 0, 0, 9.5), 0.01, &[]), None);
        let behind = broken_because(&scenario(100, 0, 0, 8.0), 0.01, &[]).unwrap();
        assert!(
            behind.contains("8.00 req/s answered of 10.00 sent"),
            "{behind}"
        );
        assert!(broken_because(&scenario(0, 0, 0, 0.0), 0.01, &[]).is_some());
    }
}
