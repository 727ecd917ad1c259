//! The load generator: drives an OpenAI-compatible, TGI or generic JSON server with closed-
//! or open-loop load, one scenario per concurrency or request rate, and writes the same kind
//! of result files as every other run (kind "http").

pub mod backend;
pub mod breaking;
pub mod client;
pub mod load;
pub mod merge;
pub mod plan;
pub mod scrape;
pub mod sse;
pub mod stats;
pub mod windows;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::device::MachineInfo;
use crate::exit::usage;
use crate::model::TextTokenizer;
use crate::report::http::{
    self as result, HttpRun, HttpScenario, LoadShape, Slo, SweepSummary, TargetInfo, WorkloadInfo,
};
use crate::results::{now_rfc3339, RunDir, RunHeader};
use crate::workload::arrival::{ArrivalKind, ArrivalProcess};
use crate::workload::prompts::Prompt;
use backend::Backend;

/// Everything one `inferbench load` needs.
pub struct LoadRequest {
    /// The server's base address, e.g. http://127.0.0.1:8000.
    pub base_url: String,
    /// The endpoint path; None: the backend's own.
    pub path: Option<String>,
    /// The backend; an empty model is asked of the server's /v1/models.
    pub backend: Backend,
    pub api_key: Option<String>,
    pub prompts: Vec<Prompt>,
    pub workload_source: String,
    /// Multi-turn: each conversation's turns as a range of `prompts`; empty otherwise.
    pub conversations: Vec<std::ops::Range<usize>>,
    /// Multi-turn: the pause between an answer and the next turn.
    pub think_time: Duration,
    /// Where the server's Prometheus metrics are scraped during each scenario.
    pub server_metrics: ServerMetricsChoice,
    pub scrape_interval: Duration,
    pub tokenizer: Option<(String, TextTokenizer)>,
    pub units_per_request: Option<f64>,
    pub shapes: Vec<LoadShape>,
    /// Requests per scenario (or per sweep step / probe run set).
    pub requests: u64,
    /// Or, instead, a time per scenario.
    pub duration: Option<Duration>,
    /// Warm-up requests before each scenario; None: as many as the concurrency (closed
    /// loop), 1 otherwise.
    pub warmup: Option<u64>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: usize,
    pub slo: Vec<Slo>,
    pub sweep: Option<SweepSettings>,
    pub breaking_point: Option<breaking::BreakingSettings>,
    pub seed: u64,
    pub output: PathBuf,
    pub run_id: Option<String>,
    pub interrupt: Arc<AtomicBool>,
    /// One worker of a plan: `shapes` are this worker's share of the plan's.
    pub worker: Option<plan::WorkerRole>,
    /// Threads of the client's runtime; None: one per core (at least 2).
    pub client_threads: Option<usize>,
}

/// `--server-metrics`: the target's /metrics when it answers with Prometheus text (the
/// default), a URL given, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMetricsChoice {
    Auto,
    Off,
    Url(String),
}

/// The metrics URL to scrape, said on standard error either way.
async fn metrics_url(
    choice: &ServerMetricsChoice,
    client: &reqwest::Client,
    base: &reqwest::Url,
    interval: Duration,
) -> Result<Option<reqwest::Url>> {
    let url = match choice {
        ServerMetricsChoice::Off => return Ok(None),
        ServerMetricsChoice::Auto => base.join("metrics")?,
        ServerMetricsChoice::Url(text) => reqwest::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| usage(format!("--server-metrics {text}: not an http(s) URL")))?,
    };
    let first = scrape::fetch(client, &url, Duration::from_secs(3))
        .await
        .and_then(|text| scrape::parse(&text).map(|r| r.len()));
    let every = humantime::format_duration(interval);
    match (first, choice) {
        (Ok(series), _) => {
            eprintln!("server metrics: {url}, {series} series, scraped every {every}");
            Ok(Some(url))
        }
        (Err(why), ServerMetricsChoice::Auto) => {
            eprintln!(
                "server metrics: none ({why}); --server-metrics URL names them, --server-metrics none says not to look"
            );
            Ok(None)
        }
        (Err(why), _) => {
            eprintln!("warning: server metrics: {why}; scraping every {every} anyway, failures counted per scenario");
            Ok(Some(url))
        }
    }
}

