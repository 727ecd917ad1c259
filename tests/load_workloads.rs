//! Serving workloads as users run them, through `inferbench load` against `inferbench serve`
//! (the real model and `--mock`) and the fault server of `http.rs`: datasets and their
//! lengths, shared prefixes, conversations, load patterns and their windows, the breaking
//! point, trace replay, and the server's own metrics.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{
    assert_clean_failure, csv_rows, inferbench, load_json, start_serve, stderr, stdout,
};
use crate::http::{start_fault_server, write_prompts};

const SHAREGPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sharegpt-small.json");

/// `inferbench load` with `words` split on whitespace (flags and values without spaces),
/// then `paths` as they are (a checkout or a temporary folder may have spaces in its path).
fn load(words: &str, paths: &[&str]) -> Output {
    let args: Vec<&str> = std::iter::once("load")
        .chain(words.split_whitespace())
        .chain(paths.iter().copied())
        .collect();
    inferbench(&args)
}

/// `load` with `--run-id ID -o OUT` added, which must succeed: its run.json, and the output
/// (for what it said).
fn load_ok(out: &Path, run_id: &str, words: &str, paths: &[&str]) -> (Value, Output) {
    let out_dir = out.to_str().unwrap();
    let with_output = [paths, &["--run-id", run_id, "-o", out_dir]].concat();
    let o = load(words, &with_output);
    assert!(o.status.success(), "{words} {paths:?}: {}", stderr(&o));
    (load_json(&out.join(run_id).join("run.json")), o)
}

/// Each `(words, what stderr must say)` is refused with `code` before any request.
fn refused(code: i32, cases: &[(&str, &str)]) {
    for (words, want) in cases {
        let o = load(&format!("--url http://127.0.0.1:9 --model m {words}"), &[]);
        assert_clean_failure(&o, &[want]);
        assert_eq!(o.status.code(), Some(code), "{words}: {}", stderr(&o));
    }
}

/// `sharegpt:FILE` for a dataset file.
fn sharegpt(path: &str) -> String {
    format!("sharegpt:{path}")
}

#[test]
fn sharegpt_random_lengths_and_shared_prefixes_reach_the_server_as_asked() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let common = format!("--url {} --stream -c 2 -n 22", server.url);

    // ShareGPT: 11 usable conversations of 12, each asking for its answer's length; the
    // mock generates exactly that, so what was asked is what came back.
    let (run, _) = load_ok(
        &out,
        "sharegpt",
        &common,
        &["--dataset", &sharegpt(SHAREGPT)],
    );
    let source = run["workload"]["source"].as_str().unwrap();
    assert!(
        source.contains("11 prompts from 12 conversations")
            && source.contains("1 with no human turn answered"),
        "{source}"
    );
    let lengths = &run["scenarios"][0]["token_lengths"];
    assert_eq!(
        lengths["output"], lengths["requested_output"],
        "{lengths:#}"
    );
    assert_eq!(lengths["output"]["count"], 22);
    assert!(
        lengths["output"]["max"].as_u64().unwrap() > 40,
        "{lengths:#}"
    );

    // Random lengths: 40 ±50% in, normal(12, 3) out, two shared prefixes of 48 tokens.
    let (run, _) = load_ok(
        &out,
        "random",
        &format!(
            "{common} --input-tokens 40 --input-spread 0.5 --output-dist normal:12:3 \
             --prefix-shared 2:48"
        ),
        &[],
    );
    let s = &run["scenarios"][0];
    let asked = &s["token_lengths"]["requested_output"];
    let (lo, hi) = (
        asked["min"].as_u64().unwrap(),
        asked["max"].as_u64().unwrap(),
    );
    assert!(lo < hi && lo >= 1 && hi <= 30, "{asked:#}");
    // The mock caches 16-word blocks: every prompt after the first of its group finds at
    // least one block of its shared prefix.
    let cached = s["cached_prompt_tokens"].as_u64().unwrap();
    assert!(cached >= 16 * 20, "{cached} cached prompt tokens: {s:#}");
    // scenarios.csv carries the same figures.
    let rows = csv_rows(&out.join("random/scenarios.csv"));
    let cell = |name: &str| rows[0][name].as_str();
    assert_eq!(
        cell("requested_output_tokens_max"),
        hi.to_string(),
        "{rows:?}"
    );
    assert_eq!(cell("cached_prompt_tokens"), cached.to_string(), "{rows:?}");
    let mean: f64 = cell("input_tokens_mean").parse().unwrap();
    let json_mean = s["token_lengths"]["input"]["sum"].as_f64().unwrap()
        / s["token_lengths"]["input"]["count"].as_f64().unwrap();
    assert!((mean - json_mean).abs() < 1e-3, "{mean} vs {json_mean}");
    assert!(run["workload"]["source"]
        .as_str()
        .unwrap()
        .contains("2 shared prefixes of 48 tokens"));
}

