#!/usr/bin/env bash
# Build bin/lumen-otelcol from collector-config/builder.yaml.
#
# Why a script and not a bare `builder` call: it pins the builder version to the
# release in builder.yaml, keeps the generated Go sources out of the tree
# (collector-config/_build, git-ignored), reuses Go's module and build caches,
# and skips the (slow) build when the binary is already newer than its inputs.
#
# Environment:
#   LUMEN_COLLECTOR_FORCE_BUILD=1   rebuild even when bin/lumen-otelcol is up to date
#   GOMAXPROCS / GOFLAGS            override the defaults chosen for a 2-core machine
set -euo pipefail

BUILDER_VERSION="v0.161.0"   # must match the core v0.x release pinned in builder.yaml

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config_dir="$repo_root/collector-config"
manifest="$config_dir/builder.yaml"
build_dir="$config_dir/_build"
binary="$repo_root/bin/lumen-otelcol"
script="$repo_root/scripts/build-collector.sh"

log() { printf '==> [build-collector] %s\n' "$*"; }
die() { printf 'ERROR [build-collector]: %s\n' "$*" >&2; exit 1; }

start_s=$(date +%s)

[[ -f "$manifest" ]] || die "manifest not found: $manifest"

if [[ "${LUMEN_COLLECTOR_FORCE_BUILD:-0}" != "1" && -x "$binary" \
      && "$binary" -nt "$manifest" && "$binary" -nt "$script" ]]; then
    log "skipped: $binary is newer than builder.yaml and this script (set LUMEN_COLLECTOR_FORCE_BUILD=1 to rebuild)"
    exit 0
fi

# Go: take it from PATH, else the standard install location.
if ! command -v go >/dev/null 2>&1; then
    if [[ -x /usr/local/go/bin/go ]]; then
        export PATH="/usr/local/go/bin:$PATH"
    else
        die "Go is not installed (need Go >= 1.24 on PATH or in /usr/local/go/bin)"
    fi
fi
log "using $(go version)"

# A 2-core machine shared with tests: two compile jobs, no more. -trimpath makes
# the binary reproducible across checkouts; the caches are Go's defaults, so a
# second build (or CI on the same machine) reuses every compiled package.
export GOMAXPROCS="${GOMAXPROCS:-2}"
export GOFLAGS="${GOFLAGS:--trimpath -p=2}"
export CGO_ENABLED="${CGO_ENABLED:-0}"
gobin="$(go env GOPATH)/bin"
builder="$gobin/builder"

if [[ -x "$builder" ]] && "$builder" version 2>/dev/null | grep -q "${BUILDER_VERSION#v}"; then
    log "builder $BUILDER_VERSION already installed at $builder"
else
    log "installing go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
    GOFLAGS="" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" \
        || die "could not install the collector builder $BUILDER_VERSION (is the Go module proxy reachable?)"
fi

log "generating Go sources under ${build_dir#"$repo_root"/} and fetching modules"
cd "$config_dir"
"$builder" --config="$manifest" --skip-compilation \
    || die "builder failed to generate/resolve the distribution (see the output above)"
gen_s=$(date +%s)
log "sources ready in $((gen_s - start_s))s; compiling (GOMAXPROCS=$GOMAXPROCS GOFLAGS='$GOFLAGS')"

mkdir -p "$repo_root/bin"
cd "$build_dir"
tmp_binary="$binary.tmp.$$"
trap 'rm -f "$tmp_binary"' EXIT
go build -ldflags="-s -w" -o "$tmp_binary" . \
    || die "go build failed in $build_dir (see the output above)"
mv -f "$tmp_binary" "$binary"

end_s=$(date +%s)
size=$(du -h "$binary" | cut -f1)
log "built $binary ($size) in $((end_s - start_s))s (compile $((end_s - gen_s))s)"
"$binary" --version || die "the built binary does not run"
