"""OTLP/HTTP log export with log records written straight in the wire format.

A log record from the bridge has a string body and string, bool, int or float attributes; those
are written here (``lumen_otel._otlp.wire``), anything else in a record goes to the upstream
encoder for that record. The bytes are always ``encode_logs(batch).SerializeToString()``'s
(``tests/test_otlp_wire.py``), at about a fifth of its cost.
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
from lumen_otel._otlp.wire import (
    Unsupported,
    any_value,
    attribute_entries,
    clean_attributes,
    clean_text,
    clean_value,
    delimited,
    encode_request,
    export_encoded,
    export_outcome,
    pack_fixed32,
    pack_fixed64,
    varint,
)

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


class WireLogExporter(HttpLogExporter):
    """The upstream OTLP/HTTP log exporter with :func:`encode_logs_request` as its encoder.

    ``export`` is the upstream one with the encoding step swapped: the same size check,
    self-metrics, retries, TLS and headers, the same bytes on the wire.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if exporter_is_shut_down(self):
            return super().export(batch)  # the upstream warning and FAILURE
        outcomes = (LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE)
        return export_encoded(
            self,
            batch,
            encode_logs_request,
            outcomes,
            "logs",
            _upstream_logger,
            super().export,
            sanitized_log,
        )

    def export_outcome(self, batch: Sequence[ReadableLogRecord]) -> ExportOutcome:
        """One attempt at ``batch``, classified (ok / retry / permanent): what
        :class:`~lumen_otel._otlp.processor.ResilientLogProcessor` decides its backoff and drops
        by. Where the export step cannot be borrowed, the upstream ``export``'s SUCCESS is ok and
        its FAILURE a retry (it cannot say more)."""
        if not exporter_is_shut_down(self):
            outcome = export_outcome(
                self, batch, encode_logs_request, "logs", _upstream_logger, sanitized_log
            )
            if outcome is not None:
                return outcome
        if super().export(batch) is LogRecordExportResult.SUCCESS:
            return OK
        return ExportOutcome("retry", "error")
