//! A request's four latencies together: recorded as they come, then summarised and kept as
//! histograms; what every runner and every result kind shares.

use anyhow::{Context, Result};
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
        let exact = |l| {
            Some(self.of(l))
                .filter(|r| !r.is_empty())
                .map(|r| r.exact())
        };
        LatencyHistograms {
            ttft: buckets(Latency::Ttft),
            itl: buckets(Latency::Itl),
            tpot: buckets(Latency::Tpot),
            e2e: buckets(Latency::E2e),
            exact: Some(ExactHistograms {
                ttft: exact(Latency::Ttft),
                itl: exact(Latency::Itl),
                tpot: exact(Latency::Tpot),
                e2e: exact(Latency::E2e),
            }),
        }
    }

    /// The recorders back from a stored result: each latency's exact histogram with the
    /// summary beside it. Fails when the result has no exact histograms (written before
    /// they were kept) or they do not match their summaries.
    pub fn from_stored(latencies: &Latencies, histograms: &LatencyHistograms) -> Result<Self> {
        let exact = histograms.exact.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "it has no exact histograms (`histograms.exact`, kept since inferbench 0.1 \
                 with merging); run it again to merge it"
            )
        })?;
        let one = |l: Latency| -> Result<LatencyRecorder> {
            match exact.of(l) {
                Some(text) => LatencyRecorder::from_exact(text, latencies.get(l))
                    .with_context(|| format!("histograms.exact.{}", l.name())),
                None if latencies.get(l).is_none() => Ok(LatencyRecorder::new()),
                None => anyhow::bail!(
                    "histograms.exact.{} is missing but {} has samples",
                    l.name(),
                    l.name()
                ),
            }
        };
        Ok(LatencyRecorders {
            ttft: one(Latency::Ttft)?,
            itl: one(Latency::Itl)?,
            tpot: one(Latency::Tpot)?,
            e2e: one(Latency::E2e)?,
        })
    }

    /// Fold another request set's recorders into these.
    pub fn merge(&mut self, other: &LatencyRecorders) -> Result<()> {
        self.ttft.merge(&other.ttft)?;
        self.itl.merge(&other.itl)?;
        self.tpot.merge(&other.tpot)?;
        self.e2e.merge(&other.e2e)
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
    /// The same histograms losslessly, for `inferbench merge`; absent in results written
    /// before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<ExactHistograms>,
}

/// Each latency's HDR histogram as HdrHistogram's V2 serialisation in base64 (microseconds,
/// 3 significant digits); None where nothing was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactHistograms {
    pub ttft: Option<String>,
    pub itl: Option<String>,
    pub tpot: Option<String>,
    pub e2e: Option<String>,
}

impl ExactHistograms {
    pub fn of(&self, latency: Latency) -> Option<&str> {
        match latency {
            Latency::Ttft => self.ttft.as_deref(),
            Latency::Itl => self.itl.as_deref(),
            Latency::Tpot => self.tpot.as_deref(),
            Latency::E2e => self.e2e.as_deref(),
        }
    }
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
