#!/usr/bin/env bash
# Build the one-process OpenSearch node the tests in tests/search/ start (EmbeddedNode.java).
#
#   tests/search/build-node.sh      # → build/opensearch-node/{lib/*.jar,classes/} (git-ignored)
#
# Maven resolves org.opensearch:opensearch and the transport-netty4-client plugin (2.19.6, the
# newest line that runs on Java 17) from Maven Central into lib/; javac compiles the launcher.
# Idempotent: skipped when the output is newer than pom.xml, the Java source and this script.
# Needs a JDK >= 17 (javac) and mvn on PATH.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
node_src="$repo_root/tests/search/node"
out="$repo_root/build/opensearch-node"
stamp="$out/.built"
script="$repo_root/tests/search/build-node.sh"
java_src="$node_src/src/main/java/health/lumen/search/EmbeddedNode.java"

log() { printf '==> [build-node] %s\n' "$*"; }
die() { printf 'ERROR [build-node]: %s\n' "$*" >&2; exit 1; }

start_s=$(date +%s)
if [[ -f "$stamp" && "$stamp" -nt "$node_src/pom.xml" && "$stamp" -nt "$java_src" && "$stamp" -nt "$script" ]]; then
    log "skipped: $out is up to date"
    exit 0
fi
command -v mvn >/dev/null 2>&1 || die "mvn is not installed (apt-get install -y maven)"
command -v javac >/dev/null 2>&1 || die "javac is not installed (a JDK >= 17)"

rm -rf "$out"
mkdir -p "$out/lib" "$out/classes"
log "resolving OpenSearch 2.19.6 from Maven Central into ${out#"$repo_root"/}/lib"
mvn -q -B -f "$node_src/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$out/lib" -DincludeScope=runtime \
    || die "mvn could not resolve the dependencies (is Maven Central reachable?)"
log "compiling EmbeddedNode"
javac --release 17 -nowarn -d "$out/classes" -cp "$out/lib/*" "$java_src" \
    || die "javac failed"
touch "$stamp"
log "built in $(( $(date +%s) - start_s ))s ($(ls "$out/lib" | wc -l) jars)"
