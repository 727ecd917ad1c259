#!/usr/bin/env bash
# The project's CI gate: instruction counts of the CPU hot paths (`inferbench instructions`,
# under callgrind) against the committed baseline baseline/ci/runs/instructions.json.
# Exit 1 when a workload's instructions grow by more than 2%; wall times are reported beside
# them and never fail the gate; exit 2 when the baseline cannot be compared (another profile:
# compiler, debug/release build, instruction set or valgrind).
#
#   scripts/instructions-gate.sh           # the gate (scripts/test.sh runs it)
#   scripts/instructions-gate.sh --update  # re-record the baseline; commit it in the same
#                                          # commit as the change that moved the counts
#
# It counts the debug build that `cargo test` makes (dependencies optimised, as every test
# run has them), so the gate costs no extra compile. Writes target/instructions/RUN/ (run.json,
# callgrind/*.out for callgrind_annotate) and target/instructions/comparison.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
case $mode in check | --update) ;; *) echo "usage: $0 [--update]" >&2; exit 2 ;; esac

if ! command -v valgrind >/dev/null; then
  echo "instructions-gate: installing valgrind (Debian package)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq valgrind >/dev/null
fi

cargo build --quiet
bin=target/debug/inferbench
out=target/instructions
baseline=baseline/ci/runs/instructions.json
run_id="gate-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
# No cache simulation: the gate needs instructions only, and this halves the time.
"$bin" instructions --no-cache-sim --time-samples 5 -o "$out" --run-id "$run_id"

if [ "$mode" = --update ]; then
  "$bin" baseline save instructions --run "$out/$run_id" --profile ci
  echo "instructions-gate: commit $baseline with the change that moved the counts"
  exit 0
fi
if [ ! -f "$baseline" ]; then
  echo "instructions-gate: no baseline at $baseline; record one with $0 --update" >&2
  exit 2
fi
"$bin" compare "$baseline" "$out/$run_id" --markdown "$out/comparison.md"
