"""OTLP/HTTP log export with log records written straight in the wire format.

A log record from the bridge has a string body and string, bool, int or float attributes; those
are written here (``lumen_otel._otlp.wire``), anything else in a record goes to the upstream
encoder for that record. The bytes are always ``encode_logs(batch).SerializeToString()``'s
(``tests/test_otlp_wire.py``), at about a fifth of its cost.

The records' bodies and attributes were redacted on the caller's thread; their resource is
redacted here, as spans' and metrics' are (:meth:`AttributeScrubber.resource`, once per resource).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence

from lumen_otel._compat import (
    OK,
    ExportOutcome,
    HttpLogExporter,
    LogRecordExportResult,
    ReadableLogRecord,
    encode_upstream_log,
    exporter_is_shut_down,
)
from lumen_otel._otlp.exporters import WireSignal, wire_export
from lumen_otel._otlp.wire import (
    Unsupported,
    any_value,
    attribute_entries,
    clean_attributes,
    clean_text,
    clean_value,
    delimited,
    encode_request,
    export_outcome,
    pack_fixed32,
    pack_fixed64,
    varint,
)
from lumen_otel._redaction import get_default_redactor
from lumen_otel._redaction.spans import scrubber_for

__all__ = ["WireLogExporter", "encode_logs_request"]

#: the upstream exporter's own logger: its messages keep their source
_upstream_logger = logging.getLogger(HttpLogExporter.__module__)


def _log_record(readable: ReadableLogRecord) -> bytes:
    """One ``LogRecord`` message, fields in number order, defaults left out (proto3)."""
    record = readable.log_record
    body = record.body
    if type(body) is not str or readable.dropped_attributes:
        raise Unsupported
    parts: list[bytes] = []
    add = parts.append
    if record.timestamp:
        add(b"\x09" + pack_fixed64(record.timestamp))
    severity = getattr(record.severity_number, "value", None)
    if severity:
        add(b"\x10" + varint(severity))
    if record.severity_text:
        text = record.severity_text.encode("utf-8")
        add(b"\x1a" + varint(len(text)) + text)
    add(delimited(b"\x2a", any_value(body)))
    attribute_entries(b"\x32", record.attributes, add)
    flags = int(record.trace_flags) if record.trace_flags else 0
    if flags:
        add(b"\x45" + pack_fixed32(flags))
    if record.trace_id:
        add(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        add(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    if record.observed_timestamp:
        add(b"\x59" + pack_fixed64(record.observed_timestamp))
    if record.event_name:
        name = record.event_name.encode("utf-8")
        add(b"\x62" + varint(len(name)) + name)
    return b"".join(parts)


def encode_logs_request(batch: Sequence[ReadableLogRecord]) -> bytes:
    """``ExportLogsServiceRequest`` bytes for ``batch``, grouped as the upstream encoder groups."""
    return encode_request(batch, _log_record, encode_upstream_log)


def sanitized_log(readable: ReadableLogRecord) -> ReadableLogRecord:
    """A copy of ``readable`` whose body, attribute keys and values, severity text and event name
    have lone surrogates replaced by U+FFFD (the record itself is left as it is)."""
    record = copy.copy(readable.log_record)
    record.body = clean_value(record.body)
    record.attributes = clean_attributes(record.attributes)
    if record.severity_text:
        record.severity_text = clean_text(record.severity_text)
    if record.event_name:
        record.event_name = clean_text(record.event_name)
    return dataclasses.replace(readable, log_record=record)


def redacted_resources(batch: Sequence[ReadableLogRecord]) -> Sequence[ReadableLogRecord]:
    """``batch``, with copies of the records whose resource holds PHI (``OTEL_RESOURCE_ATTRIBUTES``
    is the operator's text) pointing at its redacted copy; ``batch`` itself when all are clean."""
    scrub = scrubber_for(get_default_redactor())
    out: list[ReadableLogRecord] | None = None
    for i, readable in enumerate(batch):
        resource = scrub.resource(readable.resource)
        if resource is not readable.resource:
            if out is None:
                out = list(batch)
            out[i] = dataclasses.replace(readable, resource=resource)
    return batch if out is None else out


class WireLogExporter(HttpLogExporter):
    """The upstream OTLP/HTTP log exporter with :func:`encode_logs_request` as its encoder.

    ``export`` is the upstream one with the encoding step swapped: the same size check,
    self-metrics, retries, TLS and headers, the same bytes on the wire.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return wire_export(self, redacted_resources(batch), super().export, _SIGNAL)

    def export_outcome(self, batch: Sequence[ReadableLogRecord]) -> ExportOutcome:
        """One attempt at ``batch``, classified (ok / retry / permanent): what
        :class:`~lumen_otel._otlp.processor.ResilientLogProcessor` decides its backoff and drops
        by. Where the export step cannot be borrowed, the upstream ``export``'s SUCCESS is ok and
        its FAILURE a retry (it cannot say more)."""
        batch = redacted_resources(batch)
        if not exporter_is_shut_down(self):
            outcome = export_outcome(
                self, batch, _SIGNAL.encode, _SIGNAL.what, _SIGNAL.logger, _SIGNAL.sanitize
            )
            if outcome is not None:
                return outcome
        if super().export(batch) is LogRecordExportResult.SUCCESS:
            return OK
        return ExportOutcome("retry", "error")


_SIGNAL = WireSignal(
    encode_logs_request,
    (LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE),
    "logs",
    _upstream_logger,
    sanitized_log,
)
