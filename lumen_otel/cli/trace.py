"""``lumen-otel trace <id>``: every record of one request across services, as a timeline tree.

Records come from a log directory (the JSON-lines ``<service>.log`` files lumen-otel
writes, rotated ones included), from Loki (``--loki URL``, LogQL over its HTTP API) or from
OpenSearch / Elasticsearch (``--opensearch URL`` / ``--elasticsearch URL``, the ``_search`` API
over the ``logs-lumen-*`` data streams that collector-config/gateway-search.yaml fills).
All become the same :class:`Record`; :func:`build_timeline` groups them by service and span
and nests each span under its parent span, and :func:`render` draws the tree that
``lumen-otel demo`` prints too.

Log lines name their span but not its parent, so parentage comes from the request's spans:
OTLP JSON lines as the collector's file exporter writes them (``collector-config/local.yaml``;
``--spans PATH``, or found under the log directory: ``*.jsonl`` and ``collector/*.jsonl``, where
``lumen-otel demo --collector`` puts them), or a ``parent_span_id`` field on a record. A span
whose parent logged nothing (an httpx client span) is walked through to the nearest ancestor
that did, and a span's window is its real start and end, so a callee comes after its caller even
when the caller logged nothing before the call. Without spans, a span nests under the span of
another service whose records enclose it, else under the one of the same trace that outlived it
(the caller answers after its callee).

The ID may be a correlation ID (any valid form, a UUID in any case) or a 32-hex trace id:
the correlation ID of a request that came without one *is* its trace id in UUID form.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from lumen_otel._config.settings import PARAMETERS
from lumen_otel._logging.formatters import CORE_FIELDS
from lumen_otel.cli._terminal import escape_text, markup_safe

__all__ = [
    "Query",
    "Record",
    "Span",
    "Timeline",
    "build_timeline",
    "load_from_dir",
    "load_from_loki",
    "load_from_search",
    "load_spans",
    "parse_query",
    "register",
    "render",
]

_TRACE_HEX = re.compile(r"[0-9a-fA-F]{32}")
_SPAN_HEX = re.compile(r"[0-9a-f]{16}")
_CORE_KEYS = frozenset({*CORE_FIELDS, "exception", "parent_span_id"})
_ACCESS_LOGGERS = frozenset({"uvicorn.access", "django.server", "gunicorn.access"})
#: the variables the services read their log directory from, first name wins (the settings table's)
_LOG_DIR_VARIABLES = next(p.env for p in PARAMETERS if p.field == "log_dir")
_REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


# ---------------------------------------------------------------- the query


@dataclass(frozen=True)
class Query:
    """What to look for: a correlation ID, and the trace id it maps to when it is one."""

    raw: str
    correlation_id: str
    trace_id: str | None

    def matches(self, correlation_id: object, trace_id: object) -> bool:
        return correlation_id == self.correlation_id or (
            self.trace_id is not None and trace_id == self.trace_id
        )


def parse_query(raw: str) -> Query:
    """A UUID (any case, braces) or 32-hex trace id gives both forms; anything else is a legacy ID.

    Raises:
        ValueError: not a UUID, a trace id or a valid correlation ID.
    """
    text = raw.strip()
    if _TRACE_HEX.fullmatch(text):
        value = int(text, 16)
        if value == 0:
            raise ValueError("the all-zero trace id is not valid")
        return Query(raw, str(uuid.UUID(int=value)), text.lower())
    from lumen_otel._correlation.context import parse_correlation_id, trace_id_for_correlation_id

    cid = parse_correlation_id(text, warn=False)
    if cid is None:
        raise ValueError(
            f"{raw!r} is neither a UUID, a 32-hex trace id nor a valid correlation ID "
            "(1-128 characters of A-Z a-z 0-9 . _ : + = / @ -)"
        )
    return Query(raw, cid, format(trace_id_for_correlation_id(cid), "032x"))


# ---------------------------------------------------------------- records


@dataclass
class Record:
    """One log record, from a file or from Loki."""

    time: float  # seconds since the epoch
    service: str
    level: str
    logger: str
    message: str
    correlation_id: str | None
    trace_id: str | None
    span_id: str | None
    extras: dict[str, Any] = field(default_factory=dict)
    exception: dict[str, Any] | None = None
    #: the span's parent, when the source carries it (a ``parent_span_id`` field)
    parent_span_id: str | None = None

    @property
    def is_error(self) -> bool:
        return self.level in ("ERROR", "CRITICAL") or self.exception is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": _rfc3339(self.time),
            "level": self.level,
            "service_name": self.service,
            "logger": self.logger,
            "message": self.message,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            **self.extras,
            **({"exception": self.exception} if self.exception is not None else {}),
        }


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _parse_time(text: str) -> float | None:
    """Seconds since the epoch, computed as Loki's nanoseconds are, so both sources agree."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return ((when - _EPOCH) // dt.timedelta(microseconds=1)) * 1000 / 1e9


