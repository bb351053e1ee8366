"""The X-Correlation-ID propagator: the ID <-> trace-context mapping on extract, the header on
inject, the response echo."""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import asgi_setter
from opentelemetry.instrumentation.propagators import (
    TraceResponsePropagator,
    get_global_response_propagator,
    set_global_response_propagator,
)
from opentelemetry.propagators.composite import CompositePropagator

from lumen_otel._correlation import context as _correlation
from lumen_otel._correlation.context import CORRELATION_ID_KEY, correlation_scope, get_correlation_id
from lumen_otel._correlation.propagator import (
    CorrelationIdPropagator,
    CorrelationIdResponsePropagator,
    install_propagators,
    install_response_propagator,
    outgoing_headers,
)
from lumen_otel._correlation.trace_ids import PENDING_TRACE_ID_KEY
from lumen_otel.exceptions import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "integration" / "apps"))
from corr_support import configure_django, sdk_tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
UUID_LOWER = "6f9619ff-8b86-4011-b42d-00c04fc964ff"


@pytest.fixture(autouse=True)
def _globals() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    saved_response = get_global_response_propagator()
    _correlation._warn.reset()
    yield
    propagate.set_global_textmap(saved)
    set_global_response_propagator(saved_response)


def _server_span(headers: dict[str, str]) -> trace.Span:
    """What the contrib instrumentations do: extract, attach, start the server span."""
    token = otel_context.attach(propagate.extract(headers))
    try:
        span = trace.get_tracer("test").start_span("GET /", kind=trace.SpanKind.SERVER)
        span.end()
        return span
    finally:
        otel_context.detach(token)


class TestExtractFollowsTheMapping:
    """One test per row of the correlation-ID <-> trace-context mapping, through the composite
    propagator bootstrap installs."""

    @pytest.fixture(autouse=True)
    def _installed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
        install_propagators("X-Correlation-ID")

    def test_traceparent_and_header_keep_both(self) -> None:
        with sdk_tracing(propagators=False):
            ctx = propagate.extract({"traceparent": TRACEPARENT, "X-Correlation-ID": "order-42"})
            assert ctx[CORRELATION_ID_KEY] == "order-42"
            span = _server_span({"traceparent": TRACEPARENT, "X-Correlation-ID": "order-42"})
            assert int(TRACE_ID, 16) == span.get_span_context().trace_id
            assert span.parent.span_id == 0x00F067AA0BA902B7

    def test_traceparent_without_header_gives_the_trace_id_as_uuid(self) -> None:
        ctx = propagate.extract({"traceparent": TRACEPARENT})
        assert str(uuid.UUID(TRACE_ID)) == ctx[CORRELATION_ID_KEY]
        assert ctx.get(PENDING_TRACE_ID_KEY) is None

    def test_traceparent_with_invalid_header_gives_the_trace_id_as_uuid(self) -> None:
        ctx = propagate.extract({"traceparent": TRACEPARENT, "x-correlation-id": "bad\x1bvalue"})
        assert str(uuid.UUID(TRACE_ID)) == ctx[CORRELATION_ID_KEY]

    def test_uuid_header_alone_becomes_the_server_span_trace_id(self) -> None:
        with sdk_tracing(propagators=False):
            span = _server_span({"X-Correlation-ID": "{" + UUID_LOWER.upper() + "}"})
            assert uuid.UUID(UUID_LOWER).int == span.get_span_context().trace_id
            assert span.parent is None  # a true root: no invented parent span

    def test_other_header_alone_gives_the_sha256_trace_id(self) -> None:
        with sdk_tracing(propagators=False):
            span = _server_span({"X-Correlation-ID": "legacy-7"})
            expected = int.from_bytes(hashlib.sha256(b"legacy-7").digest()[:16], "big")
            assert expected == span.get_span_context().trace_id
            assert span.parent is None

    def test_nothing_gives_a_uuid4_trace_id_that_is_the_correlation_id(self) -> None:
        with sdk_tracing(propagators=False):
            ctx = propagate.extract({})
            cid = ctx[CORRELATION_ID_KEY]
            assert uuid.UUID(cid).version == 4
            token = otel_context.attach(ctx)
            try:
                span = trace.get_tracer("test").start_span("GET /", kind=trace.SpanKind.SERVER)
                assert uuid.UUID(cid).int == span.get_span_context().trace_id
                span.end()
            finally:
                otel_context.detach(token)

    def test_legacy_hops_forwarding_only_the_header_share_one_trace(self) -> None:
        with sdk_tracing(propagators=False):
            first = _server_span({"X-Correlation-ID": "legacy-7"})
            second = _server_span({"X-Correlation-ID": "legacy-7"})
            assert first.get_span_context().trace_id == second.get_span_context().trace_id

    def test_invalid_traceparent_is_treated_as_missing(self) -> None:
        ctx = propagate.extract({"traceparent": "00-zz-00-01", "X-Correlation-ID": UUID_LOWER})
        assert ctx[CORRELATION_ID_KEY] == UUID_LOWER
        assert uuid.UUID(UUID_LOWER).int == ctx[PENDING_TRACE_ID_KEY]

    def test_the_extracted_id_is_what_get_correlation_id_returns(self) -> None:
        token = otel_context.attach(propagate.extract({"X-Correlation-ID": "order-42"}))
        try:
            assert get_correlation_id() == "order-42"
        finally:
            otel_context.detach(token)


