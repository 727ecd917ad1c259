//! `inferbench load`: load-test a serving endpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Args;

use crate::exit::{as_usage, usage, Outcome};
use crate::http::{self, backend::Backend, backend::BackendKind, LoadRequest};
use crate::model::{self, ModelRef, TextTokenizer};
use crate::report::{self, http::LoadShape};
use crate::workload::arrival::{ArrivalKind, ArrivalProcess};
use crate::workload::dataset::Workload;
use crate::workload::dataset::{parse_dataset, Dataset, WorkloadSpec};
use crate::workload::lengths::LengthDist;
use crate::workload::pattern::Pattern;
use crate::workload::trace;

/// A replay's prompts, and the tokenizer that sized them.
type ReplayWorkload = (Workload, Option<(String, TextTokenizer)>);

/// Most users a `--users` pattern may reach.
const MAX_USERS: u32 = 100_000;

/// `--pattern`: how the offered load changes over a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternKind {
    Steady,
    Ramp,
    RampDown,
    Step,
    Spike,
    Soak,
    Replay(PathBuf),
}

impl PatternKind {
    fn name(&self) -> &'static str {
        match self {
            PatternKind::Steady => "steady",
            PatternKind::Ramp => "ramp",
            PatternKind::RampDown => "ramp-down",
            PatternKind::Step => "step",
            PatternKind::Spike => "spike",
            PatternKind::Soak => "soak",
            PatternKind::Replay(_) => "replay",
        }
    }

    fn parse(text: &str) -> Result<PatternKind, String> {
        Ok(match text {
            "steady" => PatternKind::Steady,
            "ramp" => PatternKind::Ramp,
            "ramp-down" => PatternKind::RampDown,
            "step" => PatternKind::Step,
            "spike" => PatternKind::Spike,
            "soak" => PatternKind::Soak,
            _ => match text.strip_prefix("replay:") {
                Some(file) if !file.is_empty() => PatternKind::Replay(file.into()),
                _ => {
                    return Err(
                        "give steady, ramp, ramp-down, step, spike, soak or replay:FILE".into(),
                    )
                }
            },
        })
    }
}

pub const HELP: &str = "Load-test a serving endpoint with the metrics of the in-process \
runs, timed on the client as the bytes arrive.\n\n\
Backends: openai-completions (/v1/completions, default), openai-chat (/v1/chat/completions), \
tgi (/generate, /generate_stream with --stream), generic (any JSON POST: --body with \
\"{prompt}\" where the prompt goes, --path, --units-per-request). With --stream, OpenAI \
requests ask for usage in the last chunk (stream_options.include_usage). The model name is \
asked of GET /v1/models when --model is not given. An API key comes from --api-key or \
OPENAI_API_KEY and is sent as a Bearer token; it is never written anywhere.\n\n\
Workload (--dataset): jsonl:FILE or --prompts FILE (one {\"prompt\", \"max_tokens\", \
\"temperature\"} per line; default: fixtures/prompts.jsonl, built in), used in turn; \
sharegpt:FILE (a ShareGPT JSON file: each conversation's first human turn, asking for as many \
tokens as its recorded answer has, conversations under 4 or over 1024/2048 tokens left out, \
chosen in a --seed order, as vLLM's benchmark); random (or just --input-tokens N \
--output-tokens M): prompts of N tokens asking for M, varied with --input-spread 0.5 (±50%) \
or drawn from --input-dist normal:512:128 (same for output). --prefix-shared 4:256 opens each \
prompt with one of 4 shared 256-token prefixes, for prefix caching. Token lengths are by \
--tokenizer (default: the default model's). Add --ignore-eos for servers that support it \
(vLLM) to get the asked lengths. run.json records the lengths actually sent and answered \
(token_lengths) and the server's cached prompt tokens when it reports them.\n\n\
Load: -c 1,4,16 runs one closed-loop scenario per concurrency (each user sends its next \
request when the last is answered); --rate 2,8,inf runs one open-loop scenario per rate \
(req/s; --arrival poisson (default), constant or gamma with --burstiness, below 1 burstier), \
at most --max-concurrency in flight. Each scenario sends -n requests (default 64) or runs \
for --duration, after --warmup requests (default: one per user) reported apart. --sweep \
raises an open-loop rate from --sweep-start by --sweep-factor until throughput grows less \
than --sweep-min-growth, errors pass 1% or fewer than 90% of requests meet the SLOs: the \
best step is the saturation point. --probe releases --probe-concurrency requests at once, \
--probe-runs times, and reports the best output tokens/s (units/s for generic). \
--breaking-point raises the rate the same way until a level breaks (errors over \
--max-error-rate, 1% by default there; over 10% of requests missing the SLOs, waiting for \
--max-concurrency, or answers falling 10% behind the sends), tries --breaking-refine levels in between, and reports the \
maximum sustainable load and the first that broke (exit 1 when no level held).\n\n\
Patterns over time (--pattern, open loop, one scenario): ramp (--from to --to req/s over \
--duration), ramp-down (then back over another --duration), step (--steps levels from --from \
to --to, each --step-duration), spike (--rate with bursts of --spike-rate lasting \
--spike-duration every --spike-every, for --duration), soak (--rate for a long --duration; \
the E2E drift, last tenth of the run over the first, is reported); with --users, ramp, \
ramp-down and step count closed-loop users instead of req/s. Arrivals follow the \
pattern with the --arrival process. Every scenario records 1-second windows in run.json \
(offered and sent requests, mean in flight, completions, errors, output tokens, TTFT and E2E \
percentiles).\n\n\
Metrics per scenario: TTFT (request to first text), ITL (gaps between reads that carried \
text), TPOT ((E2E - TTFT) / (tokens - 1)), E2E: min/mean/p50/p90/p95/p99/max/sd from HDR \
histograms; requests/s, input and output tokens/s (the server's usage when given, else \
--tokenizer, else stream events); goodput against --slo ttft=200ms,tpot=50ms (also itl, \
e2e); errors by class: connect, timeout, http_status (with codes), disconnected, malformed \
(bad JSON or SSE, no [DONE], over --max-response-bytes), server_error (an error object in a \
2xx answer). Every request is accounted for.\n\n\
Results go to OUTPUT/RUN_ID/run.json (kind \"http\") and scenarios.csv, rewritten after \
every scenario; `inferbench compare` compares two such runs (p95 +20% or an error rate over \
1% fails). Ctrl-C stops sending, lets requests in flight finish, and keeps what was measured.\n\n\
Several clients: --workers N splits the load over N processes on this machine (each its share \
of users, rate and requests, started together) and merges their runs exactly (histograms \
added); --plan FILE --worker-index I runs one worker's share of a plan anywhere (what \
`inferbench k8s` pods run); `inferbench merge` combines such runs.\n\n\
Exit codes: 0 complete, 1 error (or a scenario whose error rate is above \
--max-error-rate), 2 bad command line, 130 interrupted.";

