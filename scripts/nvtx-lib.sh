#!/usr/bin/env bash
# Prints the path of an NVTX library (NVIDIA's libnvtx3interop.so.1 from the PyPI wheel
# nvidia-nvtx-cu12, pinned), fetching it into target/nvtx on first use. `inferbench profile`
# opens it through INFERBENCH_NVTX_LIB to put a range around each op for nsys; scripts/test.sh
# sets it so the tests call the real library.
#   INFERBENCH_NVTX_LIB="$(scripts/nvtx-lib.sh)" inferbench profile
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=nvidia-nvtx-cu12
version=12.9.79
dir=target/nvtx/$version
lib=$dir/nvidia/nvtx/lib/libnvtx3interop.so.1
if [ ! -f "$lib" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$wheel==$version" >&2 \
    || { echo "nvtx-lib: pip could not download $wheel==$version" >&2; exit 1; }
  mkdir -p "$dir"
  python3 -m zipfile -e "$tmp"/*.whl "$dir" >&2
fi
realpath "$lib"
