"""Parsing ``traceparent`` and ``tracestate`` as W3C Trace Context level 2 says, whatever the server.

Why not the OpenTelemetry API's parser
--------------------------------------
The stock ``TraceContextTextMapPropagator`` gets four things wrong that a caller can notice:

* **Repeated ``traceparent``.** It uses the first value when an ASGI server hands it several,
  so a request carrying two different traceparents joins the first trace. ``traceparent`` is
  not a list-valued header: two of them (as separate lines, or joined with ``,`` as WSGI
  servers do) make it invalid, and the request starts a new trace.
* **Repeated ``tracestate`` keys.** It discards the whole ``tracestate``. The specification
  lets a vendor discard the duplicates it did not generate: the first occurrence is kept.
* **The key grammar.** Keys may contain ``@`` anywhere after the first character
  (``foo@``, ``foo@@bar``, ``tenant@system``), up to 256 characters in all; the API still
  applies an older ``tenant@system`` grammar (241 + 14 characters) and drops such members,
  and with them every other member of the header.
* **Raw values in its warnings.** It logs the rejected member, value and all; a ``tracestate``
  value may carry what a caller should never have put there. Nothing is logged here.

:class:`W3CTraceState` is a ``TraceState`` whose members follow the current grammar (the API's
constructor would drop keys it does not know), so it can ride on a ``SpanContext`` through the
SDK, which only passes the parent's trace state on, to ``inject``.

Rules applied
-------------
``traceparent``: exactly one field value; leading and trailing spaces and tabs ignored; lower-case
hex only; version ``ff`` invalid; version ``00`` exactly ``00-<32 hex>-<16 hex>-<2 hex>``; a
higher version at least those four fields, then either the end or ``-`` and fields that are not
read; all-zero trace id or parent id invalid. Only the sampled and random-trace-id flags are
kept (the other bits are reserved and must be sent as zero).

``tracestate``: read only with a valid ``traceparent``; several field values are one list
(RFC 9110 field order); spaces and tabs around members ignored; empty members skipped; any
member that is not ``key=value`` in the grammar, more than 32 members, or more than 8192
characters in all, and the whole ``tracestate`` is discarded; for a repeated key the first
occurrence is kept. Adding a member at the limit of 32 removes the right-most one; a member
that is added or updated moves to the left.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from opentelemetry.trace import SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

__all__ = [
    "MAX_MEMBERS",
    "Traceparent",
    "W3CTraceState",
    "is_valid_member",
    "parse_traceparent",
    "parse_tracestate",
    "remote_span_context",
    "traceparent_header",
]

#: at most this many list members in a ``tracestate``
MAX_MEMBERS = 32
#: a combined ``tracestate`` longer than this is not read at all (the specification asks
#: for at least 512 to be propagated)
MAX_TRACESTATE_LENGTH = 8192
#: a ``traceparent`` longer than this is not read (future versions may add fields)
MAX_TRACEPARENT_LENGTH = 512

_OWS = " \t"
_KEY = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}", re.ASCII)
_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]", re.ASCII)
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", re.ASCII)
_HIGHER_VERSION = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?", re.ASCII | re.DOTALL
)
_KNOWN_FLAGS = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID


def is_valid_member(key: str, value: str) -> bool:
    """Whether ``key=value`` is a ``tracestate`` list member in the current grammar."""
    return (
        isinstance(key, str)
        and isinstance(value, str)
        and _KEY.fullmatch(key) is not None
        and _VALUE.fullmatch(value) is not None
    )


class W3CTraceState(TraceState):
    """A ``TraceState`` that accepts every key of the current grammar and mutates as the spec says.

    Invalid members given to the constructor are left out, a repeated key keeps its first
    value, and only the first 32 members are kept; nothing is logged (values may be sensitive).
    ``add`` and ``update`` put the member first; at 32 members ``add`` removes the right-most.
    """

    def __init__(self, entries: Sequence[tuple[str, str]] | None = None) -> None:
        members: dict[str, str] = {}
        for key, value in entries or ():
            if key not in members and len(members) < MAX_MEMBERS and is_valid_member(key, value):
                members[key] = value
        self._members = members

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __getitem__(self, key: str) -> str:
        return self._members[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"W3CTraceState({list(self._members.items())!r})"

    def keys(self) -> typing.KeysView[str]:
        return self._members.keys()

    def items(self) -> typing.ItemsView[str, str]:
        return self._members.items()

    def values(self) -> typing.ValuesView[str]:
        return self._members.values()

    def add(self, key: str, value: str) -> W3CTraceState:
        """A copy with ``key=value`` first (itself if the key is there already or the pair is invalid)."""
        if key in self._members or not is_valid_member(key, value):
            return self
        kept = list(self._members.items())[: MAX_MEMBERS - 1]
        return W3CTraceState([(key, value), *kept])

    def update(self, key: str, value: str) -> W3CTraceState:
        """A copy with ``key`` set to ``value`` and moved first (added when missing)."""
        if not is_valid_member(key, value):
            return self
        others = [(k, v) for k, v in self._members.items() if k != key][: MAX_MEMBERS - 1]
        return W3CTraceState([(key, value), *others])

    def delete(self, key: str) -> W3CTraceState:
        """A copy without ``key`` (itself when it is not there)."""
        if key not in self._members:
            return self
        return W3CTraceState([(k, v) for k, v in self._members.items() if k != key])

    def to_header(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self._members.items())

    @classmethod
    def from_header(cls, header_list: list[str]) -> W3CTraceState:
        """The members of one or more ``tracestate`` field values; empty when they are invalid."""
        return parse_tracestate(header_list) or cls()

    @classmethod
    def get_default(cls) -> W3CTraceState:
        return cls()


def _values(raw: str | bytes | Sequence[str | bytes] | None) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (str, bytes)):
        raw = [raw]
    return [value.decode("latin-1") if isinstance(value, bytes) else str(value) for value in raw]


class Traceparent(NamedTuple):
    """The fields of a valid ``traceparent`` that this version reads."""

    trace_id: int
    span_id: int
    flags: int


def parse_traceparent(raw: str | bytes | Sequence[str | bytes] | None) -> Traceparent | None:
    """The fields of the ``traceparent`` field value(s), or None when there is no valid one.

    ``raw`` is what a ``Getter`` returns: one value per header line (ASGI), or a single value in
    which a WSGI server joined repeated lines with ``,``. Either way, more than one is invalid.
    """
    values = _values(raw)
    if len(values) != 1:
        return None
    value = values[0].strip(_OWS)
    if len(value) > MAX_TRACEPARENT_LENGTH or "," in value:
        return None
    groups: Sequence[str] | None = None
    if value.startswith("00-"):
        match = _VERSION_00.fullmatch(value)
        groups = match.groups() if match is not None else None
    elif not value.startswith("ff-"):
        match = _HIGHER_VERSION.fullmatch(value)
        groups = match.groups()[1:] if match is not None else None
    if groups is None:
        return None
    trace_id, span_id, flags = (int(group, 16) for group in groups)
    if trace_id == 0 or span_id == 0:
        return None
    return Traceparent(trace_id, span_id, flags & _KNOWN_FLAGS)


def remote_span_context(
    traceparent: str | bytes | Sequence[str | bytes] | None,
    tracestate: str | bytes | Sequence[str | bytes] | None,
) -> SpanContext | None:
    """The caller's span context from the two headers; ``tracestate`` is read only with a valid
    ``traceparent``, and an invalid one leaves the span context without trace state."""
    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    return SpanContext(
        parent.trace_id,
        parent.span_id,
        is_remote=True,
        trace_flags=TraceFlags(parent.flags),
        trace_state=parse_tracestate(tracestate) or W3CTraceState(),
    )


def parse_tracestate(raw: str | bytes | Sequence[str | bytes] | None) -> W3CTraceState | None:
    """The members of ``tracestate`` field value(s); None when absent, empty, or invalid as a whole."""
    values = _values(raw)
    if not values:
        return None
    combined = ",".join(values)
    if len(combined) > MAX_TRACESTATE_LENGTH:
        return None
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    count = 0
    for field in combined.split(","):
        member = field.strip(_OWS)
        if not member:
            continue
        count += 1
        if count > MAX_MEMBERS:
            return None
        key, equals, value = member.partition("=")
        if not equals or not is_valid_member(key, value):
            return None
        if key not in seen:
            seen.add(key)
            pairs.append((key, value))
    return W3CTraceState(pairs) if pairs else None


def traceparent_header(context: SpanContext) -> str:
    """``traceparent`` for ``context`` in version 00, with only the flags this version defines."""
    flags = int(context.trace_flags) & _KNOWN_FLAGS
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
