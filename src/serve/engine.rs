//! What answers the server's requests: the in-process engine on its own thread, taking
//! requests one at a time from a bounded FIFO queue (queued, not batched: each request is a
//! batch of one, so TTFT under load includes the queue wait); or a mock that generates
//! placeholder words at a fixed pace, for measuring the load generator itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::http::StatusCode;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::metrics::Metrics;
use super::openai::{ApiError, GenerationRequest};
use crate::device::{self, DeviceRequest};
use crate::engine::{self, FinishReason, GenerationParams, SamplingParams};
use crate::model::{self, LoadOptions, TextTokenizer};

/// What a generation tells the request handler, in order: text pieces, then Done or Failed.
#[derive(Debug)]
pub enum Event {
    Text(String),
    Done {
        /// OpenAI's finish_reason: "stop" or "length".
        finish: &'static str,
        prompt_tokens: usize,
        completion_tokens: usize,
        /// Prompt tokens served from a prefix cache (the mock's), when there is one.
        cached_tokens: Option<usize>,
    },
    Failed(String),
}

pub struct Job {
    prompt: Vec<u32>,
    params: GenerationParams,
    events: UnboundedSender<Event>,
    queued_at: Instant,
}

pub enum Engine {
    Model {
        tokenizer: Arc<TextTokenizer>,
        context_length: usize,
        jobs: SyncSender<Job>,
        metrics: Arc<Metrics>,
    },
    Mock {
        token_delay: Duration,
        metrics: Arc<Metrics>,
        /// Mock answers in progress, and the most allowed (--max-queue): a full mock server
        /// answers 503 as a full queue does.
        in_flight: Arc<AtomicUsize>,
        max_in_flight: usize,
        prefixes: Arc<MockPrefixCache>,
    },
}

fn queue_full() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the request queue is full (--max-queue); retry later",
    )
}

/// A mock answer's place among those in flight, given back when its task ends.
/// A mock answer in progress: counted in flight (for --max-queue) and as running in the
/// metrics, as a real engine's request is, until it ends.
struct MockSlot(Arc<AtomicUsize>, Arc<Metrics>);

impl MockSlot {
    fn new(in_flight: Arc<AtomicUsize>, metrics: Arc<Metrics>) -> Self {
        metrics.running.fetch_add(1, Ordering::Relaxed);
        MockSlot(in_flight, metrics)
    }
}

impl Drop for MockSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What was loaded, for the start-up line and /v1/models.
pub struct Loaded {
    pub engine: Engine,
    pub name: String,
    pub description: String,
}

