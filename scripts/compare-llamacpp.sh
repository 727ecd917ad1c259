#!/usr/bin/env bash
# llama.cpp (llama-cpp-python, pinned) and `inferbench generate` on the same GGUF, threads and
# lengths, alternated round by round; prints both sides' prefill and decode tok/s and the ratio.
#
#   scripts/compare-llamacpp.sh                          # SmolLM2-135M Q4_1, prompts 32/128/512
#   scripts/compare-llamacpp.sh --rounds 5 --batches 1,8 --json out.json
#   scripts/compare-llamacpp.sh --avx2                   # both sides as on a CPU without AVX-512
#   scripts/compare-llamacpp.sh --help                   # every option, and what is timed
#
# First use installs llama-cpp-python into target/llamacpp-venv from PyPI. PyPI has only its
# source, so it compiles llama.cpp for this CPU (cmake and ninja come from PyPI too; a C++
# compiler is needed): about 3 minutes on 2 cores. The default model is seeded by
# scripts/fetch-models.sh; inferbench is built with `cargo build --release` unless
# --inferbench names a binary. --avx2 limits both sides to AVX2, FMA and F16C (no AVX-512, no
# VNNI: a Haswell-to-Comet-Lake or Zen 2/3 desktop): llama.cpp built so into a venv of its own
# (target/llamacpp-avx2-venv), inferbench run with INFERBENCH_NO_AVX512=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/llamacpp-venv"
LLAMA_CPP="llama-cpp-python==0.3.36"
NUMPY="numpy==2.2.6"
for arg in "$@"; do
  if [ "$arg" = --avx2 ]; then
    VENV="$ROOT/target/llamacpp-avx2-venv"
    export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF"
    export INFERBENCH_NO_AVX512=1
  fi
done
STAMP="$VENV/.installed-$LLAMA_CPP"

log() { printf 'compare-llamacpp: %s\n' "$*" >&2; }

own_model=0 own_binary=0
for arg in "$@"; do
  case "$arg" in
    -h|--help) exec python3 "$ROOT/scripts/compare-llamacpp.py" --help ;;
    --model|--model=*) own_model=1 ;;
    --inferbench|--inferbench=*) own_binary=1 ;;
  esac
done

# Bad arguments fail here, before minutes of installing.
python3 "$ROOT/scripts/compare-llamacpp.py" --check-arguments "$@"

if [ ! -e "$STAMP" ]; then
  command -v c++ >/dev/null || { log "error: llama-cpp-python compiles llama.cpp: install a C++ compiler (apt-get install g++)"; exit 1; }
  log "installing $LLAMA_CPP and $NUMPY into $VENV (compiles llama.cpp: about 3 minutes on 2 cores)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$NUMPY"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install -q --disable-pip-version-check \
    --no-cache-dir "$LLAMA_CPP" "$NUMPY"
  touch "$STAMP"
fi

if [ "$own_model" = 0 ]; then
  "$ROOT/scripts/fetch-models.sh"
fi
if [ "$own_binary" = 0 ]; then
  log "cargo build --release (nothing to do when the binary is current)"
  (cd "$ROOT" && cargo build --release --quiet --bin inferbench)
fi

exec "$VENV/bin/python" "$ROOT/scripts/compare-llamacpp.py" "$@"
