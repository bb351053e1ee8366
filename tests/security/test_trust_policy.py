"""An edge service need not trust the IDs its clients send.

Before: a client could send another request's ``X-Correlation-ID`` or ``traceparent`` and have its
own lines appear under ``lumen-otel trace <victim-id>``; PHI a client put in ``tracestate`` was
exported on the service's spans and forwarded on its outgoing calls. Now
``LUMEN_TRUST_INCOMING_IDS=false`` gives every request its own correlation ID and a new trace (a
root server span) and records the client's values as ``lumen.incoming.*`` span attributes, on
the propagator path (the launcher and the instrumentations) and on the middleware-only path; and
``tracestate`` entries the redactor flags are neither exported nor forwarded, whatever the policy.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from lumen_otel._config.settings import load_settings
from lumen_otel._correlation import context as _correlation
from lumen_otel._correlation.context import (
    CORRELATION_ID_KEY,
    INCOMING_KEY,
    CorrelationIdSpanProcessor,
    get_correlation_id,
)
from lumen_otel._correlation.propagator import (
    CorrelationIdPropagator,
    httpx_event_hooks,
    install_propagators,
)
from lumen_otel._correlation.trace_ids import PENDING_TRACE_ID_KEY, UuidTraceIdGenerator
from lumen_otel._redaction import Redactor
from lumen_otel._redaction.spans import RedactingSpanExporter, redact_span, redact_trace_state
from lumen_otel.exceptions import ConfigError
from lumen_otel.testing import OTLPReceiver
from tests.conftest import VENV_BIN, clean_env, free_port

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "apps"))
from corr_support import UvicornThread, WSGIThread, configure_django, sdk_tracing

VICTIM_CID = "victim-order-42"
VICTIM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
VICTIM_TRACEPARENT = f"00-{VICTIM_TRACE}-00f067aa0ba902b7-01"
SSN = "123-45-6789"
PHI_TRACESTATE = f"rojo=00f067aa0ba902b7,vendor=ssn:{SSN},acme=patient Sarah Murphy,congo=t61rcWkgMzE"
CLEAN_TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
SERVER = 2  # OTLP SPAN_KIND_SERVER


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LUMEN_TRUST_INCOMING_IDS", raising=False)
    _correlation._warn.reset()
    saved = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(saved)


class Echo:
    """A loopback HTTP server that records the headers of every request it gets."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                echo.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Echo:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawReceiver(OTLPReceiver):
    """The OTLP receiver, also keeping each span's tracestate and the raw payloads."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []
        self.trace_states: dict[str, str] = {}

    def _accept(self, path: str, payload: bytes) -> None:
        if path.endswith("/v1/traces"):
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

            with self._lock:
                self.raw.append(payload)
                for rs in ExportTraceServiceRequest.FromString(payload).resource_spans:
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            self.trace_states[sp.span_id.hex()] = sp.trace_state
        super()._accept(path, payload)


# ---------------------------------------------------------------- the real service

APP = textwrap.dedent(
    """
    import logging
    import os

    import httpx
    from fastapi import FastAPI
    from opentelemetry import trace

    import lumen_otel

    app = FastAPI()
    if os.environ.get("APP_MIDDLEWARE") == "1":
        from lumen_otel.fastapi import CorrelationIdMiddleware

        app.add_middleware(CorrelationIdMiddleware)
    log = logging.getLogger("app.edge")


    @app.get("/health")
    async def health():
        return {"status": "ok"}


    @app.get("/work")
    async def work(m: str):
        log.info("work %s done", m)
        async with httpx.AsyncClient(timeout=20) as client:
            await client.get(os.environ["ECHO_URL"], params={"m": m})
        span_context = trace.get_current_span().get_span_context()
        return {"cid": lumen_otel.get_correlation_id(), "trace_id": format(span_context.trace_id, "032x")}
    """
)


class EdgeService:
    def __init__(self, url: str, log_dir: Path, receiver: RawReceiver, echo: Echo) -> None:
        self.url, self.log_dir, self.receiver, self.echo = url, log_dir, receiver, echo

    def lines(self, marker: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 15
        while True:
            path = self.log_dir / "edge.log"
            text = path.read_text() if path.exists() else ""
            found = [json.loads(x) for x in text.splitlines() if f"work {marker} done" in x]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def server_span(self, marker: str) -> Any:
        def find(r: OTLPReceiver) -> Any:
            return next(
                (
                    s
                    for s in r.spans
                    if s.kind == SERVER
                    and s.name == "GET /work"
                    and marker in str(s.attributes.get("http.url") or s.attributes.get("url.query") or "")
                ),
                None,
            )

        assert self.receiver.wait_for(lambda r: find(r) is not None, 15)
        return find(self.receiver)


@pytest.fixture(params=["propagator", "propagator+middleware"])
def edge(request: pytest.FixtureRequest, start_service, tmp_path: Path) -> Iterator[EdgeService]:
    """The edge service under ``opentelemetry-instrument`` with LUMEN_TRUST_INCOMING_IDS=false."""
    yield from _edge(request.param, start_service, tmp_path, {"LUMEN_TRUST_INCOMING_IDS": "false"})


@pytest.fixture
def trusting(start_service, tmp_path: Path) -> Iterator[EdgeService]:
    """The same service with the default policy (trust)."""
    yield from _edge("propagator", start_service, tmp_path, {})


def _edge(kind: str, start_service, tmp_path: Path, extra: dict[str, str]) -> Iterator[EdgeService]:
    (tmp_path / "edge_app.py").write_text(APP)
    log_dir = tmp_path / "logs"
    port = free_port()
    with RawReceiver() as receiver, Echo() as echo:
        env = clean_env(
            OTEL_SERVICE_NAME="edge",
            LUMEN_ENV="prod",
            LUMEN_LOG_DIR=str(log_dir),
            LUMEN_CONSOLE="false",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="60000",
            PYTHONPATH=str(tmp_path),
            ECHO_URL=echo.url,
            APP_MIDDLEWARE="1" if "middleware" in kind else "0",
            **extra,
        )
        argv = [
            str(VENV_BIN / "opentelemetry-instrument"),
            str(VENV_BIN / "uvicorn"),
            "edge_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        service = start_service(argv, env, tmp_path, port)
        yield EdgeService(f"http://127.0.0.1:{port}", log_dir, receiver, echo)
        service.stop()


@pytest.mark.integration
class TestEdgeServiceDistrustsClients:
    def test_a_victims_ids_sent_by_a_client_are_recorded_not_used(self, edge: EdgeService):
        """The attack: a client sends the victim's correlation ID and traceparent. Its log line,
        server span, response and outgoing call carry the service's own new ID and trace; the
        client's values are on the server span as ``lumen.incoming.*``."""
        response = httpx.get(
            f"{edge.url}/work",
            params={"m": "attack1"},
            headers={"X-Correlation-ID": VICTIM_CID, "traceparent": VICTIM_TRACEPARENT, "baggage": "k=v"},
            timeout=20,
        )
        assert response.status_code == 200
        body = response.json()
        cid = response.headers["x-correlation-id"]
        assert cid == body["cid"]
        assert cid != VICTIM_CID
        assert body["trace_id"] != VICTIM_TRACE
        assert uuid.UUID(cid).hex == body["trace_id"]  # a new ID: the new trace id as a UUID

        (line,) = edge.lines("attack1")
        assert line["correlation_id"] == cid
        assert line["trace_id"] == body["trace_id"]

        span = edge.server_span("attack1")
        assert span.trace_id == body["trace_id"]
        assert span.parent_span_id is None  # a new root: the client's traceparent is not its parent
        assert span.attributes["correlation_id"] == cid
        assert span.attributes["lumen.incoming.correlation_id"] == VICTIM_CID
        assert span.attributes["lumen.incoming.traceparent"] == VICTIM_TRACEPARENT

        (sent,) = edge.echo.headers
        assert sent["x-correlation-id"] == cid
        assert sent["traceparent"].split("-")[1] == body["trace_id"]
        assert "baggage" not in sent

    def test_a_hostile_incoming_id_is_recorded_escaped_and_redacted(self, edge: EdgeService):
        response = httpx.get(
            f"{edge.url}/work",
            params={"m": "attack2"},
            headers={"X-Correlation-ID": f"ssn {SSN}", "traceparent": "not-a-traceparent"},
            timeout=20,
        )
        assert response.status_code == 200
        span = edge.server_span("attack2")
        recorded = span.attributes["lumen.incoming.correlation_id"]
        assert SSN not in recorded and "REDACTED" in recorded
        assert span.attributes["lumen.incoming.traceparent"] == "'not-a-traceparent'"

    def test_nothing_sent_nothing_recorded(self, edge: EdgeService):
        response = httpx.get(f"{edge.url}/work", params={"m": "plain"}, timeout=20)
        span = edge.server_span("plain")
        assert span.attributes["correlation_id"] == response.headers["x-correlation-id"]
        assert not any(k.startswith("lumen.incoming.") for k in span.attributes)


