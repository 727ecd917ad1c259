//! One request, timed on the client as its bytes arrive: time to the first generated text,
//! the arrival of every later piece, the end; or the failure, classified.

use std::time::{Duration, Instant};

use super::backend::{Backend, ReadError, Usage};
use super::sse::SseParser;
pub use crate::report::http::ErrorClass;
use crate::workload::prompts::Prompt;

/// What every request of a run shares.
pub struct Target {
    pub client: reqwest::Client,
    pub url: reqwest::Url,
    pub backend: Backend,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Keep every answer's text (a conversation's next turn carries it).
    pub keep_text: bool,
}

#[derive(Debug)]
pub struct Success {
    /// Request sent to the first piece of generated text (streams only).
    pub ttft: Option<Duration>,
    /// Arrival of each later network read that carried text, after the first.
    pub arrivals: Vec<Duration>,
    pub e2e: Duration,
    pub usage: Usage,
    /// Text events received (streams): a token count of last resort.
    pub text_events: u64,
    /// The generated text, kept when the server gave no completion token count (to count
    /// it) or when the target keeps every answer (conversations).
    pub text_for_counting: Option<String>,
}

#[derive(Debug)]
pub struct Failure {
    pub class: ErrorClass,
    pub status: Option<u16>,
    pub message: String,
    pub after: Duration,
}

#[derive(Debug)]
pub struct RequestRecord {
    /// When the schedule wanted it sent (closed loop: when it was), from the start of the
    /// scenario.
    pub scheduled_at: Duration,
    /// When it was sent, from the start of the scenario.
    pub sent_at: Duration,
    pub prompt_index: usize,
    pub outcome: Result<Success, Failure>,
}

impl RequestRecord {
    /// When the answer ended (or the request failed), from the start of the scenario.
    pub fn ended_at(&self) -> Duration {
        self.sent_at
            + match &self.outcome {
                Ok(s) => s.e2e,
                Err(f) => f.after,
            }
    }

    /// (TTFT, end-to-end) when it succeeded, for the live dashboard.
    pub fn live_latencies(&self) -> Option<(Option<Duration>, Duration)> {
        self.outcome.as_ref().ok().map(|s| (s.ttft, s.e2e))
    }
}

pub fn build_client(
    connect_timeout: Duration,
    pool_size: usize,
) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(pool_size)
        .tcp_nodelay(true)
        .user_agent(concat!("inferbench/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))
}

/// Send one request and time it; never returns an error, only a classified failure.
pub async fn send(target: &Target, prompt: &Prompt) -> Result<Success, Failure> {
    let start = Instant::now();
    match tokio::time::timeout(target.timeout, exchange(target, prompt, start)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure {
            class: ErrorClass::Timeout,
            status: None,
            message: format!(
                "no complete answer within {}",
                humantime::format_duration(target.timeout)
            ),
            after: start.elapsed(),
        }),
    }
}

