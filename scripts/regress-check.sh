#!/usr/bin/env bash
# Proof that `inferbench compare` neither cries wolf nor misses, on this machine:
#   A/A: the same build benchmarked twice and compared, REPS times: every FAIL is a false alarm.
#   A/B: the second run made really slower (RAYON_NUM_THREADS=1: half the threads of a 2-core
#        machine; set SLOW_THREADS for bigger machines), REPS times: every run without a FAIL
#        is a miss.
# Each FAIL is then confirmed as scripts/ci-bench.sh does: the failing benchmarks are run once
# more and compared again; both the single and the confirmed counts are reported.
# Usage: scripts/regress-check.sh [REPS]   (default 10; about 25 s per benchmark run here)
# Prints the counts and writes target/regress-check/summary.txt.
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
bench() { # bench FILTER BASELINE_NAME [env...]
  local only=$1 name=$2; shift 2
  env "$@" cargo bench --quiet --bench kernels -- "$only" --save-baseline "$name" \
    --warm-up-time 1 --measurement-time 2 --noplot >"$out/bench-$name.log" 2>&1
}
compare() { # compare BASE CURRENT -> prints ok, warn or fail
  local rc=0
  ./target/release/inferbench compare --baseline "$1" --current "$2" \
    --json "$out/$2.json" >"$out/$2.txt" 2>&1 || rc=$?
  case $rc in
    0) grep -q '"verdict": "warn"' "$out/$2.json" && echo warn || echo ok ;;
    1) echo fail ;;
    *) echo "error (see $out/$2.txt)" >&2; exit 2 ;;
  esac
}
# confirm BASE CURRENT [env...]: rerun only what failed, compare again -> ok, warn or fail
confirm() {
  local base=$1 cur=$2; shift 2
  local again
  again=$(scripts/failing-benchmarks.py "$out/$cur.json")
  bench "$again" "$cur-confirm" "$@"
  compare "$base" "$cur-confirm"
}

aa_fail=0; aa_warn=0; aa_confirmed=0; ab_fail=0; ab_confirmed=0
for i in $(seq 1 "$reps"); do
  bench "$filter" aa-base
  bench "$filter" "aa-cur-$i"
  v=$(compare aa-base "aa-cur-$i"); c=-
  [ "$v" = warn ] && aa_warn=$((aa_warn + 1))
  if [ "$v" = fail ]; then
    aa_fail=$((aa_fail + 1))
    c=$(confirm aa-base "aa-cur-$i")
    [ "$c" = fail ] && aa_confirmed=$((aa_confirmed + 1))
  fi
  echo "A/A $i/$reps: $v (confirmation: $c)"
done
for i in $(seq 1 "$reps"); do
  bench "$filter" ab-base
  bench "$filter" "ab-cur-$i" RAYON_NUM_THREADS="$slow_threads"
  v=$(compare ab-base "ab-cur-$i"); c=-
  if [ "$v" = fail ]; then
    ab_fail=$((ab_fail + 1))
    c=$(confirm ab-base "ab-cur-$i" RAYON_NUM_THREADS="$slow_threads")
    [ "$c" = fail ] && ab_confirmed=$((ab_confirmed + 1))
  fi
  echo "A/B $i/$reps (RAYON_NUM_THREADS=$slow_threads): $v (confirmation: $c)"
done
summary="A/A, $reps comparisons: $aa_fail false FAILs ($aa_confirmed after confirmation), $aa_warn WARNs
A/B (RAYON_NUM_THREADS=$slow_threads), $reps comparisons: $ab_fail caught, $((reps - ab_fail)) missed ($ab_confirmed caught after confirmation, $((reps - ab_confirmed)) missed)"
echo "$summary" | tee "$out/summary.txt"
