"""Correlation IDs for Django, under WSGI (threads) and ASGI.

Add the middleware near the top of ``MIDDLEWARE`` (after ``SecurityMiddleware`` is fine;
``opentelemetry-instrumentation-django`` inserts its own before all of them)::

    MIDDLEWARE = ["lumen_otel.django.CorrelationIdMiddleware", ...]

The header name is ``settings.LUMEN_CORRELATION_HEADER``, else the environment variable of
the same name, else ``X-Correlation-ID``. The request's ID is also on ``request.correlation_id``.
``settings.LUMEN_TRUST_INCOMING_IDS = False`` (else bootstrap's setting, else the environment
variable) makes an edge service give every request its own IDs: see ``docs/correlation.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("lumen_otel.django needs Django: pip install 'lumen-otel[django]'") from None

from lumen_otel._correlation.context import (
    TRUST_VARIABLE,
    _enter,
    forget_finished_request,
    record_finished_request,
    request_context,
    trust_incoming_ids,
)
from lumen_otel._correlation.propagator import (
    EXPOSE_HEADERS,
    header_from_env,
    httpx_event_hooks,
    merge_expose,
)

__all__ = ["CorrelationIdMiddleware", "httpx_event_hooks"]


class _RequestGetter:
    """An OpenTelemetry ``Getter`` over ``request.headers`` (case-insensitive)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = carrier.headers.get(key)
        return None if value is None else [value]

    def keys(self, carrier: Any) -> list[str]:
        return list(carrier.headers.keys())


_getter = _RequestGetter()


def _setting_trust(value: Any) -> bool | None:
    """``settings.LUMEN_TRUST_INCOMING_IDS``: a bool, or a string parsed like the variable."""
    if value is None or isinstance(value, bool):
        return value
    from lumen_otel._config.settings import PARAMETERS

    parameter = next(p for p in PARAMETERS if p.field == "trust_incoming_ids")
    return bool(parameter.parse(f"settings.{TRUST_VARIABLE}", str(value)))


class CorrelationIdMiddleware:
    """One correlation ID per request, on the request, in the context, and on the response.

    Sync and async capable: Django picks the mode that matches the stack, so an ASGI
    deployment does not pay a thread hop. Exceptions in views become Django's 500 response
    inside this middleware, so that response carries the header too. Leaving a request, it
    records the request's IDs for the lines Django and the server write after it (``Not Found``,
    the access line), also when the request was not sampled.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.header_name = header_from_env(getattr(settings, "LUMEN_CORRELATION_HEADER", None))
        self.trust_incoming_ids = _setting_trust(getattr(settings, TRUST_VARIABLE, None))
        trust_incoming_ids(self.trust_incoming_ids)  # a bad variable fails here, not in a request
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        cid, ctx = request_context(
            request, _getter, self.header_name, trust_incoming_ids(self.trust_incoming_ids)
        )
        request.correlation_id = cid
        forget_finished_request()
        leave = _enter(cid, ctx)
        try:
            response = self.get_response(request)
        finally:
            record_finished_request(cid)  # inside the server span, sampled or not
            leave()
        self._add_headers(response, cid)
        return response

    async def __acall__(self, request: Any) -> Any:
        cid, ctx = request_context(
            request, _getter, self.header_name, trust_incoming_ids(self.trust_incoming_ids)
        )
        request.correlation_id = cid
        forget_finished_request()
        leave = _enter(cid, ctx)
        try:
            response = await self.get_response(request)
        finally:
            record_finished_request(cid)  # inside the server span, sampled or not
            leave()
        self._add_headers(response, cid)
        return response

    def _add_headers(self, response: Any, cid: str) -> None:
        response[self.header_name] = cid  # replaces any copy: exactly one
        response[EXPOSE_HEADERS] = merge_expose(response.get(EXPOSE_HEADERS), self.header_name)
