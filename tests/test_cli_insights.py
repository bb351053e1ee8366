"""``lumen-otel insights``: templates, new ones, spikes and errors from a log directory, Loki and
OpenSearch records; the JSON schema; escaping of hostile log text; the optional LLM summary.

The logs are generated here (:func:`write_logs`): four services over two hours, the first the
baseline and the second the window, with templates whose numbers, ids, IPs and redaction tokens
vary, a template that spikes, an error burst new in the window, and a leaked PHI line.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lumen_otel.cli.insights import escape_text, parse_duration, parse_when, sparkline, time_ranges
from lumen_otel.insights.analysis import InsightsBuilder, TimeRange
from lumen_otel.insights.llm import SYSTEM_PROMPT, LLMConfig, LLMError, payload, summarise
from lumen_otel.insights.sources import LogDirSource, LokiSource, entries_from_records, parse_time
from tests.conftest import REPO, VENV_BIN, clean_env

BASELINE_START = "2026-11-27T02:00:00Z"
WINDOW_START = "2026-11-27T03:00:00Z"
WINDOW_END = "2026-11-27T04:00:00Z"
T0 = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.timezone.utc).timestamp()
HOUR = 3600.0
WINDOW = TimeRange(T0 + HOUR, T0 + 2 * HOUR)
BASELINE = TimeRange(T0, T0 + HOUR)

PHI_LINE = "Lookup failed for patient Sarah Murphy, MRN: 97727665 at desk 4"
HOSTILE = (
    "login \x1b[5;31mBLINK\x1b[0m \x1b]8;;http://evil.example/\x07click\x1b]8;;\x07 "
    "[bold red]markup[/bold red] [link=http://evil.example]x[/link] \u202eevil\u202c "
    "\r\rOVERWRITE \u2028 end \x9b2J"
)
API_KEY = "sk-test-SECRET-4f1c9a"

# the templates Drain should find, as (service, level) -> template -> (window count, baseline count)
EXPECTED = {
    ("reports", "INFO"): {"Exam created exam_id=EX-<NUM> <*>": (200, 200)},
    ("reports", "ERROR"): {"Report render failed for exam EX-<NUM>: timeout after <NUM>s": (12, 10)},
    ("reports", "WARNING"): {"Lookup failed for patient Sarah Murphy, MRN: <NUM> at desk <NUM>": (1, 0)},
    ("media", "INFO"): {"Image upload complete exam_id=EX-<NUM> images=<NUM> size_bytes=<NUM>": (300, 300)},
    ("media", "WARNING"): {"Retrying upload <NUM>/<NUM> after timeout of <NUM>s": (40, 5)},
    ("media", "ERROR"): {"HL7 send to <IP>:<NUM> failed after <NUM> retries: connection refused": (25, 0)},
    ("hl7-listener", "INFO"): {
        "HL7 audit: message accepted patient_mrn=<MRN> ack=AA": (100, 100),
        "Feature flag <*> enabled": (3, 0),
    },
    ("scheduler", "INFO"): {"heartbeat ok": (60, 60)},
}


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def generate_records(seed: int = 21) -> list[dict[str, Any]]:
    """The records of both hours, in lumen's JSON-line shape, oldest first."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []

    def add(start: float, span: float, n: int, service: str, level: str, make: Any) -> None:
        for i in range(n):
            cid = "%08x-%04x-4%03x-a%03x-%012x" % (  # noqa: UP031 - a UUID4 shape, quickly
                rng.getrandbits(32),
                rng.getrandbits(16),
                rng.getrandbits(12),
                rng.getrandbits(12),
                rng.getrandbits(48),
            )
            records.append(
                {
                    "timestamp": _stamp(start + span * (i + 0.5) / n),
                    "level": level,
                    "service_name": service,
                    "hostname": "vm",
                    "logger": f"{service}.app",
                    "message": make(),
                    "correlation_id": cid,
                    "trace_id": cid.replace("-", ""),
                    "span_id": cid.replace("-", "")[:16],
                }
            )

    def r(a: int, b: int) -> int:
        return rng.randint(a, b)

    for start in (T0, T0 + HOUR):  # the same steady traffic in both hours
        add(
            start,
            HOUR,
            200,
            "reports",
            "INFO",
            lambda: f"Exam created exam_id=EX-{r(1000, 9999)} modality=" + rng.choice(("XR", "CT", "MR")),
        )
        add(
            start,
            HOUR,
            300,
            "media",
            "INFO",
            lambda: (
                f"Image upload complete exam_id=EX-{r(1000, 9999)} images={r(1, 9)} "
                f"size_bytes={r(1, 9) << 20}"
            ),
        )
        add(
            start,
            HOUR,
            50,
            "hl7-listener",
            "INFO",
            lambda: "HL7 audit: message accepted patient_mrn=[REDACTED:MRN] ack=AA",
        )
        add(
            start,
            HOUR,
            50,
            "hl7-listener",
            "INFO",
            lambda: f"HL7 audit: message accepted patient_mrn=mrn:{rng.getrandbits(48):012x} ack=AA",
        )
        add(start, HOUR, 60, "scheduler", "INFO", lambda: "heartbeat ok")
    add(
        T0,
        HOUR,
        10,
        "reports",
        "ERROR",
        lambda: f"Report render failed for exam EX-{r(1000, 9999)}: timeout after {r(5, 60)}s",
    )
    add(
        T0 + HOUR,
        HOUR,
        12,
        "reports",
        "ERROR",
        lambda: f"Report render failed for exam EX-{r(1000, 9999)}: timeout after {r(5, 60)}s",
    )
    add(T0, HOUR, 5, "media", "WARNING", lambda: f"Retrying upload {r(1, 5)}/5 after timeout of {r(1, 30)}s")
    add(
        T0 + HOUR,
        HOUR,
        40,
        "media",
        "WARNING",
        lambda: f"Retrying upload {r(1, 5)}/5 after timeout of {r(1, 30)}s",
    )
    # new in the window: an error burst in its last ten minutes, a feature flag, a leaked PHI line
    ips = ("10.0.1.3", "10.0.7.19", "10.2.0.44")
    add(
        T0 + 2 * HOUR - 600,
        600,
        25,
        "media",
        "ERROR",
        lambda: f"HL7 send to {rng.choice(ips)}:2575 failed after {r(1, 5)} retries: connection refused",
    )
    add(
        T0 + HOUR + 60,
        60,
        3,
        "hl7-listener",
        "INFO",
        lambda: "Feature flag " + rng.choice(("fast-path", "new-ui", "v2-api")) + " enabled",
    )
    add(T0 + HOUR + 1800, 1, 1, "reports", "WARNING", lambda: PHI_LINE)
    # outside both ranges: ignored
    add(T0 - 2 * HOUR, HOUR, 30, "media", "INFO", lambda: "Old line nobody asked about")
    add(T0 + 2 * HOUR, HOUR, 30, "media", "INFO", lambda: "Line from the future")
    return sorted(records, key=lambda rec: rec["timestamp"])


