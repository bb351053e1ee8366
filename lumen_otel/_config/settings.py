"""The parameter table and the one frozen :class:`Settings` object built from it.

Every setting lumen-otel reads is declared once in :data:`PARAMETERS`: its environment
names in precedence order, its default, how it is parsed and what it accepts. The README's
configuration table, ``lumen-otel doctor`` and the CLI help are all generated from (or
checked against) this table, so they cannot drift.

Precedence: explicit argument > ``LUMEN_*`` > ``OTEL_*`` > the original Lumen Logger
names (``LOG_LEVEL``, ``LOG_DIR``, ...) > default.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from lumen_otel.exceptions import ConfigError

__all__ = ["PARAMETERS", "SIGNALS", "ExportTarget", "Parameter", "Settings", "load_settings", "shown_url"]

Env = Literal["dev", "prod"]
LogFormat = Literal["text", "json"]
Protocol = Literal["http/protobuf", "grpc"]
Exporter = Literal["otlp", "console", "none"]

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Parameter:
    """One setting: where it is read from and how it is checked."""

    field: str
    env: tuple[str, ...]
    default: Any
    parse: Callable[[str, str], Any]
    accepted: str
    doc: str
    secret: bool = False
    default_doc: str | None = None


# ---------------------------------------------------------------- parsers
# Each takes (name, raw) and returns the value or raises ConfigError(name, raw, accepted).


def _choice(*choices: str, aliases: Mapping[str, str] | None = None) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        value = (aliases or {}).get(value, value)
        if value not in choices:
            raise ConfigError(name, raw, "one of " + ", ".join(choices))
        return value

    return parse


def _native_mode(name: str, raw: str) -> str:
    from lumen_otel._native import checked_mode  # it reads this table when it loads

    return checked_mode(name, raw)


def _level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    value = {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(value, value)
    if value not in _LEVELS:
        raise ConfigError(name, raw, "one of " + ", ".join(_LEVELS))
    return value


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, raw, "a boolean (true/false, 1/0, yes/no, on/off)")


def _int(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(name, raw, f"an integer >= {minimum}") from None
        if value < minimum:
            raise ConfigError(name, raw, f"an integer >= {minimum}")
        return value

    return parse


def _size_cap(minimum: int) -> Callable[[str, str], int]:
    """A size in bytes: 0 (no cap) or at least ``minimum`` (a smaller cap would cut every line)."""
    accepted = f"0 (no cap) or an integer >= {minimum}"

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(name, raw, accepted) from None
        if value != 0 and value < minimum:
            raise ConfigError(name, raw, accepted)
        return value

    return parse


def _float(minimum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(name, raw, f"a number >= {minimum}") from None
        if value < minimum or math.isnan(value):
            raise ConfigError(name, raw, f"a number >= {minimum}")
        return value

    return parse


def _millis(minimum: int) -> Callable[[str, str], int]:
    """A duration in whole milliseconds, as the OpenTelemetry spec gives them (``OTEL_BSP_*``, ...)."""
    accepted = f"a whole number of milliseconds >= {minimum}"

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(name, raw, accepted) from None
        if value < minimum:
            raise ConfigError(name, raw, accepted)
        return value

    return parse


#: what ``OTEL_{TRACES,LOGS,METRICS}_EXPORTER`` may name: one exporter per signal
EXPORTERS = ("otlp", "console", "none")


def _exporter(name: str, raw: str) -> str:
    """``otlp``, ``console`` or ``none``; a list or another exporter (zipkin, prometheus, ...) stops
    start-up rather than being ignored."""
    value = raw.strip().lower()
    if value not in EXPORTERS:
        raise ConfigError(
            name,
            raw,
            "one of otlp, console, none (a single exporter: lists and other exporters are not supported)",
        )
    return value


def _text(pattern: re.Pattern[str], accepted: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        if not pattern.fullmatch(value):
            raise ConfigError(name, raw, accepted)
        return value

    return parse


def _path(name: str, raw: str) -> Path:
    value = raw.strip()
    if not value or "\x00" in value:
        raise ConfigError(name, raw, "a directory path")
    return Path(value).expanduser()


def shown_url(url: str) -> str:
    """``url`` as it may be printed: ``user:password@`` becomes ``***@`` and a query string
    ``?***``. Works on URLs that do not parse too (a bad port, no scheme): everything up to the
    last ``@`` goes, which can hide a little more than the userinfo, never less."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    for mark in ("?", "#"):
        if mark in rest:
            rest = rest.split(mark, 1)[0] + mark + "***"
            break
    return f"{scheme}{sep}{rest}" if sep else rest


