#!/usr/bin/env bash
# Validate Kubernetes manifests offline against the API's JSON schemas (strict: unknown
# fields fail), with kubernetes-validate from PyPI, pinned, installed once under target/.
#   scripts/k8s-validate.sh out/*.yaml        # K8S_VERSION=1.30 by default
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
site="$root/target/k8s-validate"
version=1.37.0
if [ ! -f "$site/.installed-$version" ]; then
  python3 -m pip --version >/dev/null 2>&1 || {
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-pip >/dev/null; }
  rm -rf "$site"
  python3 -m pip install -q --disable-pip-version-check --target "$site" \
    "kubernetes-validate==$version" >&2
  touch "$site/.installed-$version"
fi
PYTHONPATH="$site" exec python3 -m kubernetes_validate --strict --quiet \
  -k "${K8S_VERSION:-1.30}" "$@"
