#!/usr/bin/env bash
# Proof that `inferbench compare` neither cries wolf nor misses, on this machine:
#   A/A: the same build benchmarked twice and compared, REPS times: every FAIL is a false alarm.
#   A/B: the second run made really slower (RAYON_NUM_THREADS=1: half the threads of a 2-core
#        machine; set SLOW_THREADS for bigger machines), REPS times: every run without a FAIL
#        is a miss.
# Usage: scripts/regress-check.sh [REPS]   (default 10; about 25 s per benchmark run here)
# Prints both counts and writes target/regress-check/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-10}
slow_threads=${SLOW_THREADS:-1}
# Kernels that use every thread: a quantised decode matmul, a prefill GEMM, prefill attention.
filter='^(qmatmul/cpu/smollm2-135m/Q8_0|matmul/cpu/smollm2-135m/F32/rows=128|attention/prefill/cpu/smollm2-135m/.*)$'
out=target/regress-check
mkdir -p "$out"

cargo build --release --quiet
cargo bench --bench kernels --no-run --quiet 2>/dev/null
bench() { # bench BASELINE_NAME [env...]
  local name=$1; shift
  env "$@" cargo bench --quiet --bench kernels -- "$filter" --save-baseline "$name" \
    --warm-up-time 1 --measurement-time 2 --noplot >"$out/bench-$name.log" 2>&1
}
compare() { # compare BASE CURRENT -> prints the verdict word
  local rc=0
  ./target/release/inferbench compare --baseline "$1" --current "$2" \
    --json "$out/$2.json" >"$out/$2.txt" 2>&1 || rc=$?
  case $rc in
    0) grep -q '"verdict": "warn"' "$out/$2.json" && echo warn || echo ok ;;
    1) echo fail ;;
    *) echo "error (see $out/$2.txt)"; return 1 ;;
  esac
}

aa_fail=0; aa_warn=0; ab_fail=0; ab_miss=0
for i in $(seq 1 "$reps"); do
  bench aa-base
  bench "aa-cur-$i"
  v=$(compare aa-base "aa-cur-$i")
  [ "$v" = fail ] && aa_fail=$((aa_fail + 1))
  [ "$v" = warn ] && aa_warn=$((aa_warn + 1))
  echo "A/A $i/$reps: $v"
done
for i in $(seq 1 "$reps"); do
  bench ab-base
  bench "ab-cur-$i" RAYON_NUM_THREADS="$slow_threads"
  v=$(compare ab-base "ab-cur-$i")
  if [ "$v" = fail ]; then ab_fail=$((ab_fail + 1)); else ab_miss=$((ab_miss + 1)); fi
  echo "A/B $i/$reps (RAYON_NUM_THREADS=$slow_threads): $v"
done
summary="A/A: $aa_fail false FAILs and $aa_warn WARNs in $reps comparisons
A/B (RAYON_NUM_THREADS=$slow_threads): $ab_fail caught (FAIL), $ab_miss missed in $reps comparisons"
echo "$summary" | tee "$out/summary.txt"