/// Whether the server runs on this machine (a loopback address or localhost).
fn is_local(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// NVML telemetry of this machine's GPU 0 when the server is local and a GPU is there.
fn local_gpu_telemetry(base: &reqwest::Url) -> Option<crate::telemetry::Telemetry> {
    if !is_local(base) {
        return None;
    }
    let telemetry =
        crate::telemetry::Telemetry::for_device("cuda:0", crate::telemetry::DEFAULT_INTERVAL);
    telemetry.has_gpu().then(|| {
        eprintln!(
            "telemetry (the server is on this machine): {}",
            telemetry.describe()
        );
        telemetry
    })
}

/// Raise the request rate step by step until throughput stops growing or a target breaks.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    pub start_rate: f64,
    pub factor: f64,
    pub max_steps: u32,
    /// A step must beat the best throughput so far by this share to count as growth.
    pub min_growth: f64,
    pub arrival: ArrivalKind,
    pub burstiness: f64,
    pub max_concurrency: u32,
}

pub struct LoadOutcome {
    pub dir: PathBuf,
    pub result: HttpRun,
}

/// Run every scenario, writing run.json and scenarios.csv after each.
pub fn run(request: LoadRequest) -> Result<LoadOutcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(request.client_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        }))
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(request))
}

async fn run_async(mut request: LoadRequest) -> Result<LoadOutcome> {
    let base = reqwest::Url::parse(&request.base_url)
        .map_err(|e| usage(format!("--url {}: not a URL ({e})", request.base_url)))?;
    if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
        return Err(usage(format!(
            "--url {}: give an http:// or https:// address with a host, e.g. http://127.0.0.1:8000",
            request.base_url
        )));
    }
    let path = request.path.clone().unwrap_or_else(|| {
        request
            .backend
            .kind
            .default_path(request.backend.stream)
            .into()
    });
    let url = base
        .join(&path)
        .with_context(|| format!("--path {path}: cannot join it to {base}"))?;
    let pool = request
        .shapes
        .iter()
        .map(|s| match s {
            LoadShape::Closed { concurrency } | LoadShape::Probe { concurrency, .. } => {
                *concurrency
            }
            LoadShape::Open {
                max_concurrency, ..
            }
            | LoadShape::Pattern {
                max_concurrency, ..
            } => *max_concurrency,
            LoadShape::UserPattern { pattern } => pattern.max_rate().ceil() as u32,
        })
        .max()
        .unwrap_or(1) as usize;
    let client = client::build_client(request.connect_timeout, pool)?;
    if request.backend.kind.is_openai() && request.backend.model.is_empty() {
        request.backend.model = discover_model(
            &client,
            &base,
            request.api_key.as_deref(),
            request.connect_timeout,
        )
        .await?;
        eprintln!("model: {} (from {}v1/models)", request.backend.model, base);
    }
    let target = Arc::new(client::Target {
        client,
        url: url.clone(),
        backend: request.backend.clone(),
        api_key: request.api_key.clone(),
        timeout: request.timeout,
        max_response_bytes: request.max_response_bytes,
        keep_text: !request.conversations.is_empty(),
    });

    let metrics_url = metrics_url(
        &request.server_metrics,
        &target.client,
        &base,
        request.scrape_interval,
    )
    .await?;
    let dir = RunDir::create(&request.output, request.run_id.as_deref(), "load")?;
    // A turn's prompt is its conversation so far, which only the server can count.
    let multi_turn = !request.conversations.is_empty();
    let prompt_tokens: Vec<Option<u64>> = request
        .prompts
        .iter()
        .map(|p| {
            if multi_turn {
                return None;
            }
            request
                .tokenizer
                .as_ref()
                .and_then(|(_, t)| t.encode(&p.text).ok())
                .map(|ids| ids.len() as u64)
        })
        .collect();
    let mut run = HttpRun {
        header: RunHeader::start(
            result::KIND,
            &dir.run_id(),
            now_rfc3339(),
            MachineInfo::collect(),
        ),
        target: TargetInfo {
            url: url.to_string(),
            backend: request.backend.kind.name().into(),
            stream: request.backend.stream,
            model: request
                .backend
                .kind
                .is_openai()
                .then(|| request.backend.model.clone()),
            api_key_sent: request.api_key.is_some(),
            timeout_s: request.timeout.as_secs_f64(),
            ignore_eos: request.backend.ignore_eos,
        },
        workload: WorkloadInfo {
            source: request.workload_source.clone(),
            prompts: request.prompts.len(),
            token_counting: "nothing yet".into(),
            units_per_request: request.units_per_request,
            seed: request.seed,
        },
        slo: request.slo.clone(),
        planned_scenarios: scenario_names(&request),
        scenarios: Vec::new(),
        sweep: None,
        breaking_point: None,
        worker: None,
        merged: None,
    };
    dir.save(&mut run)?;
    if let Some(role) = &request.worker {
        tokio::time::sleep(role.until_start()).await;
        run.worker = Some(role.started());
    }

    let ctx = RunContext {
        target,
        prompts: Arc::new(request.prompts.clone()),
        conversations: Arc::new(request.conversations.clone()),
        metrics_url,
        telemetry: local_gpu_telemetry(&base),
        prompt_tokens,
        max_tokens: request.prompts.iter().map(|p| p.max_tokens).collect(),
        request: &request,
    };
    let mut counted_by = std::collections::BTreeMap::new();
    for (shape, name) in request.shapes.iter().zip(scenario_names(&request)) {
        if request.interrupt.load(Ordering::SeqCst) {
            break;
        }
        let scenario = ctx.scenario(name, shape.clone(), &mut counted_by).await?;
        if scenario.requests == 0 && scenario.interrupted {
            break; // stopped during its warm-up: nothing to keep
        }
        record(&mut run, scenario, &counted_by, &dir)?;
    }
    if let Some(sweep) = &request.sweep {
        run_sweep(&ctx, sweep, &mut run, &mut counted_by, &dir).await?;
    }
    if let Some(settings) = &request.breaking_point {
        breaking::run(&ctx, settings, &mut run, &mut counted_by, &dir).await?;
    }
    dir.finish(&mut run, request.interrupt.load(Ordering::SeqCst))?;
    Ok(LoadOutcome {
        dir: dir.path().to_path_buf(),
        result: run,
    })
}

