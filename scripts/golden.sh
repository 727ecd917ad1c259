#!/usr/bin/env bash
# Renew fixtures/golden/: one real run of each result kind, its table and a comparison of the
# run with itself (see fixtures/golden/README.md). Only for a deliberate change of format.
#   scripts/golden.sh [path/to/inferbench]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/inferbench}
[ -x "$bin" ] || cargo build --bin inferbench
out=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$out"' EXIT

keep() { # kind: copy the run's files and its table, then compare it with itself
  local kind=$1 dir=fixtures/golden/$1
  mkdir -p "$dir"
  cp "$out/golden-$kind/run.json" "$out/golden-$kind/scenarios.csv" "$dir/"
  cp "$out/$kind.table" "$dir/table.txt"
  "$bin" compare "$dir" "$dir" > "$dir/compare.txt" || true # an erroring run fails against itself
}

"$bin" run --config fixtures/golden/tiny.toml --run-id golden-inference -o "$out" > "$out/inference.table"
keep inference

"$bin" retrieval --n 2000 --dim 32 --queries 50 --ef 16,32 --batch-runs 2 --no-cache \
  --run-id golden-retrieval -o "$out" > "$out/retrieval.table"
keep retrieval

"$bin" serve --mock --port 0 2> "$out/serve.log" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$out/serve.log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$out/serve.log" | head -1)
"$bin" load --url "$url" -c 1,2 --rate 50 --probe --stream -n 8 --probe-runs 2 --max-tokens 16 \
  --slo ttft=50ms --run-id golden-http -o "$out" > "$out/http.table"
keep http

# Nothing listens on port 1: every request is a connect error (the error columns and words).
"$bin" load --url http://127.0.0.1:1 --model none -c 1 -n 3 --warmup 0 \
  --run-id golden-http-errors -o "$out" > "$out/http-errors.table"
keep http-errors
echo "fixtures/golden renewed"
