//! The load generator against a fault-injecting server on loopback, and against
//! `inferbench serve` end to end. The fault server picks its misbehaviour from the prompt.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{assert_clean_failure, inferbench, load_json, start_serve, stderr, stdout};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The API key the fault tests send (and look for in every output).
const SECRET: &str = "sk-test-not-to-be-written-0451";

/// Each prompt names a behaviour of the fault server.
const FAULTS: &[&str] = &[
    "ok",
    "reset",
    "stall",
    "429",
    "500",
    "503",
    "malformed",
    "nodone",
    "huge",
    "error-event",
    "badjson",
    "ok",
];

/// A server that answers OpenAI streaming requests, misbehaving as the prompt says.
pub(crate) fn start_fault_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(socket));
            }
        });
    });
    rx.recv().unwrap()
}

/// Read one request (head and Content-Length body); None when the client closed.
async fn read_request(socket: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut byte).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some((head, body))
}

fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

fn text_event(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"text\":\"{text}\"}}]}}\n\n")
}

async fn connection(mut socket: TcpStream) {
    while let Some((head, body)) = read_request(&mut socket).await {
        if head.starts_with("GET /v1/models") {
            let json = r#"{"data":[{"id":"fault-model"}]}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            continue;
        }
        if head.starts_with("GET /vllm-metrics") {
            // vLLM's names carry colons; its token counter grows 100 a scrape.
            static SCRAPES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SCRAPES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let text = format!(
                "# HELP vllm:num_requests_running Number of requests running.\n\
                 # TYPE vllm:num_requests_running gauge\n\
                 vllm:num_requests_running{{model_name=\"fault-model\"}} {}.0\n\
                 # TYPE vllm:prompt_tokens_total counter\n\
                 vllm:prompt_tokens_total{{model_name=\"fault-model\"}} {}.0\n\
                 # TYPE vllm:e2e_request_latency_seconds histogram\n\
                 vllm:e2e_request_latency_seconds_bucket{{le=\"+Inf\",model_name=\"fault-model\"}} 5.0\n\
                 vllm:e2e_request_latency_seconds_count{{model_name=\"fault-model\"}} 5.0\n",
                n % 4,
                100 * n
            );
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            continue;
        }
        if head.starts_with("GET /metrics") {
            // A web page where Prometheus text should be.
            let html = "<!DOCTYPE html><html><body><h1>Metrics</h1></body></html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{html}",
                html.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            continue;
        }
        if head.starts_with("POST /generate") {
            if !tgi_answer(&mut socket, head.starts_with("POST /generate_stream")).await {
                return;
            }
            continue;
        }
        let auth = head.lines().find_map(|l| {
            l.strip_prefix("authorization: ")
                .or(l.strip_prefix("Authorization: "))
        });
        if auth.is_some_and(|a| a != format!("Bearer {SECRET}")) {
            let _ = socket
                .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
                .await;
            continue;
        }
        let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let fault = request["prompt"].as_str().unwrap_or("ok").to_string();
        let keep_open = fault_answer(&mut socket, &fault).await;
        if !keep_open {
            return;
        }
    }
}

/// Answer one request; false when the connection must not be reused.
async fn fault_answer(socket: &mut TcpStream, fault: &str) -> bool {
    let mut out = Vec::new();
    match fault {
        "429" | "500" | "503" => {
            let json = r#"{"error":{"message":"injected"}}"#;
            let answer = format!(
                "HTTP/1.1 {fault} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            return true;
        }
        "reset" => {
            out.extend_from_slice(STREAM_HEAD.as_bytes());
            out.extend(chunk(&text_event("a")));
            let _ = socket.write_all(&out).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Linger 0: closing sends RST instead of FIN.
            let _ = socket.set_zero_linger();
            return false;
        }
        "stall" => {
            out.extend_from_slice(STREAM_HEAD.as_bytes());
            out.extend(chunk(&text_event("a")));
            let _ = socket.write_all(&out).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            return false;
        }
        _ => {}
    }
    out.extend_from_slice(STREAM_HEAD.as_bytes());
    let events: Vec<String> = match fault {
        "malformed" => vec![text_event("a"), "this is not SSE\n\n".into()],
        "nodone" => vec![text_event("a"), text_event("b")],
        "huge" => (0..2000).map(|_| text_event(&"x".repeat(100))).collect(),
        "error-event" => vec![
            text_event("a"),
            "data: {\"error\":{\"message\":\"engine fell over\"}}\n\n".into(),
        ],
        "badjson" => vec![text_event("a"), "data: {\"choices\": [\n\n".into()],
        _ => vec![
            text_event("Hello"),
            text_event(" there"),
            text_event(" friend"),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}\n\n"
                .into(),
            "data: [DONE]\n\n".into(),
        ],
    };
    for e in events {
        out.extend(chunk(&e));
    }
    out.extend_from_slice(b"0\r\n\r\n");
    socket.write_all(&out).await.is_ok()
}

