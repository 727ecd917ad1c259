//! scripts/gpu-check.sh's summary, from files its steps write: the roofline share of a
//! Llama-3-8B decode (its parameter count is known: 8,030,261,248), the energy cross-check
//! (NVML's counter against mean power × time, within 10%), the answer check, and steps that
//! wrote nothing reported as missing. The GPU figures here are inputs made for the test; the
//! summary's arithmetic on them is what is checked.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::repo_root;

fn phase(counter_j: f64, power_w: f64, seconds: f64) -> Value {
    json!({
        "phase": "measured", "duration_s": seconds,
        "gpu_energy_joules": {"status": "measured", "value": counter_j},
        "gpu_power_mean_w": {"status": "measured", "value": power_w},
        "sm_clock_mean_mhz": 2520.0, "throttle_reasons": ["sw_power_cap"],
    })
}

fn scenario(batch: u32, phase: Value) -> Value {
    let latency = json!({"p50_ms": 2.0, "p95_ms": 3.0});
    json!({
        "name": format!("b{batch}_p128_o64"), "batch": batch, "duration_s": 4.0,
        "ttft": latency, "itl": latency,
        "decode_tokens_per_second": {"median": 400.0},
        "energy": {"joules_per_token": {"status": "measured", "value": 0.25}},
        "peak_device_memory_bytes": {"status": "measured", "value": 1u64 << 30},
        "phases": [phase],
    })
}

fn write(dir: &Path, name: &str, value: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string(value).unwrap()).unwrap();
}

#[test]
fn the_summary_computes_the_roofline_share_and_cross_checks_energy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    write(
        out,
        "machine.json",
        &json!({"gpus": [{"name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9",
                          "memory_bandwidth_bytes_per_s": 1_008_000_000_000u64}]}),
    );
    write(
        out,
        "agree-gguf.json",
        &json!({"tested": "a", "reference": "b", "max_tokens": 32, "prompts": [
            {"prompt": "p", "agree": true, "agreed": [1, 2], "divergence": null}]}),
    );
    std::fs::create_dir(out.join("quick")).unwrap();
    write(
        &out.join("quick"),
        "run.json",
        &json!({"device": {"name": "cuda:0"}, "model": {"name": "SmolLM2"}, "scenarios": [
            scenario(1, phase(100.0, 98.0, 1.0)),   // 2% apart: agree
            scenario(32, phase(100.0, 80.0, 1.0)),  // 20% apart: disagree
        ]}),
    );
    // 128 prompt tokens, 128 decoded at 50 tok/s.
    std::fs::write(
        out.join("llama3-8b.txt"),
        "timings: batch 1 | prompt 128 tok | TTFT 20.0 ms | prompt 6400.0 tok/s | decode 127 tok in 2540.0 ms = 50.0 tok/s | generated 128 tok | device cuda:0\n",
    )
    .unwrap();
    std::fs::write(out.join("benches.skipped"), "skipped\n").unwrap();
    let o = Command::new("python3")
        .arg(repo_root().join("scripts/gpu-check-summary.py"))
        .arg(out)
        .arg(repo_root().join("fixtures/llama-3-8b/config.json"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();

    let decode = &summary["llama3_8b_decode"];
    assert_eq!(decode["parameters"], 8_030_261_248u64);
    // bf16 weights + the KV cache read at the mean context (128 + 127/2 positions).
    let kv = 32.0 * 2.0 * 8.0 * 128.0 * (128.0 + 127.0 / 2.0) * 2.0;
    let bytes = 8_030_261_248.0 * 2.0 + kv;
    assert!((decode["bytes_per_step"].as_f64().unwrap() - bytes).abs() < 1.0);
    let share = 50.0 * bytes / 1.008e12;
    assert!((decode["roofline_share"].as_f64().unwrap() - share).abs() < 1e-9);
    assert_eq!(decode["short"], true, "2.54 s of decode is under 3 s");
    assert!(
        table.contains(&format!("{:.1}% of the 1008 GB/s roofline", share * 100.0)),
        "{table}"
    );

    let rows = summary["preset"]["scenarios"].as_array().unwrap();
    assert_eq!(rows[0]["energy_check"]["agree"], true);
    assert_eq!(rows[1]["energy_check"]["agree"], false);
    assert!(table.contains("gap 20.0% (DISAGREE within 10%)"), "{table}");
    assert!(table.contains("throttle: sw_power_cap"), "{table}");
    assert!(
        table.contains("answers (gguf): 1/1 prompts agree"),
        "{table}"
    );
    assert!(table.contains("answers (bf16): missing"), "{table}");
}