async fn exchange(target: &Target, prompt: &Prompt, start: Instant) -> Result<Success, Failure> {
    let fail = |class, status, message: String| Failure {
        class,
        status,
        message,
        after: start.elapsed(),
    };
    let body = serde_json::to_vec(&target.backend.body(prompt))
        .map_err(|e| fail(ErrorClass::Malformed, None, format!("request body: {e}")))?;
    let body_len = body.len();
    let mut request = target
        .client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(key) = &target.api_key {
        request = request.bearer_auth(key);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| fail(classify(&e), None, explain(describe(&e), body_len)))?;
    let status = response.status();
    if !status.is_success() {
        // A little of the body says why (e.g. "rate limited").
        let detail = match response.chunk().await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                .trim()
                .to_string(),
            _ => String::new(),
        };
        return Err(fail(
            ErrorClass::HttpStatus,
            Some(status.as_u16()),
            format!("HTTP {status}: {}", super::sse::truncate(&detail, 200)),
        ));
    }
    let backend = &target.backend;
    let read_failure = |e: ReadError| match e {
        ReadError::ServerError(m) => fail(ErrorClass::ServerError, None, m),
        ReadError::Malformed(m) => fail(ErrorClass::Malformed, None, m),
    };
    let mut received = 0usize;
    let mut too_big = |len: usize| {
        received += len;
        if received > target.max_response_bytes {
            Err(fail(
                ErrorClass::Malformed,
                None,
                format!(
                    "answer over --max-response-bytes ({} bytes)",
                    target.max_response_bytes
                ),
            ))
        } else {
            Ok(())
        }
    };
    if !backend.stream {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(ErrorClass::Disconnected, None, describe(&e)))?
        {
            too_big(chunk.len())?;
            body.extend_from_slice(&chunk);
        }
        let e2e = start.elapsed();
        let answer = backend.answer(&body).map_err(read_failure)?;
        let keep_text = answer.usage.completion_tokens.is_none() || target.keep_text;
        return Ok(Success {
            ttft: None,
            arrivals: Vec::new(),
            e2e,
            usage: answer.usage,
            text_events: 0,
            text_for_counting: keep_text.then_some(answer.text),
        });
    }

    let mut parser = SseParser::new();
    let mut ttft = None;
    let mut arrivals = Vec::new();
    let mut usage = Usage::default();
    let mut text = String::new();
    let mut text_events = 0u64;
    let mut done = false;
    let mut apply =
        |data: String, now: Duration, chunk_had_text: &mut bool| -> Result<bool, Failure> {
            let event = backend.stream_event(&data).map_err(read_failure)?;
            if let Some(u) = event.usage {
                usage = Usage {
                    prompt_tokens: u.prompt_tokens.or(usage.prompt_tokens),
                    completion_tokens: u.completion_tokens.or(usage.completion_tokens),
                    cached_prompt_tokens: u.cached_prompt_tokens.or(usage.cached_prompt_tokens),
                };
            }
            if !event.text.is_empty() {
                text_events += 1;
                text.push_str(&event.text);
                if !*chunk_had_text {
                    *chunk_had_text = true;
                    if ttft.is_none() {
                        ttft = Some(now);
                    } else {
                        arrivals.push(now);
                    }
                }
            }
            Ok(event.done)
        };
    while !done {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| fail(ErrorClass::Disconnected, None, describe(&e)))?;
        let now = start.elapsed();
        let mut chunk_had_text = false;
        let events = match chunk {
            Some(bytes) => {
                too_big(bytes.len())?;
                parser
                    .push(&bytes)
                    .map_err(|m| fail(ErrorClass::Malformed, None, m))?
            }
            None => {
                let last = parser
                    .finish()
                    .map_err(|m| fail(ErrorClass::Malformed, None, m))?;
                if let Some(data) = last {
                    done |= apply(data, now, &mut chunk_had_text)?;
                }
                if !done {
                    let marker = if backend.kind.is_openai() {
                        "data: [DONE]"
                    } else {
                        "its final event"
                    };
                    return Err(fail(
                        ErrorClass::Malformed,
                        None,
                        format!("the stream ended without {marker}"),
                    ));
                }
                break;
            }
        };
        for data in events {
            done |= apply(data, now, &mut chunk_had_text)?;
        }
    }
    let e2e = start.elapsed();
    if ttft.is_none() && usage.completion_tokens.unwrap_or(0) > 0 {
        return Err(fail(
            ErrorClass::Malformed,
            None,
            "the usage counts tokens but the stream carried no text".into(),
        ));
    }
    let keep_text = usage.completion_tokens.is_none() || target.keep_text;
    Ok(Success {
        ttft,
        arrivals,
        e2e,
        usage,
        text_events,
        text_for_counting: keep_text.then_some(text),
    })
}

fn classify(e: &reqwest::Error) -> ErrorClass {
    if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_connect() {
        ErrorClass::Connect
    } else {
        // Accepted, then closed or reset before a full answer head.
        ErrorClass::Disconnected
    }
}

/// The error with its causes: reqwest's top line alone says little ("error sending request").
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Say what a reset while sending the body most likely means: a server refusing a body
/// (413) and closing without reading the rest makes the kernel reset the connection, which
/// loses the answer it sent.
fn explain(text: String, body_len: usize) -> String {
    if text.contains("error writing a body") {
        format!(
            "{text} (the server closed the connection before taking the {body_len}-byte request \
             body: it may have refused the body, e.g. as too large, without reading it)"
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn a_reset_while_sending_the_body_says_the_body_may_have_been_refused() {
        let sent = "error sending request: client error (SendRequest): error writing a body to \
                    connection: Broken pipe (os error 32)";
        let text = explain(sent.into(), 70_000_000);
        assert!(text.starts_with(sent), "{text}");
        assert!(text.contains("70000000-byte request body"), "{text}");
        assert!(text.contains("refused the body"), "{text}");
        let other = "error sending request: connection closed before message completed";
        assert_eq!(explain(other.into(), 10), other);
    }
}