fn record(
    run: &mut HttpRun,
    scenario: HttpScenario,
    counted_by: &std::collections::BTreeMap<&'static str, u64>,
    dir: &RunDir,
) -> Result<()> {
    eprintln!("{}", summary_line(&scenario));
    run.scenarios.push(scenario);
    run.workload.token_counting = if counted_by.is_empty() {
        "nothing (no successful request)".into()
    } else {
        counted_by.keys().copied().collect::<Vec<_>>().join(" + ")
    };
    dir.save(run)
}

/// The scenarios' names: a worker names its shares after the plan's whole load, so every
/// worker's "c8" is its part of the same eight users.
fn scenario_names(request: &LoadRequest) -> Vec<String> {
    match &request.worker {
        Some(role) => role.full_shapes.iter().map(shape_name).collect(),
        None => request.shapes.iter().map(shape_name).collect(),
    }
}

pub fn shape_name(shape: &LoadShape) -> String {
    match shape {
        LoadShape::Closed { concurrency } => format!("c{concurrency}"),
        LoadShape::Open { arrival, .. } => arrival.label(),
        LoadShape::Probe { concurrency, .. } => format!("probe-c{concurrency}"),
        LoadShape::Pattern { pattern, .. } => pattern.label(),
        LoadShape::UserPattern { pattern } => format!("users-{}", pattern.label()),
    }
}

