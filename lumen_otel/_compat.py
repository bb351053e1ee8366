"""The one door to OpenTelemetry's private names.

lumen-otel pins OpenTelemetry to one minor release, and everything it takes from upstream
that is not public API comes through this module, each with the versions it was checked on
and a fallback to upstream's public path for when the name is gone. A newer release that
renames one of them costs speed, never correctness: the fallbacks are what the public API
does (``tests/test_compat.py`` runs each of them).

Two groups:

- **Module paths with a leading underscore that are upstream's only home for a public class**:
  the logs signal (``opentelemetry._logs``, ``opentelemetry.sdk._logs``) and the OTLP log
  exporters live there while the signal is in development. They are re-exported here so that
  no other module names them.
- **Private attributes read for speed**: the OTLP encoders for one record or span, the parts of
  an HTTP exporter's ``export`` around its encoding step, a span's fields without their copies,
  a logger provider's processor list and an SDK logger's self-metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, ItemsView, Mapping
from typing import Any

from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber, get_logger_provider, set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs import Logger as SdkLogger
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordLimits,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

__all__ = [
    "DIRECT_RECORDS",
    "WIRE_ENCODERS",
    "ApiLogRecord",
    "HttpLogExporter",
    "LogRecordExportResult",
    "LogRecordExporter",
    "LogRecordLimits",
    "LogRecordProcessor",
    "LoggerProvider",
    "ReadWriteLogRecord",
    "ReadableLogRecord",
    "SdkLogger",
    "SeverityNumber",
    "attribute_items",
    "count_emitted_log",
    "encode_upstream_log",
    "encode_upstream_span",
    "encoded_instrumentation_scope",
    "encoded_resource",
    "exporter_is_shut_down",
    "get_logger_provider",
    "grpc_log_exporter",
    "is_proxy_provider",
    "log_record_processors",
    "otlp_span_kind",
    "post_serialized",
    "readable_log_record",
    "set_clean_attributes",
    "set_logger_provider",
    "span_fields",
]


def grpc_log_exporter() -> type[Any]:
    """The OTLP/gRPC log exporter class (under ``_log_exporter`` up to 1.45, checked on 1.45.1)."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    return OTLPLogExporter


# ---------------------------------------------------------------- encoders (checked on 1.45.1)

try:
    from opentelemetry.exporter.otlp.proto.common._internal import (
        _encode_instrumentation_scope,
        _encode_resource,
    )
    from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import _encode_log
    from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
        _SPAN_KIND_MAP,
        _encode_span,
    )

    #: whether lumen's own OTLP encoders can run: they hand upstream the pieces they do not
    #: write (a resource, a scope, an unusual record), so without these names the exporters use
    #: upstream's whole-batch encoding instead
    WIRE_ENCODERS = True
except ImportError:  # pragma: no cover - exercised by tests/test_compat.py with the names hidden
    WIRE_ENCODERS = False


def encoded_resource(resource: Any) -> bytes:
    return _encode_resource(resource).SerializeToString()  # type: ignore[no-any-return]


def encoded_instrumentation_scope(scope: Any) -> bytes:
    return _encode_instrumentation_scope(scope).SerializeToString()  # type: ignore[no-any-return]


def encode_upstream_log(readable: Any) -> bytes:
    return _encode_log(readable).SerializeToString()  # type: ignore[no-any-return]


def encode_upstream_span(span: Any) -> bytes:
    return _encode_span(span).SerializePartialToString()  # type: ignore[no-any-return]


def otlp_span_kind(kind: Any) -> int:
    return _SPAN_KIND_MAP[kind]


# ---------------------------------------------------------------- an HTTP exporter's export step


def post_serialized(
    exporter: Any,
    count: int,
    encode: Callable[[], bytes],
    what: str,
    logger: logging.Logger,
) -> bool | None:
    """The upstream OTLP/HTTP exporters' ``export`` (checked on 1.45.1) around an encoding step of
    our own: their self-metrics, retries, TLS and headers. ``None`` when the exporter lacks the
    parts (``_metrics``, ``_client``): the caller then uses the upstream ``export`` as it is.

    The request-size check is our own (upstream's helper is private): a request larger than the
    exporter's ``max_request_size`` is not sent.
    """
    metrics = getattr(exporter, "_metrics", None)
    client = getattr(exporter, "_client", None)
    if metrics is None or client is None or not hasattr(metrics, "export_operation"):
        return None
    max_size = getattr(exporter, "_max_request_size", None)
    with metrics.export_operation(count) as result:
        try:
            serialized = encode()
        except Exception as error:  # noqa: BLE001 - as upstream: a failed encode fails the batch
            logger.error("Failed to encode %s batch: %s", what, error)
            result.error = error
            return False
        if max_size is not None and len(serialized) > max_size:
            message = (
                f"Serialized {what} request size {len(serialized)} bytes exceeds max_request_size "
                f"{max_size} bytes."
            )
            logger.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                what,
                len(serialized),
                max_size,
            )
            result.error = RequestTooLargeError(message)
            return False
        outcome = client.export(serialized)
        if not outcome.success:
            result.error = outcome.error
            status = getattr(outcome, "status_code", None)
            result.error_attrs = {"http.response.status_code": status} if status is not None else None
            return False
    return True


