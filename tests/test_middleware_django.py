"""lumen_otel.django.CorrelationIdMiddleware on real servers: threaded WSGI and ASGI (uvicorn)."""

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
from corr_support import (
    UvicornThread,
    WSGIThread,
    capture,
    configure_django,
    header_values,
    instrumenting,
    raw_request,
    sdk_tracing,
)

pytestmark = pytest.mark.integration

UUID_LOWER = "6f9619ff-8b86-4011-b42d-00c04fc964ff"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def _quiet_limit() -> None:
    _correlation._warn.reset()


def _start(kind: str) -> UvicornThread | WSGIThread:
    configure_django()
    if kind == "wsgi":
        from django.core.handlers.wsgi import WSGIHandler

        return WSGIThread(WSGIHandler())
    from django.core.handlers.asgi import ASGIHandler

    return UvicornThread(ASGIHandler())


# Class-scoped, not module-scoped: Django's settings and the instrumentation are process-global,
# so a ``server`` and an ``instrumented`` fixture alive at the same time (random test order kept
# both module fixtures open) would serve the middleware-alone tests with the instrumented stack.
@pytest.fixture(scope="class", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest) -> Iterator[UvicornThread | WSGIThread]:
    """The middleware alone, under WSGI (threads) and ASGI; the API's default propagators."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        with _start(request.param) as running:
            yield running
    finally:
        propagate.set_global_textmap(saved)


@pytest.fixture(
    scope="class",
    params=[("wsgi", True), ("asgi", True), ("wsgi", False), ("asgi", False)],
    ids=["wsgi-middleware", "asgi-middleware", "wsgi-propagator-only", "asgi-propagator-only"],
)
def instrumented(request: pytest.FixtureRequest) -> Iterator[UvicornThread | WSGIThread]:
    """Under opentelemetry-instrumentation-django with lumen-otel's propagators and echo,
    with our middleware and without it (the response propagator alone)."""
    from django.test import override_settings
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    configure_django()
    kind, middleware = request.param
    from django.conf import settings

    stack = list(settings.MIDDLEWARE) if middleware else ["corr_django_urls.DenyMiddleware"]
    saved_response = get_global_response_propagator()
    with sdk_tracing(), override_settings(MIDDLEWARE=stack):
        install_response_propagator("X-Correlation-ID")
        try:
            with (
                instrumenting(DjangoInstrumentor(), tracer_provider=trace.get_tracer_provider()),
                _start(kind) as running,
            ):
                yield running
        finally:
            set_global_response_propagator(saved_response)


def _get(base: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.request(method, path, headers=headers)


def _the_header(response: httpx.Response) -> str:
    values = response.headers.get_list("x-correlation-id")
    assert len(values) == 1, values
    return values[0]


class TestHeaderReuseAndGeneration:
    @pytest.mark.parametrize("path", ["/id", "/async-id"])
    def test_valid_header_is_reused_and_echoed(self, server: WSGIThread, path: str) -> None:
        response = _get(server.url, path, {"X-Correlation-ID": "order-42"})
        assert (
            _the_header(response),
            response.json()["cid"],
            response.json()["on_request"],
        ) == ("order-42", "order-42", "order-42")

    def test_missing_header_gets_a_new_uuid4(self, server: WSGIThread) -> None:
        response = _get(server.url, "/id")
        cid = _the_header(response)
        assert (4, cid) == (uuid.UUID(cid).version, response.json()["cid"])

    def test_traceparent_without_header_gives_the_trace_id(self, server: WSGIThread) -> None:
        assert str(uuid.UUID(TRACE_ID)) == _the_header(_get(server.url, "/id", {"traceparent": TRACEPARENT}))

    def test_sequential_requests_do_not_share_an_id(self, server: WSGIThread) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            cids = [
                client.get("/id", headers={"X-Correlation-ID": "first"}).json()["cid"],
                client.get("/id").json()["cid"],
                client.get("/async-id").json()["cid"],
            ]
        assert cids[0] == "first"
        assert len(set(cids)) == 3


class TestEveryResponseCarriesTheHeaderOnce:
    def test_404(self, server: WSGIThread) -> None:
        response = _get(server.url, "/nope", {"X-Correlation-ID": "r404"})
        assert (response.status_code, _the_header(response)) == (404, "r404")

    def test_500_from_an_exception_in_the_view(self, server: WSGIThread) -> None:
        with capture("django.request"):
            response = _get(server.url, "/boom", {"X-Correlation-ID": "r500"})
        assert (response.status_code, _the_header(response)) == (500, "r500")

    def test_response_from_another_middleware_has_ours_not_its_copy(self, server: WSGIThread) -> None:
        response = _get(server.url, "/denied", {"X-Correlation-ID": "r401"})
        assert (response.status_code, _the_header(response)) == (401, "r401")

    def test_cors_responses_expose_it(self, server: WSGIThread) -> None:
        origin = {"Origin": "https://front.example"}
        for response in (_get(server.url, "/id", origin, method="OPTIONS"), _get(server.url, "/id", origin)):
            _the_header(response)
            assert response.headers.get_list("access-control-expose-headers") == ["X-Correlation-ID"]


class TestBadHeaderMatrix:
    @pytest.mark.parametrize(
        ("line", "why"),
        [
            (b"X-Correlation-ID: abc\x1b[31m", "ESC"),
            (b"X-Correlation-ID: abc\x01def", "control character"),
            (b"X-Correlation-ID: caf\xc3\xa9", "non-ASCII (UTF-8)"),
            (b"X-Correlation-ID: " + b"a" * 129, "129 characters"),
            (b"X-Correlation-ID: ", "empty"),
            (b"X-Correlation-ID: 00000000-0000-0000-0000-000000000000", "nil UUID"),
            (b"X-Correlation-ID: a\rb", "bare CR"),
            (b"X-Correlation-ID: abc\r\n evil", "CR/LF (obsolete line folding)"),
            (b"X-Correlation-ID: 123-45-6789", "SSN-shaped"),
        ],
    )
    def test_rejected_value_gets_a_new_id(self, server: WSGIThread, line: bytes, why: str) -> None:
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

    def test_two_different_values_get_a_new_id(self, server: WSGIThread) -> None:
        status, headers, body = raw_request(
            server.port, "/id", [b"X-Correlation-ID: one", b"X-Correlation-ID: two"]
        )
        [cid] = header_values(headers, "x-correlation-id")
        assert (200, 4, cid) == (status, uuid.UUID(cid).version, json.loads(body)["cid"])

    @pytest.mark.parametrize("value", [UUID_LOWER.upper(), "{" + UUID_LOWER + "}", "urn:uuid:" + UUID_LOWER])
    def test_uuid_spellings_are_normalised(self, server: WSGIThread, value: str) -> None:
        response = _get(server.url, "/id", {"X-Correlation-ID": value})
        assert (_the_header(response), response.json()["cid"]) == (UUID_LOWER, UUID_LOWER)


@pytest.fixture
def threading_instrumented() -> Iterator[None]:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    with instrumenting(ThreadingInstrumentor()):
        yield


async def _hammer(base: str, path: str, n: int) -> list[str]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(i: int) -> str:
            expected = f"load-{i:04d}"
            response = await client.get(f"{path}/{expected}", headers={"X-Correlation-ID": expected})
            assert expected == _the_header(response)
            return str(response.json()["cid"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


class TestIsolationUnderLoad:
    @pytest.mark.parametrize(("kind", "path"), [("wsgi", "/work"), ("asgi", "/async-work")])
    def test_500_concurrent_requests_each_log_only_their_own_id(
        self,
        threading_instrumented: None,
        kind: str,
        path: str,
    ) -> None:
        n = 500
        with _start(kind) as running, capture("isolation") as logs:
            started = time.monotonic()
            cids = asyncio.run(_hammer(running.url, path, n))
            elapsed = time.monotonic() - started
        assert [f"load-{i:04d}" for i in range(n)] == cids
        kinds = ("request", "thread", "task", "to_thread")
        assert n * len(kinds) == len(logs.lines)
        assert [(m, cid) for _, m, cid in logs.lines if m.split()[1] != cid] == []
        assert {f"{k} load-{i:04d}" for k in kinds for i in range(n)} == {m for _, m, _ in logs.lines}
        print(f"500 concurrent requests, Django {kind}: {elapsed:.2f} s")


class TestUnderTheOpenTelemetryInstrumentation:
    def test_header_is_echoed_once_and_ids_match_the_server_span(self, instrumented: WSGIThread) -> None:
        response = _get(instrumented.url, "/id", {"X-Correlation-ID": UUID_LOWER})
        body = response.json()
        assert (UUID_LOWER, UUID_LOWER, uuid.UUID(UUID_LOWER).hex) == (
            _the_header(response),
            body["cid"],
            body["trace_id"],
        )

    def test_traceparent_wins_for_the_trace(self, instrumented: WSGIThread) -> None:
        response = _get(
            instrumented.url, "/async-id", {"X-Correlation-ID": "order-42", "traceparent": TRACEPARENT}
        )
        body = response.json()
        assert (body["cid"], body["trace_id"]) == ("order-42", TRACE_ID)

    def test_no_header_gives_the_server_span_trace_id(self, instrumented: WSGIThread) -> None:
        response = _get(instrumented.url, "/id")
        body = response.json()
        assert (uuid.UUID(body["cid"]).hex, body["cid"]) == (body["trace_id"], _the_header(response))

    def test_500_404_and_middleware_responses_carry_the_header_once(self, instrumented: WSGIThread) -> None:
        with capture("django.request"):
            statuses = [
                (r.status_code, _the_header(r))
                for r in (
                    _get(instrumented.url, "/boom", {"X-Correlation-ID": "r500"}),
                    _get(instrumented.url, "/nope", {"X-Correlation-ID": "r404"}),
                    _get(instrumented.url, "/denied", {"X-Correlation-ID": "r401"}),
                )
            ]
        assert statuses == [(500, "r500"), (404, "r404"), (401, "r401")]