#[derive(Args)]
pub struct LoadArgs {
    /// The server's base address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// The API the server speaks.
    #[arg(long, value_enum, default_value = "openai-completions")]
    backend: BackendKind,
    /// The endpoint path (default: the backend's, e.g. /v1/completions).
    #[arg(long)]
    path: Option<String>,
    /// The `model` field of OpenAI requests (default: the first of GET /v1/models).
    #[arg(long)]
    model: Option<String>,
    /// Stream the answers (SSE): TTFT, ITL and TPOT need it.
    #[arg(long)]
    stream: bool,
    /// API key sent as `Authorization: Bearer`; never written to any output.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub(super) api_key: Option<String>,
    /// Prompts file (JSONL: {"prompt", "max_tokens", "temperature"} per line); the same as
    /// --dataset jsonl:FILE.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input_tokens", "dataset"])]
    prompts: Option<PathBuf>,
    /// Where prompts come from: sharegpt:FILE (first human turn of each conversation,
    /// max_tokens the recorded answer's length, as vLLM's benchmark), jsonl:FILE, or random
    /// (lengths from --input-tokens/--input-spread or --input-dist, same for output).
    #[arg(long, value_name = "KIND[:FILE]")]
    dataset: Option<String>,
    /// Random prompts of this many tokens (by --tokenizer); implies --dataset random.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    input_tokens: Option<u32>,
    /// Tokens each random prompt asks for.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    output_tokens: Option<u32>,
    /// Vary --input-tokens uniformly by this share (0.5: ±50%).
    #[arg(long, value_name = "SHARE")]
    input_spread: Option<f64>,
    /// Vary --output-tokens uniformly by this share (0.5: ±50%).
    #[arg(long, value_name = "SHARE")]
    output_spread: Option<f64>,
    /// Random prompt lengths from a distribution instead: fixed:N, uniform:MIN:MAX or
    /// normal:MEAN:SD.
    #[arg(long, value_name = "DIST", conflicts_with = "input_tokens")]
    input_dist: Option<String>,
    /// Random answer lengths from a distribution instead of --output-tokens.
    #[arg(long, value_name = "DIST", conflicts_with = "output_tokens")]
    output_dist: Option<String>,
    /// The server's Prometheus metrics to scrape during each scenario (default: the
    /// target's /metrics when it answers with Prometheus text; `none`: do not look).
    #[arg(long, value_name = "URL|none")]
    server_metrics: Option<String>,
    /// Time between scrapes of --server-metrics.
    #[arg(long, default_value = "1s", value_parser = parse_scrape_interval)]
    scrape_interval: std::time::Duration,
    /// Closed loop: each user holds conversations of this many turns, every request carrying
    /// the conversation so far (chat: as messages; other APIs: as a User/Assistant
    /// transcript) and the server's real answers; ShareGPT conversations bring their own
    /// later turns, other datasets use their prompts in turn.
    #[arg(long, value_name = "TURNS", value_parser = clap::value_parser!(u32).range(2..=1000))]
    multi_turn: Option<u32>,
    /// With --multi-turn: the pause between an answer and the user's next turn.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    think_time: std::time::Duration,
    /// Open each prompt with one of N distinct shared prefixes of LEN tokens (prompt i gets
    /// prefix i mod N), to measure a server's prefix caching.
    #[arg(long, value_name = "N:LEN")]
    prefix_shared: Option<String>,
    /// Ask every request for this many tokens (overrides the prompts file's max_tokens;
    /// default for lines without one: 128).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: Option<u32>,
    /// Ask the server to generate past end-of-sequence (vLLM's ignore_eos), for fixed
    /// output lengths.
    #[arg(long)]
    ignore_eos: bool,
    /// Tokenizer to count tokens with when the server reports no usage, and to build
    /// synthetic prompts: a tokenizer.json or GGUF file, or a model (default for synthetic
    /// prompts: the default model).
    #[arg(long, value_name = "FILE|MODEL")]
    tokenizer: Option<String>,
    /// Closed loop: concurrent users, one scenario per value.
    #[arg(short = 'c', long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Vec<u32>,
    /// Open loop: requests per second, one scenario per value (`inf`: all at once).
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Open loop arrivals: poisson, constant or gamma.
    #[arg(long, value_enum, default_value = "poisson")]
    arrival: ArrivalKind,
    /// Gamma arrivals' shape: 1 is Poisson, below 1 burstier, above 1 steadier.
    #[arg(long, default_value_t = 1.0)]
    burstiness: f64,
    /// Load that changes over time (open loop): ramp (--from to --to req/s over --duration),
    /// ramp-down (up, then back down over another --duration), step (--steps levels from
    /// --from to --to, each held --step-duration), spike (--rate with bursts of --spike-rate),
    /// soak (--rate for a long --duration); steady is -c/--rate as usual.
    /// replay:FILE sends a trace's requests at its own offsets (Mooncake JSONL or BurstGPT
    /// CSV), --replay-speed times faster, cut at --duration on the replayed clock.
    #[arg(long, default_value = "steady", value_parser = PatternKind::parse)]
    pub(super) pattern: PatternKind,
    /// Replay a trace this many times faster than it was recorded.
    #[arg(long, default_value_t = 1.0)]
    replay_speed: f64,
    /// With --pattern ramp, ramp-down or step: --from and --to count users of a closed loop
    /// (each sends its next request when its last is answered) instead of req/s.
    #[arg(long)]
    users: bool,
    /// The rate a ramp or step pattern starts at (req/s).
    #[arg(long, value_name = "REQ/S", allow_negative_numbers = true)]
    from: Option<f64>,
    /// The rate a ramp or step pattern reaches (req/s).
    #[arg(long, value_name = "REQ/S", allow_negative_numbers = true)]
    to: Option<f64>,
    /// Levels of a step pattern.
    #[arg(long, default_value_t = 5)]
    steps: u32,
    /// How long a step pattern holds each level.
    #[arg(long, value_parser = humantime::parse_duration)]
    step_duration: Option<std::time::Duration>,
    /// A spike pattern's burst rate (req/s).
    #[arg(long, value_name = "REQ/S", allow_negative_numbers = true)]
    spike_rate: Option<f64>,
    /// How long each burst of a spike pattern lasts.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    spike_duration: std::time::Duration,
    /// Time from one burst's start to the next (the first comes after one period).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    spike_every: std::time::Duration,
    /// Open loop: most requests in flight; later arrivals wait (and are counted).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: u32,
    /// Requests per scenario (per sweep step; per probe run it is the probe concurrency).
    #[arg(short = 'n', long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) requests: u64,
    /// Run each scenario this long instead of -n requests (e.g. 30s, 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(super) duration: Option<std::time::Duration>,
    /// Warm-up requests before each scenario, reported apart (default: one per user).
    #[arg(long)]
    warmup: Option<u64>,
    /// Find the saturation point: raise an open-loop rate until throughput stops growing.
    #[arg(long)]
    pub(super) sweep: bool,
    /// The sweep's first rate (req/s).
    #[arg(long, default_value_t = 1.0)]
    sweep_start: f64,
    /// Each sweep step multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    sweep_factor: f64,
    /// Most sweep steps.
    #[arg(long, default_value_t = 8)]
    sweep_steps: u32,
    /// A step must beat the best throughput so far by this share (0.1 = 10%) to go on.
    #[arg(long, default_value_t = 0.1)]
    sweep_min_growth: f64,
    /// Find the most load the server sustains: raise an open-loop rate from --sweep-start by
    /// --sweep-factor (at most --sweep-steps levels) until a level breaks (errors over
    /// --max-error-rate, default 1% here; over 10% of requests missing the SLOs, waiting for
    /// --max-concurrency, or answers 10% behind the sends), then try --breaking-refine levels between the last that
    /// held and the first that broke.
    #[arg(long)]
    pub(super) breaking_point: bool,
    /// Levels tried between the last held and the first broken rate.
    #[arg(long, default_value_t = 2)]
    breaking_refine: u32,
    /// Max-throughput probe: warm-up, then --probe-runs bursts of --probe-concurrency.
    #[arg(long)]
    probe: bool,
    /// Requests released at once per probe run (default: the largest -c, else 16).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    probe_concurrency: Option<u32>,
    /// Probe runs; the best is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    probe_runs: u32,
    /// Service-level objectives for goodput, e.g. ttft=200ms,tpot=50ms (also itl, e2e).
    #[arg(long)]
    slo: Option<String>,
    /// Most time a request may take, first byte to last.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Most time to open a connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: std::time::Duration,
    /// Exit 1 when a scenario's share of failed requests is above this (0.01 = 1%). The
    /// default, 1, never fails: a run of errors is still a measurement. With
    /// --breaking-point: a level with more errors breaks (default there 0.01).
    #[arg(long)]
    max_error_rate: Option<f64>,
    /// Largest answer accepted (bytes); a bigger one is a malformed answer.
    #[arg(long, default_value_t = 16 << 20)]
    max_response_bytes: usize,
    /// Generic backend: the JSON body (or @FILE); strings "{prompt}" get the prompt.
    #[arg(long, value_name = "JSON|@FILE")]
    body: Option<String>,
    /// Generic backend: workload units each request carries (images, documents, ...).
    #[arg(long)]
    units_per_request: Option<f64>,
    /// Seed of the arrival schedules.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder that holds one folder per run.
    #[arg(long, short = 'o', default_value = "results")]
    pub(super) output: PathBuf,
    /// Name of this run's folder (default: load-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    pub(super) run_id: Option<String>,
    /// Run N worker processes on this machine, each sending 1/N of the load (its share of
    /// users, rate and requests), started together; their runs are merged into one
    /// (histograms added, so percentiles are those of every request). Logs and each worker's
    /// run go to RUN/workers/.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(super) workers: Option<u32>,
    /// Run as one worker of a plan (written by --workers or `inferbench k8s render`): the
    /// load comes from the plan; only --worker-index, -o, --run-id and --result-markers may
    /// be given beside it.
    #[arg(long, value_name = "FILE", conflicts_with = "workers")]
    pub(super) plan: Option<PathBuf>,
    /// This worker's index in the plan, from 0 (Kubernetes Indexed Jobs set
    /// JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I", env = "JOB_COMPLETION_INDEX")]
    pub(super) worker_index: Option<u32>,
    /// Threads sending and reading requests (default: one per core, at least 2; with
    /// --workers N, each worker gets its part of the cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) client_threads: Option<u32>,
    /// At the end, print run.json between marker lines on standard output: how a pod hands
    /// its result back through its log.
    #[arg(long)]
    pub(super) result_markers: bool,
    #[command(flatten)]
    pub(super) pages: super::pages::PageArgs,
}

