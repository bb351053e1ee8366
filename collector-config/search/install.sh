#!/usr/bin/env bash
# Install lumen-otel's index template and retention policy into OpenSearch or Elasticsearch.
#
#   collector-config/search/install.sh http://127.0.0.1:9200              # engine detected from GET /
#   OPENSEARCH_USER=admin OPENSEARCH_PASSWORD=... OPENSEARCH_CA_FILE=ca.crt \
#     collector-config/search/install.sh https://opensearch:9200
#   collector-config/search/install.sh --no-policy http://127.0.0.1:9200  # template only (no ISM plugin)
#
# OpenSearch: ISM policy lumen-logs (ism-policy.json, attaches itself to .ds-logs-lumen-* through
#             its ism_template), component template lumen-logs-lifecycle (empty), index template.
# Elasticsearch: ILM policy lumen-logs (ilm-policy.json), component template lumen-logs-lifecycle
#             (index.lifecycle.name: lumen-logs), index template.
# Every call is a PUT, so running it again updates in place. Needs bash and curl only (it runs in
# the opensearch image in deploy/compose). Exits non-zero on the first refused request.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
policy=1
engine=""
while [[ $# -gt 1 ]]; do
    case "$1" in
        --no-policy) policy=0 ;;
        --opensearch) engine=opensearch ;;
        --elasticsearch) engine=elasticsearch ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ $# -eq 1 ]] || { echo "usage: $0 [--no-policy] [--opensearch|--elasticsearch] URL" >&2; exit 2; }
url="${1%/}"

curl_args=(--silent --show-error --max-time 30 --retry 0)
if [[ -n "${OPENSEARCH_USER:-}" ]]; then
    curl_args+=(--user "${OPENSEARCH_USER}:${OPENSEARCH_PASSWORD:-}")
elif [[ -n "${ELASTICSEARCH_API_KEY:-}" ]]; then
    curl_args+=(--header "Authorization: ApiKey ${ELASTICSEARCH_API_KEY}")
fi
[[ -z "${OPENSEARCH_CA_FILE:-}" ]] || curl_args+=(--cacert "$OPENSEARCH_CA_FILE")

# request METHOD PATH [FILE]: prints the body, fails on a status >= 300
request() {
    local out status
    out="$(mktemp)"
    if [[ $# -eq 3 ]]; then
        status=$(curl "${curl_args[@]}" -o "$out" -w '%{http_code}' -X "$1" "$url$2" \
            -H 'Content-Type: application/json' --data-binary "@$3")
    else
        status=$(curl "${curl_args[@]}" -o "$out" -w '%{http_code}' -X "$1" "$url$2")
    fi
    if [[ "$status" -ge 300 || "$status" -lt 200 ]]; then
        echo "ERROR: $1 $2 answered $status: $(head -c 500 "$out")" >&2
        rm -f "$out"
        return 1
    fi
    cat "$out"
    rm -f "$out"
}

if [[ -z "$engine" ]]; then
    if request GET / | grep -q '"distribution" *: *"opensearch"'; then engine=opensearch; else engine=elasticsearch; fi
fi
echo "==> $url is $engine"

if [[ "$policy" == 1 ]]; then
    if [[ "$engine" == opensearch ]]; then
        # ISM refuses a PUT over an existing policy without its seq_no/primary_term: drop and re-create
        # only when it exists (a 404 from GET means it does not)
        if curl "${curl_args[@]}" -o /dev/null -w '%{http_code}' "$url/_plugins/_ism/policies/lumen-logs" | grep -q '^200$'; then
            request DELETE /_plugins/_ism/policies/lumen-logs >/dev/null
        fi
        request PUT /_plugins/_ism/policies/lumen-logs "$here/ism-policy.json" >/dev/null
        echo "==> ISM policy lumen-logs installed"
    else
        request PUT /_ilm/policy/lumen-logs "$here/ilm-policy.json" >/dev/null
        echo "==> ILM policy lumen-logs installed"
    fi
else
    echo "==> retention policy skipped (--no-policy): nothing will delete old logs"
fi
request PUT /_component_template/lumen-logs-lifecycle "$here/component-lifecycle-$engine.json" >/dev/null
request PUT /_index_template/lumen-logs "$here/index-template.json" >/dev/null
echo "==> index template lumen-logs installed (logs-lumen-* data streams)"
