#!/usr/bin/env python3
"""llama.cpp and `inferbench generate` on the same GGUF file, side by side.

Run it through scripts/compare-llamacpp.sh, which installs llama-cpp-python (pinned) into a
venv, seeds the default model and builds inferbench first.

For each prompt length, each round runs both sides once, alternating which goes first (a
machine that slows down slows both): a fresh process per side that loads the model, runs one
untimed generation of the same shape (pages in the weights, warms the thread pools) and then
one timed generation: a synthetic prompt of exactly N tokens, then greedy decoding of G tokens
with end-of-sequence ignored, batch 1, the same number of threads on both sides.

    prefill tok/s = prompt tokens / (prompt evaluation + choosing the first token)
    decode tok/s  = (G - 1) / (time from the first token to the last)

These are the definitions `inferbench generate` prints (TTFT and its decode line); the
llama.cpp side times the same spans around llama-cpp-python's `eval` calls (Python's own
overhead per token, a few microseconds beside milliseconds, is included). Printed: each
side's median with its min-max over the rounds, and the median of the per-round ratios
(inferbench / llama.cpp, above 1 means inferbench is faster) with their min-max.
`--batches 1,8` also times inferbench alone at batch 8 (llama-cpp-python runs one sequence).
"""

import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_REPO = "models--QuantFactory--SmolLM2-135M-Instruct-GGUF"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Prose for llama.cpp's synthetic prompt, repeated to length; as with inferbench's own
# synthetic prompt, what the words say does not change the work of a fixed-length run.
PROSE = (
    "The history of measurement is the history of agreeing on what to count. Merchants "
    "weighed grain against stones, astronomers timed the planets against water clocks, and "
    "engineers learned that a figure nobody can reproduce is only an anecdote. "
)