impl LoadArgs {
    /// The flags as the library's request, every flag checked: bad ones are usage errors
    /// (exit 2). Reads the prompts file or builds synthetic prompts.
    pub fn request(&self, interrupt: Arc<AtomicBool>) -> anyhow::Result<LoadRequest> {
        self.check()?;
        if self.ignore_eos && self.backend == BackendKind::Tgi {
            eprintln!("note: TGI has no ignore_eos; answers may end before max_tokens");
        }
        let slo = match &self.slo {
            Some(text) => http::stats::parse_slo(text).map_err(as_usage)?,
            None => Vec::new(),
        };
        let shapes = self.shapes()?;
        for warning in slow_plan_warnings(&shapes, self.requests, self.duration) {
            eprintln!("warning: {warning}");
        }
        let (workload, tokenizer) = match &self.pattern {
            PatternKind::Replay(path) => self.replay_prompts(path)?,
            _ => {
                let spec = self.workload()?;
                let tokenizer = self.tokenizer(spec.needs_tokenizer())?;
                // A file that cannot be read or parsed is a failure (exit 1), as elsewhere.
                let workload = spec.build(tokenizer.as_ref().map(|(_, t)| t))?;
                (workload, tokenizer)
            }
        };
        let Workload {
            prompts,
            source: workload_source,
            conversations,
        } = workload;
        Ok(LoadRequest {
            base_url: self.url.clone(),
            path: self.path.clone(),
            backend: Backend {
                kind: self.backend,
                stream: self.stream,
                model: self.model.clone().unwrap_or_default(),
                ignore_eos: self.ignore_eos,
                body_template: self.body_template()?,
            },
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            prompts,
            workload_source,
            conversations,
            think_time: self.think_time,
            server_metrics: match self.server_metrics.as_deref() {
                None => http::ServerMetricsChoice::Auto,
                Some("none") => http::ServerMetricsChoice::Off,
                Some(url) => http::ServerMetricsChoice::Url(url.to_string()),
            },
            scrape_interval: self.scrape_interval,
            tokenizer,
            units_per_request: self.units_per_request,
            shapes,
            requests: self.requests,
            duration: self.duration,
            warmup: self.warmup,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            max_response_bytes: self.max_response_bytes,
            slo,
            sweep: self.sweep.then_some(http::SweepSettings {
                start_rate: self.sweep_start,
                factor: self.sweep_factor,
                max_steps: self.sweep_steps,
                min_growth: self.sweep_min_growth,
                arrival: self.arrival,
                burstiness: self.burstiness,
                max_concurrency: self.max_concurrency,
            }),
            breaking_point: self
                .breaking_point
                .then_some(http::breaking::BreakingSettings {
                    start_rate: self.sweep_start,
                    factor: self.sweep_factor,
                    max_steps: self.sweep_steps,
                    refine: self.breaking_refine,
                    max_error_rate: self.max_error_rate.unwrap_or(0.01),
                    arrival: self.arrival,
                    burstiness: self.burstiness,
                    max_concurrency: self.max_concurrency,
                }),
            seed: self.seed,
            output: self.output.clone(),
            run_id: self.run_id.clone(),
            interrupt,
            worker: None,
            client_threads: self.client_threads.map(|n| n as usize),
        })
    }