#[test]
fn bad_datasets_and_length_flags_are_refused_before_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.json");
    std::fs::write(
        &broken,
        b"[{\"conversations\": [{\"from\": \"human\", \"value\": \"\xff\"}]}]",
    )
    .unwrap();
    // A file that cannot be read or parsed is a failure (exit 1), as everywhere.
    let missing = tmp.path().join("none.json");
    for (path, want) in [
        (&broken, "broken.json line 1: not UTF-8"),
        (&missing, "none.json: cannot read it"),
    ] {
        let dataset = sharegpt(path.to_str().unwrap());
        let o = load("--url http://127.0.0.1:9 --model m --dataset", &[&dataset]);
        assert_clean_failure(&o, &[want]);
        assert_eq!(o.status.code(), Some(1), "{path:?}: {}", stderr(&o));
    }
    refused(
        2,
        &[
            ("--dataset sonnet", "--dataset sonnet: not a dataset"),
            ("--dataset random", "random prompts need --input-tokens"),
            ("--input-tokens 8", "need --output-tokens"),
            (
                "--input-dist normal:5 --output-tokens 3",
                "--input-dist normal:5",
            ),
            (
                "--input-tokens 8 --output-tokens 2 --input-spread 1.5",
                "--input-spread 1.5",
            ),
            ("--output-tokens 2", "--output-tokens shapes random prompts"),
            ("--prefix-shared 4", "--prefix-shared 4: give N:LEN"),
            ("--prefix-shared 2:9999999999", "more than the 1048576"),
            (
                "--input-dist normal:1e12:1 --output-tokens 3",
                "more than the 1048576",
            ),
        ],
    );
}

#[test]
fn a_ramp_pattern_is_followed_window_by_window() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = load_ok(
        &tmp.path().join("results"),
        "ramp",
        &format!(
            "--url {} --max-tokens 2 --pattern ramp --from 50 --to 350 --duration 3s \
             --arrival constant",
            server.url
        ),
        &[],
    );
    let s = &run["scenarios"][0];
    assert_eq!(s["name"], "ramp50-350");
    assert_eq!(s["shape"]["pattern"]["kind"], "ramp");
    let windows = s["windows"].as_array().unwrap();
    // Second k of a 50 -> 350 ramp over 3 s offers 50 + 100 (k + 0.5) requests.
    for (k, want) in [100.0, 200.0, 300.0].iter().enumerate() {
        let offered = windows[k]["offered"].as_f64().unwrap();
        let sent = windows[k]["sent"].as_f64().unwrap();
        assert!(
            (offered - want).abs() <= 2.0,
            "second {k}: {offered} offered, want {want}"
        );
        // Loose: a sender descheduled for 100 ms at a second's edge moves 10% of its
        // requests into the next window on a busy CI machine (scripts/load-accuracy.sh
        // measures the accuracy, 2%, on an idle one).
        assert!(
            (sent - offered).abs() <= 0.15 * want,
            "second {k}: {sent} sent of {offered}"
        );
    }
    assert_eq!(s["requests"], 600);
}

