"""The one enrich-and-redact step every record goes through, on the caller's thread.

It runs once per record, before the first handler sees it (in ``Logger.callHandlers``, which
``_server_patches.py`` wraps, or in the root handler for a record handed to it directly; never
in a filter per sink), and changes the record itself, so every handler on every logger sees the
redacted message, arguments, extras and exception. It does only what must happen before the
record leaves the caller: capture the context (correlation ID,
trace and span IDs), format the message and the exception while their objects still
have the state they had at the call, and remove PHI. Everything else (JSON encoding,
writing, OTLP translation) happens on the writer thread.

Bounded cost per record
-----------------------
Redaction is linear in its input but not cheap on hostile text (``'Dr. A. ' * N`` costs 1-3 ms
per KiB: benchmarks/bench_adversarial.py), and it runs on the caller's thread, in an async service
the event loop. So before redaction every
field is cut to ``LUMEN_LOG_MAX_FIELD_BYTES`` (UTF-8 bytes; 64 KiB by default; 0 turns the cap
off): the formatted message, each string ``extra`` value and the strings nested in ``extra``
dicts and lists, every ``extra`` key (top-level ones too), the exception message and the stack
text. A cap per field alone still lets one record carry any number of full fields (a request body
of forty 64 KiB strings logged as an ``extra``), so the record as a whole is held to
``LUMEN_LOG_MAX_RECORD_BYTES`` (256 KiB by default; 0 turns it off): the strings are taken in
order (message, ``extra`` keys and values as given, exception message, stack) and once they reach
the budget the rest of each is cut. The cut falls on the last
whitespace within 256 characters of the limit when there is one, so a value is not split in half
(a split SSN would no longer look like one), and is marked ``…[truncated N bytes]`` with the
number of bytes removed. Each field cut to the field cap counts once in ``lumen.log.truncated``
(``part``: ``message``, ``extra``, ``exception``, ``stack``), and a record cut to the budget
counts once more, as ``record``. The common path is a ``len()`` per field.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import sys
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from lumen_otel._correlation.context import get_correlation_id, take_finished_request
from lumen_otel._redaction import Redactor
from lumen_otel._redaction.spans import scrubber_for

__all__ = [
    "AS_LOGGED",
    "DEFAULT_MAX_FIELD_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "RESERVED_ATTRS",
    "Enricher",
    "keep_as_logged_for_mail",
    "sanitize",
    "truncate",
]

#: attributes every LogRecord has, plus the ones lumen-otel and the OTel logging
#: instrumentation add: everything else on a record is the user's ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
RESERVED_ATTRS = _RECORD_ATTRS | {
    "message",
    "asctime",
    "taskName",
    "service_name",
    "hostname",
    "correlation_id",
    "trace_id",
    "span_id",
    "trace_flags",
    "lumen_extra",
    "lumen_exception",
    "lumen_internal",
    "otelTraceID",
    "otelSpanID",
    "otelTraceSampled",
    "otelServiceName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}

_MAX_DEPTH = 8
_PRIMITIVES = (str, int, float, bool, type(None))

#: ``LUMEN_LOG_MAX_FIELD_BYTES``' default: 64 KiB per message, extra value or exception text
DEFAULT_MAX_FIELD_BYTES = 64 * 1024
#: ``LUMEN_LOG_MAX_RECORD_BYTES``' default: the message, extras and exception texts of one record
DEFAULT_MAX_RECORD_BYTES = 256 * 1024
#: how far back from the limit the cut looks for whitespace
_BOUNDARY_WINDOW = 256
_WHITESPACE = " \t\n\r"


def truncation_marker(cut: int) -> str:
    """The text that replaces the end of a field cut to the size limit."""
    return f"\u2026[truncated {cut} bytes]"


def truncate(text: str, limit: int) -> tuple[str, int]:
    """``(head, bytes cut)``: ``text`` cut to at most ``limit`` UTF-8 bytes, or ``(text, 0)``.

    The head ends on the last whitespace within 256 characters of the limit when there is
    one (a value split in half may no longer look like PHI to the redactor), and never in the
    middle of a character. No marker is added: the caller appends :func:`truncation_marker`.
    The common case costs a ``len()``: a string of at most ``limit / 4`` characters, or an ASCII
    one of at most ``limit``, always fits.
    """
    length = len(text)
    if length <= limit >> 2 or limit <= 0:
        return text, 0
    if text.isascii():
        if length <= limit:
            return text, 0
        head, total = text[:limit], length
    else:
        data = text.encode("utf-8", "surrogatepass")
        total = len(data)
        if total <= limit:
            return text, 0
        end = limit
        while end > 0 and data[end] & 0xC0 == 0x80:  # a continuation byte: back to the character's start
            end -= 1
        head = data[:end].decode("utf-8", "surrogatepass")
    tail = head[-_BOUNDARY_WINDOW:]
    space = max(tail.rfind(ch) for ch in _WHITESPACE)
    if space >= 0:
        head = head[: len(head) - len(tail) + space + 1]
    kept = len(head) if text.isascii() else len(head.encode("utf-8", "surrogatepass"))
    return head, total - kept


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _chars(value: Any) -> int:
    """The characters of the strings in a sanitized value (dict keys too): a bound on its size / 4."""
    if isinstance(value, str):
        return len(value)
    kind = type(value)
    if kind is dict:
        return sum(len(k) + _chars(v) for k, v in value.items())
    if kind is list:
        return sum(map(_chars, value))
    return 0


class _Limits:
    """Cuts the strings of one record, in order: each to the field cap, all together to the budget."""

    __slots__ = ("field", "field_cuts", "left", "record_cut")

    def __init__(self, field: int, record: int) -> None:
        self.field = field
        self.left = record
        self.field_cuts: list[str] = []  # the part of each field cut to the field cap
        self.record_cut = False

    def take(self, text: str, part: str) -> tuple[str, str]:
        """``(head, marker)``: ``text`` cut to what is left, unredacted, and the marker to add
        after its redacted head (``""`` when it fits)."""
        field, left = self.field, self.left
        limit = min(field, left)
        size = 0 if left == sys.maxsize and len(text) <= limit >> 2 else _utf8_size(text)
        if size <= limit:
            if left != sys.maxsize:
                self.left = left - size
            return text, ""
        head, cut = truncate(text, limit) if limit > 0 else ("", size)
        if field <= left:
            self.field_cuts.append(part)
            if left != sys.maxsize:  # sys.maxsize: no budget, nothing to count down
                self.left = left - (size - cut)
        else:
            self.record_cut = True
            self.left = 0
        return head, truncation_marker(cut)

    def text(self, text: str, part: str) -> str:
        """``text`` cut and marked (the marker goes through redaction with it)."""
        head, marker = self.take(text, part)
        return head + marker if marker else text

    def value(self, value: Any) -> Any:
        """A sanitized ``extra`` value with its strings (dict keys too) cut; itself when nothing is."""
        if isinstance(value, str):
            return self.text(value, "extra")
        kind = type(value)
        if kind is list:
            items = [self.value(v) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if kind is not dict:
            return value
        out: dict[Any, Any] | None = None  # built from the first entry that changes
        for i, (key, item) in enumerate(value.items()):
            new_key = self.text(key, "extra") if isinstance(key, str) else key
            new_item = self.value(item)
            if out is None:
                if new_key is key and new_item is item:
                    continue
                out = dict(itertools.islice(value.items(), i))
            if new_key is not key and (new_key in out or new_key in value):
                new_key = f"{new_key} #{i}"  # two keys cut alike: neither value is lost
                while new_key in out or new_key in value:
                    new_key += "'"
            out[new_key] = new_item
        return value if out is None else out


def sanitize(value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """Make an ``extra`` value JSON-safe now: dicts and lists kept, other objects as ``str``.

    Converting on the caller's thread records the value as it was at the call, breaks
    reference cycles and bounds nesting, so no sink ever drops or chokes on a value. It never
    raises: a key whose ``str()`` fails becomes ``<unprintable key>``, a mapping or collection
    that cannot be read (its ``items()`` or iteration raises) ``<unreadable dict>`` or
    ``<unreadable list>``, so the record is written with the rest of what was logged.
    """
    if isinstance(value, _PRIMITIVES):
        return value
    if depth >= _MAX_DEPTH:
        return "[nested too deep]"
    if id(value) in seen:
        return "[cycle]"
    inner = seen | {id(value)}
    if isinstance(value, dict):
        try:
            return {_key_text(k): sanitize(v, depth + 1, inner) for k, v in value.items()}
        except Exception:  # noqa: BLE001 - a mapping that cannot be read must not lose the record
            return "<unreadable dict>"
    if isinstance(value, (list, tuple, set, frozenset)):
        try:
            return [sanitize(v, depth + 1, inner) for v in value]
        except Exception:  # noqa: BLE001
            return "<unreadable list>"
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the record
        return f"<unprintable {type(value).__name__}>"
    return text if type(text) is str else str.__str__(text)


def _key_text(key: Any) -> str:
    if type(key) is str:
        return key
    try:
        text = str(key)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the record
        return "<unprintable key>"
    return text if type(text) is str else str.__str__(text)


def redact_keys(extras: dict[str, Any], redactor: Redactor, fields: dict[str, Any]) -> dict[str, Any]:
    """``extras`` (already redacted by value) with PHI in mapping *keys* redacted too, at every
    depth: ``extra={"lookup": {"123-45-6789": "matched"}}`` keeps no SSN. A top-level key is an
    attribute of the record: a renamed one is also removed from ``fields`` (the record's
    ``__dict__``), so no other handler sees it. Logger names are code and are left alone."""
    scrub = scrubber_for(redactor)
    if scrub.known_clean(extras) and _PRIMITIVE_TYPES.issuperset(map(type, extras.values())):
        return extras  # the common case: the same few flat keys on every record
    redacted = _redact_nested_keys(extras, scrub.key)  # clean keys are remembered
    if redacted is not extras:
        for key in extras.keys() - redacted.keys():
            fields.pop(key, None)
    return redacted  # type: ignore[no-any-return]


def _redact_nested_keys(value: Any, redact_key: Callable[[str], str]) -> Any:
    """A sanitized value (dicts, lists, primitives) with its dict keys redacted; itself when clean."""
    kind = type(value)
    if kind is list:
        items = [_redact_nested_keys(v, redact_key) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if kind is not dict:
        return value
    out: dict[Any, Any] | None = None  # built from the first key that changes
    for i, (key, item) in enumerate(value.items()):
        new_key = redact_key(key) if type(key) is str else key
        new_item = _redact_nested_keys(item, redact_key) if type(item) in _CONTAINERS else item
        if out is None:
            if new_key is key and new_item is item:
                continue
            out = dict(itertools.islice(value.items(), i))
        if new_key is not key:
            while new_key in out or new_key in value:
                new_key += "'"  # two keys redacted alike: neither value is lost
        out[new_key] = new_item
    return value if out is None else out


_CONTAINERS = frozenset((dict, list))


_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)


_STR_TYPE = frozenset((str,))


def _extras(record: logging.LogRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """The user's ``extra`` entries of a record's ``__dict__``, in the order they were given.

    A plain ``LogRecord`` sets its own attributes first and ``makeRecord`` adds the extras
    after them, so the extras are read from the end back to the first standard attribute
    instead of walking all two dozen in Python. Other record classes get the full walk.
    """
    if type(record) is not logging.LogRecord:
        return {k: v for k, v in fields.items() if k not in RESERVED_ATTRS}
    found: list[str] = []
    for name in reversed(fields):
        if name in _RECORD_ATTRS:
            break
        if name not in RESERVED_ATTRS:
            found.append(name)
    return {name: fields[name] for name in reversed(found)} if found else {}


def _all_primitive(extras: dict[str, Any]) -> bool:
    """True when :func:`sanitize` would return an equal dict (string keys, primitive values)."""
    return _PRIMITIVE_TYPES.issuperset(map(type, extras.values())) and _STR_TYPE.issuperset(map(type, extras))


def _safe_message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - bad %-args: keep what was logged instead of raising
        try:
            return f"{record.msg!s} (unformattable arguments: {record.args!r})"
        except Exception:  # noqa: BLE001
            return "<unformattable log message>"


#: What a record held before enrichment replaced it (its ``exc_info`` and its ``request`` extra),
#: kept only once Django's ``mail_admins`` is patched to use it (``_server_patches.py`` redacts the
#: e-mail it builds from them): off the record, where any handler or formatter could read it, and
#: gone with the record.
AS_LOGGED: weakref.WeakKeyDictionary[logging.LogRecord, tuple[Any, Any]] = weakref.WeakKeyDictionary()
_keep_as_logged = False


def keep_as_logged_for_mail() -> None:
    global _keep_as_logged  # noqa: PLW0603 - switched on once, by the mail_admins patch
    _keep_as_logged = True


#: ``extra`` that Django's development server passes for its own formatter: the connection's socket
#: and a second timestamp. Left on the record for Django's handler, kept out of lumen-otel's output.
_DJANGO_SERVER_EXTRAS = frozenset({"request", "server_time"})

#: server loggers that write about a request after its context has ended: access lines (uvicorn's
#: for Django under ASGI, whose response is sent after the middleware chain returned)
_ACCESS_AFTER_REQUEST = frozenset({"django.server", "gunicorn.access", "uvicorn.access"})
#: Django's ``Not Found: /x`` (4xx responses), logged by its handler after the middleware chain
#: returned and before the access line, which still needs the IDs
_BEFORE_ACCESS_LINE = "django.request"


#: loggers whose messages carry a request's raw path (access lines, Django's ``Not Found: /x``):
#: identifier-shaped segments in it are masked as in span attributes (``/ssn/[REDACTED:SSN]``)
_PATH_LOGGERS = _ACCESS_AFTER_REQUEST | {_BEFORE_ACCESS_LINE, "hypercorn.access"}
#: a path in a message: a "/" that starts a token (``HTTP/1.1`` is not one), up to a space or quote
_MESSAGE_PATH = re.compile(r"(?<![\w/])/[^\s\"']*")


def _logged_after_request(record: logging.LogRecord) -> bool:
    """A server's line about the request that just ended (its access line, Django's 4xx line,
    uvicorn's ``Exception in ASGI application``), logged outside that request's context."""
    name = record.name
    return (
        name in _ACCESS_AFTER_REQUEST
        or name == _BEFORE_ACCESS_LINE
        or (name == "uvicorn.error" and record.exc_info is not None)
    )


class Enricher:
    """Adds service, host, correlation and trace fields; caps and redacts message, extras and exception.

    Args:
        service_name: the ``service_name`` field.
        redactor: removes PHI.
        max_field_bytes: ``LUMEN_LOG_MAX_FIELD_BYTES``: each field is cut to this many UTF-8
            bytes before redaction (0: no cap).
        max_record_bytes: ``LUMEN_LOG_MAX_RECORD_BYTES``: the message, extras (keys and values)
            and exception texts of a record together are cut to this many UTF-8 bytes before
            redaction (0: no budget).
        count_truncated: called with the number of fields cut and the part (``message``,
            ``extra``, ``exception``, ``stack``; ``record`` once for a record cut to the budget)
            for ``lumen.log.truncated``.
    """

    __slots__ = (
        "_field",
        "_fits",
        "_record",
        "count_truncated",
        "hostname",
        "max_field_bytes",
        "max_record_bytes",
        "redactor",
        "service_name",
    )

    def __init__(
        self,
        service_name: str,
        redactor: Redactor,
        *,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        count_truncated: Callable[[int, str], None] | None = None,
    ) -> None:
        self.service_name = service_name
        self.hostname = socket.gethostname()
        self.redactor = redactor
        self.max_field_bytes = max_field_bytes
        self.max_record_bytes = max_record_bytes
        self.count_truncated = count_truncated
        self._field = max_field_bytes if max_field_bytes > 0 else sys.maxsize
        self._record = max_record_bytes if max_record_bytes > 0 else sys.maxsize
        #: a record whose strings hold at most this many characters fits whatever they hold (4 bytes
        #: a character): nothing in it can reach either limit
        self._fits = min(self._field, self._record) >> 2

    def _count(self, part: str, fields: int = 1) -> None:
        count = self.count_truncated
        if count is not None:
            with contextlib.suppress(Exception):  # a broken meter must not lose the record
                count(fields, part)

    def _count_cuts(self, limits: _Limits) -> None:
        extra = 0
        for part in limits.field_cuts:
            if part == "extra":
                extra += 1
            else:
                self._count(part)
        if extra:
            self._count("extra", extra)
        if limits.record_cut:
            self._count("record")

    def __call__(self, record: logging.LogRecord) -> None:  # noqa: PLR0915 - one pass, no call per step
        fields = record.__dict__
        if fields.get("lumen_extra") is not None:
            return  # already enriched (a record handled twice must not be redacted twice)
        extras = _extras(record, fields)
        if _keep_as_logged and (record.exc_info or "request" in extras):
            AS_LOGGED[record] = (record.exc_info, extras.get("request"))
        if extras and record.name == "django.server":
            extras = {k: v for k, v in extras.items() if k not in _DJANGO_SERVER_EXTRAS}
        record.service_name = self.service_name
        record.hostname = self.hostname
        record.correlation_id = cid = get_correlation_id()
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
            record.trace_flags = int(span_context.trace_flags)
        else:
            record.trace_id = record.span_id = None
            record.trace_flags = 0
            if cid is None and _logged_after_request(record):
                finished = take_finished_request(keep=record.name == _BEFORE_ACCESS_LINE)
                if finished is not None:
                    record.correlation_id, record.trace_id, record.span_id, record.trace_flags = finished

        message = _safe_message(record)
        if extras and not _all_primitive(extras):
            extras = sanitize(extras)
        exc_info = record.exc_info
        exception: dict[str, Any] | None = None
        exc_message = stack = ""
        if exc_info and exc_info[0] is not None:
            exc_type, exc_value, tb = exc_info
            try:
                stack = "".join(traceback.format_exception(exc_type, exc_value, tb))
            except Exception:  # noqa: BLE001
                stack = f"{exc_type!r} (traceback unavailable)"
            exc_message = _safe_str(exc_value)
            exception = {"type": getattr(exc_type, "__qualname__", str(exc_type))}
        exc_text = record.exc_text if exception is None else None
        stack_info = record.stack_info
        message_cut = exc_message_cut = stack_cut = exc_text_cut = stack_info_cut = ""
        size = len(message) + len(exc_message) + len(stack)
        if extras:
            size += _chars(extras)
        if exc_text:
            size += len(exc_text)
        if stack_info:
            size += len(stack_info)
        if size > self._fits:  # something may be too long: measured and cut, in the record's order
            limits = _Limits(self._field, self._record)
            message, message_cut = limits.take(message, "message")
            if extras:
                capped = limits.value(extras)
                if capped is not extras:
                    for key in extras.keys() - capped.keys():
                        fields.pop(key, None)  # a cut key: the uncut attribute must not stay behind
                    extras = capped
            if exception is not None:
                exc_message, exc_message_cut = limits.take(exc_message, "exception")
                stack, stack_cut = limits.take(stack, "stack")
            if exc_text:
                exc_text, exc_text_cut = limits.take(exc_text, "stack")
            if stack_info:
                stack_info, stack_info_cut = limits.take(stack_info, "stack")
            self._count_cuts(limits)
        if extras or exception is not None:
            # redacted together: a value found in one (a PHI key's value, a labelled name, an HL7
            # field) is masked wherever else it appears in the record
            texts: tuple[str, ...] = (exc_message, stack) if exception is not None else ()
            message, redacted_extras, texts = self.redactor.redact_record(message, extras or {}, *texts)
            if extras:
                extras = redacted_extras
            if exception is not None:
                exception["message"] = texts[0] + exc_message_cut
                exception["stacktrace"] = texts[1] + stack_cut
        else:
            message = self.redactor.redact_text(message)
        message += message_cut
        if record.name in _PATH_LOGGERS and "/" in message:
            path = scrubber_for(self.redactor).path
            message = _MESSAGE_PATH.sub(lambda m: path(m.group()), message)
        record.msg = message
        record.args = None
        record.message = message

        if extras:
            extras = redact_keys(extras, self.redactor, fields)  # PHI in key names, at any depth
            fields.update(extras)  # other handlers on the record see redacted values too
        record.lumen_extra = extras

        record.lumen_exception = exception
        if exception is not None:
            record.exc_text = exception["stacktrace"]
            record.exc_info = None  # nobody downstream re-formats the unredacted exception
        elif exc_text:
            record.exc_text = self.redactor.redact_text(exc_text) + exc_text_cut
        if stack_info:
            record.stack_info = self.redactor.redact_text(stack_info) + stack_info_cut


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<unprintable {type(value).__name__}>"
