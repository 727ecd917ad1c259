#!/usr/bin/env bash
# Benchmarks in CI, against a committed baseline.
#   scripts/ci-bench.sh save    # on main: run the benches, save baseline `main` into
#                               # baseline/PROFILE/ (commit it, or keep it as a CI artifact),
#                               # and append the run to the history (results/history.sqlite;
#                               # keep it as an artifact too): target/history.txt shows trends
#   scripts/ci-bench.sh check   # on a pull request: restore it, run the same benches, compare;
#                               # writes target/compare.md (post it as a PR comment) and exits
#                               # 1 on a regression, 2 on bad input
# Environment:
#   BENCH      Criterion target (default kernels)
#   FILTER     regex of the benchmarks to run (default: the SmolLM2-shaped kernels, ~1 min)
#   PROFILE    baseline/ folder for this hardware (default: inferbench's slug of this machine)
#   BASELINE   baseline name (default main)
#   COMPARE_ARGS  extra `inferbench compare` flags, e.g. "--strict --fail-on-warn"
#   HISTORY    the history file (default results/history.sqlite)
#   CONFIRM    1 (default): when something FAILs, run just the failing benchmarks once more
#              and fail only if the regression shows again (a shared machine's state can
#              change between two runs by more than any threshold); 0: fail at once
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/ci-bench.sh save|check}
bench=${BENCH:-kernels}
filter=${FILTER:-'/cpu/smollm2-135m'}
name=${BASELINE:-main}
profile_args=()
[ -n "${PROFILE:-}" ] && profile_args=(--profile "$PROFILE")

cargo build --release --quiet
run_benches() { # run_benches SAVE_AS
  cargo bench --quiet --bench "$bench" -- "$filter" --save-baseline "$1" --noplot
}

case $mode in
  save)
    run_benches "$name"
    ./target/release/inferbench baseline save "$name" "${profile_args[@]}"
    history=${HISTORY:-results/history.sqlite}
    ./target/release/inferbench history add target/criterion --criterion-run "$name" \
      --branch "$(git rev-parse --abbrev-ref HEAD)" --commit "$(git rev-parse --short=12 HEAD)" \
      --db "$history"
    ./target/release/inferbench history show --db "$history" | tee target/history.txt
    ;;
  check)
    ./target/release/inferbench baseline restore "$name" "${profile_args[@]}"
    run_benches candidate
    rc=0
    # shellcheck disable=SC2086
    ./target/release/inferbench compare --baseline "$name" --current candidate \
      --markdown target/compare.md --json target/compare.json ${COMPARE_ARGS:-} || rc=$?
    if [ "$rc" = 1 ] && [ "${CONFIRM:-1}" = 1 ]; then
      again=$(scripts/failing-benchmarks.py target/compare.json)
      if [ -n "$again" ]; then
        echo "ci-bench: confirming the regression with one more run of: $again"
        cargo bench --quiet --bench "$bench" -- "$again" --save-baseline candidate-confirm --noplot
        rc=0
        # shellcheck disable=SC2086
        ./target/release/inferbench compare --baseline "$name" --current candidate-confirm \
          --markdown target/compare-confirm.md --json target/compare-confirm.json \
          ${COMPARE_ARGS:-} || rc=$?
        { printf '\n#### Confirmation run of the failing benchmarks\n\n'
          cat target/compare-confirm.md; } >>target/compare.md
      fi
    fi
    exit "$rc"
    ;;
  *)
    echo "usage: scripts/ci-bench.sh save|check" >&2
    exit 2
    ;;
esac
