"""The ``X-Correlation-ID`` propagator, its installation, and the response-header echo.

How a correlation ID becomes the server span's trace id
-------------------------------------------------------
When a request carries no ``traceparent``, the mapping wants the server span's trace id to be
derived from ``X-Correlation-ID`` (a UUID's own bits, else SHA-256) or freshly generated.
``extract`` cannot create the server span, so the derived id has to reach the SDK some other
way. Two ways were considered:

1. **A remote, non-recording parent** whose trace id is the derived one. Works with any
   tracer provider, but invents a parent span id that no service ever recorded: every trace
   shows a "missing parent", the server span is never a root, and ``ParentBased`` sampling
   would follow a sampled flag we made up.
2. **A pending trace id read by the id generator** (chosen). ``extract`` puts the derived id
   in the OpenTelemetry context (:data:`~lumen_otel._correlation.trace_ids.PENDING_TRACE_ID_KEY`)
   and leaves the current span empty; :class:`~lumen_otel.tracing.UuidTraceIdGenerator` returns
   that id when the SDK asks for the trace id of a new root span. The server span is a true root, and the
   root sampler (ratio on the random 56 bits) decides, deterministically from the trace id,
   so every legacy hop that forwards only the header makes the same sampling decision.

Trade-offs of (2): it needs the SDK tracer provider built with ``UuidTraceIdGenerator``
(bootstrap and the distro do that); with another id generator the server span gets a random
trace id and only the log correlation survives. The generator reads the *current* context,
so it works with instrumentations that attach the extracted context before starting the span
(the contrib helper ``_start_internal_or_server_span`` used by ASGI, WSGI, Django, Flask...
does); one that passes the extracted context to ``start_span`` without attaching it gets a
fresh trace id. Every root span started while the request's context is current (e.g. with
no server span, under the middleware alone) joins the request's trace.

Installing
----------
Under ``opentelemetry-instrument`` the global propagator is built before any distro runs, so
:func:`install_propagators` replaces it with ``set_global_textmap()`` unless the user chose
``OTEL_PROPAGATORS``. ``lumen_correlation`` must come after the trace-context propagators in
such a list: it reads the span context they extracted.

Trust policy and tracestate
---------------------------
With ``LUMEN_TRUST_INCOMING_IDS=false`` ``extract`` ignores what the caller sent: it runs after the
trace-context and baggage propagators, so it drops the remote parent span and the baggage they
extracted, makes a new correlation ID and trace id (the last row of the mapping) and leaves the
caller's ``X-Correlation-ID`` and ``traceparent`` in the context
(:data:`~lumen_otel._correlation.context.INCOMING_KEY`) for
:class:`~lumen_otel._correlation.context.CorrelationIdSpanProcessor` to record as
``lumen.incoming.*`` attributes of the server span. The trace-context propagator
:func:`install_propagators` installs (:class:`RedactingTraceContextPropagator`, W3C level 2
parsing in :mod:`lumen_otel._correlation.w3c`) drops the ``tracestate`` entries the redactor
would flag on ``extract``, so the server span does not inherit them, and again on ``inject``
(:func:`~lumen_otel._redaction.spans.redact_trace_state`); when trusting, ``extract`` here
cleans a remote parent some other propagator extracted the same way.

Response header, once
---------------------
:func:`install_response_propagator` registers a response propagator with the instrumentations
(ASGI/FastAPI/Starlette and Django call it; plain WSGI has no such hook: use the Django
middleware or your framework's). The hook and the middlewares both *set* the header, replacing
any copy already on the response (the other one's, or one the application copied from an
upstream response), so whichever runs first, the header is there exactly once and always names
this request's ID.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators import textmap
from opentelemetry.propagators.textmap import CarrierT, Getter, Setter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lumen_otel._correlation.context import (
    CORRELATION_ID_KEY,
    DEFAULT_HEADER,
    clean_remote_parent,
    context_with,
    distrusted_context,
    get_correlation_id,
    resolve,
    trust_from_env,
)
from lumen_otel._correlation.trace_ids import trace_id_to_uuid
from lumen_otel._correlation.w3c import remote_span_context, traceparent_header
from lumen_otel.exceptions import ConfigError

__all__ = [
    "CorrelationIdPropagator",
    "CorrelationIdResponsePropagator",
    "RedactingTraceContextPropagator",
    "httpx_event_hooks",
    "install_propagators",
    "install_response_propagator",
    "outgoing_headers",
]

_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", re.ASCII)
EXPOSE_HEADERS = "Access-Control-Expose-Headers"


def header_from_env(header: str | None = None) -> str:
    """``header``, else the header lumen-otel is set up with, else ``LUMEN_CORRELATION_HEADER``,
    else ``X-Correlation-ID`` (validated).

    The set-up's value already merged ``bootstrap(correlation_header=...)`` and the variable, so
    the middlewares, the httpx hooks and the propagator agree on one name. An explicit ``header``
    that differs from the set-up's is used as asked (an edge service may read a client's header
    of its own) with one warning: the propagator still reads and sends the set-up's header.
    """
    from lumen_otel._state import STATE

    handle = STATE.handle
    active = handle.settings.correlation_header if handle is not None else None
    name = "header"
    if header is None:
        if active is not None:
            return active
        name = "LUMEN_CORRELATION_HEADER"
        header = os.environ.get(name, "").strip() or DEFAULT_HEADER
    if not _HEADER_NAME.fullmatch(header):
        raise ConfigError(name, header, "an HTTP header name (letters, digits, '-'; at most 64)")
    if handle is not None and active is not None and header.lower() != active.lower():
        import logging

        from lumen_otel._guard import report_once

        report_once(
            f"correlation-header:{header.lower()}",
            "correlation header %r was given explicitly, but lumen-otel is set up with %r (%s): "
            "incoming and outgoing propagation use %r, this component uses %r",
            header,
            active,
            handle.settings.sources.get("correlation_header", "default"),
            active,
            header,
            level=logging.WARNING,
        )
    return header


def _correlation_id_in(context: Context | None) -> str | None:
    """The ID to send: the context's, else the current one, else its span's trace id as a UUID."""
    if context is None:
        cid = get_correlation_id()
    else:
        value = context.get(CORRELATION_ID_KEY)
        cid = value if isinstance(value, str) else None
    if cid is not None:
        return cid
    span_context = trace.get_current_span(context).get_span_context()
    # The receiver would derive exactly this ID from our traceparent; sending it lets hops
    # that forward only the legacy header land in the same trace.
    return trace_id_to_uuid(span_context.trace_id) if span_context.is_valid else None


def _already_set(carrier: Any, header: str) -> bool:
    if not isinstance(carrier, Mapping):
        return False
    try:  # httpx.Headers and similar are case-insensitive; plain dicts are tried in both cases
        return bool(carrier.get(header) or carrier.get(header.lower()))
    except Exception:  # noqa: BLE001 - an odd carrier: just inject
        return False


class CorrelationIdPropagator(TextMapPropagator):
    """Carries the correlation ID in ``X-Correlation-ID`` and maps it onto trace context.

    ``extract`` applies the mapping: with a valid ``traceparent`` (already extracted by the
    trace-context propagator before this one), the span context stays and the correlation ID
    is the header or the trace id as a UUID; without one, the trace id of the coming server
    span is derived from the header (or made new) and handed to the id generator. The ID is
    kept in the OpenTelemetry context, where :func:`lumen_otel.get_correlation_id` finds it.

    ``inject`` writes the current correlation ID (the span's trace id as a UUID when there is
    none but a span exists), unless the outgoing request already has the header.

    With incoming IDs not trusted (``trust_incoming_ids=False``, or ``LUMEN_TRUST_INCOMING_IDS=false``)
    ``extract`` uses none of the caller's trace context, baggage or ID: see the module docstring.

    Args:
        header: header name; default ``LUMEN_CORRELATION_HEADER`` or ``X-Correlation-ID``.
        trust_incoming_ids: default bootstrap's setting, else ``LUMEN_TRUST_INCOMING_IDS``, else true.
    """

    def __init__(self, header: str | None = None, trust_incoming_ids: bool | None = None) -> None:
        self.header = header_from_env(header)
        self._lower = self.header.lower()
        self._explicit_trust = trust_incoming_ids
        # checked now: a bad LUMEN_TRUST_INCOMING_IDS fails start-up, not a request
        self._env_trust = trust_from_env() if trust_incoming_ids is None else trust_incoming_ids

    @property
    def trusts_incoming_ids(self) -> bool:
        if self._explicit_trust is not None:
            return self._explicit_trust
        from lumen_otel._state import STATE

        handle = STATE.handle  # bootstrap(trust_incoming_ids=...) after this propagator was built
        return handle.settings.trust_incoming_ids if handle is not None else self._env_trust

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = textmap.default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        raw = getter.get(carrier, self.header)
        if raw is None and self._lower != self.header:
            raw = getter.get(carrier, self._lower)  # plain dicts of lower-cased (HTTP/2) names
        if not self.trusts_incoming_ids:
            return distrusted_context(context, raw, getter.get(carrier, "traceparent"))[1]
        context = clean_remote_parent(context)
        span_context = trace.get_current_span(context).get_span_context()
        cid, pending = resolve(span_context if span_context.is_valid else None, raw)
        return context_with(cid, pending, context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = textmap.default_setter,
    ) -> None:
        if _already_set(carrier, self.header):
            return  # the caller set it explicitly on this request: theirs wins
        cid = _correlation_id_in(context)
        if cid is not None:
            setter.set(carrier, self.header, cid)

    @property
    def fields(self) -> set[str]:
        return {self.header}


class RedactingTraceContextPropagator(TraceContextTextMapPropagator):
    """W3C trace context (level 2) that drops the ``tracestate`` members the redactor would flag.

    ``extract`` parses with :mod:`lumen_otel._correlation.w3c` rather than the API's parser: a
    repeated ``traceparent`` starts a new trace whether the server passed the lines separately
    (ASGI) or joined them (WSGI), a repeated ``tracestate`` key keeps its first value instead of
    losing the whole header, keys follow the current grammar (``@`` anywhere after the first
    character), and no rejected value is logged. A member whose key or value the PHI redactor
    would change is dropped on the way in and again on the way out (a span's tracestate can also
    be set by code), so it is neither forwarded nor exported; the other members keep their order.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = textmap.default_getter,
    ) -> Context:
        if context is None:
            context = Context()
        traceparent = getter.get(carrier, "traceparent")
        if not traceparent:
            return context
        parent = remote_span_context(traceparent, getter.get(carrier, "tracestate"))
        if parent is None:
            return context
        return trace.set_span_in_context(NonRecordingSpan(_without_phi(parent)), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = textmap.default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(carrier, "traceparent", traceparent_header(span_context))
        trace_state = _without_phi(span_context).trace_state
        if trace_state:
            setter.set(carrier, "tracestate", trace_state.to_header())


def _without_phi(span_context: SpanContext) -> SpanContext:
    if not span_context.trace_state:
        return span_context
    from lumen_otel._redaction import get_default_redactor
    from lumen_otel._redaction.spans import redact_span_context

    return redact_span_context(span_context, get_default_redactor())


class RedactingBaggagePropagator(W3CBaggagePropagator):
    """W3C baggage without the entries the redactor would flag, on the way in and on the way out.

    Baggage is forwarded on every outgoing call, so an entry a caller filled with PHI
    (``patient_name=Sarah%20Murphy``, ``ssn=...``) would otherwise travel from service to service;
    code can also set baggage itself. Values are checked as sent and percent-decoded.
    """

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = textmap.default_getter,
    ) -> Context:
        extracted = super().extract(carrier, context, getter)
        cleaned = _without_phi_baggage(extracted)
        return extracted if cleaned is None else cleaned

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = textmap.default_setter,
    ) -> None:
        super().inject(carrier, _without_phi_baggage(context), setter)