fn summary_line(s: &HttpScenario) -> String {
    let p = |v: &Option<crate::metrics::LatencySummary>| {
        v.as_ref()
            .map_or("-".into(), |l| format!("{:.1} ms", l.p50_ms))
    };
    let lengths = s.token_lengths.as_ref().map_or(String::new(), |t| {
        let p50 = |h: &crate::metrics::TokenHistogram| {
            h.quantile(0.5).map_or("-".into(), |v| v.to_string())
        };
        format!(", tokens in/out p50 {}/{}", p50(&t.input), p50(&t.output))
    });
    let cached = match s.cached_prompt_tokens {
        Some(c) if s.input_tokens > 0 => format!(
            ", {:.0}% of prompt tokens cached",
            100.0 * c as f64 / s.input_tokens as f64
        ),
        _ => String::new(),
    };
    let server = s
        .server_metrics
        .as_ref()
        .map_or(String::new(), server_words);
    let drift = s.e2e_drift.map_or(String::new(), |d| {
        format!(", E2E p50 drift ×{d:.2} (last tenth / first)")
    });
    format!(
        "{}: {}/{} ok, {:.2} req/s, {} out tok/s, TTFT p50 {}, E2E p50 {}{lengths}{cached}{drift}{server}{}",
        s.name,
        s.succeeded,
        s.requests,
        s.requests_per_second,
        s.output_tokens_per_second
            .map_or("-".into(), |v| format!("{v:.1}")),
        p(&s.latencies.ttft),
        p(&s.latencies.e2e),
        if s.failed > 0 {
            format!(
                ", errors: {}",
                s.errors
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    )
}

/// ", server max: running 8, waiting 3, KV cache 0.41" from the gauges that matter, and
/// the preemptions when there were any.
fn server_words(m: &crate::report::http::ServerMetrics) -> String {
    const SHOWN: &[(&str, &str)] = &[
        ("vllm:num_requests_running", "running"),
        ("vllm:num_requests_waiting", "waiting"),
        ("vllm:gpu_cache_usage_perc", "KV cache"),
        ("vllm:kv_cache_usage_perc", "KV cache"),
        ("tgi_queue_size", "queue"),
        ("tgi_batch_current_size", "batch"),
        ("inferbench_requests_running", "running"),
        ("inferbench_requests_waiting", "waiting"),
    ];
    let mut parts = Vec::new();
    for (name, word) in SHOWN {
        let max = m
            .gauges
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(*name))
            .map(|(_, g)| g.max)
            .fold(f64::NAN, f64::max);
        if !max.is_nan() {
            parts.push(format!(
                "{word} {}",
                crate::workload::arrival::trim_number(max)
            ));
        }
    }
    let preempted: f64 = m
        .counter_deltas
        .iter()
        .filter(|(k, _)| k.starts_with("vllm:num_preemptions_total"))
        .map(|(_, v)| v)
        .sum();
    if preempted > 0.0 {
        parts.push(format!("preemptions {preempted}"));
    }
    if m.failed_scrapes > 0 {
        parts.push(format!("{} failed scrapes", m.failed_scrapes));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", server max: {}", parts.join(", "))
    }
}

async fn discover_model(
    client: &reqwest::Client,
    base: &reqwest::Url,
    api_key: Option<&str>,
    timeout: Duration,
) -> Result<String> {
    let url = base.join("v1/models")?;
    let mut req = client
        .get(url.clone())
        .timeout(timeout.max(Duration::from_secs(10)));
    if let Some(key) = api_key {
        req = req.bearer_auth(key);
    }
    let hint = "pass --model NAME";
    let response = req
        .send()
        .await
        .with_context(|| format!("GET {url} (to find the model name; {hint})"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status} (to find the model name; {hint})");
    }
    let v: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("GET {url}: not a JSON model list; {hint}"))?;
    v.pointer("/data/0/id")
        .and_then(|id| id.as_str())
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("GET {url}: no model listed in `data`; {hint}"))
}

/// What the scenarios of one run share.
struct RunContext<'a> {
    target: Arc<client::Target>,
    prompts: Arc<Vec<Prompt>>,
    /// Multi-turn: each conversation's turns, as ranges of `prompts`.
    conversations: Arc<Vec<std::ops::Range<usize>>>,
    /// The server's Prometheus metrics, scraped during each scenario.
    metrics_url: Option<reqwest::Url>,
    /// This machine's GPU, sampled during each scenario when the server runs here.
    telemetry: Option<crate::telemetry::Telemetry>,
    prompt_tokens: Vec<Option<u64>>,
    max_tokens: Vec<u32>,
    request: &'a LoadRequest,
}