def _endpoint(name: str, raw: str) -> str:
    value = raw.strip()
    accepted = "an http:// or https:// URL with a host, e.g. https://collector:4318"
    shown = shown_url(raw)  # a URL's user:password never reaches a message
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError(name, shown, accepted) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ConfigError(name, shown, accepted)
    if port == 0:
        raise ConfigError(name, shown, accepted)
    return value.rstrip("/")


def redaction_key(name: str, raw: str) -> str:
    """A redaction (HMAC) key: at least 16 characters; the value is never shown."""
    if len(raw) < 16:
        raise ConfigError(name, "<hidden>", "a secret of at least 16 characters")
    return raw


def _csv(name: str, raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", item):
            raise ConfigError(name, raw, "a comma-separated list of key names (letters, digits, _ . -)")
    return items


def _patterns(name: str, raw: str) -> tuple[str, ...]:
    """A JSON array of regexes, or one regex: commas are too common in regexes to split on."""
    text = raw.strip()
    accepted = 'a regular expression, or a JSON array of them: ["MRN-\\\\d+", "ACC\\\\d{6}"]'
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            raise ConfigError(name, raw, accepted) from None
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise ConfigError(name, raw, accepted)
    else:
        items = [text] if text else []
    for item in items:
        try:
            re.compile(item)
        except re.error as exc:
            raise ConfigError(name, raw, f"{accepted} ({item!r}: {exc})") from None
    return tuple(items)


def _program_name() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    stem = argv0.removesuffix(".py") or "python"
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem)[:128] or "python"


# ---------------------------------------------------------------- the table

PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "service_name",
        ("LUMEN_SERVICE_NAME", "OTEL_SERVICE_NAME"),
        None,
        _text(_SERVICE_NAME, "1-128 characters of letters, digits, '.', '_' or '-'"),
        "1-128 characters of letters, digits, `.`, `_`, `-`",
        "Service name (`service.name`).",
        default_doc="the program's name, with a warning",
    ),
    Parameter(
        "service_version",
        ("LUMEN_SERVICE_VERSION", "OTEL_SERVICE_VERSION"),
        "unknown",
        _text(
            re.compile(r"[A-Za-z0-9._+\-]{1,64}"), "1-64 characters of letters, digits, '.', '_', '+', '-'"
        ),
        "a version string",
        "Service version (`service.version`).",
    ),
    Parameter(
        "env",
        ("LUMEN_ENV",),
        "dev",
        _choice("dev", "prod"),
        "`dev`, `prod`",
        "Deployment environment: picks console format and safety checks.",
    ),
    Parameter(
        "log_level",
        ("LUMEN_LOG_LEVEL", "LOG_LEVEL"),
        "INFO",
        _level,
        "`DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`",
        "Root logger level.",
    ),
    Parameter(
        "log_format",
        ("LUMEN_LOG_FORMAT", "LOG_FORMAT"),
        None,
        _choice("text", "json"),
        "`text`, `json`",
        "Console format.",
        default_doc="`text` in dev, `json` in prod",
    ),
    Parameter("console", ("LUMEN_CONSOLE",), True, _bool, "boolean", "Console output on/off."),
    Parameter(
        "log_dir",
        ("LUMEN_LOG_DIR", "LOG_DIR"),
        None,
        _path,
        "a directory path",
        "Directory for `<service>.log` (JSON lines).",
        default_doc="unset: no file",
    ),
    Parameter(
        "log_file_max_bytes",
        ("LUMEN_LOG_FILE_MAX_BYTES",),
        10 * 1024 * 1024,
        _int(1024),
        "integer >= 1024",
        "Rotate the log file at this size (checked between write batches, so a file can pass it by one "
        "batch).",
        default_doc="10485760 (10 MiB)",
    ),
    Parameter(
        "log_file_backups", ("LUMEN_LOG_FILE_BACKUPS",), 5, _int(0), "integer >= 0", "Rotated files kept."
    ),
    Parameter(
        "log_queue_size",
        ("LUMEN_LOG_QUEUE_SIZE",),
        100_000,
        _int(100),
        "integer >= 100",
        "Records buffered for the log writer thread before callers wait (and, apart, for the console "
        "thread before console lines are dropped).",
    ),
    Parameter(
        "log_queue_wait",
        ("LUMEN_LOG_QUEUE_WAIT",),
        2.0,
        _float(0.0),
        "number >= 0",
        "Seconds a caller waits for room when the log queue is full before the record is dropped and "
        "counted (`lumen.log.dropped`, `local_queue_full`); `0`: never wait. A caller on an asyncio "
        "event loop never waits.",
    ),
    Parameter(
        "log_max_field_bytes",
        ("LUMEN_LOG_MAX_FIELD_BYTES",),
        64 * 1024,
        _size_cap(1024),
        "`0` (no cap) or integer >= 1024",
        "Longest message, `extra` string or exception text (UTF-8 bytes) kept per record; the rest is cut "
        "before redaction and marked `…[truncated N bytes]` (`lumen.log.truncated`).",
        default_doc="65536 (64 KiB)",
    ),
    Parameter(
        "log_max_record_bytes",
        ("LUMEN_LOG_MAX_RECORD_BYTES",),
        256 * 1024,
        _size_cap(1024),
        "`0` (no budget) or integer >= 1024",
        "Most UTF-8 bytes of message, `extra` keys and values and exception text kept per record, "
        "together; once they reach it the rest is cut before redaction and marked `…[truncated N bytes]` "
        "(`lumen.log.truncated`, part `record`). Bounds what one record costs the calling thread.",
        default_doc="262144 (256 KiB)",
    ),
    Parameter(
        "otlp_endpoint",
        ("LUMEN_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_COLLECTOR_URL"),
        None,
        _endpoint,
        "`http(s)://host:port`",
        "OTLP collector endpoint.",
        default_doc="unset: no OTLP export",
    ),
    Parameter(
        "otlp_logs_endpoint",
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",),
        None,
        _endpoint,
        "`http(s)://host:port/path`",
        "OTLP endpoint for logs only, used as given (no `/v1/logs` added); turns log export on.",
        default_doc="unset: the main endpoint",
    ),
    Parameter(
        "otlp_traces_endpoint",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",),
        None,
        _endpoint,
        "`http(s)://host:port/path`",
        "OTLP endpoint for traces only, used as given; turns trace export on.",
        default_doc="unset: the main endpoint",
    ),
    Parameter(
        "otlp_metrics_endpoint",
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",),
        None,
        _endpoint,
        "`http(s)://host:port/path`",
        "OTLP endpoint for metrics only, used as given; turns metric export on.",
        default_doc="unset: the main endpoint",
    ),
    Parameter(
        "otlp_protocol",
        ("LUMEN_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        "http/protobuf",
        _choice("http/protobuf", "grpc"),
        "`http/protobuf`, `grpc`",
        "OTLP transport.",
    ),
    Parameter(
        "allow_insecure",
        ("LUMEN_ALLOW_INSECURE",),
        False,
        _bool,
        "boolean",
        "Allow plaintext (`http://`, or gRPC with `OTEL_EXPORTER_OTLP_*INSECURE=true`) to a "
        "non-loopback collector, for every endpoint variable (one loud warning).",
    ),
    Parameter(
        "otlp_queue_size",
        ("LUMEN_OTLP_QUEUE_SIZE", "OTEL_BLRP_MAX_QUEUE_SIZE"),
        20_000,
        _int(1),
        "integer >= 1",
        "Log records held for OTLP export while the collector is slow or away.",
    ),
    Parameter("traces", ("LUMEN_TRACES",), True, _bool, "boolean", "Export traces when an endpoint is set."),
    Parameter(
        "metrics", ("LUMEN_METRICS",), True, _bool, "boolean", "Export metrics when an endpoint is set."
    ),
    Parameter(
        "sdk_disabled",
        ("OTEL_SDK_DISABLED",),
        False,
        _bool,
        "boolean",
        "Disable the OpenTelemetry SDK for all signals: no tracer, meter or logger provider is installed "
        "and nothing is exported (not even with an endpoint set). lumen's console and file logging "
        "still run as configured.",
    ),
    Parameter(
        "traces_exporter",
        ("OTEL_TRACES_EXPORTER",),
        "otlp",
        _exporter,
        "`otlp`, `console`, `none`",
        "Span exporter: `otlp` (when an endpoint is set), `console` (the SDK's console exporter on "
        "stdout, spans redacted as for OTLP) or `none` (no spans exported, whatever endpoint is set).",
    ),
    Parameter(
        "logs_exporter",
        ("OTEL_LOGS_EXPORTER",),
        "otlp",
        _exporter,
        "`otlp`, `console`, `none`",
        "Log record exporter behind lumen's OTLP log processor: `otlp`, `console` (the SDK's console "
        "log exporter on stdout) or `none`. lumen's own console and file output are not affected.",
    ),
    Parameter(
        "metrics_exporter",
        ("OTEL_METRICS_EXPORTER",),
        "otlp",
        _exporter,
        "`otlp`, `console`, `none`",
        "Metric exporter: `otlp`, `console` (the SDK's console exporter on stdout) or `none`.",
    ),
    Parameter(
        "blrp_schedule_delay_ms",
        ("OTEL_BLRP_SCHEDULE_DELAY",),
        1000,
        _millis(1),
        "milliseconds >= 1",
        "Longest wait (ms) before queued log records are exported when no full batch is waiting.",
    ),
    Parameter(
        "blrp_max_export_batch_size",
        ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",),
        512,
        _int(1),
        "integer >= 1, at most the log queue size",
        "Most log records in one OTLP export.",
        default_doc="`512` (at most the log queue size)",
    ),
    Parameter(
        "blrp_export_timeout_ms",
        ("OTEL_BLRP_EXPORT_TIMEOUT",),
        30000,
        _millis(0),
        "milliseconds >= 0",
        "Longest time (ms) one log export request may take: when set, the log exporter's timeout "
        "is the smaller of it and `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`/`OTEL_EXPORTER_OTLP_TIMEOUT`.",
    ),
    Parameter(
        "bsp_schedule_delay_ms",
        ("OTEL_BSP_SCHEDULE_DELAY",),
        5000,
        _millis(1),
        "milliseconds >= 1",
        "Longest wait (ms) before finished spans are exported when no full batch is waiting.",
    ),
    Parameter(
        "bsp_max_queue_size",
        ("OTEL_BSP_MAX_QUEUE_SIZE",),
        2048,
        _int(1),
        "integer >= 1",
        "Finished spans held for export; more are dropped.",
    ),
    Parameter(
        "bsp_max_export_batch_size",
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",),
        512,
        _int(1),
        "integer >= 1, at most `OTEL_BSP_MAX_QUEUE_SIZE`",
        "Most spans in one export.",
        default_doc="`512` (at most the span queue size)",
    ),
    Parameter(
        "bsp_export_timeout_ms",
        ("OTEL_BSP_EXPORT_TIMEOUT",),
        30000,
        _millis(0),
        "milliseconds >= 0",
        "Longest time (ms) one span export request may take: when set, the span exporter's timeout "
        "is the smaller of it and `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`/`OTEL_EXPORTER_OTLP_TIMEOUT`.",
    ),
    Parameter(
        "metric_export_interval_ms",
        ("OTEL_METRIC_EXPORT_INTERVAL",),
        60000,
        _millis(1),
        "milliseconds >= 1",
        "Time (ms) between two metric exports.",
    ),
    Parameter(
        "metric_export_timeout_ms",
        ("OTEL_METRIC_EXPORT_TIMEOUT",),
        30000,
        _millis(0),
        "milliseconds >= 0",
        "Longest time (ms) one metric export may take.",
    ),
    Parameter(
        "fastapi_internal_spans",
        ("LUMEN_FASTAPI_INTERNAL_SPANS",),
        False,
        _bool,
        "boolean",
        "Keep FastAPI's per-message `http send`/`receive` spans (they halve throughput).",
    ),
    Parameter(
        "http_server_metrics",
        ("LUMEN_HTTP_SERVER_METRICS",),
        False,
        _bool,
        "boolean",
        "Record the HTTP server instrumentations' own metrics in the process (`http.server.duration`, "
        "`http.server.request.duration`, `http.server.active_requests`, request and response sizes). "
        "Off: the collector's `span_metrics` connector derives request rate, errors and duration by "
        "route, method and status from the server spans (sampled requests only); turn on to export "
        "them from the service as well, e.g. without lumen's collector or with sampling below 1.",
    ),
    Parameter(
        "shutdown_timeout",
        ("LUMEN_SHUTDOWN_TIMEOUT",),
        5.0,
        _float(0.0),
        "seconds >= 0",
        "Longest time shutdown/exit waits to flush queued telemetry.",
    ),
    Parameter(
        "correlation_header",
        ("LUMEN_CORRELATION_HEADER",),
        "X-Correlation-ID",
        _text(_HEADER_NAME, "an HTTP header name (letters, digits, '-'; at most 64)"),
        "an HTTP header name",
        "Correlation ID header, the one name the propagator, both middlewares, the httpx hooks and "
        "`doctor` use (a middleware's own `header_name=`, or Django's `settings.LUMEN_CORRELATION_HEADER`, "
        "wins for that middleware, with a warning).",
    ),
    Parameter(
        "trust_incoming_ids",
        ("LUMEN_TRUST_INCOMING_IDS",),
        True,
        _bool,
        "boolean",
        "Continue the caller's `traceparent` and correlation ID; `false` (edge services facing clients) "
        "starts a new trace and ID per request and records the caller's values as "
        "`lumen.incoming.*` span attributes.",
    ),
    Parameter(
        "redaction",
        ("LUMEN_REDACTION",),
        True,
        _bool,
        "boolean",
        "Built-in PHI redaction rules; cannot be turned off when `LUMEN_ENV=prod`.",
    ),
    Parameter(
        "redaction_unlabelled_names",
        ("LUMEN_REDACTION_UNLABELLED_NAMES",),
        False,
        _bool,
        "boolean",
        "Also mask person names and places that no label announces (census name lists, a city list, "
        "address shapes: `User: Marcus Paulsen`, `flew to Den Haag`), for services that log free text; "
        "costs several times the label rules on lines with capitalised words (`docs/redaction.md`).",
    ),
    Parameter(
        "redaction_key",
        ("LUMEN_REDACTION_KEY",),
        None,
        redaction_key,
        "a secret of >= 16 characters",
        "HMAC key for keyed pseudonyms.",
        secret=True,
        default_doc="unset: `[REDACTED:KIND]`",
    ),
    Parameter(
        "redaction_extra_keys",
        ("LUMEN_REDACTION_EXTRA_KEYS",),
        (),
        _csv,
        "comma-separated key names",
        "More `extra`/attribute key names to redact.",
        default_doc="none",
    ),
    Parameter(
        "redaction_extra_patterns",
        ("LUMEN_REDACTION_EXTRA_PATTERNS",),
        (),
        _patterns,
        "a regex or a JSON array of regexes",
        "More value patterns to redact.",
        default_doc="none",
    ),
    Parameter(
        "native",
        ("LUMEN_NATIVE",),
        "auto",
        _native_mode,
        "`auto`, `0`, `1`",
        "The native accelerator (`pip install ./native`): `auto` uses it when installed at "
        "lumen-otel's version, `0` never (the Python path), `1` requires it (start-up fails without "
        "it). Read when lumen-otel is imported; `lumen-otel doctor` shows which path is active.",
    ),
)