    /// Flags that contradict each other or take values no run can use.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        if self.stream && !self.backend.supports_stream() {
            return Err(usage("--stream: the generic backend does not stream"));
        }
        if self.backend == BackendKind::Generic && self.body.is_none() {
            return Err(usage("--backend generic needs --body (the JSON to POST)"));
        }
        if self.backend != BackendKind::Generic
            && (self.body.is_some() || self.units_per_request.is_some())
        {
            return Err(usage(
                "--body and --units-per-request go with --backend generic",
            ));
        }
        if let Some(bad_rate) = self.rate.iter().find(|r| r.is_nan() || **r <= 0.0) {
            return Err(usage(format!(
                "--rate {bad_rate}: rates must be above 0 (or inf)"
            )));
        }
        for (flag, d) in [
            ("--timeout", self.timeout),
            ("--connect-timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(usage(format!(
                    "{flag} 0s: a request needs time to be answered; give a time such as 60s"
                )));
            }
        }
        if let Some(bad) = self.max_error_rate.filter(|r| !(0.0..=1.0).contains(r)) {
            return Err(usage(format!(
                "--max-error-rate {bad}: a share of requests from 0 to 1 (0.01 is 1%)"
            )));
        }
        if self.users && self.pattern == PatternKind::Steady {
            return Err(usage(
                "--users goes with --pattern ramp, ramp-down or step (users over time); for a \
                 fixed number of users give -c",
            ));
        }
        if self.multi_turn.is_some()
            && (!self.rate.is_empty()
                || self.probe
                || self.sweep
                || self.breaking_point
                || self.pattern != PatternKind::Steady)
        {
            return Err(usage(
                "--multi-turn: conversations run in the closed loop (-c users, each holding one \
                 conversation at a time); it does not go with --rate, --pattern, --probe, \
                 --sweep or --breaking-point",
            ));
        }
        if self.sweep && self.breaking_point {
            return Err(usage(
                "--sweep and --breaking-point both climb the rate; give one",
            ));
        }
        if (self.sweep || self.breaking_point)
            && (self.sweep_start.is_nan()
                || self.sweep_start <= 0.0
                || self.sweep_factor.is_nan()
                || self.sweep_factor <= 1.0)
        {
            return Err(usage(
                "--sweep-start must be above 0 and --sweep-factor above 1",
            ));
        }
        Ok(())
    }

    /// --body as JSON, from the flag or from @FILE.
    fn body_template(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(text) = &self.body else {
            return Ok(None);
        };
        let (json, origin) = match text.strip_prefix('@') {
            Some(path) => (
                std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("--body @{path}: cannot read it: {e}")))?,
                format!("--body @{path}"),
            ),
            None => (text.clone(), "--body".to_string()),
        };
        let value =
            serde_json::from_str(&json).map_err(|e| usage(format!("{origin}: not JSON: {e}")))?;
        Ok(Some(value))
    }

    /// The tokenizer asked for (a file or a model), or the default model's when the
    /// workload needs one to build its prompts; none otherwise.
    fn tokenizer(&self, needed: bool) -> anyhow::Result<Option<(String, TextTokenizer)>> {
        let wanted = self
            .tokenizer
            .clone()
            .or_else(|| needed.then(|| model::DEFAULT_MODEL.to_string()));
        let Some(name) = wanted else { return Ok(None) };
        let path = Path::new(&name);
        let tokenizer = if path.is_file() {
            model::load_tokenizer_file(path)?
        } else {
            model::load_tokenizer_of(&ModelRef::from_parts(Some(&name), None, None))
                .map_err(|e| usage(format!("--tokenizer {name}: {e:#}")))?
        };
        Ok(Some((name, tokenizer)))
    }

    /// A replay's prompts: one per request of the trace, of its lengths.
    fn replay_prompts(&self, path: &Path) -> anyhow::Result<ReplayWorkload> {
        let given = [
            ("--dataset", self.dataset.is_some()),
            ("--prompts", self.prompts.is_some()),
            ("--input-tokens", self.input_tokens.is_some()),
            ("--input-dist", self.input_dist.is_some()),
            ("--prefix-shared", self.prefix_shared.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(usage(format!(
                "{flag}: a replay's prompts come from its trace (their lengths and blocks)"
            )));
        }
        let entries = self.replay_entries(path)?;
        let tokenizer = self.tokenizer(true)?;
        let t = tokenizer.as_ref().map(|(_, t)| t).expect("asked for one");
        let name = path.display().to_string();
        let prompts = trace::prompts(&entries, t, &name)?;
        let span = entries.last().map_or(0.0, |e| e.at_s);
        let source = format!(
            "replay trace {name}: {} requests over {span:.1} s, {}× speed",
            entries.len(),
            self.replay_speed
        );
        let workload = Workload {
            prompts,
            source,
            conversations: Vec::new(),
        };
        Ok((workload, tokenizer))
    }

    /// The dataset and how its prompts are shaped, every flag checked.
    fn workload(&self) -> anyhow::Result<WorkloadSpec> {
        let random = || self.random_lengths();
        let dataset = match (&self.dataset, &self.prompts) {
            (Some(text), _) => parse_dataset(text, random).map_err(as_usage)?,
            (None, Some(path)) => Dataset::Jsonl(Some(path.clone())),
            (None, None) if self.input_tokens.is_some() || self.input_dist.is_some() => random()?,
            (None, None) => Dataset::Jsonl(None),
        };
        if !matches!(dataset, Dataset::Random { .. }) {
            let random_only = [
                ("--input-tokens", self.input_tokens.is_some()),
                ("--output-tokens", self.output_tokens.is_some()),
                ("--input-spread", self.input_spread.is_some()),
                ("--output-spread", self.output_spread.is_some()),
                ("--input-dist", self.input_dist.is_some()),
                ("--output-dist", self.output_dist.is_some()),
            ];
            if let Some((flag, _)) = random_only.iter().find(|(_, given)| *given) {
                return Err(usage(format!(
                    "{flag} shapes random prompts; it does not go with --dataset {}",
                    self.dataset.as_deref().unwrap_or("jsonl")
                )));
            }
        }
        let shared_prefix = self
            .prefix_shared
            .as_deref()
            .map(parse_prefix_shared)
            .transpose()
            .map_err(as_usage)?;
        Ok(WorkloadSpec {
            dataset,
            max_tokens: self.max_tokens,
            turns: self.multi_turn.map_or(1, |t| t as usize),
            shared_prefix,
            count: self.requests.clamp(1, 4096) as usize,
            seed: self.seed,
        })
    }

    /// `--dataset random`'s lengths: --X-tokens with --X-spread, or --X-dist.
    fn random_lengths(&self) -> anyhow::Result<Dataset> {
        let length =
            |side: &str, tokens: Option<u32>, spread: Option<f64>, dist: &Option<String>| {
                let flag = format!("--{side}");
                match (tokens, dist) {
                    (Some(n), None) => {
                        LengthDist::around(n, spread.unwrap_or(0.0), &flag).map_err(as_usage)
                    }
                    (None, Some(text)) if spread.is_none() => {
                        LengthDist::parse(text, &format!("{flag}-dist")).map_err(as_usage)
                    }
                    (None, Some(_)) => Err(usage(format!(
                        "{flag}-spread goes with {flag}-tokens, not {flag}-dist"
                    ))),
                    _ => Err(usage(format!(
                        "random prompts need {flag}-tokens N (or {flag}-dist, e.g. normal:512:128)"
                    ))),
                }
            };
        Ok(Dataset::Random {
            input: length(
                "input",
                self.input_tokens,
                self.input_spread,
                &self.input_dist,
            )?,
            output: length(
                "output",
                self.output_tokens,
                self.output_spread,
                &self.output_dist,
            )?,
        })
    }

    /// The --pattern's load over time, its flags checked; None for steady load.
    fn pattern(&self) -> anyhow::Result<Option<Pattern>> {
        let seconds = |d: Option<std::time::Duration>, flag: &str, kind: &str| {
            d.map(|d| d.as_secs_f64())
                .ok_or_else(|| usage(format!("--pattern {kind} needs {flag} (e.g. {flag} 60s)")))
        };
        let rate = |flag: &str, value: Option<f64>, kind: &str| {
            value.ok_or_else(|| usage(format!("--pattern {kind} needs {flag} REQ/S")))
        };
        let one_rate = |kind: &str| match self.rate.as_slice() {
            [r] => Ok(*r),
            [] => Err(usage(format!("--pattern {kind} needs --rate REQ/S"))),
            _ => Err(usage(format!(
                "--pattern {kind} takes one --rate, not a list"
            ))),
        };
        let kind = self.pattern.name();
        let pattern = match &self.pattern {
            PatternKind::Steady => return Ok(None),
            PatternKind::Replay(path) => {
                let entries = self.replay_entries(path)?;
                Pattern::Replay {
                    trace: path.display().to_string(),
                    speed: self.replay_speed,
                    requests: entries.len() as u64,
                    span_s: entries.last().map_or(0.0, |e| e.at_s),
                    offsets: Arc::new(entries.iter().map(|e| e.at_s).collect()),
                }
            }
            PatternKind::Ramp | PatternKind::RampDown => Pattern::Ramp {
                from: rate("--from", self.from, kind)?,
                to: rate("--to", self.to, kind)?,
                duration_s: seconds(self.duration, "--duration", kind)?,
                down: self.pattern == PatternKind::RampDown,
            },
            PatternKind::Step => Pattern::Step {
                from: rate("--from", self.from, kind)?,
                to: rate("--to", self.to, kind)?,
                steps: self.steps,
                step_duration_s: seconds(self.step_duration, "--step-duration", kind)?,
            },
            PatternKind::Spike => Pattern::Spike {
                base: one_rate(kind)?,
                spike_rate: rate("--spike-rate", self.spike_rate, kind)?,
                spike_duration_s: self.spike_duration.as_secs_f64(),
                every_s: self.spike_every.as_secs_f64(),
                duration_s: seconds(self.duration, "--duration", kind)?,
            },
            PatternKind::Soak => Pattern::Soak {
                rate: one_rate(kind)?,
                duration_s: seconds(self.duration, "--duration", kind)?,
            },
        };
        pattern.check().map_err(as_usage)?;
        if !self.concurrency.is_empty() || self.probe || self.sweep {
            return Err(usage(format!(
                "--pattern {kind} is a scenario of its own; it does not go with -c, --probe or --sweep"
            )));
        }
        Ok(Some(pattern))
    }

    /// A trace's requests, those due within --duration on the replayed clock.
    fn replay_entries(&self, path: &Path) -> anyhow::Result<Vec<trace::TraceEntry>> {
        if !self.replay_speed.is_finite() || self.replay_speed <= 0.0 {
            return Err(usage(format!(
                "--replay-speed {}: a factor above 0 (2 replays twice as fast)",
                self.replay_speed
            )));
        }
        let mut entries = trace::read(path)?;
        if let Some(d) = self.duration {
            let cut = d.as_secs_f64() * self.replay_speed;
            entries.retain(|e| e.at_s < cut);
            if entries.is_empty() {
                return Err(usage(format!(
                    "--pattern replay:{}: no request falls within --duration",
                    path.display()
                )));
            }
        }
        Ok(entries)
    }

    /// One scenario per -c value, per --rate value, and the probe; closed loop c1 when
    /// nothing is asked (and no sweep); a --pattern's one scenario.
    pub(super) fn shapes(&self) -> anyhow::Result<Vec<LoadShape>> {
        if let Some(pattern) = self.pattern()? {
            if self.users {
                if !matches!(pattern, Pattern::Ramp { .. } | Pattern::Step { .. }) {
                    return Err(usage(format!(
                        "--users goes with --pattern ramp, ramp-down or step, not {}",
                        self.pattern.name()
                    )));
                }
                if pattern.max_rate() > f64::from(MAX_USERS) {
                    return Err(usage(format!(
                        "--to {}: at most {MAX_USERS} users (each is a task holding a connection)",
                        pattern.max_rate()
                    )));
                }
                return Ok(vec![LoadShape::UserPattern { pattern }]);
            }
            return Ok(vec![LoadShape::Pattern {
                pattern,
                arrival: self.arrival,
                burstiness: self.burstiness,
                max_concurrency: self.max_concurrency,
            }]);
        }
        let mut shapes: Vec<LoadShape> = self
            .concurrency
            .iter()
            .map(|&c| LoadShape::Closed { concurrency: c })
            .collect();
        shapes.extend(self.rate.iter().map(|&rate| LoadShape::Open {
            arrival: ArrivalProcess {
                kind: self.arrival,
                rate,
                burstiness: self.burstiness,
            },
            max_concurrency: self.max_concurrency,
        }));
        if self.probe {
            shapes.push(LoadShape::Probe {
                concurrency: self
                    .probe_concurrency
                    .or(self.concurrency.iter().copied().max())
                    .unwrap_or(16),
                runs: self.probe_runs,
            });
        }
        if shapes.is_empty() && !self.sweep && !self.breaking_point {
            shapes.push(LoadShape::Closed { concurrency: 1 });
        }
        Ok(shapes)
    }
}

