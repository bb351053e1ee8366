"""Shared helpers for the correlation tests: real servers on loopback, SDK tracing, log capture.

Imported by tests/test_*.py through ``sys.path`` (tests/ is not a package).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.util._once import Once

from lumen_otel._correlation.context import get_correlation_id
from lumen_otel._correlation.trace_ids import UuidTraceIdGenerator


@contextmanager
def sdk_tracing(sampler: Sampler = ALWAYS_ON, *, propagators: bool = True) -> Iterator[InMemorySpanExporter]:
    """A global SDK tracer provider with lumen-otel's id generator; the globals restored after."""
    from lumen_otel._correlation.propagator import install_propagators

    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=UuidTraceIdGenerator(), sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved_provider = trace._TRACER_PROVIDER
    saved_textmap = propagate.get_global_textmap()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    if propagators:
        install_propagators("X-Correlation-ID")
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = saved_provider
        propagate.set_global_textmap(saved_textmap)


class CorrelationCapture(logging.Handler):
    """Records (logger, message, correlation ID at the time of the call) for every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str, str | None]] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.lines.append((record.name, record.getMessage(), get_correlation_id()))


@contextmanager
def capture(logger_name: str) -> Iterator[CorrelationCapture]:
    handler = CorrelationCapture()
    logger = logging.getLogger(logger_name)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


class UvicornThread:
    """A real uvicorn server (one worker, its own event loop) in a thread on a loopback port."""

    def __init__(self, app: Any, **config: Any) -> None:
        import uvicorn

        self._sock = free_socket()
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"log_level": "warning", "lifespan": "off", "ws": "auto", "backlog": 2048}
        options.update(config)
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def __enter__(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()


class WSGIThread:
    """Django's threaded development WSGI server (one thread per request) on a loopback port."""

    def __init__(self, wsgi_app: Any) -> None:
        from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadedWSGIServer):
            request_queue_size = 1024  # socketserver's default backlog of 5 drops a burst

        self.server = Server(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
        self.server.set_app(wsgi_app)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgi-test", daemon=True
        )

    def __enter__(self) -> WSGIThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(15)


def raw_request(
    port: int, path: str, header_lines: list[bytes], method: bytes = b"GET", timeout: float = 10.0
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send bytes the HTTP clients refuse to send (control characters, raw non-ASCII)."""
    import http.client

    request = (
        method
        + b" "
        + path.encode()
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + b"".join(line + b"\r\n" for line in header_lines)
        + b"\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response.status, response.getheaders(), body


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


def configure_django() -> None:
    """Configure Django in this process once, from tests/integration/apps/corr_django_settings.py."""
    import django
    from django.conf import settings

    if not settings.configured:
        import corr_django_settings as django_settings

        settings.configure(**{k: v for k, v in vars(django_settings).items() if k.isupper()})
        django.setup()


@contextmanager
def instrumenting(instrumentor: Any, **kwargs: Any) -> Iterator[None]:
    """Instrument for the block, unless something else (bootstrap in another test) already did:
    then leave it as it is, so this block never undoes someone else's instrumentation."""
    if instrumentor.is_instrumented_by_opentelemetry:
        yield
        return
    instrumentor.instrument(**kwargs)
    try:
        yield
    finally:
        instrumentor.uninstrument()
