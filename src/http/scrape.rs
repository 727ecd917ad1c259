//! The server's own view during a scenario (`load --server-metrics`): its Prometheus
//! `/metrics` scraped every interval (parsed by the prometheus-parse crate), counters
//! reported as their change over the scenario, gauges as min/mean/max, and the series of
//! the names that matter for serving (vLLM, TGI, inferbench serve) kept point by point on
//! the scenario's clock, the same clock as its 1-second windows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use tokio::time::Instant;

use crate::report::http::{GaugeSummary, ServerMetrics};

/// Series kept point by point: what vLLM, TGI and `inferbench serve` say about their
/// queue, batch, cache and token counts.
pub const KNOWN: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:gpu_cache_usage_perc",
    "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_hits_total",
    "tgi_queue_size",
    "tgi_batch_current_size",
    "tgi_batch_current_max_tokens",
    "tgi_request_count",
    "inferbench_requests_running",
    "inferbench_requests_waiting",
    "inferbench_prompt_tokens_total",
    "inferbench_generation_tokens_total",
];

/// Most series summarised per scenario: a server exposing thousands is cut, and says so.
const MAX_SERIES: usize = 500;

/// Largest /metrics answer read.
const MAX_BYTES: usize = 16 << 20;

/// One scrape: series name (with labels) -> (value, is a counter).
pub type Reading = BTreeMap<String, (f64, bool)>;

/// prometheus-parse reads metric names as `\w+`, but the format allows colons, which vLLM
/// uses in every name (`vllm:num_requests_running`): names travel through it with their
/// colons spelt as this, and come back.
const COLON: &str = "__colon__";

/// The line with the colons of its metric name (not of its label values) spelt as COLON.
fn hide_colons(line: &str) -> String {
    let trimmed = line.trim_start();
    let (head, name_and_rest) = if let Some(rest) = trimmed
        .strip_prefix('#')
        .map(str::trim_start)
        .filter(|r| r.starts_with("HELP") || r.starts_with("TYPE"))
    {
        // "# TYPE name type": the name is the third word.
        let keyword = &rest[..4];
        (format!("# {keyword} "), rest[4..].trim_start())
    } else if trimmed.starts_with('#') {
        return line.to_string();
    } else {
        (String::new(), trimmed)
    };
    let end = name_and_rest
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(name_and_rest.len());
    let (name, rest) = name_and_rest.split_at(end);
    format!("{head}{}{rest}", name.replace(':', COLON))
}

/// Parse Prometheus text; an answer with no sample in it is an error that says what came.
pub fn parse(text: &str) -> Result<Reading, String> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(hide_colons(l))))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut out = Reading::new();
    for s in scrape.samples {
        let mut labels: Vec<(&String, &String)> = s.labels.iter().collect();
        labels.sort();
        let metric = s.metric.replace(COLON, ":");
        let key = if labels.is_empty() {
            metric.clone()
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{metric}{{{}}}", l.join(","))
        };
        let (value, counter) = match s.value {
            Value::Counter(v) => (v, true),
            Value::Gauge(v) => (v, false),
            Value::Untyped(v) => (
                v,
                ["_total", "_count", "_sum"]
                    .iter()
                    .any(|end| metric.ends_with(end)),
            ),
            // Histograms and summaries come as their own _count and _sum series.
            Value::Histogram(_) | Value::Summary(_) => continue,
        };
        out.insert(key, (value, counter));
    }
    if out.is_empty() {
        let start: String = text.trim_start().chars().take(40).collect();
        return Err(if text.trim().is_empty() {
            "an empty answer, not Prometheus text".into()
        } else {
            format!(
                "not Prometheus text (no sample in {} bytes starting {start:?})",
                text.len()
            )
        });
    }
    Ok(out)
}

/// Fold scrapes into a scenario's server metrics.
#[derive(Default)]
struct Log {
    scrapes: u64,
    failed: u64,
    errors: Vec<String>,
    first: BTreeMap<String, f64>,
    last: BTreeMap<String, f64>,
    gauges: BTreeMap<String, (f64, f64, f64, u64)>, // min, sum, max, count
    series: BTreeMap<String, Vec<[f64; 2]>>,
    cut: bool,
}