def write_logs(log_dir: Path, records: list[dict[str, Any]], extra: list[str] = ()) -> None:
    """``<service>.log``, the baseline hour in the rotated ``<service>.log.1``, plus junk lines."""
    files: dict[Path, list[str]] = {}
    for record in records:
        rotated = record["timestamp"] < WINDOW_START
        path = log_dir / (f"{record['service_name']}.log" + (".1" if rotated else ""))
        files.setdefault(path, []).append(json.dumps(record))
    files.setdefault(log_dir / "reports.log", []).extend([*extra, "this is not JSON", ""])
    for path, lines in files.items():
        path.write_text("\n".join(lines) + "\n")
    (log_dir / "notes.txt").write_text("not a log\n")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_records()


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Path:
    directory = tmp_path_factory.mktemp("insights-logs")
    hostile = {
        "timestamp": _stamp(T0 + HOUR + 2000),
        "level": "WARNING",
        "service_name": "reports",
        "logger": "reports.auth",
        "message": HOSTILE,
        "correlation_id": None,
    }
    write_logs(directory, records, extra=[json.dumps(hostile)])
    return directory


def lumen_otel(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


WINDOW_ARGS = ("--since", WINDOW_START, "--until", WINDOW_END)


def by_template(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    found: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for t in data["templates"]:
        found.setdefault((t["service"], t["level"]), {})[t["template"]] = (t["count"], t["baseline_count"])
    return found


def build(log_dir: Path, **kwargs: Any) -> Any:
    builder = InsightsBuilder(WINDOW, BASELINE, buckets=6)
    source = LogDirSource(log_dir)
    builder.add_all(source.entries(builder.since, builder.until))
    return builder.build(source=str(log_dir), skipped=source.skipped, **kwargs)


# ---------------------------------------------------------------- mining and detection


@pytest.fixture(scope="module")
def insights(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Any:
    directory = tmp_path_factory.mktemp("plain-logs")
    write_logs(directory, records)
    return build(directory)


class TestInsightsFromRecords:
    def test_every_template_is_found_with_its_counts(self, insights):
        assert EXPECTED == by_template(insights.to_json())

    def test_record_totals_and_what_was_skipped(self, insights):
        in_window = sum(c for group in EXPECTED.values() for c, _ in group.values())
        in_baseline = sum(b for group in EXPECTED.values() for _, b in group.values())
        assert (in_window, in_baseline, 1) == (
            insights.window_records,
            insights.baseline_records,
            insights.skipped,
        )

    def test_new_templates_are_those_absent_from_the_baseline(self, insights):
        by_id = insights.by_id()
        assert [
            "HL7 send to <IP>:<NUM> failed after <NUM> retries: connection refused",
            "Feature flag <*> enabled",
            "Lookup failed for patient Sarah Murphy, MRN: <NUM> at desk <NUM>",
        ] == [by_id[i].template for i in insights.new]

    def test_a_rate_well_above_the_baseline_is_a_spike(self, insights):
        by_id = insights.by_id()
        assert ["Retrying upload <NUM>/<NUM> after timeout of <NUM>s"] == [
            by_id[i].template for i in insights.spikes
        ]
        spike = by_id[insights.spikes[0]]
        assert (40, 5, 8.0) == (spike.count, spike.baseline_count, spike.rate_ratio)

    def test_error_templates_carry_correlation_ids_to_trace(self, insights, records):
        by_id = insights.by_id()
        errors = [by_id[i] for i in insights.errors]
        assert [("media", 25), ("reports", 12)] == [(t.service, t.count) for t in errors]
        burst = errors[0]
        assert burst.new
        assert not burst.spike  # new, not a spike: the baseline had none
        burst_cids = {r["correlation_id"] for r in records if r["message"].startswith("HL7 send to")}
        assert 5 == len(burst.correlation_ids)
        assert set(burst.correlation_ids) <= burst_cids
        assert not errors[1].new
        assert not errors[1].spike  # 12 against 10: no spike

    def test_buckets_show_when_the_burst_happened(self, insights):
        by_id = insights.by_id()
        burst = by_id[insights.errors[0]]
        assert [0, 0, 0, 0, 0, 25] == burst.buckets
        steady = next(t for t in insights.templates if t.template.startswith("Image upload"))
        assert [50] * 6 == steady.buckets

    def test_min_count_and_spike_factor_are_honoured(self, tmp_path, records):
        write_logs(tmp_path, records)
        assert [] == build(tmp_path, min_count=41).spikes
        assert [] == build(tmp_path, spike_factor=8.5).spikes
        assert 1 == len(build(tmp_path, spike_factor=8.0).spikes)

    def test_without_baseline_records_nothing_is_called_new(self, tmp_path, records):
        write_logs(tmp_path, [r for r in records if r["timestamp"] >= WINDOW_START])
        insights = build(tmp_path)
        assert ([], []) == (insights.new, insights.spikes)
        assert 0 == insights.baseline_records

    def test_examples_and_ids_are_bounded_per_template(self, insights):
        for template in insights.templates:
            assert 1 <= len(template.examples) <= 3
            assert len(template.correlation_ids) <= 5

    def test_memory_is_bounded_by_templates(self, tmp_path, records):
        write_logs(tmp_path, records)
        builder = InsightsBuilder(WINDOW, BASELINE, max_templates=3)
        source = LogDirSource(tmp_path)
        builder.add_all(source.entries(builder.since, builder.until))
        insights = builder.build(source="x")
        assert len(builder.drain) == 3
        assert insights.templates_evicted > 0
        # the group totals still count every line
        assert sum(c for group in EXPECTED.values() for c, _ in group.values()) == insights.window_records

    def test_opensearch_shaped_records_become_the_same_insights(self, records):
        """OpenSearch's iter_records yields JSON-line dicts: the same insights as the files."""
        source = LogDirSource(Path("."))
        builder = InsightsBuilder(WINDOW, BASELINE, buckets=6)
        builder.add_all(
            entries_from_records(iter([*records, {"no": "timestamp"}]), builder.since, builder.until, source)
        )
        insights = builder.build(source="opensearch")
        assert EXPECTED == by_template(insights.to_json())
        assert 1 == source.skipped


class TestTimeOptions:
    NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc).timestamp()

    def test_durations(self):
        assert [30.0, 1800.0, 3600.0, 86400.0, 5400.0] == [
            parse_duration(x) for x in ("30s", "30m", "1h", "1d", "1.5h")
        ]
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration("soon")

    def test_times(self):
        assert self.NOW == parse_when("now", self.NOW)
        assert self.NOW - 3600 == parse_when("1h", self.NOW)
        assert T0 == parse_when(BASELINE_START, self.NOW)
        assert T0 == parse_when("2026-11-27T03:00:00+01:00", self.NOW)
        with pytest.raises(ValueError, match="RFC 3339"):
            parse_when("yesterday", self.NOW)

    def test_the_baseline_defaults_to_the_window_before(self):
        window, baseline = time_ranges("1h", "now", None, self.NOW)
        assert (self.NOW - 3600, self.NOW) == (window.since, window.until)
        assert baseline is not None
        assert (self.NOW - 7200, self.NOW - 3600) == (baseline.since, baseline.until)

    def test_an_explicit_baseline_and_none(self):
        window, baseline = time_ranges(WINDOW_START, WINDOW_END, "24h", self.NOW)
        assert baseline is not None
        assert (window.since - 86400, window.since) == (baseline.since, baseline.until)
        assert time_ranges("30m", "10m", "none", self.NOW)[1] is None

    def test_a_window_ending_before_it_starts_is_refused(self):
        with pytest.raises(ValueError, match="before"):
            time_ranges(WINDOW_END, WINDOW_START, None, self.NOW)

    def test_lumen_timestamps_parse_like_iso(self):
        for text in ("2026-11-27T03:04:19.917638Z", "2026-11-27T03:04:19Z", "2026-11-27T03:04:19.5Z"):
            expected = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            assert parse_time(text) == pytest.approx(expected, abs=1e-6)
        assert parse_time("garbage") is None


class TestTerminalText:
    def test_controls_escapes_and_bidi_are_shown_not_sent(self):
        assert "a\\x1b[31mb\\rc\\u202ed\\x07e\\x9bf\\u2028g" == escape_text(
            "a\x1b[31mb\rc\u202ed\x07e\x9bf\u2028g"
        )
        assert "one\ntwo\\x1b" == escape_text("one\ntwo\x1b", keep_newlines=True)
        assert "one\\ntwo" == escape_text("one\ntwo")

    def test_sparkline(self):
        assert "" == sparkline([])
        assert "   " == sparkline([0, 0, 0])
        assert " ▂█" == sparkline([0, 1, 8])
        assert "████" == sparkline([3, 3, 3, 3])


# ---------------------------------------------------------------- the command


@pytest.mark.integration
class TestInsightsCommand:
    def test_json_follows_the_documented_schema(self, log_dir):
        jsonschema = pytest.importorskip("jsonschema")
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, "--buckets", "6", "--json")
        assert 0 == done.returncode, done.stderr
        data = json.loads(done.stdout)
        jsonschema.validate(data, INSIGHTS_SCHEMA)
        assert 1 == data["schema_version"]
        assert {
            "since": "2026-11-27T03:00:00.000000Z",
            "until": "2026-11-27T04:00:00.000000Z",
        }.items() <= data["window"].items()
        assert "2026-11-27T02:00:00.000000Z" == data["baseline"]["since"]
        found = by_template(data)
        for group, templates in EXPECTED.items():
            assert templates.items() <= found[group].items()
        ids = {t["id"] for t in data["templates"]}
        assert set(data["new"]) | set(data["spikes"]) | set(data["errors"]) <= ids
        assert data["summary"] is None

    def test_the_terminal_report_lists_findings_and_escapes_hostile_text(self, log_dir):
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS)
        assert 0 == done.returncode, done.stderr
        out = done.stdout
        assert "Log insights" in out
        assert "New since the baseline (4)" in out
        assert "Spikes against the baseline (1)" in out
        assert "Error templates (2)" in out
        assert "HL7 send to <IP>:<NUM> failed after <NUM> retries: connection refused" in out
        assert "follow one: lumen-otel trace " in out
        # the hostile line, shown escaped and literally, never interpreted
        assert "\\x1b[5;31mBLINK" in out
        assert "[bold red]markup[/bold red]" in out
        assert "\\u202eevil\\u202c" in out
        for raw in ("\x1b", "\r", "\u202e", "\u202c", "\u2028", "\x07", "\x9b"):
            assert raw not in out

    def test_with_colour_forced_the_hostile_sequences_still_do_not_reach_the_terminal(self, log_dir):
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, FORCE_COLOR="1")
        assert 0 == done.returncode, done.stderr
        assert "\x1b[" in done.stdout  # Rich's own colours
        for raw in ("\x1b[5;31m", "\x1b]", "\r", "\u202e", "\x07", "\x9b"):
            assert raw not in done.stdout

    def test_an_empty_baseline_is_explained_instead_of_an_empty_new_section(self, tmp_path, records):
        write_logs(tmp_path, [r for r in records if r["timestamp"] >= WINDOW_START])
        done = lumen_otel("insights", "--log-dir", str(tmp_path), *WINDOW_ARGS)
        assert 0 == done.returncode, done.stderr
        assert "0 in the baseline" in done.stdout
        assert "The baseline holds no records, so no template is called new" in done.stdout
        assert "New since the baseline" not in done.stdout

    def test_service_filter_and_log_dir_from_the_environment(self, log_dir):
        done = lumen_otel(
            "insights", *WINDOW_ARGS, "--service", "media", "--json", LUMEN_LOG_DIR=str(log_dir)
        )
        assert 0 == done.returncode, done.stderr
        assert {"media"} == {t["service"] for t in json.loads(done.stdout)["templates"]}

    def test_an_empty_window_says_so_and_exits_1(self, log_dir):
        done = lumen_otel(
            "insights",
            "--log-dir",
            str(log_dir),
            "--since",
            "2020-01-01T00:00:00Z",
            "--until",
            "2020-01-01T01:00:00Z",
        )
        assert 1 == done.returncode
        assert "no records in the window" in done.stderr

    def test_bad_options_exit_2(self, log_dir, tmp_path):
        assert 2 == lumen_otel("insights", "--log-dir", str(tmp_path / "missing")).returncode
        done = lumen_otel("insights", "--log-dir", str(log_dir), "--since", "soonish")
        assert 2 == done.returncode
        assert "RFC 3339" in done.stderr
        both = lumen_otel("insights", "--loki", "http://127.0.0.1:9", "--opensearch", "http://127.0.0.1:9")
        assert 2 == both.returncode