@pytest.mark.integration
class TestTracestatePHI:
    def test_not_exported_and_not_forwarded_by_a_trusting_service(self, trusting: EdgeService):
        """The client's ``tracestate`` carries an SSN and a name: the server span (exported over
        OTLP) and the outgoing call keep only the clean entries; the trace is still the caller's."""
        response = httpx.get(
            f"{trusting.url}/work",
            params={"m": "ts1"},
            headers={"traceparent": VICTIM_TRACEPARENT, "tracestate": PHI_TRACESTATE},
            timeout=20,
        )
        assert response.status_code == 200
        assert response.json()["trace_id"] == VICTIM_TRACE  # trusted: today's behaviour
        span = trusting.server_span("ts1")
        assert trusting.receiver.trace_states[span.span_id] == CLEAN_TRACESTATE
        payload = b"".join(trusting.receiver.raw)
        assert SSN.encode() not in payload and b"Sarah" not in payload
        (sent,) = trusting.echo.headers
        assert sent["tracestate"] == CLEAN_TRACESTATE
        assert sent["traceparent"].split("-")[1] == VICTIM_TRACE

    def test_the_victims_ids_are_trusted_by_default(self, trusting: EdgeService):
        response = httpx.get(
            f"{trusting.url}/work",
            params={"m": "trusted"},
            headers={"X-Correlation-ID": VICTIM_CID, "traceparent": VICTIM_TRACEPARENT},
            timeout=20,
        )
        assert response.headers["x-correlation-id"] == VICTIM_CID
        assert response.json()["trace_id"] == VICTIM_TRACE
        assert not any(k.startswith("lumen.incoming.") for k in trusting.server_span("trusted").attributes)