_BY_FIELD = {p.field: p for p in PARAMETERS}

#: the OTLP signals, in the order they are listed
SIGNALS = ("logs", "traces", "metrics")


@dataclass(frozen=True)
class ExportTarget:
    """Where one signal is exported: the URL its exporter is given and whether it is encrypted.

    Built by :func:`load_settings`, which has already refused a plaintext non-loopback target
    unless ``LUMEN_ALLOW_INSECURE`` is true. Header values are never kept, only their names."""

    signal: str
    #: the exporter's URL: the signal's own variable as given, else the main endpoint
    #: (``<endpoint>/v1/<signal>`` over HTTP)
    url: str
    #: the variable (or ``otlp_*endpoint`` argument) ``url`` came from
    source: str
    protocol: Protocol
    #: https (HTTP) or TLS (gRPC)
    encrypted: bool
    #: gRPC: the ``OTEL_EXPORTER_OTLP_*INSECURE`` variable that turned TLS off, if one did
    insecure_source: str | None = None
    header_names: tuple[str, ...] = ()
    header_source: str | None = None

    @property
    def shown_url(self) -> str:
        """``url`` without its userinfo or query: safe to print."""
        return shown_url(self.url)

    @property
    def transport(self) -> str:
        if self.protocol == "grpc":
            return "gRPC over TLS" if self.encrypted else "gRPC, plaintext"
        return "HTTPS" if self.encrypted else "HTTP, plaintext"

    def __repr__(self) -> str:
        return (
            f"ExportTarget(signal={self.signal!r}, url={self.shown_url!r}, source={self.source!r}, "
            f"protocol={self.protocol!r}, encrypted={self.encrypted!r}, header_names={self.header_names!r})"
        )


