#!/usr/bin/env bash
# Install nvcc and the CUDA runtime headers from PyPI (no system CUDA needed) and print the
# environment that points cargo's CUDA builds at them. Used by CI to prove `--features cuda`
# builds on a machine without a GPU or a CUDA install.
#
#   eval "$(scripts/cuda-toolchain.sh)"   # then: cargo build --features cuda --lib
set -euo pipefail

# CUDA 13: the -cu12 nvcc wheels ship ptxas alone, the CUDA 13 ones the whole compiler.
# 13.4 is the newest that cudarc 0.19 knows.
CUDA_VERSION_PIN="13.4.92"
# cccl brings libcu++ (<nv/target>), which cuda_fp16.h includes.
PACKAGES=("nvidia-cuda-nvcc==$CUDA_VERSION_PIN" "nvidia-cuda-runtime==$CUDA_VERSION_PIN"
  "nvidia-cuda-crt==$CUDA_VERSION_PIN" "nvidia-nvvm==$CUDA_VERSION_PIN" "nvidia-cuda-cccl==13.3.5.0.6")
PREFIX="${INFERBENCH_CUDA_HOME:-$HOME/.cache/inferbench/cuda-$CUDA_VERSION_PIN}"
ROOT="$PREFIX/site/nvidia/cu13"

log() { printf 'cuda-toolchain: %s\n' "$*" >&2; }

if [ ! -e "$PREFIX/site/.complete-$CUDA_VERSION_PIN" ]; then
  python3 -m pip --version >/dev/null 2>&1 || {
    log "installing python3-pip"; apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
  log "installing ${PACKAGES[*]} into $PREFIX"
  rm -rf "$PREFIX/site"  # pip --target will not merge into an existing nvidia/ folder
  python3 -m pip install -q --disable-pip-version-check --target "$PREFIX/site" "${PACKAGES[@]}" >&2
  # Build scripts look for lib64/ beside lib/.
  [ -e "$ROOT/lib64" ] || ln -s lib "$ROOT/lib64"
  "$ROOT/bin/nvcc" --version >&2
  touch "$PREFIX/site/.complete-$CUDA_VERSION_PIN"
fi

cat <<ENV
export CUDA_ROOT="$ROOT" CUDA_PATH="$ROOT" CUDA_HOME="$ROOT"
export PATH="$ROOT/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-89}"
ENV
