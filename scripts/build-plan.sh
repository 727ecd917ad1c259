#!/usr/bin/env bash
# Choose the build for this machine: CUDA when an NVIDIA GPU and driver are visible, else CPU.
# Prints why on stderr ("build: cuda (NVIDIA GeForce RTX 4090, compute capability 8.9, driver
# 550.54.14, nvcc from /usr/local/cuda/bin/nvcc)" or "build: cpu (no NVIDIA driver found)")
# and the choice as shell assignments on stdout:
#
#   plan="$(scripts/build-plan.sh)" || exit $?   # 2: INFERBENCH_BUILD cannot be followed
#   eval "$plan"   # sets BUILD=cuda|cpu, DEVICE, FEATURES, NVCC and exports CUDA_COMPUTE_CAP
#
# INFERBENCH_BUILD=cpu|cuda overrides the choice. The driver is looked for through nvidia-smi
# (its GPU name, compute capability and driver version) and /proc/driver/nvidia.
set -euo pipefail

# Tests point these elsewhere, so that a GPU machine's own driver and toolkit do not count.
PROC_NVIDIA="${INFERBENCH_PROC_NVIDIA:-/proc/driver/nvidia}"
SYSTEM_CUDA="${INFERBENCH_SYSTEM_CUDA:-/usr/local/cuda}"

say() { printf '%s\n' "$*" >&2; }
choose() { # BUILD REASON
  say "build: $1 ($2)"
  if [ "$1" = cuda ]; then
    printf 'BUILD=cuda DEVICE=cuda FEATURES="--features cuda" NVCC=%q\n' "$NVCC"
    printf 'export CUDA_COMPUTE_CAP=%q\n' "$COMPUTE_CAP"
  else
    printf 'BUILD=cpu DEVICE=cpu FEATURES= NVCC=\n'
  fi
  exit 0
}

# The toolkit: the system's nvcc when there is one, else the PyPI one cuda-toolchain.sh brings.
NVCC="$(command -v nvcc || true)"
[ -n "$NVCC" ] || { [ -x "$SYSTEM_CUDA/bin/nvcc" ] && NVCC="$SYSTEM_CUDA/bin/nvcc"; } || true
NVCC_WORDS="nvcc from ${NVCC:-PyPI (scripts/cuda-toolchain.sh)}"

# What the driver says: "NAME, 8.9, 550.54.14" per GPU; the first GPU decides.
GPU="" SMI_ERROR=""
if command -v nvidia-smi >/dev/null 2>&1; then
  if out="$(timeout 20 nvidia-smi --query-gpu=name,compute_cap,driver_version \
    --format=csv,noheader 2>&1)" && [ -n "$out" ]; then
    GPU="$(printf '%s\n' "$out" | head -n 1)"
  else
    SMI_ERROR="$(printf '%s\n' "$out" | grep -m 1 . || echo "no output")"
  fi
fi
NAME="$(printf '%s' "$GPU" | cut -d, -f1 | sed 's/^ *//; s/ *$//')"
CAP="$(printf '%s' "$GPU" | cut -d, -f2 | tr -d ' ')"
DRIVER="$(printf '%s' "$GPU" | cut -d, -f3 | tr -d ' ')"
COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(printf '%s' "$CAP" | tr -d .)}"

case "${INFERBENCH_BUILD:-}" in
  cpu) choose cpu "INFERBENCH_BUILD=cpu" ;;
  cuda)
    [ -n "$COMPUTE_CAP" ] || { say "build: cuda asked by INFERBENCH_BUILD, but no GPU says its compute capability: set CUDA_COMPUTE_CAP (e.g. 89 for an RTX 4090)"; exit 2; }
    choose cuda "INFERBENCH_BUILD=cuda${NAME:+, $NAME}, compute capability $COMPUTE_CAP, $NVCC_WORDS" ;;
  "") ;;
  *) say "INFERBENCH_BUILD=${INFERBENCH_BUILD}: expected cpu or cuda"; exit 2 ;;
esac

if [ -n "$GPU" ]; then
  if ! [[ "$CAP" =~ ^[0-9]+\.[0-9]+$ ]]; then
    choose cpu "nvidia-smi names $NAME but no compute capability ('$CAP'); set CUDA_COMPUTE_CAP and INFERBENCH_BUILD=cuda to build for it"
  fi
  choose cuda "$NAME, compute capability $CAP, driver $DRIVER, $NVCC_WORDS"
fi
if [ -n "$SMI_ERROR" ]; then
  choose cpu "nvidia-smi failed: $SMI_ERROR"
fi
if [ -e "$PROC_NVIDIA/version" ]; then
  choose cpu "an NVIDIA driver is loaded ($PROC_NVIDIA) but there is no nvidia-smi to read the GPU's compute capability; set CUDA_COMPUTE_CAP and INFERBENCH_BUILD=cuda to build for it"
fi
choose cpu "no NVIDIA driver found"