#[test]
fn a_ramp_of_users_joins_and_leaves_a_closed_loop() {
    let server = start_serve(&["--mock", "--mock-token-delay", "5ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let (run, _) = load_ok(
        &tmp.path().join("results"),
        "users",
        &format!(
            "--url {} --stream --max-tokens 20 --pattern ramp-down --users --from 1 --to 12 \
             --duration 2s",
            server.url
        ),
        &[],
    );
    let s = &run["scenarios"][0];
    assert_eq!(s["name"], "users-ramp-down1-12");
    assert_eq!(s["shape"]["mode"], "user_pattern");
    // Users in flight, second by second: up to the top, then down again.
    let in_flight: Vec<f64> = s["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["in_flight"].as_f64().unwrap())
        .collect();
    let top = in_flight.iter().cloned().fold(0.0, f64::max);
    assert!(
        top > 6.0 && in_flight[0] < 5.0 && in_flight[3] < 5.0,
        "{in_flight:?}"
    );
    let running = &s["server_metrics"]["gauges"]["inferbench_requests_running"]["max"];
    assert!(running.as_f64().unwrap() >= 8.0, "{s:#}");
    let o = load(&format!("--url {} --users -c 2", server.url), &[]);
    assert_clean_failure(&o, &["--users goes with --pattern"]);
}

#[test]
fn bad_patterns_are_refused_naming_the_flag() {
    refused(
        2,
        &[
            (
                "--pattern ramp --to 5 --duration 5s",
                "--pattern ramp needs --from",
            ),
            (
                "--pattern ramp --from 1 --to 5",
                "--pattern ramp needs --duration",
            ),
            ("--pattern ramp --from -1 --to 5 --duration 1s", "--from -1"),
            ("--pattern soak --rate 5 --duration 0s", "--duration"),
            ("--pattern step --from 1 --to 5", "needs --step-duration"),
            (
                "--pattern spike --rate 5 --spike-rate 2 --duration 9s",
                "--spike-rate 2",
            ),
            ("--pattern soak --rate 5,6 --duration 9s", "one --rate"),
            (
                "--pattern soak --rate 5 --duration 9s -c 2",
                "does not go with -c",
            ),
            ("--breaking-point --sweep", "give one"),
            ("--multi-turn 2 --rate 5", "closed loop"),
            (
                "--pattern ramp --users --from 1 --to 1e9 --duration 1s",
                "at most 100000 users",
            ),
        ],
    );
}

#[test]
fn the_breaking_point_is_found_and_a_server_that_never_holds_is_reported() {
    // Four answers at once, 16 words 10 ms apart: about 25 req/s before the queue is full.
    let server = start_serve(&["--mock", "--mock-token-delay", "10ms", "--max-queue", "4"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let (run, o) = load_ok(
        &out,
        "bp",
        &format!(
            "--url {} --stream --max-tokens 16 --breaking-point --sweep-start 5 \
             --duration 1500ms --breaking-refine 1",
            server.url
        ),
        &[],
    );
    let bp = &run["breaking_point"];
    let (held, broke) = (
        bp["held_rate"].as_f64().unwrap(),
        bp["broke_rate"].as_f64().unwrap(),
    );
    assert!(held >= 5.0 && held < broke && broke <= 80.0, "{bp:#}");
    assert!(
        bp["broke_because"].as_str().unwrap().contains("failed"),
        "{bp:#}"
    );
    assert!(
        stdout(&o).contains("the maximum sustainable load is"),
        "{}",
        stdout(&o)
    );

    // Nothing listens on port 9: the first level breaks, and the run says so (exit 1) with
    // what it measured kept.
    let o = load(
        "--url http://127.0.0.1:9 --model m --breaking-point --sweep-start 20 -n 10 \
         --run-id down -o",
        &[out.to_str().unwrap()],
    );
    assert_clean_failure(&o, &["no level held", "connect"]);
    assert_eq!(o.status.code(), Some(1));
    let bp = &load_json(&out.join("down/run.json"))["breaking_point"];
    assert_eq!(bp["broke_rate"], 20.0);
    assert_eq!(bp["stopped_because"], "the first level already broke");
}

#[test]
fn a_trace_is_replayed_on_its_own_clock_with_its_shared_blocks() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    // 40 requests 50 ms apart (2 s of trace); every request opens with block 1.
    let trace = tmp.path().join("mooncake.jsonl");
    let lines: String = (0..40)
        .map(|i| {
            format!(
                "{{\"timestamp\": {}, \"input_length\": 700, \"output_length\": 3, \
                 \"hash_ids\": [1, {}]}}\n",
                1000 + i * 50,
                100 + i
            )
        })
        .collect();
    std::fs::write(&trace, lines).unwrap();
    let url = format!("--url {}", server.url);
    let replay = format!("replay:{}", trace.display());
    let (run, _) = load_ok(
        &out,
        "replay",
        &format!("{url} --replay-speed 2 --pattern"),
        &[&replay],
    );
    let s = &run["scenarios"][0];
    assert_eq!(s["name"], "replay-mooncake-x2");
    assert_eq!(s["requests"], 40);
    // At twice the speed the 1.95 s of trace take about a second.
    let span = s["duration_s"].as_f64().unwrap();
    assert!((0.9..1.5).contains(&span), "{span}");
    assert!(
        s["cached_prompt_tokens"].as_u64().unwrap() > 39 * 300,
        "{s:#}"
    );
    assert_eq!(s["token_lengths"]["requested_output"]["sum"], 120);

    // A trace cut by --duration on the replayed clock, and a broken one refused.
    let (run, _) = load_ok(
        &out,
        "cut",
        &format!("{url} --duration 500ms --pattern"),
        &[&replay],
    );
    assert_eq!(run["scenarios"][0]["requests"], 10);
    let broken = tmp.path().join("broken.csv");
    std::fs::write(&broken, "Timestamp,Request tokens,Response tokens\n1,x,3\n").unwrap();
    let o = load(
        &format!("{url} --pattern"),
        &[&format!("replay:{}", broken.display())],
    );
    assert_clean_failure(
        &o,
        &["broken.csv line 2: Request tokens `x` is not a number"],
    );
    assert_eq!(o.status.code(), Some(1), "a bad file, as elsewhere");
}

#[test]
fn multi_turn_conversations_carry_their_history_and_think() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    for backend in ["openai-chat", "openai-completions"] {
        let (run, _) = load_ok(
            &out,
            backend,
            &format!(
                "--url {} --backend {backend} --stream --multi-turn 3 --think-time 200ms \
                 --max-tokens 30 -c 2 -n 12",
                server.url
            ),
            &[],
        );
        let s = &run["scenarios"][0];
        assert_eq!(s["succeeded"], 12, "{backend}");
        // Turns 2 and 3 carry the earlier turns and their 30-word answers.
        let input = &s["token_lengths"]["input"];
        let (min, max) = (
            input["min"].as_u64().unwrap(),
            input["max"].as_u64().unwrap(),
        );
        assert!(max > min + 60, "{backend}: {input:#}");
        // Four conversations on two users: each user thinks twice per conversation.
        assert!(s["duration_s"].as_f64().unwrap() >= 0.8, "{backend}: {s:#}");
        assert!(run["workload"]["source"]
            .as_str()
            .unwrap()
            .contains("conversations of up to 3 turns"));
    }
}

#[test]
fn sharegpt_conversations_against_the_real_model() {
    let server = start_serve(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let chat = format!("--url {} --backend openai-chat -c 1", server.url);
    let (run, _) = load_ok(
        &out,
        "real",
        &format!("{chat} --stream --multi-turn 2 --max-tokens 6 --seed 3 -n 8 --dataset"),
        &[&sharegpt(SHAREGPT)],
    );
    let s = &run["scenarios"][0];
    assert_eq!(s["succeeded"], 8, "{s:#}");
    assert_eq!(run["workload"]["token_counting"], "server usage");
    assert_eq!(s["token_lengths"]["output"]["max"], 6);
    // serve reports its own queue; the scrape saw every generated token.
    assert_eq!(
        s["server_metrics"]["counter_deltas"]["inferbench_generation_tokens_total"],
        s["output_tokens"].as_f64().unwrap()
    );

    // One conversation asking the same thing twice: the second request carries the first
    // and the model's answer, so the model reads more prompt tokens for it.
    let prompts = write_prompts(tmp.path(), &["Name a colour.", "Name a colour."]);
    let (run, _) = load_ok(
        &out,
        "twice",
        &format!("{chat} --multi-turn 2 -n 2 --prompts"),
        &[prompts.to_str().unwrap()],
    );
    let input = &run["scenarios"][0]["token_lengths"]["input"];
    assert_eq!(input["count"], 2);
    assert!(
        input["max"].as_u64().unwrap() > input["min"].as_u64().unwrap() + 3,
        "{input:#}"
    );
}

#[test]
fn the_server_s_own_metrics_are_scraped_and_a_web_page_instead_is_reported() {
    let server = start_serve(&["--mock", "--mock-token-delay", "5ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let (run, o) = load_ok(
        &out,
        "scraped",
        &format!(
            "--url {} --stream -c 4 --duration 2500ms --max-tokens 20 --scrape-interval 500ms",
            server.url
        ),
        &[],
    );
    assert!(
        stderr(&o).contains("server metrics: http://"),
        "{}",
        stderr(&o)
    );
    let s = &run["scenarios"][0];
    let m = &s["server_metrics"];
    assert!(m["scrapes"].as_u64().unwrap() >= 5, "{m:#}");
    // Scraped before the first answer and after the last: the server's count of generated
    // tokens moved by exactly what the client received.
    assert_eq!(
        m["counter_deltas"]["inferbench_generation_tokens_total"],
        s["output_tokens"].as_f64().unwrap()
    );
    let running = &m["gauges"]["inferbench_requests_running"]["max"];
    assert!(running.as_f64().unwrap() >= 1.0, "{m:#}");
    let points = m["series"]["inferbench_requests_running"]
        .as_array()
        .unwrap();
    assert!(
        points.len() >= 5 && points[1][0].as_f64().unwrap() > 0.3,
        "{points:?}"
    );

    // A server whose /metrics is a web page: by default no metrics, said once; named, a
    // warning and every failed scrape counted with its reason.
    let url = format!("http://{}", start_fault_server());
    let prompts = write_prompts(tmp.path(), &["ok"]);
    let fault = format!("--url {url} -n 3");
    let prompts = ["--prompts", prompts.to_str().unwrap()];
    let (_, o) = load_ok(&out, "page", &fault, &prompts);
    assert!(
        stderr(&o).contains("server metrics: none"),
        "{}",
        stderr(&o)
    );
    let (run, o) = load_ok(
        &out,
        "page2",
        &format!("{fault} --server-metrics {url}/metrics"),
        &prompts,
    );
    assert!(
        stderr(&o).contains("warning: server metrics"),
        "{}",
        stderr(&o)
    );
    let m = &run["scenarios"][0]["server_metrics"];
    assert!(m["failed_scrapes"].as_u64().unwrap() >= 1, "{m:#}");
    let error = m["errors"][0].as_str().unwrap();
    assert!(error.contains("not Prometheus text"), "{m:#}");
    let o = load(&format!("--url {url} --server-metrics ftp://x"), &[]);
    assert_clean_failure(&o, &["--server-metrics ftp://x"]);

    // vLLM's names, colons and all.
    let (run, o) = load_ok(
        &out,
        "vllm",
        &format!("{fault} --server-metrics {url}/vllm-metrics"),
        &prompts,
    );
    assert!(stderr(&o).contains("server max: running"), "{}", stderr(&o));
    let m = &run["scenarios"][0]["server_metrics"];
    let series = |name: &str| format!("{name}{{model_name=\"fault-model\"}}");
    let tokens = &m["counter_deltas"][series("vllm:prompt_tokens_total")];
    assert!(tokens.as_f64().unwrap() >= 100.0, "{m:#}");
    assert!(m["series"][series("vllm:num_requests_running")].is_array());
    let count = &m["counter_deltas"][series("vllm:e2e_request_latency_seconds_count")];
    assert_eq!(count, 0.0);
}
