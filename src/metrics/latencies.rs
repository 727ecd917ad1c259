//! A request's four latencies together: recorded as they come, then summarised and kept as
//! histograms; what every runner and every result kind shares.

use serde::{Deserialize, Serialize};

use super::{Latency, LatencyRecorder, LatencySummary};

/// TTFT, inter-token gaps, TPOT and end-to-end latency, each recorded.
#[derive(Debug, Clone, Default)]
pub struct LatencyRecorders {
    pub ttft: LatencyRecorder,
    pub itl: LatencyRecorder,
    pub tpot: LatencyRecorder,
    pub e2e: LatencyRecorder,
}

impl LatencyRecorders {
    fn of(&self, latency: Latency) -> &LatencyRecorder {
        match latency {
            Latency::Ttft => &self.ttft,
            Latency::Itl => &self.itl,
            Latency::Tpot => &self.tpot,
            Latency::E2e => &self.e2e,
        }
    }

    pub fn summaries(&self) -> Latencies {
        Latencies {
            ttft: self.ttft.summary(),
            itl: self.itl.summary(),
            tpot: self.tpot.summary(),
            e2e: self.e2e.summary(),
        }
    }

    pub fn histograms(&self) -> LatencyHistograms {
        let buckets = |l| self.of(l).buckets();
        LatencyHistograms {
            ttft: buckets(Latency::Ttft),
            itl: buckets(Latency::Itl),
            tpot: buckets(Latency::Tpot),
            e2e: buckets(Latency::E2e),
        }
    }
}

/// Each latency's summary; None where nothing was recorded. Flattened into a scenario, so
/// the four sit beside its other fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Request (prefill start, in process) to the first token.
    pub ttft: Option<LatencySummary>,
    /// Every gap between consecutive tokens (streams: between reads that carried text).
    pub itl: Option<LatencySummary>,
    /// Per request: (end-to-end - TTFT) / (tokens - 1).
    pub tpot: Option<LatencySummary>,
    /// Request (prefill start) to the last token.
    pub e2e: Option<LatencySummary>,
}

impl Latencies {
    pub fn get(&self, latency: Latency) -> Option<&LatencySummary> {
        match latency {
            Latency::Ttft => self.ttft.as_ref(),
            Latency::Itl => self.itl.as_ref(),
            Latency::Tpot => self.tpot.as_ref(),
            Latency::E2e => self.e2e.as_ref(),
        }
    }
}

/// Each latency's distribution as [milliseconds, count] pairs (HDR buckets, 3 significant
/// digits): compact, and enough to resample percentiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyHistograms {
    pub ttft: Vec<(f64, u64)>,
    pub itl: Vec<(f64, u64)>,
    pub tpot: Vec<(f64, u64)>,
    pub e2e: Vec<(f64, u64)>,
}

impl LatencyHistograms {
    pub fn of(&self, latency: Latency) -> &[(f64, u64)] {
        match latency {
            Latency::Ttft => &self.ttft,
            Latency::Itl => &self.itl,
            Latency::Tpot => &self.tpot,
            Latency::E2e => &self.e2e,
        }
    }
}
