//! A scenario as a time series of 1-second windows: load offered and sent, requests in
//! flight, completions, errors, output tokens and latency percentiles, so a ramp, a spike or
//! an hour-long soak shows how the server followed it. Latencies are kept per window of
//! completion in small HDR histograms, summarised and dropped once the run has moved on, so
//! memory stays flat however long the run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::client::RequestRecord;
pub use crate::report::http::Window;

/// Windows are this long.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Latencies of the requests that ended in one window, until it is summarised.
#[derive(Default)]
struct OpenLatencies {
    ttft: Option<Histogram<u32>>,
    e2e: Option<Histogram<u32>>,
}

/// Folds records into windows as they arrive. Counts are a few numbers a window, kept for
/// the whole run; latency histograms only for the windows still receiving records.
#[derive(Default)]
pub struct WindowRecorder {
    windows: Vec<Window>,
    open: BTreeMap<u64, OpenLatencies>,
    /// Windows before this one have their latencies summarised.
    closed_below: u64,
}

fn index(at: Duration) -> u64 {
    at.as_secs()
}

fn histogram() -> Option<Histogram<u32>> {
    // 2 significant digits (1% error) from 1 µs to an hour: a few KiB a window.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).ok()
}

fn record(h: &mut Option<Histogram<u32>>, d: Duration) {
    if h.is_none() {
        *h = histogram();
    }
    if let Some(h) = h {
        let _ = h.record((d.as_micros() as u64).clamp(1, 3_600_000_000));
    }
}

fn quantile_ms(h: &Option<Histogram<u32>>, q: f64) -> Option<f64> {
    h.as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(q) as f64 / 1e3)
}

impl WindowRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    fn at(&mut self, i: u64) -> &mut Window {
        while self.windows.len() as u64 <= i {
            let t = self.windows.len() as u64;
            self.windows.push(Window {
                t,
                ..Default::default()
            });
        }
        &mut self.windows[i as usize]
    }

    pub fn add(&mut self, r: &RequestRecord, output_tokens: u64) {
        let end = r.ended_at();
        self.at(index(r.scheduled_at)).offered += 1;
        self.at(index(r.sent_at)).sent += 1;
        // Spread the request's time in flight over the windows it spans.
        let (mut from, to) = (r.sent_at, end);
        while from < to {
            let i = index(from);
            let window_end = Duration::from_secs(i + 1);
            let piece = to.min(window_end) - from;
            self.at(i).in_flight += piece.as_secs_f64() / WINDOW.as_secs_f64();
            from = window_end;
        }
        let i = index(end);
        let w = self.at(i);
        match &r.outcome {
            Ok(_) => {
                w.succeeded += 1;
                w.output_tokens += output_tokens;
            }
            Err(_) => w.failed += 1,
        }
        if let Ok(s) = &r.outcome {
            // A request ending in a window already summarised (records can arrive a little
            // out of order) joins the earliest open one.
            let open = self.open.entry(i.max(self.closed_below)).or_default();
            if let Some(ttft) = s.ttft {
                record(&mut open.ttft, ttft);
            }
            record(&mut open.e2e, s.e2e);
        }
        // Records arrive about in order of their end: windows well behind it are complete.
        while let Some((&first, _)) = self.open.first_key_value() {
            if first + 2 >= i {
                break;
            }
            self.close_first();
        }
    }

    fn close_first(&mut self) {
        if let Some((i, open)) = self.open.pop_first() {
            let w = self.at(i);
            w.ttft_p50_ms = quantile_ms(&open.ttft, 0.5);
            w.ttft_p95_ms = quantile_ms(&open.ttft, 0.95);
            w.e2e_p50_ms = quantile_ms(&open.e2e, 0.5);
            w.e2e_p95_ms = quantile_ms(&open.e2e, 0.95);
            w.e2e_p99_ms = quantile_ms(&open.e2e, 0.99);
            self.closed_below = i + 1;
        }
    }

    /// Every window, in order, from the scenario's start to its last end.
    pub fn finish(mut self) -> Vec<Window> {
        while !self.open.is_empty() {
            self.close_first();
        }
        self.windows
    }
}

