//! `inferbench serve`: the engine behind an OpenAI-compatible HTTP API.

use clap::Args;

use super::model_args::ModelArgs;
use crate::exit::Outcome;
use crate::serve::{self, engine::Engine, listen::ConnectionLimits, openai::Limits, ServeOptions};

pub const HELP: &str = "Serve the in-process engine over an OpenAI-compatible HTTP API, \
for `inferbench load` and any OpenAI client.\n\n\
Endpoints: POST /v1/completions and /v1/chat/completions (stream: true for SSE chunks \
ending in data: [DONE]; stream_options.include_usage adds a usage chunk; whole answers \
carry usage; temperature, top_p, seed, max_tokens, ignore_eos), GET /v1/models, GET \
/health, GET /metrics (Prometheus: requests by endpoint and status, prompt and generated \
tokens, queue depth, TTFT / end-to-end / queue-time histograms).\n\n\
Scheduling: requests are queued and generated one at a time, each as a batch of one, in \
arrival order (no continuous batching): under concurrent load TTFT includes the wait. At \
most --max-queue requests wait; more are answered 503 with Retry-After. A client that \
disconnects stops its generation.\n\n\
Limits: bodies over --max-body-bytes are answered 413 (after reading and dropping up to \
64 MiB more, so that a client still sending sees the answer, not a reset), max_tokens over \
--max-tokens-limit \
or past the model's context 400; bad JSON and bad fields 400 with an OpenAI-style error \
naming the field (never a backtrace). A connection whose request headers take longer than \
--header-timeout is closed, a body slower than --body-timeout is answered 408, and at most \
--max-connections connections are open at once (more wait to be accepted).\n\n\
Binds 127.0.0.1:8000 by default (--port 0 picks a free port; the `listening on` line on \
stderr says which). --mock serves placeholder words with no model, one every \
--mock-token-delay, at most --max-queue answers at once: a trivial endpoint for measuring \
the load generator itself. The mock counts prompt tokens as words and reports \
usage.prompt_tokens_details.cached_tokens as a prefix cache of 16-word blocks would (for \
checking `load --prefix-shared`).";

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    dashboard: super::pages::DashboardArgs,
    /// Address to bind; 127.0.0.1 keeps the server on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0: any free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The model name /v1/models lists and requests must use (default: the model's).
    #[arg(long)]
    served_model_name: Option<String>,
    /// Most tokens a request may ask for.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens_limit: u32,
    /// Tokens generated when a request gives no max_tokens.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    default_max_tokens: u32,
    /// Largest request body accepted (bytes).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most requests waiting for the engine (with --mock: answering at once); more are
    /// answered 503.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Most time for a request's headers to arrive, counted from when the connection is ready
    /// for one (a connection that trickles them, or sits idle that long, is closed).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    header_timeout: std::time::Duration,
    /// Most time for a request's body to arrive once its headers are in (then 408).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: std::time::Duration,
    /// Most connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Serve placeholder words without a model (for measuring load generators).
    #[arg(long)]
    mock: bool,
    /// --mock: time between generated words.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    mock_token_delay: std::time::Duration,
}

pub fn handle(args: ServeArgs) -> anyhow::Result<Outcome> {
    let dashboard = args.dashboard.start("inferbench serve", None)?;
    let options = ServeOptions {
        host: args.host.clone(),
        port: args.port,
        served_model_name: args.served_model_name.clone(),
        limits: Limits {
            max_tokens: args.max_tokens_limit,
            default_max_tokens: args.default_max_tokens,
        },
        max_body_bytes: args.max_body_bytes,
        body_timeout: args.body_timeout,
        connections: ConnectionLimits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections as usize,
        },
    };
    serve::run(options, |metrics| {
        if args.mock {
            Ok(Engine::mock(args.mock_token_delay, args.max_queue, metrics))
        } else {
            Engine::start(
                args.model.load_options(),
                args.model.device,
                args.max_queue,
                metrics,
            )
        }
    })?;
    if args.dashboard.dashboard_linger.is_some() {
        let never = std::sync::atomic::AtomicBool::new(false);
        args.dashboard.linger_after(dashboard.as_ref(), &never);
    }
    Ok(Outcome::Done)
}