# ---------------------------------------------------------------- Loki


@dataclass
class LokiQueryRangeStandIn:
    """A loopback stand-in for Loki's ``/loki/api/v1/query_range`` (not Loki: no LogQL engine).

    It accepts only the stream selector it is given, answers entries with ``start <= ns < end``
    oldest first, at most ``limit`` of them (as Loki does with ``direction=forward``), in the
    categorize-labels encoding, and records every request's parameters.
    """

    records: list[dict[str, Any]]
    selector: str = '{service_name=~".+"}'
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def answer(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(params)
        if params.get("query") != self.selector or params.get("direction") != "forward":
            return 400, {"status": "error", "error": f"parse error: {params.get('query')}"}
        start, end, limit = int(params["start"]), int(params["end"]), int(params["limit"])
        entries = []
        for record in self.records:
            when = dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
            ns = (
                (when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc))
                // dt.timedelta(microseconds=1)
                * 1000
            )
            if start <= ns < end:
                entries.append((ns, record))
        entries.sort(key=lambda e: e[0])
        streams: dict[str, list[list[Any]]] = {}
        for ns, record in entries[:limit]:
            metadata = {
                "severity_text": record["level"],
                "correlation_id": str(record.get("correlation_id") or ""),
                "trace_id": str(record.get("trace_id") or ""),
            }
            streams.setdefault(record["service_name"], []).append(
                [str(ns), record["message"], {"structuredMetadata": metadata, "parsed": {}}]
            )
        result = [{"stream": {"service_name": name}, "values": values} for name, values in streams.items()]
        return 200, {"status": "success", "data": {"resultType": "streams", "result": result}}


