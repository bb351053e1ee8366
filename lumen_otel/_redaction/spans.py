"""Redaction for spans: a SpanExporter wrapper that exports redacted copies.

A span carries PHI as easily as a log line: ``http.url``/``url.full``/``url.query`` with
``?mrn=``, a span name built from a path (``GET /patients/12345``), an exception event whose
message names a patient, an attribute set by application code (``patient.ssn``). Finished spans
(``ReadableSpan``) are immutable, so the exporter builds new ``ReadableSpan`` objects with the
name, attributes, events, links and status description redacted, and hands those to the real
exporter. Ids, times, kind and scope are carried over untouched, as are the dropped counts.

Every string of a span that leaves the process goes through the redactor (:class:`AttributeScrubber`):

- attribute *keys* as well as values (``span.set_attribute(f"lookup.{ssn}", ...)``): a key the
  redactor would change is renamed to its redacted form;
- ``bytes`` values (the SDK accepts them and OTLP sends them as ``bytes_value``): decoded as UTF-8
  (bad bytes replaced) for the scan, and sent as the redacted string when PHI is found, else
  left as the bytes they were;
- URL attributes (``url.full``, ``url.path``, ``http.target``, ``http.url``, ``url.original``,
  ``http.route``) and span names with a path in them: identifier-shaped path segments are masked
  (:meth:`AttributeScrubber.path`), since ``/ssn/123456789`` or ``/orders/99812347`` carry no label
  the text rules could key on;
- resource attributes, except those that name the service, host and SDK (``service.*``,
  ``host.name``, ``deployment.environment*``, ``telemetry.*``: the collector's ``ignored_keys``),
  once per resource object.

Instrumentation scope names are code (like logger names), not data, and are left as they are.

``tracestate`` is exported with every span (and its links) and arrives from callers: an entry
whose value the redactor would change (``vendor=ssn:123-45-6789``, ``acme=patient Sarah
Murphy``), or whose key names PHI (``mrn=97727665``), is dropped; the clean, W3C-valid entries
are kept in their order (:func:`redact_trace_state`). The propagator applies the same filter
to what it extracts and injects, so such entries are not forwarded either.

Wiring (bootstrap does this)::

    exporter = RedactingSpanExporter(OTLPSpanExporter(...), redactor)
    provider.add_span_processor(BatchSpanProcessor(exporter))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, Status
from opentelemetry.trace.span import TraceState

from lumen_otel._redaction import Redactor, get_default_redactor

__all__ = [
    "URL_ATTRIBUTES",
    "AttributeScrubber",
    "RedactingSpanExporter",
    "entry_is_phi",
    "redact_key",
    "redact_span",
    "redact_span_context",
    "redact_trace_state",
    "scrubber_for",
]

#: attributes that hold a URL or a path: identifier-shaped path segments are masked in them
URL_ATTRIBUTES = frozenset({"url.full", "url.path", "url.original", "http.target", "http.url", "http.route"})
#: captured HTTP headers (``http.request.header.<name>``, ``http.response.header.<name>``)
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
#: headers that carry credentials: never exported, whatever they hold
_CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrftoken",
    }
)
#: resource attributes that identify the service, its host and SDK: never redacted (a masked
#: ``service.name`` would route and label everything wrongly), as the collector's ``ignored_keys``
_RESOURCE_KEPT = frozenset(
    {
        "service.name",
        "service.namespace",
        "service.version",
        "service.instance.id",
        "host.name",
        "deployment.environment",
        "deployment.environment.name",
    }
)
# One path segment: after a "/" that is not part of "//" (a URL's authority is not a segment).
_SEGMENT = re.compile(r"(?<!/)/([^/\s?#]+)")
_SIX_DIGITS = re.compile(r"(?:\D*\d){6}")
# Segments kept whole: UUIDs and 16/32-hex ids (correlation, trace and resource ids: not PHI by
# themselves, and what an operator follows a request by), and the redactor's own tokens.
_KEEP_SEGMENT = re.compile(
    r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"
    r"|[0-9a-fA-F]{32}|[0-9a-fA-F]{16}|\[REDACTED:[A-Z_]{1,24}\]|[a-z_]{2,10}:[0-9a-f]{12}"
)
_TOKEN_SEGMENT = re.compile(r"\[REDACTED:[A-Z_]{1,24}\]|[a-z_]{2,10}:[0-9a-f]{12}")
_CACHE_MAX = 4096
_CACHE_VALUE_MAX = 512


def redact_key(redactor: Redactor, key: str) -> str:
    """A mapping key with the PHI in it redacted (itself when clean): the whole key as text, then
    each dotted part, since attribute names join words with dots (``lookup.123-45-6789``)."""
    redacted = redactor.redact_value(key)
    if redacted is not key or "." not in key:
        return redacted
    parts = key.split(".")
    cleaned = [redactor.redact_value(part) for part in parts]
    if all(new is old for new, old in zip(cleaned, parts, strict=True)):
        return key
    return ".".join(cleaned)


class AttributeScrubber:
    """The redaction of attribute mappings, keys, ``bytes`` values, URL paths and resources that
    spans and metrics share, for one :class:`Redactor`.

    Clean results are remembered (bounded): span and metric attributes repeat on every export.
    A mapping with nothing to redact comes back as the same object, so callers can tell by
    identity that no copy is needed.
    """

    __slots__ = ("_clean_keys", "_clean_paths", "_resources", "redactor")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._clean_keys: set[str] = set()
        self._clean_paths: set[str] = set()
        self._resources: dict[int, tuple[Resource, Resource]] = {}

    def path(self, text: str) -> str:
        """``text`` with identifier-shaped path segments masked.

        A segment is masked when it holds at least six digits (``/ssn/123456789``,
        ``/orders/99812347``, ``/claims/2024-000123``), or any digit right after a segment that
        names PHI (``/mrn/00123``, ``/patients/MRN00123``, ``/patients/<uuid>``: the kind of that
        name, MRN for a patient word). UUIDs and 16/32-hex ids are kept elsewhere: they are the
        correlation, trace and resource ids operators follow requests by. The query string is
        the text rules' (``?mrn=`` is labelled).
        """
        if "/" not in text or text in self._clean_paths:
            return text
        redactor = self.redactor
        parts: list[str] = []
        last = 0
        label: str | None = None
        for match in _SEGMENT.finditer(text):
            segment = match.group(1)
            kind: str | None = None
            if any(ch.isdigit() for ch in segment) and _TOKEN_SEGMENT.fullmatch(segment) is None:
                if label is not None:
                    kind = label
                elif _SIX_DIGITS.match(segment) is not None and _KEEP_SEGMENT.fullmatch(segment) is None:
                    kind = "ID"
                label = None
            else:
                named = redactor.key_kind(segment)
                label = "MRN" if named == "NAME" else named
            if kind is not None:
                parts.append(text[last : match.start(1)])
                parts.append(redactor.token(kind, segment))
                last = match.end(1)
        if not parts:
            if len(text) <= _CACHE_VALUE_MAX:
                if len(self._clean_paths) >= _CACHE_MAX:
                    self._clean_paths.clear()
                self._clean_paths.add(text)
            return text
        parts.append(text[last:])
        return "".join(parts)

    def known_clean(self, keys: Iterable[Any]) -> bool:
        """Whether every one of ``keys`` was found clean before (one set operation, in C)."""
        return self._clean_keys.issuperset(keys)

    def key(self, key: str) -> str:
        """:func:`redact_key`, clean keys remembered (bounded)."""
        clean = self._clean_keys
        if key in clean:
            return key
        redacted = redact_key(self.redactor, key)
        if redacted is key:
            if len(clean) >= _CACHE_MAX:
                clean.clear()
            clean.add(key)
        return redacted

    def name(self, name: str) -> str:
        """A span name: the text rules, then the path rules when it holds a path (``GET /x/1``)."""
        redacted = self.redactor.redact_value(name)
        return self.path(redacted) if "/" in redacted else redacted

    def _bytes(self, key: str, value: Any) -> Any:
        """A ``bytes`` value (or a sequence of them): the redacted text when PHI is found, else itself."""
        if type(value) is not bytes:
            items = [self._bytes(key, v) if type(v) is bytes else v for v in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return tuple(str(v) if type(v) is not bytes else v.decode("utf-8", "replace") for v in items)
        text = value.decode("utf-8", "replace")
        redactor = self.redactor
        kind = redactor.key_kind(key)
        if kind is not None:
            return redactor.token(kind, text)
        redacted = redactor.redact_value(text)
        if redacted is text:
            return value
        return redacted

    def _header(self, key: str, value: Any) -> Any:
        """A captured HTTP header (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``): credentials
        masked whole, other values also checked percent-decoded (``patient%20Sarah%20Murphy``)."""
        if key.rpartition(".")[2].replace("_", "-") in _CREDENTIAL_HEADERS:
            return (
                tuple("[REDACTED:CREDENTIAL]" for _ in value)
                if isinstance(value, (tuple, list))
                else ("[REDACTED:CREDENTIAL]")
            )
        if isinstance(value, (tuple, list)):
            items = tuple(self._decoded(v) if type(v) is str else v for v in value)
            return value if all(new is old for new, old in zip(items, value, strict=True)) else items
        return self._decoded(value) if type(value) is str else value

    def _decoded(self, value: str) -> str:
        if "%" not in value:
            return value
        decoded = unquote(value)
        redacted = self.redactor.redact_value(decoded)
        return value if redacted == decoded else redacted

    def attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``attributes`` redacted: values by key name and by value, ``bytes`` values, URL paths,
        and keys. The same object when nothing changed."""
        if not attributes:
            return attributes
        redactor = self.redactor
        redacted = redactor.redact_mapping(attributes)
        changed = False
        for key, value in attributes.items():
            out = redacted[key]
            kind = type(value)
            if kind is bytes or (kind in (tuple, list) and any(type(v) is bytes for v in value)):
                out = self._bytes(key, value)
            elif type(out) is str and key in URL_ATTRIBUTES:
                out = self.path(out)
            elif type(key) is str and key.startswith(_HEADER_PREFIXES):
                out = self._header(key, out)
            if out is not value:
                changed = True
                redacted[key] = out
        renamed = (
            None
            if self._clean_keys.issuperset(attributes)
            else {key: new for key in attributes if type(key) is str and (new := self.key(key)) is not key}
        )
        if renamed:
            changed = True
            redacted = _renamed(redacted, renamed)
        return redacted if changed else attributes

    def resource(self, resource: Resource) -> Resource:
        """``resource`` with its attributes redacted, except the service's and host's own names;
        the same object when clean (checked once per resource object)."""
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        attributes = resource.attributes
        checked = {
            k: v for k, v in attributes.items() if k not in _RESOURCE_KEPT and not k.startswith("telemetry.")
        }
        redacted = self.attributes(checked)
        if redacted is checked:
            result = resource
        else:
            assert redacted is not None
            kept = {k: v for k, v in attributes.items() if k not in checked}
            result = Resource({**kept, **redacted}, resource.schema_url)
        if len(self._resources) >= 64:
            self._resources.clear()
        self._resources[id(resource)] = (resource, result)
        return result


