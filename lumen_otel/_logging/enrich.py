"""The one enrich-and-redact step every record goes through, on the caller's thread.

It runs once per record (in the root handler, not in a filter per sink) and does only what
must happen before the record leaves the caller: capture the context (correlation ID,
trace and span IDs), format the message and the exception while their objects still
have the state they had at the call, and remove PHI. Everything else (JSON encoding,
writing, OTLP translation) happens on the writer thread.
"""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

from opentelemetry import trace

from lumen_otel._correlation.context import get_correlation_id, take_finished_request
from lumen_otel._redaction import Redactor

__all__ = ["RESERVED_ATTRS", "Enricher", "sanitize"]

#: attributes every LogRecord has, plus the ones lumen-otel and the OTel logging
#: instrumentation add: everything else on a record is the user's ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
RESERVED_ATTRS = _RECORD_ATTRS | {
    "message",
    "asctime",
    "taskName",
    "service_name",
    "hostname",
    "correlation_id",
    "trace_id",
    "span_id",
    "trace_flags",
    "lumen_extra",
    "lumen_exception",
    "lumen_internal",
    "otelTraceID",
    "otelSpanID",
    "otelTraceSampled",
    "otelServiceName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}

_MAX_DEPTH = 8
_PRIMITIVES = (str, int, float, bool, type(None))


def sanitize(value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """Make an ``extra`` value JSON-safe now: dicts and lists kept, other objects as ``str``.

    Converting on the caller's thread records the value as it was at the call, breaks
    reference cycles and bounds nesting, so no sink ever drops or chokes on a value.
    """
    if isinstance(value, _PRIMITIVES):
        return value
    if depth >= _MAX_DEPTH:
        return "[nested too deep]"
    if id(value) in seen:
        return "[cycle]"
    inner = seen | {id(value)}
    if isinstance(value, dict):
        return {str(k): sanitize(v, depth + 1, inner) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [sanitize(v, depth + 1, inner) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the record
        return f"<unprintable {type(value).__name__}>"


_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)


_STR_TYPE = frozenset((str,))


def _extras(record: logging.LogRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """The user's ``extra`` entries of a record's ``__dict__``, in the order they were given.

    A plain ``LogRecord`` sets its own attributes first and ``makeRecord`` adds the extras
    after them, so the extras are read from the end back to the first standard attribute
    instead of walking all two dozen in Python. Other record classes get the full walk.
    """
    if type(record) is not logging.LogRecord:
        return {k: v for k, v in fields.items() if k not in RESERVED_ATTRS}
    found: list[str] = []
    for name in reversed(fields):
        if name in _RECORD_ATTRS:
            break
        if name not in RESERVED_ATTRS:
            found.append(name)
    return {name: fields[name] for name in reversed(found)} if found else {}


def _all_primitive(extras: dict[str, Any]) -> bool:
    """True when :func:`sanitize` would return an equal dict (string keys, primitive values)."""
    return _PRIMITIVE_TYPES.issuperset(map(type, extras.values())) and _STR_TYPE.issuperset(map(type, extras))


def _safe_message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - bad %-args: keep what was logged instead of raising
        try:
            return f"{record.msg!s} (unformattable arguments: {record.args!r})"
        except Exception:  # noqa: BLE001
            return "<unformattable log message>"


#: ``extra`` that Django's development server passes for its own formatter: the connection's socket
#: and a second timestamp. Left on the record for Django's handler, kept out of lumen-otel's output.
_DJANGO_SERVER_EXTRAS = frozenset({"request", "server_time"})

#: server loggers that write about a request after its context has ended: access lines
_ACCESS_AFTER_REQUEST = frozenset({"django.server", "gunicorn.access"})


def _logged_after_request(record: logging.LogRecord) -> bool:
    """A server's line about the request that just ended (its access line, or uvicorn's
    ``Exception in ASGI application``), logged outside that request's context."""
    name = record.name
    return name in _ACCESS_AFTER_REQUEST or (name == "uvicorn.error" and record.exc_info is not None)


class Enricher:
    """Adds service, host, correlation and trace fields; redacts message, extras and exception."""

    __slots__ = ("hostname", "redactor", "service_name")

    def __init__(self, service_name: str, redactor: Redactor) -> None:
        self.service_name = service_name
        self.hostname = socket.gethostname()
        self.redactor = redactor

    def __call__(self, record: logging.LogRecord) -> None:
        fields = record.__dict__
        if fields.get("lumen_extra") is not None:
            return  # already enriched (a record handled twice must not be redacted twice)
        extras = _extras(record, fields)
        if extras and record.name == "django.server":
            extras = {k: v for k, v in extras.items() if k not in _DJANGO_SERVER_EXTRAS}
        record.service_name = self.service_name
        record.hostname = self.hostname
        record.correlation_id = cid = get_correlation_id()
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
            record.trace_flags = int(span_context.trace_flags)
        else:
            record.trace_id = record.span_id = None
            record.trace_flags = 0
            if cid is None and _logged_after_request(record):
                finished = take_finished_request()
                if finished is not None:
                    record.correlation_id, record.trace_id, record.span_id, record.trace_flags = finished

        redact_text = self.redactor.redact_text
        message = redact_text(_safe_message(record))
        record.msg = message
        record.args = None
        record.message = message

        if extras:
            if not _all_primitive(extras):
                extras = sanitize(extras)
            extras = self.redactor.redact_mapping(extras)
            fields.update(extras)  # other handlers on the record see redacted values too
        record.lumen_extra = extras

        record.lumen_exception = None
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc_value, tb = record.exc_info
            try:
                stack = "".join(traceback.format_exception(exc_type, exc_value, tb))
            except Exception:  # noqa: BLE001
                stack = f"{exc_type!r} (traceback unavailable)"
            exception = {
                "type": getattr(exc_type, "__qualname__", str(exc_type)),
                "message": redact_text(_safe_str(exc_value)),
                "stacktrace": redact_text(stack),
            }
            record.lumen_exception = exception
            record.exc_text = exception["stacktrace"]
            record.exc_info = None  # nobody downstream re-formats the unredacted exception
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"
