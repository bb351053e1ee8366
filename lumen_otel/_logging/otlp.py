"""The OTLP half of the pipeline: stdlib record → OpenTelemetry log record → collector.

Two pieces:

- :class:`OtlpBridge` translates an enriched, redacted record into the OpenTelemetry Logs
  API on the writer thread (never on the caller's).
- :class:`ResilientLogProcessor` replaces the SDK's ``BatchLogRecordProcessor`` because
  that one pops a batch before exporting it: while the collector is down every batch is
  lost and only a log line says so. Here a batch leaves the queue only once the exporter
  accepted it; while exports fail the queue holds what it can (bounded by
  ``LUMEN_OTLP_QUEUE_SIZE``), delivery resumes when the collector returns, and every
  record that could not be kept is counted in ``lumen.log.dropped``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import (
    Logger as SdkLogger,
)
from opentelemetry.sdk._logs import (
    LoggerProvider,
    LogRecordLimits,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
)
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lumen_otel._guard import internal_logger, internal_scope, mark_internal_thread, report_rate_limited
from lumen_otel._logging.formatters import record_to_json

__all__ = ["OtlpBridge", "ResilientLogProcessor"]

DropCounter = Callable[[int, str], None]

_SEVERITY = {
    logging.DEBUG: (SeverityNumber.DEBUG, "DEBUG"),
    logging.INFO: (SeverityNumber.INFO, "INFO"),
    logging.WARNING: (SeverityNumber.WARN, "WARN"),
    logging.ERROR: (SeverityNumber.ERROR, "ERROR"),
    logging.CRITICAL: (SeverityNumber.FATAL, "FATAL"),
}


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    found = _SEVERITY.get(levelno)
    if found is not None:
        return found
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG):
        if levelno >= level:
            return _SEVERITY[level]
    return SeverityNumber.TRACE, "TRACE"


def _attribute_value(value: Any) -> Any:
    """OTLP attributes take primitives: dicts and lists travel as JSON, objects as str."""
    if isinstance(value, (str, bool, int, float)):
        return value if not isinstance(value, int) or -(2**63) <= value < 2**63 else str(value)
    if value is None:
        return "null"
    return record_to_json(value).decode("utf-8").rstrip("\n")


_new_object = object.__new__
_TRACE_FLAGS = {0: TraceFlags(0), 1: TraceFlags(1)}


def _trace_flags(value: int) -> TraceFlags:
    found = _TRACE_FLAGS.get(value)
    return found if found is not None else TraceFlags(value)


#: attribute value types the SDK's ``_clean_attribute_value`` returns unchanged
_CLEAN_TYPES = frozenset((str, int, float, bool))


class OtlpBridge:
    """Translate enriched records and hand them to the SDK logger provider."""

    __slots__ = ("_direct", "_fast_limits", "_loggers", "_processors_seen", "_provider")

    def __init__(self, provider: LoggerProvider) -> None:
        self._provider = provider
        self._loggers: dict[str, tuple[Any, bool, bool]] = {}
        # The provider's limits (private in SDK 1.45, pinned): with them the bridge can build
        # the SDK record itself and skip re-validating attributes it already made clean.
        limits = getattr(provider, "_log_record_limits", None)
        self._fast_limits = limits if isinstance(limits, LogRecordLimits) else None
        self._processors_seen: object = None
        self._direct: ResilientLogProcessor | None = None

    def emit(self, record: logging.LogRecord) -> None:
        cached = self._loggers.get(record.name)
        if cached is None:
            sdk_logger = self._provider.get_logger(record.name)
            prebuilt = isinstance(sdk_logger, SdkLogger)
            # the SDK logger's private parts the direct hand-off reads (SDK 1.45, pinned)
            direct = prebuilt and all(
                hasattr(sdk_logger, name) for name in ("_logger_config", "_logger_metrics")
            )
            cached = self._loggers[record.name] = (sdk_logger, prebuilt, direct)
        logger, prebuild, direct_ok = cached
        attributes: dict[str, Any] = {
            "code.file.path": record.pathname,
            "code.function.name": record.funcName,
            "code.line.number": record.lineno,
        }
        correlation_id = getattr(record, "correlation_id", None)
        if correlation_id is not None:
            attributes["correlation_id"] = correlation_id
        for key, value in (getattr(record, "lumen_extra", None) or {}).items():
            if key not in attributes:
                kind = type(value)  # the common primitives inline; ints need the 64-bit check
                attributes[key] = (
                    value if kind is str or kind is float or kind is bool else _attribute_value(value)
                )
        exception = getattr(record, "lumen_exception", None)
        if exception is not None:
            attributes["exception.type"] = exception["type"]
            attributes["exception.message"] = exception["message"]
            attributes["exception.stacktrace"] = exception["stacktrace"]
        severity_number, severity_text = _severity(record.levelno)
        body = record.msg if isinstance(record.msg, str) else str(record.msg)
        trace_id = getattr(record, "trace_id", None)
        clean = prebuild and self._attributes_are_clean(attributes)
        if clean and direct_ok:
            queue = self._direct_queue(logger)
            if queue is not None:
                queue.enqueue(
                    self._readable(logger, record, trace_id, severity_number, severity_text, body, attributes)
                )
                return
        context: Context | None = None
        if trace_id is not None:
            span_context = SpanContext(
                int(trace_id, 16),
                int(getattr(record, "span_id", None) or "0", 16),
                is_remote=False,
                trace_flags=TraceFlags(getattr(record, "trace_flags", 0)),
            )
            context = trace.set_span_in_context(NonRecordingSpan(span_context), Context())
        if clean:
            self._emit_prebuilt(logger, record, context, severity_number, severity_text, body, attributes)
            return
        logger.emit(
            timestamp=int(record.created * 1e9),
            context=context or Context(),
            severity_number=severity_number,
            severity_text=severity_text,
            body=body,
            attributes=attributes,
        )

    def _direct_queue(self, logger: Any) -> ResilientLogProcessor | None:
        """Our processor, when it is the provider's only one and the logger is enabled: then the
        bridge hands it the finished record and skips the SDK's per-record dispatch."""
        multi = getattr(self._provider, "_multi_log_record_processor", None)
        processors = getattr(multi, "_log_record_processors", None)
        if processors is not self._processors_seen:  # a tuple, replaced whenever one is added
            self._processors_seen = processors
            only = processors[0] if isinstance(processors, tuple) and len(processors) == 1 else None
            self._direct = only if isinstance(only, ResilientLogProcessor) else None
        if self._direct is None or not logger._logger_config.is_enabled:
            return None
        return self._direct

    def _readable(
        self,
        logger: Any,
        record: logging.LogRecord,
        trace_id: str | None,
        severity_number: SeverityNumber,
        severity_text: str,
        body: str,
        attributes: dict[str, Any],
    ) -> ReadableLogRecord:
        """The record ``logger.emit`` would hand its processor, built field by field.

        ``logger.emit`` costs as much as the rest of the bridge: an API record that looks up
        the current span, a read-write record that re-validates the attributes, the SDK's
        processor fan-out, then the processor's frozen copy. Every field is the same (pinned to
        SDK 1.45's record classes; ``tests/test_otlp_bridge.py`` compares the two paths), minus
        ``context``, which no exporter reads: the trace and span ids are fields of their own.
        """
        api_record = _new_object(ApiLogRecord)
        api_record.__dict__.update(
            timestamp=int(record.created * 1e9),
            observed_timestamp=time.time_ns(),
            context=None,
            trace_id=int(trace_id, 16) if trace_id is not None else 0,
            span_id=int(getattr(record, "span_id", None) or "0", 16) if trace_id is not None else 0,
            trace_flags=_trace_flags(getattr(record, "trace_flags", 0) if trace_id is not None else 0),
            severity_text=severity_text,
            severity_number=severity_number,
            body=body,
            attributes=attributes,
            event_name=None,
            exception=None,
        )
        logger._logger_metrics.emit_log()
        readable = _new_object(ReadableLogRecord)
        readable.__dict__.update(
            log_record=api_record,
            resource=logger.resource,
            instrumentation_scope=logger.instrumentation_scope,
            limits=self._fast_limits,
        )
        return readable

    def _attributes_are_clean(self, attributes: dict[str, Any]) -> bool:
        """True when the SDK's attribute cleaning would return ``attributes`` unchanged."""
        limits = self._fast_limits
        if limits is None or "" in attributes:
            return False
        max_count = limits.max_log_record_attributes
        if max_count is not None and len(attributes) > max_count:
            return False
        clean = _CLEAN_TYPES
        max_length = limits.max_log_record_attribute_length
        for value in attributes.values():
            if type(value) not in clean:
                return False
            if max_length is not None and type(value) is str and len(value) > max_length:
                return False
        return True

    def _emit_prebuilt(
        self,
        logger: Any,
        record: logging.LogRecord,
        context: Context | None,
        severity_number: SeverityNumber,
        severity_text: str,
        body: str,
        attributes: dict[str, Any],
    ) -> None:
        """``logger.emit`` with a record built here: the same SDK record, minus the per-value
        re-validation of ``BoundedAttributes`` (two thirds of the SDK's cost per record,
        measured by benchmarks/bench_logging.py) for values :meth:`emit` already made clean."""
        limits = self._fast_limits
        assert limits is not None  # _attributes_are_clean() said so
        api_record = ApiLogRecord(
            timestamp=int(record.created * 1e9),
            context=context or Context(),
            severity_number=severity_number,
            severity_text=severity_text,
            body=body,
        )
        writable = ReadWriteLogRecord(
            log_record=api_record,
            resource=logger.resource,
            instrumentation_scope=logger.instrumentation_scope,
            limits=limits,
        )
        # values already clean: skip BoundedAttributes re-validating each one (SDK 1.45, pinned)
        writable.log_record.attributes._dict = attributes  # type: ignore[union-attr]
        logger.emit(writable)


