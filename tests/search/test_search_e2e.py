"""The whole path to long-term storage: a lumen-instrumented service → lumen-otelcol → OpenSearch.

The service is a small FastAPI app run as users run it (``opentelemetry-instrument uvicorn``,
LUMEN_ENV=prod, an https OTLP endpoint and the test CA), logging PHI: a bare SSN, an MRN in a
labelled context and an HL7 v2 PID segment. The collector runs gateway.yaml + gateway-search.yaml
(the real binary), the node is a real OpenSearch 2.19.6 started by the tests on loopback with the
shipped index template installed by collector-config/search/install.sh. The records are then
looked up the way an operator would: by correlation ID (an exact ``term`` query), by a word of
the message (full text), and with ``lumen-otel trace ID --opensearch URL``.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lumen_otel.testing import OTLPReceiver
from tests.collector.conftest import StartCollector, TLSFiles, gateway_env
from tests.conftest import VENV_BIN, Service, clean_env, free_port, wait_for_port
from tests.search.conftest import OpenSearchNode, install_templates

pytestmark = [pytest.mark.search, pytest.mark.collector, pytest.mark.integration]

SERVICE = "admissions-search-e2e"
INDEX = "logs-lumen-e2e"  # a data stream of the template's logs-lumen-* pattern

APP = r"""
import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("admissions")


@app.post("/admissions/{ward}")
async def admit(ward: str) -> dict[str, str]:
    log.info("Wristband printed for SSN 123-45-6789 in ward %s", ward)
    log.warning("Chart lookup by MRN: 4417229 was slow in cardiology")
    log.error(
        "HL7 ADT rejected by the registry\rPID|1||4417229^^^HOSP^MR||DOE^JANE^Q||19800101|F\rPV1|1|I",
        extra={"hl7_event": "ADT^A01", "patient_name": "Jane Doe"},
    )
    return {"ward": ward}
"""

PHI = ["123-45-6789", "4417229", "DOE^JANE", "Jane Doe", "19800101"]


def _ours(correlation_id: str) -> dict[str, Any]:
    return {"term": {"correlation_id": correlation_id}}


@pytest.fixture(scope="module")
def loki_stand_in() -> Iterator[OTLPReceiver]:
    """The loopback OTLP receiver standing in for Loki, shared by this module's tests."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def admissions(
    opensearch: OpenSearchNode,
    start_collector_for_module: StartCollector,
    tls_files: TLSFiles,
    loki_stand_in: OTLPReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Any]]:
    """The template installed, the collector and the service running, one request made.

    Shared by the module's tests: each of them looks at the same request from another side.
    """
    start_collector = start_collector_for_module
    tmp_path = tmp_path_factory.mktemp("admissions")
    installed = install_templates(opensearch)
    assert 0 == installed.returncode, installed.stdout + installed.stderr
    collector = start_collector(
        ["gateway.yaml", "gateway-search.yaml"],
        gateway_env(
            tls_files, loki_stand_in, OPENSEARCH_ENDPOINT=opensearch.url, OPENSEARCH_LOGS_INDEX=INDEX
        ),
    )
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    env = clean_env(
        OTEL_SERVICE_NAME=SERVICE,
        LUMEN_ENV="prod",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.https_endpoint,
        OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls_files.ca_cert),
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_METRICS_EXPORTER="none",
    )
    argv = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "uvicorn"), "app:app"]
    proc = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    service = Service(proc, port)
    try:
        wait_for_port(port, 30, proc)
        yield _one_request(opensearch, service, collector)
    finally:
        service.stop()


def _one_request(opensearch: OpenSearchNode, service: Service, collector: Any) -> tuple[str, Any]:
    correlation_id = str(uuid.uuid4())
    response = httpx.post(
        f"{service.url}/admissions/3B",
        headers={"X-Correlation-ID": correlation_id},
        timeout=10,
        trust_env=False,
    )
    assert (200, correlation_id) == (response.status_code, response.headers.get("x-correlation-id"))
    query = {"query": {"bool": {"filter": [_ours(correlation_id), {"term": {"logger": "admissions"}}]}}}
    hits = opensearch.wait_for_hits(INDEX, {**query, "size": 100}, 3, timeout=60)
    assert 3 == len(hits), (collector.output(), [h["_source"] for h in hits])
    return correlation_id, collector


def test_records_are_indexed_redacted_and_found_by_correlation_id(
    admissions: tuple[str, Any], opensearch: OpenSearchNode
) -> None:
    correlation_id, _ = admissions
    hits = opensearch.search(INDEX, {"size": 100, "query": _ours(correlation_id), "sort": ["@timestamp"]})
    docs = [h["_source"] for h in hits]
    app = [d for d in docs if d["logger"] == "admissions"]
    trace_id = uuid.UUID(correlation_id).hex  # no traceparent: the trace id is the UUID's 128 bits
    assert [(SERVICE, correlation_id, trace_id, True)] * 3 == [
        (d["service_name"], d["correlation_id"], d["trace_id"], len(d.get("span_id", "")) == 16) for d in app
    ]
    assert ["INFO", "WARNING", "ERROR"] == [d["level"] for d in app]
    everything = json.dumps(docs)
    assert [] == [phi for phi in PHI if phi in everything]
    assert all("[REDACTED:" in d["message"] for d in app), [d["message"] for d in app]
    # the record's extras are kept (PHI-named ones masked), under attributes.*
    error = app[-1]
    assert "ADT^A01" == error["attributes"]["hl7_event"]
    assert "Jane" not in error["attributes"].get("patient_name", "")