/// Drift over a long run: the E2E p50 of the last tenth of the windows over the first
/// tenth's (mean of the windows' p50s); None when too short to say.
pub fn drift(windows: &[Window]) -> Option<f64> {
    let with_latency: Vec<f64> = windows.iter().filter_map(|w| w.e2e_p50_ms).collect();
    let tenth = with_latency.len() / 10;
    if tenth < 2 {
        return None;
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (first, last) = (
        mean(&with_latency[..tenth]),
        mean(&with_latency[with_latency.len() - tenth..]),
    );
    (first > 0.0).then(|| last / first)
}

/// Add workers' series window by window (their clocks start together); percentiles cannot
/// be added, so a merged window keeps the highest worker's (a bound, said in the report).
pub fn merge(series: &[&[Window]]) -> Vec<Window> {
    let mut out: BTreeMap<u64, Window> = BTreeMap::new();
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    for windows in series {
        for w in *windows {
            let m = out.entry(w.t).or_insert_with(|| Window {
                t: w.t,
                ..Default::default()
            });
            m.offered += w.offered;
            m.sent += w.sent;
            m.in_flight += w.in_flight;
            m.succeeded += w.succeeded;
            m.failed += w.failed;
            m.output_tokens += w.output_tokens;
            m.ttft_p50_ms = max(m.ttft_p50_ms, w.ttft_p50_ms);
            m.ttft_p95_ms = max(m.ttft_p95_ms, w.ttft_p95_ms);
            m.e2e_p50_ms = max(m.e2e_p50_ms, w.e2e_p50_ms);
            m.e2e_p95_ms = max(m.e2e_p95_ms, w.e2e_p95_ms);
            m.e2e_p99_ms = max(m.e2e_p99_ms, w.e2e_p99_ms);
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::backend::Usage;
    use super::super::client::{ErrorClass, Failure, Success};
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn ok(due: u64, sent: u64, e2e: u64) -> RequestRecord {
        RequestRecord {
            scheduled_at: ms(due),
            sent_at: ms(sent),
            prompt_index: 0,
            outcome: Ok(Success {
                ttft: Some(ms(e2e / 2)),
                arrivals: Vec::new(),
                e2e: ms(e2e),
                usage: Usage::default(),
                text_events: 1,
                text_for_counting: None,
            }),
        }
    }

    #[test]
    fn windows_count_by_due_sent_and_end_time_and_spread_in_flight() {
        let mut w = WindowRecorder::new();
        // Due at 0.9 s, sent at 1.2 s (waited for the cap), ends at 1.7 s.
        w.add(&ok(900, 1200, 500), 4);
        // 0.5 s to 2.5 s in flight: half of window 0, all of 1, half of 2.
        w.add(&ok(500, 500, 2000), 2);
        w.add(
            &RequestRecord {
                scheduled_at: ms(3100),
                sent_at: ms(3100),
                prompt_index: 0,
                outcome: Err(Failure {
                    class: ErrorClass::Timeout,
                    status: None,
                    message: "slow".into(),
                    after: ms(100),
                }),
            },
            0,
        );
        let s = w.finish();
        assert_eq!(s.iter().map(|w| w.t).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!((s[0].offered, s[0].sent), (2, 1));
        assert_eq!((s[1].offered, s[1].sent), (0, 1));
        assert!((s[0].in_flight - 0.5).abs() < 1e-9, "{}", s[0].in_flight);
        assert!((s[1].in_flight - 1.5).abs() < 1e-9, "{}", s[1].in_flight);
        assert!((s[2].in_flight - 0.5).abs() < 1e-9);
        assert_eq!((s[1].succeeded, s[1].output_tokens), (1, 4));
        assert!((s[1].e2e_p50_ms.unwrap() - 500.0).abs() < 5.0);
        assert_eq!((s[2].succeeded, s[3].failed), (1, 1));
        assert_eq!(s[3].e2e_p50_ms, None);
    }

    #[test]
    fn a_long_run_keeps_few_windows_open_and_no_gaps() {
        let mut w = WindowRecorder::new();
        for i in 0..600u64 {
            w.add(&ok(i * 100, i * 100, 50), 1);
            assert!(w.open.len() <= 4, "{} open at {i}", w.open.len());
        }
        // Then nothing for 5 s, then one more.
        w.add(&ok(65_000, 65_000, 50), 1);
        let s = w.finish();
        assert_eq!(s.len(), 66);
        assert!(s.iter().enumerate().all(|(i, w)| w.t == i as u64));
        assert_eq!(s[10].offered, 10);
        assert_eq!(s[62].offered, 0);
    }

    #[test]
    fn drift_compares_the_last_tenth_with_the_first() {
        let series: Vec<Window> = (0..40)
            .map(|t| Window {
                t,
                e2e_p50_ms: Some(if t < 20 { 100.0 } else { 150.0 }),
                ..Default::default()
            })
            .collect();
        assert!((drift(&series).unwrap() - 1.5).abs() < 1e-9);
        assert_eq!(drift(&series[..10]), None);
    }

    #[test]
    fn merged_series_add_counts_and_keep_the_worst_percentile() {
        let a = [Window {
            t: 0,
            sent: 3,
            e2e_p95_ms: Some(10.0),
            ..Default::default()
        }];
        let b = [
            Window {
                t: 0,
                sent: 2,
                e2e_p95_ms: Some(12.0),
                ..Default::default()
            },
            Window {
                t: 1,
                sent: 1,
                ..Default::default()
            },
        ];
        let m = merge(&[&a, &b]);
        assert_eq!((m.len(), m[0].sent, m[0].e2e_p95_ms), (2, 5, Some(12.0)));
    }
}