/// `--scrape-interval`: a duration of at least 100 ms.
fn parse_scrape_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_millis(100) {
        return Err("scrape at most every 100ms (e.g. 1s)".into());
    }
    Ok(d)
}

/// `--prefix-shared N:LEN`.
fn parse_prefix_shared(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text
        .split_once(':')
        .and_then(|(n, len)| Some((n.trim().parse().ok()?, len.trim().parse().ok()?)));
    match parsed {
        Some((n, len)) if n > 0 && len > 0 => {
            crate::workload::lengths::check_tokens(&format!("--prefix-shared {text}"), len as f64)?;
            if n > 65_536 {
                anyhow::bail!("--prefix-shared {text}: at most 65536 shared prefixes");
            }
            Ok((n, len))
        }
        _ => anyhow::bail!(
            "--prefix-shared {text}: give N:LEN, N shared prefixes of LEN tokens, both above 0 (e.g. 4:256)"
        ),
    }
}

/// An open-loop plan whose rate makes it last for hours (or send nothing within
/// --duration) says so before it starts: nothing else would for days.
fn slow_plan_warnings(
    shapes: &[LoadShape],
    requests: u64,
    duration: Option<std::time::Duration>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for shape in shapes {
        let LoadShape::Open { arrival, .. } = shape else {
            continue;
        };
        let rate = arrival.rate;
        let name = http::shape_name(shape);
        match duration {
            None if requests as f64 / rate > 3600.0 => {
                let seconds = (requests as f64 / rate).min(1e12) as u64;
                warnings.push(format!(
                    "{name}: {requests} requests at {rate} req/s take about {}; raise --rate or give --duration",
                    humantime::format_duration(std::time::Duration::from_secs(seconds))
                ));
            }
            Some(d) if d.as_secs_f64() * rate < 1.0 => warnings.push(format!(
                "{name}: at {rate} req/s, --duration {} is likely to send no request",
                humantime::format_duration(d)
            )),
            _ => {}
        }
    }
    warnings
}

