//! The OpenAI API as `inferbench serve` speaks it: request bodies read with errors that
//! name the field, and the answer and stream-chunk shapes of completions and chat.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub param: Option<&'static str>,
}

impl ApiError {
    pub fn bad(message: impl Into<String>, param: Option<&'static str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param,
        }
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
        }
    }

    pub fn body(&self) -> Value {
        let kind = match self.status.as_u16() {
            400 | 413 => "invalid_request_error",
            404 => "not_found_error",
            503 => "server_overloaded",
            _ => "server_error",
        };
        json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.status.as_u16(),
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// The limits a request is checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_tokens: u32,
    pub default_max_tokens: u32,
}

/// A completion or chat request, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// Completions: the prompt. Chat: the messages, as the text one user turn carries.
    pub text: String,
    pub chat: bool,
    pub max_tokens: u32,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
    pub model: Option<String>,
}

pub fn parse(body: &[u8], chat: bool, limits: &Limits) -> Result<GenerationRequest, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the request body is not valid JSON: {e}"), None))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad("the request body must be a JSON object", None))?;
    let text = if chat {
        chat_text(obj.get("messages"))?
    } else {
        match obj.get("prompt") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
                a[0].as_str().unwrap_or_default().to_string()
            }
            Some(Value::Array(_)) => return Err(ApiError::bad(
                "`prompt` must be one string (lists of prompts and token ids are not supported)",
                Some("prompt"),
            )),
            Some(_) => return Err(ApiError::bad("`prompt` must be a string", Some("prompt"))),
            None => return Err(ApiError::bad("`prompt` is required", Some("prompt"))),
        }
    };
    if text.is_empty() {
        let param = if chat { "messages" } else { "prompt" };
        return Err(ApiError::bad(format!("`{param}` is empty"), Some(param)));
    }
    let max_tokens_field = if chat && obj.contains_key("max_completion_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let max_tokens = match obj.get(max_tokens_field) {
        None | Some(Value::Null) => limits.default_max_tokens.min(limits.max_tokens),
        Some(v) => {
            let n = v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::bad(
                    format!("`{max_tokens_field}` must be a whole number of at least 1"),
                    Some("max_tokens"),
                )
            })?;
            if n > u64::from(limits.max_tokens) {
                return Err(ApiError::bad(
                    format!(
                        "`{max_tokens_field}` is {n}; this server allows at most {} (--max-tokens-limit)",
                        limits.max_tokens
                    ),
                    Some("max_tokens"),
                ));
            }
            n as u32
        }
    };
    let number =
        |name: &'static str, default: f64, ok: fn(f64) -> bool, rule: &str| match obj.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().filter(|x| ok(*x)).ok_or_else(|| {
                ApiError::bad(format!("`{name}` must be a number {rule}"), Some(name))
            }),
        };
    let temperature = number(
        "temperature",
        1.0,
        |t| (0.0..=2.0).contains(&t),
        "from 0 to 2",
    )?;
    let top_p = number("top_p", 1.0, |p| p > 0.0 && p <= 1.0, "above 0, at most 1")?;
    let flag = |name: &'static str| match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad(
            format!("`{name}` must be true or false"),
            Some(name),
        )),
    };
    let stream = flag("stream")?;
    let ignore_eos = flag("ignore_eos")?;
    if let Some(n) = obj.get("n").filter(|n| !n.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(ApiError::bad("only `n` = 1 is supported", Some("n")));
        }
    }
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| ApiError::bad("`seed` must be a whole number >= 0", Some("seed")))?,
        ),
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let model = match obj.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(ApiError::bad("`model` must be a string", Some("model"))),
    };
    Ok(GenerationRequest {
        text,
        chat,
        max_tokens,
        temperature,
        top_p,
        seed,
        stream,
        include_usage,
        ignore_eos,
        model,
    })
}

