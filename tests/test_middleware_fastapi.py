"""lumen_otel.fastapi.CorrelationIdMiddleware against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation.propagators import (
    get_global_response_propagator,
    set_global_response_propagator,
)

from lumen_otel._correlation import context as _correlation
from lumen_otel._correlation.context import parse_correlation_id
from lumen_otel._correlation.propagator import install_response_propagator

sys.path.insert(0, str(Path(__file__).parent / "integration" / "apps"))
import corr_fastapi_app as fastapi_app
from corr_support import UvicornThread, capture, header_values, instrumenting, raw_request, sdk_tracing

pytestmark = pytest.mark.integration

UUID_LOWER = "6f9619ff-8b86-4011-b42d-00c04fc964ff"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _quiet_limit() -> None:
    _correlation._warn.reset()


@pytest.fixture(scope="module")
def server() -> Iterator[UvicornThread]:
    """The middleware alone: no instrumentation, the API's default propagators (not ours)."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        with UvicornThread(fastapi_app.make_app()) as running:
            yield running
    finally:
        propagate.set_global_textmap(saved)


@pytest.fixture(scope="module", params=["middleware", "propagator-only"])
def instrumented(request: pytest.FixtureRequest) -> Iterator[UvicornThread]:
    """Under the FastAPI instrumentation, with and without the middleware."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    saved_response = get_global_response_propagator()
    with sdk_tracing():
        install_response_propagator("X-Correlation-ID")
        app = fastapi_app.make_app(middleware=request.param == "middleware")
        FastAPIInstrumentor.instrument_app(app, tracer_provider=trace.get_tracer_provider())
        try:
            with UvicornThread(app) as running:
                yield running
        finally:
            FastAPIInstrumentor.uninstrument_app(app)
            set_global_response_propagator(saved_response)


def _get(base: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.request(method, path, headers=headers)


def _the_header(response: httpx.Response) -> str:
    values = response.headers.get_list("x-correlation-id")
    assert len(values) == 1, values
    return values[0]


class TestHeaderReuseAndGeneration:
    def test_valid_header_is_reused_and_echoed(self, server: UvicornThread) -> None:
        response = _get(server.url, "/id", {"X-Correlation-ID": "order-42"})
        assert response.status_code == 200
        assert _the_header(response) == "order-42"
        assert response.json()["cid"] == "order-42"

    def test_missing_header_gets_a_new_uuid4(self, server: UvicornThread) -> None:
        response = _get(server.url, "/id")
        cid = _the_header(response)
        assert uuid.UUID(cid).version == 4
        assert cid == response.json()["cid"]

    def test_traceparent_without_header_gives_the_trace_id(self, server: UvicornThread) -> None:
        response = _get(server.url, "/id", {"traceparent": TRACEPARENT})
        # the middleware applies the rules itself when no instrumentation extracted
        assert str(uuid.UUID(TRACE_ID)) == _the_header(response)

    def test_sequential_requests_do_not_share_an_id(self, server: UvicornThread) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            first = client.get("/id", headers={"X-Correlation-ID": "first"}).json()["cid"]
            second = client.get("/id").json()["cid"]
            third = client.get("/sync-id").json()["cid"]
        assert first == "first"
        assert len({first, second, third}) == 3

    def test_sync_endpoint_in_the_threadpool_sees_the_id(self, server: UvicornThread) -> None:
        assert _get(server.url, "/sync-id", {"X-Correlation-ID": "order-42"}).json()["cid"] == "order-42"

    def test_custom_header_name(self) -> None:
        """header_name= wins over a global lumen propagator set up for the default header."""
        app = fastapi_app.make_app(middleware=False)
        from lumen_otel.fastapi import CorrelationIdMiddleware

        wrapped = CorrelationIdMiddleware(app, header_name="X-Request-ID")
        with sdk_tracing(), UvicornThread(wrapped) as running:
            response = _get(running.url, "/id", {"X-Request-ID": "abc"})
        assert response.headers.get_list("x-request-id") == ["abc"]
        assert response.json()["cid"] == "abc"


class TestEveryResponseCarriesTheHeaderOnce:
    def test_404(self, server: UvicornThread) -> None:
        response = _get(server.url, "/nope", {"X-Correlation-ID": "r404"})
        assert (response.status_code, _the_header(response)) == (404, "r404")

    def test_500_from_an_unhandled_exception(self, server: UvicornThread) -> None:
        with capture("uvicorn.error"):  # keeps the expected traceback out of the test output
            response = _get(server.url, "/boom", {"X-Correlation-ID": "r500"})
        assert (response.status_code, _the_header(response)) == (500, "r500")

    def test_response_from_another_middleware_has_ours_not_its_copy(self, server: UvicornThread) -> None:
        response = _get(server.url, "/denied", {"X-Correlation-ID": "r401"})
        assert (response.status_code, _the_header(response)) == (401, "r401")

    def test_cors_preflight_and_simple_responses_expose_it(self, server: UvicornThread) -> None:
        origin = {"Origin": "https://front.example"}
        preflight = _get(
            server.url, "/id", {**origin, "Access-Control-Request-Method": "GET"}, method="OPTIONS"
        )
        simple = _get(server.url, "/id", {**origin, "X-Correlation-ID": "cors-1"})
        assert preflight.status_code == 200
        for response in (preflight, simple):
            _the_header(response)
            [exposed] = response.headers.get_list("access-control-expose-headers")
            assert "x-correlation-id" in exposed.lower()
        assert _the_header(simple) == "cors-1"


class TestBadHeaderMatrix:
    """Raw bytes on the wire; every case gets a sane status (never 500) and a fresh valid ID."""

    @pytest.mark.parametrize(
        ("line", "why"),
        [
            (b"X-Correlation-ID: abc\x1b[31m", "ESC"),
            (b"X-Correlation-ID: abc\x01def", "control character"),
            (b"X-Correlation-ID: caf\xc3\xa9", "non-ASCII (UTF-8)"),
            (b"X-Correlation-ID: caf\xe9", "non-ASCII (latin-1)"),
            (b"X-Correlation-ID: " + b"a" * 129, "129 characters"),
            (b"X-Correlation-ID: ", "empty"),
            (b"X-Correlation-ID: 00000000-0000-0000-0000-000000000000", "nil UUID"),
            (b"X-Correlation-ID: a\rb", "bare CR"),
            (b"X-Correlation-ID: abc\r\n evil", "CR/LF (obsolete line folding)"),
            (b"X-Correlation-ID: -abc", "first character not alphanumeric"),
            (b"X-Correlation-ID: 123-45-6789", "SSN-shaped"),
        ],
    )
    def test_rejected_value_gets_a_new_id(self, server: UvicornThread, line: bytes, why: str) -> None:
        status, headers, _ = raw_request(server.port, "/id", [line])
        assert status != 500, why
        if status == 400:  # the HTTP parser refused the request before any application code
            return
        [cid] = header_values(headers, "x-correlation-id")
        assert cid == parse_correlation_id(cid, warn=False), why  # what we send back is always valid
        if why == "bare CR":  # the stdlib server's parser ends the header at a bare CR: we get "a"
            assert cid == "a" or uuid.UUID(cid).version == 4, why
        else:
            assert uuid.UUID(cid).version == 4, why

    def test_two_different_values_get_a_new_id(self, server: UvicornThread) -> None:
        status, headers, body = raw_request(
            server.port, "/id", [b"X-Correlation-ID: one", b"X-Correlation-ID: two"]
        )
        [cid] = header_values(headers, "x-correlation-id")
        assert (status, uuid.UUID(cid).version) == (200, 4)
        assert cid == json.loads(body)["cid"]

    @pytest.mark.parametrize(
        "value",
        [
            UUID_LOWER.upper(),
            "{" + UUID_LOWER + "}",
            "urn:uuid:" + UUID_LOWER,
            "{" + UUID_LOWER.upper() + "}",
        ],
    )
    def test_uuid_spellings_are_normalised(self, server: UvicornThread, value: str) -> None:
        response = _get(server.url, "/id", {"X-Correlation-ID": value})
        assert (_the_header(response), response.json()["cid"]) == (UUID_LOWER, UUID_LOWER)

    def test_rejection_is_logged_escaped(self, server: UvicornThread) -> None:
        with capture("lumen_otel.correlation") as logs:
            raw_request(server.port, "/id", [b"X-Correlation-ID: abc\x1b[2Jdef"])
        [(_, message, _)] = logs.lines
        assert "\x1b" not in message and "'abc\\x1b[2Jdef'" in message


class TestWebSocket:
    def test_handshake_header_is_used_and_logged(self, server: UvicornThread) -> None:
        from websockets.sync.client import connect

        with (
            capture("isolation") as logs,
            connect(
                f"ws://127.0.0.1:{server.port}/ws", additional_headers={"X-Correlation-ID": "ws-1"}
            ) as ws,
        ):
            assert ws.response.headers.get_all("x-correlation-id") == ["ws-1"]
            ws.send("hello")
            assert json.loads(ws.recv())["cid"] == "ws-1"
        assert logs.lines == [("isolation", "ws hello", "ws-1")]

    def test_connection_without_header_gets_a_new_id(self, server: UvicornThread) -> None:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            [cid] = ws.response.headers.get_all("x-correlation-id")
            ws.send("x")
            assert cid == json.loads(ws.recv())["cid"]
        assert uuid.UUID(cid).version == 4


async def _hammer(base: str, n: int) -> list[str]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(i: int) -> str:
            expected = f"load-{i:04d}"
            response = await client.get(f"/work/{expected}", headers={"X-Correlation-ID": expected})
            assert expected == _the_header(response)
            return str(response.json()["cid"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _assert_isolated(lines: list[tuple[str, str, str | None]], n: int) -> None:
    kinds = ("request", "thread", "task", "to_thread")
    assert n * len(kinds) == len(lines)
    wrong = [(message, cid) for _, message, cid in lines if message.split()[1] != cid]
    assert wrong == []
    assert {f"{k} load-{i:04d}" for k in kinds for i in range(n)} == {m for _, m, _ in lines}


class TestIsolationUnderLoad:
    def test_500_concurrent_requests_each_log_only_their_own_id(self, threading_instrumented: None) -> None:
        with UvicornThread(fastapi_app.make_app()) as running, capture("isolation") as logs:
            started = time.monotonic()
            cids = asyncio.run(_hammer(running.url, 500))
            elapsed = time.monotonic() - started
        assert [f"load-{i:04d}" for i in range(500)] == cids
        _assert_isolated(logs.lines, 500)
        print(f"500 concurrent requests on one uvicorn worker: {elapsed:.2f} s")


@pytest.fixture
def threading_instrumented() -> Iterator[None]:
    """Threads get the OpenTelemetry context (bootstrap enables this instrumentation)."""
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    with instrumenting(ThreadingInstrumentor()):
        yield


class TestUnderTheOpenTelemetryInstrumentation:
    def test_header_is_echoed_once_and_ids_match_the_server_span(self, instrumented: UvicornThread) -> None:
        response = _get(instrumented.url, "/id", {"X-Correlation-ID": UUID_LOWER})
        body = response.json()
        assert (_the_header(response), body["cid"]) == (UUID_LOWER, UUID_LOWER)
        assert uuid.UUID(UUID_LOWER).hex == body["trace_id"]

    def test_traceparent_wins_for_the_trace_and_the_header_stays_the_id(
        self, instrumented: UvicornThread
    ) -> None:
        response = _get(instrumented.url, "/id", {"X-Correlation-ID": "order-42", "traceparent": TRACEPARENT})
        assert response.json() == {"cid": "order-42", "trace_id": TRACE_ID}
        assert _the_header(response) == "order-42"

    def test_no_header_gives_the_server_span_trace_id(self, instrumented: UvicornThread) -> None:
        response = _get(instrumented.url, "/id")
        body = response.json()
        assert uuid.UUID(body["cid"]).hex == body["trace_id"]
        assert body["cid"] == _the_header(response)

    def test_500_and_404_carry_the_header_once(self, instrumented: UvicornThread) -> None:
        with capture("uvicorn.error"):
            boom = _get(instrumented.url, "/boom", {"X-Correlation-ID": "r500"})
        missing = _get(instrumented.url, "/nope", {"X-Correlation-ID": "r404"})
        assert [
            (boom.status_code, _the_header(boom)),
            (missing.status_code, _the_header(missing)),
        ] == [(500, "r500"), (404, "r404")]

    def test_websocket_accept_carries_the_header_once(self, instrumented: UvicornThread) -> None:
        from websockets.sync.client import connect

        with connect(
            f"ws://127.0.0.1:{instrumented.port}/ws", additional_headers={"X-Correlation-ID": "ws-2"}
        ) as ws:
            assert ws.response.headers.get_all("x-correlation-id") == ["ws-2"]
            ws.send("x")
            assert json.loads(ws.recv())["cid"] == "ws-2"


class TestOutgoingHttpx:
    """httpx calls made while handling a request send its trace and correlation ID."""

    def test_with_the_httpx_instrumentation(self, instrumented: UvicornThread) -> None:
        from opentelemetry import trace
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        with instrumenting(HTTPXClientInstrumentor(), tracer_provider=trace.get_tracer_provider()):
            body = _get(
                instrumented.url, f"/call?target={instrumented.url}/echo", {"X-Correlation-ID": "out-1"}
            ).json()
        for how in ("async", "task", "sync_thread"):
            received = body[how]
            assert received["x-correlation-id"] == "out-1", how
            assert received["traceparent"].startswith(f"00-{body['trace_id']}-"), how

    def test_with_the_middleware_alone_through_event_hooks(self, server: UvicornThread) -> None:
        body = _get(
            server.url,
            f"/call?target={server.url}/echo&hooks=true",
            {"X-Correlation-ID": "out-2", "traceparent": TRACEPARENT},
        ).json()
        for how in ("async", "task", "sync_thread"):
            received = body[how]
            assert received["x-correlation-id"] == "out-2", how
            assert received["traceparent"].startswith(f"00-{TRACE_ID}-"), how  # the same trace


class TestInstrumentationWithoutOurPropagator:
    """``OTEL_PROPAGATORS=tracecontext,baggage``: the middleware follows the server span."""

    def test_new_id_is_the_server_span_trace_id(self) -> None:
        from opentelemetry import trace
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        with sdk_tracing(propagators=False):
            propagate.set_global_textmap(
                CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
            )
            app = fastapi_app.make_app()
            FastAPIInstrumentor.instrument_app(app, tracer_provider=trace.get_tracer_provider())
            try:
                with UvicornThread(app) as running:
                    plain = _get(running.url, "/id").json()
                    with_header = _get(running.url, "/id", {"X-Correlation-ID": "order-9"}).json()
            finally:
                FastAPIInstrumentor.uninstrument_app(app)
        assert uuid.UUID(plain["cid"]).hex == plain["trace_id"]
        assert with_header["cid"] == "order-9"