def _without_phi_baggage(context: Context | None) -> Context | None:
    entries = baggage.get_all(context)
    if not entries:
        return context
    from lumen_otel._redaction import get_default_redactor
    from lumen_otel._redaction.spans import entry_is_phi

    redactor = get_default_redactor()
    flagged = [key for key, value in entries.items() if entry_is_phi(redactor, key, str(value))]
    for key in flagged:
        context = baggage.remove_baggage(key, context)
    return context


# ---------------------------------------------------------------- installation


def install_propagators(header: str, trust_incoming_ids: bool | None = None) -> None:
    """Make tracecontext + baggage + correlation the global propagator, unless the user chose.

    With ``OTEL_PROPAGATORS`` set (``lumen_correlation`` is then theirs to list) nothing is
    changed: the SDK built that list already.
    """
    if os.environ.get("OTEL_PROPAGATORS", "").strip():
        return
    from opentelemetry.propagators.composite import CompositePropagator

    propagate.set_global_textmap(
        CompositePropagator(
            [
                RedactingTraceContextPropagator(),
                RedactingBaggagePropagator(),
                CorrelationIdPropagator(header, trust_incoming_ids),
            ]
        )
    )


def _has_name(value: str, name: str) -> bool:
    lowered = name.lower()
    return any(part.strip().lower() in (lowered, "*") for part in value.split(","))


