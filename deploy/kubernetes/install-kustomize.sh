#!/usr/bin/env bash
# Install kustomize into bin/ (git-ignored) with `go install`, for tests/deploy.
# Idempotent: does nothing when bin/kustomize already has this version.
set -euo pipefail
version="${KUSTOMIZE_VERSION:-v5.8.1}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ -x "$root/bin/kustomize" ]] && "$root/bin/kustomize" version 2>/dev/null | grep -q "${version#v}"; then
  exit 0
fi
command -v go >/dev/null || { echo "install-kustomize.sh: go is needed" >&2; exit 1; }
echo "==> installing kustomize $version into bin/ (go install)"
start=$(date +%s)
mkdir -p "$root/bin"
GOBIN="$root/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version"
echo "==> kustomize $version installed in $(( $(date +%s) - start ))s"
