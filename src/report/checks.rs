//! A result file read back is untrusted input: `compare` must not turn impossible numbers
//! into a verdict. Each kind checks what it holds (finite, non-negative values, counts that
//! add up without overflowing, percentiles in order) and names the field that fails: here
//! the checks every kind shares and the inference run's; the retrieval and HTTP runs check
//! theirs beside their types (`RunFile::check`).

use super::schema::RunResult;
use crate::metrics::{Latencies, Latency, LatencyHistograms, LatencySummary, RateSummary};

pub(super) type Check = Result<(), String>;

pub(super) fn fail<T>(field: &str, problem: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{field}: {problem}"))
}

pub(super) fn non_negative(field: &str, v: f64) -> Check {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        fail(field, format!("{v} is not a finite value of 0 or more"))
    }
}

/// A histogram's [value, count] pairs: values finite and non-negative, counts summing
/// without overflow. Returns the total count.
pub(super) fn buckets(field: &str, pairs: &[(f64, u64)]) -> Result<u64, String> {
    let mut total: u64 = 0;
    for (value, count) in pairs {
        non_negative(field, *value)?;
        total = match total.checked_add(*count) {
            Some(t) => t,
            None => return fail(field, "its counts add up past 2^64"),
        };
    }
    Ok(total)
}

pub(super) fn summary(field: &str, s: &LatencySummary) -> Check {
    let ordered = [
        ("min_ms", s.min_ms),
        ("p50_ms", s.p50_ms),
        ("p90_ms", s.p90_ms),
        ("p95_ms", s.p95_ms),
        ("p99_ms", s.p99_ms),
        ("p999_ms", s.p999_ms),
        ("max_ms", s.max_ms),
    ];
    for (name, v) in ordered
        .iter()
        .chain(&[("mean_ms", s.mean_ms), ("sd_ms", s.sd_ms)])
    {
        non_negative(&format!("{field}.{name}"), *v)?;
    }
    if ordered.windows(2).any(|w| w[0].1 > w[1].1) {
        return fail(
            field,
            "its percentiles are not in order (min <= p50 <= ... <= max)",
        );
    }
    Ok(())
}

/// The four summaries and their histograms: each histogram holds as many samples as its
/// summary counted.
pub(super) fn latencies(field: &str, l: &Latencies, h: &LatencyHistograms) -> Check {
    for &latency in Latency::ALL {
        let name = format!("{field}.{latency}");
        let total = buckets(&format!("{field}.histograms.{latency}"), h.of(latency))?;
        if let Some(s) = l.get(latency) {
            summary(&name, s)?;
            if total > 0 && total != s.count {
                return fail(
                    &name,
                    format!("counts {} samples but its histogram holds {total}", s.count),
                );
            }
        }
    }
    Ok(())
}

pub(super) fn rate(field: &str, r: Option<&RateSummary>) -> Check {
    let Some(r) = r else { return Ok(()) };
    for (i, v) in r.runs.iter().enumerate() {
        non_negative(&format!("{field}.runs[{i}]"), *v)?;
    }
    non_negative(&format!("{field}.mean"), r.mean)
}

pub fn inference(run: &RunResult) -> Check {
    for (i, s) in run.scenarios.iter().enumerate() {
        let field = format!("scenarios[{i}] ({})", s.name);
        latencies(&field, &s.latencies, &s.histograms)?;
        rate(
            &format!("{field}.decode_tokens_per_second"),
            s.decode_tokens_per_second.as_ref(),
        )?;
        rate(
            &format!("{field}.e2e_tokens_per_second"),
            s.e2e_tokens_per_second.as_ref(),
        )?;
        rate(
            &format!("{field}.prompt_tokens_per_second"),
            s.prompt_tokens_per_second.as_ref(),
        )?;
        if let Some(r) = &s.roofline {
            roofline(&format!("{field}.roofline"), r)?;
        }
    }
    Ok(())
}

fn roofline(field: &str, r: &crate::roofline::Roofline) -> Check {
    let figures = [
        ("decode_bytes_per_step", Some(r.decode_bytes_per_step)),
        ("decode_bytes_per_s", r.decode_bytes_per_s),
        ("decode_bandwidth_share", r.decode_bandwidth_share),
        ("prefill_flops", Some(r.prefill_flops)),
        ("prefill_flops_per_s", r.prefill_flops_per_s),
        ("prefill_flops_share", r.prefill_flops_share),
    ];
    for (name, value) in figures {
        if let Some(v) = value {
            non_negative(&format!("{field}.{name}"), v)?;
        }
    }
    Ok(())
}
