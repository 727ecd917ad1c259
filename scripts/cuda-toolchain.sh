#!/usr/bin/env bash
# Install a CUDA toolchain from PyPI (no system CUDA needed) and print the environment that
# points cargo's CUDA builds at it: nvcc 13.4 and its headers to compile the kernels, the
# cuBLAS, cuBLASLt, cuRAND and NVRTC libraries a CUDA binary links and runs with, and a stub
# libcuda.so in lib/stubs to link against where there is no driver (as the CUDA toolkit's own
# stubs/ is; at run time the driver's libcuda.so.1 is loaded). Binaries built with it find the
# libraries through an rpath (build.rs, INFERBENCH_CUDA_RPATH). Idempotent: a second call
# installs nothing.
#
#   eval "$(scripts/cuda-toolchain.sh)"   # then: cargo build --release --features cuda
set -euo pipefail

# CUDA 13: the -cu12 nvcc wheels ship ptxas alone, the CUDA 13 ones the whole compiler.
# 13.4 is the newest that cudarc 0.19 knows.
CUDA_VERSION_PIN="13.4.92"
# cccl brings libcu++ (<nv/target>), which cuda_fp16.h includes.
PACKAGES=("nvidia-cuda-nvcc==$CUDA_VERSION_PIN" "nvidia-cuda-runtime==$CUDA_VERSION_PIN"
  "nvidia-cuda-crt==$CUDA_VERSION_PIN" "nvidia-nvvm==$CUDA_VERSION_PIN" "nvidia-cuda-cccl==13.3.5.0.6"
  "nvidia-cuda-nvrtc==$CUDA_VERSION_PIN" "nvidia-cublas==13.4.3.11" "nvidia-curand==10.4.4.72")
PREFIX="${INFERBENCH_CUDA_HOME:-$HOME/.cache/inferbench/cuda-$CUDA_VERSION_PIN}"
ROOT="$PREFIX/site/nvidia/cu13"
# Bump when what is installed changes, so that older installs are redone.
MARKER="$PREFIX/site/.complete-$CUDA_VERSION_PIN-with-runtime"

log() { printf 'cuda-toolchain: %s\n' "$*" >&2; }

# Every driver API function the headers declare, as a stub answering CUDA_ERROR_UNKNOWN (999):
# enough to link; a process that loads it (only tests do) finds no usable GPU.
make_stub_libcuda() {
  local stubs="$ROOT/lib/stubs" src
  mkdir -p "$stubs"
  src="$(mktemp --suffix=.c)"
  { grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$ROOT/include/cuda.h"
    printf '%s\n' cuProfilerInitialize cuProfilerStart cuProfilerStop
  } | sort -u | sed 's/.*/int &(void) { return 999; }/' >"$src"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$src"
  rm -f "$src"
}

if [ ! -e "$MARKER" ]; then
  python3 -m pip --version >/dev/null 2>&1 || {
    log "installing python3-pip"; apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
  log "installing ${PACKAGES[*]} into $PREFIX"
  rm -rf "$PREFIX/site"  # pip --target will not merge into an existing nvidia/ folder
  python3 -m pip install -q --disable-pip-version-check --target "$PREFIX/site" "${PACKAGES[@]}" >&2
  "$ROOT/bin/nvcc" --version >&2
  touch "$MARKER"
fi
# Build scripts look for lib64/ beside lib/, and link with -lcublas: unversioned names.
[ -e "$ROOT/lib64" ] || ln -s lib "$ROOT/lib64"
for lib in cudart cublas cublasLt curand nvrtc; do
  if [ ! -e "$ROOT/lib/lib$lib.so" ]; then
    versioned="$(cd "$ROOT/lib" && ls "lib$lib.so."* | head -n 1)"
    ln -s "$versioned" "$ROOT/lib/lib$lib.so"
  fi
done
[ -e "$ROOT/lib/stubs/libcuda.so" ] || make_stub_libcuda

cat <<ENV
export CUDA_ROOT="$ROOT" CUDA_PATH="$ROOT" CUDA_HOME="$ROOT"
export PATH="$ROOT/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-89}"
export INFERBENCH_CUDA_RPATH="$ROOT/lib"
ENV
