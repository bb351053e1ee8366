"""PHI that came in by the side doors: mapping keys, ``bytes`` values, span event and link
attributes, resource attributes, metric attributes and identifiers in URL paths.

Each case goes through the real pipeline: ``bootstrap()`` in a subprocess writing its file in
tmp and exporting over OTLP/HTTP to a loopback receiver, and a real uvicorn service under
``opentelemetry-instrument`` for the paths an instrumentation records. Besides the decoded
records, every request's raw payload is searched for the PHI strings, so a value in a place the
decoded views do not show (link attributes) cannot leave either.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lumen_otel.testing import OTLPReceiver, SpanView
from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

#: PHI strings the script puts in every side door; none may reach any payload or the file
PHI = ("123-45-6789", "644-10-7412", "97727665", "123456789", "99812347", "MRN00123", "555-867-5309")

SCRIPT = textwrap.dedent("""
    import logging

    import lumen_otel
    from opentelemetry import metrics, trace

    lumen_otel.bootstrap(service_name="side-doors")
    log = logging.getLogger("app.side_doors")
    log.info("nested key", extra={"door": "nested_key", "lookup": {"123-45-6789": "matched"}})
    log.info("top key", extra={"door": "top_key", "644-10-7412": "top"})
    log.info("key in a list", extra={"door": "list_key", "rows": [{"call 555-867-5309": 1}]})

    tracer = trace.get_tracer("side-doors")
    with tracer.start_as_current_span("warm-up") as warm:
        linked = warm.get_span_context()
    with tracer.start_as_current_span(
        "bytes and keys", links=[trace.Link(linked, {"link.note": b"ssn 123-45-6789"})]
    ) as span:
        span.set_attribute("payload", b"ssn 123-45-6789")
        span.set_attribute("clean.bytes", b"image/png")
        span.set_attribute("lookup.644-10-7412", "hit")
        span.add_event("lookup", {"raw": b"MRN: 97727665", "call 555-867-5309": 1})
        span.set_attribute("http.target", "/ssn/123456789")
        span.set_attribute("url.path", "/orders/99812347/items")
        span.set_attribute("url.full", "https://api.example/mrn/00123/chart?page=2")
        span.set_attribute("http.url", "https://api.example/exams/3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b")
    with tracer.start_as_current_span("GET /ssn/123456789"):
        pass

    meter = metrics.get_meter("side-doors")
    meter.create_histogram("app.request.duration").record(12, {"http.target": "/ssn/123456789"})
    meter.create_counter("app.lookups").add(
        1, {"patient.ssn": "644-10-7412", "url.path": "/orders/99812347", "note": "MRN: 97727665"}
    )
    meter.create_up_down_counter("app.open").add(1, {"raw": b"ssn 123-45-6789", "route": "/exams/{exam_id}"})