def exporter_is_shut_down(exporter: Any) -> bool:
    """Whether an upstream OTLP exporter was shut down (``_shutdown``, checked on 1.45.1); without
    the name, ``False``: its own ``export`` then refuses the batch as it always does."""
    return bool(getattr(exporter, "_shutdown", False))


class RequestTooLargeError(Exception):
    """A serialized request larger than the exporter's ``max_request_size``."""


# ---------------------------------------------------------------- spans and attributes


def span_fields(span: Any) -> tuple[Any, Any, Any]:
    """A ReadableSpan's events, links and attributes without the copies and the read-only proxy
    its properties make (``_events``, ``_links``, ``_attributes``, checked on 1.45.1)."""
    events = span._events if hasattr(span, "_events") else span.events
    links = span._links if hasattr(span, "_links") else span.links
    attributes = getattr(span, "_attributes", None) or span.attributes
    return events, links, attributes


def attribute_items(attributes: Mapping[str, Any]) -> ItemsView[str, Any]:
    """Items of a mapping; for the SDK's ``BoundedAttributes`` those of the plain dict inside it
    (``_dict``, checked on 1.45.1), which iterates without the mapping protocol's Python calls."""
    inner = getattr(attributes, "_dict", None)
    return inner.items() if type(inner) is dict else attributes.items()


def set_clean_attributes(writable: Any, attributes: dict[str, Any]) -> None:
    """Put already-clean attributes under a ``ReadWriteLogRecord``'s ``BoundedAttributes``
    without it validating each value again (``_dict``, checked on 1.45.1). Without the name the
    record keeps the attributes the SDK validated, which are the same values."""
    bounded = writable.log_record.attributes
    if type(getattr(bounded, "_dict", None)) is dict:
        bounded._dict = attributes


# ---------------------------------------------------------------- log records built directly

_API_RECORD_FIELDS = frozenset(
    (
        "timestamp",
        "observed_timestamp",
        "context",
        "trace_id",
        "span_id",
        "trace_flags",
        "severity_text",
        "severity_number",
        "body",
        "attributes",
        "event_name",
        "exception",
    )
)
_READABLE_FIELDS = frozenset(("log_record", "resource", "instrumentation_scope", "limits"))


def _fields_match() -> bool:
    from opentelemetry.sdk.resources import Resource

    try:
        api = ApiLogRecord(timestamp=0, body="")
        readable = ReadableLogRecord(
            log_record=api, resource=Resource.get_empty(), instrumentation_scope=None
        )
    except Exception:  # noqa: BLE001 - another signature: the public constructors are used
        return False
    return set(vars(api)) == _API_RECORD_FIELDS and set(vars(readable)) == _READABLE_FIELDS


#: whether a finished record can be assembled field by field: the record classes hold exactly
#: these instance fields (checked on 1.45.1); otherwise the public constructors build it
DIRECT_RECORDS = _fields_match()
_new_object = object.__new__


def readable_log_record(
    fields: dict[str, Any], resource: Any, scope: Any, limits: LogRecordLimits | None
) -> ReadableLogRecord:
    """The ``ReadableLogRecord`` ``Logger.emit`` would hand its processor, for ``fields`` that are
    already clean (the API record's fields, ``context`` left ``None``: no exporter reads it).

    Assembled without the constructors' work (current-span look-up, attribute re-validation)
    when :data:`DIRECT_RECORDS`; with the public constructors otherwise."""
    if DIRECT_RECORDS:
        api = _new_object(ApiLogRecord)
        api.__dict__.update(fields)
        readable = _new_object(ReadableLogRecord)
        readable.__dict__.update(
            log_record=api, resource=resource, instrumentation_scope=scope, limits=limits
        )
        return readable
    api = ApiLogRecord(**{k: v for k, v in fields.items() if k != "context"})
    return ReadableLogRecord(log_record=api, resource=resource, instrumentation_scope=scope, limits=limits)


# ---------------------------------------------------------------- providers and loggers


def log_record_processors(provider: Any) -> tuple[Any, ...] | None:
    """The processors a LoggerProvider dispatches to (``_multi_log_record_processor.
    _log_record_processors``, checked on 1.45.1), or ``None`` when they cannot be read: then no
    record skips the SDK's own dispatch."""
    multi = getattr(provider, "_multi_log_record_processor", None)
    processors = getattr(multi, "_log_record_processors", None)
    return processors if isinstance(processors, tuple) else None


def count_emitted_log(logger: Any) -> None:
    """The SDK logger's self-metric for one emitted record (``_logger_metrics.emit_log``, checked
    on 1.45.1), for records handed to the processor without ``Logger.emit``."""
    metrics = getattr(logger, "_logger_metrics", None)
    emit_log = getattr(metrics, "emit_log", None)
    if emit_log is not None:
        emit_log()


def is_proxy_provider(provider: Any) -> bool:
    """Whether a global tracer or meter provider is still upstream's placeholder.

    The tracer's is public (``ProxyTracerProvider``); the meter's is not
    (``opentelemetry.metrics._internal._ProxyMeterProvider``, checked on 1.45.1), and without that
    name anything outside the SDK counts as a placeholder."""
    from opentelemetry.trace import ProxyTracerProvider

    if isinstance(provider, ProxyTracerProvider):
        return True
    try:
        from opentelemetry.metrics._internal import _ProxyMeterProvider
    except ImportError:  # pragma: no cover
        return not type(provider).__module__.startswith("opentelemetry.sdk")
    return isinstance(provider, _ProxyMeterProvider)
