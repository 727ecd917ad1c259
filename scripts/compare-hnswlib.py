#!/usr/bin/env python3
"""hnswlib and `inferbench retrieval` on exactly the same files, side by side.

    inferbench retrieval --n 200000 --export-data data/200k --ef 16   # writes the files
    scripts/compare-hnswlib.py --data data/200k --ef 16,32,64,128 --rounds 3

DATA holds base.fvecs, query.fvecs and groundtruth.ivecs (what `--export-data` writes, or
any ANN data set in that layout). Both sides build with the same M, ef_construction and
build threads, and answer every query one at a time on one thread at each ef (hnswlib: a
tight loop of knn_query calls, each timed, Python's call overhead included; inferbench: its
own single-thread pass). Rounds alternate the two sides so a machine that slows down
slows both. Printed per ef: each side's recall@k, single-thread queries/s and p95, and
the ratio of inferbench's queries/s to hnswlib's at equal recall (inferbench's smallest ef
whose recall reaches hnswlib's at that ef), and the same ratio with our queries/s read off
the line between our two efs around hnswlib's recall (interpolated: on a coarse ef grid the
step rule can halve a ratio over one neighbour in 10,000); then both build times and their ratio, as
medians over the rounds, and the memory each index added (resident set growth over the
build; for inferbench also the flat layout it searches once hnsw_rs's structure is dropped).

hnswlib and numpy are pinned and installed from PyPI into target/hnswlib-venv on first use
(hnswlib builds from source: a C++ compiler is needed).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HNSWLIB = "hnswlib==0.8.0"
NUMPY = "numpy==2.2.6"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "hnswlib-venv")


def in_venv():
    """Re-run this script with the venv's Python, creating the venv first if needed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(os.path.join(VENV, ".installed")):
        print(f"installing {HNSWLIB} and {NUMPY} into {VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(pip + [NUMPY, "pybind11", "setuptools", "wheel"], check=True)
        subprocess.run(pip + ["--no-build-isolation", HNSWLIB], check=True)
        open(os.path.join(VENV, ".installed"), "w").close()
    os.execv(python, [python] + sys.argv)


def read_vecs(path, dtype):
    import numpy as np

    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        sys.exit(f"{path}: empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) != 0:
        sys.exit(f"{path}: not a {dtype} vecs file of dimension {dim} (size {raw.size * 4} bytes)")
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        sys.exit(f"{path}: vectors of different dimensions")
    return rows[:, 1:].copy().view(dtype)


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run_hnswlib(base, queries, truth, args):
    import hnswlib
    import numpy as np

    before = rss_bytes()
    index = hnswlib.Index(space="l2", dim=base.shape[1])
    started = time.perf_counter()
    index.init_index(max_elements=base.shape[0], M=args.m, ef_construction=args.ef_construction)
    index.set_num_threads(args.threads)
    index.add_items(base, np.arange(base.shape[0]))
    build_s = time.perf_counter() - started
    memory = rss_bytes() - before
    index.set_num_threads(1)
    per_ef = {}
    for ef in args.efs:
        index.set_ef(max(ef, args.k))
        times = []
        hits = 0
        for i, q in enumerate(queries):
            t = time.perf_counter()
            labels, _ = index.knn_query(q, k=args.k)
            times.append(time.perf_counter() - t)
            hits += len(set(labels[0].tolist()) & set(truth[i, : args.k].tolist()))
        times.sort()
        per_ef[ef] = {
            "recall": hits / (len(queries) * args.k),
            "qps": len(queries) / sum(times),
            "p95_ms": times[int(0.95 * (len(times) - 1))] * 1e3,
        }
    del index
    return build_s, per_ef, memory


def run_inferbench(args, round_index):
    # inferbench's own run folder is read and then removed with its temporary directory.
    with tempfile.TemporaryDirectory(prefix="compare-hnswlib-") as out:
        run_id = f"round{round_index}"
        cmd = [
            args.inferbench, "retrieval",
            "--vectors", os.path.join(args.data, "base.fvecs"),
            "--queries-file", os.path.join(args.data, "query.fvecs"),
            "--ground-truth", os.path.join(args.data, "groundtruth.ivecs"),
            "--m", str(args.m), "--ef-construction", str(args.ef_construction),
            "--ef", ",".join(map(str, args.efs)), "-k", str(args.k),
            "--build", args.build, "--search", args.search,
            *(["--links", args.links] if args.links else []),
            "--no-cache", "-o", out, "--run-id", run_id,
        ]
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"inferbench failed ({done.returncode}):\n{done.stderr[-2000:]}")
        with open(os.path.join(out, run_id, "run.json")) as f:
            run = json.load(f)
    per_ef = {
        s["ef"]: {"recall": s["recall"], "qps": s["single_thread_qps"], "p95_ms": s["latency"]["p95_ms"]}
        for s in run["scenarios"]
    }
    index = run["index"]
    memory = {
        "build": (index.get("memory_bytes") or {}).get("value"),
        "searched": (index.get("layout") or {}).get("bytes"),
    }
    return index["build_s"], per_ef, memory


def median_figures(rounds):
    efs = rounds[0].keys()
    return {
        ef: {key: statistics.median(r[ef][key] for r in rounds) for key in ("recall", "qps", "p95_ms")}
        for ef in efs
    }


def qps_at_recall(curve, efs, target):
    """Our queries/s at `target` recall, read off the straight line between our two measured
    efs whose recalls bracket it (at our smallest ef if that already reaches it); None above
    our best recall. On a coarse grid the step rule alone (the next ef that reaches it) can
    halve the ratio over one neighbour in 10,000."""
    for i, ef in enumerate(efs):
        r1, q1 = curve[ef]["recall"], curve[ef]["qps"]
        if r1 < target - 1e-9:
            continue
        if i == 0:
            return q1
        r0, q0 = curve[efs[i - 1]]["recall"], curve[efs[i - 1]]["qps"]
        return q0 + (target - r0) / (r1 - r0) * (q1 - q0) if r1 > r0 else q1
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with base.fvecs, query.fvecs, groundtruth.ivecs")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", default="16,24,32,48,64,96,128",
                   help="comma-separated ef values, ascending (a fine grid pairs equal recalls closely)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="build threads (both sides)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds of both sides")
    p.add_argument("--build", default="inferbench", choices=["inferbench", "hnsw_rs"],
                   help="whose insertion builds inferbench's graph")
    p.add_argument("--search", default="flat", choices=["flat", "hnsw_rs"],
                   help="inferbench's search: its flat layout (default) or hnsw_rs's own")
    p.add_argument("--links", choices=["reselected", "repaired", "as-built"],
                   help="inferbench's layer-0 links for the flat search (default: inferbench's own "
                        "for the builder)")
    p.add_argument("--inferbench", default=os.path.join(ROOT, "target", "release", "inferbench"))
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    args.efs = [int(e) for e in args.ef.split(",") if e]
    in_venv()
    if not os.path.exists(args.inferbench):
        sys.exit(f"{args.inferbench}: no such binary (cargo build --release, or pass --inferbench)")
    base = read_vecs(os.path.join(args.data, "base.fvecs"), "float32")
    queries = read_vecs(os.path.join(args.data, "query.fvecs"), "float32")
    truth = read_vecs(os.path.join(args.data, "groundtruth.ivecs"), "int32")
    if truth.shape[0] != queries.shape[0] or truth.shape[1] < args.k:
        sys.exit(f"groundtruth.ivecs: {truth.shape} does not fit {queries.shape[0]} queries at k={args.k}")
    print(f"{base.shape[0]} base vectors x {base.shape[1]}, {queries.shape[0]} queries, k={args.k}, "
          f"M={args.m}, ef_construction={args.ef_construction}, {args.threads} build threads, "
          f"queries on 1 thread; {args.rounds} round(s), alternating", flush=True)
    ours, theirs, our_builds, their_builds, memory = [], [], [], [], {}
    for r in range(args.rounds):
        build, figures, memory["inferbench"] = run_inferbench(args, r)
        ours.append(figures)
        our_builds.append(build)
        print(f"round {r + 1}: inferbench built in {build:.1f} s", flush=True)
        build, figures, memory["hnswlib"] = run_hnswlib(base, queries, truth, args)
        theirs.append(figures)
        their_builds.append(build)
        print(f"round {r + 1}: hnswlib built in {build:.1f} s", flush=True)
    a, b = median_figures(ours), median_figures(theirs)
    print()
    print("| ef | inferbench recall | qps | p95 ms | hnswlib recall | qps | p95 ms "
          "| qps ratio at equal recall | interpolated |")
    print("| -: | -: | -: | -: | -: | -: | -: | -: | -: |")
    rows = []
    for ef in args.efs:
        # Our cheapest ef that reaches the peer's recall at this ef.
        match = next((e for e in args.efs if a[e]["recall"] >= b[ef]["recall"] - 1e-9), None)
        ratio = a[match]["qps"] / b[ef]["qps"] if match is not None else None
        between = qps_at_recall(a, args.efs, b[ef]["recall"])
        interpolated = between / b[ef]["qps"] if between is not None else None
        rows.append({"ef": ef, "inferbench": a[ef], "hnswlib": b[ef], "matched_ef": match,
                     "qps_ratio": ratio, "qps_ratio_interpolated": interpolated})
        print(f"| {ef} | {a[ef]['recall']:.4f} | {a[ef]['qps']:.0f} | {a[ef]['p95_ms']:.3f} | "
              f"{b[ef]['recall']:.4f} | {b[ef]['qps']:.0f} | {b[ef]['p95_ms']:.3f} | "
              + (f"{ratio:.2f} (our ef {match})" if ratio else "never reached") + " | "
              + (f"{interpolated:.2f}" if interpolated else "-") + " |")
    ob, tb = statistics.median(our_builds), statistics.median(their_builds)
    print(f"\nbuild: inferbench {ob:.1f} s, hnswlib {tb:.1f} s, ratio {ob / tb:.2f} (medians)")
    mib = lambda b: f"{b / 2**20:.0f} MiB" if b else "not measured"
    ours_m, theirs_m = memory["inferbench"], memory["hnswlib"]
    print(f"memory (last round): inferbench grew {mib(ours_m['build'])} building with {args.build} and "
          f"searches a {mib(ours_m['searched'])} flat layout; hnswlib grew {mib(theirs_m)} building")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "build_s": {"inferbench": our_builds, "hnswlib": their_builds},
                       "memory_bytes": memory}, f, indent=2)


if __name__ == "__main__":
    main()
