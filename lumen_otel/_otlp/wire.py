"""OTLP protobuf, written directly: the pieces log records and spans share.

The upstream encoders build a protobuf object for every record or span, every attribute and
every value in Python, then serialise them; grouping by resource also hashes the ``Resource``
(a JSON dump of its attributes) once per item. Here the common shapes are written straight in
the wire format and resources and scopes are serialised once (by the upstream encoder, so the
bytes match). Whatever an encoder here does not write raises :class:`Unsupported`, and that one
item goes to the upstream encoder: the output is always byte-for-byte upstream's
(``tests/test_otlp_wire.py`` compares them).
"""

from __future__ import annotations

import functools
import logging
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from lumen_otel import _native
from lumen_otel._compat import (
    WIRE_ENCODERS,
    ExportOutcome,
    attribute_items,
    encoded_instrumentation_scope,
    encoded_resource,
    post_serialized,
    retry_window,
)
from lumen_otel._guard import report_rate_limited

_Result = TypeVar("_Result")

__all__ = [
    "Unsupported",
    "attribute_entries",
    "clean_attributes",
    "clean_text",
    "clean_value",
    "delimited",
    "encode_request",
    "export_encoded",
    "export_outcome",
    "native_attribute_entries",
    "pack_fixed32",
    "pack_fixed64",
    "python_attribute_entries",
    "report_permanent",
    "varint",
]

pack_fixed64 = struct.Struct("<Q").pack
pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack
_ONE_BYTE = [bytes((i,)) for i in range(128)]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def varint(value: int) -> bytes:
    if value < 128:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


class Unsupported(Exception):
    """A value these encoders do not write: the item goes to the upstream encoder."""


