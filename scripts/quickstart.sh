#!/usr/bin/env bash
# The main job on a fresh machine: fetch the default model into the Hugging Face cache, build,
# print the machine, and run the quick preset (CUDA when built with --features cuda and a GPU
# is present, else CPU). Results land in results/RUN_ID/ (run.json, scenarios.csv).
# Then the quick retrieval run: 100,000 clustered vectors, exact ground truth, an HNSW index
# (cached for the next time) and its ef sweep.
# Extra arguments go to `inferbench run` (and skip the retrieval run), e.g.
#   scripts/quickstart.sh --preset cpu_only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo build --release --quiet
./target/release/inferbench info
echo
if [ $# -gt 0 ]; then
  exec ./target/release/inferbench run "$@"
fi
./target/release/inferbench run --preset quick
echo
exec ./target/release/inferbench retrieval --preset quick
