//! The server's Prometheus metrics (text exposition format 0.0.4): request counts by
//! endpoint and status, tokens, queue depth, and latency histograms.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if s <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub ttft: Histogram,
    pub e2e: Histogram,
    pub queue_time: Histogram,
}

impl Metrics {
    pub fn count_request(&self, endpoint: &'static str, status: u16) {
        if status >= 400 {
            crate::live::request(None);
        }
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((endpoint, status)).or_default() += 1;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP inferbench_requests_total Requests answered, by endpoint and HTTP status.\n\
             # TYPE inferbench_requests_total counter"
        );
        if let Ok(map) = self.requests.lock() {
            for ((endpoint, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "inferbench_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        for (name, help, kind, value) in [
            (
                "inferbench_prompt_tokens_total",
                "Prompt tokens processed.",
                "counter",
                self.prompt_tokens.load(Ordering::Relaxed),
            ),
            (
                "inferbench_generation_tokens_total",
                "Tokens generated.",
                "counter",
                self.generation_tokens.load(Ordering::Relaxed),
            ),
            (
                "inferbench_requests_waiting",
                "Requests queued for the engine.",
                "gauge",
                self.waiting.load(Ordering::Relaxed) as u64,
            ),
            (
                "inferbench_requests_running",
                "Requests being generated.",
                "gauge",
                self.running.load(Ordering::Relaxed) as u64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        self.ttft.render(
            &mut out,
            "inferbench_time_to_first_token_seconds",
            "Request received to first generated token.",
        );
        self.e2e.render(
            &mut out,
            "inferbench_e2e_request_latency_seconds",
            "Request received to last generated token.",
        );
        self.queue_time.render(
            &mut out,
            "inferbench_queue_time_seconds",
            "Time a request waited for the engine.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_gauges_and_cumulative_buckets() {
        let m = Metrics::default();
        m.count_request("completions", 200);
        m.count_request("completions", 200);
        m.ttft.observe(Duration::from_millis(30));
        m.ttft.observe(Duration::from_secs(3));
        let text = m.render();
        assert!(
            text.contains("inferbench_requests_total{endpoint=\"completions\",status=\"200\"} 2")
        );
        assert!(text.contains("inferbench_time_to_first_token_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("inferbench_time_to_first_token_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("inferbench_time_to_first_token_seconds_count 2"));
        assert!(text.contains("# TYPE inferbench_requests_waiting gauge"));
    }
}
