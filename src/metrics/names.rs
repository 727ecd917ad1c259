//! The one vocabulary of latencies and their statistics: what targets, compare rules, CSV
//! columns, tables and metric names (`ttft_p95_ms`) all say.

use std::fmt;

/// An enum whose variants each have one name in files, with ALL, name, parse and Display.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name in files, metric names and CSV headers.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

vocabulary! {
    /// The latencies a request has.
    Latency {
        /// Request (or prefill start) to the first generated token.
        Ttft = "ttft",
        /// Gaps between consecutive tokens.
        Itl = "itl",
        /// Per request: (end-to-end - TTFT) / (tokens - 1).
        Tpot = "tpot",
        /// Request to the last token.
        E2e = "e2e",
    }
}

vocabulary! {
    /// The statistics a latency summary holds.
    Statistic {
        Min = "min",
        Mean = "mean",
        P50 = "p50",
        P90 = "p90",
        P95 = "p95",
        P99 = "p99",
        P999 = "p999",
        Max = "max",
        /// Sample standard deviation.
        Sd = "sd",
    }
}

impl Latency {
    /// The name in table headers: "TTFT", "ITL", "TPOT", "E2E".
    pub fn label(self) -> String {
        self.name().to_uppercase()
    }
}

impl Statistic {
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
        for &l in Latency::ALL {
            for &s in Statistic::ALL {
                let name = latency_metric_name(l, s);
                assert_eq!(parse_latency_metric(&name), Some((l, s)), "{name}");
            }
        }
        assert_eq!(parse_latency_metric("ttft_p50"), None);
        assert_eq!(parse_latency_metric("ttft_p42_ms"), None);
        assert_eq!(parse_latency_metric("speed_p50_ms"), None);
        assert_eq!(Latency::E2e.label(), "E2E");
    }
}
