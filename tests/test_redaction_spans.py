"""RedactingSpanExporter: spans leave the process redacted, ids and timings untouched."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from lumen_otel._redaction import Redactor
from lumen_otel._redaction.spans import RedactingSpanExporter


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, InMemorySpanExporter]]:
    """A provider exporting to two in-memory exporters: one raw, one through the redactor."""
    raw = InMemorySpanExporter()
    redacted = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=8, max_events=2))
    provider.add_span_processor(SimpleSpanProcessor(raw))
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(redacted, Redactor())))
    yield provider, raw, redacted
    provider.shutdown()


class TestRedactingSpanExporter:
    def test_name_attributes_events_links_and_status_are_redacted(self, exported) -> None:  # type: ignore[no-untyped-def]
        provider, _raw, redacted = exported
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("warm-up") as other:
            link_ctx = other.get_span_context()
        with tracer.start_as_current_span(
            "GET /api/patients/12345678",
            kind=SpanKind.SERVER,
            links=[Link(link_ctx, {"patient.mrn": "7519166", "reason": "follows"})],
        ) as span:
            span.set_attribute("http.url", "https://x.example/api?mrn=12345678&page=2")
            span.set_attribute("url.query", "patient=John%20Smith&ssn=123-45-6789")
            span.set_attribute("patient.ssn", "644-10-7412")
            span.set_attribute("http.status_code", 200)
            span.set_attribute("tags", ["ok", "call 555-123-4567"])
            span.add_event("exception", {"exception.message": "no record for patient Ann Lee, MRN 1234567"})
            span.set_status(Status(StatusCode.ERROR, "lookup failed for SSN 123-45-6789"))
        out = redacted.get_finished_spans()[-1]
        assert (
            "GET /api/patients/[REDACTED:MRN]",
            {
                "http.url": "https://x.example/api?mrn=[REDACTED:MRN]&page=2",
                "url.query": "patient=[REDACTED:NAME]&ssn=[REDACTED:SSN]",
                "patient.ssn": "[REDACTED:SSN]",
                "http.status_code": 200,
                "tags": ("ok", "call [REDACTED:PHONE]"),
            },
            [
                (
                    "exception",
                    {"exception.message": "no record for patient [REDACTED:NAME], MRN [REDACTED:MRN]"},
                )
            ],
            [{"patient.mrn": "[REDACTED:MRN]", "reason": "follows"}],
            (StatusCode.ERROR, "lookup failed for SSN [REDACTED:SSN]"),
        ) == (
            out.name,
            dict(out.attributes or {}),
            [(e.name, dict(e.attributes or {})) for e in out.events],
            [dict(link.attributes or {}) for link in out.links],
            (out.status.status_code, out.status.description),
        )

    def test_ids_times_kind_resource_and_scope_are_carried_over(self, exported) -> None:  # type: ignore[no-untyped-def]
        provider, raw, redacted = exported
        with provider.get_tracer("test", "1.0").start_as_current_span("MRN 1234567", kind=SpanKind.CLIENT):
            pass
        a, b = raw.get_finished_spans()[-1], redacted.get_finished_spans()[-1]
        assert (
            a.context,
            a.parent,
            a.start_time,
            a.end_time,
            a.kind,
            a.resource,
            a.instrumentation_scope,
        ) == (b.context, b.parent, b.start_time, b.end_time, b.kind, b.resource, b.instrumentation_scope)

    def test_the_original_span_is_not_modified(self, exported) -> None:  # type: ignore[no-untyped-def]
        provider, raw, _redacted = exported
        with provider.get_tracer("test").start_as_current_span("x") as span:
            span.set_attribute("patient.ssn", "644-10-7412")
        assert "644-10-7412" == raw.get_finished_spans()[-1].attributes["patient.ssn"]  # type: ignore[index]

    def test_dropped_counts_survive(self, exported) -> None:  # type: ignore[no-untyped-def]
        provider, raw, redacted = exported
        with provider.get_tracer("test").start_as_current_span("x") as span:
            for i in range(12):
                span.set_attribute(f"a{i}", i)
            for i in range(4):
                span.add_event(f"e{i}")
        a, b = raw.get_finished_spans()[-1], redacted.get_finished_spans()[-1]
        assert (4, 2) == (b.dropped_attributes, b.dropped_events) == (a.dropped_attributes, a.dropped_events)

    def test_shutdown_flush_and_result_are_passed_through(self) -> None:
        inner = InMemorySpanExporter()
        exporter = RedactingSpanExporter(inner)
        assert (SpanExportResult.SUCCESS, True) == (exporter.export([]), exporter.force_flush())
        exporter.shutdown()
        assert SpanExportResult.FAILURE == inner.export([])

    def test_the_default_redactor_is_used_when_none_is_given(self) -> None:
        inner = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(inner)))
        with provider.get_tracer("t").start_as_current_span("SSN 123-45-6789"):
            pass
        provider.shutdown()
        assert "SSN [REDACTED:SSN]" == inner.get_finished_spans()[-1].name


class TestCapturedHeaders:
    def test_credentials_are_masked_whole_and_encoded_phi_is_found(self, exported) -> None:  # type: ignore[no-untyped-def]
        """``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=.*`` captures every header as
        an attribute: the ``Authorization`` and ``Cookie`` values never leave, and a percent-encoded
        name in ``tracestate`` is found like a plain one."""
        provider, _raw, redacted = exported
        with provider.get_tracer("test").start_as_current_span("GET /x") as span:
            span.set_attribute("http.request.header.authorization", ["Bearer eyJhbGciOi.secret"])
            span.set_attribute("http.request.header.cookie", ["sessionid=abc123"])
            span.set_attribute("http.request.header.tracestate", ["x=patient%20Sarah%20Murphy"])
            span.set_attribute("http.request.header.accept", ["text/html%2Cjson"])
        (span,) = redacted.get_finished_spans()
        attributes = dict(span.attributes)
        (tracestate,) = attributes.pop("http.request.header.tracestate")
        assert {
            "http.request.header.authorization": ("[REDACTED:CREDENTIAL]",),
            "http.request.header.cookie": ("[REDACTED:CREDENTIAL]",),
            "http.request.header.accept": ("text/html%2Cjson",),
        } == attributes
        assert "[REDACTED:NAME]" in tracestate and "Sarah" not in tracestate and "Murphy" not in tracestate
