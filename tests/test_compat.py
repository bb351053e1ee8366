"""The fallbacks of ``lumen_otel._compat``: with an upstream private name gone, telemetry still
flows, through upstream's public path."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
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


class _Operation:
    error: Any = None
    error_attrs: Any = None


class _Metrics:
    def __init__(self) -> None:
        self.operations: list[_Operation] = []

    @contextlib.contextmanager
    def export_operation(self, count: int) -> Iterator[_Operation]:
        operation = _Operation()
        self.operations.append(operation)
        yield operation


class _Exported:
    def __init__(self, success: bool, status_code: int | None) -> None:
        self.success, self.status_code, self.error = success, status_code, None


class _ClientWithoutSubmit:
    """An HTTP client with upstream's ``export`` (its retries inside) but not ``_submit``."""

    def __init__(self, answer: _Exported) -> None:
        self.answer = answer
        self.sent: list[bytes] = []

    def export(self, data: bytes) -> _Exported:
        self.sent.append(data)
        return self.answer


class _Exporter:
    def __init__(self, client: Any) -> None:
        self._metrics = _Metrics()
        self._client = client


class TestOneAttemptFallback:
    """Without ``_client._submit`` (or ``_compress``/``_timeout``) the attempt is ``_client.export``,
    upstream's retries included, and its status still classifies the outcome."""

    @pytest.mark.parametrize(
        ("answer", "expected"),
        [
            (_Exported(True, 200), _compat.ExportOutcome("ok")),
            (_Exported(False, 400), _compat.ExportOutcome("permanent", "rejected", 400)),
            (_Exported(False, 413), _compat.ExportOutcome("permanent", "too_large", 413)),
            (_Exported(False, 503), _compat.ExportOutcome("retry", "busy", 503)),
            (_Exported(False, None), _compat.ExportOutcome("retry", "unreachable")),
        ],
    )
    def test_client_export_is_used_and_classified(self, answer: _Exported, expected: Any) -> None:
        client = _ClientWithoutSubmit(answer)
        outcome = _compat.post_serialized(_Exporter(client), 1, lambda: b"payload", "logs", _logger())
        assert (expected, [b"payload"]) == (outcome, client.sent)

    def test_an_encode_error_is_permanent_and_nothing_is_sent(self) -> None:
        client = _ClientWithoutSubmit(_Exported(True, 200))

        def encode() -> bytes:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

        outcome = _compat.post_serialized(_Exporter(client), 1, encode, "logs", _logger())
        assert (_compat.ExportOutcome("permanent", "unencodable"), []) == (outcome, client.sent)

    def test_a_transport_without_is_connection_error_still_classifies(self) -> None:
        class Response:
            status_code = None
            error = ConnectionRefusedError()

        class Client:
            _timeout = 1.0

            def _compress(self, data: bytes) -> bytes:
                return data

            def _submit(self, data: bytes, timeout: float) -> Response:
                return Response()

        outcome = _compat.post_serialized(_Exporter(Client()), 1, lambda: b"x", "logs", _logger())
        assert _compat.ExportOutcome("retry", "error") == outcome  # no answer: retried


class TestClassification:
    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
    def test_retryable_statuses_carry_retry_after_capped(self, status: int) -> None:
        outcome = _compat.classify_http(status, None, {"retry-after": "3600"}, False)
        assert ("retry", _compat.MAX_RETRY_AFTER) == (outcome.kind, outcome.retry_after)

    @pytest.mark.parametrize("status", [401, 403, 404, 407])
    def test_a_misconfigured_endpoint_or_credentials_is_retried(self, status: int) -> None:
        outcome = _compat.classify_http(status, None, {}, False)
        assert ("retry", "misconfigured", status) == (outcome.kind, outcome.reason, outcome.status)

    @pytest.mark.parametrize("status", [400, 405, 422, 501])
    def test_other_refusals_are_permanent(self, status: int) -> None:
        outcome = _compat.classify_http(status, None, {}, False)
        assert ("permanent", "rejected", status) == (outcome.kind, outcome.reason, outcome.status)

    def test_retry_after_as_a_date_and_nonsense(self) -> None:
        assert _compat.classify_http(429, None, {"retry-after": "soon"}, False).retry_after is None
        in_the_past = _compat.classify_http(
            503, None, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, False
        )
        assert 0.0 == in_the_past.retry_after

    def test_timeouts_are_told_from_refused_connections(self) -> None:
        class ReadTimeout(Exception):
            pass

        assert "timeout" == _compat.classify_http(None, ReadTimeout(), None, True).reason
        assert "unreachable" == _compat.classify_http(None, ConnectionError(), None, True).reason


class TestShutdownFallbacks:
    """Without the SDK's private processor parts, shutdown still stops every provider."""

    def test_a_provider_without_the_private_lists_has_no_processors_to_split(self) -> None:
        assert [] == _compat.shutdown_processors(object())

    def test_a_processor_without_begin_shutdown_or_worker_is_shut_down_plainly(self) -> None:
        import time

        calls: list[Any] = []

        class Plain:
            def shutdown(self, timeout_millis: int | None = None) -> None:
                calls.append(timeout_millis)

        plain = Plain()
        _compat.signal_processor_stop(plain, time.monotonic() + 2)
        _compat.finish_processor(plain, time.monotonic() + 2)
        assert 1 == len(calls) and 0 < calls[0] <= 2000

    def test_the_real_batch_span_processor_is_reached_and_stops(self) -> None:
        import time

        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider(shutdown_on_exit=False)
        exporter = InMemorySpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("GET /"):
            pass
        (batch,) = _compat.shutdown_processors(provider)
        deadline = time.monotonic() + 5
        _compat.signal_processor_stop(batch, deadline)
        _compat.finish_processor(batch, deadline)
        assert ["GET /"] == [s.name for s in exporter.get_finished_spans()]

    def test_exporter_sessions_of_a_handle_without_providers(self) -> None:
        class Handle:
            logger_provider = tracer_provider = meter_provider = None

        assert [] == _compat.exporter_sessions(Handle())


class TestRetryWindowFallback:
    def test_without_the_clients_timeout_and_shutdown_event(self) -> None:
        window, wait = _compat.retry_window(object())
        assert (10.0, False) == (window, wait(0.0))

    def test_with_them(self) -> None:
        import threading

        class Client:
            _timeout = 3.0
            _shutdown_event = threading.Event()

        exporter = _Exporter(Client())
        window, wait = _compat.retry_window(exporter)
        assert (3.0, False) == (window, wait(0.0))
        Client._shutdown_event.set()
        assert wait(5.0) is True  # returns at once: the exporter is shutting down