def merge_expose(existing: str | None, header: str) -> str:
    """An ``Access-Control-Expose-Headers`` value that lists ``header`` once."""
    if not existing or not existing.strip():
        return header
    return existing if _has_name(existing, header) else f"{existing}, {header}"


def set_asgi_headers(headers: Sequence[Any], header: str, cid: str) -> list[Any]:
    """ASGI response headers with ``header: cid`` exactly once, and ``header`` exposed to CORS."""
    raw_name = header.lower().encode("latin-1")
    expose_name = EXPOSE_HEADERS.lower().encode("latin-1")
    result: list[Any] = []
    expose_value: str | None = None
    for key, value in headers:
        lowered = bytes(key).lower()
        if lowered == raw_name:
            continue
        if lowered == expose_name:
            joined = bytes(value).decode("latin-1")
            expose_value = joined if expose_value is None else f"{expose_value}, {joined}"
            continue
        result.append((key, value))
    result.append((raw_name, cid.encode("latin-1")))
    result.append((expose_name, merge_expose(expose_value, header).encode("latin-1")))
    return result


class CorrelationIdResponsePropagator:
    """Echoes the correlation ID on server responses through the instrumentations' hook.

    Implements ``opentelemetry.instrumentation.propagators.ResponsePropagator``. Knows the
    carriers the instrumentations pass: ASGI ``http.response.start``/``websocket.accept``
    messages and Django ``HttpResponse`` objects; others go through the given setter.
    """

    def __init__(self, header: str | None = None) -> None:
        self.header = header_from_env(header)

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        # The ASGI instrumentation passes a fresh context holding only the server span, so
        # read the ID from the current context (the request's) and fall back to the span.
        cid = get_correlation_id() or _correlation_id_in(context)
        if cid is None:
            return
        if isinstance(carrier, MutableMapping) and "type" in carrier:
            if carrier["type"] not in ("http.response.start", "websocket.accept"):
                return
            carrier["headers"] = set_asgi_headers(list(carrier.get("headers") or ()), self.header, cid)
            return
        if hasattr(carrier, "has_header") and hasattr(carrier, "headers"):  # Django HttpResponse
            carrier[self.header] = cid  # replaces any copy: exactly one
            carrier[EXPOSE_HEADERS] = merge_expose(carrier.get(EXPOSE_HEADERS), self.header)
            return
        if setter is not None:
            setter.set(carrier, self.header, cid)
            setter.set(carrier, EXPOSE_HEADERS, self.header)