@dataclass(frozen=True)
class Settings:
    """Every lumen-otel setting, parsed and validated once; see :data:`PARAMETERS`."""

    service_name: str
    service_version: str
    env: Env
    log_level: str
    log_format: LogFormat
    console: bool
    log_dir: Path | None
    log_file_max_bytes: int
    log_file_backups: int
    log_queue_size: int
    log_queue_wait: float
    log_max_field_bytes: int
    log_max_record_bytes: int
    otlp_endpoint: str | None
    otlp_logs_endpoint: str | None
    otlp_traces_endpoint: str | None
    otlp_metrics_endpoint: str | None
    otlp_protocol: Protocol
    allow_insecure: bool
    otlp_queue_size: int
    traces: bool
    metrics: bool
    sdk_disabled: bool
    traces_exporter: Exporter
    logs_exporter: Exporter
    metrics_exporter: Exporter
    blrp_schedule_delay_ms: int
    blrp_max_export_batch_size: int
    blrp_export_timeout_ms: int
    bsp_schedule_delay_ms: int
    bsp_max_queue_size: int
    bsp_max_export_batch_size: int
    bsp_export_timeout_ms: int
    metric_export_interval_ms: int
    metric_export_timeout_ms: int
    fastapi_internal_spans: bool
    http_server_metrics: bool
    shutdown_timeout: float
    correlation_header: str
    trust_incoming_ids: bool
    redaction: bool
    redaction_unlabelled_names: bool
    redaction_key: str | None
    redaction_extra_keys: tuple[str, ...]
    redaction_extra_patterns: tuple[str, ...]
    native: str
    #: field -> "argument", the variable name it came from, or "default"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: problems worth one warning at start-up (not errors)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: where each signal with an endpoint is exported (logs, traces, metrics), see ExportTarget
    targets: tuple[ExportTarget, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        """Like the dataclass repr, with secrets hidden (``secret`` parameters, URL userinfo)."""
        shown = []
        for param in PARAMETERS:
            value = getattr(self, param.field, None)
            if param.secret and value is not None:
                text = "'<hidden>'"
            elif param.parse is _endpoint and isinstance(value, str):
                text = repr(shown_url(value))
            else:
                text = repr(value)
            shown.append(f"{param.field}={text}")
        shown.append(f"targets={self.targets!r}")
        return f"Settings({', '.join(shown)})"

    def export_target(self, signal: str) -> ExportTarget | None:
        """Where ``signal`` ("logs", "traces", "metrics") is exported; ``None``: no endpoint for it.

        A signal is exported when the main endpoint or its own ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT``
        is set (``LUMEN_TRACES``/``LUMEN_METRICS`` can still turn traces/metrics off), its
        ``OTEL_<SIGNAL>_EXPORTER`` is ``otlp`` (the default) and ``OTEL_SDK_DISABLED`` is not true:
        ``none`` and ``console`` win over an endpoint."""
        return next((t for t in self.targets if t.signal == signal), None)

    def signal_exporter(self, signal: str) -> Literal["otlp", "console"] | None:
        """How ``signal`` is exported: ``"otlp"`` (to :meth:`export_target`), ``"console"`` (the SDK's
        console exporter, stdout) or ``None`` (not at all: ``OTEL_SDK_DISABLED``, ``none``, no
        endpoint, or ``LUMEN_TRACES``/``LUMEN_METRICS`` false)."""
        if self.sdk_disabled or not {"logs": True, "traces": self.traces, "metrics": self.metrics}[signal]:
            return None
        kind: Exporter = getattr(self, f"{signal}_exporter")
        if kind == "console":
            return "console"
        if kind == "otlp" and self.export_target(signal) is not None:
            return "otlp"
        return None

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, source) rows for ``lumen-otel doctor``; secrets are hidden."""
        rows = []
        for param in PARAMETERS:
            value = getattr(self, param.field)
            if param.secret and value is not None:
                shown = "<set, hidden>"
            elif param.parse is _endpoint and isinstance(value, str):
                shown = shown_url(value)
            elif isinstance(value, tuple):
                shown = ", ".join(value) or "-"
            else:
                shown = "-" if value is None else str(value)
            rows.append((param.field, shown, self.sources.get(param.field, "default")))
        return rows


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Parse the environment (and keyword overrides) into :class:`Settings`.

    Raises:
        ConfigError: a value is invalid; the message names the variable, the value and
            what is accepted.
        TypeError: an unknown keyword argument.
    """
    env = os.environ if environ is None else environ
    unknown = set(overrides) - set(_BY_FIELD)
    if unknown:
        raise TypeError(f"unknown lumen-otel setting(s): {', '.join(sorted(unknown))}")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for param in PARAMETERS:
        if param.field in overrides and overrides[param.field] is not None:
            values[param.field] = _coerce_argument(param, overrides[param.field])
            sources[param.field] = "argument"
            continue
        for name in param.env:
            raw = env.get(name)
            if raw is not None and raw.strip() != "":
                values[param.field] = param.parse(name, raw)
                sources[param.field] = name
                break
        else:
            values[param.field] = param.default
            sources[param.field] = "default"

    warnings: list[str] = []
    if values["service_name"] is None:
        values["service_name"] = _program_name()
        sources["service_name"] = "default (program name)"
        warnings.append(
            f"no service name set; using {values['service_name']!r}. "
            "Set LUMEN_SERVICE_NAME or OTEL_SERVICE_NAME, or pass service_name=."
        )
    if values["log_format"] is None:
        values["log_format"] = "json" if values["env"] == "prod" else "text"
        sources["log_format"] = f"default (LUMEN_ENV={values['env']})"
    if values["env"] == "prod" and not values["redaction"]:
        raise ConfigError(
            _source_name(sources, "redaction"),
            "false",
            "true when LUMEN_ENV=prod: the built-in PHI rules cannot be turned off in production",
        )
    _check_batch_sizes(values, sources)
    targets = _export_targets(values, sources, env)
    _check_plaintext(values, sources, targets, warnings)
    _check_tls_files(env, warnings)
    return Settings(**values, sources=sources, warnings=tuple(warnings), targets=targets)