def _renamed(mapping: dict[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """``mapping`` with the keys in ``renamed`` replaced, in order; a second key redacted to the
    same text gets `` (2)``, `` (3)``... rather than overwriting the first one's value."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        new = renamed.get(key, key)
        if new in out:
            n = 2
            while f"{new} ({n})" in out:
                n += 1
            new = f"{new} ({n})"
        out[new] = value
    return out


_SCRUBBERS: dict[int, tuple[Redactor, AttributeScrubber]] = {}


def scrubber_for(redactor: Redactor) -> AttributeScrubber:
    """The :class:`AttributeScrubber` of ``redactor`` (one per redactor, so their memories last)."""
    entry = _SCRUBBERS.get(id(redactor))
    if entry is not None and entry[0] is redactor:
        return entry[1]
    if len(_SCRUBBERS) >= 16:
        _SCRUBBERS.clear()
    scrubber = AttributeScrubber(redactor)
    _SCRUBBERS[id(redactor)] = (redactor, scrubber)
    return scrubber


def entry_is_phi(redactor: Redactor, key: str, value: str) -> bool:
    """True when a ``tracestate`` or ``baggage`` entry names PHI (its key) or carries it (its
    value, as sent and percent-decoded: ``patient%20Sarah%20Murphy`` is a name too)."""
    if redactor.key_kind(key) is not None:
        return True
    candidates = {value, unquote(value)} if "%" in value else {value}
    for candidate in candidates:
        if redactor.redact_value(candidate) != candidate:
            return True
        pair = f"{key}={candidate}"  # label rules: "mrn=..." inside a vendor's value
        if redactor.redact_text(pair) != pair:
            return True
    return False


def redact_trace_state(trace_state: TraceState, redactor: Redactor) -> TraceState:
    """``trace_state`` without the entries the redactor would flag; the same object when all are clean."""
    if not trace_state:
        return trace_state
    items = list(trace_state.items())
    kept = [(key, value) for key, value in items if not entry_is_phi(redactor, key, value)]
    if len(kept) == len(items):
        return trace_state
    return type(trace_state)(kept)  # a subclass may accept keys the API's grammar does not


def redact_span_context(context: SpanContext, redactor: Redactor) -> SpanContext:
    """``context`` with its ``tracestate`` filtered by :func:`redact_trace_state` (itself when clean)."""
    trace_state = context.trace_state
    if not trace_state:
        return context
    cleaned = redact_trace_state(trace_state, redactor)
    if cleaned is trace_state:
        return context
    return SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=context.is_remote,
        trace_flags=context.trace_flags,
        trace_state=cleaned,
    )


def _bounded_attributes(redacted: Mapping[str, Any] | None, dropped: int) -> BoundedAttributes:
    bounded = BoundedAttributes(maxlen=None, attributes=redacted, immutable=True, max_value_len=None)
    bounded.dropped = dropped
    return bounded


def _bounded(items: list[Any], dropped: int) -> BoundedList:  # type: ignore[type-arg]
    out: BoundedList = BoundedList.from_seq(None, items)  # type: ignore[type-arg]
    out.dropped = dropped
    return out


def redact_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """A copy of ``span`` with its name, attributes (keys, values, ``bytes``, URL paths), events
    (names and attributes), links, status description, resource and ``tracestate`` redacted.

    Most spans hold nothing to redact (``GET /items/{item_id}``, a method, a route, a status
    code): then ``span`` itself is returned, without building a copy.
    """
    scrub = scrubber_for(redactor)
    name = scrub.name(span.name)
    span_attributes = span.attributes  # a new read-only view on each access: compared as one
    attributes = scrub.attributes(span_attributes)
    status = span.status
    description = redactor.redact_value(status.description) if status.description else status.description
    context = redact_span_context(span.context, redactor) if span.context is not None else span.context
    resource = scrub.resource(span.resource)
    events = [(event, event.attributes) for event in span.events]
    events_out = [(scrub.name(event.name), scrub.attributes(attrs)) for event, attrs in events]
    links = [(link, link.attributes) for link in span.links]
    links_out = [
        (redact_span_context(link.context, redactor), scrub.attributes(attrs)) for link, attrs in links
    ]
    if (
        name is span.name
        and context is span.context
        and description is status.description
        and attributes is span_attributes
        and resource is span.resource
        and all(n is e.name and a is attrs for (e, attrs), (n, a) in zip(events, events_out, strict=True))
        and all(c is ln.context and a is attrs for (ln, attrs), (c, a) in zip(links, links_out, strict=True))
    ):
        return span
    if description is not status.description:
        status = Status(status.status_code, description)
    return ReadableSpan(
        name=name,
        context=context,
        parent=span.parent,
        resource=resource,
        attributes=_bounded_attributes(attributes, span.dropped_attributes),
        events=_bounded(
            [
                Event(
                    event_name,
                    _bounded_attributes(event_attributes, getattr(event, "dropped_attributes", 0)),
                    event.timestamp,
                    limit=None,
                )
                for (event, _), (event_name, event_attributes) in zip(events, events_out, strict=True)
            ],
            span.dropped_events,
        ),
        links=_bounded(
            [
                Link(
                    link_context,
                    _bounded_attributes(link_attributes, getattr(link, "dropped_attributes", 0)),
                )
                for (link, _), (link_context, link_attributes) in zip(links, links_out, strict=True)
            ],
            span.dropped_links,
        ),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps a span exporter so that only redacted copies of spans leave the process.

    Args:
        exporter: the real exporter (OTLP, console, in-memory...).
        redactor: the redactor to use; by default the process-wide one at export time, so a key
            configured later by ``configure_logging`` applies.
    """

    __slots__ = ("_exporter", "_redactor")

    def __init__(self, exporter: SpanExporter, redactor: Redactor | None = None) -> None:
        self._exporter = exporter
        self._redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redactor = self._redactor or get_default_redactor()
        return self._exporter.export([redact_span(span, redactor) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