def _record_from_line(data: dict[str, Any]) -> Record | None:
    stamp = _parse_time(str(data.get("timestamp", "")))
    if stamp is None:
        return None
    exception = data.get("exception")
    return Record(
        time=stamp,
        service=str(data.get("service_name") or "?"),
        level=str(data.get("level") or "INFO"),
        logger=str(data.get("logger") or ""),
        message=str(data.get("message") or ""),
        correlation_id=data.get("correlation_id"),
        trace_id=data.get("trace_id"),
        span_id=data.get("span_id"),
        extras={k: v for k, v in data.items() if k not in _CORE_KEYS},
        exception=exception if isinstance(exception, dict) else None,
        parent_span_id=_span_hex(data.get("parent_span_id")),
    )


def _span_hex(value: object) -> str | None:
    """A 16-hex span id in lower case, else None (empty, all-zero or not an id)."""
    if not isinstance(value, str):
        return None
    text = value.lower()
    return text if _SPAN_HEX.fullmatch(text) and text != "0" * 16 else None


def _log_files(log_dir: Path) -> list[Path]:
    files = [p for p in log_dir.glob("*.log") if p.is_file()]
    files += [p for p in log_dir.glob("*.log.*") if p.is_file() and p.suffix[1:].isdigit()]
    return sorted(files)


def _scan(files: Iterable[Path], needles: set[str]) -> Iterator[dict[str, Any]]:
    for path in files:
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                if not any(needle in line for needle in needles):
                    continue  # cheap: most lines of a busy log are other requests
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    yield data


def load_from_dir(log_dir: Path, query: Query) -> list[Record]:
    """Every record of the request in ``log_dir``, oldest first.

    Records of the request's trace ids are included too (one ID can span several traces, and
    a trace may have records logged before the correlation ID was known).
    """
    files = _log_files(log_dir)
    needles = {query.correlation_id, *([query.trace_id] if query.trace_id else [])}
    found: dict[tuple[Any, ...], Record] = {}
    trace_ids: set[str] = set()
    for _ in range(2):  # the second pass picks up records found only by their trace id
        for data in _scan(files, needles):
            if not (
                query.matches(data.get("correlation_id"), data.get("trace_id"))
                or data.get("trace_id") in trace_ids
            ):
                continue
            record = _record_from_line(data)
            if record is not None:
                found[(record.time, record.service, record.span_id, record.message)] = record
                if record.trace_id:
                    trace_ids.add(record.trace_id)
        new = trace_ids - needles
        if not new:
            break
        needles = needles | new
    return sorted(found.values(), key=lambda r: r.time)


# ---------------------------------------------------------------- Loki