impl Log {
    fn add(&mut self, t: f64, reading: Result<Reading, String>) {
        let reading = match reading {
            Ok(r) => r,
            Err(e) => {
                self.failed += 1;
                if self.errors.len() < 5 && !self.errors.contains(&e) {
                    self.errors.push(e);
                }
                return;
            }
        };
        self.scrapes += 1;
        for (key, (value, counter)) in reading {
            if !self.first.contains_key(&key) && self.first.len() >= MAX_SERIES {
                self.cut = true;
                continue;
            }
            self.first.entry(key.clone()).or_insert(value);
            self.last.insert(key.clone(), value);
            if !counter {
                let g = self.gauges.entry(key.clone()).or_insert((
                    f64::INFINITY,
                    0.0,
                    f64::NEG_INFINITY,
                    0,
                ));
                *g = (g.0.min(value), g.1 + value, g.2.max(value), g.3 + 1);
            }
            let name = key.split('{').next().unwrap_or(&key);
            if KNOWN.contains(&name) {
                let t = (t * 1e3).round() / 1e3;
                self.series.entry(key).or_default().push([t, value]);
            }
        }
    }

    fn finish(self, url: String, interval: Duration) -> ServerMetrics {
        let mut counter_deltas = BTreeMap::new();
        let mut counters_reset = Vec::new();
        for (key, last) in &self.last {
            if self.gauges.contains_key(key) {
                continue;
            }
            let first = self.first.get(key).copied().unwrap_or(*last);
            // A counter that went down was reset (the server restarted): count from zero.
            let delta = if *last < first {
                counters_reset.push(key.clone());
                *last
            } else {
                last - first
            };
            counter_deltas.insert(key.clone(), delta);
        }
        ServerMetrics {
            url,
            interval_s: interval.as_secs_f64(),
            scrapes: self.scrapes,
            failed_scrapes: self.failed,
            errors: self.errors,
            counter_deltas,
            counters_reset,
            gauges: self
                .gauges
                .into_iter()
                .map(|(k, (min, sum, max, n))| {
                    (
                        k,
                        GaugeSummary {
                            min,
                            mean: sum / n as f64,
                            max,
                        },
                    )
                })
                .collect(),
            series: self.series,
            series_cut_at: self.cut.then_some(MAX_SERIES),
        }
    }
}

/// GET the metrics once: the text, or why not.
pub async fn fetch(
    client: &reqwest::Client,
    url: &reqwest::Url,
    timeout: Duration,
) -> Result<String, String> {
    let mut response = client
        .get(url.clone())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", super::client::describe(&e)))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {}", super::client::describe(&e)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(format!("GET {url}: an answer over {} MiB", MAX_BYTES >> 20));
        }
    }
    String::from_utf8(body).map_err(|_| format!("GET {url}: not UTF-8 text"))
}

/// Scraping in the background until `finish`.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Log>,
    url: reqwest::Url,
    interval: Duration,
}