impl RunContext<'_> {
    async fn scenario(
        &self,
        name: String,
        shape: LoadShape,
        counted_by: &mut std::collections::BTreeMap<&'static str, u64>,
    ) -> Result<HttpScenario> {
        let r = self.request;
        let started_at = now_rfc3339();
        let (warmup_concurrency, runs, per_run) = match &shape {
            LoadShape::Closed { concurrency } => (*concurrency, 1, r.requests),
            LoadShape::Open { .. } | LoadShape::Pattern { .. } => (1, 1, r.requests),
            LoadShape::UserPattern { .. } => (1, 1, r.requests),
            LoadShape::Probe { concurrency, runs } => {
                (*concurrency, *runs, u64::from(*concurrency))
            }
        };
        let warmup = r.warmup.unwrap_or(u64::from(warmup_concurrency));
        let mut warmup_failed = 0;
        if warmup > 0 {
            let mut agg = stats::Aggregator::new();
            let plan = load::Plan {
                target: &self.target,
                prompts: &self.prompts,
                requests: warmup,
                duration: None,
                interrupt: &r.interrupt,
                label: &format!("{name} warm-up"),
            };
            let users = warmup_concurrency.min(warmup as u32).max(1);
            load::closed_loop(&plan, users, |rec| {
                agg.add(&rec, &self.counting(), &[]);
            })
            .await;
            warmup_failed = agg.requests - agg.succeeded;
        }
        let mut agg = stats::Aggregator::new();
        let mut run_rates = Vec::new();
        let mut delayed = 0;
        let mut sent_span = None;
        let mut window: Option<(f64, f64)> = None;
        // Probe runs each restart the clock: their windows would overlap.
        let mut series = (runs == 1).then(windows::WindowRecorder::new);
        let before = self.telemetry.as_ref().map(|t| t.checkpoint());
        let scraper = match self.metrics_url.clone() {
            Some(url) => Some(
                scrape::Scraper::start(
                    self.target.client.clone(),
                    url,
                    r.scrape_interval,
                    tokio::time::Instant::now(),
                )
                .await,
            ),
            None => None,
        };
        for run_index in 0..runs {
            if r.interrupt.load(Ordering::SeqCst) {
                break;
            }
            // This run's share of the scenario's totals, for the probe's per-run throughput.
            let before = (agg.succeeded, agg.output_tokens);
            let mut span: Option<(Duration, Duration)> = None;
            let label = if runs > 1 {
                format!("{name} {}/{runs}", run_index + 1)
            } else {
                name.clone()
            };
            let counting = self.counting();
            // The loops time requests from their own start, a moment after this.
            let wall_start = plan::unix_now();
            let mut add = |rec: client::RequestRecord| {
                let (sent, ended) = (rec.sent_at, rec.ended_at());
                span = Some(span.map_or((sent, ended), |(a, b)| (a.min(sent), b.max(ended))));
                let (sent_s, ended_s) = (
                    wall_start + sent.as_secs_f64(),
                    wall_start + ended.as_secs_f64(),
                );
                window = Some(window.map_or((sent_s, ended_s), |(a, b): (f64, f64)| {
                    (a.min(sent_s), b.max(ended_s))
                }));
                crate::live::request(rec.live_latencies());
                let output = agg.add(&rec, &counting, &r.slo);
                if let Some(series) = series.as_mut() {
                    series.add(&rec, output);
                }
            };
            let plan = load::Plan {
                target: &self.target,
                prompts: &self.prompts,
                requests: per_run,
                // A pattern lasts as long as it says.
                duration: match &shape {
                    LoadShape::Pattern { pattern, .. } | LoadShape::UserPattern { pattern } => {
                        Some(pattern.duration())
                    }
                    _ => r.duration,
                },
                interrupt: &r.interrupt,
                label: &label,
            };
            let schedule = match &shape {
                LoadShape::Closed { concurrency } if !r.conversations.is_empty() => {
                    let conversations = load::Conversations {
                        turns: self.conversations.clone(),
                        think_time: r.think_time,
                    };
                    load::conversation_loop(&plan, *concurrency, &conversations, &mut add).await;
                    None
                }
                LoadShape::Closed { concurrency } | LoadShape::Probe { concurrency, .. } => {
                    load::closed_loop(&plan, *concurrency, &mut add).await;
                    None
                }
                LoadShape::UserPattern { pattern } => {
                    load::user_pattern_loop(&plan, pattern, &mut add).await;
                    None
                }
                LoadShape::Open {
                    arrival,
                    max_concurrency,
                } => Some((arrival.arrivals(r.seed)?, *max_concurrency)),
                LoadShape::Pattern {
                    pattern,
                    arrival,
                    burstiness,
                    max_concurrency,
                } => Some((
                    pattern.arrivals(*arrival, *burstiness, r.seed)?,
                    *max_concurrency,
                )),
            };
            if let Some((arrivals, max_concurrency)) = schedule {
                let open = load::open_loop(&plan, arrivals, max_concurrency, &mut add).await;
                delayed = open.delayed_by_cap;
                sent_span = Some((open.sent, open.send_span));
            }
            let seconds = span.map_or(0.0, |(first, last)| (last - first).as_secs_f64());
            if seconds > 0.0 {
                let (succeeded, tokens) = (agg.succeeded - before.0, agg.output_tokens - before.1);
                run_rates.push(match r.units_per_request {
                    Some(u) => succeeded as f64 * u / seconds,
                    None => tokens as f64 / seconds,
                });
            }
        }
        for (k, n) in &agg.counted_by {
            *counted_by.entry(*k).or_default() += n;
        }
        let server_metrics = match scraper {
            Some(s) => Some(s.finish().await),
            None => None,
        };
        let gpu_telemetry = match (&self.telemetry, before) {
            (Some(t), Some(before)) => Some(t.between(&name, &before, &t.checkpoint())),
            _ => None,
        };
        let f = agg.figures();
        let windows = series.map(windows::WindowRecorder::finish);
        let seconds = f.duration.as_secs_f64();
        let per_second = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
        let tokens_known = f.succeeded > 0 && r.units_per_request.is_none();
        Ok(HttpScenario {
            name,
            interrupted: r.interrupt.load(Ordering::SeqCst),
            started_at,
            duration_s: seconds,
            warmup_requests: warmup,
            warmup_failed,
            requests: f.requests,
            succeeded: f.succeeded,
            failed: f.failed,
            error_rate: if f.requests > 0 {
                f.failed as f64 / f.requests as f64
            } else {
                0.0
            },
            errors: f.errors,
            status_codes: f.status_codes,
            error_examples: f.error_examples,
            latencies: f.latencies,
            histograms: f.histograms,
            requests_per_second: per_second(f.succeeded as f64),
            input_tokens: f.input_tokens,
            output_tokens: f.output_tokens,
            input_tokens_per_second: (tokens_known && f.input_known)
                .then(|| per_second(f.input_tokens as f64)),
            output_tokens_per_second: tokens_known.then(|| per_second(f.output_tokens as f64)),
            units_per_second: r
                .units_per_request
                .map(|u| per_second(f.succeeded as f64 * u)),
            achieved_rate: sent_span.map(|(sent, span): (u64, Duration)| {
                if span.as_secs_f64() > 0.0 && sent > 1 {
                    (sent - 1) as f64 / span.as_secs_f64()
                } else {
                    0.0
                }
            }),
            delayed_by_cap: delayed,
            goodput: agg.goodput(&r.slo, seconds),
            throughput_runs: matches!(shape, LoadShape::Probe { .. })
                .then(|| crate::metrics::RateSummary::from_runs(run_rates))
                .flatten(),
            window: window.map(|(first, last)| result::TimeWindow {
                first_sent_unix_s: first,
                last_end_unix_s: last,
            }),
            good_requests: Some(f.good),
            token_lengths: f.token_lengths,
            cached_prompt_tokens: f.cached_prompt_tokens,
            e2e_drift: windows.as_deref().and_then(windows::drift),
            server_metrics,
            gpu_telemetry,
            windows,
            shape,
        })
    }

    fn counting(&self) -> stats::TokenCounting<'_> {
        stats::TokenCounting {
            tokenizer: self.request.tokenizer.as_ref().map(|(_, t)| t),
            prompt_tokens: &self.prompt_tokens,
            max_tokens: &self.max_tokens,
        }
    }
}

