"""``lumen_otel.cli._search.iter_records`` and ``lumen-otel trace --opensearch`` against a real node.

One request through three services (the demo's shape: reports → media → dubin, with an error and
a second trace id), plus other requests' records and a window of filler records, are indexed in
the document shape of the collector's ``lumen_search`` exporter into a ``logs-lumen-*`` data
stream of the shipped template. The same records are written as lumen JSON log lines into a log
directory, so every check compares the search source with the log-directory source: the same
:class:`Record` objects, the same ``--json`` timeline, the same rendered tree.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumen_otel.cli._search import SearchError, iter_records
from lumen_otel.cli.trace import load_from_dir, load_from_search, parse_query
from tests.conftest import VENV_BIN, clean_env, free_port
from tests.search.conftest import OpenSearchNode, install_templates

pytestmark = [pytest.mark.search, pytest.mark.integration]

INDEX = "logs-lumen-tracetest"
CORE = [
    "timestamp",
    "level",
    "service_name",
    "hostname",
    "logger",
    "message",
    "correlation_id",
    "trace_id",
    "span_id",
]
T0 = dt.datetime(2026, 11, 30, 9, 0, 0, tzinfo=dt.timezone.utc)
FILLER = 23  # records of other requests in [T0 + 1h, T0 + 1h + 23s)


def _stamp(offset_s: float) -> str:
    return (T0 + dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(offset: float, service: str, level: str, logger: str, message: str, **ids: Any) -> dict[str, Any]:
    """A lumen JSON log line (what the log directory holds)."""
    line = {
        "timestamp": _stamp(offset),
        "level": level,
        "service_name": service,
        "hostname": f"{service}-host",
        "logger": logger,
        "message": message,
        "correlation_id": ids.pop("cid", None),
        "trace_id": ids.pop("tid", None),
        "span_id": ids.pop("sid", None),
    }
    line.update(ids)
    return line


def _document(line: dict[str, Any]) -> dict[str, Any]:
    """The same record as the lumen_search exporter stores it."""
    severity = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}[line["level"]]
    doc: dict[str, Any] = {
        "@timestamp": line["timestamp"].replace("Z", "000Z"),  # the exporter writes nanoseconds
        "level": line["level"],
        "severity_number": severity,
        "severity_text": line["level"],
        "logger": line["logger"],
        "message": line["message"],
        "service_name": line["service_name"],
        "hostname": line["hostname"],
        "resource": {"service_name": line["service_name"], "host_name": line["hostname"]},
    }
    for key in ("correlation_id", "trace_id", "span_id"):
        if line[key] is not None:
            doc[key] = line[key]
    extras = {k: v for k, v in line.items() if k not in CORE and k != "exception"}
    attributes = {**extras, "code_function_name": "handler", "code_line_number": "42"}
    if "exception" in line:
        exc = line["exception"]
        attributes.update(
            exception_type=exc["type"],
            exception_message=exc["message"],
            exception_stacktrace=exc["stacktrace"],
        )
    doc["attributes"] = attributes
    return doc


class Request:
    """The records of one request across reports → media → dubin, and of its neighbours."""

    def __init__(self) -> None:
        self.cid = str(uuid.uuid4())
        self.tid = uuid.UUID(self.cid).hex
        self.tid2 = uuid.uuid4().hex  # a retry under another trace, same correlation ID
        self.other_cid = str(uuid.uuid4())
        cid, tid, tid2 = self.cid, self.tid, self.tid2
        r, m, d, m2 = "a1" * 8, "b2" * 8, "c3" * 8, "d4" * 8
        self.lines = [
            _line(
                0.001, "reports", "INFO", "reports.views", "exam created", cid=cid, tid=tid, sid=r, exam="E-7"
            ),
            _line(0.010, "media", "INFO", "media.app", "fetching study", cid=cid, tid=tid, sid=m),
            _line(0.015, "dubin", "INFO", "dubin.app", "study found", cid=cid, tid=tid, sid=d, study="1"),
            _line(
                0.020,
                "dubin",
                "INFO",
                "uvicorn.access",
                '127.0.0.1:5000 - "GET /studies/1 HTTP/1.1" 200',
                cid=cid,
                tid=tid,
                sid=d,
            ),
            _line(0.030, "media", "WARNING", "media.app", "dubin was slow", cid=cid, tid=tid, sid=m, ms="14"),
            _line(
                0.035,
                "media",
                "INFO",
                "uvicorn.access",
                '127.0.0.1:5001 - "GET /media/1 HTTP/1.1" 200',
                cid=cid,
                tid=tid,
                sid=m,
            ),
            {
                **_line(0.040, "reports", "ERROR", "reports.views", "report failed", cid=cid, tid=tid, sid=r),
                "exception": {"type": "ValueError", "message": "no template", "stacktrace": "Traceback ..."},
            },
            _line(
                0.050,
                "reports",
                "INFO",
                "django.server",
                '"POST /exams HTTP/1.1" 201 12',
                cid=cid,
                tid=tid,
                sid=r,
            ),
            # a retry: same correlation ID, another trace; and a record of that trace without the ID
            _line(0.100, "media", "INFO", "media.app", "retrying", cid=cid, tid=tid2, sid=m2),
            _line(0.105, "media", "INFO", "media.worker", "retry queued", tid=tid2, sid=m2),
        ]
        self.others = [
            _line(
                0.012,
                "media",
                "INFO",
                "media.app",
                "another request",
                cid=self.other_cid,
                tid=uuid.uuid4().hex,
            ),
        ] + [
            _line(
                3600 + i,
                "dubin",
                "INFO",
                "dubin.app",
                f"filler {i}",
                cid=str(uuid.uuid4()),
                tid=uuid.uuid4().hex,
            )
            for i in range(FILLER)
        ]


@pytest.fixture(scope="module")
def indexed(
    opensearch: OpenSearchNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Request, Path]]:
    installed = install_templates(opensearch)
    assert 0 == installed.returncode, installed.stdout + installed.stderr
    request = Request()
    lines = request.lines + request.others
    bulk = "".join(
        json.dumps({"create": {"_index": INDEX}}) + "\n" + json.dumps(_document(line)) + "\n"
        for line in lines
    )
    import urllib.request

    req = urllib.request.Request(  # noqa: S310 - loopback http
        f"{opensearch.url}/_bulk?refresh=true",
        data=bulk.encode(),
        method="POST",
        headers={"Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
        answer = json.load(response)
    assert not answer["errors"], answer
    log_dir = tmp_path_factory.mktemp("logs")
    for line in lines:
        with (log_dir / f"{line['service_name']}.log").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
    yield request, log_dir


def _window(start: float, end: float) -> dict[str, dt.datetime]:
    return {"since": T0 + dt.timedelta(seconds=start), "until": T0 + dt.timedelta(seconds=end)}


# ---------------------------------------------------------------- iter_records


def test_records_have_the_shape_of_lumen_json_lines(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path]
) -> None:
    request, _ = indexed
    records = list(iter_records(opensearch.url, index=INDEX, query={"term": {"correlation_id": request.cid}}))
    assert [line["message"] for line in request.lines if line["correlation_id"]] == [
        r["message"] for r in records
    ]
    for record in records:
        assert CORE == list(record)[:9]
    assert {"exam": "E-7"} == {k: v for k, v in records[0].items() if k not in CORE}
    assert request.lines[6]["exception"] == records[6]["exception"]
    assert _stamp(0.001) == records[0]["timestamp"]


def test_a_time_window_is_read_page_by_page_oldest_first(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path]
) -> None:
    indexed_window = list(
        iter_records(opensearch.url, index=INDEX, page_size=4, **_window(3600, 3600 + FILLER))
    )
    assert [f"filler {i}" for i in range(FILLER)] == [r["message"] for r in indexed_window]
    half_open = list(iter_records(opensearch.url, index=INDEX, page_size=5, **_window(3600 + 3, 3600 + 8)))
    assert ["filler 3", "filler 4", "filler 5", "filler 6", "filler 7"] == [r["message"] for r in half_open]
    capped = list(
        iter_records(opensearch.url, index="logs-lumen-*", page_size=2, max_records=5, **_window(0, 7200))
    )
    assert 5 == len(capped)
    # every scroll context was released, not left to expire
    stats = opensearch.request("GET", "/_nodes/stats/indices/search")
    assert [0] == [n["indices"]["search"]["scroll_current"] for n in stats["nodes"].values()]


def test_a_full_text_query_and_a_missing_index(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path]
) -> None:
    slow = list(iter_records(opensearch.url, index=INDEX, query={"match": {"message": "slow"}}))
    assert ["dubin was slow"] == [r["message"] for r in slow]
    assert [] == list(iter_records(opensearch.url, index="logs-lumen-nonesuch"))
    assert [] == list(iter_records(opensearch.url, index="logs-nonesuch-*"))


def test_errors_are_reported_not_hidden(opensearch: OpenSearchNode) -> None:
    with pytest.raises(SearchError, match="answered 400"):
        list(iter_records(opensearch.url, index=INDEX, query={"no_such_query": {}}))
    with pytest.raises(SearchError, match="could not reach"):
        list(iter_records(f"http://127.0.0.1:{free_port()}", index=INDEX, timeout=2))
    with pytest.raises(ValueError, match="page_size"):
        list(iter_records(opensearch.url, index=INDEX, page_size=0))


# ---------------------------------------------------------------- lumen-otel trace


def test_search_gives_the_records_a_log_directory_gives(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path]
) -> None:
    request, log_dir = indexed
    query = parse_query(request.cid)
    from_search = load_from_search(opensearch.url, query, index=INDEX, since=10 * 365 * 86400)
    from_dir = load_from_dir(log_dir, query)
    assert 10 == len(from_dir)  # the retry's trace-only record included
    assert [r.to_json() for r in from_dir] == [r.to_json() for r in from_search]


def _trace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "trace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )


@pytest.mark.parametrize("flag", ["--opensearch", "--elasticsearch"])
def test_the_cli_renders_the_same_timeline_as_from_a_log_directory(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path], flag: str
) -> None:
    """``--elasticsearch`` speaks the same _search API; here both talk to the OpenSearch node."""
    request, log_dir = indexed
    search = ["--index", INDEX, "--since", str(24 * 3650)]
    as_json = _trace(request.cid, flag, opensearch.url, *search, "--json")
    assert 0 == as_json.returncode, as_json.stderr
    reference = _trace(request.cid, "--log-dir", str(log_dir), "--json")
    assert 0 == reference.returncode, reference.stderr
    timeline, expected = json.loads(as_json.stdout), json.loads(reference.stdout)
    assert f"{flag[2:]} {opensearch.url}" == timeline.pop("source")
    expected.pop("source")
    assert expected == timeline
    assert ["reports", "media", "dubin"] == timeline["services"]
    assert [request.tid, request.tid2] == sorted(timeline["trace_ids"], key=[request.tid, request.tid2].index)

    tree = _trace(request.cid, flag, opensearch.url, *search)
    tree_from_dir = _trace(request.cid, "--log-dir", str(log_dir))
    assert 0 == tree.returncode, tree.stderr
    assert tree_from_dir.stdout.replace(str(log_dir), f"{flag[2:]} {opensearch.url}") == tree.stdout
    assert "POST /exams → 201" in tree.stdout and "ValueError: no template" in tree.stdout


def test_the_cli_by_trace_id_and_for_an_unknown_id(
    opensearch: OpenSearchNode, indexed: tuple[Request, Path]
) -> None:
    request, _ = indexed
    by_trace = _trace(
        request.tid, "--opensearch", opensearch.url, "--index", INDEX, "--since", "87600", "--json"
    )
    assert 0 == by_trace.returncode, by_trace.stderr
    assert 10 == json.loads(by_trace.stdout)["record_count"]
    unknown = _trace(str(uuid.uuid4()), "--opensearch", opensearch.url, "--since", "87600")
    assert 1 == unknown.returncode and "no records" in unknown.stderr
    down = _trace(request.cid, "--opensearch", f"http://127.0.0.1:{free_port()}")
    assert 2 == down.returncode and "could not reach" in down.stderr
    both = _trace(request.cid, "--opensearch", opensearch.url, "--loki", "http://127.0.0.1:1")
    assert 2 == both.returncode and "one of" in both.stderr