# ---------------------------------------------------------------- exporter and inject sides


def _phi_parent() -> Any:
    """A context whose (remote) parent carries PHI in tracestate, as code or a caller may set it."""
    parent = SpanContext(
        int(VICTIM_TRACE, 16),
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState.from_header([PHI_TRACESTATE]),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


class TestExporterSide:
    def test_a_real_span_exported_through_the_redacting_exporter_has_no_phi_tracestate(self):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        with RawReceiver() as receiver:
            exporter = RedactingSpanExporter(
                OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"), Redactor()
            )
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            tracer = provider.get_tracer("test")
            link_context = trace.get_current_span(_phi_parent()).get_span_context()
            span = tracer.start_span("GET /x", context=_phi_parent(), links=[trace.Link(link_context)])
            span.end()
            provider.shutdown()
            assert receiver.wait_for(lambda r: len(r.spans) == 1)
            exported = receiver.spans[0]
            assert exported.trace_id == VICTIM_TRACE
            assert receiver.trace_states[exported.span_id] == CLEAN_TRACESTATE
            payload = b"".join(receiver.raw)
            assert SSN.encode() not in payload and b"Sarah" not in payload
            assert b"t61rcWkgMzE" in payload  # the clean entries are kept (span and link)

    def test_redact_trace_state_keeps_clean_entries_in_order_and_the_same_object_when_clean(self):
        redactor = Redactor()
        clean = TraceState.from_header([CLEAN_TRACESTATE])
        assert redact_trace_state(clean, redactor) is clean
        dirty = TraceState.from_header([PHI_TRACESTATE + ",mrn=97727665"])
        assert redact_trace_state(dirty, redactor).to_header() == CLEAN_TRACESTATE

    def test_a_span_with_clean_tracestate_is_not_copied(self):
        provider = TracerProvider()
        clean_parent = SpanContext(
            int(VICTIM_TRACE, 16), 1, True, TraceFlags(1), TraceState.from_header([CLEAN_TRACESTATE])
        )
        span = provider.get_tracer("t").start_span(
            "GET /items/{id}", context=trace.set_span_in_context(NonRecordingSpan(clean_parent))
        )
        span.end()
        assert redact_span(span, Redactor()) is span  # type: ignore[arg-type]


class TestInjectSide:
    def test_an_outgoing_httpx_call_does_not_forward_phi_tracestate(self):
        """lumen's propagator on an outgoing httpx request, inside a span whose tracestate holds PHI."""
        with sdk_tracing(), Echo() as echo:
            install_propagators("X-Correlation-ID")
            token = otel_context.attach(_phi_parent())
            try:
                with trace.get_tracer("t").start_as_current_span("work"):
                    with httpx.Client(event_hooks=httpx_event_hooks(), timeout=10) as client:
                        client.get(echo.url)
            finally:
                otel_context.detach(token)
            (sent,) = echo.headers
            assert sent["tracestate"] == CLEAN_TRACESTATE
            assert sent["traceparent"].split("-")[1] == VICTIM_TRACE


# ---------------------------------------------------------------- the propagator, in process


def _extract(headers: dict[str, str], trust: bool | None) -> Any:
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    composite = CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), CorrelationIdPropagator(None, trust)]
    )
    return composite.extract(headers)


