"""The JSON-lines record (prod console and file) and the coloured dev console line.

Both read the fields :class:`~lumen_otel._logging.enrich.Enricher` put on the record; used
on a record that was not enriched (a handler on a non-propagating logger), they show the
missing fields as ``null`` rather than invent them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from typing import IO, Any

import orjson

from lumen_otel import _native

__all__ = [
    "CORE_FIELDS",
    "UNSAFE_TEXT",
    "UNSAFE_TEXT_CHARS",
    "ColorFormatter",
    "JsonFormatter",
    "escape_unsafe",
    "python_record_to_dict",
    "record_to_dict",
    "record_to_json",
    "use_color",
]

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


def python_record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The design's key order: timestamp, level, service, host, logger, message, IDs, extras, exception.

    The reference for ``lumen_otel_native.record_to_dict``, which :data:`record_to_dict` is when
    the native accelerator is active (``lumen_otel._native``): the same dict, built natively."""
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
    stack_info = getattr(record, "stack_info", None)
    if stack_info:
        data["stack_info"] = stack_info  # ``stack_info=True``: redacted on the record by the enricher
    return data


#: one record's JSON fields (:func:`python_record_to_dict`'s dict), natively when the accelerator is on
record_to_dict: Callable[[logging.LogRecord], dict[str, Any]] = (
    python_record_to_dict if _native.accelerator is None else _native.accelerator.record_to_dict
)


def record_to_json(data: dict[str, Any] | list[Any]) -> bytes:
    """One JSON line (with the trailing newline); never raises.

    Strict JSON: NaN and the infinities, which JSON cannot spell, are written as ``null`` on
    every path (orjson does so itself; the stdlib fallback would write bare ``NaN``, which strict
    parsers reject).
    """
    try:
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE, default=str)
    except (TypeError, orjson.JSONEncodeError):
        # lone surrogates, >64-bit integers: the stdlib encoder escapes what orjson refuses
        try:
            line = json.dumps(data, default=str, ensure_ascii=True, allow_nan=False)
        except ValueError:  # a NaN or an infinity, alongside what orjson refused
            line = json.dumps(_finite(data), default=str, ensure_ascii=True)
        return (line + "\n").encode("ascii")


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with every non-finite float (in dicts, lists and tuples) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > _FINITE_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


#: deeper than any sanitized extra (``enrich._MAX_DEPTH``): a cycle in an unsanitized value ends here
_FINITE_DEPTH = 32


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

#: Characters log text must never carry raw onto a terminal, as a regex character class: C0
#: controls (``\n``/``\r`` forge lines, ESC starts CSI/OSC sequences: colours, screen clears,
#: window titles, hyperlinks), DEL, C1 controls (U+009B is CSI and U+0085 a line break to some
#: terminals), the line and paragraph separators U+2028/U+2029, and the invisible format
#: characters that reorder or hide text: bidi marks, embeddings, overrides and isolates
#: (U+061C, U+200E/U+200F, U+202A-U+202E, U+2066-U+2069: "Trojan Source"), zero-width space,
#: word joiner and invisible operators, the BOM, interlinear annotations and tag characters;
#: and lone surrogates (undecodable bytes), which no strict UTF-8 stream could even write.
#: U+200C/U+200D (ZWNJ/ZWJ) stay: Persian, Indic and emoji text needs them, and they neither
#: move the cursor nor reorder text. Every character here is one ``str.isprintable()`` rejects,
#: which gives :func:`escape_unsafe` its fast path. Defined once: the dev console and every
#: CLI command that shows log text (``lumen_otel.cli._terminal``) use this class.
UNSAFE_TEXT_CHARS = (
    r"\x00-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f"
    r"\ud800-\udfff\ufeff\ufff9-\ufffb\U000e0000-\U000e007f"
)
UNSAFE_TEXT = re.compile(f"[{UNSAFE_TEXT_CHARS}]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_unsafe(text: str) -> str:
    """``text`` with every :data:`UNSAFE_TEXT_CHARS` character shown as a visible escape.

    ``\\n``, ``\\r`` and ``\\t`` as themselves, other controls as ``\\x1b``, the rest as
    ``\\u2028``/``\\U000e0041``; the result is one line that cannot move the cursor, recolour,
    retitle or reorder anything. Backslashes are left alone (Windows paths stay readable), so
    the escape is for reading, not for decoding back. Text with nothing to escape (nearly all
    of it) is returned as is after one C-speed ``isprintable()`` pass.
    """
    if text.isprintable():
        return text
    return UNSAFE_TEXT.sub(_escape_char, text)


#: marks the continuation lines of a traceback on the dev console: no record line starts so
_CONTINUATION = "  | "


class ColorFormatter(logging.Formatter):
    """One dev console line: time, level, service, short correlation ID, logger, message, extras.

    Everything taken from the record (message, extra keys and values, logger, service, level) has
    its control, escape, line-separator and bidi characters shown as escapes (``\\n``, ``\\x1b``,
    ``\\u202e``: :func:`escape_unsafe`), so one record is exactly one terminal line that nothing
    logged can recolour or forge. An exception's traceback follows on lines of its own, each
    escaped the same way and starting with ``"  | "``, which no record line does.
    """

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        level = escape_unsafe(record.levelname)
        cid = getattr(record, "correlation_id", None)
        short_cid = escape_unsafe(str(cid)[:8]) if cid else "-"
        service = escape_unsafe(str(getattr(record, "service_name", None) or "-"))
        name = escape_unsafe(record.name)
        message = escape_unsafe(record.getMessage() if record.args else str(record.msg))
        extras = getattr(record, "lumen_extra", None) or {}
        pairs = " ".join(f"{_key(k)}={_short(v)}" for k, v in extras.items())
        exception = getattr(record, "lumen_exception", None)
        stack = exception["stacktrace"] if exception else record.exc_text
        if self.color:
            line = (
                f"{_DIM}{stamp}{_RESET} {_LEVEL_COLORS.get(level, '')}{level:<8}{_RESET} "
                f"{_BOLD}{service}{_RESET} {_DIM}[{short_cid}]{_RESET} {_DIM}{name}:{_RESET} {message}"
            )
            if pairs:
                line += f" {_DIM}{pairs}{_RESET}"
        else:
            line = f"{stamp} {level:<8} {service} [{short_cid}] {name}: {message}"
            if pairs:
                line += f" {pairs}"
        if stack:
            prefix = f"\n{_DIM}{_CONTINUATION}{_RESET}" if self.color else "\n" + _CONTINUATION
            line += "".join(prefix + escape_unsafe(part) for part in str(stack).rstrip("\n").split("\n"))
        return line


def _key(key: Any) -> str:
    """An extra's key: as is, or quoted when whitespace or ``=`` would blur where it ends."""
    text = str(key)
    if text.isprintable() and " " not in text and "=" not in text:
        return text
    if "=" in text or any(c.isspace() for c in text):
        return repr(text)  # repr() escapes every character isprintable() rejects, the unsafe ones too
    return escape_unsafe(text)


#: their str() is digits, signs, ".", "e", inf/nan, True/False/None: nothing to escape
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def _short(value: Any) -> str:
    if isinstance(value, str):
        if value.isprintable() and " " not in value:
            return value
        # any whitespace (a space, NBSP, \n...) would blur where the value ends: quote it
        return repr(value) if any(c.isspace() for c in value) else escape_unsafe(value)
    if type(value) in _PLAIN_TYPES:
        return str(value)
    text = (
        record_to_json(value).decode("utf-8").rstrip("\n") if isinstance(value, (dict, list)) else str(value)
    )
    return escape_unsafe(text)