/// TGI's shapes: /generate answers JSON, /generate_stream token events with the details
/// on the last one (and no [DONE]).
async fn tgi_answer(socket: &mut TcpStream, stream: bool) -> bool {
    if !stream {
        let json = r#"{"generated_text":" Hi there","details":{"finish_reason":"length","generated_tokens":2}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        return socket.write_all(answer.as_bytes()).await.is_ok();
    }
    let mut out = STREAM_HEAD.as_bytes().to_vec();
    for (i, text) in [" Hi", " there", " friend"].iter().enumerate() {
        let last = i == 2;
        let event = serde_json::json!({
            "token": {"id": i, "text": text, "logprob": -0.1, "special": false},
            "generated_text": if last { Value::from(" Hi there friend") } else { Value::Null },
            "details": if last { serde_json::json!({"finish_reason": "length", "generated_tokens": 3}) } else { Value::Null },
        });
        out.extend(chunk(&format!("data:{event}\n\n")));
    }
    out.extend_from_slice(b"0\r\n\r\n");
    socket.write_all(&out).await.is_ok()
}

pub(crate) fn write_prompts(dir: &Path, prompts: &[&str]) -> std::path::PathBuf {
    let path = dir.join("prompts.jsonl");
    let lines: Vec<String> = prompts
        .iter()
        .map(|p| serde_json::json!({"prompt": p, "max_tokens": 3}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn only_run(dir: &Path) -> Value {
    let runs: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "one run folder in {}", dir.display());
    let run_dir = runs[0].path();
    assert!(run_dir.join("scenarios.csv").is_file());
    load_json(&run_dir.join("run.json"))
}

#[test]
fn every_fault_is_accounted_for_and_classified() {
    let addr = start_fault_server();
    let tmp = tempfile::tempdir().unwrap();
    let prompts = write_prompts(tmp.path(), FAULTS);
    let out_dir = tmp.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &format!("http://{addr}"),
        "--stream",
        "--prompts",
        prompts.to_str().unwrap(),
        "-c",
        "4",
        "-n",
        &FAULTS.len().to_string(),
        "--warmup",
        "0",
        "--timeout",
        "1s",
        "--max-response-bytes",
        "100000",
        "--api-key",
        SECRET,
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = only_run(&out_dir);
    assert_eq!(run["kind"], "http");
    assert_eq!(run["target"]["model"], "fault-model");
    assert_eq!(run["target"]["api_key_sent"], true);
    // The key went to the server (it checks it), and nowhere else.
    let run_dir = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in ["run.json", "scenarios.csv"] {
        let text = std::fs::read_to_string(run_dir.join(file)).unwrap();
        assert!(!text.contains(SECRET), "{file} holds the API key");
    }
    assert!(!stdout(&o).contains(SECRET) && !stderr(&o).contains(SECRET));
    let s = &run["scenarios"][0];
    assert_eq!(s["requests"], FAULTS.len());
    assert_eq!(s["succeeded"], 2, "{s:#}");
    let errors = &s["errors"];
    assert_eq!(errors["disconnected"], 1, "{errors}");
    assert_eq!(errors["timeout"], 1, "{errors}");
    assert_eq!(errors["http_status"], 3, "{errors}");
    assert_eq!(errors["malformed"], 4, "{errors}");
    assert_eq!(errors["server_error"], 1, "{errors}");
    let codes = &s["status_codes"];
    assert_eq!(
        (
            codes["429"].as_u64(),
            codes["500"].as_u64(),
            codes["503"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let examples = s["error_examples"].to_string();
    for expect in [
        "[DONE]",
        "max-response-bytes",
        "SSE line",
        "engine fell over",
    ] {
        assert!(examples.contains(expect), "{expect} in {examples}");
    }
    // The successes were timed: TTFT and the usage's 3 tokens each.
    assert_eq!(s["output_tokens"], 6);
    assert_eq!(s["ttft"]["count"], 2);
    let table = stdout(&o);
    assert!(
        table.contains("http_status 3 (429×1 500×1 503×1)"),
        "{table}"
    );

    // Against a clean run of the same shape, the faulty one fails the error-rate rule.
    let clean_prompts = tmp.path().join("clean");
    std::fs::create_dir(&clean_prompts).unwrap();
    let clean_prompts = write_prompts(&clean_prompts, &["ok"]);
    let clean_dir = tmp.path().join("clean-results");
    let url = format!("http://{addr}");
    let o = inferbench(&[
        "load",
        "--url",
        &url,
        "--stream",
        "--prompts",
        clean_prompts.to_str().unwrap(),
        "-c",
        "4",
        "-n",
        "12",
        "--warmup",
        "0",
        "-o",
        clean_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let clean = std::fs::read_dir(&clean_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = inferbench(&[
        "compare",
        clean.to_str().unwrap(),
        run_dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let verdict = stdout(&o);
    let errors_row = verdict
        .lines()
        .find(|l| l.contains("| errors"))
        .unwrap_or("");
    assert!(
        errors_row.contains("83.33%") && errors_row.contains("FAIL"),
        "{verdict}"
    );
}

#[test]
fn an_unreachable_server_is_connect_errors_not_a_crash() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--model",
        "m",
        "-n",
        "3",
        "--warmup",
        "0",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("c1: 3 of 3 requests failed"),
        "{}",
        stderr(&o)
    );
    let s = &only_run(&out_dir)["scenarios"][0];
    assert_eq!(
        (s["requests"].as_u64(), s["errors"]["connect"].as_u64()),
        (Some(3), Some(3))
    );
    // CI can fail a run on its errors; what was measured is written all the same.
    let strict_dir = tmp.path().join("strict");
    let o = inferbench(&[
        "load",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--model",
        "m",
        "-n",
        "2",
        "--warmup",
        "0",
        "--max-error-rate",
        "0.5",
        "-o",
        strict_dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("c1: 100.0% of requests failed, above --max-error-rate 50.0%"),
        "{}",
        stderr(&o)
    );
    assert_eq!(only_run(&strict_dir)["scenarios"][0]["failed"], 2);
}

#[test]
fn bad_prompt_lines_and_arguments_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"fine\"}\n{\"prompt\": \"x\", \"max_tokens\": -1}\n",
    )
    .unwrap();
    let o = inferbench(&["load", "--prompts", path.to_str().unwrap(), "--model", "m"]);
    assert_clean_failure(&o, &["p.jsonl line 2"]);
    let o = inferbench(&[
        "load",
        "--url",
        "ftp://x",
        "--model",
        "m",
        "-o",
        tmp.path().to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["--url ftp://x", "http://"]);
    let o = inferbench(&["load", "--slo", "ttft=soon", "--model", "m"]);
    assert_clean_failure(&o, &["--slo", "ttft=soon"]);
    let o = inferbench(&["load", "--backend", "generic"]);
    assert_clean_failure(&o, &["--body"]);
}

fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

#[test]
fn serve_answers_openai_requests_and_refuses_bad_ones_cleanly() {
    let server = start_serve(&["--max-body-bytes", "2000", "--max-tokens-limit", "64"]);
    let base = &server.url;
    let (status, body) = http("GET", &format!("{base}/health"), "");
    assert_eq!(status, 200, "{body}");
    let (_, models) = http("GET", &format!("{base}/v1/models"), "");
    assert!(models.contains("SmolLM2-135M-Instruct"), "{models}");
    let (status, body) = http(
        "POST",
        &format!("{base}/v1/completions"),
        r#"{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"completion_tokens\":4") && body.contains("Paris"),
        "{body}"
    );
    for (body, code, expect) in [
        ("{\"prompt\": ", 400, "not valid JSON"),
        (r#"{"prompt": "a", "max_tokens": 65}"#, 400, "at most 64"),
        (r#"{"prompt": "a", "model": "gpt-9"}"#, 404, "gpt-9"),
    ] {
        let (status, answer) = http("POST", &format!("{base}/v1/completions"), body);
        assert_eq!(status, code, "{answer}");
        assert!(
            answer.contains(expect) && answer.contains("\"error\""),
            "{answer}"
        );
    }
    let big = format!("{{\"prompt\": \"{}\"}}", "a ".repeat(2000));
    let (status, answer) = http("POST", &format!("{base}/v1/completions"), &big);
    assert_eq!(status, 413, "{answer}");
    // A streamed chat: role chunk, text, finish, usage, [DONE].
    let (status, stream) = http(
        "POST",
        &format!("{base}/v1/chat/completions"),
        r#"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": true,
            "stream_options": {"include_usage": true}, "ignore_eos": true}"#,
    );
    assert_eq!(status, 200, "{stream}");
    assert!(stream.contains("text/event-stream"), "{stream}");
    assert!(stream.contains("\"role\":\"assistant\""), "{stream}");
    assert!(stream.contains("\"completion_tokens\":3"), "{stream}");
    assert!(stream.contains("data: [DONE]"), "{stream}");
    let (_, metrics) = http("GET", &format!("{base}/metrics"), "");
    assert!(
        metrics.contains("inferbench_requests_total{endpoint=\"completions\",status=\"200\"} 1"),
        "{metrics}"
    );
    // Both generations reached the TTFT histogram, the streamed chat included.
    assert!(
        metrics.contains("inferbench_time_to_first_token_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("inferbench_generation_tokens_total 7"),
        "{metrics}"
    );
    // A valid if extreme nucleus: the top token, not a 500.
    let (status, body) = http(
        "POST",
        &format!("{base}/v1/completions"),
        r#"{"prompt": "The capital of France is", "max_tokens": 2, "temperature": 1, "top_p": 1e-300}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Paris"), "{body}");
}

#[test]
fn slow_clients_and_a_full_mock_queue_are_refused_and_serve_goes_on() {
    use std::io::Read;
    let server = start_serve(&[
        "--mock",
        "--mock-token-delay",
        "300ms",
        "--max-queue",
        "2",
        "--header-timeout",
        "1s",
        "--body-timeout",
        "1s",
    ]);
    let host = server.url.strip_prefix("http://").unwrap().to_string();
    let connect = || {
        let s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    // Headers that never end (slowloris): the connection is closed after --header-timeout.
    let started = std::time::Instant::now();
    let mut slow = connect();
    write!(
        slow,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: 1"
    )
    .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A body shorter than its Content-Length: 408 after --body-timeout.
    let mut short = connect();
    write!(
        short,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"prompt\""
    )
    .unwrap();
    let mut answer = String::new();
    let _ = short.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("--body-timeout") && !answer.contains("backtrace"),
        "{answer}"
    );
    // --max-queue with --mock: two slow answers in flight, the third is told to come back.
    let body = r#"{"prompt": "a", "max_tokens": 5}"#;
    let url = format!("{}/v1/completions", server.url);
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || http("POST", &url, body))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let (status, answer) = http("POST", &url, body);
    assert_eq!(status, 503, "{answer}");
    for b in busy {
        assert_eq!(b.join().unwrap().0, 200);
    }
    let (status, _) = http("POST", &url, body);
    assert_eq!(status, 200, "the queue has room again");
    assert_eq!(http("GET", &format!("{}/health", server.url), "").0, 200);
}

#[test]
fn bodies_refused_as_too_large_are_counted_as_413_not_as_disconnects() {
    // serve reads and drops an oversized body before answering, so a client still sending
    // gets the 413 rather than a reset; load must count every one as such.
    let server = start_serve(&["--mock", "--max-body-bytes", "1000"]);
    let tmp = tempfile::tempdir().unwrap();
    let sizes = [2_000, 200_000, 1 << 20, 8 << 20];
    let prompts: Vec<String> = sizes.iter().map(|n| "x".repeat(*n)).collect();
    let refs: Vec<&str> = prompts.iter().map(|p| p.as_str()).collect();
    let file = write_prompts(tmp.path(), &refs);
    let out_dir = tmp.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--prompts",
        file.to_str().unwrap(),
        "-c",
        "2",
        "-n",
        "16",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = only_run(&out_dir);
    let s = &run["scenarios"][0];
    assert_eq!(s["failed"], 16, "{s:#}");
    assert_eq!(s["errors"], serde_json::json!({"http_status": 16}), "{s:#}");
    assert_eq!(s["status_codes"], serde_json::json!({"413": 16}), "{s:#}");
    assert_eq!(http("GET", &format!("{}/health", server.url), "").0, 200);
}

#[test]
fn load_against_serve_gives_the_full_table_at_every_concurrency() {
    let server = start_serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "-c",
        "1,4",
        "-n",
        "8",
        "--stream",
        "--max-tokens",
        "8",
        // Generous on purpose: at c4 a request waits for three others in serve's one-at-a-time
        // queue, which took over 10 s in a CI run beside the other real-model tests.
        "--slo",
        "ttft=600s",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = only_run(&out_dir);
    assert_eq!(run["status"], "complete");
    let scenarios = run["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    for s in scenarios {
        assert_eq!(
            (s["requests"].as_u64(), s["succeeded"].as_u64()),
            (Some(8), Some(8)),
            "{s:#}"
        );
        for metric in ["ttft", "itl", "tpot", "e2e"] {
            assert!(
                s[metric]["p95_ms"].as_f64().unwrap() > 0.0,
                "{metric} in {s:#}"
            );
        }
        assert!(s["output_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert!(s["input_tokens_per_second"].as_f64().unwrap() > 0.0);
        assert_eq!(s["goodput"]["fraction"], 1.0);
    }
    assert_eq!(run["workload"]["token_counting"], "server usage");
    // One request at a time: four users wait for each other in serve's queue, one user never
    // does (the server's own queue-time counter, scraped, not a timing of this busy machine:
    // c4's TTFT over c1's failed once beside the other real-model tests).
    let queued = |i: usize| {
        scenarios[i]["server_metrics"]["counter_deltas"]["inferbench_queue_time_seconds_sum"]
            .as_f64()
            .unwrap()
    };
    assert!(
        queued(1) > 10.0 * queued(0).max(0.001),
        "queue time c4 {} s vs c1 {} s",
        queued(1),
        queued(0)
    );
    let table = stdout(&o);
    assert!(
        table.contains("| c1 ") && table.contains("| c4 "),
        "{table}"
    );
    // The run compares against itself: no regression.
    let dir = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let d = dir.to_str().unwrap();
    let o = inferbench(&["compare", d, d]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("http/c4"));

    // Synthetic prompts of a given length, fixed output length (the server honours ignore_eos).
    let synthetic_dir = tmp.path().join("synthetic");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--backend",
        "openai-chat",
        "--stream",
        "--input-tokens",
        "24",
        "--output-tokens",
        "5",
        "--ignore-eos",
        "-c",
        "2",
        "-n",
        "4",
        "-o",
        synthetic_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = only_run(&synthetic_dir);
    let s = &run["scenarios"][0];
    assert_eq!(
        (s["succeeded"].as_u64(), s["output_tokens"].as_u64()),
        (Some(4), Some(20)),
        "{s:#}"
    );
    // The chat template wraps each 24-token prompt.
    assert!(s["input_tokens"].as_u64().unwrap() >= 4 * 24, "{s:#}");
    assert!(run["workload"]["source"]
        .as_str()
        .unwrap()
        .contains("24 input / 5 output"));
}

#[test]
fn tgi_streams_and_whole_answers() {
    let addr = start_fault_server();
    let tmp = tempfile::tempdir().unwrap();
    let prompts = write_prompts(tmp.path(), &["ok"]);
    for (stream, tokens) in [(true, 3), (false, 2)] {
        let out_dir = tmp.path().join(format!("results-{stream}"));
        let mut args = vec![
            "load",
            "--backend",
            "tgi",
            "-n",
            "2",
            "--warmup",
            "0",
            "-o",
            out_dir.to_str().unwrap(),
            "--prompts",
            prompts.to_str().unwrap(),
        ];
        let url = format!("http://{addr}");
        args.extend(["--url", &url]);
        if stream {
            args.push("--stream");
        }
        let o = inferbench(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let run = only_run(&out_dir);
        let s = &run["scenarios"][0];
        assert_eq!(s["succeeded"], 2, "{s:#}");
        assert_eq!(s["output_tokens"], 2 * tokens, "{s:#}");
        assert_eq!(s["ttft"].is_null(), !stream, "{s:#}");
        assert_eq!(run["target"]["model"], Value::Null);
    }
}

#[test]
fn open_loop_probe_sweep_and_generic_against_the_mock_server() {
    let server = start_serve(&["--mock", "--mock-token-delay", "1ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--stream",
        "--max-tokens",
        "4",
        "-n",
        "16",
        "--rate",
        "50",
        "--arrival",
        "gamma",
        "--burstiness",
        "0.5",
        "--probe",
        "--probe-concurrency",
        "4",
        "--probe-runs",
        "2",
        "--sweep",
        "--sweep-start",
        "20",
        "--sweep-steps",
        "2",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = only_run(&out_dir);
    let names: Vec<&str> = run["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rate50-gamma0.5",
            "probe-c4",
            "sweep-rate20-gamma0.5",
            "sweep-rate40-gamma0.5"
        ]
    );
    let open = &run["scenarios"][0];
    assert_eq!(open["requests"], 16);
    assert!(open["achieved_rate"].as_f64().unwrap() > 0.0);
    assert_eq!(open["output_tokens"], 64);
    let probe = &run["scenarios"][1];
    assert_eq!(probe["requests"], 8);
    assert_eq!(
        probe["throughput_runs"]["runs"].as_array().unwrap().len(),
        2
    );
    let sweep = &run["sweep"];
    assert_eq!(sweep["rates"], serde_json::json!([20.0, 40.0]));
    assert!(sweep["saturation_rate"].as_f64().is_some(), "{sweep}");
    assert!(
        stdout(&o).contains("sweep: saturation at"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("probe-c4: best run"), "{}", stdout(&o));

    let generic_dir = tmp.path().join("generic");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--backend",
        "generic",
        "--path",
        "/v1/completions",
        "--body",
        r#"{"prompt": "{prompt}", "max_tokens": 2}"#,
        "--units-per-request",
        "3",
        "-n",
        "4",
        "-o",
        generic_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = &only_run(&generic_dir)["scenarios"][0];
    assert_eq!(s["succeeded"], 4, "{s:#}");
    let (units, rps) = (
        s["units_per_second"].as_f64().unwrap(),
        s["requests_per_second"].as_f64().unwrap(),
    );
    assert!(
        (units - 3.0 * rps).abs() < 1e-6 * units.max(1.0),
        "{units} vs {rps}"
    );
}

#[test]
fn ctrl_c_stops_sending_and_keeps_what_was_measured() {
    let server = start_serve(&["--mock", "--mock-token-delay", "5ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("results");
    let json = out_dir.join("stop/run.json");
    // Two scenarios of 5 s each: the first ends at its deadline, the second is cut short.
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args([
            "load",
            "--url",
            &server.url,
            "--stream",
            "--max-tokens",
            "4",
            "-c",
            "2,2",
        ])
        .args([
            "--duration",
            "5s",
            "--run-id",
            "stop",
            "-o",
            out_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::common::wait_for_scenarios(&json, 1, &mut child);
    std::thread::sleep(Duration::from_secs(1)); // into the second scenario, past its warm-up
    crate::common::interrupt(&child);
    let o = child.wait_with_output().unwrap();
    let run = load_json(&json);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(run["status"], "interrupted");
    assert!(run["finished_at"].is_null());
    let scenarios = run["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2, "the cut-short scenario is kept");
    assert_eq!(scenarios[0]["interrupted"], false);
    assert_eq!(scenarios[1]["interrupted"], true);
    for s in scenarios {
        // Requests in flight at the signal finished and were counted.
        assert_eq!(s["requests"], s["succeeded"], "{s:#}");
    }
    assert!(scenarios[0]["requests"].as_u64().unwrap() > 10);
    assert!(stdout(&o).contains("c2 (interrupted)"), "{}", stdout(&o));
}