_ENDPOINT_FIELDS = ("otlp_endpoint", *(f"otlp_{signal}_endpoint" for signal in SIGNALS))
#: one ``name=value`` of ``OTEL_EXPORTER_OTLP_*HEADERS``, as upstream's liberal parser accepts it
_HEADER_ITEM = re.compile(
    r"[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)


def _header_names(name: str, raw: str) -> tuple[str, ...]:
    """The names in an ``OTEL_EXPORTER_OTLP_*HEADERS`` value; its values are never shown.

    A malformed entry stops start-up here: upstream would skip it with a warning that prints
    it, token and all (``Authorization: Bearer ...`` instead of ``Authorization=Bearer%20...``)."""
    names: list[str] = []
    shown: list[str] = []
    malformed = False
    for item in re.split(r"[ \t]*,[ \t]*", raw.strip()):
        if not item:
            continue
        match = _HEADER_ITEM.fullmatch(item)
        if match is None:
            malformed = True
            shown.append("<malformed entry, hidden>")
        else:
            names.append(unquote(match.group(1)).strip().lower())
            shown.append(f"{match.group(1)}=<hidden>")
    if malformed:
        raise ConfigError(
            name,
            ",".join(shown),
            "comma-separated name=value pairs with URL-encoded values, e.g. "
            "authorization=Bearer%20<token> (values are never shown)",
        )
    return tuple(names)


def _export_targets(
    values: Mapping[str, Any], sources: Mapping[str, str], env: Mapping[str, str]
) -> tuple[ExportTarget, ...]:
    """Each signal's exporter URL, encryption and header names, as the exporters will use them."""
    protocol = values["otlp_protocol"]
    for field_name in _ENDPOINT_FIELDS:
        url = values[field_name]
        if protocol == "grpc" and url is not None and "@" in urlsplit(url).netloc:
            raise ConfigError(
                _source_name(sources, field_name),
                shown_url(url),
                "a URL without user:password@ for gRPC (send credentials in OTEL_EXPORTER_OTLP_HEADERS)",
            )
    general_insecure = _env_bool(env, "OTEL_EXPORTER_OTLP_INSECURE")
    general_headers = env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    general_names = _header_names("OTEL_EXPORTER_OTLP_HEADERS", general_headers)
    targets = []
    for signal in SIGNALS:
        upper = signal.upper()
        own_headers = env.get(f"OTEL_EXPORTER_OTLP_{upper}_HEADERS", "")
        own_names = _header_names(f"OTEL_EXPORTER_OTLP_{upper}_HEADERS", own_headers)
        own_insecure = _env_bool(env, f"OTEL_EXPORTER_OTLP_{upper}_INSECURE")
        if values["sdk_disabled"] or values[f"{signal}_exporter"] != "otlp":
            continue  # OTEL_SDK_DISABLED, or OTEL_<SIGNAL>_EXPORTER=none/console: wins over an endpoint
        own_field = f"otlp_{signal}_endpoint"
        if values[own_field] is not None:
            url, source = values[own_field], _source_name(sources, own_field)
        elif values["otlp_endpoint"] is not None:
            base = values["otlp_endpoint"]
            url = base if protocol == "grpc" else f"{base}/v1/{signal}"
            source = _source_name(sources, "otlp_endpoint")
        else:
            continue
        https = url.startswith("https://")
        # upstream's gRPC exporters: the signal's *_INSECURE variable, else the general one
        insecure = own_insecure if own_insecure is not None else general_insecure
        insecure_source = None
        if protocol == "grpc" and https and insecure and insecure[0]:
            insecure_source = insecure[1]
        if own_headers.strip():
            header_names, header_source = own_names, f"OTEL_EXPORTER_OTLP_{upper}_HEADERS"
        elif general_headers.strip():
            header_names, header_source = general_names, "OTEL_EXPORTER_OTLP_HEADERS"
        else:
            header_names, header_source = (), None
        targets.append(
            ExportTarget(
                signal=signal,
                url=url,
                source=source,
                protocol=protocol,
                encrypted=https and insecure_source is None,
                insecure_source=insecure_source,
                header_names=header_names,
                header_source=header_source,
            )
        )
    return tuple(targets)


def _check_batch_sizes(values: dict[str, Any], sources: dict[str, str]) -> None:
    """A batch is at most its queue. A batch size that was set and is larger stops start-up naming
    it (as the spec and the SDK require); the default batch size is capped at a smaller queue."""
    for batch_field, queue_field in (
        ("blrp_max_export_batch_size", "otlp_queue_size"),
        ("bsp_max_export_batch_size", "bsp_max_queue_size"),
    ):
        batch, queue = values[batch_field], values[queue_field]
        if batch <= queue:
            continue
        queue_name = _source_name(sources, queue_field)
        if sources[batch_field] == "default":
            values[batch_field] = queue
            sources[batch_field] = f"default (capped at {queue_name})"
            continue
        raise ConfigError(
            _source_name(sources, batch_field),
            str(batch),
            f"an integer from 1 to the queue size ({queue_name}={queue})",
        )


def _env_bool(env: Mapping[str, str], name: str) -> tuple[bool, str] | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return _bool(name, raw), name


def _check_plaintext(
    values: Mapping[str, Any],
    sources: Mapping[str, str],
    targets: tuple[ExportTarget, ...],
    warnings: list[str],
) -> None:
    """Every endpoint variable, and every gRPC target with TLS turned off, must be encrypted or
    loopback, unless ``LUMEN_ALLOW_INSECURE`` is true: then one warning lists them all."""
    plaintext: dict[str, str] = {}  # variable -> URL, in the order found
    for field_name in _ENDPOINT_FIELDS:
        url = values[field_name]
        if url is not None and url.startswith("http://") and not _is_loopback(urlsplit(url).hostname or ""):
            plaintext.setdefault(_source_name(sources, field_name), url)
    for target in targets:
        if target.insecure_source and not _is_loopback(urlsplit(target.url).hostname or ""):
            plaintext.setdefault(target.insecure_source, target.url)
    if not plaintext:
        return
    if not values["allow_insecure"]:
        variable, url = next(iter(plaintext.items()))
        allow = "or set LUMEN_ALLOW_INSECURE=true to send telemetry unencrypted"
        if variable.endswith("INSECURE"):
            raise ConfigError(
                variable,
                "true",
                f"false for a non-loopback collector: gRPC to {shown_url(url)} "
                f"would be unencrypted ({allow})",
            )
        raise ConfigError(variable, shown_url(url), f"an https:// URL for a non-loopback collector ({allow})")
    where = ", ".join(f"{shown_url(url)} ({variable})" for variable, url in plaintext.items())
    warnings.append(
        f"LUMEN_ALLOW_INSECURE=true: telemetry (which may carry PHI) goes to {where} unencrypted. "
        "Use https:// in production."
    )


def _source_name(sources: Mapping[str, str], field_name: str) -> str:
    source = sources.get(field_name, "default")
    return field_name if source in ("argument", "default") else source


def _coerce_argument(param: Parameter, value: Any) -> Any:
    """Arguments get the same checks as variables; strings go through the same parser."""
    if isinstance(value, str):
        return param.parse(param.field, value)
    if isinstance(value, Path) and param.field == "log_dir":
        return value
    if isinstance(value, bool) and param.default in (True, False):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(param.default, int):
        return param.parse(param.field, str(value))
    if isinstance(value, float) and isinstance(param.default, float):
        return param.parse(param.field, str(value))
    if isinstance(value, (list, tuple)) and isinstance(param.default, tuple):
        return param.parse(
            param.field, json.dumps(list(value)) if "pattern" in param.field else ",".join(value)
        )
    shown = "<hidden>" if param.secret else shown_url(repr(value)) if param.parse is _endpoint else value
    raise ConfigError(param.field, shown, param.accepted)


_TLS_FILE_VARS = (
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
)


def _check_tls_files(env: Mapping[str, str], warnings: list[str]) -> None:
    """Fail at start-up, not at the first export, when a TLS file is missing or unreadable."""
    for name in _TLS_FILE_VARS:
        for variant in (name, *(name.replace("OTLP_", f"OTLP_{s}_") for s in ("TRACES", "METRICS", "LOGS"))):
            raw = env.get(variant)
            if not raw:
                continue
            if "-----BEGIN" in raw or "\n" in raw or len(raw) > 4096:
                # the certificate or key itself pasted into the variable: never echo it
                raise ConfigError(
                    variant, "<file contents, hidden>", "the path of a PEM file, not its contents"
                )
            path = Path(raw)
            try:
                is_file = path.is_file()
            except OSError:
                is_file = False
            if not is_file:
                raise ConfigError(variant, raw, "the path of a readable PEM file")
            try:
                head = path.read_bytes()[:4096]
            except OSError as exc:
                raise ConfigError(variant, raw, f"the path of a readable PEM file ({exc.strerror})") from None
            if b"-----BEGIN" not in head:
                raise ConfigError(variant, raw, "a PEM file (no '-----BEGIN' block found)")
            if variant.endswith("CLIENT_KEY") and path.stat().st_mode & 0o077:
                warnings.append(f"{variant}={raw} is readable by group/others; chmod 600 it.")


def markdown_table() -> str:
    """The README's configuration table (``python -m lumen_otel._config.settings`` prints it)."""
    lines = [
        "| variable (first name wins) | meaning | accepted | default |",
        "|---|---|---|---|",
    ]
    for param in PARAMETERS:
        names = ", ".join(f"`{name}`" for name in param.env)
        if param.default_doc is not None:
            default = param.default_doc
        elif isinstance(param.default, bool):
            default = f"`{str(param.default).lower()}`"
        else:
            default = f"`{param.default}`"
        lines.append(f"| {names} | {param.doc} | {param.accepted} | {default} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())  # noqa: T201