@pytest.fixture
def loki_stand_in(records: list[dict[str, Any]]) -> Iterator[LokiQueryRangeStandIn]:
    stand_in = LokiQueryRangeStandIn(records)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/loki/api/v1/query_range":
                status, body = 404, {"status": "error", "error": "not found"}
            else:
                status, body = stand_in.answer({k: v[0] for k, v in parse_qs(url.query).items()})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


class TestLoki:
    def test_pages_through_query_range_and_finds_the_same_templates(self, loki_stand_in):
        source = LokiSource(loki_stand_in.url, limit=97)
        builder = InsightsBuilder(WINDOW, BASELINE, buckets=6)
        builder.add_all(source.entries(builder.since, builder.until))
        insights = builder.build(source=source.description)
        assert EXPECTED == by_template(insights.to_json())
        assert len(loki_stand_in.requests) > 10  # it paged
        first = loki_stand_in.requests[0]
        assert (str(int(T0 * 1e9)), str(int((T0 + 2 * HOUR) * 1e9)), "97") == (
            first["start"],
            first["end"],
            first["limit"],
        )
        error_ids = {c for i in insights.errors for c in insights.by_id()[i].correlation_ids}
        assert error_ids  # correlation IDs come from the structured metadata

    def test_entries_sharing_the_page_boundary_nanosecond_are_counted_once(self, loki_stand_in):
        def line(stamp: str, message: str) -> dict[str, Any]:
            return {"timestamp": stamp, "level": "INFO", "service_name": "api", "message": message}

        loki_stand_in.records = [
            line("2026-11-27T03:10:00.000000Z", "tick 0"),
            *(line("2026-11-27T03:10:01.000000Z", f"tock {i}") for i in range(3)),
            line("2026-11-27T03:10:02.000000Z", "tick 1"),
            line("2026-11-27T03:10:03.000000Z", "tick 2"),
        ]
        source = LokiSource(loki_stand_in.url, limit=3)
        entries = [e[3] for e in source.entries(WINDOW.since, WINDOW.until)]
        assert ["tick 0", "tock 0", "tock 1", "tock 2", "tick 1", "tick 2"] == entries

    def test_more_entries_in_one_nanosecond_than_a_page_moves_past_them(self, loki_stand_in):
        same = [
            {
                "timestamp": "2026-11-27T03:10:00.000000Z",
                "level": "INFO",
                "service_name": "api",
                "message": f"t {i}",
            }
            for i in range(5)
        ]
        later = {
            "timestamp": "2026-11-27T03:20:00.000000Z",
            "level": "INFO",
            "service_name": "api",
            "message": "later",
        }
        loki_stand_in.records = [*same, later]
        source = LokiSource(loki_stand_in.url, limit=3)
        entries = [e[3] for e in source.entries(WINDOW.since, WINDOW.until)]
        assert ["t 0", "t 1", "t 2", "later"] == entries  # Loki cannot page within one nanosecond

    @pytest.mark.integration
    def test_the_command_reads_loki(self, loki_stand_in, log_dir):
        done = lumen_otel("insights", "--loki", loki_stand_in.url, *WINDOW_ARGS, "--json")
        assert 0 == done.returncode, done.stderr
        data = json.loads(done.stdout)
        assert f"loki {loki_stand_in.url}" == data["source"]
        assert EXPECTED == by_template(data)
        assert loki_stand_in.requests[0]["query"] == '{service_name=~".+"}'

    @pytest.mark.integration
    def test_loki_unreachable_is_an_error(self):
        done = lumen_otel("insights", "--loki", "http://127.0.0.1:9", *WINDOW_ARGS)
        assert 2 == done.returncode
        assert "could not reach Loki at http://127.0.0.1:9" in done.stderr