/// The throughput a sweep climbs: output tokens/s, units/s, or requests/s.
fn throughput(s: &HttpScenario) -> f64 {
    s.output_tokens_per_second
        .or(s.units_per_second)
        .unwrap_or(s.requests_per_second)
}

async fn run_sweep(
    ctx: &RunContext<'_>,
    sweep: &SweepSettings,
    run: &mut HttpRun,
    counted_by: &mut std::collections::BTreeMap<&'static str, u64>,
    dir: &RunDir,
) -> Result<()> {
    let mut rate = sweep.start_rate;
    let mut best: Option<(f64, f64)> = None; // (rate, throughput)
    let mut rates = Vec::new();
    let mut stopped_because = format!("it reached --sweep-steps {}", sweep.max_steps);
    for _ in 0..sweep.max_steps {
        if ctx.request.interrupt.load(Ordering::SeqCst) {
            stopped_because = "it was interrupted".into();
            break;
        }
        let shape = LoadShape::Open {
            arrival: ArrivalProcess {
                kind: sweep.arrival,
                rate,
                burstiness: sweep.burstiness,
            },
            max_concurrency: sweep.max_concurrency,
        };
        let name = format!("sweep-{}", shape_name(&shape));
        run.planned_scenarios.push(name.clone());
        let scenario = ctx.scenario(name, shape, counted_by).await?;
        if scenario.requests == 0 && scenario.interrupted {
            stopped_because = "it was interrupted".into();
            break;
        }
        rates.push(rate);
        let t = throughput(&scenario);
        let verdict = sweep_verdict(&scenario, t, best, sweep.min_growth, &ctx.request.slo);
        record(run, scenario, counted_by, dir)?;
        match verdict {
            StepVerdict::Grew => best = Some((rate, t)),
            StepVerdict::Stop(why) => {
                stopped_because = why;
                break;
            }
        }
        rate *= sweep.factor;
    }
    run.sweep = Some(SweepSummary {
        rates,
        saturation_rate: best.map(|b| b.0),
        saturation_throughput: best.map(|b| b.1),
        stopped_because,
    });
    Ok(())
}

