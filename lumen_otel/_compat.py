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
import math
import os
import time
from collections.abc import Callable, ItemsView, Mapping
from dataclasses import dataclass, field, replace
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
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter, LogRecordExportResult

__all__ = [
    "DIRECT_RECORDS",
    "MAX_RETRY_AFTER",
    "MISCONFIGURED_STATUSES",
    "OK",
    "RETRYABLE_STATUSES",
    "WIRE_ENCODERS",
    "ApiLogRecord",
    "ConsoleLogRecordExporter",
    "ExportOutcome",
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
    "classify_http",
    "count_emitted_log",
    "encode_upstream_log",
    "encode_upstream_span",
    "encoded_instrumentation_scope",
    "encoded_resource",
    "exporter_endpoint",
    "exporter_is_shut_down",
    "exporter_sessions",
    "finish_processor",
    "get_logger_provider",
    "grpc_log_exporter",
    "is_proxy_provider",
    "log_record_processors",
    "otlp_span_kind",
    "post_serialized",
    "readable_log_record",
    "retry_window",
    "set_clean_attributes",
    "set_logger_provider",
    "shutdown_processors",
    "signal_processor_stop",
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


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """What one export attempt came to.

    ``kind`` is ``"ok"`` (the collector took the batch), ``"retry"`` (it may take it later:
    ``reason`` is ``unreachable``, ``timeout``, ``busy`` (408/429/500/502/503/504),
    ``misconfigured`` (401/403/404/407: an endpoint or credentials an operator fixes) or
    ``error``; ``retry_after`` the seconds the collector asked for, if it did) or ``"permanent"``
    (it never will: ``reason`` is ``rejected``, ``too_large`` or ``unencodable``; ``status`` the
    HTTP status). ``size`` is the encoded request's size in bytes when it was encoded; it is not
    part of the outcome's equality."""

    kind: str
    reason: str = ""
    status: int | None = None
    retry_after: float | None = None
    size: int | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


OK = ExportOutcome("ok")
#: statuses a later attempt can get past: the OTLP/HTTP spec's retryable ones, 408, and 500 (a
#: collector's transient fault must not cost an audit log its lines)
RETRYABLE_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
#: statuses that say the endpoint or the credentials are wrong: kept and retried (bounded by the
#: queue) while an operator fixes them, with a loud warning naming the status and the endpoint
MISCONFIGURED_STATUSES = frozenset((401, 403, 404, 407))
#: the longest ``Retry-After`` honoured, seconds (a collector asking for an hour is waited for this)
MAX_RETRY_AFTER = 30.0


def classify_http(
    status: int | None, error: Exception | None, headers: Any, connection_error: bool
) -> ExportOutcome:
    """The outcome of one HTTP attempt from its status (``None``: no answer), error and headers."""
    if status is not None and 200 <= status < 400:
        return OK
    if status is None:
        if error is not None and "timeout" in type(error).__name__.lower():
            return ExportOutcome("retry", "timeout")
        return ExportOutcome("retry", "unreachable" if connection_error or error is None else "error")
    if status in RETRYABLE_STATUSES:
        return ExportOutcome("retry", "busy", status, _retry_after(headers))
    if status in MISCONFIGURED_STATUSES:
        return ExportOutcome("retry", "misconfigured", status)
    return ExportOutcome("permanent", "too_large" if status == 413 else "rejected", status)


def exporter_endpoint(exporter: Any) -> str | None:
    """The URL an OTLP/HTTP exporter posts to (its ``_endpoint``, checked on 1.45.1), to name it
    in a warning about the status it answered; ``None`` when it does not say."""
    endpoint = getattr(exporter, "_endpoint", None)
    return endpoint if isinstance(endpoint, str) else None


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` (delay-seconds or an HTTP-date) in seconds, capped at :data:`MAX_RETRY_AFTER`."""
    try:
        value = headers.get("retry-after") if headers is not None else None
    except Exception:  # noqa: BLE001 - an odd headers object: no hint
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        import time

        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def post_serialized(
    exporter: Any,
    count: int,
    encode: Callable[[], bytes],
    what: str,
    logger: logging.Logger,
) -> ExportOutcome | None:
    """The upstream OTLP/HTTP exporters' ``export`` (checked on 1.45.1) around an encoding step of
    our own: their self-metrics, compression, TLS and headers, and **one** attempt
    (``_client._submit``, checked on 1.45.1: upstream's ``_client.export`` retries inside with
    1, 2, 4 s backoffs, which the caller's own backoff replaces). Without ``_submit`` the attempt
    is ``_client.export`` (its retries included), classified by the status it gives. ``None``
    when the exporter lacks the parts (``_metrics``, ``_client``): the caller then uses the
    upstream ``export`` as it is.

    The request-size check is our own (upstream's helper is private): a request larger than the
    exporter's ``max_request_size`` is not sent (``too_large``); one that cannot be encoded is
    ``unencodable``.
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
            return ExportOutcome("permanent", "unencodable")
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
            return ExportOutcome("permanent", "too_large", size=len(serialized))
        outcome = _one_attempt(client, serialized)
        if not outcome.ok:
            outcome = replace(outcome, size=len(serialized))
            result.error = _ExportFailed(
                f"{what} export: {outcome.kind} ({outcome.reason}, status {outcome.status})"
            )
            status = outcome.status
            result.error_attrs = {"http.response.status_code": status} if status is not None else None
    return outcome


def _one_attempt(client: Any, serialized: bytes) -> ExportOutcome:
    submit = getattr(client, "_submit", None)
    compress = getattr(client, "_compress", None)
    timeout = getattr(client, "_timeout", None)
    transport = getattr(client, "_transport", None)
    if submit is None or compress is None or not isinstance(timeout, (int, float)):
        exported = client.export(serialized)  # upstream's retries included
        if exported.success:
            return OK
        status = getattr(exported, "status_code", None)
        return classify_http(status, getattr(exported, "error", None), None, False)
    try:
        response = submit(compress(serialized), float(timeout))
    except Exception as raised:  # noqa: BLE001 - the transport returns its errors; this is a surprise
        return classify_http(None, raised, None, False)
    status = getattr(response, "status_code", None)
    error = getattr(response, "error", None)
    is_connection_error = getattr(transport, "is_connection_error", None)
    connection = error is not None and is_connection_error is not None and bool(is_connection_error(error))
    headers_of = getattr(response, "headers", None)
    try:
        headers = headers_of() if callable(headers_of) else headers_of
    except Exception:  # noqa: BLE001
        headers = None
    return classify_http(status, error, headers, connection)


def retry_window(exporter: Any) -> tuple[float, Callable[[float], bool]]:
    """How long an exporter's caller may keep retrying one batch (its client's ``_timeout``,
    checked on 1.45.1; 10 s without it), and a wait that returns early, ``True``, once the
    exporter is shut down (its client's ``_shutdown_event``; without it, a plain sleep)."""
    client = getattr(exporter, "_client", None)
    timeout = getattr(client, "_timeout", None)
    window = float(timeout) if isinstance(timeout, (int, float)) else 10.0
    event = getattr(client, "_shutdown_event", None)
    if event is not None and callable(getattr(event, "wait", None)):
        return window, lambda seconds: bool(event.wait(seconds))

    def sleep(seconds: float) -> bool:
        import time

        time.sleep(seconds)
        return False

    return window, sleep


class _ExportFailed(Exception):
    """The error the exporter's self-metrics record for an attempt that did not deliver."""


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


# ---------------------------------------------------------------- shutting processors down


def shutdown_processors(provider: Any) -> list[Any]:
    """The log processors and span batch processors of ``provider`` (metric readers: their own
    ``shutdown`` takes the timeout). Span batch processors are reached through
    ``_active_span_processor._span_processors`` and ``BatchSpanProcessor._batch_processor``
    (checked on 1.45.1); without those names there are none, and the provider's own ``shutdown``
    stops them (without a deadline of ours)."""
    found: list[Any] = list(log_record_processors(provider) or ())
    active = getattr(provider, "_active_span_processor", None)
    for span_processor in getattr(active, "_span_processors", ()):
        batch = getattr(span_processor, "_batch_processor", None)
        if batch is not None:
            found.append(batch)
    return found


def signal_processor_stop(processor: Any, deadline: float) -> None:
    """Tell ``processor``'s export thread to do its last export now. lumen's processor has
    ``begin_shutdown``; the SDK's ``BatchProcessor.shutdown`` is split in two here (``_shutdown``,
    ``_worker_awaken``, checked on 1.45.1): stop and wake the worker, then wait for it in
    :func:`finish_processor`."""
    stop = getattr(processor, "begin_shutdown", None)
    if stop is not None:
        stop(deadline)
        return
    if hasattr(processor, "_worker_awaken") and not getattr(processor, "_shutdown", True):
        processor._shutdown = True
        processor._worker_awaken.set()
        processor._lumen_signalled = True


def finish_processor(processor: Any, deadline: float) -> None:
    """Wait (until ``deadline``) for a processor signalled by :func:`signal_processor_stop`, or
    shut it down with the time left (``_pid``, ``_worker_thread``, ``_shutdown_timeout_exceeded``
    and ``_exporter`` of the SDK's BatchProcessor, checked on 1.45.1)."""
    remaining = max(0.0, deadline - time.monotonic())
    if getattr(processor, "_lumen_signalled", False):
        processor._lumen_signalled = False
        if processor._pid == os.getpid():
            processor._worker_thread.join(remaining)
        processor._shutdown_timeout_exceeded = True
        processor._exporter.shutdown()
        return
    shutdown = processor.shutdown
    try:
        shutdown(timeout_millis=int(remaining * 1000))
    except TypeError:
        shutdown()


def exporter_sessions(handle: Any) -> list[Any]:
    """The requests sessions of the exporters ``handle`` set up (``_exporter`` of processors and
    metric readers, ``_metric_readers``, ``exporter._client._transport._session`` on the 1.45.1
    OTLP/HTTP exporters, ``exporter._session`` before); those that cannot be reached are left."""
    exporters: list[Any] = []
    for provider in (handle.logger_provider, handle.tracer_provider):
        for processor in shutdown_processors(provider) if provider is not None else ():
            exporters.append(getattr(processor, "_exporter", None))
    for reader in getattr(handle.meter_provider, "_metric_readers", ()) or ():
        exporters.append(getattr(reader, "_exporter", None))
    sessions = []
    for exporter in exporters:
        inner = getattr(exporter, "_exporter", exporter)  # RedactingSpanExporter wraps the real one
        transport = getattr(getattr(inner, "_client", None), "_transport", None)
        session = getattr(transport, "_session", None) or getattr(inner, "_session", None)
        if session is not None and hasattr(session, "close"):
            sessions.append(session)
    return sessions
