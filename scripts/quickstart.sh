#!/usr/bin/env bash
# The main job on a fresh machine: fetch the default model into the Hugging Face cache, build,
# and run it (CUDA when built with --features cuda and a GPU is present, else CPU).
# Extra arguments go to `inferbench generate`, e.g. scripts/quickstart.sh --batch 4
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh
cargo build --release --quiet
./target/release/inferbench info
echo
if [ $# -eq 0 ]; then
  set -- --chat --prompt "What is the capital of Germany?" --max-tokens 64
fi
exec ./target/release/inferbench generate "$@"
