"""Correlation IDs for FastAPI, Starlette and any other ASGI application.

``CorrelationIdMiddleware`` is pure ASGI (no Starlette import), for HTTP and WebSocket::

    from lumen_otel.fastapi import CorrelationIdMiddleware
    app.add_middleware(CorrelationIdMiddleware)          # or: app = CorrelationIdMiddleware(app)

It takes the request's correlation ID (reused from the OpenTelemetry
instrumentation when that ran, else worked out from ``traceparent`` and the header here),
makes it current for the request (:func:`lumen_otel.get_correlation_id`, log records,
outgoing httpx calls, threads and tasks started from the request) and puts it on every
response exactly once, exposed to browsers through ``Access-Control-Expose-Headers``.

Add it last (outermost) so responses made by other middleware, such as CORS preflights,
pass through it; under the OpenTelemetry instrumentation the response propagator covers
those anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from lumen_otel._correlation.context import _enter, request_context, trust_incoming_ids
from lumen_otel._correlation.propagator import header_from_env, httpx_event_hooks, set_asgi_headers
from lumen_otel._state import STATE

__all__ = ["CorrelationIdMiddleware", "httpx_event_hooks"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_logger = logging.getLogger("lumen_otel.correlation")
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})


class _ScopeGetter:
    """An OpenTelemetry ``Getter`` over ASGI scope headers (case-insensitive, all values)."""

    def get(self, carrier: Scope, key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        values = [
            bytes(v).decode("latin-1") for k, v in carrier.get("headers") or () if bytes(k).lower() == wanted
        ]
        return values or None

    def keys(self, carrier: Scope) -> list[str]:
        return [bytes(k).decode("latin-1") for k, _ in carrier.get("headers") or ()]


_getter = _ScopeGetter()
_trust = trust_incoming_ids


class CorrelationIdMiddleware:
    """Pure ASGI middleware: one correlation ID per request or WebSocket connection.

    Args:
        app: the ASGI application to wrap.
        header_name: header to read and write; default the header lumen-otel is set up with
            (``bootstrap(correlation_header=...)``, else ``LUMEN_CORRELATION_HEADER``), read per
            request so a middleware built before ``bootstrap()`` follows it too, else
            ``X-Correlation-ID``. A name other than the set-up's is used as given, with one
            warning: the propagator and outgoing calls still use the set-up's.
        trust_incoming_ids: use the caller's ``traceparent`` and correlation ID; False (an edge
            service facing clients) gives every request its own, and records the caller's as
            ``lumen.incoming.*`` span attributes. Default: bootstrap's setting, else
            ``LUMEN_TRUST_INCOMING_IDS``, else true.

    Every response carries the header once: normal ones, 404s, responses made by middleware
    inside this one, and a 500 for an exception that escapes the application before it
    started a response (sent here, then the exception is re-raised for the server to log).
    """

    def __init__(
        self, app: ASGIApp, header_name: str | None = None, trust_incoming_ids: bool | None = None
    ) -> None:
        self.app = app
        self.header_name = header_from_env(header_name)
        self._explicit_header = header_name is not None
        self.trust_incoming_ids = trust_incoming_ids
        _trust(trust_incoming_ids)  # a bad LUMEN_TRUST_INCOMING_IDS fails here, not in a request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = self.header_name
        if not self._explicit_header:
            handle = STATE.handle
            if handle is not None:
                header = handle.settings.correlation_header
        cid, ctx = request_context(scope, _getter, header, _trust(self.trust_incoming_ids))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] in _STARTS:
                started = True
                headers = set_asgi_headers(list(message.get("headers") or ()), header, cid)
                message = {**message, "headers": headers}
            await send(message)

        leave = _enter(cid, ctx)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if scope["type"] == "http" and not started:
                await self._internal_error(send_with_id)
            raise
        finally:
            leave()

    @staticmethod
    async def _internal_error(send: Send) -> None:
        # The server (or Starlette's ServerErrorMiddleware, which sits outside user
        # middleware) would send its own 500 without our header; send one that has it.
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
        except Exception:
            _logger.debug("could not send the 500 response", exc_info=True)
