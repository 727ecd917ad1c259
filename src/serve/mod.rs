//! `inferbench serve`: an OpenAI-compatible HTTP server over the in-process engine.
//! /v1/completions and /v1/chat/completions (streamed as SSE or whole, with usage),
//! /v1/models, /health and Prometheus /metrics. Requests are queued and generated one at a
//! time (see engine.rs); a full queue answers 503.

pub mod body;
pub mod engine;
pub mod listen;
pub mod metrics;
pub mod openai;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use body::BodyError;
use engine::{Engine, Event, Loaded};
use metrics::Metrics;
use openai::{ApiError, GenerationRequest, Limits, Shapes};

pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// The name /v1/models lists and requests may ask for (default: the model's).
    pub served_model_name: Option<String>,
    pub limits: Limits,
    pub max_body_bytes: usize,
    /// Most time to receive a request's body once its headers are in.
    pub body_timeout: std::time::Duration,
    pub connections: listen::ConnectionLimits,
}

struct AppState {
    engine: Engine,
    metrics: Arc<Metrics>,
    limits: Limits,
    max_body_bytes: usize,
    body_timeout: std::time::Duration,
    model_name: String,
    created: u64,
    next_id: AtomicU64,
}

/// Serve until Ctrl-C. `load` starts the engine (it runs before the socket is bound, so a
/// bad model fails before anything listens).
pub fn run(options: ServeOptions, load: impl FnOnce(Arc<Metrics>) -> Result<Loaded>) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let loaded = load(metrics.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr: SocketAddr = format!("{}:{}", options.host, options.port)
            .parse()
            .with_context(|| {
                format!("--host {} --port {}: not an address", options.host, options.port)
            })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        let model_name = options.served_model_name.unwrap_or(loaded.name);
        eprintln!("engine: {}", loaded.description);
        if !bound.ip().is_loopback() {
            eprintln!("warning: listening on {bound}, reachable from other machines; there is no authentication");
        }
        // Tests and scripts read this line for the port (--port 0 picks a free one).
        eprintln!("listening on http://{bound} (model {model_name})");
        let state = Arc::new(AppState {
            engine: loaded.engine,
            metrics,
            limits: options.limits,
            max_body_bytes: options.max_body_bytes,
            body_timeout: options.body_timeout,
            model_name,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            next_id: AtomicU64::new(1),
        });
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("\nshutting down: finishing the requests in flight");
        };
        listen::serve(listener, router(state), options.connections, shutdown)
            .await
            .context("serving")
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(state)
}

async fn completions(State(state): State<Arc<AppState>>, body: Body) -> Response {
    generation(state, body, false).await
}

async fn chat_completions(State(state): State<Arc<AppState>>, body: Body) -> Response {
    generation(state, body, true).await
}

async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.model_name,
            "object": "model",
            "created": state.created,
            "owned_by": "inferbench",
        }],
    }))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {}: this server has /v1/completions, /v1/chat/completions, /v1/models, /health, /metrics",
            uri.path()
        ),
    )
    .into_response()
}

async fn generation(state: Arc<AppState>, body: Body, chat: bool) -> Response {
    let response = match answer(&state, body, chat).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let endpoint = if chat {
        "chat_completions"
    } else {
        "completions"
    };
    state
        .metrics
        .count_request(endpoint, response.status().as_u16());
    response
}

async fn answer(state: &Arc<AppState>, body: Body, chat: bool) -> Result<Response, ApiError> {
    let received = Instant::now();
    let bytes = body::read_limited(body, state.max_body_bytes, state.body_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is over {} bytes (--max-body-bytes)",
                    state.max_body_bytes
                ),
            ),
            BodyError::TimedOut => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} (--body-timeout)",
                    humantime::format_duration(state.body_timeout)
                ),
            ),
            BodyError::Unreadable(e) => {
                ApiError::bad(format!("cannot read the request body: {e}"), None)
            }
        })?;
    let request = openai::parse(&bytes, chat, &state.limits)?;
    if let Some(m) = request.model.as_deref().filter(|m| *m != state.model_name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the model `{m}` is not served here; this server serves `{}`",
                state.model_name
            ),
        ));
    }
    let events = state.engine.submit(&request)?;
    let id = format!(
        "{}-{}",
        if chat { "chatcmpl" } else { "cmpl" },
        state.next_id.fetch_add(1, Ordering::Relaxed)
    );
    if request.stream {
        Ok(stream(state.clone(), events, id, request, received))
    } else {
        whole(state, events, &id, &request, received).await
    }
}

