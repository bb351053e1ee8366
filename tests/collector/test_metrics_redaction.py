"""The collector's metrics pipeline redacts as its logs and traces pipelines do.

A plain OpenTelemetry SDK meter (no lumen-otel: the collector's own rules are what is measured)
sends a counter whose data point attributes hold PHI in the places a service puts it: an
identifier in a URL path with no label (``/orders/99812347``), a labelled one (``/ssn/...``,
``/patients/MRN00123``), a PHI-named key, a PHI-shaped value, and a resource attribute. The real
``lumen-otelcol`` runs each shipped config whose metrics pipeline is in play (the gateway, its
keyed overlay, local.yaml); the gateway's metrics go to a file exporter (an overlay written here
that replaces only the metrics pipeline's exporters) so the test reads exactly what Prometheus
would be sent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from lumen_otel.testing import OTLPReceiver
from tests.collector.conftest import StartCollector, TLSFiles, gateway_env

pytestmark = [pytest.mark.collector, pytest.mark.integration]

KEY = "k" * 40  # the keyed overlay's LUMEN_REDACTION_KEY (at least 32 bytes)
PHI = ("123456789", "99812347", "55512345", "MRN00123", "644-10-7412", "555-867-5309", "071-22-4410")

ATTRIBUTES = {
    "http.target": "/ssn/123456789",
    "url.path": "/orders/99812347/items/55512345",
    "url.full": "https://api.example/patients/MRN00123/chart?page=2",
    "patient.ssn": "644-10-7412",
    "note": "call 555-867-5309",
    "http.route": "/orders/{order_id}",
    "http.request.method": "GET",
}


def _overlay(tmp_path: Path, out: Path) -> Path:
    overlay = tmp_path / "metrics-to-file.yaml"
    overlay.write_text(
        "exporters:\n"
        "  file/metrics_test:\n"
        f"    path: {out}\n"
        "    flush_interval: 100ms\n"
        "service:\n"
        "  pipelines:\n"
        "    metrics:\n"
        "      exporters: [file/metrics_test]\n",
        encoding="utf-8",
    )
    return overlay


def _points(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(resource attributes, data point attributes) of every ``lookups`` point in the file."""

    def attrs(kvs: list[dict[str, Any]]) -> dict[str, Any]:
        return {a["key"]: next(iter(a["value"].values()), None) for a in kvs}

    found = []
    if not path.exists():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        for rm in json.loads(line).get("resourceMetrics", []):
            resource = attrs(rm["resource"].get("attributes", []))
            for sm in rm.get("scopeMetrics", []):
                for metric in sm.get("metrics", []):
                    if metric["name"] == "lookups":
                        found += [
                            (resource, attrs(p.get("attributes", []))) for p in metric["sum"]["dataPoints"]
                        ]
    return found


def _send(endpoint: str, ca_file: str | None) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", certificate_file=ca_file, timeout=5)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    resource = Resource.create({"service.name": "imaging-svc", "team.owner": "071-22-4410"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    provider.get_meter("plain-sdk").create_counter("lookups").add(1, ATTRIBUTES)
    provider.shutdown()  # one export, then done


def _wait_for_points(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _points(path):
        time.sleep(0.2)
    return _points(path)


@pytest.mark.parametrize("keyed", [False, True], ids=["gateway", "gateway+keyed"])
def test_the_gateway_redacts_metric_data_point_and_resource_attributes(
    start_collector: StartCollector,
    tls_files: TLSFiles,
    loki_stand_in: OTLPReceiver,
    tmp_path: Path,
    keyed: bool,
) -> None:
    out = tmp_path / "metrics.jsonl"
    configs: list[str | Path] = [
        "gateway.yaml",
        *(["gateway-keyed.yaml"] if keyed else []),
        _overlay(tmp_path, out),
    ]
    env = gateway_env(tls_files, loki_stand_in, **({"LUMEN_REDACTION_KEY": KEY} if keyed else {}))
    collector = start_collector(configs, env)
    _send(collector.https_endpoint, str(tls_files.ca_cert))
    points = _wait_for_points(out)
    assert len(points) == 1, collector.output()
    resource, attributes = points[0]
    text = out.read_text(encoding="utf-8")
    assert [] == [phi for phi in PHI if phi in text]
    assert {
        "http.target": "/ssn/[REDACTED:SSN]",
        "url.path": "/orders/[REDACTED:ID]/items/[REDACTED:ID]",
        "url.full": "https://api.example/patients/[REDACTED:MRN]/chart?page=2",
        "http.route": "/orders/{order_id}",
        "http.request.method": "GET",
    } == {
        k: attributes[k] for k in ("http.target", "url.path", "url.full", "http.route", "http.request.method")
    }
    assert "imaging-svc" == resource["service.name"]
    if not keyed:
        assert ("****", "call ****", "****") == (
            attributes["patient.ssn"],
            attributes["note"],
            resource["team.owner"],
        )


def test_local_config_redacts_metrics_in_its_file(start_collector: StartCollector, tmp_path: Path) -> None:
    out = tmp_path / "demo" / "metrics.jsonl"
    collector = start_collector(
        ["local.yaml"],
        {
            "LUMEN_COLLECTOR_FILE_PATH": str(tmp_path / "demo" / "logs.jsonl"),
            "LUMEN_COLLECTOR_TRACES_FILE_PATH": str(tmp_path / "demo" / "traces.jsonl"),
            "LUMEN_COLLECTOR_METRICS_FILE_PATH": str(out),
            "LUMEN_COLLECTOR_BATCH_TIMEOUT": "100ms",
        },
    )
    _send(f"http://127.0.0.1:{collector.http_port}", None)
    points = _wait_for_points(out)
    assert len(points) == 1, collector.output()
    resource, attributes = points[0]
    assert [] == [phi for phi in PHI if phi in out.read_text(encoding="utf-8")]
    assert ("/ssn/[REDACTED:SSN]", "/orders/[REDACTED:ID]/items/[REDACTED:ID]", "****", "****") == (
        attributes["http.target"],
        attributes["url.path"],
        attributes["patient.ssn"],
        resource["team.owner"],
    )
