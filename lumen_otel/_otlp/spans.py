"""OTLP/HTTP span export with spans written straight in the wire format.

Spans without events or links and with scalar attributes (nearly every server and client
span) are written here (``lumen_otel._otlp.wire``); any other span goes to the upstream encoder
for that span. The bytes are always ``encode_spans(batch).SerializePartialToString()``'s
(``tests/test_otlp_wire.py``). The export thread encodes on the service's GIL, so a cheaper
encoder is less time the request path waits for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Link, Status

from lumen_otel._compat import encode_upstream_span, otlp_span_kind, span_fields
from lumen_otel._otlp.exporters import WireSignal, wire_export
from lumen_otel._otlp.wire import (
    Unsupported,
    attribute_entries,
    clean_attributes,
    clean_text,
    delimited,
    encode_request,
    pack_fixed32,
    pack_fixed64,
    varint,
)

__all__ = ["WireSpanExporter", "encode_spans_request"]

_upstream_logger = logging.getLogger(OTLPSpanExporter.__module__)
_CONTEXT_HAS_IS_REMOTE = 0x100  # SpanFlags: the OTLP span flags upstream always sets
_CONTEXT_IS_REMOTE = 0x200
_FLAGS_FIELD = b"\x85\x01"  # field 16, fixed32


def _span(span: ReadableSpan) -> bytes:
    """One ``Span`` message, fields in number order, defaults left out (proto3)."""
    events, links, attributes = span_fields(span)
    if events or links:
        raise Unsupported
    context = span.get_span_context()
    if context is None:
        raise Unsupported
    parts: list[bytes] = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    add = parts.append
    if context.trace_state:
        state = ",".join(f"{key}={value}" for key, value in context.trace_state.items()).encode("utf-8")
        add(b"\x1a" + varint(len(state)) + state)
    parent = span.parent
    if parent:
        add(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    name = span.name.encode("utf-8")
    if name:
        add(b"\x2a" + varint(len(name)) + name)
    kind = otlp_span_kind(span.kind)
    if kind:
        add(b"\x30" + varint(kind))
    if span.start_time:
        add(b"\x39" + pack_fixed64(span.start_time))
    if span.end_time:
        add(b"\x41" + pack_fixed64(span.end_time))
    attribute_entries(b"\x4a", attributes, add)
    for tag, count in (
        (b"\x50", span.dropped_attributes),
        (b"\x60", span.dropped_events),
        (b"\x70", span.dropped_links),
    ):
        if count:
            add(tag + varint(count))
    status = span.status
    status_parts = []
    if status.description:
        message = status.description.encode("utf-8")
        status_parts.append(b"\x12" + varint(len(message)) + message)
    if status.status_code.value:
        status_parts.append(b"\x18" + varint(status.status_code.value))
    add(delimited(b"\x7a", b"".join(status_parts)))
    flags = _CONTEXT_HAS_IS_REMOTE | (_CONTEXT_IS_REMOTE if parent is not None and parent.is_remote else 0)
    add(_FLAGS_FIELD + pack_fixed32(flags))
    return b"".join(parts)


def encode_spans_request(spans: Sequence[ReadableSpan]) -> bytes:
    """``ExportTraceServiceRequest`` bytes for ``spans``, grouped as the upstream encoder groups."""
    return encode_request(spans, _span, encode_upstream_span)


def sanitized_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` (public constructors) whose name, status description, attributes,
    event names and attributes and link attributes have lone surrogates replaced by U+FFFD."""
    status = span.status
    return ReadableSpan(
        name=clean_text(span.name),
        context=span.get_span_context(),
        parent=span.parent,
        resource=span.resource,
        attributes=clean_attributes(span.attributes),
        events=[
            Event(clean_text(event.name), clean_attributes(event.attributes), event.timestamp)
            for event in span.events
        ],
        links=[Link(link.context, clean_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(status.status_code, clean_text(status.description) if status.description else None),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class WireSpanExporter(OTLPSpanExporter):
    """The upstream OTLP/HTTP span exporter with :func:`encode_spans_request` as its encoder.

    ``export`` is the upstream one with the encoding step swapped: the same size check,
    self-metrics, retries, TLS and headers, the same bytes on the wire.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return wire_export(self, spans, super().export, _SIGNAL)


_SIGNAL = WireSignal(
    encode_spans_request,
    (SpanExportResult.SUCCESS, SpanExportResult.FAILURE),
    "span",
    _upstream_logger,
    sanitized_span,
)
