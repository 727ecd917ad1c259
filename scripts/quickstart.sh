#!/usr/bin/env bash
# The main job on a fresh machine: fetch the default model into the Hugging Face cache, build
# for this machine (with CUDA when an NVIDIA GPU is visible, see scripts/build-plan.sh), print
# the machine, and run the quick preset on that device. Results land in results/RUN_ID/
# (run.json, scenarios.csv, report.html). Then the quick retrieval run: 100,000 clustered vectors, exact
# ground truth, an HNSW index (cached for the next time) and its ef sweep.
# Extra arguments go to `inferbench run` (and skip the retrieval run), e.g.
#   scripts/quickstart.sh --preset cpu_only
#   INFERBENCH_BUILD=cpu scripts/quickstart.sh    # the CPU build even on a GPU machine
#   INFERBENCH_PLAN_ONLY=1 scripts/quickstart.sh  # print the plan, build and run nothing
set -euo pipefail
cd "$(dirname "$0")/.."

plan="$(scripts/build-plan.sh)" || exit $?
eval "$plan"
plan_only() { [ "${INFERBENCH_PLAN_ONLY:-0}" = 1 ]; }
step() {
  printf '+ %s\n' "$*"
  plan_only || "$@"
}

step scripts/fetch-models.sh
if [ "$BUILD" = cuda ] && [ -z "$NVCC" ]; then
  echo "+ eval \"\$(scripts/cuda-toolchain.sh)\"  # nvcc from PyPI"
  plan_only || eval "$(scripts/cuda-toolchain.sh)"
fi
# shellcheck disable=SC2086 # FEATURES is empty or two words
step cargo build --release --quiet $FEATURES
step ./target/release/inferbench info
# A CUDA build runs on the GPU or fails saying why; a CPU build keeps `auto` (its reason
# says there is no CUDA). Arguments that name a device keep theirs.
device=()
case " $* " in *" --device"*) ;; *) [ "$BUILD" = cuda ] && device=(--device cuda) ;; esac
if [ $# -gt 0 ]; then
  step ./target/release/inferbench run "${device[@]}" "$@"
  exit 0
fi
step ./target/release/inferbench run --preset quick --report "${device[@]}"
step ./target/release/inferbench retrieval --preset quick --report
