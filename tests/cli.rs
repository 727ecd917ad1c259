//! The `inferbench` binary as a user runs it: answers, timings, and every bad input's error.

use std::path::Path;
use std::process::Command;

use crate::common::{assert_clean_failure, inferbench, text};

const QUESTION: &str = "What is the capital of France?";

#[test]
fn generate_answers_with_text_and_one_timing_line() {
    // The acceptance command, exactly (default --repack auto on CPU).
    let o = inferbench(&[
        "generate",
        "--chat",
        "--prompt",
        QUESTION,
        "--max-tokens",
        "30",
        "--device",
        "cpu",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("Paris"), "{stdout}");
    let timing: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("timings:"))
        .collect();
    assert_eq!(timing.len(), 1, "{stdout}");
    for field in ["TTFT", "prompt", "tok/s", "decode"] {
        assert!(timing[0].contains(field), "{}", timing[0]);
    }
    // The roofline line: what a decode step moved (SmolLM2 as Q8_0: about 150 MB) and the
    // prefill's FLOPs, at what rate.
    let roofline = stdout
        .lines()
        .find(|l| l.starts_with("roofline: decode "))
        .unwrap_or_else(|| panic!("no roofline line: {stdout}"));
    let mb: f64 = roofline["roofline: decode ".len()..]
        .split(" MB/step")
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{roofline}"));
    assert!((140.0..170.0).contains(&mb), "{roofline}");
    assert!(
        roofline.contains("GB/s") && roofline.contains("GFLOP/s"),
        "{roofline}"
    );
    assert!(stderr.contains("device: cpu"), "{stderr}");
}

#[test]
fn generate_with_batch_four_gives_four_answers() {
    let o = inferbench(&[
        "generate",
        "--chat",
        "--prompt",
        QUESTION,
        "--max-tokens",
        "30",
        "--batch",
        "4",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for row in 1..=4 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("[{row}] ")))
            .unwrap_or_else(|| panic!("no answer {row}: {stdout}"));
        assert!(line.contains("Paris"), "{line}");
    }
    assert!(stdout.contains("batch 4"), "{stdout}");
}