def test_full_text_search_finds_a_word_of_the_message(
    admissions: tuple[str, Any], opensearch: OpenSearchNode
) -> None:
    correlation_id, _ = admissions

    def words(text: str) -> list[str]:
        query = {"bool": {"must": [{"match": {"message": text}}], "filter": [_ours(correlation_id)]}}
        return [h["_source"]["message"] for h in opensearch.search(INDEX, {"query": query})]

    wristband = words("wristband")
    assert 1 == len(wristband) and wristband[0].startswith("Wristband printed for SSN [REDACTED:")
    assert ["Chart lookup by MRN: [REDACTED:MRN] was slow in cardiology"] == words("cardiology")
    assert 1 == len(words("registry"))
    assert [] == words("4417229")  # the MRN is not in the index, not even as a token
    exact = {
        "bool": {"filter": [{"term": {"message.keyword": words("cardiology")[0]}}, _ours(correlation_id)]}
    }
    assert 1 == len(opensearch.search(INDEX, {"query": exact}))


def test_the_index_has_the_templates_mapping(admissions: tuple[str, Any], opensearch: OpenSearchNode) -> None:
    mappings = opensearch.request("GET", f"/{INDEX}/_mapping")
    (backing,) = mappings.values()
    properties = backing["mappings"]["properties"]
    types = {name: properties[name]["type"] for name in properties if "type" in properties[name]}
    assert {
        "@timestamp": "date_nanos",
        "level": "keyword",
        "severity_number": "integer",
        "service_name": "keyword",
        "logger": "keyword",
        "message": "text",
        "correlation_id": "keyword",
        "trace_id": "keyword",
        "span_id": "keyword",
    }.items() <= types.items()
    assert {"type": "keyword", "ignore_above": 8191} == properties["message"]["fields"]["keyword"]
    assert "keyword" == properties["attributes"]["properties"]["hl7_event"]["type"]
    assert "keyword" == properties["resource"]["properties"]["service_name"]["type"]
    assert next(iter(mappings)).startswith(f".ds-{INDEX}-")  # a data stream's backing index


def test_loki_still_gets_the_same_records(admissions: tuple[str, Any], loki_stand_in: OTLPReceiver) -> None:
    """The overlay adds an exporter to the logs pipeline; it does not take Loki's place."""
    correlation_id, _ = admissions
    assert loki_stand_in.wait_for(
        lambda r: sum(1 for x in r.logs if x.attributes.get("correlation_id") == correlation_id) >= 3,
        timeout=30,
    )


def test_lumen_otel_trace_reads_the_request_back_from_opensearch(
    admissions: tuple[str, Any], opensearch: OpenSearchNode
) -> None:
    correlation_id, _ = admissions
    argv = [str(VENV_BIN / "lumen-otel"), "trace", correlation_id, "--opensearch", opensearch.url]
    result = subprocess.run(
        [*argv, "--index", "logs-lumen-*", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert 0 == result.returncode, result.stderr
    timeline = json.loads(result.stdout)
    assert [SERVICE] == timeline["services"]
    assert [correlation_id] == timeline["correlation_ids"]
    assert timeline["record_count"] >= 3
    assert timeline["source"] == f"opensearch {opensearch.url}"
    text = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=clean_env())
    assert 0 == text.returncode, text.stderr
    assert "Chart lookup by MRN: [REDACTED:MRN] was slow in cardiology" in text.stdout
    assert [] == [phi for phi in PHI if phi in text.stdout]


def test_a_service_without_lumen_is_redacted_by_the_collector_before_the_index(
    admissions: tuple[str, Any], opensearch: OpenSearchNode, tls_files: TLSFiles
) -> None:
    """The collector is the second line of defence: a plain OpenTelemetry SDK client's PHI, not
    redacted in process, reaches the index redacted. Keys that would clash as objects (``lab.result``
    and ``lab.result.unit``) are both stored, dots turned to underscores."""
    from tests.collector._sdk import plain_sdk_client

    _, collector = admissions
    correlation_id = str(uuid.uuid4())
    with plain_sdk_client(collector.https_endpoint, tls_files.ca_cert, "plain-sdk-search") as client:
        client.logger.warning(
            "Refill for SSN 321-54-9876, MRN: 7781234, call 617-555-0142"
            "\rPID|1||7781234^^^HOSP^MR||ROE^RICHARD",
            extra={"correlation_id": correlation_id, "lab.result": "ok", "lab.result.unit": "mg/dL"},
        )
        client.flush()
    (hit,) = opensearch.wait_for_hits(INDEX, {"query": _ours(correlation_id)}, 1, timeout=60)
    doc = hit["_source"]
    assert [] == [
        phi for phi in ["321-54-9876", "7781234", "617-555-0142", "ROE^RICHARD"] if phi in json.dumps(doc)
    ]
    assert "[REDACTED:SSN]" in doc["message"] and "PID|1|[REDACTED:HL7_PID]" in doc["message"]
    assert ("plain-sdk-search", "WARNING") == (doc["service_name"], doc["level"])
    assert {"lab_result": "ok", "lab_result_unit": "mg/dL"}.items() <= doc["attributes"].items()