# ---------------------------------------------------------------- OpenSearch wiring


class TestOpenSearchWiring:
    @pytest.fixture
    def search_calls(self, monkeypatch, records) -> list[dict[str, Any]]:
        """``lumen_otel.cli._search`` is another module's; here a fake one records the calls."""
        calls: list[dict[str, Any]] = []

        def iter_records(base_url: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
            calls.append({"base_url": base_url, **kwargs})
            return iter(records)

        fake = types.ModuleType("lumen_otel.cli._search")
        fake.iter_records = iter_records  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "lumen_otel.cli._search", fake)
        return calls

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> Any:
        from typer.testing import CliRunner

        from lumen_otel.cli import build_app

        clean = {
            k: None
            for k in ("OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "OPENSEARCH_CA_FILE", "ELASTICSEARCH_API_KEY")
        }
        clean["OPENSEARCH_LOGS_INDEX"] = None
        return CliRunner().invoke(build_app(), ["insights", *args], env={**clean, **(env or {})})

    def test_the_command_calls_iter_records_with_the_window(self, search_calls):
        result = self.invoke(
            "--opensearch", "http://127.0.0.1:9200", "--index", "lumen-*", *WINDOW_ARGS, "--json", "--no-llm"
        )
        assert 0 == result.exit_code, result.output
        data = json.loads(result.stdout)
        assert EXPECTED == by_template(data)
        assert "opensearch http://127.0.0.1:9200 index lumen-*" == data["source"]
        assert [
            {
                "base_url": "http://127.0.0.1:9200",
                "index": "lumen-*",
                "since": dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.timezone.utc),
                "until": dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.timezone.utc),
                "page_size": 1000,
            }
        ] == search_calls

    def test_credentials_and_the_ca_file_are_passed_on(self, search_calls, tmp_path):
        ca = tmp_path / "ca.pem"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        result = self.invoke(
            "--elasticsearch",
            "https://es.example:9200",
            "--search-ca-file",
            str(ca),
            *WINDOW_ARGS,
            "--json",
            env={
                "OPENSEARCH_USER": "reader",
                "OPENSEARCH_PASSWORD": "pw",
                "ELASTICSEARCH_API_KEY": "k",
                "OPENSEARCH_LOGS_INDEX": "logs-lumen-prod",
            },
        )
        assert 0 == result.exit_code, result.output
        assert (
            "elasticsearch https://es.example:9200 index logs-lumen-prod"
            == json.loads(result.stdout)["source"]
        )
        (call,) = search_calls
        assert (("reader", "pw"), "k", str(ca), "logs-lumen-prod") == (
            call["auth"],
            call["api_key"],
            call["verify"],
            call["index"],
        )

    @pytest.mark.integration
    def test_an_unreachable_node_is_an_error(self):
        done = lumen_otel("insights", "--opensearch", "http://127.0.0.1:9", *WINDOW_ARGS)
        assert 2 == done.returncode
        assert "http://127.0.0.1:9" in done.stderr
        assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- the LLM summary