/// Chat messages as the text of one user turn: a single user message as it is; several
/// messages as "role: content" lines (the engine's chat template takes one user turn).
fn chat_text(messages: Option<&Value>) -> Result<String, ApiError> {
    let list = messages
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::bad("`messages` must be a non-empty list", Some("messages")))?;
    let mut turns = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad(
                format!("`messages[{i}].role` must be a string"),
                Some("messages"),
            )
        })?;
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            // Content parts: the text ones, joined.
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => {
                return Err(ApiError::bad(
                    format!("`messages[{i}].content` must be a string or a list of text parts"),
                    Some("messages"),
                ))
            }
        };
        turns.push((role.to_string(), content));
    }
    Ok(match turns.as_slice() {
        [(role, content)] if role == "user" => content.clone(),
        _ => turns
            .iter()
            .map(|(r, c)| format!("{r}: {c}"))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// Shapes of answers and stream chunks.
pub struct Shapes<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    pub chat: bool,
}

pub fn usage(prompt_tokens: usize, completion_tokens: usize, cached: Option<usize>) -> Value {
    let mut usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    if let Some(cached) = cached {
        usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    usage
}

impl Shapes<'_> {
    pub fn answer(&self, text: &str, finish: &str, usage: Value) -> Value {
        let choice = if self.chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
        };
        json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage,
        })
    }

    /// A stream chunk with `text` (chat: a content delta), or the opening role delta.
    pub fn chunk(&self, text: Option<&str>, finish: Option<&str>) -> Value {
        let choice = if self.chat {
            let delta = match text {
                Some(t) => json!({"content": t}),
                None if finish.is_none() => json!({"role": "assistant", "content": ""}),
                None => json!({}),
            };
            json!({"index": 0, "delta": delta, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        };
        self.envelope(json!([choice]), Value::Null)
    }

    /// The last chunk with include_usage: no choices, the usage.
    pub fn usage_chunk(&self, usage: Value) -> Value {
        self.envelope(json!([]), usage)
    }

    fn envelope(&self, choices: Value, usage: Value) -> Value {
        json!({
            "id": self.id,
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_tokens: 256,
        default_max_tokens: 16,
    };

    #[test]
    fn completion_request_with_defaults_and_options() {
        let r = parse(
            br#"{"prompt": "Hi", "stream": true, "stream_options": {"include_usage": true}}"#,
            false,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(
            (r.text.as_str(), r.max_tokens, r.temperature),
            ("Hi", 16, 1.0)
        );
        assert!(r.stream && r.include_usage && !r.ignore_eos);
        let r = parse(br#"{"prompt": ["Hi"], "max_tokens": 5, "temperature": 0, "seed": 3, "ignore_eos": true}"#, false, &LIMITS).unwrap();
        assert_eq!(
            (r.max_tokens, r.temperature, r.seed, r.ignore_eos),
            (5, 0.0, Some(3), true)
        );
    }

    #[test]
    fn chat_messages_become_one_turn() {
        let r = parse(
            br#"{"messages": [{"role": "user", "content": "Hello"}]}"#,
            true,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(r.text, "Hello");
        let r = parse(br#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_completion_tokens": 4}"#, true, &LIMITS).unwrap();
        assert_eq!(
            (r.text.as_str(), r.max_tokens),
            ("system: Be brief.\nuser: Hi", 4)
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, chat, expect) in [
            (&b"{\"prompt\": "[..], false, "not valid JSON"),
            (b"[1]", false, "JSON object"),
            (b"{}", false, "`prompt` is required"),
            (br#"{"prompt": 3}"#, false, "`prompt` must be a string"),
            (br#"{"prompt": ""}"#, false, "`prompt` is empty"),
            (br#"{"prompt": "a", "max_tokens": 0}"#, false, "at least 1"),
            (
                br#"{"prompt": "a", "max_tokens": 1000}"#,
                false,
                "at most 256",
            ),
            (
                br#"{"prompt": "a", "temperature": 3}"#,
                false,
                "`temperature`",
            ),
            (br#"{"prompt": "a", "n": 2}"#, false, "`n` = 1"),
            (
                br#"{"prompt": "a", "stream": "yes"}"#,
                false,
                "`stream` must be true or false",
            ),
            (br#"{"messages": []}"#, true, "non-empty list"),
            (
                br#"{"messages": [{"role": "user"}]}"#,
                true,
                "messages[0].content",
            ),
        ] {
            let err = parse(body, chat, &LIMITS).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(
                err.message.contains(expect),
                "{}: {}",
                String::from_utf8_lossy(body),
                err.message
            );
        }
    }

    #[test]
    fn chunks_and_answers_have_the_openai_shape() {
        let s = Shapes {
            id: "cmpl-1",
            created: 1,
            model: "m",
            chat: true,
        };
        assert_eq!(
            s.chunk(None, None)["choices"][0]["delta"]["role"],
            "assistant"
        );
        assert_eq!(
            s.chunk(Some("x"), None)["choices"][0]["delta"]["content"],
            "x"
        );
        assert_eq!(
            s.chunk(None, Some("length"))["choices"][0]["finish_reason"],
            "length"
        );
        assert_eq!(s.usage_chunk(usage(2, 3, None))["usage"]["total_tokens"], 5);
        let a = Shapes { chat: false, ..s }.answer("hi", "stop", usage(1, 1, Some(0)));
        assert_eq!(a["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(
            (a["object"].as_str(), a["choices"][0]["text"].as_str()),
            (Some("text_completion"), Some("hi"))
        );
    }
}