impl Engine {
    /// Load the model on its own thread (it stays there) and start taking requests.
    pub fn start(
        options: LoadOptions,
        device_request: DeviceRequest,
        max_queue: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Loaded> {
        // Served under the name the user gave it (a repo id or path), as vLLM does.
        let name = options.model.model.clone();
        let (ready_tx, ready_rx) = sync_channel(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(max_queue.max(1));
        let worker_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let loaded = device::select(device_request).and_then(|selected| {
                    let m = model::load(&options, &selected.device)?;
                    Ok((selected, m))
                });
                let (selected, loaded) = match loaded {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let model::LoadedModel {
                    mut model,
                    tokenizer,
                    info,
                } = loaded;
                let tokenizer = Arc::new(tokenizer);
                let description = format!(
                    "{} [{} {} {}, {:.0}M params] on {} ({})",
                    info.name,
                    info.format,
                    info.architecture,
                    info.dtype,
                    info.parameters as f64 / 1e6,
                    selected.name,
                    selected.reason
                );
                if ready_tx
                    .send(Ok((tokenizer.clone(), info.clone(), description)))
                    .is_err()
                {
                    return;
                }
                for job in jobs_rx {
                    worker_metrics.waiting.fetch_sub(1, Ordering::Relaxed);
                    if job.events.is_closed() {
                        continue; // the client left while it waited
                    }
                    worker_metrics.queue_time.observe(job.queued_at.elapsed());
                    worker_metrics.running.fetch_add(1, Ordering::Relaxed);
                    let event = run_job(&job, model.as_mut(), &selected.device, &tokenizer);
                    worker_metrics.running.fetch_sub(1, Ordering::Relaxed);
                    let _ = job.events.send(event);
                }
            })
            .context("starting the engine thread")?;
        let (tokenizer, info, description) = ready_rx
            .recv()
            .context("the engine thread stopped while loading")??;
        Ok(Loaded {
            engine: Engine::Model {
                tokenizer,
                context_length: info.context_length,
                jobs: jobs_tx,
                metrics,
            },
            name,
            description,
        })
    }

    pub fn mock(token_delay: Duration, max_queue: usize, metrics: Arc<Metrics>) -> Loaded {
        Loaded {
            engine: Engine::Mock {
                token_delay,
                metrics,
                in_flight: Arc::default(),
                max_in_flight: max_queue,
                prefixes: Arc::default(),
            },
            name: "mock".into(),
            description: format!(
                "mock engine (no model): placeholder words, one every {}",
                humantime::format_duration(token_delay)
            ),
        }
    }

    /// Queue a request; its events arrive on the receiver.
    pub fn submit(
        &self,
        request: &GenerationRequest,
    ) -> Result<UnboundedReceiver<Event>, ApiError> {
        let (tx, rx) = unbounded_channel();
        match self {
            Engine::Mock {
                token_delay,
                in_flight,
                max_in_flight,
                prefixes,
                metrics,
            } => {
                let taken = in_flight.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < *max_in_flight).then_some(n + 1)
                });
                if taken.is_err() {
                    return Err(queue_full());
                }
                let prompt_tokens = request.text.split_whitespace().count().max(1);
                let cached_tokens = Some(prefixes.lookup_and_insert(&request.text));
                let (n, delay) = (request.max_tokens as usize, *token_delay);
                let slot = MockSlot::new(in_flight.clone(), metrics.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    for i in 0..n {
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let word = if i == 0 { "token" } else { " token" };
                        if tx.send(Event::Text(word.into())).is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Event::Done {
                        finish: "length",
                        prompt_tokens,
                        completion_tokens: n,
                        cached_tokens,
                    });
                });
            }
            Engine::Model {
                tokenizer,
                context_length,
                jobs,
                metrics,
            } => {
                let text = if request.chat && tokenizer.has_chat_template() {
                    tokenizer.apply_chat_template(&request.text)
                } else {
                    Ok(request.text.clone())
                };
                let prompt = text
                    .and_then(|t| tokenizer.encode(&t))
                    .map_err(|e| ApiError::bad(format!("{e:#}"), None))?;
                let needed = prompt.len() + request.max_tokens as usize;
                if needed > *context_length {
                    return Err(ApiError::bad(
                        format!(
                            "this model's context is {context_length} tokens; the prompt has {} and max_tokens asks for {}",
                            prompt.len(),
                            request.max_tokens
                        ),
                        Some("max_tokens"),
                    ));
                }
                let params = GenerationParams {
                    max_tokens: request.max_tokens as usize,
                    sampling: SamplingParams {
                        temperature: request.temperature,
                        top_p: request.top_p,
                        seed: request.seed.unwrap_or(0),
                    },
                    ignore_eos: request.ignore_eos,
                    eos_token_ids: tokenizer.eos_token_ids.clone(),
                    context_length: *context_length,
                };
                metrics.waiting.fetch_add(1, Ordering::Relaxed);
                let job = Job {
                    prompt,
                    params,
                    events: tx,
                    queued_at: Instant::now(),
                };
                match jobs.try_send(job) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        metrics.waiting.fetch_sub(1, Ordering::Relaxed);
                        return Err(queue_full());
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        metrics.waiting.fetch_sub(1, Ordering::Relaxed);
                        return Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the engine thread has stopped",
                        ));
                    }
                }
            }
        }
        Ok(rx)
    }
}