class TestInject:
    def test_writes_the_current_correlation_id_next_to_traceparent(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
        with sdk_tracing(), correlation_scope("order-42"):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            trace_id = trace.get_current_span().get_span_context().trace_id
            assert {"traceparent", "X-Correlation-ID"} == set(headers)
            assert headers["X-Correlation-ID"] == "order-42"
            assert headers["traceparent"].startswith(f"00-{trace_id:032x}-")

    def test_span_without_id_sends_the_trace_id_as_uuid(self) -> None:
        with sdk_tracing(propagators=False), trace.get_tracer("t").start_as_current_span("job") as span:
            headers: dict[str, str] = {}
            CorrelationIdPropagator().inject(headers)
            assert {"X-Correlation-ID": str(uuid.UUID(int=span.get_span_context().trace_id))} == headers

    def test_header_set_explicitly_on_the_request_is_kept(self) -> None:
        import httpx

        headers = httpx.Headers({"x-correlation-id": "forwarded-job-7"})
        with correlation_scope("order-42"):
            CorrelationIdPropagator().inject(headers)
            outgoing_headers(headers)
        assert headers.get_list("X-Correlation-ID") == ["forwarded-job-7"]

    def test_nothing_current_sends_nothing(self) -> None:
        headers: dict[str, str] = {}
        CorrelationIdPropagator().inject(headers)
        assert headers == {}

    def test_outgoing_headers_works_without_the_global_propagator(self) -> None:
        propagate.set_global_textmap(CompositePropagator([]))
        with correlation_scope("order-42"):
            headers: dict[str, str] = {}
            outgoing_headers(headers)
            assert headers == {"X-Correlation-ID": "order-42"}


class TestHeaderName:
    def test_entry_point_construction_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LUMEN_CORRELATION_HEADER", "X-Request-ID")
        propagator = CorrelationIdPropagator()
        assert {"X-Request-ID"} == propagator.fields
        ctx = propagator.extract({"x-request-id": "abc"})
        assert ctx[CORRELATION_ID_KEY] == "abc"

    def test_default_is_x_correlation_id(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("LUMEN_CORRELATION_HEADER", raising=False)
        assert {"X-Correlation-ID"} == CorrelationIdPropagator().fields

    def test_bad_header_name_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LUMEN_CORRELATION_HEADER", "X Bad:Name")
        with pytest.raises(ConfigError, match="LUMEN_CORRELATION_HEADER='X Bad:Name'"):
            CorrelationIdPropagator()


class TestInstall:
    def test_installs_the_composite(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
        install_propagators("X-Correlation-ID")
        assert {
            "traceparent",
            "tracestate",
            "baggage",
            "X-Correlation-ID",
        } == propagate.get_global_textmap().fields

    def test_user_choice_of_otel_propagators_is_respected(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sentinel = CompositePropagator([])
        propagate.set_global_textmap(sentinel)
        monkeypatch.setenv("OTEL_PROPAGATORS", "b3")
        install_propagators("X-Correlation-ID")
        assert sentinel is propagate.get_global_textmap()

    def test_response_propagator_keeps_an_existing_one(self) -> None:
        set_global_response_propagator(TraceResponsePropagator())
        install_response_propagator("X-Correlation-ID")
        install_response_propagator("X-Correlation-ID")  # idempotent
        message = {"type": "http.response.start", "status": 200, "headers": []}
        with sdk_tracing(propagators=False), correlation_scope("order-42"):
            get_global_response_propagator().inject(message, setter=asgi_setter)
        headers = {bytes(k).decode(): bytes(v).decode() for k, v in message["headers"]}
        assert len(message["headers"]) == 3
        assert headers["x-correlation-id"] == "order-42"
        assert headers["access-control-expose-headers"] == "traceresponse, X-Correlation-ID"
        assert "traceresponse" in headers


class TestResponseEcho:
    def test_asgi_response_start_gets_the_header_once_and_exposed(self) -> None:
        message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"access-control-expose-headers", b"X-Other")],
        }
        with correlation_scope("order-42"):
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(message)
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(message)
        assert message["headers"] == [
            (b"x-correlation-id", b"order-42"),
            (b"access-control-expose-headers", b"X-Other, X-Correlation-ID"),
        ]

    def test_copy_already_on_the_response_is_replaced_by_this_requests_id(self) -> None:
        message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"X-Correlation-ID", b"copied-from-upstream"), (b"x-correlation-id", b"order-42")],
        }
        with correlation_scope("order-42"):
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(message)
        assert message["headers"] == [
            (b"x-correlation-id", b"order-42"),
            (b"access-control-expose-headers", b"X-Correlation-ID"),
        ]

    def test_body_messages_are_left_alone(self) -> None:
        message = {"type": "http.response.body", "body": b""}
        with correlation_scope("order-42"):
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(message)
        assert message == {"type": "http.response.body", "body": b""}

    def test_django_response_gets_the_header_once(self) -> None:
        configure_django()
        from django.http import HttpResponse

        response = HttpResponse("ok")
        with correlation_scope("order-42"):
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(response)
            CorrelationIdResponsePropagator("X-Correlation-ID").inject(response)
        assert response["X-Correlation-ID"] == "order-42"
        assert response["Access-Control-Expose-Headers"] == "X-Correlation-ID"