/// One process sending the whole load (`load` without --workers or --plan).
pub fn handle(args: LoadArgs, interrupt: Arc<AtomicBool>) -> anyhow::Result<Outcome> {
    if args.worker_index.is_some() && std::env::var_os("JOB_COMPLETION_INDEX").is_none() {
        return Err(usage("--worker-index goes with --plan FILE"));
    }
    let request = args.request(interrupt.clone())?;
    let pages = args.pages.start("inferbench load")?;
    let outcome = http::run(request)?;
    finish_run(&args, &outcome, pages, &interrupt)
}

/// The end of every load run: the table, where the files are, the pages, the result on
/// standard output when asked, and the error-rate check.
pub(super) fn finish_run(
    args: &LoadArgs,
    outcome: &http::LoadOutcome,
    pages: super::pages::Pages,
    interrupt: &AtomicBool,
) -> anyhow::Result<Outcome> {
    println!("{}", report::http::table(&outcome.result));
    let done = super::results_written(&outcome.dir, &outcome.result.header);
    pages.finish(&outcome.dir, interrupt);
    if args.result_markers {
        let json = serde_json::to_string_pretty(&outcome.result)?;
        println!("{}", crate::results::markers::wrap(&json));
    }
    let measured: Vec<_> = outcome
        .result
        .scenarios
        .iter()
        .filter(|s| !s.name.starts_with(http::breaking::PREFIX))
        .cloned()
        .collect();
    check_errors(&measured, args.max_error_rate.unwrap_or(1.0))?;
    if let Some(bp) = &outcome.result.breaking_point {
        if bp.held_rate.is_none() && !interrupt.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!(
                "breaking point: no level held, not even the first ({} req/s){}; start lower with --sweep-start",
                bp.rates.first().copied().unwrap_or_default(),
                bp.broke_because.as_deref().map_or(String::new(), |w| format!(": {w}"))
            );
        }
    }
    Ok(done)
}

