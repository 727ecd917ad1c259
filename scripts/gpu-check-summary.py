#!/usr/bin/env python3
"""The table and summary.json of scripts/gpu-check.sh, from the files its steps wrote.

    scripts/gpu-check-summary.py results/gpu-check fixtures/llama-3-8b/config.json

Figures from under 3 s of measurement are marked; a step that wrote nothing is reported
as missing, never filled in.
"""
import glob
import json
import os
import re
import sys

SHORT_S = 3.0  # measurement shorter than this is marked


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def value(reading):
    """A Reading's value (measured or estimated), else None."""
    if isinstance(reading, dict) and reading.get("status") in ("measured", "estimated"):
        return reading.get("value")
    return None


def gpu_of(machine):
    gpus = (machine or {}).get("gpus") or []
    return gpus[0] if gpus else {}


def answers(out):
    rows = []
    for kind in ("gguf", "bf16"):
        doc = load(os.path.join(out, f"agree-{kind}.json"))
        if doc is None:
            skipped = os.path.exists(os.path.join(out, f"agree-{kind}.skipped"))
            rows.append({"set_up": kind, "result": "not checked" if skipped else "missing"})
            continue
        prompts = doc["prompts"]
        agree = sum(1 for p in prompts if p["agree"])
        row = {
            "set_up": kind,
            "tested": doc["tested"],
            "reference": doc["reference"],
            "prompts_agreeing": agree,
            "prompts": len(prompts),
            "result": f"{agree}/{len(prompts)} prompts agree over {doc['max_tokens']} tokens",
        }
        first = next((p for p in prompts if not p["agree"]), None)
        if first:
            d = first["divergence"]
            row["first_difference"] = d
            row["result"] += (
                f"; first difference at token {d['position']} of {first['prompt']!r}: "
                f"tested {d['tested']['token']} (logits {d['tested']['tested_logit']:.3f} / "
                f"{d['tested']['reference_logit']:.3f}), reference {d['reference']['token']} "
                f"(logits {d['reference']['tested_logit']:.3f} / "
                f"{d['reference']['reference_logit']:.3f})"
            )
        rows.append(row)
    return rows


def energy_check(scenario):
    """NVML's energy counter against mean power × time over the measured phase."""
    phase = next((p for p in scenario.get("phases", []) if p["phase"] == "measured"), None)
    if not phase:
        return None
    counter = value(phase["gpu_energy_joules"])
    power = value(phase["gpu_power_mean_w"])
    if counter is None or power is None:
        reason = (phase["gpu_energy_joules"].get("reason")
                  or phase["gpu_power_mean_w"].get("reason"))
        return {"agree": None, "why": reason}
    integrated = power * phase["duration_s"]
    gap = abs(counter - integrated) / max(counter, 1e-9)
    return {
        "counter_j": counter,
        "integrated_power_j": integrated,
        "gap": gap,
        "agree": gap <= 0.10,
        "sm_clock_mean_mhz": phase.get("sm_clock_mean_mhz"),
        "throttle_reasons": phase.get("throttle_reasons", []),
    }


def presets(out):
    run = load(os.path.join(out, "quick", "run.json"))
    if run is None:
        return None
    rows = []
    for s in run["scenarios"]:
        decode = (s.get("decode_tokens_per_second") or {}).get("median")
        row = {
            "scenario": s["name"],
            "batch": s["batch"],
            "ttft_p50_ms": s["ttft"]["p50_ms"],
            "ttft_p95_ms": s["ttft"]["p95_ms"],
            "itl_p50_ms": (s.get("itl") or {}).get("p50_ms"),
            "itl_p95_ms": (s.get("itl") or {}).get("p95_ms"),
            "decode_tokens_per_second": decode,
            "joules_per_token": value(s["energy"]["joules_per_token"]),
            "peak_gpu_memory_bytes": value(s.get("peak_device_memory_bytes")),
            "measured_s": s["duration_s"],
            "short": s["duration_s"] < SHORT_S,
        }
        if s["batch"] in (1, 32):
            row["energy_check"] = energy_check(s)
        rows.append(row)
    return {"device": run["device"], "model": run["model"]["name"], "scenarios": rows}


