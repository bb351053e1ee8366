"""The JSON-lines record (prod console and file) and the coloured dev console line.

Both read the fields :class:`~lumen_otel._logging.enrich.Enricher` put on the record; used
on a record that was not enriched (a handler on a non-propagating logger), they show the
missing fields as ``null`` rather than invent them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import IO, Any

import orjson

__all__ = ["CORE_FIELDS", "ColorFormatter", "JsonFormatter", "record_to_dict", "record_to_json", "use_color"]

#: the keys every JSON record starts with, in this order; extras and ``exception`` follow
CORE_FIELDS = (
    "timestamp",
    "level",
    "service_name",
    "hostname",
    "logger",
    "message",
    "correlation_id",
    "trace_id",
    "span_id",
)


_last_second: tuple[int, str] = (-1, "")  # (second, its formatted prefix): records come in bursts


def rfc3339(created: float) -> str:
    """``2026-11-27T03:30:00.123456Z`` (UTC, microseconds)."""
    global _last_second  # noqa: PLW0603 - a one-entry cache; the tuple is swapped atomically
    seconds = int(created)
    micros = round((created - seconds) * 1_000_000)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    cached_second, prefix = _last_second
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The design's key order: timestamp, level, service, host, logger, message, IDs, extras, exception."""
    data: dict[str, Any] = {
        "timestamp": rfc3339(record.created),
        "level": record.levelname,
        "service_name": getattr(record, "service_name", None),
        "hostname": getattr(record, "hostname", None),
        "logger": record.name,
        "message": record.getMessage() if record.args else str(record.msg),
        "correlation_id": getattr(record, "correlation_id", None),
        "trace_id": getattr(record, "trace_id", None),
        "span_id": getattr(record, "span_id", None),
    }
    extras = getattr(record, "lumen_extra", None)
    if extras:
        for key, value in extras.items():
            data.setdefault(key, value)  # an extra never overwrites a core field
    exception = getattr(record, "lumen_exception", None)
    if exception is not None:
        data["exception"] = exception
    elif record.exc_text:
        data["exception"] = {"type": None, "message": None, "stacktrace": record.exc_text}
    return data


def record_to_json(data: dict[str, Any] | list[Any]) -> bytes:
    """One JSON line (with the trailing newline); never raises."""
    try:
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE, default=str)
    except (TypeError, orjson.JSONEncodeError):
        # lone surrogates, >64-bit integers: the stdlib encoder escapes what orjson refuses
        return (json.dumps(data, default=str, ensure_ascii=True) + "\n").encode("ascii")


class JsonFormatter(logging.Formatter):
    """JSON lines for handlers users configure themselves (``dictConfig``)."""

    def format(self, record: logging.LogRecord) -> str:
        return record_to_json(record_to_dict(record)).decode("utf-8").rstrip("\n")


def use_color(stream: IO[str] | None) -> bool:
    """``NO_COLOR`` wins, then ``FORCE_COLOR``, then whether the stream is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force:
        return force.lower() not in ("0", "false", "no")
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


_LEVEL_COLORS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;41m",
}
_RESET, _DIM, _BOLD = "\x1b[0m", "\x1b[2m", "\x1b[1m"
# Control characters other than \n and \t would let a logged value rewrite the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class ColorFormatter(logging.Formatter):
    """One dev console line: time, level, service, short correlation ID, logger, message, extras."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        level = record.levelname
        cid = getattr(record, "correlation_id", None)
        short_cid = cid[:8] if cid else "-"
        service = getattr(record, "service_name", None) or "-"
        message = _escape_controls(record.getMessage() if record.args else str(record.msg))
        extras = getattr(record, "lumen_extra", None) or {}
        pairs = " ".join(f"{k}={_escape_controls(_short(v))}" for k, v in extras.items())
        exception = getattr(record, "lumen_exception", None)
        stack = exception["stacktrace"] if exception else record.exc_text
        if self.color:
            line = (
                f"{_DIM}{stamp}{_RESET} {_LEVEL_COLORS.get(level, '')}{level:<8}{_RESET} "
                f"{_BOLD}{service}{_RESET} {_DIM}[{short_cid}]{_RESET} {_DIM}{record.name}:{_RESET} {message}"
            )
            if pairs:
                line += f" {_DIM}{pairs}{_RESET}"
        else:
            line = f"{stamp} {level:<8} {service} [{short_cid}] {record.name}: {message}"
            if pairs:
                line += f" {pairs}"
        if stack:
            line += "\n" + _escape_controls(stack.rstrip("\n"))
        return line


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value if " " not in value else repr(value)
    return (
        record_to_json(value).decode("utf-8").rstrip("\n") if isinstance(value, (dict, list)) else str(value)
    )
