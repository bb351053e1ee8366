"""Read lumen-otel log records back from OpenSearch or Elasticsearch (the ``_search`` API).

The collector's ``lumen_search`` exporter (collector-config/gateway-search.yaml) writes one flat
document per log record into the ``logs-lumen-*`` data streams::

    {"@timestamp": "...", "level": "INFO", "severity_number": 9, "service_name": "...",
     "hostname": "...", "logger": "...", "message": "...", "correlation_id": "...",
     "trace_id": "...", "span_id": "...", "attributes": {...}, "resource": {...}}

:func:`iter_records` turns them back into the dict shape of lumen-otel's JSON log lines
(``timestamp``, ``level``, ``service_name``, ``hostname``, ``logger``, ``message``,
``correlation_id``, ``trace_id``, ``span_id``, then the extras and ``exception``), oldest first,
so that whatever reads a log directory reads a search node the same way. OpenSearch and
Elasticsearch share the API used here (``_search`` with ``scroll``), so one client serves both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["DEFAULT_INDEX", "SearchError", "iter_records", "to_record_dict"]

#: the data streams gateway-search.yaml writes to (logs-lumen-default unless OPENSEARCH_LOGS_INDEX)
DEFAULT_INDEX = "logs-lumen-*"

#: the keys every record dict starts with, in this order (as lumen-otel's JSON log lines)
_CORE = (
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
#: log attributes that instrumentation adds, not the user's extras (dots already replaced by _)
_INTERNAL_PREFIXES = ("code_", "otel", "telemetry_", "exception_", "thread_", "process_")
_FRACTION = re.compile(r"^(?P<head>[^.Z+]+?)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:?\d\d)?$")

_SCROLL = "2m"
#: upper bound on pages read by one call, whatever page_size is (a runaway query stops here)
MAX_PAGES = 10_000


class SearchError(RuntimeError):
    """The node could not be reached, refused the request, or answered something else."""


def _timestamp(value: object) -> str:
    """RFC 3339 with microseconds and ``Z``, as lumen-otel writes them (nanoseconds are cut)."""
    text = str(value or "")
    match = _FRACTION.match(text)
    if not match:
        return text
    fraction = (match["frac"] or "").ljust(6, "0")[:6]
    zone = match["zone"] or "Z"
    if zone != "Z":
        when = dt.datetime.fromisoformat(f"{match['head']}.{fraction}{zone[:3]}:{zone[-2:]}")
        return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{match['head']}.{fraction}Z"


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def to_record_dict(source: Mapping[str, Any]) -> dict[str, Any]:
    """One stored document (``_source``) as a lumen JSON log line's dict."""
    record: dict[str, Any] = {
        "timestamp": _timestamp(source.get("@timestamp", source.get("timestamp"))),
        "level": str(source.get("level") or "INFO"),
    }
    resource = _mapping(source.get("resource"))
    record["service_name"] = source.get("service_name") or resource.get("service_name")
    record["hostname"] = source.get("hostname") or resource.get("host_name")
    for key in _CORE[4:]:
        record[key] = source.get(key)
    if record["message"] is None:
        record["message"] = source.get("body", "")
    attributes = _mapping(source.get("attributes"))
    for key, value in attributes.items():
        if key not in record and not key.startswith(_INTERNAL_PREFIXES):
            record[key] = value
    if attributes.get("exception_type") or attributes.get("exception_message"):
        record["exception"] = {
            "type": attributes.get("exception_type"),
            "message": attributes.get("exception_message"),
            "stacktrace": attributes.get("exception_stacktrace"),
        }
    return record


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _body(
    query: dict[str, Any] | None, since: dt.datetime | None, until: dt.datetime | None, size: int
) -> dict[str, Any]:
    window: dict[str, str] = {}
    if since is not None:
        window["gte"] = _iso(since)
    if until is not None:
        window["lt"] = _iso(until)
    clauses: dict[str, Any] = {"must": [query] if query else [{"match_all": {}}]}
    if window:
        clauses["filter"] = [{"range": {"@timestamp": window}}]
    return {"size": size, "query": {"bool": clauses}, "sort": [{"@timestamp": {"order": "asc"}}]}


def iter_records(
    base_url: str,
    *,
    index: str = DEFAULT_INDEX,
    query: dict[str, Any] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page_size: int = 1000,
    auth: tuple[str, str] | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    verify: bool | str = True,
    timeout: float = 30.0,
    max_records: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the records of ``index`` matching ``query`` in ``[since, until)``, oldest first.

    Args:
        base_url: the node, ``http(s)://host:9200`` (OpenSearch or Elasticsearch).
        index: index, data stream, alias or pattern (default ``logs-lumen-*``).
        query: a query-DSL clause (``{"term": {"correlation_id": "..."}}``,
            ``{"match": {"message": "timeout"}}``); ``None`` matches everything in the window.
        since, until: the window on ``@timestamp`` (naive datetimes are UTC).
        page_size: documents per request (the scroll's page).
        auth: HTTP basic credentials; ``api_key``: Elasticsearch's ``ApiKey`` (wins over ``auth``).
        headers: extra request headers; ``verify``: ``False``, ``True`` or a CA bundle path.
        max_records: stop after this many (``None``: all of them, at most ``MAX_PAGES`` pages).

    Raises:
        SearchError: unreachable node, a refused query (HTTP >= 400) or a malformed answer.
    """
    import httpx

    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    if api_key:
        request_headers["Authorization"] = f"ApiKey {api_key}"
        auth = None
    base = base_url.rstrip("/")
    with httpx.Client(
        auth=auth, headers=request_headers, verify=verify, timeout=timeout, trust_env=False
    ) as client:

        def call(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            try:
                response = client.request(method, f"{base}{path}", json=body)
            except httpx.HTTPError as exc:
                raise SearchError(f"could not reach {base_url}: {exc}") from None
            if response.status_code >= 400:
                raise SearchError(f"{base_url} answered {response.status_code}: {response.text[:300]}")
            try:
                payload = response.json()
            except ValueError:
                raise SearchError(f"{base_url} did not answer JSON: {response.text[:200]}") from None
            if not isinstance(payload, dict):
                raise SearchError(f"{base_url} answered {type(payload).__name__}, not an object")
            return payload

        path = f"/{index}/_search?scroll={_SCROLL}&ignore_unavailable=true&allow_no_indices=true"
        payload = call("POST", path, _body(query, since, until, page_size))
        scroll_id = payload.get("_scroll_id")
        yielded = 0
        try:
            for _ in range(MAX_PAGES):
                hits = payload.get("hits", {}).get("hits")
                if not isinstance(hits, list):
                    raise SearchError(f"{base_url} answered no hits list: {str(payload)[:200]}")
                for hit in hits:
                    source = hit.get("_source") if isinstance(hit, dict) else None
                    if isinstance(source, dict):
                        yield to_record_dict(source)
                        yielded += 1
                        if max_records is not None and yielded >= max_records:
                            return
                if len(hits) < page_size or not scroll_id:
                    return
                payload = call("POST", "/_search/scroll", {"scroll": _SCROLL, "scroll_id": scroll_id})
                scroll_id = payload.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                # free the node's scroll context now instead of after the keep-alive
                with contextlib.suppress(httpx.HTTPError):
                    client.request("DELETE", f"{base}/_search/scroll", json={"scroll_id": [scroll_id]})
