//! The APIs the load generator speaks: what each request body looks like and how each
//! response (whole or streamed) is read back into text pieces and token counts.

use serde_json::{json, Value};

use crate::workload::prompts::Prompt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// OpenAI-compatible /v1/completions (vLLM, llama.cpp, Ollama, TGI, inferbench serve).
    OpenaiCompletions,
    /// OpenAI-compatible /v1/chat/completions: the prompt as one user message.
    OpenaiChat,
    /// Text Generation Inference: /generate, or /generate_stream with --stream.
    Tgi,
    /// Any JSON POST: --body is the request, --path the endpoint; success is a 2xx answer.
    Generic,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::OpenaiCompletions => "openai-completions",
            BackendKind::OpenaiChat => "openai-chat",
            BackendKind::Tgi => "tgi",
            BackendKind::Generic => "generic",
        }
    }

    pub fn supports_stream(self) -> bool {
        self != BackendKind::Generic
    }

    pub fn is_openai(self) -> bool {
        matches!(
            self,
            BackendKind::OpenaiCompletions | BackendKind::OpenaiChat
        )
    }

    pub fn default_path(self, stream: bool) -> &'static str {
        match (self, stream) {
            (BackendKind::OpenaiCompletions, _) => "/v1/completions",
            (BackendKind::OpenaiChat, _) => "/v1/chat/completions",
            (BackendKind::Tgi, false) => "/generate",
            (BackendKind::Tgi, true) => "/generate_stream",
            (BackendKind::Generic, _) => "/",
        }
    }
}

/// How every request of a run is built.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: BackendKind,
    pub stream: bool,
    /// The `model` field of OpenAI requests.
    pub model: String,
    /// Ask the server to generate exactly max_tokens (vLLM's `ignore_eos`).
    pub ignore_eos: bool,
    /// Generic backend: the body, with every "{prompt}" string replaced by the prompt text.
    pub body_template: Option<Value>,
}

/// One streamed event, read.
#[derive(Debug, Default, PartialEq)]
pub struct StreamEvent {
    /// Generated text in this event (may be empty, e.g. a role-only chat delta).
    pub text: String,
    pub usage: Option<Usage>,
    /// The server says the stream is over (OpenAI's [DONE], TGI's final event).
    pub done: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Prompt tokens served from the server's prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`), when it says.
    pub cached_prompt_tokens: Option<u64>,
}

/// A whole (non-streamed) answer, read.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub usage: Usage,
}

/// What went wrong reading an answer: the server reported an error inside a 200 answer,
/// or the answer is not what the API defines.
#[derive(Debug, PartialEq)]
pub enum ReadError {
    ServerError(String),
    Malformed(String),
}

impl Backend {
    pub fn body(&self, prompt: &Prompt) -> Value {
        let mut body = match self.kind {
            BackendKind::OpenaiCompletions => json!({
                "model": self.model,
                "prompt": prompt.transcript(),
                "max_tokens": prompt.max_tokens,
                "stream": self.stream,
            }),
            BackendKind::OpenaiChat => json!({
                "model": self.model,
                "messages": messages(prompt),
                "max_tokens": prompt.max_tokens,
                "stream": self.stream,
            }),
            BackendKind::Tgi => {
                let mut parameters = json!({
                    "max_new_tokens": prompt.max_tokens,
                    "details": true,
                });
                // TGI refuses temperature 0; leaving it out is greedy.
                if let Some(t) = prompt.temperature.filter(|t| *t > 0.0) {
                    parameters["temperature"] = json!(t);
                    parameters["do_sample"] = json!(true);
                }
                return json!({"inputs": prompt.transcript(), "parameters": parameters});
            }
            BackendKind::Generic => {
                let template = self.body_template.clone().unwrap_or(Value::Null);
                return substitute_prompt(template, &prompt.transcript());
            }
        };
        if let Some(t) = prompt.temperature {
            body["temperature"] = json!(t);
        }
        if self.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if self.ignore_eos {
            body["ignore_eos"] = json!(true);
        }
        body
    }

