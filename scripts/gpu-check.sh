#!/usr/bin/env bash
# One short run on a fresh GPU machine: build for its GPU, then check and measure what the
# CUDA path does, print one summary table and write results/gpu-check/summary.json.
#   1. answers: the GGUF's greedy answers on CUDA against the same file dequantised to f32 on
#      the CPU, token for token (and bf16 safetensors when a SmolLM2 checkpoint is cached);
#   2. the quick preset's shape at batch 1/8/32/64 on CUDA: TTFT, ITL, decode tok/s, energy
#      per token (NVML's counter, cross-checked against integrated power), peak GPU memory,
#      SM clock and throttle reasons;
#   3. Llama-3-8B's shapes with random bf16 weights: decode tok/s at batch 1 and its share of
#      the memory-bandwidth roofline (NVML's memory clock × bus width);
#   4. the CUDA kernels and decode benches, short (1 s warm-up, 3 s measurement), while the
#      time budget (GPU_CHECK_BUDGET_S, 480 s in all) lasts.
# Each step's output stays in results/gpu-check/; a failing step is reported and the rest go on.
#   scripts/gpu-check.sh
#   INFERBENCH_GPU_CHECK_DRY=1 scripts/gpu-check.sh   # no GPU: the same steps on the CPU at toy
#                                                      # sizes, to test the script itself
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=results/gpu-check
DRY="${INFERBENCH_GPU_CHECK_DRY:-0}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-480}"
STARTED=$SECONDS
rm -rf "$OUT" && mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

step() { printf '\n== %s (%d s in)\n' "$*" $((SECONDS - STARTED)); }
failed() { echo "$1" >>"$OUT/failed.txt"; echo "FAILED: $1"; }

set -e
scripts/fetch-models.sh >/dev/null
if [ "$DRY" = 1 ]; then
  echo "gpu-check: dry run on the CPU (INFERBENCH_GPU_CHECK_DRY=1): toy sizes, no GPU figures"
  DEVICE=cpu FEATURES="" BIG_MODEL=fixtures/tiny-llama/config.json MAX_TOKENS=4
  cargo build --release --quiet
else
  plan="$(scripts/build-plan.sh)" || exit $?
  eval "$plan"
  if [ "$BUILD" != cuda ]; then
    echo "gpu-check: this machine has no usable NVIDIA GPU (see the build line above)" >&2
    exit 1
  fi
  DEVICE=cuda FEATURES="--features cuda" BIG_MODEL=fixtures/llama-3-8b/config.json MAX_TOKENS=32
  [ -n "$NVCC" ] || eval "$(scripts/cuda-toolchain.sh)"
  step "build (release, --features cuda)"
  cargo build --release --quiet --features cuda
fi
set +e
BIN=./target/release/inferbench
HUB="${HF_HOME:-$HOME/.cache/huggingface}/hub"
GGUF="$(ls "$HUB"/models--QuantFactory--SmolLM2-135M-Instruct-GGUF/snapshots/*/*.gguf | head -n 1)"
$BIN info --json >"$OUT/machine.json"
$BIN info

step "answers: the GGUF on $DEVICE against f32 weights on the CPU"
$BIN agree --device "$DEVICE" --repack none --max-tokens "$MAX_TOKENS" --json "$OUT/agree-gguf.json" ||
  failed "answers (GGUF): see above"
if ls "$HUB"/models--HuggingFaceTB--SmolLM2-135M-Instruct/snapshots/*/model.safetensors >/dev/null 2>&1; then
  step "answers: bf16 safetensors on $DEVICE against f32 on the CPU"
  $BIN agree --model HuggingFaceTB/SmolLM2-135M-Instruct --dtype bf16 --device "$DEVICE" \
    --max-tokens "$MAX_TOKENS" --json "$OUT/agree-bf16.json" || failed "answers (bf16): see above"
else
  echo "no SmolLM2 safetensors checkpoint in the cache: bf16 answers not checked" | tee "$OUT/agree-bf16.skipped"
fi

step "the quick preset's shape at batch 1/8/32/64 on $DEVICE"
if [ "$DRY" = 1 ]; then
  printf 'extends = "gpu-check.toml"\n[scenarios]\nbatch_sizes = [1, 2]\nprompt_tokens = [8]\noutput_tokens = [4]\nmeasured_runs = 1\n' \
    >"$OUT/dry.toml"
  cp fixtures/gpu-check.toml "$OUT/gpu-check.toml"
  CONFIG="$OUT/dry.toml"
else
  CONFIG=fixtures/gpu-check.toml
fi
$BIN run --config "$CONFIG" --device "$DEVICE" -o "$OUT" --run-id quick || failed "quick preset: see above"

step "Llama-3-8B shapes, random bf16 weights, decode at batch 1 on $DEVICE"
$BIN generate --model "$BIG_MODEL" --weights dummy --dtype bf16 --device "$DEVICE" --tokenizer "$GGUF" \
  --prompt-tokens 128 --max-tokens $((MAX_TOKENS * 4)) --ignore-eos --warmup 1 >"$OUT/llama3-8b.txt" ||
  failed "Llama-3-8B decode: see above"
tail -n 1 "$OUT/llama3-8b.txt"

left=$((BUDGET_S - (SECONDS - STARTED)))
if [ "$DRY" = 1 ]; then
  echo "dry run: benches skipped" | tee "$OUT/benches.skipped"
elif [ "$left" -lt 120 ]; then
  echo "benches skipped: ${left} s of the ${BUDGET_S} s budget left" | tee "$OUT/benches.skipped"
else
  step "Criterion: CUDA kernels and decode, 1 s warm-up, 3 s measurement"
  # shellcheck disable=SC2086 # FEATURES is two words
  timeout $((left - 30)) cargo bench --quiet $FEATURES --bench kernels -- --warm-up-time 1 \
    --measurement-time 3 cuda0 || failed "kernels bench (or its time ran out)"
  INFERBENCH_DEVICE=cuda timeout $((BUDGET_S - (SECONDS - STARTED))) cargo bench --quiet $FEATURES \
    --bench inference -- --warm-up-time 1 --measurement-time 3 decode ||
    failed "inference bench (or its time ran out)"
fi

step "summary"
python3 scripts/gpu-check-summary.py "$OUT" "$BIG_MODEL" || failed "summary"
echo "gpu-check: $((SECONDS - STARTED)) s in all; results in $OUT/"
[ ! -e "$OUT/failed.txt" ]
