#!/usr/bin/env bash
# Benchmarks in CI, against a committed baseline.
#   scripts/ci-bench.sh save    # on main: run the benches, save baseline `main` into
#                               # baseline/PROFILE/ (commit it, or keep it as a CI artifact)
#   scripts/ci-bench.sh check   # on a pull request: restore it, run the same benches, compare;
#                               # writes target/compare.md (post it as a PR comment) and exits
#                               # 1 on a regression, 2 on bad input
# Environment:
#   BENCH      Criterion target (default kernels)
#   FILTER     regex of the benchmarks to run (default: the SmolLM2-shaped kernels, ~1 min)
#   PROFILE    baseline/ folder for this hardware (default: inferbench's slug of this machine)
#   BASELINE   baseline name (default main)
#   COMPARE_ARGS  extra `inferbench compare` flags, e.g. "--strict --fail-on-warn"
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
    ;;
  check)
    ./target/release/inferbench baseline restore "$name" "${profile_args[@]}"
    run_benches candidate
    # shellcheck disable=SC2086
    exec ./target/release/inferbench compare --baseline "$name" --current candidate \
      --markdown target/compare.md --json target/compare.json ${COMPARE_ARGS:-}
    ;;
  *)
    echo "usage: scripts/ci-bench.sh save|check" >&2
    exit 2
    ;;
esac