def roofline(out, config_path, machine):
    """Llama-3-8B decode at batch 1: bytes read per step (bf16 weights + KV cache) × steps/s
    over the GPU's nominal bandwidth."""
    try:
        text = open(os.path.join(out, "llama3-8b.txt")).read()
        cfg = json.load(open(config_path))
    except OSError:
        return None
    m = re.search(r"prompt (\d+) tok .*decode (\d+) tok in ([\d.]+) ms = ([\d.]+) tok/s", text)
    if not m:
        return {"result": "no timings line"}
    prompt, steps, _ms, rate = int(m[1]), int(m[2]), float(m[3]), float(m[4])
    h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    layers, heads, kv = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = h // heads
    per_layer = 2 * h * h + 2 * h * kv * head_dim + 3 * h * i + 2 * h
    params = layers * per_layer + h + v * h * (1 if cfg.get("tie_word_embeddings") else 2)
    mean_context = prompt + steps / 2
    kv_bytes = layers * 2 * kv * head_dim * mean_context * 2
    bytes_per_step = params * 2 + kv_bytes
    bandwidth = gpu_of(machine).get("memory_bandwidth_bytes_per_s")
    row = {
        "decode_tokens_per_second": rate,
        "parameters": params,
        "bytes_per_step": bytes_per_step,
        "achieved_bytes_per_s": rate * bytes_per_step,
        "decode_s": _ms / 1e3,
        "short": _ms / 1e3 < SHORT_S,
    }
    if bandwidth:
        row["peak_bytes_per_s"] = bandwidth
        row["roofline_share"] = rate * bytes_per_step / bandwidth
    return row


def benches():
    rows = []
    for path in sorted(glob.glob("target/criterion/**/new/estimates.json", recursive=True)):
        if "cuda" not in path and "/decode/" not in path:
            continue
        est = load(path)
        if est:
            name = os.path.dirname(os.path.dirname(path))[len("target/criterion/"):]
            rows.append({"bench": name, "median_ns": est["median"]["point_estimate"]})
    return rows


def fmt(x, spec=".1f", none="-"):
    return none if x is None else format(x, spec)


def main():
    out, config = sys.argv[1], sys.argv[2]
    machine = load(os.path.join(out, "machine.json"))
    summary = {
        "gpu": gpu_of(machine),
        "answers": answers(out),
        "preset": presets(out),
        "llama3_8b_decode": roofline(out, config, machine),
        "benches": benches() if not os.path.exists(os.path.join(out, "benches.skipped")) else [],
        "failed_steps": open(os.path.join(out, "failed.txt")).read().split("\n")[:-1]
        if os.path.exists(os.path.join(out, "failed.txt")) else [],
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    gpu = summary["gpu"]
    print(f"GPU: {gpu.get('name', 'none')}, compute capability {gpu.get('compute_capability', '?')}, "
          f"{fmt((gpu.get('memory_bandwidth_bytes_per_s') or 0) / 1e9, '.0f')} GB/s nominal")
    for a in summary["answers"]:
        print(f"answers ({a['set_up']}): {a['result']}")
    p = summary["preset"]
    if p:
        print(f"\n{p['model']} on {p['device']['name']}  (* = under {SHORT_S:.0f} s of measurement)")
        print("| batch | TTFT p50 ms | TTFT p95 ms | ITL p50 ms | ITL p95 ms | decode tok/s | J/token | peak GPU MiB |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in p["scenarios"]:
            mem = r["peak_gpu_memory_bytes"]
            print(f"| {r['batch']}{'*' if r['short'] else ''} | {fmt(r['ttft_p50_ms'], '.2f')} | "
                  f"{fmt(r['ttft_p95_ms'], '.2f')} | {fmt(r['itl_p50_ms'], '.2f')} | "
                  f"{fmt(r['itl_p95_ms'], '.2f')} | {fmt(r['decode_tokens_per_second'])} | "
                  f"{fmt(r['joules_per_token'], '.4f')} | {fmt(mem / 2**20 if mem else None, '.0f')} |")
        for r in p["scenarios"]:
            e = r.get("energy_check")
            if e is None:
                continue
            if e.get("agree") is None:
                print(f"energy check, batch {r['batch']}: unavailable ({e.get('why')})")
            else:
                print(f"energy check, batch {r['batch']}: counter {e['counter_j']:.2f} J, mean power × time "
                      f"{e['integrated_power_j']:.2f} J, gap {e['gap'] * 100:.1f}% "
                      f"({'agree' if e['agree'] else 'DISAGREE'} within 10%); SM clock "
                      f"{fmt(e['sm_clock_mean_mhz'], '.0f')} MHz; throttle: {', '.join(e['throttle_reasons']) or 'none'}")
    else:
        print("quick preset: missing")
    r = summary["llama3_8b_decode"]
    if r and "decode_tokens_per_second" in r:
        share = r.get("roofline_share")
        print(f"\nLlama-3-8B shapes, bf16, batch 1: {r['decode_tokens_per_second']:.1f} tok/s"
              f"{'*' if r['short'] else ''}, {r['bytes_per_step'] / 1e9:.2f} GB read per step, "
              f"{r['achieved_bytes_per_s'] / 1e9:.0f} GB/s"
              + (f" = {share * 100:.1f}% of the {r['peak_bytes_per_s'] / 1e9:.0f} GB/s roofline" if share else
                 " (no nominal bandwidth from NVML: no roofline share)"))
    else:
        print("\nLlama-3-8B decode: missing")
    if summary["benches"]:
        print(f"\nCriterion: {len(summary['benches'])} benchmarks (medians in summary.json)")
    if summary["failed_steps"]:
        print("\nfailed steps: " + "; ".join(summary["failed_steps"]))


if __name__ == "__main__":
    main()