#[test]
fn synthetic_prompts_have_the_exact_length_and_repack_is_reported() {
    let o = inferbench(&[
        "generate",
        "--prompt-tokens",
        "100",
        "--max-tokens",
        "3",
        "--ignore-eos",
        "--repack",
        "none",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("prompt 100 tok"), "{stdout}");
    assert!(stdout.contains("generated 3 tok"), "{stdout}");
    assert!(
        stderr.contains("Q4_1,") && !stderr.contains("repacked"),
        "{stderr}"
    );
    let o = inferbench(&["generate", "--prompt-tokens", "5", "--max-tokens", "1"]);
    let (_, stderr) = text(&o);
    assert!(stderr.contains("Q4_1 repacked to Q8_0"), "{stderr}");
}

#[test]
fn info_describes_the_machine() {
    let o = inferbench(&["info", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["cpu_logical_cores"].as_u64().unwrap() >= 1);
    assert!(v["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(v["compiled_features"].is_array());
    let o = inferbench(&["info"]);
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("cpu:") && stdout.contains("gpus:") || stdout.contains("gpu 0:"),
        "{stdout}"
    );
}

#[test]
fn peaks_are_measured_once_then_read_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let info = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_inferbench"))
            .arg("info")
            .args(args)
            .env("INFERBENCH_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let first = info(&["--peaks", "--json"]);
    assert!(first.status.success(), "{}", text(&first).1);
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let cpu = &v["peaks"]["cpu"];
    for field in [
        "triad_bytes_per_s",
        "triad_one_thread_bytes_per_s",
        "gemm_f32_flops",
    ] {
        let x = cpu[field].as_f64().unwrap_or(0.0);
        assert!(x.is_finite() && x > 1e8, "{field}: {x}");
    }
    assert_eq!(cpu["nominal_bandwidth"]["status"], "unavailable");
    let files: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one cache file per machine");
    let (again, _) = text(&info(&["--peaks"]));
    assert!(
        again.contains("from the cache") && again.contains("STREAM triad"),
        "{again}"
    );
    let (fresh, _) = text(&info(&["--peaks", "--refresh-peaks"]));
    assert!(!fresh.contains("from the cache"), "{fresh}");
}

/// `inferbench SUBCOMMAND` on the tiny llama config with random weights and SmolLM2's
/// tokenizer, prompt "hello".
fn on_tiny_dummy(subcommand: &str, max_tokens: &str) -> std::process::Output {
    let config = crate::common::repo_root().join("fixtures/tiny-llama/config.json");
    let gguf = crate::common::smollm_gguf();
    inferbench(&[
        subcommand,
        "--model",
        config.to_str().unwrap(),
        "--weights",
        "dummy",
        "--tokenizer",
        gguf.to_str().unwrap(),
        "--prompt",
        "hello",
        "--max-tokens",
        max_tokens,
    ])
}

#[test]
fn dummy_weights_run_from_a_config() {
    let o = on_tiny_dummy("generate", "5");
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("generated 5 tok"), "{stdout}");
    assert!(stderr.contains("dummy"), "{stderr}");
}

#[test]
fn profile_times_every_op_and_writes_a_chrome_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.json");
    let o = inferbench(&[
        "profile",
        "--prompt-tokens",
        "16",
        "--steps",
        "4",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    for expected in [
        "profiling's own cost",
        "prefill, ",
        "decode, ",
        "| matmul ",
        "| attention ",
        "| kv_cache ",
        "| sampling ",
        "| (between ops) ",
        "matmul ffn_down",
        "matmul attn_qkv",
    ] {
        assert!(stdout.contains(expected), "no {expected:?}:\n{stdout}");
    }
    // NVTX: on through the library scripts/test.sh names, else off with the way to turn it on.
    let nvtx = match std::env::var("INFERBENCH_NVTX_LIB") {
        Ok(lib) => format!("nvtx: a range per op through {lib}"),
        Err(_) => "nvtx: off: no NVTX library found".to_string(),
    };
    assert!(stderr.contains(&nvtx), "no {nvtx:?}:\n{stderr}");
    // The trace: the prefill and four steps, and inside them every op of the 30 layers.
    let t = crate::common::load_json(&trace);
    let events = t["traceEvents"].as_array().unwrap();
    let of = |cat: &str| events.iter().filter(|e| e["cat"] == cat).count();
    assert_eq!(of("phase"), 5);
    // Four matmuls a layer (q, k and v stacked; o; gate and up stacked; down) and the output,
    // in the prefill and each step.
    assert_eq!(of("matmul"), 5 * (30 * 4 + 1));
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    for op in ["matmul attn_qkv", "matmul ffn_gate_up", "matmul output"] {
        assert!(names.contains(&op), "no {op}");
    }
    assert_eq!(
        of("kv_cache"),
        5 * 30,
        "the prefill and each step write the cache"
    );
    assert!(events
        .iter()
        .all(|e| e["ph"] == "X" && e["dur"].as_f64().unwrap() >= 0.0));
    assert_eq!(t["otherData"]["decode_steps"], 4);
}

#[test]
fn profile_refuses_models_whose_ops_it_cannot_time() {
    let config = crate::common::repo_root().join("fixtures/tiny-llama/config.json");
    let o = inferbench(&[
        "profile",
        "--model",
        config.to_str().unwrap(),
        "--weights",
        "dummy",
        "--tokenizer",
        crate::common::smollm_gguf().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o).1);
    assert_clean_failure(&o, &["profile times the ops of GGUF models", "dummy model"]);
}

#[test]
fn missing_path_is_named() {
    let o = inferbench(&[
        "generate",
        "--model",
        "/no/such/model.gguf",
        "--prompt",
        "x",
    ]);
    assert_clean_failure(&o, &["/no/such/model.gguf", "no such file"]);
}

#[test]
fn unknown_repo_offline_lists_every_place_tried() {
    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args([
            "generate",
            "--model",
            "nobody/no-such-model",
            "--prompt",
            "x",
        ])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert_clean_failure(
        &o,
        &[
            "not found",
            "local path",
            "Hugging Face cache",
            "HF_HUB_OFFLINE",
        ],
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn truncated_gguf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(crate::common::smollm_gguf()).unwrap();
    let cut = write(dir.path(), "cut.gguf", &full[..full.len() / 2]);
    let o = inferbench(&["generate", "--model", &cut, "--prompt", "x"]);
    assert_clean_failure(&o, &[&cut, "truncated"]);
    // Cut inside the metadata, too.
    let cut = write(dir.path(), "head.gguf", &full[..4096]);
    let o = inferbench(&["generate", "--model", &cut, "--prompt", "x"]);
    assert_clean_failure(&o, &[&cut]);
}

#[test]
fn a_file_that_is_no_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(dir.path(), "weights.bin", b"this is not a model at all");
    let o = inferbench(&["generate", "--model", &junk, "--prompt", "x"]);
    assert_clean_failure(&o, &[&junk, "neither GGUF", "nor safetensors"]);
}

#[test]
fn config_with_a_missing_or_wrong_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        std::fs::read_to_string(crate::common::repo_root().join("fixtures/tiny-llama/config.json"))
            .unwrap();
    let cases = [
        (
            "missing.json",
            "\"hidden_size\": 64,",
            "",
            "missing field `hidden_size`",
        ),
        (
            "wrong.json",
            "\"hidden_size\": 64",
            "\"hidden_size\": \"big\"",
            "invalid type",
        ),
        (
            "heads.json",
            "\"num_attention_heads\": 4",
            "\"num_attention_heads\": 5",
            "num_attention_heads",
        ),
    ];
    for (name, from, to, expected) in cases {
        let config = write(dir.path(), name, good.replace(from, to).as_bytes());
        let o = inferbench(&[
            "generate",
            "--model",
            &config,
            "--weights",
            "dummy",
            "--prompt",
            "x",
        ]);
        assert_clean_failure(&o, &[&config, expected]);
    }
}

#[test]
fn another_models_tokenizer_is_refused() {
    let tok = crate::common::minilm_tokenizer();
    let o = inferbench(&[
        "generate",
        "--tokenizer",
        tok.to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert_clean_failure(&o, &["30522", "49152", "belongs to another model"]);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_cuda_build_is_refused() {
    let o = inferbench(&["generate", "--device", "cuda", "--prompt", "x"]);
    assert_clean_failure(&o, &["--device cuda:0", "without CUDA support"]);
}

#[test]
fn zero_batch_and_zero_max_tokens_are_refused() {
    let o = inferbench(&["generate", "--batch", "0", "--prompt", "x"]);
    assert_clean_failure(&o, &["--batch"]);
    assert_eq!(o.status.code(), Some(2));
    let o = inferbench(&["generate", "--max-tokens", "0", "--prompt", "x"]);
    assert_clean_failure(&o, &["--max-tokens"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sizes_that_cannot_fit_are_refused_with_the_figures_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        std::fs::read_to_string(crate::common::repo_root().join("fixtures/tiny-llama/config.json"))
            .unwrap();
    let cases = [
        (
            "vocab.json",
            "\"vocab_size\": 49152",
            "\"vocab_size\": 1000000000000",
            "vocab_size 1000000000000",
        ),
        (
            "mlp.json",
            "\"intermediate_size\": 172",
            "\"intermediate_size\": 10000000000",
            "GiB",
        ),
        (
            "layers.json",
            "\"num_hidden_layers\": 2",
            "\"num_hidden_layers\": 1000000",
            "num_hidden_layers 1000000",
        ),
        (
            "positions.json",
            "\"max_position_embeddings\": 512",
            "\"max_position_embeddings\": 100000000000000",
            "max_position_embeddings",
        ),
        (
            "overflow.json",
            "\"vocab_size\": 49152",
            "\"vocab_size\": 18446744073709551615",
            "more parameters than any machine",
        ),
    ];
    for (name, from, to, expected) in cases {
        let config = write(dir.path(), name, good.replace(from, to).as_bytes());
        let o = inferbench(&[
            "generate",
            "--model",
            &config,
            "--weights",
            "dummy",
            "--prompt",
            "x",
        ]);
        assert_clean_failure(&o, &[&config, expected]);
        assert_eq!(o.status.code(), Some(1));
    }
    // A batch of a million on the real model: refused with what it would take.
    let o = inferbench(&[
        "generate",
        "--prompt",
        "x",
        "--batch",
        "1000000",
        "--max-tokens",
        "128",
    ]);
    assert_clean_failure(&o, &["batch 1000000", "GiB of KV cache", "is available"]);
}

#[test]
fn agree_finds_identical_set_ups_alike_and_names_the_first_different_token() {
    // The same quantised kernels on both sides: every token alike, exit 0, JSON written.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("agree.json");
    let o = inferbench(&[
        "agree",
        "--device",
        "cpu",
        "--repack",
        "q8_0",
        "--reference-repack",
        "q8_0",
        "--max-tokens",
        "3",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Q4_1 repacked to Q8_0 on cpu"), "{stdout}");
    assert!(stdout.contains("agree  1/3: 3 tokens alike"), "{stdout}");
    assert!(stdout.contains("Paris"), "{stdout}");
    assert!(
        stdout.contains("all 3 prompts agree token for token"),
        "{stdout}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["prompts"].as_array().unwrap().len(), 3);
    assert_eq!(doc["prompts"][0]["agree"], true);
    assert_eq!(doc["prompts"][0]["agreed"].as_array().unwrap().len(), 3);

    // Two independent draws of random weights: the first token differs (exit 1), printed with
    // both sides' logits.
    let o = on_tiny_dummy("agree", "4");
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("differ 1/1: at generated token 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("its logit") && stdout.contains("the other side's"),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 of 1 prompts differ from the reference"),
        "{stderr}"
    );
}

#[test]
fn the_llama_cpp_peer_script_explains_itself_and_refuses_bad_arguments_before_installing() {
    let script = crate::common::repo_root().join("scripts/compare-llamacpp.sh");
    let help = Command::new(&script).arg("--help").output().unwrap();
    let (stdout, stderr) = text(&help);
    assert!(help.status.success(), "{stderr}");
    for option in [
        "--prompts",
        "--gen",
        "--rounds",
        "--batches",
        "--repack",
        "--threads",
    ] {
        assert!(stdout.contains(option), "no {option}: {stdout}");
    }
    assert!(stdout.contains("decode tok/s  = (G - 1)"), "{stdout}");
    for (args, named) in [
        (&["--prompts", "12,x"][..], "--prompts"),
        (&["--rounds", "0"][..], "--rounds"),
        (&["--model", "/no/such.gguf"][..], "/no/such.gguf"),
    ] {
        let o = Command::new(&script).args(args).output().unwrap();
        let (_, stderr) = text(&o);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("installing"),
            "{args:?} installed first: {stderr}"
        );
    }
}

#[test]
fn the_load_accuracy_script_explains_itself_and_refuses_bad_arguments_before_building() {
    let script = crate::common::repo_root().join("scripts/load-accuracy.sh");
    let help = Command::new(&script).arg("--help").output().unwrap();
    let (stdout, stderr) = text(&help);
    assert!(help.status.success(), "{stderr}");
    for option in [
        "--rates",
        "--duration",
        "--overhead-rate",
        "--rounds",
        "--json",
    ] {
        assert!(stdout.contains(option), "no {option}: {stdout}");
    }
    for (args, named) in [
        (&["--rounds", "0"][..], "--rounds"),
        (&["--rates", "1000,x"][..], "'x'"),
        (&["--overhead-rate", "-5"][..], "'-5'"),
        (&["--bogus"][..], "--bogus"),
    ] {
        let o = Command::new(&script).args(args).output().unwrap();
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
