#!/usr/bin/env bash
# How faithfully `inferbench load` sends what it is asked to, against `inferbench serve
# --mock` on this machine (no model: the generator is what is measured):
#   1. pattern accuracy: a steady constant-rate scenario at each of --rates (default 1000 and
#      10000 req/s), and the share of 1-second windows whose sent count is within 2% of the
#      offered count;
#   2. scraping overhead: --rounds pairs of runs at --overhead-rate (default 5000 req/s),
#      alternating without and with --server-metrics, and the achieved rate of each.
# Usage: scripts/load-accuracy.sh [--rates 1000,10000] [--duration 10s]
#        [--overhead-rate 5000] [--rounds 3] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=1000,10000
DURATION=10s
OVERHEAD_RATE=5000
ROUNDS=3
JSON=
while [ $# -gt 0 ]; do
  case "$1" in
    --rates) RATES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --overhead-rate) OVERHEAD_RATE=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --json) JSON=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "load-accuracy: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "load-accuracy: --rounds must be a whole number above 0" >&2; exit 2 ;; esac
for rate in ${RATES//,/ } "$OVERHEAD_RATE"; do
  case "$rate" in ''|*[!0-9.]*|.|0) echo "load-accuracy: --rates and --overhead-rate take rates in req/s above 0, got '$rate'" >&2; exit 2 ;; esac
done

cargo build --release --quiet
BIN=target/release/inferbench
WORK=$(mktemp -d)
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# The mock answers at once; --max-queue and --max-connections high enough never to refuse.
"$BIN" serve --mock --mock-token-delay 0s --port 0 --max-queue 100000 \
  --max-connections 4096 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$WORK/serve.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "${PORT:-}" ] || { echo "load-accuracy: the mock server did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
URL=http://127.0.0.1:$PORT
echo "machine: $(nproc) cores; $(uptime)"

load() { # run-id, extra args...
  local id=$1; shift
  "$BIN" load --url "$URL" --model mock --max-tokens 1 --arrival constant \
    --max-concurrency 4096 --warmup 0 -o "$WORK/results" --run-id "$id" "$@" >/dev/null 2>"$WORK/$id.log" \
    || { echo "load-accuracy: run $id failed:" >&2; tail -5 "$WORK/$id.log" >&2; exit 1; }
}

IFS=, read -r -a rate_list <<<"$RATES"
for rate in "${rate_list[@]}"; do
  load "steady-$rate" --rate "$rate" --duration "$DURATION" --server-metrics none
done
# A ramp across the same range: every window has its own offered rate.
load ramp --pattern ramp --from "${rate_list[0]}" --to "${rate_list[${#rate_list[@]}-1]}" \
  --duration "$DURATION" --server-metrics none
for round in $(seq 1 "$ROUNDS"); do
  load "plain-$round" --rate "$OVERHEAD_RATE" --duration "$DURATION" --server-metrics none
  load "scraped-$round" --rate "$OVERHEAD_RATE" --duration "$DURATION" --scrape-interval 1s
done

python3 - "$WORK/results" "$RATES" "$ROUNDS" "$OVERHEAD_RATE" "${JSON:-}" <<'EOF'
import json, statistics, sys
root, rates, rounds, overhead_rate, out = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def scenario(run_id):
    return json.load(open(f"{root}/{run_id}/run.json"))["scenarios"][0]
report = {"accuracy": [], "overhead": {"rate": float(overhead_rate), "plain": [], "scraped": []}}
print("\npattern accuracy (constant arrivals, 1-second windows, the last partial window left out)")
print("| offered req/s | windows | sent within 2% | worst sent/offered | answered within 2% | achieved req/s | E2E p50 | errors |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for rate in rates + ["ramp"]:
    s = scenario("ramp" if rate == "ramp" else f"steady-{rate}")
    full = [w for w in s["windows"] if w["offered"] > 0][:-1]
    ratios = [w["sent"] / w["offered"] for w in full]
    within = sum(abs(r - 1) <= 0.02 for r in ratios)
    answered = sum(abs(w["succeeded"] / w["offered"] - 1) <= 0.02 for w in full)
    worst = min(ratios, key=lambda r: -abs(r - 1)) if ratios else float("nan")
    row = {"rate": rate, "windows": len(full), "within_2pct": within, "worst_ratio": worst,
           "answered_within_2pct": answered, "e2e_p50_ms": s["e2e"]["p50_ms"],
           "achieved_rate": s["achieved_rate"], "error_rate": s["error_rate"]}
    report["accuracy"].append(row)
    label = f"ramp {rates[0]} to {rates[-1]}" if rate == "ramp" else rate
    print(f"| {label} | {len(full)} | {within}/{len(full)} | {worst:.4f} | {answered}/{len(full)} | {s['achieved_rate']:.1f} | {s['e2e']['p50_ms']:.2f} ms | {100*s['error_rate']:.2f}% |")
print(f"\nscraping overhead at {overhead_rate} req/s (alternated, {rounds} pairs)")
print("| round | without scraping | with --server-metrics 1s | ratio | scrapes |")
print("| ---: | ---: | ---: | ---: | ---: |")
ratios = []
for i in range(1, rounds + 1):
    a, b = scenario(f"plain-{i}"), scenario(f"scraped-{i}")
    report["overhead"]["plain"].append(a["achieved_rate"])
    report["overhead"]["scraped"].append(b["achieved_rate"])
    ratios.append(b["achieved_rate"] / a["achieved_rate"])
    print(f"| {i} | {a['achieved_rate']:.1f} | {b['achieved_rate']:.1f} | {ratios[-1]:.4f} | {b['server_metrics']['scrapes']} |")
print(f"median ratio {statistics.median(ratios):.4f}")
report["overhead"]["median_ratio"] = statistics.median(ratios)
if out:
    json.dump(report, open(out, "w"), indent=2)
EOF