enum StepVerdict {
    Grew,
    Stop(String),
}

/// Whether a sweep step still gains: errors over 1% or missed SLOs end the sweep (the
/// server is past saturation), so does throughput that no longer grows.
fn sweep_verdict(
    s: &HttpScenario,
    throughput: f64,
    best: Option<(f64, f64)>,
    min_growth: f64,
    slo: &[Slo],
) -> StepVerdict {
    if s.error_rate > 0.01 {
        return StepVerdict::Stop(format!(
            "the error rate reached {:.1}% at {}",
            s.error_rate * 100.0,
            s.name
        ));
    }
    if let Some(g) = s
        .goodput
        .as_ref()
        .filter(|g| !slo.is_empty() && g.fraction < 0.9)
    {
        return StepVerdict::Stop(format!(
            "only {:.0}% of requests met the SLOs at {}",
            g.fraction * 100.0,
            s.name
        ));
    }
    match best {
        Some((_, b)) if throughput < b * (1.0 + min_growth) => StepVerdict::Stop(format!(
            "throughput stopped growing at {} ({throughput:.1} vs best {b:.1}, under +{:.0}%)",
            s.name,
            min_growth * 100.0
        )),
        _ => StepVerdict::Grew,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_localhost_are_this_machine() {
        for (url, local) in [
            ("http://127.0.0.1:8000", true),
            ("http://localhost:8000", true),
            ("http://[::1]:8000", true),
            ("http://10.0.0.5:8000", false),
            ("https://api.example.com", false),
        ] {
            assert_eq!(is_local(&reqwest::Url::parse(url).unwrap()), local, "{url}");
        }
    }
}