SUMMARY = "- media ERROR: HL7 sends to the listener fail since 03:50\n- \x1b[2Jretries up 8x"


@dataclass
class ChatCompletionsStandIn:
    """A loopback stand-in for an OpenAI-compatible ``POST /v1/chat/completions`` endpoint.

    It is no model: it records each request (path, headers, JSON body) and answers with a fixed
    chat completion, or, by ``mode``, an HTTP 500, an answer too large, or one that is not JSON.
    """

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        self.requests.append({"path": path, "headers": headers, "body": json.loads(body)})
        if path != "/v1/chat/completions":
            return 404, b'{"error": "not found"}'
        if self.mode == "error":  # an error page that echoes the key: it must not be printed
            return 500, json.dumps({"error": f"bad key {headers.get('authorization')}"}).encode()
        if self.mode == "huge":
            return 200, b'{"choices": [{"message": {"content": "' + b"x" * 400_000 + b'"}}]}'
        if self.mode == "garbage":
            return 200, b"<html>hello</html>"
        completion = {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": SUMMARY}, "finish_reason": "stop"}
            ],
        }
        return 200, json.dumps(completion).encode()


@pytest.fixture
def chat_stand_in() -> Iterator[ChatCompletionsStandIn]:
    stand_in = ChatCompletionsStandIn()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1_000_000))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, data = stand_in.answer(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


def llm_env(stand_in: ChatCompletionsStandIn) -> dict[str, str]:
    return {
        "LUMEN_INSIGHTS_LLM_URL": stand_in.url,
        "LUMEN_INSIGHTS_LLM_MODEL": "test-model",
        "LUMEN_INSIGHTS_LLM_API_KEY": API_KEY,
    }


@pytest.mark.integration
class TestLLMSummary:
    def test_only_redacted_templates_and_counts_are_sent_and_the_summary_is_printed(
        self, log_dir, chat_stand_in
    ):
        offline = json.loads(lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, "--json").stdout)
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, **llm_env(chat_stand_in))
        assert 0 == done.returncode, done.stderr
        assert 1 == len(chat_stand_in.requests)
        request = chat_stand_in.requests[0]
        assert "/v1/chat/completions" == request["path"]
        assert f"Bearer {API_KEY}" == request["headers"]["authorization"]
        body = request["body"]
        assert {"model", "messages", "temperature", "max_tokens", "stream"} == set(body)
        assert "test-model" == body["model"]
        assert [{"role": "system", "content": SYSTEM_PROMPT}] == body["messages"][:1]
        facts = json.loads(body["messages"][1]["content"])
        assert {"window", "baseline", "records", "templates"} == set(facts)
        for template in facts["templates"]:
            assert {"service", "level", "template", "count", "baseline_count", "new", "spike"} == set(
                template
            )
        sent = {t["template"] for t in facts["templates"]}
        assert "Lookup failed for patient [REDACTED:NAME], MRN: <NUM> at desk <NUM>" in sent
        assert "HL7 send to <IP>:<NUM> failed after <NUM> retries: connection refused" in sent
        # nothing from a raw line: no PHI, no example, no ID, no IP
        raw = json.dumps(body)
        for leaked in ("Sarah Murphy", "97727665", "10.0.1.3", "10.0.7.19"):
            assert leaked not in raw
        for char in ("\x1b", "\x07", "\r", "\u202e", "\u2028", "\x9b"):
            assert not any(char in t for t in sent)
        assert any("\\x1b[<NUM>;31mBLINK" in t for t in sent)  # the hostile template, escaped
        for template in offline["templates"]:
            for example in template["examples"]:
                if example != template["template"]:  # a constant message is its own template
                    assert json.dumps(example)[1:-1] not in raw
            for cid in template["correlation_ids"]:
                assert cid not in raw
        # the summary: printed (escaped), and the key nowhere
        assert "Summary (test-model)" in done.stdout
        assert "- media ERROR: HL7 sends to the listener fail since 03:50" in done.stdout
        assert "- \\x1b[2Jretries up 8x" in done.stdout
        assert API_KEY not in done.stdout + done.stderr

    def test_the_summary_is_in_the_json_and_the_key_is_not(self, log_dir, chat_stand_in):
        done = lumen_otel(
            "insights", "--log-dir", str(log_dir), *WINDOW_ARGS, "--json", **llm_env(chat_stand_in)
        )
        assert 0 == done.returncode, done.stderr
        data = json.loads(done.stdout)
        assert {"model": "test-model", "text": SUMMARY} == data["summary"]
        assert API_KEY not in done.stdout + done.stderr

    @pytest.mark.parametrize("mode", ["error", "huge", "garbage"])
    def test_a_failure_is_one_warning_and_the_report_still_appears(self, log_dir, chat_stand_in, mode):
        chat_stand_in.mode = mode
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, **llm_env(chat_stand_in))
        assert 0 == done.returncode, done.stderr
        assert "Top templates per service and level" in done.stdout
        assert "Summary" not in done.stdout
        warnings = [line for line in done.stderr.splitlines() if line.strip()]
        assert 1 == len(warnings), done.stderr
        assert warnings[0].startswith("warning: no LLM summary: ")
        assert API_KEY not in done.stdout + done.stderr

    def test_no_llm_and_no_configuration_stay_offline(self, log_dir, chat_stand_in):
        done = lumen_otel(
            "insights", "--log-dir", str(log_dir), *WINDOW_ARGS, "--no-llm", **llm_env(chat_stand_in)
        )
        assert 0 == done.returncode
        offline = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS)
        assert 0 == offline.returncode
        assert "" == offline.stderr
        assert [] == chat_stand_in.requests

    def test_llm_asked_for_but_not_configured_warns(self, log_dir):
        done = lumen_otel("insights", "--log-dir", str(log_dir), *WINDOW_ARGS, "--llm")
        assert 0 == done.returncode
        assert "warning: no LLM summary: LUMEN_INSIGHTS_LLM_URL is not set" in done.stderr


