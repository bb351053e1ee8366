#!/usr/bin/env bash
# Make a local CA and the certificates the compose stack uses for TLS between the
# services and the collector (server cert for the collector, one client cert for mTLS).
#
#   deploy/compose/make-certs.sh            # writes deploy/compose/certs/ (git-ignored)
#   CERT_DIR=/some/dir DAYS=30 make-certs.sh
#
# Idempotent: an existing CA is reused, so certificates already handed out stay valid.
# Never use these certificates outside a laptop: the CA key sits next to them.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${CERT_DIR:-$here/certs}"
days="${DAYS:-365}"
# Names the collector is reached by: the compose service name, and loopback for host tools.
server_names="${SERVER_NAMES:-DNS:collector,DNS:lumen-otelcol,DNS:localhost,IP:127.0.0.1,IP:::1}"

command -v openssl >/dev/null || { echo "make-certs.sh: openssl is needed" >&2; exit 1; }
mkdir -p "$out"
chmod 755 "$out"  # bind-mounted into containers that run as non-root users
cd "$out"

if [[ ! -f ca.key || ! -f ca.crt ]]; then
  echo "==> making the local CA"
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" \
    -keyout ca.key -out ca.crt -subj "/O=lumen-otel local/CN=lumen-otel local CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME EXTENSIONS...: a key and a CA-signed certificate for NAME.
issue() {
  local name="$1" cn="$2" eku="$3" san="$4"
  echo "==> making $name.crt ($eku)"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" \
    -subj "/O=lumen-otel local/CN=$cn" 2>/dev/null
  local ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$ext"
  openssl x509 -req -sha256 -days "$days" -in "$name.csr" -CA ca.crt -CAkey ca.key \
    -CAcreateserial -out "$name.crt" -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

issue collector lumen-otelcol serverAuth "$server_names"
issue client lumen-service clientAuth ""

# The collector runs as a non-root user in its image: the keys must be readable by it
# inside the container. The directory itself stays private to the owner on the host.
chmod 644 ./*.crt
chmod 644 collector.key client.key
chmod 600 ca.key
openssl verify -CAfile ca.crt collector.crt client.crt
echo "==> certificates in $out"
