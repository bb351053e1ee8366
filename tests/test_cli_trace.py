"""``lumen-otel trace``: the demo's request from its log directory and from a Loki stand-in."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import REPO, VENV_BIN, clean_env

pytestmark = pytest.mark.integration

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def lumen_otel(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass
class DemoRun:
    cid: str
    log_dir: Path
    tree: str  # the tree exactly as the demo printed it


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    log_dir = tmp_path_factory.mktemp("demo-logs").resolve()
    cid = str(uuid.uuid4())
    done = subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "demo", "--cid", cid, "--log-dir", str(log_dir)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Request "))
    end = lines.index("", start)
    return DemoRun(cid, log_dir, "\n".join(lines[start:end]) + "\n")


def log_records(log_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(log_dir.glob("*.log"))
        for line in path.read_text().splitlines()
        if line
    ]


# ---------------------------------------------------------------- the Loki stand-in

_LOKI_KEYS = {"timestamp", "message", "service_name", "hostname", "level", "logger", "exception"}


def loki_answer(records: list[dict[str, Any]], categorize: bool) -> dict[str, Any]:
    """What Loki 3's query_range returns for these records when they came in over OTLP."""
    streams: dict[str, list[list[Any]]] = {}
    labels: dict[str, dict[str, str]] = {}
    for record in records:
        when = dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        ns = (when - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        metadata = {k: str(v) for k, v in record.items() if k not in _LOKI_KEYS and v is not None}
        metadata.update(
            {
                "severity_text": record["level"],
                "scope_name": record["logger"],
                "detected_level": record["level"].lower(),
                "code_line_number": "42",
            }
        )
        if categorize:
            key = record["service_name"]
            labels[key] = {"service_name": record["service_name"]}
            streams.setdefault(key, []).append(
                [str(ns), record["message"], {"structuredMetadata": metadata, "parsed": {}}]
            )
        else:  # without the categorize-labels flag, metadata is merged into each stream's labels
            key = json.dumps(metadata, sort_keys=True) + record["service_name"]
            labels[key] = {"service_name": record["service_name"], **metadata}
            streams.setdefault(key, []).append([str(ns), record["message"]])
    result = [{"stream": labels[key], "values": values} for key, values in streams.items()]
    return {"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}}


@dataclass
class LokiStandIn:
    """A loopback stand-in for Loki's ``/loki/api/v1/query_range`` (not Loki: no LogQL engine).

    It accepts only the LogQL queries lumen-otel is meant to send, answers them from the
    given records as Loki would, and refuses anything else with 400 like Loki does.
    """

    records: list[dict[str, Any]]
    categorize: bool = True
    queries: list[str] = field(default_factory=list)
    url: str = ""

    def answer(self, query: str, categorize: bool) -> tuple[int, dict[str, Any]]:
        self.queries.append(query)
        prefix = '{service_name=~".+"} | '
        if not query.startswith(prefix) or query.count('="') != 1 or not query.endswith('"'):
            return 400, {"status": "error", "error": f"parse error: {query}"}
        key, value = query[len(prefix) : -1].split('="')
        if key not in ("correlation_id", "trace_id"):
            return 400, {"status": "error", "error": f"unexpected label filter {key}"}
        return 200, loki_answer([r for r in self.records if r.get(key) == value], categorize)


@pytest.fixture
def loki_stand_in() -> Iterator[LokiStandIn]:
    stand_in = LokiStandIn([])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            if url.path != "/loki/api/v1/query_range" or not {"query", "start", "end"} <= set(params):
                status, body = 404, {"status": "error", "error": "not found"}
            else:
                # Loki categorizes labels only when asked to (and this stand-in can be told not to)
                asked = "categorize-labels" in (self.headers.get("X-Loki-Response-Encoding-Flags") or "")
                status, body = stand_in.answer(params["query"][0], stand_in.categorize and asked)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


def body_of(tree: str) -> list[str]:
    """The tree without its title (the title names the source)."""
    return tree.splitlines()[2:]


# ---------------------------------------------------------------- tests


class TestTraceFromLogDirectory:
    def test_prints_the_same_tree_the_demo_printed(self, demo_run):
        done = lumen_otel("trace", demo_run.cid, "--log-dir", str(demo_run.log_dir))
        assert 0 == done.returncode, done.stderr
        assert demo_run.tree == done.stdout

    @pytest.mark.parametrize("form", ["hex", "upper", "braces"])
    def test_the_trace_id_and_other_uuid_forms_find_the_same_request(self, demo_run, form):
        """The correlation ID of the demo's request is a UUID: its 32-hex form is the trace id."""
        value = {
            "hex": uuid.UUID(demo_run.cid).hex,
            "upper": demo_run.cid.upper(),
            "braces": "{" + demo_run.cid + "}",
        }[form]
        done = lumen_otel("trace", value, "--log-dir", str(demo_run.log_dir))
        assert 0 == done.returncode, done.stderr
        assert demo_run.tree == done.stdout

    def test_log_dir_defaults_to_lumen_log_dir(self, demo_run):
        done = lumen_otel("trace", demo_run.cid, LUMEN_LOG_DIR=str(demo_run.log_dir))
        assert demo_run.tree == done.stdout

    def test_log_dir_follows_the_settings_variables_legacy_log_dir_too(self, demo_run, tmp_path):
        """The services read LUMEN_LOG_DIR, else the original Lumen Logger's LOG_DIR: so does trace."""
        done = lumen_otel("trace", demo_run.cid, LOG_DIR=str(demo_run.log_dir))
        assert (0, demo_run.tree) == (done.returncode, done.stdout), done.stderr
        first_wins = lumen_otel(
            "trace", demo_run.cid, LUMEN_LOG_DIR=str(demo_run.log_dir), LOG_DIR=str(tmp_path)
        )
        assert demo_run.tree == first_wins.stdout
        shown = lumen_otel("trace", "--help", COLUMNS="200", NO_COLOR="1")
        assert "[env var: LUMEN_LOG_DIR, LOG_DIR]" in shown.stdout

    def test_json_lists_every_service_span_and_record(self, demo_run):
        done = lumen_otel("trace", demo_run.cid, "--log-dir", str(demo_run.log_dir), "--json")
        assert 0 == done.returncode, done.stderr
        data = json.loads(done.stdout)
        mine = [r for r in log_records(demo_run.log_dir) if r["correlation_id"] == demo_run.cid]
        assert [demo_run.cid] == data["correlation_ids"]
        assert [uuid.UUID(demo_run.cid).hex] == data["trace_ids"]
        assert ["reports", "media", "dubin", "hl7-listener"] == data["services"]
        assert len(mine) == data["record_count"]

        def walk(spans: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for span in spans:
                yield span
                yield from walk(span["children"])

        spans = list(walk(data["spans"]))
        assert len(mine) == sum(len(s["records"]) for s in spans)
        assert ["reports"] == [s["service"] for s in data["spans"]]
        by_service = {s["service"]: s for s in spans}
        assert ["media"] == [c["service"] for c in by_service["reports"]["children"]]
        assert ["dubin", "hl7-listener"] == [c["service"] for c in by_service["media"]["children"]]
        assert "POST /hl7 → 200" == by_service["hl7-listener"]["name"]

    def test_unknown_id_says_no_records_and_exits_1(self, demo_run):
        unknown = str(uuid.uuid4())
        done = lumen_otel("trace", unknown, "--log-dir", str(demo_run.log_dir))
        assert (1, "") == (done.returncode, done.stdout)
        assert f"no records for {unknown} in {demo_run.log_dir}" in done.stderr

    def test_the_8_character_prefix_the_console_shows_gets_a_hint(self, demo_run):
        done = lumen_otel("trace", demo_run.cid[:8], "--log-dir", str(demo_run.log_dir))
        assert 1 == done.returncode
        assert "the text console shows the first 8 characters of an ID: pass the whole ID" in " ".join(
            done.stderr.split()
        )

    def test_an_id_that_is_not_an_id_is_refused(self, demo_run):
        done = lumen_otel("trace", "not an id", "--log-dir", str(demo_run.log_dir))
        assert 2 == done.returncode
        assert "neither a UUID, a 32-hex trace id nor a valid correlation ID" in done.stderr


class TestTraceOutputStyle:
    @pytest.fixture
    def error_logs(self, tmp_path: Path) -> tuple[str, Path]:
        cid = str(uuid.uuid4())
        trace_id = uuid.UUID(cid).hex
        base = {"hostname": "h", "correlation_id": cid, "trace_id": trace_id, "span_id": "1" * 16}
        lines = [
            {
                "timestamp": "2026-11-27T03:00:00.000000Z",
                "level": "INFO",
                "service_name": "api",
                "logger": "api",
                "message": "start",
                **base,
            },
            {
                "timestamp": "2026-11-27T03:00:00.250000Z",
                "level": "ERROR",
                "service_name": "api",
                "logger": "api",
                "message": "it broke",
                **base,
                "order": 7,
                "exception": {"type": "ValueError", "message": "bad", "stacktrace": "Traceback..."},
            },
        ]
        (tmp_path / "api.log").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return cid, tmp_path

    def test_errors_are_marked_and_plain_when_piped(self, error_logs):
        cid, log_dir = error_logs
        done = lumen_otel("trace", cid, "--log-dir", str(log_dir))
        assert "\x1b[" not in done.stdout
        lines = done.stdout.splitlines()
        assert "2 records · 250.0 ms · 1 error" in lines[1]
        assert "└── api  span 1111111111111111  +0.0 ms  250.0 ms  ✗ error" == lines[2]
        assert "+250.0 ms  ERROR   api: it broke  order=7" in lines[4]
        assert "ValueError: bad" == lines[5].strip(" │")

    def test_force_color_colours_and_no_color_wins(self, error_logs):
        cid, log_dir = error_logs
        coloured = lumen_otel("trace", cid, "--log-dir", str(log_dir), FORCE_COLOR="1")
        assert "\x1b[31" in coloured.stdout or "\x1b[1;31" in coloured.stdout
        no_color = lumen_otel("trace", cid, "--log-dir", str(log_dir), FORCE_COLOR="1", NO_COLOR="1")
        assert not any(f"\x1b[{c}" in no_color.stdout for c in ("31", "32", "33", "1;31", "1;33"))


# ---------------------------------------------------------------- parentage

_BASE = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.timezone.utc)


def _at(ms: float) -> dt.datetime:
    return _BASE + dt.timedelta(milliseconds=ms)


def _line(cid: str, service: str, span_id: str, ms: float, logger: str, message: str) -> dict[str, Any]:
    return {
        "timestamp": _at(ms).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "level": "INFO",
        "service_name": service,
        "hostname": "h",
        "logger": logger,
        "message": message,
        "correlation_id": cid,
        "trace_id": uuid.UUID(cid).hex,
        "span_id": span_id,
    }


def _otlp_span(
    trace_id: str, span_id: str, parent: str, name: str, start_ms: float, end_ms: float
) -> dict[str, Any]:
    nanos = lambda ms: str((_at(ms) - _EPOCH) // dt.timedelta(microseconds=1) * 1000)  # noqa: E731
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": nanos(start_ms),
        "endTimeUnixNano": nanos(end_ms),
    }


def _otlp_line(service: str, spans: list[dict[str, Any]]) -> str:
    """One line as the collector's file exporter writes it (OTLP JSON, ids in hex)."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {}, "spans": spans}]}]}
    )


A, A_CLIENT, B, B_CLIENT, C = "a" * 16, "ac" * 8, "b" * 16, "bc" * 8, "c" * 16


@pytest.fixture
def chain(tmp_path: Path) -> tuple[str, Path]:
    """gateway → orders → stock, and orders logs nothing before its call to stock: its only
    line comes after stock's. gateway logs before and after."""
    cid = str(uuid.uuid4())
    trace_id = uuid.UUID(cid).hex
    lines = {
        "gateway": [
            _line(cid, "gateway", A, 1, "gateway", "checkout started"),
            _line(cid, "gateway", A, 99, "uvicorn.access", '127.0.0.1:1 - "POST /checkout HTTP/1.1" 201'),
        ],
        "orders": [
            _line(cid, "orders", B, 80, "uvicorn.access", '127.0.0.1:2 - "POST /orders HTTP/1.1" 201')
        ],
        "stock": [
            _line(cid, "stock", C, 30, "stock", "reserved"),
            _line(cid, "stock", C, 40, "uvicorn.access", '127.0.0.1:3 - "PUT /stock HTTP/1.1" 200'),
        ],
    }
    for service, records in lines.items():
        (tmp_path / f"{service}.log").write_text("".join(json.dumps(r) + "\n" for r in records))
    collector = tmp_path / "collector"
    collector.mkdir()
    (collector / "traces.jsonl").write_text(
        "\n".join(
            [
                _otlp_line(
                    "gateway",
                    [
                        _otlp_span(trace_id, A, "", "POST /checkout", 0, 100),
                        _otlp_span(trace_id, A_CLIENT, A, "POST", 10, 90),
                    ],
                ),
                _otlp_line(
                    "orders",
                    [
                        _otlp_span(trace_id, B, A_CLIENT, "POST /orders", 12, 88),
                        _otlp_span(trace_id, B_CLIENT, B, "PUT", 20, 60),
                    ],
                ),
                _otlp_line("stock", [_otlp_span(trace_id, C, B_CLIENT, "PUT /stock", 22, 58)]),
                json.dumps({"resourceLogs": []}),  # the collector's other signals share the directory
            ]
        )
        + "\n"
    )
    return cid, tmp_path


class TestTraceNestsSpansByParentage:
    def test_a_callee_nests_under_its_caller_when_the_caller_logged_nothing_before_the_call(self, chain):
        """Parentage from the collector's span file: stock under orders (not under gateway, whose
        lines enclose it), orders before stock although orders' only line came after stock's."""
        cid, log_dir = chain
        done = lumen_otel("trace", cid, "--log-dir", str(log_dir))
        assert 0 == done.returncode, done.stderr
        assert [
            "└── gateway  POST /checkout → 201  +0.0 ms  100.0 ms",
            "    ├──     +1.0 ms  INFO    gateway: checkout started",
            "    ├── orders  POST /orders → 201  +12.0 ms  76.0 ms",
            "    │   ├── stock  PUT /stock → 200  +22.0 ms  36.0 ms",
            "    │   │   ├──    +30.0 ms  INFO    stock: reserved",
            '    │   │   └──    +40.0 ms  INFO    uvicorn.access: 127.0.0.1:3 - "PUT /stock HTTP/1.1" 200',
            '    │   └──    +80.0 ms  INFO    uvicorn.access: 127.0.0.1:2 - "POST /orders HTTP/1.1" 201',
            '    └──    +99.0 ms  INFO    uvicorn.access: 127.0.0.1:1 - "POST /checkout HTTP/1.1" 201',
        ] == body_of(done.stdout)
        assert f"{log_dir} (+5 spans)" in done.stdout.splitlines()[1]

    def test_spans_given_with_the_option_and_json_nesting(self, chain, tmp_path_factory):
        cid, log_dir = chain
        elsewhere = tmp_path_factory.mktemp("spans") / "traces.jsonl"
        (log_dir / "collector" / "traces.jsonl").rename(elsewhere)
        done = lumen_otel("trace", cid, "--log-dir", str(log_dir), "--spans", str(elsewhere), "--json")
        assert 0 == done.returncode, done.stderr
        data = json.loads(done.stdout)
        [gateway] = data["spans"]
        assert ["orders"] == [c["service"] for c in gateway["children"]]
        assert ["stock"] == [c["service"] for c in gateway["children"][0]["children"]]
        assert (0.0, 12.0, 100.0) == (
            gateway["offset_ms"],
            gateway["children"][0]["offset_ms"],
            data["duration_ms"],
        )

    def test_a_parent_span_id_field_on_the_records_nests_too(self, tmp_path):
        cid = str(uuid.uuid4())
        callee = _line(cid, "stock", C, 10, "stock", "reserved")
        caller = _line(cid, "orders", B, 50, "orders", "order placed")
        (tmp_path / "app.log").write_text(
            json.dumps({**callee, "parent_span_id": B}) + "\n" + json.dumps(caller) + "\n"
        )
        done = lumen_otel("trace", cid, "--log-dir", str(tmp_path))
        assert 0 == done.returncode, done.stderr
        assert [
            f"└── orders  span {B}  +0.0 ms  40.0 ms",
            f"    ├── stock  span {C}  +0.0 ms  0.0 ms",
            "    │   └──     +0.0 ms  INFO    stock: reserved",
            "    └──    +40.0 ms  INFO    orders: order placed",
        ] == body_of(done.stdout)

    def test_without_spans_a_callee_nests_under_the_caller_that_answered_after_it(self, chain):
        """No span file: gateway logged nothing before its call either, so no span encloses
        orders'; orders still nests under gateway, the span of its trace that outlived it."""
        cid, log_dir = chain
        (log_dir / "collector" / "traces.jsonl").unlink()
        gateway = log_dir / "gateway.log"
        gateway.write_text(gateway.read_text().splitlines()[1] + "\n")
        done = lumen_otel("trace", cid, "--log-dir", str(log_dir))
        assert 0 == done.returncode, done.stderr
        tree = body_of(done.stdout)
        assert "└── gateway  POST /checkout → 201  +0.0 ms  69.0 ms" == tree[0], tree
        assert tree[-1].startswith("    └──    +69.0 ms  INFO    uvicorn.access"), tree
        assert 1 == sum(1 for line in tree if line.startswith("└──"))


class TestTraceFromLoki:
    def test_issues_the_logql_query_and_renders_the_answer(self, demo_run, loki_stand_in):
        loki_stand_in.records = log_records(demo_run.log_dir)
        done = lumen_otel("trace", demo_run.cid, "--loki", loki_stand_in.url)
        assert 0 == done.returncode, done.stderr
        assert [f'{{service_name=~".+"}} | correlation_id="{demo_run.cid}"'] == loki_stand_in.queries
        assert body_of(demo_run.tree) == body_of(done.stdout)
        assert f"loki {loki_stand_in.url}" in done.stdout.splitlines()[1]

    def test_a_trace_id_is_asked_as_its_correlation_id(self, demo_run, loki_stand_in):
        loki_stand_in.records = log_records(demo_run.log_dir)
        done = lumen_otel("trace", uuid.UUID(demo_run.cid).hex, "--loki", loki_stand_in.url)
        assert 0 == done.returncode, done.stderr
        assert [f'{{service_name=~".+"}} | correlation_id="{demo_run.cid}"'] == loki_stand_in.queries
        assert body_of(demo_run.tree) == body_of(done.stdout)

    def test_streams_without_categorized_labels_render_the_same(self, demo_run, loki_stand_in):
        loki_stand_in.records = log_records(demo_run.log_dir)
        loki_stand_in.categorize = False
        done = lumen_otel("trace", demo_run.cid, "--loki", loki_stand_in.url)
        assert 0 == done.returncode, done.stderr
        assert body_of(demo_run.tree) == body_of(done.stdout)

    def test_unknown_id_asks_by_correlation_then_trace_id_and_exits_1(self, loki_stand_in):
        unknown = str(uuid.uuid4())
        done = lumen_otel("trace", unknown, "--loki", loki_stand_in.url)
        assert 1 == done.returncode
        assert [
            f'{{service_name=~".+"}} | correlation_id="{unknown}"',
            f'{{service_name=~".+"}} | trace_id="{uuid.UUID(unknown).hex}"',
        ] == loki_stand_in.queries
        assert f"no records for {unknown} in loki {loki_stand_in.url}" in done.stderr

    def test_loki_unreachable_is_an_error_not_no_records(self, loki_stand_in):
        done = lumen_otel("trace", str(uuid.uuid4()), "--loki", "http://127.0.0.1:9")
        assert 2 == done.returncode
        assert "could not reach Loki at http://127.0.0.1:9" in done.stderr