#: structured metadata Loki adds from the OTLP resource and record: not the user's extras
_LOKI_INTERNAL = frozenset(
    {
        "service_name",
        "service_version",
        "service_instance_id",
        "service_namespace",
        "host_name",
        "deployment_environment_name",
        "deployment_environment",
        "detected_level",
        "level",
        "severity_text",
        "severity_number",
        "scope_name",
        "scope_version",
        "observed_timestamp",
        "flags",
        "trace_id",
        "span_id",
        "correlation_id",
        "telemetry_distro_name",
        "telemetry_distro_version",
        "telemetry_sdk_name",
        "telemetry_sdk_language",
        "telemetry_sdk_version",
        "exception_type",
        "exception_message",
        "exception_stacktrace",
        "logger",
    }
)
_LOKI_INTERNAL_PREFIXES = ("code_", "process_", "os_", "k8s_", "container_")


def logql(query: Query, by: str = "correlation_id") -> str:
    value = query.correlation_id if by == "correlation_id" else query.trace_id
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{{service_name=~".+"}} | {by}="{escaped}"'


def _loki_records(payload: dict[str, Any]) -> list[Record]:
    records: list[Record] = []
    for stream in payload.get("data", {}).get("result", []) or []:
        labels = dict(stream.get("stream") or {})
        for value in stream.get("values") or []:
            if len(value) < 2:
                continue
            meta = dict(labels)
            if len(value) > 2 and isinstance(value[2], dict):  # categorize-labels encoding
                meta.update(value[2].get("structuredMetadata") or {})
                meta.update(value[2].get("parsed") or {})
            exception = None
            if meta.get("exception_type") or meta.get("exception_message"):
                exception = {
                    "type": meta.get("exception_type"),
                    "message": meta.get("exception_message"),
                    "stacktrace": meta.get("exception_stacktrace"),
                }
            records.append(
                Record(
                    time=int(value[0]) / 1e9,
                    service=str(meta.get("service_name") or "?"),
                    level=str(
                        meta.get("severity_text") or meta.get("detected_level") or meta.get("level") or "INFO"
                    ).upper(),
                    logger=str(meta.get("scope_name") or meta.get("logger") or ""),
                    message=str(value[1]),
                    correlation_id=meta.get("correlation_id"),
                    trace_id=meta.get("trace_id") or None,
                    span_id=meta.get("span_id") or None,
                    extras={
                        k: v
                        for k, v in meta.items()
                        if k not in _LOKI_INTERNAL and not k.startswith(_LOKI_INTERNAL_PREFIXES)
                    },
                    exception=exception,
                )
            )
    return records


