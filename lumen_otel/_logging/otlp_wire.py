"""OTLP/protobuf for log records, written straight from the SDK records.

The upstream encoder (``encode_logs``) builds a protobuf object for every record, every
attribute and every value in Python before serialising them: about 32 µs a record on our
2-core VM, more than the rest of the pipeline spends on a record's way to the export thread.
A log record from the bridge has a string body and string, bool, int or float attributes, and
those shapes are written here directly in the wire format. Anything else in a record (a list
or mapping value, a non-string body, an out-of-range int) is left to the upstream encoder for
that record, so the bytes are always the ones ``encode_logs(batch).SerializeToString()`` gives
(``tests/test_otlp_wire.py`` compares them). Resources and scopes are encoded upstream, once.
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import _encode_log
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

__all__ = ["WireLogExporter", "encode_logs_request"]

#: the upstream exporter's own logger: its messages keep their source
_upstream_logger = logging.getLogger(OTLPLogExporter.__module__)
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack
_ONE_BYTE = [bytes((i,)) for i in range(128)]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _varint(value: int) -> bytes:
    if value < 128:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class _Unsupported(Exception):
    """A value this encoder does not write: the record goes to the upstream encoder."""


def _any_value(value: Any) -> bytes:
    """``AnyValue`` (its one-of fields are written even when they hold the default)."""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode("utf-8")
        return b"\x0a" + _varint(len(data)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unsupported
        return b"\x18" + _varint(value if value >= 0 else value + 2**64)
    if kind is float:
        return b"\x21" + _pack_double(value)
    raise _Unsupported


#: encoded attribute entries by (key, type, value): code.*, route, status and the like repeat on
#: nearly every record. The type is part of the key (``True == 1``); floats are not kept.
_ENTRIES: dict[tuple[str, type, Any] | None, bytes] = {}
_ENTRIES_MAX = 4096
_ENTRY_VALUE_MAX = 256


def _attribute(key: Any, value: Any) -> bytes:
    """One ``attributes`` entry of a ``LogRecord``: field 6, a ``KeyValue``."""
    if type(key) is not str or not key:
        raise _Unsupported
    name = key.encode("utf-8")
    entry = b"\x0a" + _varint(len(name)) + name + _delimited(b"\x12", _any_value(value))
    return b"\x32" + _varint(len(entry)) + entry


def _log_record(readable: ReadableLogRecord) -> bytes:
    """One ``LogRecord`` message, fields in number order, defaults left out (proto3)."""
    record = readable.log_record
    body = record.body
    if type(body) is not str or readable.dropped_attributes:
        raise _Unsupported
    parts: list[bytes] = []
    add = parts.append
    if record.timestamp:
        add(b"\x09" + _pack_fixed64(record.timestamp))
    severity = getattr(record.severity_number, "value", None)
    if severity:
        add(b"\x10" + _varint(severity))
    if record.severity_text:
        text = record.severity_text.encode("utf-8")
        add(b"\x1a" + _varint(len(text)) + text)
    add(_delimited(b"\x2a", _any_value(body)))
    entries = _ENTRIES
    attributes: Mapping[str, Any] = record.attributes or {}
    for key, value in attributes.items():
        kind = type(value)
        cache_key = (key, kind, value) if kind is str or kind is int or kind is bool else None
        entry = entries.get(cache_key) if cache_key is not None else None
        if entry is None:
            entry = _attribute(key, value)
            if cache_key is not None and len(value if kind is str else "") <= _ENTRY_VALUE_MAX:
                if len(entries) >= _ENTRIES_MAX:
                    entries.clear()  # bounded: endless distinct values are simply re-encoded
                entries[cache_key] = entry
        add(entry)
    flags = int(record.trace_flags) if record.trace_flags else 0
    if flags:
        add(b"\x45" + _pack_fixed32(flags))
    if record.trace_id:
        add(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        add(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    if record.observed_timestamp:
        add(b"\x59" + _pack_fixed64(record.observed_timestamp))
    if record.event_name:
        name = record.event_name.encode("utf-8")
        add(b"\x62" + _varint(len(name)) + name)
    return b"".join(parts)


def _encoded_log_record(readable: ReadableLogRecord) -> bytes:
    try:
        return _log_record(readable)
    except (_Unsupported, AttributeError, TypeError, ValueError, OverflowError):
        return _encode_log(readable).SerializeToString()  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=64)
def _resource_bytes(resource: Any) -> bytes:
    """A service has one resource: serialised once (upstream's encoder, so the same bytes)."""
    return _encode_resource(resource).SerializeToString()  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=4096)
def _scope_bytes(scope: Any) -> bytes:
    """One instrumentation scope per logger name: serialised once."""
    return _encode_instrumentation_scope(scope).SerializeToString()  # type: ignore[no-any-return]


def encode_logs_request(batch: Sequence[ReadableLogRecord]) -> bytes:
    """``ExportLogsServiceRequest`` bytes for ``batch``, grouped as the upstream encoder groups."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    # Grouped by equal resources, as upstream's dict does; a Resource hashes by dumping its
    # attributes to JSON, so each distinct object is looked up once, not once per record.
    by_identity: dict[int, dict[Any, list[bytes]]] = {}
    for readable in batch:
        resource = readable.resource
        scopes = by_identity.get(id(resource))
        if scopes is None:
            scopes = grouped.get(resource)
            if scopes is None:
                scopes = grouped[resource] = {}
            by_identity[id(resource)] = scopes
        scope = readable.instrumentation_scope or None
        records = scopes.get(scope)
        if records is None:
            records = scopes[scope] = []
        records.append(_delimited(b"\x12", _encoded_log_record(readable)))
    out: list[bytes] = []
    for resource, scopes in grouped.items():
        body = [_delimited(b"\x0a", _resource_bytes(resource))]
        for scope, records in scopes.items():
            scope_logs = [_delimited(b"\x0a", _scope_bytes(scope)), *records]
            schema_url = scope.schema_url if scope is not None else None
            if schema_url:
                scope_logs.append(_delimited(b"\x1a", schema_url.encode("utf-8")))
            body.append(_delimited(b"\x12", b"".join(scope_logs)))
        if resource.schema_url:
            body.append(_delimited(b"\x1a", resource.schema_url.encode("utf-8")))
        out.append(_delimited(b"\x0a", b"".join(body)))
    return b"".join(out)


class WireLogExporter(OTLPLogExporter):
    """The upstream OTLP/HTTP log exporter with :func:`encode_logs_request` as its encoder.

    ``export`` is the upstream one (SDK 1.45, pinned) with the encoding step swapped: the same
    size check, self-metrics, retries, TLS and headers, the same bytes on the wire.
    """

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shutdown:
            return super().export(batch)  # the upstream warning and FAILURE
        with self._metrics.export_operation(len(batch)) as result:
            try:
                serialized = encode_logs_request(batch)
            except Exception as error:  # noqa: BLE001 - as upstream: a failed encode fails the batch
                _upstream_logger.error("Failed to encode logs batch: %s", error)
                result.error = error
                return LogRecordExportResult.FAILURE
            if _is_request_too_large(serialized, self._max_request_size):
                _upstream_logger.warning(
                    "Dropping logs batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(serialized),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized logs request size {len(serialized)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes."
                )
                return LogRecordExportResult.FAILURE
            export_result = self._client.export(serialized)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return LogRecordExportResult.FAILURE
        return LogRecordExportResult.SUCCESS
