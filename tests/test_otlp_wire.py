"""lumen-otel's OTLP log encoder writes exactly the bytes the upstream encoder writes.

``encode_logs_request`` replaces ``encode_logs(batch).SerializeToString()`` in the OTLP/HTTP
log exporter (about 3x cheaper). Every test compares against the real upstream encoder, on
records from the bridge, on hand-made SDK records with every value shape, and on generated
ones; the last test sends through the real exporter to a loopback receiver.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from lumen_otel._otlp.logs import WireLogExporter, encode_logs_request
from lumen_otel.testing import OTLPReceiver
from tests.test_otlp_bridge import _export_through

RESOURCE = Resource.create({"service.name": "wire-test", "deployment.environment.name": "test"})


def _readable(
    body: Any = "a line",
    attributes: dict[str, Any] | None = None,
    *,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = None,
    **fields: Any,
) -> ReadableLogRecord:
    record = ApiLogRecord(
        timestamp=fields.get("timestamp", 1_795_000_000_123_456_789),
        observed_timestamp=fields.get("observed_timestamp", 1_795_000_000_223_456_789),
        severity_text=fields.get("severity_text", "INFO"),
        severity_number=fields.get("severity_number", SeverityNumber.INFO),
        body=body,
        attributes=attributes,
        event_name=fields.get("event_name"),
    )
    record.trace_id = fields.get("trace_id", 0)
    record.span_id = fields.get("span_id", 0)
    record.trace_flags = TraceFlags(fields.get("trace_flags", 0))
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)


def scalar_attributes(max_size: int) -> st.SearchStrategy[dict[str, Any]]:
    """Attribute dicts of the value types the encoders write themselves, int64 bounds included."""
    return st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.one_of(
            st.text(max_size=60),
            st.booleans(),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(allow_nan=False),
        ),
        max_size=max_size,
    )


def assert_same_bytes(batch: list[ReadableLogRecord]) -> None:
    assert encode_logs_request(batch) == encode_logs(batch).SerializeToString()


class TestSameBytesAsUpstream:
    def test_records_from_the_bridge_both_paths(self):
        assert_same_bytes(_export_through(direct=True))
        assert_same_bytes(_export_through(direct=False))

    def test_every_attribute_shape(self):
        assert_same_bytes(
            [
                _readable(
                    "shapes",
                    {
                        "s": "text",
                        "empty": "",
                        "unicode": "Zoë 東京 \u2028",
                        "t": True,
                        "f": False,
                        "zero": 0,
                        "neg": -5,
                        "min": -(2**63),
                        "max": 2**63 - 1,
                        "pi": 3.14159,
                        "negzero": -0.0,
                        "inf": math.inf,
                        "list": ["a", 1, 2.5, True],
                        "map": {"k": "v", "n": 1},
                        "raw": b"\x00\xff",
                    },
                )
            ]
        )

    def test_bodies_severities_ids_and_event_names(self):
        scope = InstrumentationScope("app.orders", "1.2.3", "https://example/schema", {"team": "billing"})
        assert_same_bytes(
            [
                _readable("", None),
                _readable(None, {"a": 1}),
                _readable(42, {}),
                _readable({"structured": ["body"]}),
                _readable("no severity", severity_number=None, severity_text=None),
                _readable("no time", timestamp=None, observed_timestamp=0),
                _readable(
                    "in a trace",
                    trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
                    span_id=0x00F067AA0BA902B7,
                    trace_flags=1,
                    scope=scope,
                ),
                _readable("event", event_name="order.placed", scope=scope),
                _readable("long " * 400, {"long": "x" * 70_000}),
            ]
        )

    def test_several_resources_and_scopes_group_as_upstream(self):
        other = Resource.create({"service.name": "other"}, schema_url="https://example/schema/1")
        a, b = InstrumentationScope("a"), InstrumentationScope("b", "2")
        assert_same_bytes(
            [
                _readable("1", scope=a),
                _readable("2", scope=b, resource=other),
                _readable("3", scope=a),
                _readable("4", scope=None),
                _readable("5", scope=b),
                _readable("6", scope=a, resource=other),
            ]
        )

    def test_values_upstream_cannot_encode_are_handled_as_upstream_does(self, caplog):
        # an int beyond 64 bits: upstream logs and drops that one attribute; so must we
        with caplog.at_level(logging.ERROR):
            assert_same_bytes([_readable("too big", {"big": 2**70, "ok": 1})])

    @settings(max_examples=150, deadline=None)
    @given(
        body=st.text(max_size=200),
        attributes=scalar_attributes(12),
        trace_id=st.integers(min_value=0, max_value=2**128 - 1),
        span_id=st.integers(min_value=0, max_value=2**64 - 1),
        flags=st.integers(min_value=0, max_value=255),
    )
    def test_generated_records(self, body, attributes, trace_id, span_id, flags):
        record = _readable(body, attributes, trace_id=trace_id, span_id=span_id, trace_flags=flags)
        assert_same_bytes([record, record])  # the second one comes from the entry cache


class TestTheFastPathIsTaken:
    def test_bridge_records_and_scalar_attributes_never_reach_the_upstream_encoder(self, monkeypatch):
        from lumen_otel._otlp import logs as otlp_wire

        def upstream(_: Any) -> Any:
            raise AssertionError("fell back to the upstream encoder")

        batch = [
            *_export_through(direct=True),
            _readable("scalars", {"s": "x", "b": False, "i": -1, "f": 0.5}),
        ]
        expected = encode_logs(batch).SerializeToString()
        monkeypatch.setattr(otlp_wire, "encode_upstream_log", upstream)
        assert otlp_wire.encode_logs_request(batch) == expected


class TestThroughTheExporter:
    def test_a_receiver_decodes_what_the_wire_exporter_sent(self):
        with OTLPReceiver() as receiver:
            exporter = WireLogExporter(endpoint=f"{receiver.endpoint}/v1/logs")
            batch = [
                _readable("first", {"route": "/a", "status_code": 200}),
                _readable("second", {"ok": True}, trace_id=0xAB, span_id=0xCD, trace_flags=1),
            ]
            assert exporter.export(batch).name == "SUCCESS"
            exporter.shutdown()
            got = [(log.body, log.attributes, log.trace_id) for log in receiver.logs]
        assert got == [
            ("first", {"route": "/a", "status_code": 200}, None),
            ("second", {"ok": True}, f"{0xAB:032x}"),
        ]

    def test_spans_reach_a_receiver_through_the_wire_span_exporter(self):
        from lumen_otel._otlp.spans import WireSpanExporter

        def build(tracer: Any, other: Any) -> None:
            with tracer.start_as_current_span("GET /a", attributes={"http.route": "/a"}):
                pass

        spans = TestSpansSameBytesAsUpstream._spans(build)
        with OTLPReceiver() as receiver:
            exporter = WireSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
            assert exporter.export(spans).name == "SUCCESS"
            exporter.shutdown()
            got = [(span.name, span.trace_id) for span in receiver.spans]
        assert got == [("GET /a", format(spans[0].context.trace_id, "032x"))]

    def test_a_batch_over_the_request_size_limit_is_refused_before_sending(self, caplog):
        with OTLPReceiver() as receiver, caplog.at_level(logging.WARNING):
            exporter = WireLogExporter(endpoint=f"{receiver.endpoint}/v1/logs", max_request_size=64)
            assert exporter.export([_readable("x" * 200)]).name == "FAILURE"
            exporter.shutdown()
            assert receiver.logs == []
        assert "exceeds max_request_size 64 bytes" in caplog.text

    def test_a_refused_batch_is_a_failure(self):
        with OTLPReceiver() as receiver:
            endpoint = f"{receiver.endpoint}/v1/logs"
        exporter = WireLogExporter(endpoint=endpoint, timeout=1)  # the receiver is gone
        assert exporter.export([_readable("lost")]).name == "FAILURE"
        exporter.shutdown()


class TestSpansSameBytesAsUpstream:
    """``encode_spans_request`` against the upstream ``encode_spans``, on spans from the real SDK."""

    @staticmethod
    def _spans(build: Any) -> list[Any]:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        build(provider.get_tracer("wire.test", "1.0"), provider.get_tracer("other.scope"))
        provider.shutdown()
        return list(exporter.get_finished_spans())

    @staticmethod
    def assert_same(spans: list[Any]) -> None:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        from lumen_otel._otlp.spans import encode_spans_request

        assert encode_spans_request(spans) == encode_spans(spans).SerializePartialToString()

    def test_server_client_and_internal_spans_every_status_and_parent_kind(self):
        from opentelemetry import trace as trace_api
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceState,
        )

        def build(tracer: Any, other: Any) -> None:
            remote = SpanContext(
                0x4BF92F3577B34DA6A3CE929D0E0E4736,
                0x00F067AA0BA902B7,
                is_remote=True,
                trace_flags=TraceFlags(1),
                trace_state=TraceState([("vendor", "opaque"), ("lumen", "cid")]),
            )
            parent = trace_api.set_span_in_context(NonRecordingSpan(remote))
            with tracer.start_as_current_span(
                "GET /items/{id}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": "GET",
                    "http.response.status_code": 200,
                    "ok": True,
                    "r": 0.5,
                },
            ) as server:
                server.set_status(Status(StatusCode.ERROR, "boom: 500"))
                with other.start_as_current_span(
                    "GET", kind=SpanKind.CLIENT, attributes={"url.full": "http://x"}
                ):
                    pass
                with tracer.start_as_current_span("", attributes={}) as internal:
                    internal.set_status(Status(StatusCode.OK))
            with tracer.start_as_current_span("root without parent", kind=SpanKind.PRODUCER):
                pass
            with tracer.start_as_current_span("consumer", kind=SpanKind.CONSUMER, attributes={"n": -7}):
                pass

        self.assert_same(self._spans(build))

    def test_spans_the_fast_path_leaves_to_upstream(self):
        def build(tracer: Any, other: Any) -> None:
            with tracer.start_as_current_span("with event") as span:
                span.add_event("retry", {"attempt": 2})
            with tracer.start_as_current_span(
                "with link", links=[trace.Link(span.get_span_context(), {"k": "v"})]
            ):
                pass
            with tracer.start_as_current_span(
                "tuple attribute", attributes={"http.request.header.accept": ("a", "b")}
            ):
                pass
            with tracer.start_as_current_span("big int", attributes={"big": 2**63 - 1, "small": -(2**63)}):
                pass

        from opentelemetry import trace

        self.assert_same(self._spans(build))

    @settings(max_examples=80, deadline=None)
    @given(
        name=st.text(max_size=40),
        attributes=scalar_attributes(10),
    )
    def test_generated_spans(self, name, attributes):
        def build(tracer: Any, other: Any) -> None:
            with tracer.start_as_current_span(name, attributes=attributes), other.start_as_current_span(name):
                pass

        self.assert_same(self._spans(build))

    def test_common_spans_never_reach_the_upstream_encoder(self, monkeypatch):
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        from lumen_otel._otlp import spans as _spans_wire

        def build(tracer: Any, other: Any) -> None:
            with tracer.start_as_current_span("GET /a", attributes={"http.route": "/a", "status": 200}):
                pass

        spans = self._spans(build)
        expected = encode_spans(spans).SerializePartialToString()

        def upstream(_: Any) -> Any:
            raise AssertionError("fell back to the upstream encoder")

        monkeypatch.setattr(_spans_wire, "encode_upstream_span", upstream)
        assert _spans_wire.encode_spans_request(spans) == expected
