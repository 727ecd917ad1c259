//! The one vocabulary of latencies and their statistics: what targets, compare rules, CSV
//! columns, tables and metric names (`ttft_p95_ms`) all say.

use std::fmt;

/// The latencies a request has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Latency {
    /// Request (or prefill start) to the first generated token.
    Ttft,
    /// Gaps between consecutive tokens.
    Itl,
    /// Per request: (end-to-end - TTFT) / (tokens - 1).
    Tpot,
    /// Request to the last token.
    E2e,
}

impl Latency {
    pub const ALL: [Latency; 4] = [Latency::Ttft, Latency::Itl, Latency::Tpot, Latency::E2e];

    /// The name in files and metric names: "ttft", "itl", "tpot", "e2e".
    pub fn name(self) -> &'static str {
        match self {
            Latency::Ttft => "ttft",
            Latency::Itl => "itl",
            Latency::Tpot => "tpot",
            Latency::E2e => "e2e",
        }
    }

    /// The name in table headers: "TTFT", "ITL", "TPOT", "E2E".
    pub fn label(self) -> &'static str {
        match self {
            Latency::Ttft => "TTFT",
            Latency::Itl => "ITL",
            Latency::Tpot => "TPOT",
            Latency::E2e => "E2E",
        }
    }

    pub fn parse(name: &str) -> Option<Latency> {
        Latency::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The statistics a latency summary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Statistic {
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    /// Sample standard deviation.
    Sd,
}

impl Statistic {
    pub const ALL: [Statistic; 9] = [
        Statistic::Min,
        Statistic::Mean,
        Statistic::P50,
        Statistic::P90,
        Statistic::P95,
        Statistic::P99,
        Statistic::P999,
        Statistic::Max,
        Statistic::Sd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Statistic::Min => "min",
            Statistic::Mean => "mean",
            Statistic::P50 => "p50",
            Statistic::P90 => "p90",
            Statistic::P95 => "p95",
            Statistic::P99 => "p99",
            Statistic::P999 => "p999",
            Statistic::Max => "max",
            Statistic::Sd => "sd",
        }
    }

    pub fn parse(name: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The quantile a percentile stands for: p95 -> 0.95; None for the others.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Statistic::P50 => Some(0.50),
            Statistic::P90 => Some(0.90),
            Statistic::P95 => Some(0.95),
            Statistic::P99 => Some(0.99),
            Statistic::P999 => Some(0.999),
            _ => None,
        }
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A latency statistic as one metric name: `ttft_p95_ms`.
pub fn latency_metric_name(latency: Latency, statistic: Statistic) -> String {
    format!("{latency}_{statistic}_ms")
}

/// Split a latency metric name: "ttft_p50_ms" -> (Ttft, P50).
pub fn parse_latency_metric(name: &str) -> Option<(Latency, Statistic)> {
    let (latency, statistic) = name.strip_suffix("_ms")?.split_once('_')?;
    Some((Latency::parse(latency)?, Statistic::parse(statistic)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Latency::ALL {
            for s in Statistic::ALL {
                let name = latency_metric_name(l, s);
                assert_eq!(parse_latency_metric(&name), Some((l, s)), "{name}");
            }
        }
        assert_eq!(parse_latency_metric("ttft_p50"), None);
        assert_eq!(parse_latency_metric("ttft_p42_ms"), None);
        assert_eq!(parse_latency_metric("speed_p50_ms"), None);
    }
}