class TestEntryPoint:
    def test_otel_propagators_can_name_it(self, tmp_path: Path) -> None:
        """``OTEL_PROPAGATORS=tracecontext,lumen_correlation`` builds it from the entry point."""
        import os
        import subprocess

        code = "from opentelemetry import propagate; print(sorted(propagate.get_global_textmap().fields))"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LUMEN_"))}
        env.update(
            {"OTEL_PROPAGATORS": "tracecontext,lumen_correlation", "LUMEN_CORRELATION_HEADER": "X-Request-ID"}
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert out.stdout.strip() == "['X-Request-ID', 'traceparent', 'tracestate']"


class TestCorrelationIdOnSpans:
    """The span processor lets a tracing backend find a trace by the correlation ID."""

    def test_server_span_gets_the_id_even_when_traceparent_decides_the_trace(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from lumen_otel._correlation.context import CorrelationIdSpanProcessor
        from lumen_otel._correlation.trace_ids import UuidTraceIdGenerator

        exporter = InMemorySpanExporter()
        provider = TracerProvider(id_generator=UuidTraceIdGenerator())
        provider.add_span_processor(CorrelationIdSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        install_propagators("X-Correlation-ID")
        token = otel_context.attach(
            propagate.extract({"traceparent": TRACEPARENT, "X-Correlation-ID": "order-42"})
        )
        try:
            with tracer.start_as_current_span("GET /", kind=trace.SpanKind.SERVER):
                with tracer.start_as_current_span("db query"):
                    pass
        finally:
            otel_context.detach(token)
        spans = {s.name: s for s in exporter.get_finished_spans()}
        assert spans["GET /"].attributes["correlation_id"] == "order-42"
        assert "correlation_id" not in spans["db query"].attributes  # children inherit it by trace
        provider.shutdown()
