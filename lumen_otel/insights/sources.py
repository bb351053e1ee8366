"""Where ``lumen-otel insights`` reads records: a log directory, Loki or OpenSearch.

Every source yields :data:`Entry` tuples ``(time, service, level, message, correlation_id)``,
only the fields the miner needs, so a million lines do not become a million objects. Each
source counts what it could not read in ``skipped``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "Entry",
    "LogDirSource",
    "LokiSource",
    "OpenSearchSource",
    "Source",
    "entries_from_records",
    "entry_from_record",
    "log_files",
    "normalise_level",
    "parse_time",
]

#: (seconds since the epoch, service, level, message, correlation ID)
Entry = tuple[float, str, str, str, str | None]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_LEVELS = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "CRIT": "CRITICAL", "TRACE": "DEBUG"}
_SECOND_CACHE: dict[str, float] = {}


def normalise_level(level: object) -> str:
    text = str(level or "INFO").upper()
    return _LEVELS.get(text, text)


def parse_time(text: str) -> float | None:
    """RFC 3339 / ISO 8601 text to seconds since the epoch (naive times are UTC).

    lumen's own ``2026-11-27T03:04:19.917638Z`` takes a fast path: the whole-second part is
    parsed once per second of logs and cached.
    """
    if len(text) >= 20 and text[19] in ".Z" and text[-1] == "Z" and text[10] == "T":
        base = _SECOND_CACHE.get(text[:19])
        if base is None:
            try:
                when = dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.timezone.utc)
            except ValueError:
                return None
            base = (when - _EPOCH).total_seconds()
            if len(_SECOND_CACHE) >= 100_000:
                _SECOND_CACHE.clear()
            _SECOND_CACHE[text[:19]] = base
        fraction = text[19:-1]
        if not fraction:
            return base
        try:
            return base + float(fraction)
        except ValueError:
            return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, TypeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - _EPOCH).total_seconds()


def entry_from_record(data: Mapping[str, Any]) -> Entry | None:
    """A JSON-line record (lumen's shape) as an :data:`Entry`; None without a readable time."""
    stamp = data.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        when: float | None = float(stamp) / (1e9 if stamp > 1e14 else 1.0)  # ns or seconds
    elif isinstance(stamp, str):
        when = parse_time(stamp)
    else:
        when = None
    if when is None:
        return None
    message = data.get("message")
    cid = data.get("correlation_id")
    return (
        when,
        str(data.get("service_name") or "?"),
        normalise_level(data.get("level")),
        message if isinstance(message, str) else ("" if message is None else str(message)),
        cid if isinstance(cid, str) and cid else None,
    )


class Source:
    """A place records come from; ``entries`` yields those in ``[since, until)``."""

    description = "?"

    def __init__(self) -> None:
        self.skipped = 0  # lines or entries that could not be read

    def entries(self, since: float, until: float) -> Iterator[Entry]:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------- a log directory


def log_files(log_dir: Path) -> list[Path]:
    """``<service>.log`` and its rotations ``<service>.log.1``, ``.log.2``... in ``log_dir``."""
    files = [p for p in log_dir.glob("*.log") if p.is_file()]
    files += [p for p in log_dir.glob("*.log.*") if p.is_file() and p.suffix[1:].isdigit()]
    return sorted(files)


_TS_PREFIX = b'{"timestamp":"'


class LogDirSource(Source):
    """lumen's JSON-lines files. A line outside the time range is skipped before it is parsed
    (lumen writes ``timestamp`` first), so a narrow window over a large directory stays cheap."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.description = str(log_dir)

    def entries(self, since: float, until: float) -> Iterator[Entry]:
        loads = orjson.loads
        cut = len(_TS_PREFIX)
        for path in log_files(self.log_dir):
            try:
                handle = path.open("rb")
            except OSError:
                continue
            with handle:
                for line in handle:
                    if line.startswith(_TS_PREFIX):
                        end = line.find(b'"', cut)
                        when = parse_time(line[cut:end].decode("ascii", "replace")) if end > 0 else None
                        if when is not None and not since <= when < until:
                            continue
                    try:
                        data = loads(line)
                    except orjson.JSONDecodeError:
                        if line.strip():
                            self.skipped += 1
                        continue
                    entry = entry_from_record(data) if isinstance(data, dict) else None
                    if entry is None:
                        self.skipped += 1
                    elif since <= entry[0] < until:
                        yield entry


# ---------------------------------------------------------------- Loki


class LokiSource(Source):
    """LogQL ``query_range`` over ``[since, until)``, paged forward ``limit`` entries at a time.

    Loki answers at most ``limit`` entries per request: the next page starts at the newest
    timestamp of the last one, and the entries already seen at that very nanosecond are dropped.
    Should more than ``limit`` entries share one nanosecond, the rest of them cannot be asked
    for: the read moves on past it. ``max_entries`` bounds the whole read.
    """

    def __init__(
        self,
        url: str,
        query: str = '{service_name=~".+"}',
        *,
        timeout: float = 30.0,
        limit: int = 5000,
        max_entries: int = 5_000_000,
    ) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        self.query = query
        self.timeout = timeout
        self.limit = limit
        self.max_entries = max_entries
        self.description = f"loki {url}"
        self.requests = 0

    def entries(self, since: float, until: float) -> Iterator[Entry]:
        import httpx

        start = int(since * 1e9)
        end = int(until * 1e9)
        seen_at_start: set[tuple[str, str]] = set()
        total = 0
        with httpx.Client(timeout=self.timeout) as client:
            for _ in range(self.max_entries // max(1, self.limit) + 2):  # bounded paging
                page = self._page(client, start, end)
                newest = max((ns for ns, _ in page), default=None)
                fresh = 0
                for ns, entry in page:
                    key = (str(ns), f"{entry[1]}\x1f{entry[3]}")
                    if ns == start and key in seen_at_start:
                        continue
                    fresh += 1
                    total += 1
                    yield entry
                    if total >= self.max_entries:
                        return
                if len(page) < self.limit or newest is None:
                    return
                if fresh == 0:  # `limit` entries or more share one nanosecond: move past it
                    start, seen_at_start = newest + 1, set()
                    continue
                if newest != start:
                    seen_at_start = set()
                start = newest
                seen_at_start |= {(str(ns), f"{e[1]}\x1f{e[3]}") for ns, e in page if ns == newest}

    def _page(self, client: Any, start: int, end: int) -> list[tuple[int, Entry]]:
        import httpx

        params = {
            "query": self.query,
            "start": str(start),
            "end": str(end),
            "limit": str(self.limit),
            "direction": "forward",
        }
        self.requests += 1
        try:
            response = client.get(
                f"{self.url}/loki/api/v1/query_range",
                params=params,
                headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"},
            )
        except httpx.HTTPError as exc:
            raise RuntimeError(f"could not reach Loki at {self.url}: {exc}") from None
        if response.status_code != 200:
            raise RuntimeError(f"Loki answered {response.status_code}: {response.text[:300]}")
        try:
            return self._parse(response.json())
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise RuntimeError(f"Loki's answer is not a query_range response: {exc}") from None

    def _parse(self, payload: dict[str, Any]) -> list[tuple[int, Entry]]:
        out: list[tuple[int, Entry]] = []
        for stream in payload["data"]["result"] or []:
            labels = dict(stream.get("stream") or {})
            for value in stream.get("values") or []:
                if len(value) < 2:
                    self.skipped += 1
                    continue
                meta = labels
                if len(value) > 2 and isinstance(value[2], dict):  # categorize-labels encoding
                    meta = {**labels, **(value[2].get("structuredMetadata") or {})}
                    meta.update(value[2].get("parsed") or {})
                ns = int(value[0])
                level = meta.get("severity_text") or meta.get("detected_level") or meta.get("level")
                cid = meta.get("correlation_id")
                out.append(
                    (
                        ns,
                        (
                            ns / 1e9,
                            str(meta.get("service_name") or "?"),
                            normalise_level(level),
                            str(value[1]),
                            str(cid) if cid else None,
                        ),
                    )
                )
        out.sort(key=lambda item: item[0])
        return out


# ---------------------------------------------------------------- OpenSearch


class OpenSearchSource(Source):
    """Records from OpenSearch or Elasticsearch, through ``lumen_otel.cli._search.iter_records``.

    ``auth`` (basic), ``api_key`` (Elasticsearch) and ``verify`` (a CA bundle) are passed on
    only when given.
    """

    def __init__(
        self,
        url: str,
        index: str,
        *,
        page_size: int = 1000,
        kind: str = "opensearch",
        auth: tuple[str, str] | None = None,
        api_key: str | None = None,
        verify: str | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.index = index
        self.page_size = page_size
        self.description = f"{kind} {url} index {index}"
        self._extra: dict[str, Any] = {
            k: v for k, v in (("auth", auth), ("api_key", api_key), ("verify", verify)) if v is not None
        }

    def entries(self, since: float, until: float) -> Iterator[Entry]:
        try:
            from lumen_otel.cli._search import iter_records
        except ImportError as exc:
            raise RuntimeError(f"OpenSearch support is not available: {exc}") from None
        records = iter_records(
            self.url,
            index=self.index,
            since=dt.datetime.fromtimestamp(since, dt.timezone.utc),
            until=dt.datetime.fromtimestamp(until, dt.timezone.utc),
            page_size=self.page_size,
            **self._extra,
        )
        yield from entries_from_records(records, since, until, self)


def entries_from_records(
    records: Iterator[Mapping[str, Any]], since: float, until: float, source: Source
) -> Iterator[Entry]:
    """JSON-line shaped records as entries in ``[since, until)``, counting bad ones in ``source``."""
    for data in records:
        entry = entry_from_record(data) if isinstance(data, Mapping) else None
        if entry is None:
            source.skipped += 1
        elif since <= entry[0] < until:
            yield entry