#: longest the writer thread waits for the export thread to free room while exports succeed
_ROOM_WAIT = 0.5


class ResilientLogProcessor(LogRecordProcessor):
    """Batching processor that keeps records while the collector is away (bounded)."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        max_queue_size: int,
        on_drop: DropCounter,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        # Short on purpose: a refused connection costs nothing, and with a long cap the queue
        # (bounded) fills and drops records while the collector is already back.
        max_backoff: float = 5.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._max_batch_size = min(max_batch_size, max_queue_size)
        self._schedule_delay = schedule_delay
        self._max_backoff = max_backoff
        self._on_drop = on_drop
        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._lock = threading.Lock()  # guards the queue's length check + append
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown = False
        self._failures = 0
        self._congested = False
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- threads ----------------------------------------------------------------------
    def _start_worker(self) -> None:
        self._pid = os.getpid()
        self._worker = threading.Thread(target=self._run, name="lumen-otlp-logs", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        # the parent's queued records are the parent's to send; the child starts clean
        self._queue = collections.deque()
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        if not self._shutdown:
            self._start_worker()

    def _run(self) -> None:
        mark_internal_thread()
        while not self._shutdown:
            self._wake.wait(self._backoff() or self._schedule_delay)
            if self._shutdown:
                break
            self._export_available(deadline=None, full_batches_only=True)
            # cleared after the export: a wake-up asked for during it is about records that
            # batch already carried (the SDK's BatchProcessor does the same)
            self._wake.clear()

    def _backoff(self) -> float:
        if not self._failures:
            return 0.0
        return float(min(self._max_backoff, 0.5 * 2 ** min(self._failures, 10)))

    # -- processor API ----------------------------------------------------------------
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.enqueue(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource or Resource.get_empty(),
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def enqueue(self, readable: ReadableLogRecord) -> None:
        """Queue a finished record (``on_emit`` builds one; the bridge may hand one directly)."""
        if self._shutdown:
            self._on_drop(1, "shutdown")
            return
        full = len(self._queue) >= self._max_queue_size
        if full and self._failures == 0 and not self._congested:
            full = self._wait_for_room()
        with self._lock:
            size = len(self._queue)
            if size >= self._max_queue_size:
                full = True
            else:
                full = False
                self._queue.append(readable)
                size += 1
                if self._congested and size < self._max_queue_size // 2:
                    self._congested = False
        if full:
            self._on_drop(1, "otlp_queue_full")
            report_rate_limited(
                "otlp-queue-full",
                "OTLP log queue full (%d records): the collector is slow or away; dropped records "
                "are counted in lumen.log.dropped, the console and file (when on) still get them",
                self._max_queue_size,
            )
        elif size >= self._max_batch_size and not self._failures and not self._wake.is_set():
            self._wake.set()  # once: Event.set takes a lock and notifies on every call

    def _wait_for_room(self) -> bool:
        """A burst outran a collector that is keeping up: wait (the writer thread, never the
        application's) for the export thread to make room, rather than drop records a healthy
        collector would have taken. Bounded: after one wait that frees nothing the queue counts as
        congested and drops (counted) until it has drained to half. Returns whether still full."""
        self._wake.set()
        deadline = time.monotonic() + _ROOM_WAIT
        while time.monotonic() < deadline:
            if len(self._queue) < self._max_queue_size:
                return False
            if self._failures or self._shutdown:
                break
            time.sleep(0.002)
        self._congested = True
        return True

    def _export_available(self, deadline: float | None, full_batches_only: bool = False) -> bool:
        """Export queued batches; a batch leaves the queue only once accepted.

        The worker (``full_batches_only``) sends what is queued, then goes on only while a full
        batch waits: chasing the records that trickle in during an export sent a request per
        handful of records (measured under uvicorn: ~20 posts/s of 2-5 records each). The rest
        goes with the next tick; flush and shutdown still drain everything.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._export_lock.acquire(timeout=wait):
            return False
        try:
            while self._queue:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                batch: Sequence[ReadableLogRecord] = list(itertools.islice(self._queue, self._max_batch_size))
                try:
                    with internal_scope():
                        result = self._exporter.export(batch)
                except Exception as exc:  # noqa: BLE001 - exporters must not kill the worker
                    internal_logger().debug("OTLP log export raised: %r", exc)
                    result = LogRecordExportResult.FAILURE
                if result is LogRecordExportResult.SUCCESS:
                    with self._lock:
                        for _ in range(len(batch)):
                            self._queue.popleft()
                    if self._failures:
                        report_rate_limited(
                            "otlp-recovered",
                            "OTLP log export recovered; sending the %d queued records",
                            len(self._queue),
                            level=logging.INFO,
                        )
                    self._failures = 0
                    if full_batches_only and len(self._queue) < self._max_batch_size:
                        return True
                    continue
                self._failures += 1
                report_rate_limited(
                    "otlp-export-failed",
                    "OTLP log export failed (attempt %d); keeping up to %d records and retrying",
                    self._failures,
                    self._max_queue_size,
                )
                return False
            return True
        finally:
            self._export_lock.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._shutdown:
            return False
        return self._export_available(deadline=time.monotonic() + timeout_millis / 1000)

    def shutdown(self, timeout_millis: int | None = None) -> None:
        if self._shutdown:
            return
        seconds = self._shutdown_timeout if timeout_millis is None else timeout_millis / 1000
        deadline = time.monotonic() + seconds
        self._shutdown = True
        self._wake.set()
        if self._pid == os.getpid():
            self._worker.join(max(0.0, min(1.0, deadline - time.monotonic())))
        if not self._failures:
            self._export_available(deadline=deadline)
        left = len(self._queue)
        if left:
            self._on_drop(left, "shutdown_timeout")
            report_rate_limited(
                "otlp-shutdown-left",
                "%d log records could not be exported before shutdown; counted in lumen.log.dropped",
                left,
            )
            self._queue.clear()
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]
        except Exception:  # noqa: BLE001
            internal_logger().debug("OTLP log exporter shutdown raised", exc_info=True)
