"""The fallbacks of ``lumen_otel._compat``: with an upstream private name gone, telemetry still
flows, through upstream's public path."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import ProxyTracerProvider

from lumen_otel import _compat
from lumen_otel._otlp.logs import encode_logs_request
from lumen_otel._otlp.wire import export_encoded
from tests.test_otlp_bridge import _export_through

#: run in a fresh interpreter: upstream's exporters are imported first (they keep the names they
#: bound), then the private encoders lumen-otel borrows are removed, then lumen-otel is imported
WITHOUT_PRIVATE_ENCODERS = """
import json, logging, sys
import opentelemetry.exporter.otlp.proto.http._log_exporter
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.exporter.otlp.proto.common._internal as internal
del internal._encode_resource

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from lumen_otel import _compat
from lumen_otel._otlp.logs import WireLogExporter
from lumen_otel._otlp.spans import WireSpanExporter
from lumen_otel.testing import OTLPReceiver

with OTLPReceiver() as receiver:
    resource = Resource.create({"service.name": "compat-fallback"})
    batch = [
        ReadableLogRecord(LogRecord(timestamp=1, body=f"line {i}", attributes={"i": i}), resource=resource)
        for i in range(3)
    ]
    logs = WireLogExporter(endpoint=f"{receiver.endpoint}/v1/logs").export(batch).name
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(
        SimpleSpanProcessor(WireSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    )
    with provider.get_tracer("t").start_as_current_span("GET /a"):
        pass
    provider.shutdown()
    print(json.dumps({
        "wire_encoders": _compat.WIRE_ENCODERS,
        "logs": logs,
        "bodies": [log.body for log in receiver.logs],
        "spans": [span.name for span in receiver.spans],
    }))
"""


class TestWithoutThePrivateEncoders:
    def test_logs_and_spans_still_reach_the_collector_through_upstreams_encoders(self) -> None:
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_PRIVATE_ENCODERS],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert 0 == done.returncode, done.stderr
        assert {
            "wire_encoders": False,
            "logs": "SUCCESS",
            "bodies": ["line 0", "line 1", "line 2"],
            "spans": ["GET /a"],
        } == json.loads(done.stdout.splitlines()[-1])


class TestExportStepFallback:
    def test_an_exporter_without_the_borrowed_parts_uses_its_own_export(self) -> None:
        calls: list[int] = []

        def upstream_export(items: Any) -> str:
            calls.append(len(items))
            return "upstream"

        outcome = export_encoded(
            object(), [1, 2], lambda items: b"", ("ok", "failed"), "logs", _logger(), upstream_export
        )
        assert ("upstream", [2]) == (outcome, calls)

    def test_post_serialized_says_when_it_cannot_send(self) -> None:
        assert _compat.post_serialized(object(), 1, lambda: b"", "logs", _logger()) is None


class TestRecordAndAttributeFallbacks:
    def test_records_built_by_the_public_constructors_encode_to_the_same_bytes(self, monkeypatch) -> None:
        from opentelemetry.sdk._logs import LogRecordLimits
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import TraceFlags

        def build() -> Any:
            fields = {
                "timestamp": 1_795_000_000_123_456_789,
                "observed_timestamp": 1_795_000_000_223_456_789,
                "context": None,
                "trace_id": 0x4BF92F3577B34DA6A3CE929D0E0E4736,
                "span_id": 0x00F067AA0BA902B7,
                "trace_flags": TraceFlags(1),
                "severity_text": "INFO",
                "severity_number": _compat.SeverityNumber.INFO,
                "body": "a line",
                "attributes": {"route": "/a", "status_code": 200},
                "event_name": None,
                "exception": None,
            }
            resource = Resource.create({"service.name": "compat"})
            return _compat.readable_log_record(
                fields, resource, InstrumentationScope("app"), LogRecordLimits()
            )

        direct = build()
        monkeypatch.setattr(_compat, "DIRECT_RECORDS", False)
        public = build()
        assert type(direct) is type(public)
        assert encode_logs_request([direct]) == encode_logs_request([public])
        assert encode_logs([public]).SerializeToString() == encode_logs_request([public])

    def test_without_the_processor_list_every_record_goes_through_logger_emit(self, monkeypatch) -> None:
        from lumen_otel._logging import bridge

        expected = [r.log_record.body for r in _export_through(direct=True)]
        monkeypatch.setattr(bridge, "log_record_processors", lambda provider: None)
        records = _export_through(direct=False)
        assert expected == [r.log_record.body for r in records]

    def test_objects_without_the_private_fields(self) -> None:
        class Plain:
            events = ("e",)
            links = ()
            attributes = {"a": 1}

        assert (("e",), (), {"a": 1}) == _compat.span_fields(Plain())
        assert [("a", 1)] == list(_compat.attribute_items({"a": 1}))
        assert _compat.exporter_is_shut_down(object()) is False
        _compat.count_emitted_log(object())  # no self-metric to count: nothing happens
        assert _compat.log_record_processors(object()) is None

    def test_clean_attributes_stay_put_where_the_record_has_no_inner_dict(self) -> None:
        class Record:
            attributes: Any = {"kept": True}

        class Writable:
            log_record = Record()

        _compat.set_clean_attributes(Writable(), {"other": 1})
        assert {"kept": True} == Writable.log_record.attributes


class TestProxyProviders:
    def test_upstreams_placeholder_is_told_apart_from_a_real_provider(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider

        assert _compat.is_proxy_provider(ProxyTracerProvider())
        assert not _compat.is_proxy_provider(TracerProvider(shutdown_on_exit=False))
        assert not _compat.is_proxy_provider(MeterProvider(shutdown_on_exit=False))


def _logger() -> Any:
    import logging

    return logging.getLogger("tests.compat")


class TestOnlyTheCompatModuleNamesUpstreamInternals:
    """Private OpenTelemetry names appear in two modules only, so a release that renames one
    breaks one place."""

    def test_no_other_module_imports_a_private_opentelemetry_name(self) -> None:
        import ast
        from pathlib import Path

        package = Path(_compat.__file__).parent
        allowed = {"_compat.py", "_server_patches.py"}
        offenders = []
        for path in sorted(package.rglob("*.py")):
            if path.name in allowed and path.parent == package:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
                    names = [node.module or "", *(alias.name for alias in node.names)]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names if a.name.startswith("opentelemetry")]
                for name in names:
                    if any(part.startswith("_") for part in name.split(".")):
                        offenders.append(f"{path.relative_to(package)}: {name}")
        assert [] == offenders