def default_model():
    """The default model's GGUF in the Hugging Face cache (what scripts/fetch-models.sh seeds)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    found = sorted(glob.glob(os.path.join(hub, DEFAULT_REPO, "snapshots", "*", DEFAULT_FILE)))
    if not found:
        sys.exit(f"no {DEFAULT_FILE} under {hub}: run scripts/fetch-models.sh or pass --model FILE.gguf")
    return found[-1]


def llamacpp_side(args):
    """One llama.cpp process: load, one untimed generation, one timed; JSON on stdout."""
    import numpy as np
    import llama_cpp

    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=args.prompt + args.gen + 16,
                          n_batch=max(512, args.prompt), n_ubatch=max(512, args.prompt),
                          n_threads=args.threads, n_threads_batch=args.threads,
                          verbose=False)
    load_s = time.perf_counter() - started
    unit = llm.tokenize(PROSE.encode(), add_bos=False)
    prompt = (unit * (args.prompt // len(unit) + 1))[: args.prompt]

    vocab = llm.n_vocab()

    def greedy():
        # The last position's logits, read where llama.cpp left them (llama-cpp-python keeps
        # no copy unless logits_all): the same greedy step as inferbench's.
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))
        return int(np.argmax(logits))

    def generate():
        llm.reset()
        tokens = []
        t0 = time.perf_counter()
        llm.eval(prompt)
        tokens.append(greedy())
        t1 = time.perf_counter()
        for _ in range(args.gen - 1):
            llm.eval(tokens[-1:])
            tokens.append(greedy())
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, tokens

    for _ in range(args.warmup):
        generate()
    prefill_s, decode_s, tokens = generate()
    json.dump({
        "prefill_tps": args.prompt / prefill_s,
        "decode_tps": (args.gen - 1) / decode_s if args.gen > 1 else None,
        "ttft_ms": prefill_s * 1e3,
        "load_s": load_s,
        "version": llama_cpp.__version__,
        "first_tokens": llm.detokenize(tokens[:8]).decode(errors="replace"),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
    }, sys.stdout)


def run_llamacpp(args, prompt):
    cmd = [sys.executable, os.path.abspath(__file__), "--side-llamacpp", "--model", args.model,
           "--threads", str(args.threads), "--prompt", str(prompt), "--gen", str(args.gen),
           "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"llama.cpp side failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


TIMINGS = re.compile(r"TTFT ([\d.]+) ms \| prompt ([\d.]+) tok/s \| decode \d+ tok in [\d.]+ ms = "
                     r"(?:([\d.]+) tok/s|n/a)")


def run_inferbench(args, prompt, batch):
    cmd = [args.inferbench, "generate", "--model", args.model, "--device", "cpu",
           "--repack", args.repack, "--prompt-tokens", str(prompt), "--max-tokens", str(args.gen),
           "--ignore-eos", "--batch", str(batch), "--warmup", str(args.warmup)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"inferbench failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    line = next((l for l in done.stdout.splitlines() if l.startswith("timings:")), "")
    m = TIMINGS.search(line)
    if not m:
        sys.exit(f"inferbench printed no timings line I can read:\n{done.stdout[-2000:]}")
    dtype = re.search(r"\[\S+ \S+ (.*?), [\d.]+M params\]", done.stderr)
    return {
        "ttft_ms": float(m.group(1)),
        "prefill_tps": float(m.group(2)),
        "decode_tps": float(m.group(3)) if m.group(3) else None,
        "dtype": dtype.group(1) if dtype else "?",
    }


def spread(values, digits=1):
    """median [min-max] of the non-missing values."""
    vs = [v for v in values if v is not None]
    if not vs:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(statistics.median(vs))} [{f.format(min(vs))}-{f.format(max(vs))}]"


def ratios(ours, theirs, key):
    return [a[key] / b[key] for a, b in zip(ours, theirs) if a[key] and b[key]]


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(
        prog="scripts/compare-llamacpp.sh",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="GGUF file (default: the SmolLM2-135M-Instruct Q4_1 GGUF "
                   "in the Hugging Face cache)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads on both sides (default: this machine's CPUs)")
    p.add_argument("--prompts", default="32,128,512",
                   help="prompt lengths in tokens, comma-separated (default 32,128,512)")
    p.add_argument("--gen", type=int, default=128, help="tokens generated (default 128)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per prompt length (default 3)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed generations before the timed one, each side (default 1)")
    p.add_argument("--repack", default="auto",
                   help="inferbench's --repack (default auto: Q4_1/Q5_x requantised to Q8_0 on CPU)")
    p.add_argument("--batches", default="1",
                   help="inferbench batch sizes; batches above 1 are timed for inferbench only "
                   "(default 1)")
    p.add_argument("--inferbench", default=os.path.join(ROOT, "target", "release", "inferbench"))
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    p.add_argument("--avx2", action="store_true",
                   help="both sides limited to AVX2, FMA and F16C, as on a CPU without AVX-512: "
                   "llama.cpp built so in target/llamacpp-avx2-venv, inferbench with "
                   "INFERBENCH_NO_AVX512=1 (set by the .sh)")
    p.add_argument("--side-llamacpp", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prompt", type=int, help=argparse.SUPPRESS)
    # Checks the arguments and stops: the .sh runs it before installing anything.
    p.add_argument("--check-arguments", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side_llamacpp:
        args.model = args.model or default_model()
        return llamacpp_side(args)

    def positive_list(text, name):
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            sys.exit(f"--{name}: {text!r} is not a comma-separated list of whole numbers")
        if not values or min(values) < 1:
            sys.exit(f"--{name}: give whole numbers of at least 1")
        return values

    prompts = positive_list(args.prompts, "prompts")
    batches = positive_list(args.batches, "batches")
    for name in ("gen", "rounds", "threads"):
        if getattr(args, name) < 1:
            sys.exit(f"--{name} must be at least 1")
    if args.warmup < 0:
        sys.exit("--warmup must be at least 0")
    if args.model and not os.path.isfile(args.model):
        sys.exit(f"--model {args.model}: no such file")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        sys.exit(f"--json {args.json}: its folder does not exist")
    if args.check_arguments:
        return
    if args.avx2 and not os.environ.get("INFERBENCH_NO_AVX512"):
        sys.exit("--avx2: run through scripts/compare-llamacpp.sh, which builds llama.cpp for AVX2")
    args.model = args.model or default_model()
    if not os.path.isfile(args.model):
        sys.exit(f"{args.model}: no such file")
    if not os.path.exists(args.inferbench):
        sys.exit(f"{args.inferbench}: no such binary (cargo build --release, or pass --inferbench)")

    print(f"model {args.model}\nthreads {args.threads}, {args.gen} tokens generated, "
          f"{args.rounds} rounds, warm-up {args.warmup}, {cpu_name()}"
          f"{' limited to AVX2 on both sides' if args.avx2 else ''}; "
          f"load average at start {load_average()}", flush=True)
    rows = []
    for prompt in prompts:
        ours, theirs, extra = [], [], {b: [] for b in batches if b > 1}
        for r in range(args.rounds):
            first_ours = r % 2 == 0
            for side in ("ours", "theirs") if first_ours else ("theirs", "ours"):
                if side == "ours":
                    ours.append(run_inferbench(args, prompt, 1))
                else:
                    theirs.append(run_llamacpp(args, prompt))
            for b in extra:
                extra[b].append(run_inferbench(args, prompt, b))
            print(f"prompt {prompt} round {r + 1}: inferbench {ours[-1]['prefill_tps']:.1f} / "
                  f"{ours[-1]['decode_tps'] or 0:.1f} tok/s, llama.cpp {theirs[-1]['prefill_tps']:.1f} / "
                  f"{theirs[-1]['decode_tps'] or 0:.1f} tok/s (prefill / decode)", flush=True)
        rows.append({"prompt": prompt, "inferbench": ours, "llama.cpp": theirs,
                     "inferbench_batches": {str(b): v for b, v in extra.items()}})

    print(f"\ninferbench: {ours[0]['dtype']}, --repack {args.repack}; llama.cpp: llama-cpp-python "
          f"{theirs[0]['version']}, the file's own weights ({theirs[0]['system_info']}); "
          f"medians [min-max] over {args.rounds} rounds")
    print("| prompt | inferbench prefill tok/s | llama.cpp prefill tok/s | prefill ratio "
          "| inferbench decode tok/s | llama.cpp decode tok/s | decode ratio |")
    print("| -: | -: | -: | -: | -: | -: | -: |")
    for row in rows:
        a, b = row["inferbench"], row["llama.cpp"]
        print(f"| {row['prompt']} | {spread([x['prefill_tps'] for x in a])} "
              f"| {spread([x['prefill_tps'] for x in b])} | {spread(ratios(a, b, 'prefill_tps'), 2)} "
              f"| {spread([x['decode_tps'] for x in a])} | {spread([x['decode_tps'] for x in b])} "
              f"| {spread(ratios(a, b, 'decode_tps'), 2)} |")
    for row in rows:
        for b, runs in row["inferbench_batches"].items():
            one = statistics.median(x["decode_tps"] for x in row["inferbench"])
            many = statistics.median(x["decode_tps"] for x in runs)
            print(f"inferbench batch {b}, prompt {row['prompt']}: decode {spread([x['decode_tps'] for x in runs])} "
                  f"tok/s (all rows) = {many / one:.2f}x its batch 1")
    print(f"load average at end {load_average()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "threads": args.threads, "gen": args.gen,
                       "rounds": args.rounds, "repack": args.repack, "avx2": args.avx2,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
