"""Strings found clean are remembered; PHI never is, and clean spans are not copied.

``extra`` values, span names and attributes repeat on every record (routes, methods, status
words), so the redactor remembers the ones it found clean. What a user must be able to rely on:
the memory changes no output and no count, a PHI value is redacted every single time, and the
memory stays bounded however many distinct values a service logs.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lumen_otel._redaction import Redactor
from lumen_otel._redaction.spans import RedactingSpanExporter


class TestRememberedCleanValues:
    def test_a_repeated_clean_value_comes_back_unchanged_every_time(self) -> None:
        redactor = Redactor()
        record = {"route": "/api/v1/exams/{id}", "method": "GET", "status_code": 200}
        first = redactor.redact_mapping(record)
        second = redactor.redact_mapping(record)
        assert (record, record) == (first, second)
        assert second["route"] is record["route"]

    def test_a_repeated_phi_value_is_redacted_and_counted_every_time(self) -> None:
        redactor = Redactor()
        counts: dict[str, int] = {}
        outputs = [redactor.redact_counted({"note": "call 555-123-4567"}, counts) for _ in range(3)]
        assert [{"note": "call [REDACTED:PHONE]"}] * 3 == outputs
        assert {"PHONE": 3} == counts

    def test_a_value_seen_clean_adds_nothing_to_the_counts(self) -> None:
        redactor = Redactor()
        redactor.redact({"route": "/api/v1/exams/{id}"})
        counts: dict[str, int] = {}
        assert {"route": "/api/v1/exams/{id}"} == redactor.redact_counted(
            {"route": "/api/v1/exams/{id}"}, counts
        )
        assert {} == counts

    def test_the_memory_is_bounded_however_many_distinct_values_are_logged(self) -> None:
        redactor = Redactor()
        for i in range(10_000):
            assert f"worker-{i}" == redactor.redact_value(f"worker-{i}")
        assert len(redactor._clean_cache) <= 4096

    def test_long_values_are_not_remembered(self) -> None:
        redactor = Redactor()
        long_clean = "ok " * 200
        assert long_clean == redactor.redact_value(long_clean)
        assert long_clean not in redactor._clean_cache


class TestCleanSpansAreNotCopied:
    def test_a_span_with_nothing_to_redact_is_exported_as_it_is_and_one_with_phi_as_a_copy(self) -> None:
        raw = InMemorySpanExporter()
        redacted = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(raw))
        provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(redacted, Redactor())))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("GET /items/{item_id}") as span:
            span.set_attribute("http.route", "/items/{item_id}")
            span.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("GET /items/{item_id}") as span:
            span.set_attribute("url.query", "mrn=12345678")
        provider.shutdown()
        clean_raw, phi_raw = raw.get_finished_spans()
        clean_out, phi_out = redacted.get_finished_spans()
        assert clean_out is clean_raw
        assert phi_out is not phi_raw
        assert {"url.query": "mrn=[REDACTED:MRN]"} == dict(phi_out.attributes or {})
        assert {"url.query": "mrn=12345678"} == dict(phi_raw.attributes or {})
