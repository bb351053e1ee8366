"""Redaction for spans: a SpanExporter wrapper that exports redacted copies.

A span carries PHI as easily as a log line: ``http.url``/``url.full``/``url.query`` with
``?mrn=``, a span name built from a path (``GET /patients/12345``), an exception event whose
message names a patient, an attribute set by application code (``patient.ssn``). Finished spans
(``ReadableSpan``) are immutable, so the exporter builds new ``ReadableSpan`` objects with the
name, attributes, events, links and status description redacted, and hands those to the real
exporter. Ids, times, kind, resource and scope are carried over untouched, as are the dropped
counts. Resource attributes (service name, host) are never redacted.

``tracestate`` is exported with every span (and its links) and arrives from callers: an entry
whose value the redactor would change (``vendor=ssn:123-45-6789``, ``acme=patient Sarah
Murphy``), or whose key names PHI (``mrn=97727665``), is dropped; the clean, W3C-valid entries
are kept in their order (:func:`redact_trace_state`). The propagator applies the same filter
to what it extracts and injects, so such entries are not forwarded either.

Wiring (bootstrap does this)::

    exporter = RedactingSpanExporter(OTLPSpanExporter(...), redactor)
    provider.add_span_processor(BatchSpanProcessor(exporter))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, Status
from opentelemetry.trace.span import TraceState

from lumen_otel._redaction import Redactor, get_default_redactor

__all__ = ["RedactingSpanExporter", "redact_span", "redact_span_context", "redact_trace_state"]


def _entry_is_phi(redactor: Redactor, key: str, value: str) -> bool:
    if redactor.key_kind(key) is not None or redactor.redact_value(value) != value:
        return True
    pair = f"{key}={value}"  # label rules: "mrn=..." inside a vendor's value
    return redactor.redact_text(pair) != pair


def redact_trace_state(trace_state: TraceState, redactor: Redactor) -> TraceState:
    """``trace_state`` without the entries the redactor would flag; the same object when all are clean."""
    if not trace_state:
        return trace_state
    items = list(trace_state.items())
    kept = [(key, value) for key, value in items if not _entry_is_phi(redactor, key, value)]
    if len(kept) == len(items):
        return trace_state
    return TraceState(kept)


def redact_span_context(context: SpanContext, redactor: Redactor) -> SpanContext:
    """``context`` with its ``tracestate`` filtered by :func:`redact_trace_state` (itself when clean)."""
    trace_state = context.trace_state
    if not trace_state:
        return context
    cleaned = redact_trace_state(trace_state, redactor)
    if cleaned is trace_state:
        return context
    return SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=context.is_remote,
        trace_flags=context.trace_flags,
        trace_state=cleaned,
    )


def _unchanged(attributes: Mapping[str, Any] | None, redacted: Mapping[str, Any]) -> bool:
    return not attributes or all(redacted[key] is value for key, value in attributes.items())


def _attributes(
    redactor: Redactor, attributes: Mapping[str, Any] | None, dropped: int = 0
) -> BoundedAttributes:
    redacted = redactor.redact_mapping(attributes) if attributes else {}
    return _bounded_attributes(redacted, dropped)


def _bounded_attributes(redacted: Mapping[str, Any], dropped: int) -> BoundedAttributes:
    bounded = BoundedAttributes(maxlen=None, attributes=redacted, immutable=True, max_value_len=None)
    bounded.dropped = dropped
    return bounded


def _bounded(items: list[Any], dropped: int) -> BoundedList:  # type: ignore[type-arg]
    out: BoundedList = BoundedList.from_seq(None, items)  # type: ignore[type-arg]
    out.dropped = dropped
    return out


def redact_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """A copy of ``span`` with its name, attributes, events, links, status description and
    ``tracestate`` redacted.

    Most spans hold nothing to redact (``GET /items/{item_id}``, a method, a route, a status
    code): then ``span`` itself is returned, without building a copy.
    """
    name = redactor.redact_value(span.name)
    attributes = redactor.redact_mapping(span.attributes) if span.attributes else {}
    status = span.status
    description = redactor.redact_value(status.description) if status.description else status.description
    context = redact_span_context(span.context, redactor) if span.context is not None else span.context
    if (
        name is span.name
        and context is span.context
        and description is status.description
        and not span.events
        and not span.links
        and _unchanged(span.attributes, attributes)
    ):
        return span
    events = [
        Event(
            redactor.redact_text(e.name),
            _attributes(redactor, e.attributes, getattr(e, "dropped_attributes", 0)),
            e.timestamp,
            limit=None,
        )
        for e in span.events
    ]
    links = [
        Link(
            redact_span_context(link.context, redactor),
            _attributes(redactor, link.attributes, getattr(link, "dropped_attributes", 0)),
        )
        for link in span.links
    ]
    if description is not status.description:
        status = Status(status.status_code, description)
    return ReadableSpan(
        name=name,
        context=context,
        parent=span.parent,
        resource=span.resource,
        attributes=_bounded_attributes(attributes, span.dropped_attributes),
        events=_bounded(events, span.dropped_events),
        links=_bounded(links, span.dropped_links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps a span exporter so that only redacted copies of spans leave the process.

    Args:
        exporter: the real exporter (OTLP, console, in-memory...).
        redactor: the redactor to use; by default the process-wide one at export time, so a key
            configured later by ``configure_logging`` applies.
    """

    __slots__ = ("_exporter", "_redactor")

    def __init__(self, exporter: SpanExporter, redactor: Redactor | None = None) -> None:
        self._exporter = exporter
        self._redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redactor = self._redactor or get_default_redactor()
        return self._exporter.export([redact_span(span, redactor) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
