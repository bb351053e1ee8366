"""The whole path: a lumen-instrumented FastAPI service → lumen-otelcol (TLS) → Loki stand-in, Prometheus.

The service is a small FastAPI app run as users run it, ``opentelemetry-instrument uvicorn app:app``,
configured only through the environment (OTEL_SERVICE_NAME, LUMEN_ENV=prod, an https OTLP endpoint
and the test CA in OTEL_EXPORTER_OTLP_CERTIFICATE). The collector runs gateway.yaml; logs go to a
loopback OTLP receiver standing in for Loki, metrics to Debian's Prometheus through remote write.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from lumen_otel.testing import LogRecordView, OTLPReceiver
from tests.collector.conftest import Prometheus, StartCollector, TLSFiles, gateway_env
from tests.conftest import VENV_BIN, clean_env, free_port

pytestmark = [pytest.mark.collector, pytest.mark.prometheus, pytest.mark.integration]

SERVICE = "radiology-e2e"

APP = """
import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("radiology")


@app.get("/studies/{study_id}")
async def study(study_id: int) -> dict[str, int]:
    log.info("Study %s opened for patient Sarah Murphy, MRN: 97727665", study_id)
    log.warning("Contact patient via jon16@example.com or 476-973-3122")
    extra = {"patient_name": "Marissa Miller", "mrn": "41767129"}
    log.error("Intake failed for SSN 059-89-3004", extra=extra)
    return {"study": study_id}
"""

PHI = [
    "Sarah",
    "Murphy",
    "97727665",
    "jon16@example.com",
    "476-973-3122",
    "059-89-3004",
    "Marissa",
    "41767129",
]


def test_lumen_service_logs_and_metrics_reach_loki_and_prometheus_through_the_collector(
    prometheus: Prometheus,
    start_collector: StartCollector,
    start_service: object,
    tls_files: TLSFiles,
    loki_stand_in: OTLPReceiver,
    tmp_path: Path,
) -> None:
    """One request: three records (INFO, WARNING, ERROR with PHI) and a server span, end to end."""
    collector = start_collector(
        ["gateway.yaml"],
        gateway_env(
            tls_files, loki_stand_in, prometheus.remote_write_endpoint, LUMEN_COLLECTOR_INSTANCE="e2e"
        ),
    )
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    env = clean_env(
        OTEL_SERVICE_NAME=SERVICE,
        LUMEN_ENV="prod",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.https_endpoint,
        OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls_files.ca_cert),
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
    )
    system_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if system_bundle.exists():
        # as on many hosts: the certificate variable must still win over requests' global bundle
        env["REQUESTS_CA_BUNDLE"] = str(system_bundle)
    argv = [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "uvicorn"),
        "app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    service = start_service(argv, env, tmp_path, port)  # type: ignore[operator]

    correlation_id = str(uuid.uuid4())
    response = httpx.get(
        f"{service.url}/studies/42", headers={"X-Correlation-ID": correlation_id}, timeout=10, trust_env=False
    )
    assert (200, correlation_id) == (response.status_code, response.headers.get("x-correlation-id"))

    def ours(receiver: OTLPReceiver) -> list[LogRecordView]:
        return [r for r in receiver.logs if r.attributes.get("correlation_id") == correlation_id]

    assert loki_stand_in.wait_for(lambda r: len(ours(r)) >= 3, timeout=30), (collector.output(), service)
    records = sorted(ours(loki_stand_in), key=lambda r: r.severity_number)
    app_records = [
        r
        for r in records
        if r.scope == "radiology"
        or "Study" in str(r.body)
        or "Intake" in str(r.body)
        or "Contact" in str(r.body)
    ]
    assert 3 == len(app_records), [r.body for r in records]

    trace_id = uuid.UUID(correlation_id).hex  # no traceparent: the trace id is the UUID's 128 bits
    assert [(SERVICE, correlation_id, trace_id, True)] * 3 == [
        (r.resource["service.name"], r.attributes["correlation_id"], r.trace_id, r.span_id is not None)
        for r in app_records
    ]
    everything = "\n".join(str(r.body) + str(r.attributes) for r in records)
    assert [] == [phi for phi in PHI if phi in everything]
    assert ["INFO", "WARN", "ERROR"] == [
        {9: "INFO", 13: "WARN", 17: "ERROR"}.get(r.severity_number, str(r.severity_number))
        for r in app_records
    ]
    assert all("[REDACTED:" in str(r.body) for r in app_records), [r.body for r in app_records]

    # Prometheus: the collector's counts of this service's errors and warnings, and span metrics.
    selector = f'service_name="{SERVICE}",severity=~"ERROR|WARN"'
    counts = prometheus.wait_for(
        f"sum by (severity) (lumen_collector_log_records_total{{{selector}}})",
        lambda res: (
            {r["metric"]["severity"]: float(r["value"][1]) for r in res} == {"ERROR": 1.0, "WARN": 1.0}
        ),
        timeout=60,
    )
    assert {"ERROR": 1.0, "WARN": 1.0} == {r["metric"]["severity"]: float(r["value"][1]) for r in counts}
    calls = prometheus.wait_for(
        f'sum(traces_span_metrics_calls_total{{service_name="{SERVICE}",span_kind="SPAN_KIND_SERVER",'
        'http_route="/studies/{study_id}",http_response_status_code="200"})',
        lambda res: len(res) == 1 and float(res[0]["value"][1]) == 1.0,
        timeout=60,
    )
    assert 1.0 == float(calls[0]["value"][1])
    app_counts = prometheus.wait_for(
        f'sum by (severity) (lumen_log_records_total{{service_name="{SERVICE}",severity=~"ERROR|WARN"}})',
        lambda res: (
            {r["metric"]["severity"]: float(r["value"][1]) for r in res} == {"ERROR": 1.0, "WARN": 1.0}
        ),
        timeout=60,
    )
    assert {"ERROR": 1.0, "WARN": 1.0} == {r["metric"]["severity"]: float(r["value"][1]) for r in app_counts}