class TestLLMClient:
    def test_plain_http_is_refused_except_to_loopback(self, tmp_path, records):
        write_logs(tmp_path, records)
        insights = build(tmp_path)
        config = LLMConfig("http://llm.example.com/v1", "m", API_KEY)
        with pytest.raises(LLMError, match="must use https") as caught:
            summarise(insights, config)
        assert API_KEY not in str(caught.value)
        assert API_KEY not in repr(config)

    def test_a_model_is_required(self):
        with pytest.raises(LLMError, match="LUMEN_INSIGHTS_LLM_MODEL"):
            LLMConfig.from_env({"LUMEN_INSIGHTS_LLM_URL": "https://llm.example.com/v1"})
        assert LLMConfig.from_env({}) is None

    def test_the_payload_redacts_templates_again_and_has_no_examples(self, tmp_path, records):
        write_logs(tmp_path, records)
        body = payload(build(tmp_path), "m")
        text = json.dumps(body)
        assert "Sarah Murphy" not in text
        assert "[REDACTED:NAME]" in text
        assert "examples" not in text
        assert "correlation_id" not in text

    def test_a_planted_unredacted_line_leaves_no_address_or_birth_date_in_the_payload(self):
        """A line written into the log directory by someone else is not redacted at the source;
        masking turns its numbers into <NUM>, which used to hide the address and the date of
        birth around them from the redactor."""
        from lumen_otel import redact
        from lumen_otel.insights.llm import _redacted_template

        template = "admit Doe born <NUM>/<NUM>/<NUM> at <NUM> Elm St Springfield"
        sent = _redacted_template(template, redact)
        assert "Elm St" not in sent and "<NUM>/<NUM>" not in sent, sent
        assert "[REDACTED:ADDRESS]" in sent and "[REDACTED:DOB]" in sent
        assert "GET /exams/<NUM> took <NUM>ms" == _redacted_template("GET /exams/<NUM> took <NUM>ms", redact)

    def test_a_query_string_in_the_url_stays_at_the_end(self):
        assert (
            "http://127.0.0.1:9/v1/chat/completions?key=X"
            == LLMConfig("http://127.0.0.1:9/v1?key=X", "m").endpoint
        )
        assert "https://h/v1/chat/completions" == LLMConfig("https://h/v1/chat/completions/", "m").endpoint


