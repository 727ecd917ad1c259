//! When each generated token became available, and the latencies that follow from it.

use std::time::Duration;

use serde::Serialize;

/// Timestamps of one generation, measured from the start of prefill.
/// Step 0 is the first sampled token (prefill); step k > 0 is the k-th decode step.
/// Every row of a batch gets its token of a step at the same instant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub step_times: Vec<Duration>,
    /// Tokens generated at each step (rows still running).
    pub tokens_per_step: Vec<usize>,
}

impl Timeline {
    pub fn push(&mut self, at: Duration, tokens: usize) {
        self.step_times.push(at);
        self.tokens_per_step.push(tokens);
    }

    /// Time to first token: prefill start to the first sampled token.
    pub fn ttft(&self) -> Option<Duration> {
        self.step_times.first().copied()
    }

    /// Gaps between consecutive steps: the inter-token latency each row saw.
    pub fn inter_token_latencies(&self) -> Vec<Duration> {
        self.step_times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Time from the first token to the last.
    pub fn decode_time(&self) -> Duration {
        match (self.step_times.first(), self.step_times.last()) {
            (Some(a), Some(b)) => *b - *a,
            _ => Duration::ZERO,
        }
    }

    /// Tokens generated after the first step.
    pub fn decode_tokens(&self) -> usize {
        self.tokens_per_step.iter().skip(1).sum()
    }

    pub fn total_tokens(&self) -> usize {
        self.tokens_per_step.iter().sum()
    }

    /// Decode throughput: tokens of the decode steps over their time (None with < 2 steps).
    pub fn decode_tokens_per_second(&self) -> Option<f64> {
        let t = self.decode_time().as_secs_f64();
        (self.decode_tokens() > 0 && t > 0.0).then(|| self.decode_tokens() as f64 / t)
    }

    /// End-to-end latency: prefill start to the last token.
    pub fn end_to_end(&self) -> Duration {
        self.step_times.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn derives_ttft_itl_and_throughput() {
        let mut t = Timeline::default();
        t.push(ms(100), 4);
        t.push(ms(150), 4);
        t.push(ms(250), 2);
        assert_eq!(t.ttft(), Some(ms(100)));
        assert_eq!(t.inter_token_latencies(), vec![ms(50), ms(100)]);
        assert_eq!(t.decode_tokens(), 6);
        assert_eq!(t.total_tokens(), 10);
        assert_eq!(t.decode_time(), ms(150));
        let tps = t.decode_tokens_per_second().unwrap();
        assert!((tps - 40.0).abs() < 1e-9, "{tps}");
        assert_eq!(t.end_to_end(), ms(250));
    }

    #[test]
    fn single_step_has_no_decode_rate() {
        let mut t = Timeline::default();
        t.push(ms(10), 1);
        assert_eq!(t.decode_tokens_per_second(), None);
        assert!(t.inter_token_latencies().is_empty());
    }
}
