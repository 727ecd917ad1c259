#!/usr/bin/env bash
# On a machine without a GPU: prove the CUDA build is whole. The toolchain script, called
# again, installs nothing; the binary built with
# `--features cuda` against the PyPI toolchain links, finds its CUDA libraries through its
# rpath, and, run with the toolchain's stub driver (which answers every call with an error),
# falls back to the CPU under --device auto saying why, while --device cuda fails saying why.
#   scripts/cuda-link-check.sh [BINARY]   # default: target/debug/inferbench
# Expects the environment of `eval "$(scripts/cuda-toolchain.sh)"`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-target/debug/inferbench}"
fail() { echo "cuda-link-check: $*" >&2; exit 1; }

[ -n "${INFERBENCH_CUDA_RPATH:-}" ] || fail "run eval \"\$(scripts/cuda-toolchain.sh)\" first"
again="$(scripts/cuda-toolchain.sh 2>&1 >/dev/null)"
[ -z "$again" ] || fail "a second scripts/cuda-toolchain.sh did more than print the environment: $again"
# The stub driver under the name the loader looks for (the toolchain's stubs/ holds only the
# link-time name, as the CUDA toolkit's does, so that nothing loads it by accident).
driver="$(mktemp -d)"
trap 'rm -rf "$driver"' EXIT
ln -s "$CUDA_ROOT/lib/stubs/libcuda.so" "$driver/libcuda.so.1"

# Every CUDA library the binary needs, but the driver, comes from the toolchain via the rpath.
needed="$(LD_LIBRARY_PATH="$driver" ldd "$BIN" | grep -E 'lib(cu|nvrtc)' | grep -v 'libcuda\.so')"
grep -q libcublas <<<"$needed" || fail "$BIN does not link cuBLAS: $needed"
while read -r line; do
  case "$line" in
    *"=> $INFERBENCH_CUDA_RPATH/"*) ;;
    *) fail "$BIN does not find a CUDA library in $INFERBENCH_CUDA_RPATH through its rpath: $line" ;;
  esac
done <<<"$needed"
echo "cuda-link-check: $BIN finds $(awk '{print $1}' <<<"$needed" | tr '\n' ' ')in $INFERBENCH_CUDA_RPATH"

run() { LD_LIBRARY_PATH="$driver" "$BIN" generate --prompt "The capital of France is" \
  --max-tokens 2 --temperature 0 "$@" 2>&1; }
out="$(run)" || fail "--device auto with no usable GPU failed instead of using the CPU: $out"
grep -q "device: cpu (auto: no usable CUDA GPU (" <<<"$out" ||
  fail "--device auto did not say why it used the CPU: $out"
echo "cuda-link-check: $(grep -m 1 '^device:' <<<"$out")"

if out="$(run --device cuda)"; then fail "--device cuda without a usable GPU succeeded: $out"; fi
grep -q "could not open CUDA GPU 0" <<<"$out" || fail "--device cuda did not say why it failed: $out"
echo "cuda-link-check: --device cuda fails: $(grep -m 1 'could not open' <<<"$out")"