# ---------------------------------------------------------------- the documented schema

_TEMPLATE = {
    "type": "object",
    "required": [
        "id",
        "service",
        "level",
        "template",
        "count",
        "baseline_count",
        "rate_ratio",
        "new",
        "spike",
        "error",
        "buckets",
        "examples",
        "correlation_ids",
        "first_seen",
        "last_seen",
    ],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^t[0-9a-f]{10}$"},
        "service": {"type": "string"},
        "level": {"type": "string"},
        "template": {"type": "string"},
        "count": {"type": "integer", "minimum": 1},
        "baseline_count": {"type": "integer", "minimum": 0},
        "rate_ratio": {"type": ["number", "null"]},
        "new": {"type": "boolean"},
        "spike": {"type": "boolean"},
        "error": {"type": "boolean"},
        "buckets": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "examples": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "correlation_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "first_seen": {"type": ["string", "null"]},
        "last_seen": {"type": ["string", "null"]},
    },
}
_RANGE = {
    "type": "object",
    "required": ["since", "until", "seconds"],
    "properties": {"since": {"type": "string"}, "until": {"type": "string"}, "seconds": {"type": "number"}},
}
INSIGHTS_SCHEMA = {
    "type": "object",
    "required": [
        "schema_version",
        "source",
        "window",
        "baseline",
        "records",
        "templates_evicted",
        "settings",
        "groups",
        "templates",
        "new",
        "spikes",
        "errors",
        "summary",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": 1},
        "source": {"type": "string"},
        "window": {
            "allOf": [_RANGE],
            "required": ["buckets", "bucket_seconds"],
            "properties": {"buckets": {"type": "integer"}, "bucket_seconds": {"type": "number"}},
        },
        "baseline": {"oneOf": [_RANGE, {"type": "null"}]},
        "records": {
            "type": "object",
            "required": ["window", "baseline", "skipped"],
            "additionalProperties": False,
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("window", "baseline", "skipped")},
        },
        "templates_evicted": {"type": "integer", "minimum": 0},
        "settings": {"type": "object"},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["service", "level", "count", "baseline_count", "template_count", "top"],
                "additionalProperties": False,
                "properties": {
                    "service": {"type": "string"},
                    "level": {"type": "string"},
                    "count": {"type": "integer"},
                    "baseline_count": {"type": "integer"},
                    "template_count": {"type": "integer"},
                    "top": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "templates": {"type": "array", "items": _TEMPLATE},
        "new": {"type": "array", "items": {"type": "string"}},
        "spikes": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "string"}},
        "summary": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["model", "text"],
                    "additionalProperties": False,
                    "properties": {"model": {"type": "string"}, "text": {"type": "string"}},
                },
            ]
        },
    },
}
