#!/usr/bin/env bash
# Proof that the instruction-count gate neither cries wolf nor misses, on this machine, with
# the wall-time figures of the same runs beside it:
#   A/A: the same build counted twice and compared, REPS times: every FAIL is a false alarm.
#   A/B: the second run with a real slowdown: INFERBENCH_INJECT_SLOWDOWN=l2 makes the L2
#        distance kernel compute every tenth distance twice, 10% more work (the
#        `inject-slowdown` feature, compiled only into this script's binary), REPS times: a
#        comparison without a FAIL on the slowed kernel is a miss.
# Each comparison is `inferbench compare` with its default rules: instructions FAIL above +2%;
# the advisory wall times would FAIL (were they allowed to) when p95 is confidently > +20%.
# Usage: scripts/regress-check-instructions.sh [REPS]   (default 20; 2 REPS + 1 runs of
# ~45 s each here)
# Prints one line per comparison and the counts; writes target/regress-check-instructions/.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-20}
# Every workload but the decode step (the slowest to count, and untouched by the slowdown).
filter=${FILTER:-'^(qmatmul|pointwise|attention|tokenizer|hnsw|distance)/'}
slowed='instructions/distance/l2/384'
out=target/regress-check-instructions
rm -rf "$out" && mkdir -p "$out"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }

# One binary for both sides, with the knob compiled in; the normal build is restored after.
cargo build --quiet --features inject-slowdown
cp target/debug/inferbench "$out/inferbench"
cargo build --quiet
bin="$out/inferbench"

count() { # count RUN_ID [env...]
  local id=$1; shift
  env "$@" "$bin" instructions --filter "$filter" --no-cache-sim --time-samples 3 \
    -o "$out/runs" --run-id "$id" >"$out/$id.log" 2>&1
}
# verdicts BASE CURRENT -> "INSTR WALL": each ok, fail (on the slowed kernel: caught), or
# other-fail (a FAIL elsewhere)
verdicts() {
  local rc=0
  "$bin" compare "$out/runs/$1" "$out/runs/$2" --json "$out/$2.json" >"$out/$2.txt" 2>&1 || rc=$?
  [ "$rc" -le 1 ] || { echo "compare refused (see $out/$2.txt)" >&2; exit 2; }
  python3 - "$out/$2.json" "$slowed" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
slowed = sys.argv[2]
def verdict(failed):
    names = {r["benchmark"] for r in failed}
    if slowed in names:
        return "fail"
    return "other-fail" if names else "ok"
instr = [r for r in rows if r["metric"] == "instructions" and r["verdict"] == "fail"]
# Wall times only warn; the rules that would have failed them are listed with the marker.
wall = [r for r in rows if r["metric"] == "time" and "advisory: warns only" in r["fired"]]
print(verdict(instr), verdict(wall))
PY
}

# Runs alternate A, B, A, B, ..., A: A/A pairs are consecutive A runs, A/B pairs an A run
# and the B run after it (41 runs for 20 of each).
declare -A n
count a-0
for i in $(seq 1 "$reps"); do
  count "b-$i" INFERBENCH_INJECT_SLOWDOWN=l2
  count "a-$i"
  read -r vi vw < <(verdicts "a-$((i - 1))" "a-$i")
  n[aa_i_$vi]=$((${n[aa_i_$vi]:-0} + 1)); n[aa_w_$vw]=$((${n[aa_w_$vw]:-0} + 1))
  echo "A/A $i/$reps: instructions $vi, wall time $vw"
  read -r vi vw < <(verdicts "a-$((i - 1))" "b-$i")
  n[ab_i_$vi]=$((${n[ab_i_$vi]:-0} + 1)); n[ab_w_$vw]=$((${n[ab_w_$vw]:-0} + 1))
  echo "A/B $i/$reps (every tenth L2 distance twice): instructions $vi, wall time $vw"
done
c() { echo "${n[$1]:-0}"; }
summary="instructions: A/A $reps comparisons: $(($(c aa_i_fail) + $(c aa_i_other-fail))) false FAILs; A/B $reps comparisons: $(c ab_i_fail) caught, $((reps - $(c ab_i_fail))) missed, $(c ab_i_other-fail) FAILs elsewhere
wall time (default rules, advisory): A/A: $(($(c aa_w_fail) + $(c aa_w_other-fail))) false FAILs; A/B: $(c ab_w_fail) caught, $((reps - $(c ab_w_fail))) missed"
echo "$summary" | tee "$out/summary.txt"
