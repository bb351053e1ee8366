"""The OTLP bridge: an enriched, redacted stdlib record becomes an OpenTelemetry log record.

It runs on the pipeline's writer thread (never on the caller's) and hands the record to the
SDK logger provider, or straight to lumen's own processor (:mod:`lumen_otel._otlp.processor`)
when that is the provider's only one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lumen_otel._compat import (
    ApiLogRecord,
    LoggerProvider,
    LogRecordLimits,
    ReadableLogRecord,
    ReadWriteLogRecord,
    SdkLogger,
    SeverityNumber,
    count_emitted_log,
    log_record_processors,
    readable_log_record,
    set_clean_attributes,
)
from lumen_otel._logging.formatters import record_to_json
from lumen_otel._otlp.processor import ResilientLogProcessor

__all__ = ["OtlpBridge"]

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


_TRACE_FLAGS = {0: TraceFlags(0), 1: TraceFlags(1)}


def _trace_flags(value: int) -> TraceFlags:
    found = _TRACE_FLAGS.get(value)
    return found if found is not None else TraceFlags(value)


#: attribute value types the SDK's ``_clean_attribute_value`` returns unchanged
_CLEAN_TYPES = frozenset((str, int, float, bool))


class OtlpBridge:
    """Translate enriched records and hand them to the SDK logger provider."""

    __slots__ = ("_direct", "_fast_limits", "_loggers", "_processors_seen", "_provider")

    def __init__(self, provider: LoggerProvider, limits: LogRecordLimits | None = None) -> None:
        """``limits``: the ones the provider was made with (``LoggerProvider(log_record_limits=…)``).
        With them the bridge builds the SDK record itself and skips re-validating attributes it
        already made clean; without them every record goes through ``Logger.emit``."""
        self._provider = provider
        self._loggers: dict[str, tuple[Any, bool, bool]] = {}
        self._fast_limits = limits
        self._processors_seen: object = None
        self._direct: ResilientLogProcessor | None = None

    def emit(self, record: logging.LogRecord) -> None:
        cached = self._loggers.get(record.name)
        if cached is None:
            sdk_logger = self._provider.get_logger(record.name)
            prebuilt = isinstance(sdk_logger, SdkLogger)
            direct = prebuilt
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
        processors = log_record_processors(self._provider)
        if processors is not self._processors_seen:  # a tuple, replaced whenever one is added
            self._processors_seen = processors
            only = processors[0] if isinstance(processors, tuple) and len(processors) == 1 else None
            self._direct = only if isinstance(only, ResilientLogProcessor) else None
        if self._direct is None or not logger.enabled():
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
        processor fan-out, then the processor's frozen copy. Every field is the same
        (``tests/test_otlp_bridge.py`` compares the two paths), minus ``context``, which no
        exporter reads: the trace and span ids are fields of their own.
        """
        fields = {
            "timestamp": int(record.created * 1e9),
            "observed_timestamp": time.time_ns(),
            "context": None,
            "trace_id": int(trace_id, 16) if trace_id is not None else 0,
            "span_id": int(getattr(record, "span_id", None) or "0", 16) if trace_id is not None else 0,
            "trace_flags": _trace_flags(getattr(record, "trace_flags", 0) if trace_id is not None else 0),
            "severity_text": severity_text,
            "severity_number": severity_number,
            "body": body,
            "attributes": attributes,
            "event_name": None,
            "exception": None,
        }
        count_emitted_log(logger)
        return readable_log_record(fields, logger.resource, logger.instrumentation_scope, self._fast_limits)

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
        re-validation of ``BoundedAttributes`` (most of the SDK's cost per record, see
        ``benchmarks/bench_logging.py``) for values :meth:`emit` already made clean."""
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
        set_clean_attributes(writable, attributes)
        logger.emit(writable)