impl Scraper {
    /// Scrape `url` once before returning (so the first reading precedes every request of
    /// the scenario), then every `interval` in the background, timed from `start`.
    pub async fn start(
        client: reqwest::Client,
        url: reqwest::Url,
        interval: Duration,
        start: Instant,
    ) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, target) = (stop.clone(), url.clone());
        let timeout = interval.max(Duration::from_secs(2));
        let scrape = move |client: reqwest::Client, target: reqwest::Url| async move {
            fetch(&client, &target, timeout)
                .await
                .and_then(|t| parse(&t).map_err(|e| format!("{target}: {e}")))
        };
        let mut log = Log::default();
        let mut next = Instant::now();
        log.add(
            start.elapsed().as_secs_f64(),
            scrape(client.clone(), target.clone()).await,
        );
        let task = tokio::spawn(async move {
            loop {
                next += interval;
                // Wake at the next tick, or at once when asked to stop (for the last scrape).
                while Instant::now() < next && !flag.load(Ordering::SeqCst) {
                    tokio::time::sleep((next - Instant::now()).min(Duration::from_millis(50)))
                        .await;
                }
                // A scrape begun after the stop was asked for is the "after" reading.
                let last = flag.load(Ordering::SeqCst);
                let at = start.elapsed().as_secs_f64();
                log.add(at, scrape(client.clone(), target.clone()).await);
                if last {
                    return log;
                }
            }
        });
        Scraper {
            stop,
            task,
            url,
            interval,
        }
    }

    /// One last scrape, then the summary.
    pub async fn finish(self) -> ServerMetrics {
        self.stop.store(true, Ordering::SeqCst);
        let log = self.task.await.unwrap_or_default();
        log.finish(self.url.to_string(), self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = "# HELP vllm:num_requests_running Number of requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name=\"m\"} 3.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name=\"m\"} 1200.0
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le=\"1.0\",model_name=\"m\"} 4.0
vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 5.0
vllm:e2e_request_latency_seconds_count{model_name=\"m\"} 5.0
vllm:e2e_request_latency_seconds_sum{model_name=\"m\"} 3.5
";

    #[test]
    fn counters_gauges_and_histogram_counts_are_told_apart() {
        let r = parse(VLLM).unwrap();
        assert_eq!(
            r["vllm:num_requests_running{model_name=\"m\"}"],
            (3.0, false)
        );
        assert_eq!(
            r["vllm:prompt_tokens_total{model_name=\"m\"}"],
            (1200.0, true)
        );
        assert_eq!(
            r["vllm:e2e_request_latency_seconds_count{model_name=\"m\"}"],
            (5.0, true)
        );
        assert!(!r.keys().any(|k| k.contains("_bucket")));
    }

    #[test]
    fn colons_in_names_survive_and_label_values_keep_theirs() {
        assert_eq!(
            hide_colons("vllm:x{url=\"http://a:1\"} 3"),
            "vllm__colon__x{url=\"http://a:1\"} 3"
        );
        assert_eq!(
            hide_colons("# TYPE vllm:x gauge"),
            "# TYPE vllm__colon__x gauge"
        );
        assert_eq!(
            hide_colons("# a comment: with colons"),
            "# a comment: with colons"
        );
        let r = parse("# TYPE vllm:x gauge\nvllm:x{url=\"http://a:1\"} 3\n").unwrap();
        assert_eq!(r["vllm:x{url=\"http://a:1\"}"], (3.0, false));
    }

    #[test]
    fn html_garbage_and_empty_answers_are_errors_saying_what_came() {
        let html = parse("<!DOCTYPE html><html><body>Not found</body></html>").unwrap_err();
        assert!(
            html.contains("not Prometheus text") && html.contains("<!DOCTYPE"),
            "{html}"
        );
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("\u{0}\u{1}garbage garbage").is_err());
        // Half-written lines of every kind: an error or a reading, never a panic.
        for text in [
            "{",
            "a{",
            "a{b} ",
            "a{b=} 1",
            "# TYPE",
            "# TYPE x histogram\nx_bucket{le=} 1",
            "# TYPE x histogram\nx_bucket{le=\"zz\"} 1",
            "# TYPE x summary\nx{quantile=\"a\"} q",
            "x 1 notatime",
            "x NaN",
            "x +Inf",
            ":::: 1",
            "# HELP",
            "x{a=\"b\",} 2",
        ] {
            let _ = parse(text);
        }
    }

    #[test]
    fn a_scenario_reports_counter_changes_gauge_ranges_and_known_series() {
        let mut log = Log::default();
        for (t, running, tokens) in [(0.0, 1.0, 100.0), (1.0, 5.0, 400.0), (2.0, 3.0, 700.0)] {
            let text = format!(
                "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running {running}\n\
                 # TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total {tokens}\n\
                 # TYPE other_total counter\nother_total {}\n",
                10.0 - t
            );
            log.add(t, parse(&text));
        }
        log.add(3.0, Err("GET x: HTTP 500".into()));
        let m = log.finish("http://x/metrics".into(), Duration::from_secs(1));
        assert_eq!((m.scrapes, m.failed_scrapes), (3, 1));
        assert_eq!(m.counter_deltas["vllm:prompt_tokens_total"], 600.0);
        let g = &m.gauges["vllm:num_requests_running"];
        assert_eq!((g.min, g.mean, g.max), (1.0, 3.0, 5.0));
        assert_eq!(m.series["vllm:num_requests_running"].len(), 3);
        assert!(
            !m.series.contains_key("other_total"),
            "only known names are kept point by point"
        );
        assert_eq!(m.counters_reset, ["other_total"]);
        assert_eq!(m.errors, ["GET x: HTTP 500"]);
    }
}