def load_from_loki(
    url: str, query: Query, since: float = 7 * 86400.0, timeout: float = 15.0, limit: int = 5000
) -> list[Record]:
    """The request's records from Loki's ``/loki/api/v1/query_range``, oldest first.

    Asks by correlation ID; when that finds nothing and the ID maps to a trace id, by trace id.

    Raises:
        RuntimeError: Loki could not be reached or refused the query.
    """
    import httpx

    end = time.time_ns()
    start = end - int(since * 1e9)
    records: list[Record] = []
    for by in ("correlation_id", "trace_id"):
        if by == "trace_id" and (records or query.trace_id is None):
            break
        params = {
            "query": logql(query, by),
            "start": str(start),
            "end": str(end),
            "limit": str(limit),
            "direction": "forward",
        }
        try:
            response = httpx.get(
                f"{url.rstrip('/')}/loki/api/v1/query_range",
                params=params,
                headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise RuntimeError(f"could not reach Loki at {url}: {exc}") from None
        if response.status_code != 200:
            raise RuntimeError(f"Loki answered {response.status_code}: {response.text[:300]}")
        try:
            records = _loki_records(response.json())
        except (ValueError, TypeError, AttributeError) as exc:
            raise RuntimeError(f"Loki's answer is not a query_range response: {exc}") from None
    return sorted(records, key=lambda r: r.time)


# ---------------------------------------------------------------- OpenSearch / Elasticsearch


def _id_query(correlation_ids: set[str], trace_ids: set[str]) -> dict[str, Any]:
    should: list[dict[str, Any]] = []
    if correlation_ids:
        should.append({"terms": {"correlation_id": sorted(correlation_ids)}})
    if trace_ids:
        should.append({"terms": {"trace_id": sorted(trace_ids)}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def load_from_search(
    url: str,
    query: Query,
    *,
    index: str | None = None,
    since: float = 7 * 86400.0,
    auth: tuple[str, str] | None = None,
    api_key: str | None = None,
    verify: bool | str = True,
    timeout: float = 30.0,
    limit: int = 50_000,
) -> list[Record]:
    """The request's records from OpenSearch or Elasticsearch, oldest first.

    Exact (``term``) matches on ``correlation_id`` or the trace id, then a second pass for the
    other trace ids those records carry (as :func:`load_from_dir` does). ``since`` is in seconds.

    Raises:
        RuntimeError: the node could not be reached or refused the query.
    """
    from lumen_otel.cli._search import DEFAULT_INDEX, iter_records

    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
    found: dict[tuple[Any, ...], Record] = {}
    asked: set[str] = set()
    trace_ids = {query.trace_id} if query.trace_id else set()
    correlation_ids = {query.correlation_id}
    for _ in range(2):  # the second pass picks up records found only by their trace id
        for data in iter_records(
            url,
            index=index or DEFAULT_INDEX,
            query=_id_query(correlation_ids, trace_ids - asked),
            since=start,
            auth=auth,
            api_key=api_key,
            verify=verify,
            timeout=timeout,
            max_records=limit,
        ):
            record = _record_from_line(data)
            if record is not None:
                found[(record.time, record.service, record.span_id, record.message)] = record
        asked |= trace_ids
        new = {r.trace_id for r in found.values() if r.trace_id} - asked
        if not new:
            break
        trace_ids, correlation_ids = new, set()
    return sorted(found.values(), key=lambda r: r.time)


# ---------------------------------------------------------------- spans (parentage)


@dataclass(frozen=True)
class Span:
    """One span of the request, as an OTLP span carries it: where it sits and when it ran."""

    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    start: float  # seconds since the epoch
    end: float


def span_files(log_dir: Path) -> list[Path]:
    """OTLP JSON-lines files under a log directory: ``*.jsonl`` and ``collector/*.jsonl``."""
    found = [p for d in (log_dir, log_dir / "collector") for p in sorted(d.glob("*.jsonl")) if p.is_file()]
    return found


def _nanos(value: object) -> float | None:
    try:
        return int(str(value)) / 1e9
    except ValueError:
        return None


def _resource_service(resource: object) -> str:
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    for item in attributes or ():
        if isinstance(item, dict) and item.get("key") == "service.name":
            value = item.get("value")
            if isinstance(value, dict):
                return str(value.get("stringValue") or "?")
    return "?"


def _spans_of(data: dict[str, Any], trace_ids: set[str]) -> Iterator[Span]:
    for resource_spans in data.get("resourceSpans") or ():
        if not isinstance(resource_spans, dict):
            continue
        service = _resource_service(resource_spans.get("resource"))
        for scope in resource_spans.get("scopeSpans") or ():
            for item in (scope.get("spans") or ()) if isinstance(scope, dict) else ():
                if not isinstance(item, dict) or str(item.get("traceId", "")).lower() not in trace_ids:
                    continue
                span_id = _span_hex(item.get("spanId"))
                start, end = _nanos(item.get("startTimeUnixNano")), _nanos(item.get("endTimeUnixNano"))
                if span_id is None or start is None:
                    continue
                yield Span(
                    span_id,
                    _span_hex(item.get("parentSpanId")),
                    service,
                    str(item.get("name") or ""),
                    start,
                    end if end is not None and end >= start else start,
                )


def load_spans(paths: Iterable[Path], trace_ids: Iterable[str]) -> dict[str, Span]:
    """The spans of ``trace_ids`` (32 hex) in OTLP JSON-lines files (or directories of them), by span id.

    Lines that are not OTLP trace data (the collector's log and metric files) are skipped; so
    are files that cannot be read: parentage is a help, not a requirement.
    """
    wanted = {t.lower() for t in trace_ids if t}
    found: dict[str, Span] = {}
    if not wanted:
        return found
    files: list[Path] = []
    for path in paths:
        files.extend(span_files(path) if path.is_dir() else [path])
    for path in files:
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                if "resourceSpans" not in line or not any(t in line.lower() for t in wanted):
                    continue
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    for span in _spans_of(data, wanted):
                        found[span.span_id] = span
    return found


# ---------------------------------------------------------------- the timeline


@dataclass
class SpanNode:
    """The records one service logged inside one span, and the spans nested in it."""

    service: str
    span_id: str | None
    records: list[Record]
    children: list[SpanNode] = field(default_factory=list)
    parent: SpanNode | None = field(default=None, repr=False)
    #: the span itself, when a span source had it: its real window and name
    span: Span | None = field(default=None, repr=False)

    @property
    def start(self) -> float:
        """The span's start when known, else its first record; never after a child's start (a
        parent that logged nothing before its call still began before it)."""
        first = self.records[0].time if self.span is None else min(self.records[0].time, self.span.start)
        return min([first, *(child.start for child in self.children)])

    @property
    def end(self) -> float:
        last = self.records[-1].time if self.span is None else max(self.records[-1].time, self.span.end)
        return max([last, *(child.end for child in self.children)])

    @property
    def trace_id(self) -> str | None:
        return self.records[0].trace_id

    @property
    def name(self) -> str:
        """``POST /exams → 201`` from the server's access-log line, else the span's name, else its id."""
        for record in self.records:
            if record.logger in _ACCESS_LOGGERS:
                match = _REQUEST_LINE.search(record.message)
                if match:
                    return f"{match['method']} {match['path']} → {match['status']}"
        if self.span is not None and self.span.name:
            return self.span.name
        return f"span {self.span_id}" if self.span_id else "no span"

    @property
    def has_error(self) -> bool:
        return any(r.is_error for r in self.records) or any(c.has_error for c in self.children)


@dataclass
class Timeline:
    query: Query
    source: str
    records: list[Record]
    roots: list[SpanNode]

    @property
    def start(self) -> float:
        """The first record's time, or the first span's start when a span began before it."""
        if not self.records:
            return 0.0
        return min([self.records[0].time, *(root.start for root in self.roots)])

    @property
    def end(self) -> float:
        if not self.records:
            return 0.0
        return max([self.records[-1].time, *(root.end for root in self.roots)])

    @property
    def services(self) -> list[str]:
        seen: dict[str, None] = {}
        for record in self.records:
            seen.setdefault(record.service, None)
        return list(seen)

    @property
    def correlation_ids(self) -> list[str]:
        return sorted({r.correlation_id for r in self.records if r.correlation_id})

    @property
    def trace_ids(self) -> list[str]:
        return sorted({r.trace_id for r in self.records if r.trace_id})

    def to_json(self) -> dict[str, Any]:
        def span(node: SpanNode) -> dict[str, Any]:
            return {
                "service": node.service,
                "span_id": node.span_id,
                "name": node.name,
                "start": _rfc3339(node.start),
                "offset_ms": round((node.start - self.start) * 1000, 3),
                "duration_ms": round((node.end - node.start) * 1000, 3),
                "error": node.has_error,
                "records": [r.to_json() for r in node.records],
                "children": [span(c) for c in node.children],
            }

        return {
            "query": self.query.raw,
            "source": self.source,
            "correlation_ids": self.correlation_ids,
            "trace_ids": self.trace_ids,
            "services": self.services,
            "record_count": len(self.records),
            "duration_ms": round((self.end - self.start) * 1000, 3),
            "spans": [span(r) for r in self.roots],
        }


def build_timeline(
    query: Query, records: list[Record], source: str, spans: dict[str, Span] | None = None
) -> Timeline:
    """Group ``records`` by service and span and nest each span under its parent.

    ``spans`` (from :func:`load_spans`) give parentage and each span's real window; a record's
    ``parent_span_id`` gives parentage too. Spans with neither nest by time (module docstring).
    Siblings are ordered by start, records within a span by time.
    """
    spans = spans or {}
    groups: dict[tuple[str, str | None], list[Record]] = {}
    for record in sorted(records, key=lambda r: r.time):
        groups.setdefault((record.service, record.span_id), []).append(record)
    nodes = [
        SpanNode(s, sid, recs, span=spans.get(sid) if sid else None) for (s, sid), recs in groups.items()
    ]
    nodes.sort(key=lambda n: n.start)
    by_span = {n.span_id: n for n in nodes if n.span_id is not None}
    roots: list[SpanNode] = []
    unplaced: list[SpanNode] = []
    for node in nodes:
        known, parent = _parent_by_span_ids(node, spans, by_span)
        if parent is not None and not _is_descendant(parent, node):
            node.parent = parent
            parent.children.append(node)
        elif known or node.span_id is None:
            roots.append(node)  # a root span, or records outside any span
        else:
            unplaced.append(node)
    for node in unplaced:
        parent = _parent_by_time(node, nodes)
        if parent is not None:
            node.parent = parent
            parent.children.append(node)
        else:
            roots.append(node)
    for node in nodes:
        node.children.sort(key=lambda n: n.start)
    roots.sort(key=lambda n: n.start)
    return Timeline(query, source, sorted(records, key=lambda r: r.time), roots)


def _parent_by_span_ids(
    node: SpanNode, spans: dict[str, Span], by_span: dict[str, SpanNode]
) -> tuple[bool, SpanNode | None]:
    """(parentage known, the nearest ancestor span that has records), walking through spans that
    logged nothing (client spans). Known with no parent: a root span."""
    if node.span_id is None:
        return False, None
    parent_id = node.span.parent_span_id if node.span is not None else None
    known = node.span is not None
    if parent_id is None:
        parent_id = next((r.parent_span_id for r in node.records if r.parent_span_id), None)
        known = known or parent_id is not None
    seen = {node.span_id}
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        if parent_id in by_span:
            return True, by_span[parent_id]
        ancestor = spans.get(parent_id)
        if ancestor is None:
            return False, None  # the parent is in no source: fall back to time
        parent_id = ancestor.parent_span_id
    return known, None


def _parent_by_time(node: SpanNode, nodes: list[SpanNode]) -> SpanNode | None:
    """Without parent ids: the innermost span of another service whose records enclose this one's,
    else the span of the same trace that outlived it and answered last (its caller)."""
    others = [
        other
        for other in nodes
        if other is not node
        and other.service != node.service
        and other.span_id is not None
        and not _is_descendant(other, node)
    ]
    enclosing = [o for o in others if o.start <= node.start and node.end <= o.end]
    if enclosing:
        return max(enclosing, key=lambda n: n.start)
    outlived = [
        o for o in others if node.trace_id is not None and o.trace_id == node.trace_id and o.end > node.end
    ]
    return max(outlived, key=lambda n: n.end) if outlived else None


def _is_descendant(candidate: SpanNode, node: SpanNode) -> bool:
    parent = candidate.parent
    while parent is not None:
        if parent is node:
            return True
        parent = parent.parent
    return False


# ---------------------------------------------------------------- rendering

_SERVICE_STYLES = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")
_LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "yellow bold",
    "ERROR": "red bold",
    "CRITICAL": "white on red",
}


def make_console(stderr: bool = False) -> Any:
    """Rich console: colour only on a terminal and without ``NO_COLOR``; wide lines when piped."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        # a pipe or a file has no width: do not wrap lines that grep and tests read (one record,
        # one line: a long record wrapped at a space would start a line with the record's text)
        console = Console(stderr=stderr, highlight=False, width=max(console.width, 1_000_000))
    return console


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value if " " not in value else json.dumps(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def render(timeline: Timeline, console: Any) -> None:
    """The tree: request → service/span (offset, duration) → log lines; errors in red."""
    from rich.text import Text
    from rich.tree import Tree

    styles = {name: _SERVICE_STYLES[i % len(_SERVICE_STYLES)] for i, name in enumerate(timeline.services)}
    records = timeline.records
    total = timeline.end - timeline.start
    errors = sum(1 for r in records if r.is_error)
    title = Text()
    title.append("Request ", style="bold")
    ids = ", ".join(timeline.correlation_ids) or timeline.query.correlation_id
    title.append(escape_text(ids), style="bold")
    title.append("  trace ", style="dim")
    title.append(escape_text(", ".join(timeline.trace_ids) or "-"))
    title.append(f"\n{len(timeline.services)} services · {len(records)} records · {_ms(total)}", style="dim")
    if errors:
        title.append(f" · {errors} error{'s' if errors != 1 else ''}", style="red bold")
    title.append(f" · {escape_text(timeline.source)}", style="dim")
    tree = Tree(title, guide_style="dim")

    def add_span(parent: Any, node: SpanNode) -> None:
        label = Text()
        label.append(escape_text(node.service), style=f"bold {styles.get(node.service, '')}")
        label.append(f"  {escape_text(node.name)}", style="red bold" if node.has_error else "")
        label.append(f"  +{_ms(node.start - timeline.start)}  ", style="dim")
        label.append(f"{_ms(node.end - node.start)}", style="bold")
        if node.has_error:
            label.append("  ✗ error", style="red bold")
        branch = parent.add(label)
        items: list[tuple[float, int, Any]] = [(r.time, 0, r) for r in node.records]
        items += [(c.start, 1, c) for c in node.children]
        for _, kind, item in sorted(items, key=lambda t: (t[0], t[1])):
            if kind:
                add_span(branch, item)
            else:
                branch.add(_record_text(item, timeline.start))

    for root in timeline.roots:
        add_span(tree, root)
    console.print(tree)


def _record_text(record: Record, start: float) -> Any:
    from rich.text import Text

    style = _LEVEL_STYLES.get(record.level, "")
    text = Text()
    text.append(f"{'+' + _ms(record.time - start):>11}  ", style="dim")
    # log text: escaped (one record, one line; no ESC/OSC/bidi) and, as Text, never read as markup
    text.append(f"{escape_text(record.level):<7}", style=style)
    text.append(f" {escape_text(record.logger)}: ", style="dim")
    text.append(escape_text(record.message), style="red" if record.is_error else "")
    if record.extras:
        pairs = " ".join(f"{k}={_short(v)}" for k, v in record.extras.items())
        text.append("  " + escape_text(pairs), style="dim")
    if record.exception:
        kind, detail = record.exception.get("type"), record.exception.get("message")
        text.append(f"\n{escape_text(kind)}: {escape_text(detail)}", style="red")
    return text


# ---------------------------------------------------------------- the command


def register(app: typer.Typer) -> None:
    @app.command("trace")
    def trace_command(
        request_id: Annotated[
            str, typer.Argument(metavar="ID", help="Correlation ID (UUID or legacy) or 32-hex trace id.")
        ],
        log_dir: Annotated[
            Path | None,
            typer.Option(
                "--log-dir",
                envvar=list(_LOG_DIR_VARIABLES),
                show_envvar=True,
                help="Directory of <service>.log files (default: ./logs).",
            ),
        ] = None,
        loki: Annotated[
            str | None,
            typer.Option("--loki", metavar="URL", help="Query Loki's HTTP API instead of a log directory."),
        ] = None,
        opensearch: Annotated[
            str | None,
            typer.Option(
                "--opensearch",
                metavar="URL",
                help="Query OpenSearch's _search API (gateway-search.yaml's index).",
            ),
        ] = None,
        elasticsearch: Annotated[
            str | None,
            typer.Option(
                "--elasticsearch",
                metavar="URL",
                help="Query Elasticsearch's _search API (same as --opensearch).",
            ),
        ] = None,
        index: Annotated[
            str,
            typer.Option(
                "--index",
                envvar="OPENSEARCH_LOGS_INDEX",
                show_envvar=True,
                help="With --opensearch/--elasticsearch: index, data stream or pattern.",
            ),
        ] = "logs-lumen-*",
        search_user: Annotated[
            str | None,
            typer.Option(
                "--search-user",
                envvar="OPENSEARCH_USER",
                show_envvar=True,
                help="Basic-auth user for the search node (the password comes from OPENSEARCH_PASSWORD).",
            ),
        ] = None,
        search_ca_file: Annotated[
            Path | None,
            typer.Option(
                "--search-ca-file",
                envvar="OPENSEARCH_CA_FILE",
                show_envvar=True,
                help="CA bundle for an https node.",
            ),
        ] = None,
        since: Annotated[
            float,
            typer.Option(
                "--since",
                metavar="HOURS",
                min=0.01,
                help="With --loki/--opensearch/--elasticsearch: how far back to look.",
            ),
        ] = 168.0,
        spans: Annotated[
            Path | None,
            typer.Option(
                "--spans",
                metavar="PATH",
                help="OTLP JSON-lines span file (or a directory of them), as the collector's file "
                "exporter writes, to nest each span under its parent (default: *.jsonl and "
                "collector/*.jsonl in the log directory).",
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON.")] = False,
    ) -> None:
        """Show every record of one request across services as a timeline tree."""
        err = make_console(stderr=True)
        try:
            query = parse_query(request_id)
        except ValueError as exc:
            err.print(f"[red]error:[/] {markup_safe(exc)}")
            raise typer.Exit(2) from None
        search_url = opensearch or elasticsearch
        if sum(1 for option in (loki, opensearch, elasticsearch) if option) > 1:
            err.print("[red]error:[/] give one of --loki, --opensearch, --elasticsearch")
            raise typer.Exit(2)
        span_dirs: list[Path] = []  # where spans are looked for without --spans
        if search_url:
            import os

            source = f"{'opensearch' if opensearch else 'elasticsearch'} {search_url}"
            user_auth = (search_user, os.environ.get("OPENSEARCH_PASSWORD", "")) if search_user else None
            try:
                records = load_from_search(
                    search_url,
                    query,
                    index=index,
                    since=since * 3600,
                    auth=user_auth,
                    api_key=os.environ.get("ELASTICSEARCH_API_KEY") or None,
                    verify=str(search_ca_file) if search_ca_file else True,
                )
            except RuntimeError as exc:
                err.print(f"[red]error:[/] {markup_safe(exc)}")
                raise typer.Exit(2) from None
        elif loki:
            source = f"loki {loki}"
            try:
                records = load_from_loki(loki, query, since=since * 3600)
            except RuntimeError as exc:
                err.print(f"[red]error:[/] {markup_safe(exc)}")
                raise typer.Exit(2) from None
        else:
            directory = log_dir or Path("logs")
            if not directory.is_dir():
                where = markup_safe(directory)
                err.print(f"[red]error:[/] no log directory {where} (use --log-dir or LUMEN_LOG_DIR)")
                raise typer.Exit(2)
            source = str(directory)
            records = load_from_dir(directory, query)
            span_dirs = [directory]
        _show(request_id, query, records, source, [spans] if spans is not None else span_dirs, as_json)


def _show(
    request_id: str, query: Query, records: list[Record], source: str, span_paths: list[Path], as_json: bool
) -> None:
    """Print the timeline (or say there is none, exit status 1), nested by the spans found."""
    if not records:
        message = f"no records for {request_id} in {source}"
        if len(request_id.strip()) <= 8:
            message += (
                " (the text console shows the first 8 characters of an ID: pass the whole ID, from a"
                " JSON line or the response's correlation header)"
            )
        if as_json:
            print(json.dumps({"query": request_id, "source": source, "record_count": 0, "spans": []}))
        make_console(stderr=True).print(f"[yellow]{markup_safe(message)}[/]")
        raise typer.Exit(1)
    found = load_spans(span_paths, {r.trace_id for r in records if r.trace_id})
    if found:
        source = f"{source} (+{len(found)} spans)"
    timeline = build_timeline(query, records, source, found)
    if as_json:
        print(json.dumps(timeline.to_json(), indent=2, default=str))
    else:
        render(timeline, make_console())
