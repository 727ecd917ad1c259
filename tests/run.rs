//! `inferbench run` as a user runs it: the files it writes, Ctrl-C, --resume, and bad input.

use crate::common::{
    assert_clean_failure, csv_rows, inferbench, load_json, stderr, stdout, wait_for_scenarios,
};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A config extending the quick preset with tiny scenarios, so a run takes seconds.
fn tiny_config(dir: &Path, scenarios: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    let text = format!("extends = \"quick\"\n[model]\ndevice = \"cpu\"\n[scenarios]\n{scenarios}");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_writes_every_field_to_json_csv_and_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(
        dir.path(),
        "batch_sizes = [1, 2]\nprompt_tokens = [8]\noutput_tokens = [4]\nwarmup_runs = 1\nmeasured_runs = 2\n",
    );
    let out = dir.path().join("results");
    let o = inferbench(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        "t1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    for expected in [
        "| scenario",
        "TTFT p50 ms",
        "decode tok/s",
        "b1_p8_o4",
        "b2_p8_o4",
        "grade: Poor",
        // A miss says what was expected and why.
        "ttft_p50_ms <= 15 missed (",
        "why ttft_p50_ms <= 15: the project's seed figure for time to first token on a CPU",
        "preset cpu_only (auto: cpu)",
        "energy: unavailable (",
        "decode GB/s",
        "prefill GFLOP/s",
        "roofline: decode GB/s = bytes a step moves",
    ] {
        assert!(
            table.contains(expected),
            "table lacks {expected:?}:\n{table}"
        );
    }

    let run = load_json(&out.join("t1/run.json"));
    assert_eq!(run["schema_version"], 1);
    assert_eq!(run["kind"], "inference");
    assert_eq!(run["run_id"], "t1");
    assert_eq!(run["status"], "complete");
    for field in [
        "started_at",
        "finished_at",
        "git_commit",
        "inferbench_version",
    ] {
        assert!(
            run[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert!(run["crate_versions"]["candle-core"].is_string());
    assert!(run["machine"]["cpu_model"].is_string());
    assert!(run["machine"]["memory_total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        run["config"]["scenarios"]["batch_sizes"],
        serde_json::json!([1, 2])
    );
    assert_eq!(run["config_sources"][1], "preset quick");
    assert_eq!(
        run["planned_scenarios"],
        serde_json::json!(["b1_p8_o4", "b2_p8_o4"])
    );
    assert_eq!(run["device"]["name"], "cpu");
    assert!(run["model"]["name"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("smollm2"));
    assert_eq!(run["targets"]["rules"].as_array().unwrap().len(), 2);
    assert!(
        run["telemetry"]
            .as_str()
            .unwrap()
            .contains("GPU energy: unavailable"),
        "{}",
        run["telemetry"]
    );
    assert_eq!(run["load_phase"]["phase"], "load");

    let scenarios = run["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    for (s, batch) in scenarios.iter().zip([1u64, 2]) {
        let requests = 2 * batch;
        assert_eq!(s["batch"], batch);
        assert_eq!(s["requests"], requests);
        assert_eq!(
            s["generated_tokens"],
            requests * 4,
            "ignore_eos: 4 tokens each"
        );
        assert_eq!(s["warmup"]["runs"], 1);
        assert_eq!(s["warmup"]["ttft_ms"].as_array().unwrap().len(), 1);
        assert_eq!(s["ttft"]["count"], requests);
        assert_eq!(s["itl"]["count"], requests * 3);
        assert_eq!(s["tpot"]["count"], requests);
        assert_eq!(s["e2e"]["count"], requests);
        for latency in ["ttft", "itl", "tpot", "e2e"] {
            let l = &s[latency];
            for stat in [
                "min_ms",
                "mean_ms",
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "p999_ms",
                "max_ms",
                "sd_ms",
                "spike_rate",
            ] {
                assert!(l[stat].is_number(), "{latency}.{stat}: {l}");
            }
            assert!(l["min_ms"].as_f64() <= l["p50_ms"].as_f64());
            assert!(l["p50_ms"].as_f64() <= l["max_ms"].as_f64());
        }
        // End to end is the TTFT plus three gaps.
        assert!(s["e2e"]["min_ms"].as_f64() > s["ttft"]["min_ms"].as_f64());
        for rate in [
            "decode_tokens_per_second",
            "e2e_tokens_per_second",
            "prompt_tokens_per_second",
        ] {
            assert_eq!(s[rate]["runs"].as_array().unwrap().len(), 2, "{rate}");
            assert!(s[rate]["mean"].as_f64().unwrap() > 0.0, "{rate}");
        }
        // The roofline: a step reads SmolLM2's ~143 MB of Q8_0 weights once for all rows;
        // the 8-token prefill computes about 1.76 GFLOP a row.
        let r = &s["roofline"];
        let step = r["decode_bytes_per_step"].as_f64().unwrap();
        assert!((140e6..160e6).contains(&step), "{r}");
        assert!(r["decode_bytes_per_s"].as_f64().unwrap() > 0.0, "{r}");
        let flops_per_row = r["prefill_flops"].as_f64().unwrap() / batch as f64;
        assert!((1.6e9..1.9e9).contains(&flops_per_row), "{r}");
        assert!(r["prefill_flops_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(s["peak_host_rss_bytes"]["status"], "measured");
        assert!(s["peak_host_rss_bytes"]["value"].as_u64().unwrap() > 50 << 20);
        // No GPU (and no RAPL) here: every energy figure says why, none is 0.
        let e = &s["energy"];
        assert_eq!(e["source"], "none");
        for unavailable in [
            "gpu_joules",
            "joules_per_token",
            "tokens_per_joule",
            "decode_joules",
        ] {
            assert_eq!(
                e[unavailable]["status"], "unavailable",
                "{unavailable}: {e}"
            );
        }
        assert!(
            e["gpu_joules"]["reason"]
                .as_str()
                .unwrap()
                .contains("no GPU"),
            "{e}"
        );
        assert!(
            e["joules_per_token"]["reason"]
                .as_str()
                .unwrap()
                .contains("CPU: "),
            "{e}"
        );
        if !Path::new("/sys/class/powercap").exists() {
            let why = e["cpu_joules"]["reason"].as_str().unwrap();
            assert!(why.contains("RAPL not present"), "{e}");
        }
        assert_eq!(s["peak_device_memory_bytes"]["status"], "unavailable");
        // Phases: warm-up and the measured runs, each with what the sampler saw.
        let phases: Vec<&str> = s["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["warm-up", "measured"]);
        let measured = &s["phases"][1];
        assert!(measured["duration_s"].as_f64().unwrap() > 0.0);
        assert_eq!(measured["gpu_power_mean_w"]["status"], "unavailable");
    }
    // The batch-1 decode rule applies to b1 only; the TTFT rule to both.
    assert_eq!(scenarios[0]["targets"].as_array().unwrap().len(), 2);
    assert_eq!(scenarios[1]["targets"].as_array().unwrap().len(), 1);
    assert_eq!(run["grade"]["checked"], 3);

    let csv = std::fs::read_to_string(out.join("t1/scenarios.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let columns = lines[0].split(',').count();
    assert!(lines[0].starts_with("run_id,model,dtype,device,scenario,batch"));
    assert!(lines[0].contains("ttft_p99_ms") && lines[0].contains("itl_spike_rate"));
    assert!(lines[1].contains("b1_p8_o4"));
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), columns, "{l}");
    }
    // The roofline's columns carry run.json's figures (4 decimals).
    for (row, s) in csv_rows(&out.join("t1/scenarios.csv"))
        .iter()
        .zip(scenarios)
    {
        for field in [
            "decode_bytes_per_step",
            "prefill_flops",
            "decode_bytes_per_s",
        ] {
            let cell: f64 = row[field]
                .parse()
                .unwrap_or_else(|_| panic!("{field}: {row:?}"));
            let json = s["roofline"][field].as_f64().unwrap();
            assert!(
                (cell - json).abs() <= 1e-4 * json.abs().max(1.0),
                "{field}: {cell} vs {json}"
            );
        }
    }
}

fn spawn_run(config: &Path, out: &Path, id: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--output", out.to_str().unwrap(), "--run-id", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn inferbench")
}

/// The first scenario is quick, the second long enough to be interrupted in.
const TWO_SCENARIOS: &str = "batch_sizes = [1]\nprompt_tokens = [8]\noutput_tokens = [4, 96]\nwarmup_runs = 0\nmeasured_runs = 3\n";

#[test]
fn ctrl_c_keeps_finished_scenarios_and_resume_finishes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), TWO_SCENARIOS);
    let out = dir.path().join("results");
    let json = out.join("t2/run.json");
    let mut child = spawn_run(&config, &out, "t2");
    wait_for_scenarios(&json, 1, &mut child);
    crate::common::interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume t2"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("interrupted: 1 of 2 scenarios"),
        "{}",
        stdout(&o)
    );
    let stopped = load_json(&json);
    assert_eq!(stopped["status"], "interrupted");
    assert_eq!(stopped["scenarios"].as_array().unwrap().len(), 1);
    assert!(stopped["finished_at"].is_null());

    let o = inferbench(&["run", "--resume", "t2", "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 of 2 scenarios finished, 1 to go"),
        "{}",
        stderr(&o)
    );
    let done = load_json(&json);
    assert_eq!(done["status"], "complete");
    let scenarios = done["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    assert_eq!(scenarios[1]["name"], "b1_p8_o96");
    // The finished scenario was kept as it was, not measured again.
    assert_eq!(scenarios[0], stopped["scenarios"][0]);
    assert_eq!(done["started_at"], stopped["started_at"]);

    let again = inferbench(&["run", "--resume", json.parent().unwrap().to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already complete"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_killed_run_leaves_valid_json_of_what_finished() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(dir.path(), TWO_SCENARIOS);
    let out = dir.path().join("results");
    let json = out.join("t3/run.json");
    let mut child = spawn_run(&config, &out, "t3");
    wait_for_scenarios(&json, 1, &mut child);
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let run = load_json(&json);
    assert_eq!(run["status"], "running", "as the process left it");
    assert_eq!(run["scenarios"].as_array().unwrap().len(), 1);
    let csv = std::fs::read_to_string(out.join("t3/scenarios.csv")).unwrap();
    // The CSV is written before run.json: it holds at least the scenarios run.json lists.
    let rows = csv.lines().count() - 1;
    assert!(rows >= 1, "{csv}");
    assert!(csv.lines().next().unwrap().starts_with("run_id,"), "{csv}");
}

#[test]
fn dry_run_prints_the_resolved_config_and_measures_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = inferbench(&[
        "run",
        "--dry-run",
        "--preset",
        "cpu_only",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("# config: preset cpu_only (extends preset quick)"),
        "{text}"
    );
    assert!(text.contains("output_tokens = [128]"), "{text}");
    assert!(text.contains("# 6 scenarios"), "{text}");
    assert!(text.contains("b8_p128_o128"), "{text}");
    assert!(!out.exists(), "a dry run writes no results");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let out = d.join("results");
    let out = out.to_str().unwrap();
    let not_a_dir = file("plain-file", "");
    let under_a_file = format!("{not_a_dir}/results");

    let unknown = file(
        "unknown.toml",
        "extends = \"quick\"\n[scenarios]\nbatch = [1]\n",
    );
    let zero = file(
        "zero.toml",
        "extends = \"quick\"\n[scenarios]\nbatch_sizes = [0]\n",
    );
    let a = file("a.toml", "extends = \"b.toml\"\n");
    file("b.toml", "extends = \"a.toml\"\n");
    let long = file(
        "long.toml",
        "extends = \"quick\"\n[model]\ndevice = \"cpu\"\n[scenarios]\nbatch_sizes = [1]\nprompt_tokens = [9000]\noutput_tokens = [4]\n",
    );
    let small = tiny_config(d, "batch_sizes = [1]\nprompt_tokens = [8]\noutput_tokens = [2]\nwarmup_runs = 0\nmeasured_runs = 1\n");
    let small = small.to_str().unwrap();
    // Exit 2 for a bad flag, 1 for a bad file (README, Errors).
    let cases: Vec<(Vec<&str>, Vec<&str>, i32)> = vec![
        (
            vec!["run", "--preset", "nope"],
            vec!["--preset nope", "no such preset", "quick"],
            2,
        ),
        (
            vec!["run", "--config", &unknown],
            vec!["unknown.toml", "unknown field `batch`"],
            1,
        ),
        (
            vec!["run", "--config", &zero],
            vec!["zero.toml", "scenarios.batch_sizes", "at least 1"],
            1,
        ),
        (
            vec!["run", "--config", &a],
            vec!["extends cycle", "a.toml", "b.toml"],
            1,
        ),
        (
            vec!["run", "--config", "/no/such.toml"],
            vec!["/no/such.toml", "no such file"],
            2,
        ),
        (
            vec!["run", "--config", &long, "--output", out],
            vec![
                "long.toml",
                "scenarios.prompt_tokens 9000",
                "context length",
            ],
            1,
        ),
        (
            vec!["run", "--config", small, "--output", &under_a_file],
            vec!["results folder", "plain-file"],
            1,
        ),
        (
            vec!["run", "--filter", "b99", "--output", out],
            vec!["--filter b99", "b1_p32_o64"],
            2,
        ),
        (
            vec!["run", "--filter", "(", "--output", out],
            vec!["--filter", "regular expression"],
            2,
        ),
        (
            vec!["run", "--resume", "nothing-here", "--output", out],
            vec!["--resume nothing-here", "run.json"],
            2,
        ),
        (
            vec!["run", "--device", "tpu", "--dry-run"],
            vec!["--device", "tpu"],
            2,
        ),
        (
            vec![
                "run",
                "--run-id",
                "../escape",
                "--config",
                small,
                "--output",
                out,
            ],
            vec!["--run-id"],
            2,
        ),
    ];
    for (args, expected, code) in cases {
        let o = inferbench(&args);
        assert_clean_failure(&o, &expected);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    }
    // A resumed run must be a run: a corrupt run.json is named.
    let bad_run = d.join("results/broken");
    std::fs::create_dir_all(&bad_run).unwrap();
    std::fs::write(
        bad_run.join("run.json"),
        "{\"schema_version\": 1, \"status\": ",
    )
    .unwrap();
    let o = inferbench(&["run", "--resume", "broken", "--output", out]);
    assert_clean_failure(&o, &["broken/run.json", "not valid JSON"]);
}

#[test]
fn plans_and_batches_that_cannot_fit_are_refused_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("results");
    let huge = tiny_config(
        d,
        "batch_sizes = [1000000]\nprompt_tokens = [8]\noutput_tokens = [2]\n",
    );
    let o = inferbench(&[
        "run",
        "--config",
        huge.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["tiny.toml", "b1000000_p8_o2", "batch 1000000", "GiB"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "no run folder"
    );
    let lists = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let many = tiny_config(
        d,
        &format!(
            "batch_sizes = [{}]\nprompt_tokens = [{}]\noutput_tokens = [1, 2, 3]\n",
            lists(3000),
            lists(3000)
        ),
    );
    let o = inferbench(&["run", "--config", many.to_str().unwrap(), "--dry-run"]);
    assert_clean_failure(
        &o,
        &["3000 batch sizes × 3000 prompt lengths × 3 output lengths = 27000000"],
    );
    assert_eq!(o.status.code(), Some(1));
}