def any_value(value: Any) -> bytes:
    """``AnyValue`` (its one-of fields are written even when they hold the default)."""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode("utf-8")
        return b"\x0a" + varint(len(data)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise Unsupported
        return b"\x18" + varint(value if value >= 0 else value + 2**64)
    if kind is float:
        return b"\x21" + _pack_double(value)
    raise Unsupported


#: encoded attribute entries by (tag, key, type, value): code.*, route, status, http.* and the like
#: repeat on nearly every item. The type is part of the key (``True == 1``); floats are not kept.
_ENTRIES: dict[tuple[bytes, str, type, Any], bytes] = {}
_ENTRIES_MAX = 4096
_ENTRY_VALUE_MAX = 256


def _attribute(tag: bytes, key: Any, value: Any) -> bytes:
    """One repeated ``KeyValue`` field under ``tag``."""
    if type(key) is not str or not key:
        raise Unsupported
    name = key.encode("utf-8")
    entry = b"\x0a" + varint(len(name)) + name + delimited(b"\x12", any_value(value))
    return tag + varint(len(entry)) + entry


def python_attribute_entries(
    tag: bytes, attributes: Mapping[str, Any] | None, add: Callable[[bytes], None]
) -> None:
    """Append one ``KeyValue`` field under ``tag`` per attribute (the reference for
    :func:`native_attribute_entries`)."""
    if not attributes:
        return
    entries = _ENTRIES
    for key, value in attribute_items(attributes):
        kind = type(value)
        cache_key = (tag, key, kind, value) if kind is str or kind is int or kind is bool else None
        entry = entries.get(cache_key) if cache_key is not None else None
        if entry is None:
            entry = _attribute(tag, key, value)
            if cache_key is not None and len(value if kind is str else "") <= _ENTRY_VALUE_MAX:
                if len(entries) >= _ENTRIES_MAX:
                    entries.clear()  # bounded: endless distinct values are simply re-encoded
                entries[cache_key] = entry
        add(entry)


def native_attribute_entries(
    tag: bytes, attributes: Mapping[str, Any] | None, add: Callable[[bytes], None]
) -> None:
    """:func:`python_attribute_entries` by the native accelerator: the same fields, appended as
    one ``bytes`` (the message joins them either way), and the same exceptions."""
    if attributes:
        add(_native_entries(tag, attribute_items(attributes), Unsupported))


_native_entries: Any = getattr(_native.accelerator, "attribute_entries", None)
#: the attribute encoder the log and span encoders use: native when the accelerator is on
attribute_entries = python_attribute_entries if _native_entries is None else native_attribute_entries


@functools.lru_cache(maxsize=64)
def _resource_bytes(resource: Any) -> bytes:
    """A service has one resource: serialised once (upstream's encoder, so the same bytes)."""
    return encoded_resource(resource)


@functools.lru_cache(maxsize=4096)
def _scope_bytes(scope: Any) -> bytes:
    """One instrumentation scope per logger or tracer name: serialised once."""
    return encoded_instrumentation_scope(scope)


def encode_request(
    items: Sequence[Any], encode: Callable[[Any], bytes], upstream: Callable[[Any], bytes]
) -> bytes:
    """An ``Export{Logs,Trace}ServiceRequest``: items grouped by resource, then scope, in the
    order upstream's encoders group them. ``encode`` gives one item's message bytes; an item it
    does not write (:class:`Unsupported`, or a field of an unexpected type) gets ``upstream``'s."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    # Grouped by equal resources, as upstream's dict does; each distinct Resource object is
    # hashed (a JSON dump) once, not once per item.
    by_identity: dict[int, dict[Any, list[bytes]]] = {}
    for item in items:
        resource = item.resource
        scopes = by_identity.get(id(resource))
        if scopes is None:
            scopes = grouped.get(resource)
            if scopes is None:
                scopes = grouped[resource] = {}
            by_identity[id(resource)] = scopes
        scope = item.instrumentation_scope or None
        encoded = scopes.get(scope)
        if encoded is None:
            encoded = scopes[scope] = []
        try:
            message = encode(item)
        except UnicodeEncodeError:
            # text UTF-8 cannot hold (a lone surrogate): upstream's encoder would leave such an
            # attribute out (logging a traceback), so the batch fails here and is sent again with
            # the text made encodable (``export_outcome``)
            raise
        except (Unsupported, AttributeError, TypeError, ValueError, OverflowError, KeyError):
            message = upstream(item)
        encoded.append(delimited(b"\x12", message))
    out: list[bytes] = []
    for resource, scopes in grouped.items():
        body = [delimited(b"\x0a", _resource_bytes(resource))]
        for scope, encoded in scopes.items():
            scope_part = [delimited(b"\x0a", _scope_bytes(scope)), *encoded]
            schema_url = scope.schema_url if scope is not None else None
            if schema_url:
                scope_part.append(delimited(b"\x1a", schema_url.encode("utf-8")))
            body.append(delimited(b"\x12", b"".join(scope_part)))
        if resource.schema_url:
            body.append(delimited(b"\x1a", resource.schema_url.encode("utf-8")))
        out.append(delimited(b"\x0a", b"".join(body)))
    return b"".join(out)


def export_encoded(
    exporter: Any,
    items: Sequence[Any],
    encode: Callable[[Sequence[Any]], bytes],
    outcomes: tuple[_Result, _Result],
    what: str,
    logger: logging.Logger,
    upstream_export: Callable[[Sequence[Any]], _Result],
    sanitize: Callable[[Any], Any] | None = None,
) -> _Result:
    """The upstream OTLP/HTTP exporter's ``export`` with ``encode`` as its encoding step: the same
    self-metrics, size check, TLS and headers, one attempt (:func:`export_outcome`). ``outcomes``
    is (success, failure) of the signal's result enum; ``what`` names the batch as upstream's
    messages do ("logs", "span"). Where that step cannot be borrowed, ``upstream_export`` (the
    exporter's own, with upstream's encoder) sends the batch."""
    success, failure = outcomes
    outcome = export_outcome(exporter, items, encode, what, logger, sanitize)
    if outcome is None:
        return upstream_export(items)
    if outcome.kind == "retry":
        # the SDK's span processor does not retry: as upstream's client did, retry here within the
        # exporter's timeout (1, 2, 4 s, or the collector's Retry-After), then give the batch up
        window, wait = retry_window(exporter)
        deadline = time.monotonic() + window
        backoff = 1.0
        while outcome is not None and outcome.kind == "retry":
            pause = outcome.retry_after if outcome.retry_after is not None else backoff
            if time.monotonic() + pause > deadline or wait(pause):
                break
            backoff *= 2
            outcome = export_outcome(exporter, items, encode, what, logger, sanitize)
        if outcome is None:
            return failure
        if outcome.kind == "retry":
            logger.error(
                "Failed to export %s batch (%s): gave up after the exporter's timeout", what, outcome.reason
            )
    if outcome.kind == "permanent":
        report_permanent(what, len(items), outcome)
    return success if outcome.ok else failure


def export_outcome(
    exporter: Any,
    items: Sequence[Any],
    encode: Callable[[Sequence[Any]], bytes],
    what: str,
    logger: logging.Logger,
    sanitize: Callable[[Any], Any] | None = None,
) -> ExportOutcome | None:
    """One export attempt of ``items``, classified; ``None`` where the export step cannot be
    borrowed (the caller uses the exporter's own ``export``).

    A batch whose text cannot be encoded (lone surrogates: what ``json.loads('"\\ud800"')``
    gives) is encoded again with each item through ``sanitize`` (lone surrogates become U+FFFD):
    only that batch pays for the pass, clean batches keep upstream's bytes."""
    if not WIRE_ENCODERS:
        return None

    def encoded() -> bytes:
        try:
            return encode(items)
        except ValueError:  # UnicodeEncodeError, from our encoder or upstream's
            if sanitize is None:
                raise
        data = encode([sanitize(item) for item in items])
        report_rate_limited(
            f"otlp-{what}-sanitized",
            "OTLP %s batch held text that is not valid Unicode (lone surrogates): sent with U+FFFD "
            "in their place",
            what,
        )
        return data

    return post_serialized(exporter, len(items), encoded, what, logger)


_PERMANENT_WHY = {
    "rejected": "the collector rejected it (HTTP %s): it would reject it again",
    "too_large": "it is larger than the collector or max_request_size allows (HTTP %s)",
    "unencodable": "it could not be encoded (HTTP %s: not sent)",
}


def report_permanent(what: str, count: int, outcome: ExportOutcome) -> None:
    """The rate-limited warning for a batch dropped because no retry could deliver it."""
    report_rate_limited(
        f"otlp-{what}-{outcome.reason}",
        "OTLP %s batch of %d dropped (%s), "
        + _PERMANENT_WHY.get(outcome.reason, "HTTP %s")
        + "; later batches are sent",
        what,
        count,
        outcome.reason,
        outcome.status if outcome.status is not None else "-",
    )


_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate (unencodable in UTF-8) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def clean_value(value: Any) -> Any:
    """A body or attribute value with its strings (mapping keys too) through :func:`clean_text`."""
    kind = type(value)
    if kind is str:
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return kind(clean_value(v) for v in value)
    return value


def clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if attributes is None:
        return None
    return {clean_value(k): clean_value(v) for k, v in attribute_items(attributes)}