class TestPropagator:
    HEADERS = {"traceparent": VICTIM_TRACEPARENT, "X-Correlation-ID": VICTIM_CID, "baggage": "user=alice"}

    def test_distrust_drops_parent_baggage_and_header_and_keeps_them_for_the_span(self):
        ctx = _extract(self.HEADERS, trust=False)
        assert not trace.get_current_span(ctx).get_span_context().is_valid
        assert baggage.get_all(ctx) == {}
        cid = ctx.get(CORRELATION_ID_KEY)
        assert cid != VICTIM_CID and uuid.UUID(cid).int == ctx.get(PENDING_TRACE_ID_KEY)
        assert ctx.get(INCOMING_KEY) == {
            "lumen.incoming.correlation_id": VICTIM_CID,
            "lumen.incoming.traceparent": VICTIM_TRACEPARENT,
        }

    def test_trust_keeps_todays_mapping(self):
        ctx = _extract(self.HEADERS, trust=True)
        assert format(trace.get_current_span(ctx).get_span_context().trace_id, "032x") == VICTIM_TRACE
        assert ctx.get(CORRELATION_ID_KEY) == VICTIM_CID
        assert ctx.get(INCOMING_KEY) is None

    def test_the_variable_decides_when_nothing_is_passed(self, monkeypatch):
        monkeypatch.setenv("LUMEN_TRUST_INCOMING_IDS", "false")
        assert _extract(self.HEADERS, trust=None).get(CORRELATION_ID_KEY) != VICTIM_CID
        monkeypatch.setenv("LUMEN_TRUST_INCOMING_IDS", "true")
        assert _extract(self.HEADERS, trust=None).get(CORRELATION_ID_KEY) == VICTIM_CID

    def test_a_bad_variable_fails_when_the_propagator_is_built_naming_it(self, monkeypatch):
        monkeypatch.setenv("LUMEN_TRUST_INCOMING_IDS", "maybe")
        with pytest.raises(ConfigError, match="LUMEN_TRUST_INCOMING_IDS"):
            CorrelationIdPropagator()

    def test_the_server_span_gets_the_incoming_attributes_and_a_new_root(self):
        provider = TracerProvider(id_generator=UuidTraceIdGenerator())
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        provider.add_span_processor(CorrelationIdSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(memory))
        ctx = _extract(self.HEADERS, trust=False)
        token = otel_context.attach(ctx)
        try:
            span = provider.get_tracer("t").start_span("GET /", context=ctx, kind=trace.SpanKind.SERVER)
            span.end()
        finally:
            otel_context.detach(token)
        (finished,) = memory.get_finished_spans()
        assert finished.parent is None
        assert finished.context.trace_id == ctx.get(PENDING_TRACE_ID_KEY)
        assert finished.attributes["lumen.incoming.correlation_id"] == VICTIM_CID
        assert finished.attributes["correlation_id"] == ctx.get(CORRELATION_ID_KEY)

    def test_trusting_extract_cleans_the_parents_tracestate(self):
        ctx = _extract({"traceparent": VICTIM_TRACEPARENT, "tracestate": PHI_TRACESTATE}, trust=True)
        state = trace.get_current_span(ctx).get_span_context().trace_state
        assert state.to_header() == CLEAN_TRACESTATE


