#!/usr/bin/env bash
# The main job on a fresh machine: fetch the default model into the Hugging Face cache, build,
# print the machine, and run the quick preset (CUDA when built with --features cuda and a GPU
# is present, else CPU). Results land in results/RUN_ID/ (run.json, scenarios.csv).
# Extra arguments go to `inferbench run`, e.g. scripts/quickstart.sh --preset cpu_only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo build --release --quiet
./target/release/inferbench info
echo
if [ $# -eq 0 ]; then
  set -- --preset quick
fi
exec ./target/release/inferbench run "$@"