""")


@dataclass
class Output:
    file: dict[str, dict[str, Any]]
    receiver: OTLPReceiver
    payloads: dict[str, list[bytes]]

    def span(self, name: str) -> SpanView:
        return next(s for s in self.receiver.spans if s.name == name)

    def points(self, name: str) -> list[dict[str, Any]]:
        return [p for p in self.receiver.metrics if p["name"] == name]

    def otlp_log(self, door: str) -> dict[str, Any]:
        record = next(r for r in self.receiver.logs if r.attributes.get("door") == door)
        return {k: v for k, v in record.attributes.items() if not k.startswith("code.")}


class RecordingReceiver(OTLPReceiver):
    """The OTLP receiver, keeping every accepted request's raw payload by path."""

    def __init__(self) -> None:
        super().__init__()
        self.payloads: dict[str, list[bytes]] = {}

    def _accept(self, path: str, payload: bytes) -> None:
        with self._lock:
            self.payloads.setdefault(path, []).append(payload)
        super()._accept(path, payload)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Output]:
    log_dir = tmp_path_factory.mktemp("side-doors")
    with RecordingReceiver() as receiver:
        env = clean_env(
            LUMEN_ENV="prod",
            LUMEN_CONSOLE="false",
            LUMEN_LOG_DIR=str(log_dir),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_RESOURCE_ATTRIBUTES="team.owner=644-10-7412,deployment.environment.name=prod",
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert receiver.wait_for(
            lambda r: (
                len(r.logs) >= 3 and len(r.spans) >= 3 and any(p["name"] == "app.open" for p in r.metrics)
            )
        ), result.stderr
        records = [json.loads(line) for line in (log_dir / "side-doors.log").read_text().splitlines()]
        yield Output({r["door"]: r for r in records if "door" in r}, receiver, receiver.payloads)


def _extras(record: dict[str, Any]) -> dict[str, Any]:
    core = {"timestamp", "level", "service_name", "hostname", "logger", "message"}
    core |= {"correlation_id", "trace_id", "span_id", "door"}
    return {k: v for k, v in record.items() if k not in core}


class TestMappingKeys:
    def test_a_nested_key_holding_an_ssn_is_redacted_in_the_file_and_over_otlp(self, output: Output) -> None:
        assert {"lookup": {"[REDACTED:SSN]": "matched"}} == _extras(output.file["nested_key"])
        assert {"door": "nested_key", "lookup": '{"[REDACTED:SSN]":"matched"}'} == output.otlp_log(
            "nested_key"
        )

    def test_a_top_level_extra_key_holding_an_ssn_is_renamed(self, output: Output) -> None:
        assert {"[REDACTED:SSN]": "top"} == _extras(output.file["top_key"])
        assert {"door": "top_key", "[REDACTED:SSN]": "top"} == output.otlp_log("top_key")

    def test_a_key_inside_a_list_of_dicts_is_redacted(self, output: Output) -> None:
        assert {"rows": [{"call [REDACTED:PHONE]": 1}]} == _extras(output.file["list_key"])

    def test_span_attribute_and_event_attribute_keys_are_redacted(self, output: Output) -> None:
        span = output.span("bytes and keys")
        assert "lookup.[REDACTED:SSN]" in span.attributes
        assert [
            {"name": "lookup", "attributes": {"raw": "MRN: [REDACTED:MRN]", "call [REDACTED:PHONE]": 1}}
        ] == (span.events)


class TestBytesAttributes:
    def test_a_bytes_span_attribute_holding_phi_is_sent_redacted_as_text(self, output: Output) -> None:
        """Clean bytes stay bytes (``bytes_value`` on the wire)."""
        attributes = output.span("bytes and keys").attributes
        assert ("ssn [REDACTED:SSN]", b"image/png") == (attributes["payload"], attributes["clean.bytes"])

    def test_a_bytes_metric_attribute_holding_phi_is_sent_redacted(self, output: Output) -> None:
        assert [{"raw": "ssn [REDACTED:SSN]", "route": "/exams/{exam_id}"}] == [
            p["attributes"] for p in output.points("app.open")
        ][:1]


class TestUrlPaths:
    def test_unlabelled_and_labelled_identifiers_in_url_attributes_are_masked(self, output: Output) -> None:
        attributes = output.span("bytes and keys").attributes
        assert {
            "http.target": "/ssn/[REDACTED:SSN]",
            "url.path": "/orders/[REDACTED:ID]/items",
            "url.full": "https://api.example/mrn/[REDACTED:MRN]/chart?page=2",
            "http.url": "https://api.example/exams/3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",  # a UUID is kept
        } == {k: attributes[k] for k in ("http.target", "url.path", "url.full", "http.url")}

    def test_a_span_name_with_a_raw_path_is_masked(self, output: Output) -> None:
        assert "GET /ssn/[REDACTED:SSN]" in [s.name for s in output.receiver.spans]


class TestMetricAttributes:
    def test_data_point_attributes_are_redacted_by_key_by_value_and_by_path(self, output: Output) -> None:
        assert {
            "patient.ssn": "[REDACTED:SSN]",
            "url.path": "/orders/[REDACTED:ID]",
            "note": "MRN: [REDACTED:MRN]",
        } == output.points("app.lookups")[0]["attributes"]
        assert {"http.target": "/ssn/[REDACTED:SSN]"} == output.points("app.request.duration")[0][
            "attributes"
        ]


class TestResourceAttributes:
    def test_resource_attributes_are_redacted_but_the_service_keeps_its_name(self, output: Output) -> None:
        for resource in (output.span("bytes and keys").resource, output.points("app.lookups")[0]["resource"]):
            assert ("[REDACTED:SSN]", "side-doors", "prod") == (
                resource["team.owner"],
                resource["service.name"],
                resource["deployment.environment.name"],
            )


class TestNothingLeaves:
    def test_no_phi_string_is_in_any_request_or_in_the_file(self, output: Output, tmp_path: Path) -> None:
        leaks = [
            (path, phi)
            for path, payloads in output.payloads.items()
            for payload in payloads
            for phi in PHI
            if phi.encode() in payload
        ]
        in_file = [phi for phi in PHI if any(phi in json.dumps(r) for r in output.file.values())]
        assert ([], []) == (sorted(set(leaks)), in_file)
        assert {"/v1/logs", "/v1/traces", "/v1/metrics"} <= set(output.payloads)


def test_a_real_fastapi_service_sends_no_identifier_from_its_paths(start_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """uvicorn under ``opentelemetry-instrument``: the span name is the route template
    (``GET /orders/{order_id}``, the instrumentation's), and the raw path in ``http.target`` /
    ``url.path`` loses its identifier; a 404 for ``/ssn/123456789`` keeps none either."""
    with RecordingReceiver() as receiver:
        port = free_port()
        env = clean_env(
            OTEL_SERVICE_NAME="orders",
            LUMEN_ENV="prod",
            LUMEN_CONSOLE="false",
            LUMEN_LOG_DIR=str(tmp_path),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="300",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        argv = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "uvicorn"), "fastapi_app:app"]
        service = start_service(
            [*argv, "--host", "127.0.0.1", "--port", str(port)], env, REPO / "tests" / "apps", port
        )
        assert 200 == httpx.get(f"{service.url}/orders/99812347", timeout=10).status_code
        assert 404 == httpx.get(f"{service.url}/ssn/123456789", timeout=10).status_code
        assert receiver.wait_for(lambda r: sum(s.kind == 2 for s in r.spans) >= 2)
        service.stop()
        server = [s for s in receiver.spans if s.kind == 2]
        paths = {
            s.name: {k: v for k, v in s.attributes.items() if k in ("http.target", "url.path", "http.route")}
            for s in server
        }
        traces = b"".join(receiver.payloads.get("/v1/traces", []))
        metrics = b"".join(receiver.payloads.get("/v1/metrics", []))
        logs = b"".join(receiver.payloads.get("/v1/logs", []))
    access = [
        json.loads(line)["message"]
        for line in (tmp_path / "orders.log").read_text().splitlines()
        if json.loads(line)["logger"] == "uvicorn.access"
    ]
    assert [
        '127.0.0.1 - "GET /orders/[REDACTED:ID] HTTP/1.1" 200',
        '127.0.0.1 - "GET /ssn/[REDACTED:SSN] HTTP/1.1" 404',
    ] == [re.sub(r":\d+ - ", " - ", line, count=1) for line in access]  # the client's port varies
    assert (False, False) == (b"99812347" in logs, b"123456789" in logs)
    assert "GET /orders/{order_id}" in paths
    assert [] == [
        v for attrs in paths.values() for v in attrs.values() if "99812347" in v or "123456789" in v
    ]
    assert (False, False) == (b"99812347" in traces + metrics, b"123456789" in traces + metrics)


class TestResource:
    def test_the_resource_every_exporter_shares_is_redacted_at_set_up(
        self, fresh_logging: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One redacted resource for every provider: the gRPC exporters (which lumen-otel does not
        re-encode) send no raw ``OTEL_RESOURCE_ATTRIBUTES`` either."""
        import lumen_otel

        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team.owner=644-10-7412,site=north")
        handle = lumen_otel.configure_logging(
            service_name="resource-door", console=False, log_dir=str(tmp_path)
        )
        assert handle.resource is not None
        attributes = dict(handle.resource.attributes)
        assert ("[REDACTED:SSN]", "north", "resource-door") == (
            attributes["team.owner"],
            attributes["site"],
            attributes["service.name"],
        )