class TestSetting:
    def test_default_is_trust(self):
        assert load_settings({}).trust_incoming_ids is True

    def test_false(self):
        assert load_settings({"LUMEN_TRUST_INCOMING_IDS": "false"}).trust_incoming_ids is False

    def test_nonsense_names_the_variable(self):
        with pytest.raises(ConfigError, match="LUMEN_TRUST_INCOMING_IDS"):
            load_settings({"LUMEN_TRUST_INCOMING_IDS": "sometimes"})


# ---------------------------------------------------------------- the middleware-only path


@pytest.mark.integration
class TestMiddlewareOnly:
    """No instrumentation and no lumen propagator (the API's defaults): the middlewares alone."""

    def test_fastapi_middleware_distrusts_and_records_on_a_root_span(self):
        from fastapi import FastAPI
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from lumen_otel.fastapi import CorrelationIdMiddleware

        app = FastAPI()

        @app.get("/ids")
        async def ids() -> dict[str, Any]:
            with trace.get_tracer("app").start_as_current_span("handler") as span:
                return {
                    "cid": get_correlation_id(),
                    "trace_id": format(span.get_span_context().trace_id, "032x"),
                }

        app.add_middleware(CorrelationIdMiddleware, trust_incoming_ids=False)
        with sdk_tracing(propagators=False) as memory:
            trace.get_tracer_provider().add_span_processor(CorrelationIdSpanProcessor())  # type: ignore[attr-defined]
            propagate.set_global_textmap(
                CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
            )
            with UvicornThread(app) as server:
                response = httpx.get(
                    f"{server.url}/ids",
                    headers={"X-Correlation-ID": VICTIM_CID, "traceparent": VICTIM_TRACEPARENT},
                    timeout=10,
                )
            body = response.json()
            assert response.headers["x-correlation-id"] == body["cid"] != VICTIM_CID
            assert body["trace_id"] != VICTIM_TRACE
            assert uuid.UUID(body["cid"]).hex == body["trace_id"]
            finished = memory.get_finished_spans()
            spans = {span.name: span for span in finished}
            # the request's work is in the new trace, under a root that records the caller's values
            new_trace = [s for s in finished if format(s.context.trace_id, "032x") == body["trace_id"]]
            assert spans["handler"] in new_trace
            roots = [s for s in new_trace if s.parent is None]
            assert roots
            for root in roots:
                assert root.attributes["lumen.incoming.correlation_id"] == VICTIM_CID
                assert root.attributes["lumen.incoming.traceparent"] == VICTIM_TRACEPARENT
            # FastAPI's own server span was started from the caller's traceparent before the
            # middleware ran (the API's default propagator): it says which ID the request got
            framework = spans["GET /ids"]
            assert framework.attributes["correlation_id"] == body["cid"]
            assert framework.attributes["lumen.incoming.correlation_id"] == VICTIM_CID

    def test_django_middleware_distrusts_with_the_setting(self):
        from django.test import override_settings
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        configure_django()
        from django.core.handlers.wsgi import WSGIHandler

        propagate.set_global_textmap(
            CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
        )
        with override_settings(LUMEN_TRUST_INCOMING_IDS=False), WSGIThread(WSGIHandler()) as server:
            response = httpx.get(
                f"{server.url}/id",
                headers={"X-Correlation-ID": VICTIM_CID, "traceparent": VICTIM_TRACEPARENT},
                timeout=10,
            )
        body = response.json()
        assert response.headers["x-correlation-id"] == body["cid"] == body["on_request"]
        assert body["cid"] != VICTIM_CID
        assert body["trace_id"] is None  # no tracing here: and certainly not the victim's

    def test_django_setting_must_be_a_boolean(self):
        from django.test import override_settings

        configure_django()
        from lumen_otel.django import CorrelationIdMiddleware

        with (
            override_settings(LUMEN_TRUST_INCOMING_IDS="perhaps"),
            pytest.raises(ConfigError, match="LUMEN_TRUST_INCOMING_IDS"),
        ):
            CorrelationIdMiddleware(lambda request: None)