class _CompositeResponsePropagator:
    def __init__(self, propagators: Iterable[Any]) -> None:
        self.propagators = tuple(propagators)

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        for propagator in self.propagators:
            if setter is None:
                propagator.inject(carrier, context=context)
            else:
                propagator.inject(carrier, context=context, setter=setter)


def install_response_propagator(header: str) -> None:
    """Echo the header on every instrumented server response (kept alongside any other one)."""
    from opentelemetry.instrumentation.propagators import (
        get_global_response_propagator,
        set_global_response_propagator,
    )

    ours = CorrelationIdResponsePropagator(header)
    existing = get_global_response_propagator()  # type: ignore[no-untyped-call]
    if existing is None or isinstance(existing, CorrelationIdResponsePropagator):
        set_global_response_propagator(ours)  # type: ignore[no-untyped-call]
        return
    if isinstance(existing, _CompositeResponsePropagator):
        others = [p for p in existing.propagators if not isinstance(p, CorrelationIdResponsePropagator)]
    else:
        others = [existing]
    set_global_response_propagator(_CompositeResponsePropagator([*others, ours]))  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------- outgoing requests


def outgoing_headers(headers: MutableMapping[str, str], header: str | None = None) -> None:
    """Add ``traceparent`` (when a span is current) and the correlation ID to ``headers``.

    Uses the global propagator, then makes sure the correlation header is there even when
    lumen-otel's propagator is not installed globally (middleware-only set-ups).
    """
    name = header_from_env(header)
    explicit = _already_set(headers, name)
    propagate.inject(headers)
    cid = _correlation_id_in(None)
    if cid is not None and not explicit:
        headers[name] = cid


def httpx_event_hooks(header: str | None = None, *, is_async: bool = False) -> dict[str, list[Any]]:
    """``event_hooks`` for an httpx client that sends the current trace and correlation ID.

    Only needed without ``opentelemetry-instrumentation-httpx`` (bootstrap enables it)::

        client = httpx.Client(event_hooks=httpx_event_hooks())
        client = httpx.AsyncClient(event_hooks=httpx_event_hooks(is_async=True))
    """
    name = header_from_env(header)

    def add(request: Any) -> None:
        outgoing_headers(request.headers, name)

    async def add_async(request: Any) -> None:
        outgoing_headers(request.headers, name)

    return {"request": [add_async if is_async else add]}