    /// Read one SSE `data` payload.
    pub fn stream_event(&self, data: &str) -> Result<StreamEvent, ReadError> {
        if self.kind.is_openai() && data.trim() == "[DONE]" {
            return Ok(StreamEvent {
                done: true,
                ..Default::default()
            });
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ReadError::Malformed(format!(
                "stream event is not JSON ({e}): {}",
                super::sse::truncate(data, 120)
            ))
        })?;
        if let Some(err) = v.get("error") {
            return Err(ReadError::ServerError(error_text(err)));
        }
        match self.kind {
            BackendKind::Tgi => {
                let text = v
                    .pointer("/token/text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("TGI stream event without token.text", data))?;
                let special = v
                    .pointer("/token/special")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let done = v.get("generated_text").is_some_and(|g| !g.is_null());
                let usage = v.get("details").filter(|d| !d.is_null()).map(|d| Usage {
                    completion_tokens: d.get("generated_tokens").and_then(Value::as_u64),
                    ..Usage::default()
                });
                Ok(StreamEvent {
                    text: if special { String::new() } else { text.into() },
                    usage,
                    done,
                })
            }
            _ => {
                let usage = v.get("usage").filter(|u| !u.is_null()).map(read_usage);
                let choices = v
                    .get("choices")
                    .and_then(Value::as_array)
                    .ok_or_else(|| malformed("stream event without a choices list", data))?;
                let pointer = if self.kind == BackendKind::OpenaiChat {
                    "/delta/content"
                } else {
                    "/text"
                };
                // The usage-only last chunk has an empty choices list.
                let text = match choices.first() {
                    None if usage.is_some() => String::new(),
                    None => return Err(malformed("stream event with no choices", data)),
                    Some(c) => c
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                };
                Ok(StreamEvent {
                    text,
                    usage,
                    done: false,
                })
            }
        }
    }

    /// Read a whole answer.
    pub fn answer(&self, body: &[u8]) -> Result<Answer, ReadError> {
        if self.kind == BackendKind::Generic {
            // Any 2xx body is a success; JSON with usage is counted when there is some.
            let usage = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("usage").map(read_usage))
                .unwrap_or_default();
            return Ok(Answer {
                text: String::new(),
                usage,
            });
        }
        let text = String::from_utf8_lossy(body);
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ReadError::Malformed(format!(
                "answer is not JSON ({e}): {}",
                super::sse::truncate(&text, 120)
            ))
        })?;
        if let Some(err) = v.get("error") {
            return Err(ReadError::ServerError(error_text(err)));
        }
        match self.kind {
            BackendKind::Tgi => {
                // /generate answers an object; some versions a one-element list.
                let v = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
                let generated = v
                    .get("generated_text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("TGI answer without generated_text", &text))?;
                Ok(Answer {
                    text: generated.into(),
                    usage: Usage {
                        completion_tokens: v
                            .pointer("/details/generated_tokens")
                            .and_then(Value::as_u64),
                        ..Usage::default()
                    },
                })
            }
            _ => {
                let pointer = if self.kind == BackendKind::OpenaiChat {
                    "/choices/0/message/content"
                } else {
                    "/choices/0/text"
                };
                let generated = v
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(&format!("answer without {pointer}"), &text))?;
                Ok(Answer {
                    text: generated.into(),
                    usage: v.get("usage").map(read_usage).unwrap_or_default(),
                })
            }
        }
    }
}

/// The chat messages of a prompt: its conversation's earlier turns, then its own.
fn messages(prompt: &Prompt) -> Value {
    let mut messages = Vec::with_capacity(prompt.history.len() * 2 + 1);
    for (user, assistant) in &prompt.history {
        messages.push(json!({"role": "user", "content": user}));
        messages.push(json!({"role": "assistant", "content": assistant}));
    }
    messages.push(json!({"role": "user", "content": prompt.text}));
    Value::Array(messages)
}

fn malformed(what: &str, data: &str) -> ReadError {
    ReadError::Malformed(format!("{what}: {}", super::sse::truncate(data, 120)))
}

fn read_usage(u: &Value) -> Usage {
    Usage {
        prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64),
        completion_tokens: u.get("completion_tokens").and_then(Value::as_u64),
        cached_prompt_tokens: u
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64),
    }
}

fn error_text(err: &Value) -> String {
    let text = err
        .get("message")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| err.as_str().map(String::from))
        .unwrap_or_else(|| err.to_string());
    super::sse::truncate(&text, 200)
}