/// Say when most requests failed; fail (exit 1) past --max-error-rate.
pub(super) fn check_errors(
    scenarios: &[report::http::HttpScenario],
    max_error_rate: f64,
) -> anyhow::Result<()> {
    for s in scenarios {
        if s.requests > 0 && s.failed * 2 > s.requests {
            eprintln!(
                "warning: {}: {} of {} requests failed; see the errors column (and the server's log)",
                s.name, s.failed, s.requests
            );
        }
    }
    match scenarios.iter().find(|s| s.error_rate > max_error_rate) {
        Some(s) => Err(anyhow::anyhow!(
            "{}: {:.1}% of requests failed, above --max-error-rate {:.1}%",
            s.name,
            s.error_rate * 100.0,
            max_error_rate * 100.0
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_support::{parse, usage_message};

    fn request(args: &[&str]) -> anyhow::Result<LoadRequest> {
        match parse("load", args) {
            crate::cli::Command::Load(a) => a.request(Arc::default()),
            _ => unreachable!(),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        usage_message(request(args))
    }

    #[test]
    fn shapes_follow_the_flags() {
        let r = request(&["-c", "1,4", "--rate", "2", "--probe"]).unwrap();
        let names: Vec<String> = r.shapes.iter().map(http::shape_name).collect();
        assert_eq!(names[..2], ["c1", "c4"]);
        assert!(names[2].starts_with("rate2"), "{names:?}");
        assert_eq!(names[3], "probe-c4", "the probe takes the largest -c");
        assert_eq!(r.prompts.len(), 32, "the built-in prompts");
        let plain = request(&[]).unwrap();
        assert_eq!(plain.shapes, [LoadShape::Closed { concurrency: 1 }]);
        assert!(request(&["--sweep"]).unwrap().shapes.is_empty());
    }

    #[test]
    fn a_plan_of_days_says_so() {
        let r = request(&["--rate", "0.000001,50", "-n", "2"]).unwrap();
        let w = slow_plan_warnings(&r.shapes, 2, None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("take about 23days"), "{w:?}");
        let brief = Some(std::time::Duration::from_secs(10));
        let w = slow_plan_warnings(&request(&["--rate", "0.01"]).unwrap().shapes, 64, brief);
        assert!(w[0].contains("likely to send no request"), "{w:?}");
        assert!(
            slow_plan_warnings(&request(&["--rate", "5"]).unwrap().shapes, 64, None).is_empty()
        );
    }

    #[test]
    fn generic_bodies_are_json_with_the_prompt_placeholder() {
        let r = request(&["--backend", "generic", "--body", r#"{"q": "{prompt}"}"#]).unwrap();
        assert_eq!(
            r.backend.body_template,
            Some(serde_json::json!({"q": "{prompt}"}))
        );
    }

    #[test]
    fn bad_flags_are_usage_errors_naming_the_flag() {
        assert!(usage_error(&["--rate", "0"]).contains("--rate 0"));
        assert!(usage_error(&["--rate", "NaN"]).contains("--rate"));
        assert!(usage_error(&["--backend", "generic"]).contains("--body"));
        assert!(
            usage_error(&["--backend", "generic", "--body", "{", "--stream"]).contains("--stream")
        );
        assert!(usage_error(&["--backend", "generic", "--body", "{x"]).contains("not JSON"));
        assert!(usage_error(&["--body", "{}"]).contains("--backend generic"));
        assert!(usage_error(&["--sweep", "--sweep-factor", "1"]).contains("--sweep-factor"));
        assert!(usage_error(&["--slo", "ttft=fast"]).contains("ttft"));
        assert!(usage_error(&["--timeout", "0s"]).contains("--timeout 0s"));
        assert!(usage_error(&["--connect-timeout", "0s"]).contains("--connect-timeout"));
        assert!(usage_error(&["--max-error-rate", "2"]).contains("--max-error-rate"));
    }
}