/// Generate one request, sending text as it decodes; stops early when the client is gone.
fn run_job(
    job: &Job,
    model: &mut dyn model::CausalLm,
    device: &candle_core::Device,
    tokenizer: &TextTokenizer,
) -> Event {
    let mut ids = Vec::new();
    let mut sent = 0usize;
    // Decode the whole answer each step and send what is new: a token may complete a
    // multi-byte character or change spacing, which per-token decoding gets wrong.
    let flush = |ids: &[u32], sent: &mut usize| -> bool {
        let Ok(text) = tokenizer.decode(ids) else {
            return true;
        };
        if text.ends_with('\u{FFFD}') || text.len() <= *sent || !text.is_char_boundary(*sent) {
            return true;
        }
        let piece = text[*sent..].to_string();
        *sent = text.len();
        job.events.send(Event::Text(piece)).is_ok()
    };
    let generated = engine::generate_while(
        model,
        device,
        std::slice::from_ref(&job.prompt),
        &job.params,
        |step| {
            if let Some(token) = step[0] {
                ids.push(token);
                if !flush(&ids, &mut sent) {
                    return false;
                }
            }
            !job.events.is_closed()
        },
    );
    match generated {
        Ok(g) => {
            flush(&ids, &mut sent);
            Event::Done {
                finish: match g.finish[0] {
                    FinishReason::Eos => "stop",
                    FinishReason::MaxTokens => "length",
                },
                prompt_tokens: job.prompt.len(),
                completion_tokens: g.tokens[0].len(),
                cached_tokens: None,
            }
        }
        Err(e) => Event::Failed(format!("generation failed: {e:#}")),
    }
}

/// What a server's prefix cache would serve, for the mock: prompts in blocks of 16 words,
/// a block cached when the same words up to its end were seen before. Lets `load
/// --prefix-shared` be checked end to end without a real server.
#[derive(Default)]
pub struct MockPrefixCache {
    blocks: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl MockPrefixCache {
    const BLOCK_WORDS: usize = 16;
    /// Most blocks remembered; past it the cache starts empty again, as an evicting one would.
    const MAX_BLOCKS: usize = 1 << 20;

    /// Words of this prompt already cached (whole blocks from the start); remembers its blocks.
    pub fn lookup_and_insert(&self, text: &str) -> usize {
        use std::hash::{Hash, Hasher};
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let Ok(mut blocks) = self.blocks.lock() else {
            return 0;
        };
        if blocks.len() > Self::MAX_BLOCKS {
            blocks.clear();
        }
        let mut cached = 0;
        let mut still_hitting = true;
        for block in words.chunks_exact(Self::BLOCK_WORDS) {
            block.hash(&mut hasher);
            let key = hasher.finish();
            still_hitting &= !blocks.insert(key);
            if still_hitting {
                cached += Self::BLOCK_WORDS;
            }
        }
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::MockPrefixCache;

    #[test]
    fn the_mock_prefix_cache_serves_whole_blocks_seen_before() {
        let cache = MockPrefixCache::default();
        let words =
            |n: usize, tag: &str| -> String { (0..n).map(|i| format!("{tag}{i} ")).collect() };
        let shared = words(40, "s"); // two whole blocks and 8 words
        assert_eq!(
            cache.lookup_and_insert(&format!("{shared}{}", words(20, "a"))),
            0
        );
        // The same 40 words open this one: the first two blocks are cached; the third
        // block mixes shared and own words, so it is not.
        assert_eq!(
            cache.lookup_and_insert(&format!("{shared}{}", words(20, "b"))),
            32
        );
        assert_eq!(cache.lookup_and_insert(&words(64, "z")), 0);
        assert_eq!(cache.lookup_and_insert("short prompt"), 0);
    }
}