/// Record what a finished generation adds to the metrics.
fn account(metrics: &Metrics, received: Instant, prompt_tokens: usize, completion_tokens: usize) {
    metrics
        .prompt_tokens
        .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
    metrics
        .generation_tokens
        .fetch_add(completion_tokens as u64, Ordering::Relaxed);
    metrics.e2e.observe(received.elapsed());
    crate::live::request(Some((None, received.elapsed())));
}

async fn whole(
    state: &Arc<AppState>,
    mut events: UnboundedReceiver<Event>,
    id: &str,
    request: &GenerationRequest,
    received: Instant,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Text(piece) => {
                if text.is_empty() {
                    state.metrics.ttft.observe(received.elapsed());
                }
                text.push_str(&piece);
            }
            Event::Done {
                finish,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            } => {
                account(&state.metrics, received, prompt_tokens, completion_tokens);
                let shapes = Shapes {
                    id,
                    created: now_secs(),
                    model: &state.model_name,
                    chat: request.chat,
                };
                let usage = openai::usage(prompt_tokens, completion_tokens, cached_tokens);
                return Ok(Json(shapes.answer(&text, finish, usage)).into_response());
            }
            Event::Failed(message) => {
                return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message))
            }
        }
    }
    Err(ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the engine stopped before finishing the request",
    ))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// Where a stream is: before its first chunk, sending (and whether text went out yet, for
/// the TTFT metric), or finished.
enum Stage {
    Opening,
    Streaming { text_sent: bool },
    Closed,
}

fn stream(
    state: Arc<AppState>,
    events: UnboundedReceiver<Event>,
    id: String,
    request: GenerationRequest,
    received: Instant,
) -> Response {
    let created = now_secs();
    let body =
        futures_util::stream::unfold((Stage::Opening, events), move |(stage, mut events)| {
            let state = state.clone();
            let id = id.clone();
            let request = request.clone();
            async move {
                let shapes = Shapes {
                    id: &id,
                    created,
                    model: &state.model_name,
                    chat: request.chat,
                };
                let bytes = match stage {
                    Stage::Closed => return None,
                    // Chat streams open with the assistant's role, as OpenAI's do.
                    Stage::Opening if request.chat => {
                        return Some((
                            Ok::<Bytes, Infallible>(sse(&shapes.chunk(None, None))),
                            (Stage::Streaming { text_sent: false }, events),
                        ))
                    }
                    Stage::Opening | Stage::Streaming { .. } => match events.recv().await {
                        Some(Event::Text(piece)) => {
                            if !matches!(stage, Stage::Streaming { text_sent: true }) {
                                state.metrics.ttft.observe(received.elapsed());
                            }
                            return Some((
                                Ok(sse(&shapes.chunk(Some(&piece), None))),
                                (Stage::Streaming { text_sent: true }, events),
                            ));
                        }
                        Some(Event::Done {
                            finish,
                            prompt_tokens,
                            completion_tokens,
                            cached_tokens,
                        }) => {
                            account(&state.metrics, received, prompt_tokens, completion_tokens);
                            let mut out = sse(&shapes.chunk(None, Some(finish))).to_vec();
                            if request.include_usage {
                                let usage =
                                    openai::usage(prompt_tokens, completion_tokens, cached_tokens);
                                out.extend_from_slice(&sse(&shapes.usage_chunk(usage)));
                            }
                            out.extend_from_slice(b"data: [DONE]\n\n");
                            Bytes::from(out)
                        }
                        Some(Event::Failed(message)) => {
                            let e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message);
                            let mut out = sse(&e.body()).to_vec();
                            out.extend_from_slice(b"data: [DONE]\n\n");
                            Bytes::from(out)
                        }
                        None => return None,
                    },
                };
                Some((Ok(bytes), (Stage::Closed, events)))
            }
        });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
