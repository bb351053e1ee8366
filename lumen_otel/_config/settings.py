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
from urllib.parse import urlsplit

from lumen_otel.exceptions import ConfigError

__all__ = ["PARAMETERS", "Parameter", "Settings", "load_settings"]

Env = Literal["dev", "prod"]
LogFormat = Literal["text", "json"]
Protocol = Literal["http/protobuf", "grpc"]

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


def _endpoint(name: str, raw: str) -> str:
    value = raw.strip()
    accepted = "an http:// or https:// URL with a host, e.g. https://collector:4318"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError(name, raw, accepted) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ConfigError(name, raw, accepted)
    if port == 0:
        raise ConfigError(name, raw, accepted)
    return value.rstrip("/")


def _key(name: str, raw: str) -> str:
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
        "Rotate the log file at this size.",
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
        "Records buffered for the console/file writer thread before callers wait.",
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
        "Allow `http://` to a non-loopback collector (one loud warning).",
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
        "fastapi_internal_spans",
        ("LUMEN_FASTAPI_INTERNAL_SPANS",),
        False,
        _bool,
        "boolean",
        "Keep FastAPI's per-message `http send`/`receive` spans (they halve throughput).",
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
        "Correlation ID header.",
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
        "redaction_key",
        ("LUMEN_REDACTION_KEY",),
        None,
        _key,
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
)

_BY_FIELD = {p.field: p for p in PARAMETERS}


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
    otlp_endpoint: str | None
    otlp_protocol: Protocol
    allow_insecure: bool
    otlp_queue_size: int
    traces: bool
    metrics: bool
    fastapi_internal_spans: bool
    shutdown_timeout: float
    correlation_header: str
    redaction: bool
    redaction_key: str | None
    redaction_extra_keys: tuple[str, ...]
    redaction_extra_patterns: tuple[str, ...]
    #: field -> "argument", the variable name it came from, or "default"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: problems worth one warning at start-up (not errors)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, source) rows for ``lumen-otel doctor``; secrets are hidden."""
        rows = []
        for param in PARAMETERS:
            value = getattr(self, param.field)
            if param.secret and value is not None:
                shown = "<set, hidden>"
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
    endpoint = values["otlp_endpoint"]
    if endpoint is not None:
        host = urlsplit(endpoint).hostname or ""
        if endpoint.startswith("http://") and not _is_loopback(host):
            if not values["allow_insecure"]:
                raise ConfigError(
                    _source_name(sources, "otlp_endpoint"),
                    endpoint,
                    "an https:// URL for a non-loopback collector "
                    "(or set LUMEN_ALLOW_INSECURE=true to send telemetry unencrypted)",
                )
            warnings.append(
                f"LUMEN_ALLOW_INSECURE=true: telemetry (which may carry PHI) goes to {endpoint} "
                "unencrypted. Use https:// in production."
            )
    _check_tls_files(env, warnings)
    return Settings(**values, sources=sources, warnings=tuple(warnings))


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
    raise ConfigError(param.field, value, param.accepted)


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
            path = Path(raw)
            if not path.is_file():
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
