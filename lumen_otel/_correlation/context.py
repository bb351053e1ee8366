"""Correlation IDs: the current one, validation, and the ID <-> trace id mapping.

The correlation ID of the current request lives in two places that always agree:

- a :class:`~contextvars.ContextVar` set by the middlewares and :func:`correlation_scope`
  (one lookup: log enrichment calls :func:`get_correlation_id` on every record), and
- the OpenTelemetry context, under :data:`CORRELATION_ID_KEY`, set by the propagator's
  ``extract`` (so it works under ``opentelemetry-instrument`` without any middleware) and by
  the middlewares; it follows the OpenTelemetry context into threads
  (``opentelemetry-instrumentation-threading``) where plain context variables do not go.

The mapping (see ``docs/correlation.md``), implemented once in :func:`resolve` for the propagator, the
middlewares and :func:`correlation_scope`:

=================================  ==============================  =============================
incoming                           trace context                   correlation ID
=================================  ==============================  =============================
valid traceparent + valid header   from traceparent                the header value
valid traceparent, no/bad header   from traceparent                trace id as a UUID
no traceparent, UUID header        the UUID's 128 bits             canonical lower-case UUID
no traceparent, other header       first 16 bytes of SHA-256       the header value
nothing                            new UUIDv4-shaped trace id      trace id as a UUID
=================================  ==============================  =============================

Trust policy: with ``LUMEN_TRUST_INCOMING_IDS=false`` (an edge service facing clients) every
request is treated as the last row whatever it carries: a new root span with a new trace id and
a new correlation ID, no caller ``tracestate`` or ``baggage``. A client can then not put its lines
in another request's trace or under another request's ID. What the caller sent is kept for
investigation as span attributes of the server span (and of any local root span of the request):
``lumen.incoming.correlation_id`` and ``lumen.incoming.traceparent``, the normalised value when
valid, else escaped, redacted and cut to 40 characters (:func:`incoming_attributes`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext

from lumen_otel._correlation.trace_ids import PENDING_TRACE_ID_KEY, new_trace_id, trace_id_to_uuid

__all__ = [
    "CORRELATION_ID_KEY",
    "DEFAULT_HEADER",
    "INCOMING_KEY",
    "TRUST_VARIABLE",
    "CorrelationIdSpanProcessor",
    "correlation_scope",
    "distrusted_context",
    "forget_finished_request",
    "get_correlation_id",
    "incoming_attributes",
    "parse_correlation_id",
    "record_finished_request",
    "record_response",
    "resolve",
    "trace_id_for_correlation_id",
    "trust_from_env",
    "trust_incoming_ids",
]

DEFAULT_HEADER = "X-Correlation-ID"

#: OpenTelemetry context key holding the correlation ID (set by the propagator's extract).
CORRELATION_ID_KEY = otel_context.create_key("lumen-correlation-id")

#: OpenTelemetry context key set when the request's IDs were made here because incoming ones are
#: not trusted: the ``lumen.incoming.*`` attributes to record (possibly none).
INCOMING_KEY = otel_context.create_key("lumen-incoming-ids")

TRUST_VARIABLE = "LUMEN_TRUST_INCOMING_IDS"
_TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", re.ASCII)

_correlation_id: ContextVar[str | None] = ContextVar("lumen_correlation_id", default=None)

_logger = logging.getLogger("lumen_otel.correlation")

_MAX_LENGTH = 128
# ASCII only: with re.IGNORECASE a Unicode pattern's [a-z] also matches U+017F and U+212A (Kelvin).
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/@-]{0,127}", re.ASCII)
_HEX_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID = re.compile(
    rf"\{{(?P<braced>{_HEX_UUID})\}}|urn:uuid:(?P<urn>{_HEX_UUID})|(?P<bare>{_HEX_UUID})",
    re.ASCII | re.IGNORECASE,
)
_CANONICAL_UUID = re.compile(_HEX_UUID, re.ASCII)
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_SHOWN_CHARS = 40


def get_correlation_id() -> str | None:
    """The correlation ID of the current request, job or :func:`correlation_scope`, or None.

    Cheap enough to call on every log record: one context-variable read, and only when that
    is empty (a thread started in the request, or no middleware in use) a lookup in the
    OpenTelemetry context where the propagator keeps the ID.
    """
    cid = _correlation_id.get()
    if cid is not None:
        return cid
    value = otel_context.get_value(CORRELATION_ID_KEY)
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------- validation


class _RateLimitedWarning:
    """At most one warning per ``interval`` seconds; the next one says how many were dropped."""

    __slots__ = ("_last", "_lock", "_suppressed", "interval")

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, shown: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                self._suppressed += 1
                return
            self._last = now
            suppressed, self._suppressed = self._suppressed, 0
        with contextlib.suppress(Exception):  # a broken handler must not fail the request
            _logger.warning(
                "rejected correlation ID %s: %s; a new one was made%s",
                shown,
                reason,
                f" ({suppressed} similar warnings suppressed)" if suppressed else "",
            )

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._last = None
        self._suppressed = 0

    def reset(self) -> None:
        with self._lock:
            self._last = None
            self._suppressed = 0


_warn = _RateLimitedWarning()
if hasattr(os, "register_at_fork"):  # a child forked while a thread held the lock must not deadlock
    os.register_at_fork(after_in_child=_warn.after_fork)


def _shown(value: str) -> str:
    """The rejected value escaped (``ascii()``: no CR/LF, ESC or non-ASCII reaches a log) and cut."""
    if len(value) <= _SHOWN_CHARS:
        return ascii(value)
    return f"{value[:_SHOWN_CHARS]!a}... ({len(value)} characters)"


#: where an ID glues a label to its value (``MRN97727665``, ``patient-97727665``, ``ssn_123456789``)
_GLUE = re.compile(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])|[-_.:+=/@]")


def _looks_like_phi(value: str) -> bool:
    """The redactor would change the ID, as it is or with its parts spaced apart: an ID is one
    token, and the label rules look for a label word, then its value."""
    from lumen_otel._redaction import get_default_redactor

    try:
        redact = get_default_redactor().redact_text
        if redact(value) != value:
            return True
        for spaced in {_GLUE.sub(" ", value, count=1), _GLUE.sub(" ", value)} - {value}:
            if redact(spaced) != spaced:
                return True
        return False
    except Exception:  # noqa: BLE001 - a broken redactor rejects rather than lets a value through
        return True


def _check_one(value: str) -> tuple[str | None, str]:
    """(normalised value, "") or (None, reason)."""
    value = value.strip(" \t")
    if not value:
        return None, "empty"
    match = _UUID.fullmatch(value)
    if match is not None:
        canonical = (match.group("braced") or match.group("urn") or match.group("bare")).lower()
        if canonical == _NIL_UUID:
            return None, "the nil UUID"
        return canonical, ""
    if len(value) > _MAX_LENGTH:
        return None, f"longer than {_MAX_LENGTH} characters"
    if not _VALID.fullmatch(value):
        return None, ("not 1-128 characters of A-Z a-z 0-9 . _ : + = / @ - starting with a letter or digit")
    if _looks_like_phi(value):
        return None, "looks like personal data (PHI)"
    return value, ""


def _candidates(raw: str | bytes | Iterable[str | bytes]) -> list[str]:
    items: Iterable[str | bytes] = [raw] if isinstance(raw, (str, bytes)) else raw
    values: list[str] = []
    for item in items:
        text = item.decode("latin-1") if isinstance(item, bytes) else str(item)
        # Repeated header lines arrive joined with "," under WSGI and Django: split them back.
        values.extend(text.split(",") if "," in text else [text])
    return values


def parse_correlation_id(raw: str | bytes | Iterable[str | bytes] | None, *, warn: bool = True) -> str | None:
    """Validate an incoming correlation ID; the normalised value, or None when it is rejected.

    ``raw`` is a header value, or all values of a repeated header. Rules: 1-128
    characters of ``A-Z a-z 0-9 . _ : + = / @ -``, the first a letter or digit; a UUID in any
    case, in braces or as ``urn:uuid:`` becomes its canonical lower-case form; the nil UUID,
    several different values and values the PHI redactor would change are rejected.

    A rejected value (not a missing one) logs a rate-limited warning on the
    ``lumen_otel.correlation`` logger, with the value escaped and truncated.

    Example::

        >>> parse_correlation_id("{6F9619FF-8B86-D011-B42D-00C04FC964FF}")
        '6f9619ff-8b86-d011-b42d-00c04fc964ff'
        >>> parse_correlation_id("a\\r\\nSet-Cookie: x", warn=False) is None
        True
    """
    if raw is None:
        return None
    candidates = _candidates(raw)
    if not candidates:
        return None
    accepted: set[str] = set()
    for candidate in candidates:
        value, reason = _check_one(candidate)
        if value is None:
            if warn:
                shown = candidate
                if reason.startswith("looks like"):
                    from lumen_otel._redaction import get_default_redactor

                    shown = get_default_redactor().redact_text(candidate)
                _warn(_shown(shown), reason)
            return None
        accepted.add(value)
    if len(accepted) > 1:
        if warn:
            _warn(_shown(",".join(candidates)), "several different values")
        return None
    return accepted.pop()


# ---------------------------------------------------------------- trust policy


def trust_incoming_ids(trust: bool | None = None) -> bool:
    """``trust``, else bootstrap's setting, else ``LUMEN_TRUST_INCOMING_IDS``, else True.

    Raises:
        ConfigError: the variable is not a boolean (the message names it).
    """
    if trust is not None:
        return trust
    from lumen_otel._state import STATE

    handle = STATE.handle
    if handle is not None:
        return handle.settings.trust_incoming_ids
    return trust_from_env()


def trust_from_env() -> bool:
    """``LUMEN_TRUST_INCOMING_IDS`` (default true), parsed as the settings table parses it.

    Raises:
        ConfigError: the variable is not a boolean (the message names it).
    """
    raw = os.environ.get(TRUST_VARIABLE, "").strip()
    if not raw:
        return True
    from lumen_otel._config.settings import PARAMETERS

    parameter = next(p for p in PARAMETERS if p.field == "trust_incoming_ids")
    return bool(parameter.parse(TRUST_VARIABLE, raw))


def _joined(raw: str | bytes | Iterable[str | bytes]) -> str:
    return ",".join(_candidates(raw))


def incoming_attributes(raw_correlation_id: Any, raw_traceparent: Any) -> dict[str, str]:
    """The ``lumen.incoming.*`` span attributes for IDs a caller sent that are not used.

    A valid correlation ID is recorded normalised (valid IDs carry no PHI: they are checked like
    trusted ones), a W3C ``traceparent`` as sent; anything else escaped (``ascii()``: no control
    characters), redacted and cut to 40 characters.
    """
    attributes: dict[str, str] = {}
    if raw_correlation_id is not None:
        cid = parse_correlation_id(raw_correlation_id, warn=False)
        attributes["lumen.incoming.correlation_id"] = (
            cid if cid is not None else _escaped(_joined(raw_correlation_id))
        )
    if raw_traceparent is not None:
        text = _joined(raw_traceparent).strip(" \t")
        if _TRACEPARENT.fullmatch(text) and not text.startswith("ff"):
            attributes["lumen.incoming.traceparent"] = text
        elif text:
            attributes["lumen.incoming.traceparent"] = _escaped(text)
    return attributes


def _escaped(value: str) -> str:
    from lumen_otel._redaction import get_default_redactor

    try:
        value = get_default_redactor().redact_text(value[:1024])
    except Exception:  # noqa: BLE001 - a value we could not check is not recorded
        return "[REDACTED:UNPROCESSABLE]"
    return _shown(value)


def distrusted_context(
    context: Context, raw_correlation_id: Any, raw_traceparent: Any
) -> tuple[str, Context]:
    """The request's own IDs when incoming ones are not trusted: (new correlation ID, context).

    The returned context has no remote parent span (a caller's ``traceparent``, already
    extracted into ``context``, is dropped), no baggage, a new correlation ID with the pending
    trace id of the coming root span, and under :data:`INCOMING_KEY` what the caller sent.
    """
    from opentelemetry import baggage

    span_context = trace.get_current_span(context).get_span_context()
    if span_context.is_remote:
        context = trace.set_span_in_context(trace.INVALID_SPAN, context)
    if baggage.get_all(context):
        context = baggage.clear(context)
    cid, pending = resolve(None, None)
    context = context_with(cid, pending, context)
    attributes = incoming_attributes(raw_correlation_id, raw_traceparent)
    return cid, otel_context.set_value(INCOMING_KEY, attributes, context)


def clean_remote_parent(context: Context) -> Context:
    """``context`` whose remote parent's ``tracestate`` has no entry the redactor would flag.

    A child span inherits its parent's tracestate: dropped here, PHI a caller put there is neither
    exported on this service's spans nor forwarded on its outgoing calls.
    """
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_remote or not span_context.trace_state:
        return context
    from lumen_otel._redaction import get_default_redactor
    from lumen_otel._redaction.spans import redact_span_context

    cleaned = redact_span_context(span_context, get_default_redactor())
    if cleaned is span_context:
        return context
    return trace.set_span_in_context(NonRecordingSpan(cleaned), context)


# ---------------------------------------------------------------- the mapping


def trace_id_for_correlation_id(cid: str) -> int:
    """The trace id a valid correlation ID maps to when no traceparent came with it.

    A canonical UUID gives its own 128 bits; anything else the first 16 bytes of its SHA-256,
    so every legacy hop that forwards only the header lands in the same trace.
    """
    if _CANONICAL_UUID.fullmatch(cid):
        return int(cid.replace("-", ""), 16)
    digest = hashlib.sha256(cid.encode("ascii")).digest()
    return int.from_bytes(digest[:16], "big") or 1


def resolve(parent: SpanContext | None, raw: Any) -> tuple[str, int | None]:
    """Design §4 in one place: (correlation ID, trace id to use for the root span or None).

    ``parent`` is the span context the request already has (from traceparent, or a server
    span started before us); None or invalid means there is none. The second value is None
    when that parent decides the trace id.
    """
    cid = parse_correlation_id(raw)
    if parent is not None and parent.is_valid:
        return (cid if cid is not None else trace_id_to_uuid(parent.trace_id)), None
    if cid is not None:
        return cid, trace_id_for_correlation_id(cid)
    trace_id = new_trace_id()
    return trace_id_to_uuid(trace_id), trace_id


def context_with(cid: str, pending_trace_id: int | None, ctx: Context | None = None) -> Context:
    """``ctx`` with the correlation ID and (or without) a pending trace id for the root span."""
    ctx = otel_context.set_value(CORRELATION_ID_KEY, cid, ctx)
    return otel_context.set_value(PENDING_TRACE_ID_KEY, pending_trace_id, ctx)


def request_context(
    carrier: Any,
    getter: Any,
    header: str,
    trust: bool = True,
) -> tuple[str, Context | None]:
    """For the middlewares: the request's correlation ID, and a context to attach (or None).

    When the OpenTelemetry instrumentation's extract already ran our propagator, its ID is
    reused (no second parse, no second warning) and there is nothing to attach. Otherwise the
    same rules are applied here: the global propagator's extract (traceparent, baggage), the
    server span if one exists, then :func:`resolve`.

    With ``trust`` False nothing the caller sent is used (:func:`distrusted_context`); an ID our
    propagator made under the same policy is reused.
    """
    from opentelemetry import propagate

    current = otel_context.get_current()
    existing = current.get(CORRELATION_ID_KEY)
    if isinstance(existing, str) and (trust or current.get(INCOMING_KEY) is not None):
        return existing, None
    raw = getter.get(carrier, header)
    if not trust:
        return _distrusted_request(carrier, getter, current, raw)
    ctx = current
    span_context = trace.get_current_span(current).get_span_context()
    if not span_context.is_valid:  # else a server span exists (instrumentation without our propagator)
        ctx = clean_remote_parent(propagate.extract(carrier, context=current, getter=getter))
        found = ctx.get(CORRELATION_ID_KEY)
        # Reuse what a global lumen propagator found, unless it read another header than
        # this middleware was told to (then the middleware's header decides).
        if isinstance(found, str) and (raw is None or parse_correlation_id(raw, warn=False) == found):
            return found, ctx
        span_context = trace.get_current_span(ctx).get_span_context()
    cid, pending = resolve(span_context if span_context.is_valid else None, raw)
    return cid, context_with(cid, pending, ctx)


_warned_followed_parent = False


def _incoming_trace_id(raw_traceparent: Any) -> int | None:
    if raw_traceparent is None:
        return None
    text = _joined(raw_traceparent).strip(" \t").lower()
    return int(text[3:35], 16) if _TRACEPARENT.fullmatch(text) else None


def _distrusted_request(carrier: Any, getter: Any, current: Context, raw: Any) -> tuple[str, Context]:
    """:func:`request_context` when incoming IDs are not trusted and our propagator did not run."""
    traceparent = getter.get(carrier, _TRACEPARENT_HEADER)
    span = trace.get_current_span(current)
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return distrusted_context(current, raw, traceparent)
    # A server span started before this middleware by a framework or instrumentation that used
    # another propagator (FastAPI's own telemetry, the API's default propagators...).
    attributes = incoming_attributes(raw, traceparent)
    from opentelemetry import baggage

    ctx = baggage.clear(current) if baggage.get_all(current) else current
    if span_context.trace_id != _incoming_trace_id(traceparent):
        # its own new trace: the ID names it, as for a request that came with nothing
        cid = trace_id_to_uuid(span_context.trace_id)
        ctx = otel_context.set_value(CORRELATION_ID_KEY, cid, ctx)
    else:
        # It follows the caller's traceparent and cannot be re-parented now. The request's work
        # (log lines, the spans it starts, outgoing calls) moves to a new trace of its own; that
        # span keeps the caller's trace and says which ID the request got.
        _warn_followed_parent()
        cid, ctx = distrusted_context(trace.set_span_in_context(trace.INVALID_SPAN, ctx), None, None)
    with contextlib.suppress(Exception):
        span.set_attributes({"correlation_id": cid, **attributes})
    return cid, otel_context.set_value(INCOMING_KEY, attributes, ctx)


def _warn_followed_parent() -> None:
    global _warned_followed_parent  # noqa: PLW0603 - one warning per process
    if _warned_followed_parent:
        return
    _warned_followed_parent = True
    with contextlib.suppress(Exception):
        _logger.warning(
            "LUMEN_TRUST_INCOMING_IDS=false, but the server span was started with the caller's "
            "traceparent before lumen-otel's middleware ran; the request's logs and spans get a new "
            "trace, that span stays in the caller's. Install lumen-otel's propagator (bootstrap(), or "
            "list lumen_correlation in OTEL_PROPAGATORS) to start the server span in a new trace."
        )


def _incoming(parent_context: Context | None) -> dict[str, str] | None:
    value = otel_context.get_value(INCOMING_KEY, parent_context)
    return value if isinstance(value, dict) and value else None


def _enter(cid: str, ctx: Context | None) -> Callable[[], None]:
    """Make ``cid`` (and ``ctx``) current; returns the function that undoes it."""
    cid_token = _correlation_id.set(cid)
    ctx_token = otel_context.attach(ctx) if ctx is not None else None

    def leave() -> None:
        if ctx_token is not None:
            otel_context.detach(ctx_token)
        _correlation_id.reset(cid_token)

    return leave


#: (correlation id, trace id, span id, flags) of the request that ended last in this context: a WSGI
#: worker thread, or the asyncio task uvicorn runs one request in.
FinishedRequest = tuple[str | None, str | None, str | None, int]
_finished_request: ContextVar[FinishedRequest | None] = ContextVar("lumen_finished_request", default=None)


def record_finished_request(cid: str | None, span_context: SpanContext | None = None) -> None:
    """Remember the ids of the request that ends now, for the lines its server writes after it.

    Called by the middlewares as they leave a request, sampled or not (the SDK calls no span
    processor for a span it did not sample), and by :class:`CorrelationIdSpanProcessor` when a
    server span ends. ``span_context`` defaults to the current span's.
    """
    if span_context is None:
        span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        finished: FinishedRequest = (
            cid,
            format(span_context.trace_id, "032x"),
            format(span_context.span_id, "016x"),
            int(span_context.trace_flags),
        )
    elif cid is not None:
        finished = (cid, None, None, 0)
    else:
        return
    _finished_request.set(finished)


def record_response(span: trace.Span, *_: Any) -> None:
    """The Django instrumentation's ``response_hook``: :func:`record_finished_request` for the server span.

    The hook runs for every request the instrumentation traces, sampled or not, also in apps that
    do not use lumen-otel's middleware (the ID is then the one the propagator found). A request the
    middleware already recorded keeps the middleware's ID.
    """
    span_context = span.get_span_context()
    finished = _finished_request.get()
    if finished is not None and finished[2] == format(span_context.span_id, "016x"):
        return
    record_finished_request(get_correlation_id(), span_context)


def forget_finished_request() -> None:
    """A new request starts here: what the previous one left is no longer about this thread or task."""
    if _finished_request.get() is not None:
        _finished_request.set(None)


def take_finished_request(*, keep: bool = False) -> FinishedRequest | None:
    """The ids of the request that just ended here, once (then forgotten, unless ``keep``).

    Servers log some lines *after* the request's context is gone: gunicorn's, uvicorn's and Django
    ``runserver``'s access lines, Django's ``Not Found`` lines, uvicorn's ``Exception in ASGI
    application``. Nothing runs in between on that thread or task (no ``await``), so the request
    that ended last is that line's request, and the line can still be found by its correlation and
    trace IDs. ``keep``: a line that comes before the access line (Django's ``Not Found``).
    """
    finished = _finished_request.get()
    if finished is not None and not keep:
        _finished_request.set(None)
    return finished


class CorrelationIdSpanProcessor(SpanProcessor):
    """Puts ``correlation_id`` on server, consumer and local root spans when they start.

    With a caller's own ``traceparent`` *and* header (the first row of the mapping) the trace id and
    the ID are unrelated; the attribute lets a tracing backend find the trace by the ID too. When
    incoming IDs are not trusted, the caller's values go on the same spans as
    ``lumen.incoming.correlation_id`` / ``lumen.incoming.traceparent``.
    """

    _KINDS = frozenset({trace.SpanKind.SERVER, trace.SpanKind.CONSUMER})

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        parent = span.parent
        if span.kind in self._KINDS or parent is None or parent.is_remote:
            cid = get_correlation_id()
            if cid is None and parent_context is not None:
                value = parent_context.get(CORRELATION_ID_KEY)
                cid = value if isinstance(value, str) else None
            if cid is not None:
                span.set_attribute("correlation_id", cid)
            incoming = _incoming(parent_context)
            if incoming is not None:
                span.set_attributes(incoming)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if span.kind is not trace.SpanKind.SERVER or ctx is None:
            return
        finished = _finished_request.get()
        if finished is not None and finished[2] == format(ctx.span_id, "016x"):
            return  # a middleware recorded this request as it left it: its correlation ID stands
        cid = (span.attributes or {}).get("correlation_id")
        record_finished_request(cid if isinstance(cid, str) else None, ctx)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@contextmanager
def correlation_scope(cid: str | None = None, *, span_name: str = "correlation_scope") -> Iterator[str]:
    """Run a job, script or message handler under one correlation ID and a matching trace.

    Sets ``cid`` (validated like an incoming header; None or invalid makes a new one) as the
    current correlation ID and starts a root span whose trace id is mapped from it exactly as
    for a request (a UUID gives its 128 bits, other values the first 16 bytes of their
    SHA-256, a new ID is the trace id itself). Log records inside carry the ID and the trace
    and span ids; outgoing httpx calls send ``traceparent`` and ``X-Correlation-ID``.

    The scope is a new unit of work: inside a request it starts a new trace.

    Example::

        with correlation_scope(message.headers.get("X-Correlation-ID")) as cid:
            logger.info("processing")     # correlation_id == cid

    Yields:
        The correlation ID in effect.
    """
    value, pending = resolve(None, cid)
    # A root: no current span, so the span below takes the pending trace id.
    ctx = trace.set_span_in_context(trace.INVALID_SPAN, otel_context.get_current())
    leave = _enter(value, context_with(value, pending, ctx))
    try:
        tracer = trace.get_tracer("lumen_otel")
        with tracer.start_as_current_span(
            span_name,
            kind=trace.SpanKind.INTERNAL,
            attributes={"correlation_id": value},
        ):
            yield value
    finally:
        leave()