/// Replace every string "{prompt}" inside the template (at any depth) by the prompt.
fn substitute_prompt(template: Value, prompt: &str) -> Value {
    match template {
        Value::String(s) if s.contains("{prompt}") => Value::String(s.replace("{prompt}", prompt)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| substitute_prompt(v, prompt))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, substitute_prompt(v, prompt)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(kind: BackendKind, stream: bool) -> Backend {
        Backend {
            kind,
            stream,
            model: "m".into(),
            ignore_eos: false,
            body_template: None,
        }
    }

    fn prompt() -> Prompt {
        Prompt {
            text: "Hi".into(),
            max_tokens: 8,
            temperature: Some(0.0),
            history: Vec::new(),
        }
    }

    #[test]
    fn a_conversation_s_earlier_turns_go_with_each_request() {
        let p = Prompt {
            history: vec![("Hello".into(), "Hi there".into())],
            text: "And you?".into(),
            ..prompt()
        };
        let chat = backend(BackendKind::OpenaiChat, false).body(&p);
        let roles: Vec<&str> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(chat["messages"][1]["content"], "Hi there");
        let text = backend(BackendKind::OpenaiCompletions, false).body(&p);
        assert_eq!(
            text["prompt"],
            "User: Hello\nAssistant: Hi there\nUser: And you?\nAssistant:"
        );
        assert_eq!(
            backend(BackendKind::Tgi, false).body(&p)["inputs"],
            text["prompt"]
        );
    }

    #[test]
    fn openai_bodies_carry_model_prompt_limits_and_stream_usage() {
        let b = backend(BackendKind::OpenaiChat, true).body(&prompt());
        assert_eq!(b["messages"][0]["content"], "Hi");
        assert_eq!(b["max_tokens"], 8);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let b = backend(BackendKind::OpenaiCompletions, false).body(&prompt());
        assert_eq!(b["prompt"], "Hi");
        assert!(b.get("stream_options").is_none());
    }

    #[test]
    fn tgi_leaves_out_temperature_zero() {
        let b = backend(BackendKind::Tgi, true).body(&prompt());
        assert_eq!(b["inputs"], "Hi");
        assert_eq!(b["parameters"]["max_new_tokens"], 8);
        assert!(b["parameters"].get("temperature").is_none());
    }

    #[test]
    fn generic_template_gets_the_prompt_everywhere() {
        let mut b = backend(BackendKind::Generic, false);
        b.body_template = Some(json!({"a": ["{prompt}!", 3], "b": {"c": "x"}}));
        assert_eq!(b.body(&prompt()), json!({"a": ["Hi!", 3], "b": {"c": "x"}}));
    }

    #[test]
    fn openai_stream_events_text_usage_done() {
        let chat = backend(BackendKind::OpenaiChat, true);
        let e = chat
            .stream_event(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#)
            .unwrap();
        assert_eq!(e.text, "");
        let e = chat
            .stream_event(r#"{"choices":[{"delta":{"content":"Hel"}}]}"#)
            .unwrap();
        assert_eq!(e.text, "Hel");
        let e = chat
            .stream_event(r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#)
            .unwrap();
        assert_eq!(e.usage.unwrap().completion_tokens, Some(5));
        assert!(chat.stream_event("[DONE]").unwrap().done);
        assert!(matches!(
            chat.stream_event("{\"choices\":"),
            Err(ReadError::Malformed(_))
        ));
        assert_eq!(
            chat.stream_event(r#"{"error":{"message":"overloaded"}}"#),
            Err(ReadError::ServerError("overloaded".into()))
        );
    }

    #[test]
    fn tgi_stream_final_event_has_details() {
        let tgi = backend(BackendKind::Tgi, true);
        let e = tgi
            .stream_event(r#"{"token":{"id":1,"text":" a","special":false},"generated_text":null,"details":null}"#)
            .unwrap();
        assert_eq!((e.text.as_str(), e.done), (" a", false));
        let e = tgi
            .stream_event(r#"{"token":{"id":2,"text":"</s>","special":true},"generated_text":" a","details":{"generated_tokens":2}}"#)
            .unwrap();
        assert_eq!((e.text.as_str(), e.done), ("", true));
        assert_eq!(e.usage.unwrap().completion_tokens, Some(2));
    }

    #[test]
    fn whole_answers() {
        let a = backend(BackendKind::OpenaiCompletions, false)
            .answer(
                br#"{"choices":[{"text":"ok"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
            )
            .unwrap();
        assert_eq!(a.text, "ok");
        assert_eq!(a.usage.prompt_tokens, Some(2));
        let a = backend(BackendKind::Tgi, false)
            .answer(br#"[{"generated_text":"yo","details":{"generated_tokens":1}}]"#)
            .unwrap();
        assert_eq!(a.text, "yo");
        assert!(matches!(
            backend(BackendKind::OpenaiChat, false).answer(b"<html>"),
            Err(ReadError::Malformed(_))
        ));
    }
}
