"""The collector down, going away, coming back, slow, or refusing (503/429).

A real FastAPI service under ``opentelemetry-instrument uvicorn`` exports to a collector
stand-in (``OTLPReceiver`` in a child process we kill and restart on the same port) and
writes its JSON log file. What a user of the service would notice is asserted: every request
is answered, none of them waits for the exporter (the exporter's timeout is 10 s; every request
is answered far below it), and every record is in the file and delivered, or counted as dropped.

How much a fault costs in latency next to the same service without a collector is a measurement,
not a test: ``benchmarks/bench_collector_faults.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.reliability.conftest import (
    App,
    RemoteReceiver,
    app_env,
    numbered,
    timed_get,
    uvicorn_argv,
    wait_until,
)

pytestmark = pytest.mark.integration

ROUNDS = 120
QUEUE = 300  # LUMEN_OTLP_QUEUE_SIZE: small, so overflowing it is cheap
EXPORT_TIMEOUT = 10.0  # OTEL_EXPORTER_OTLP_TIMEOUT, seconds
SLOW_COLLECTOR = 2.0  # seconds the slow collector takes to answer each export
# A request that waited on an export at all would wait for the collector's answer (2 s when it is
# slow) or for the exporter's retries (up to its 10 s timeout when the collector is down or refusing).
# Answered on loopback, a request takes milliseconds even on a loaded machine; this bound is a tenth
# of the exporter's timeout and half the slow collector's delay: not a speed target, the line between
# "answered without the exporter" and "waited for it".
PROMPT = EXPORT_TIMEOUT / 10


def start_exporting_app(start_app: Any, receiver: RemoteReceiver, tmp_path: Path) -> App:
    port = free_port()
    env = app_env(
        "faulty",
        tmp_path / "logs",
        receiver.endpoint,
        LUMEN_OTLP_QUEUE_SIZE=str(QUEUE),
        OTEL_BSP_MAX_QUEUE_SIZE="256",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="128",
        OTEL_EXPORTER_OTLP_TIMEOUT=f"{EXPORT_TIMEOUT:g}",
    )
    return start_app(uvicorn_argv(port), env, name="faulty", port=port)


def exportable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """File records that go over OTLP too (the SDK's own loggers stay local: no export loop)."""
    return [r for r in records if not str(r["logger"]).startswith("opentelemetry")]


def log_bodies(receiver: RemoteReceiver) -> list[dict[str, Any]]:
    return [{"message": log["body"]} for log in receiver.logs()]


def bulk(app: App, tag: str, n: int, size: int, times: int = 1) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(times):
            response = client.get(f"{app.url}/bulk", params={"n": n, "size": size, "tag": tag})
            assert response.status_code == 200


def work(app: App, numbers: range) -> None:
    """``GET /work/<i>`` for each number: every one answered 200, and none waited for the exporter
    (checked request by request, so a request path that does wait fails at the first one)."""
    with httpx.Client(timeout=EXPORT_TIMEOUT * 3) as client:
        for i in numbers:
            seconds = timed_get(client, f"{app.url}/work/{i}")
            assert seconds < PROMPT, (
                f"GET /work/{i} took {seconds:.2f} s: it waited for the exporter "
                f"(bound {PROMPT:g} s; exporter timeout {EXPORT_TIMEOUT:g} s)"
            )


def file_has_work(app: App, count: int) -> bool:
    """The writer thread has written ``count`` work records to the file."""
    try:
        return len(numbered(app.file_records("faulty"), "work")) >= count
    except ValueError:
        return False  # a line being written right now; the final reads parse every line strictly


class TestCollectorDownAtStartUp:
    def test_app_is_unaffected_file_keeps_all_and_backlog_is_delivered_with_drops_counted(
        self, start_app, receiver, tmp_path
    ):
        """Collector down from the start: every request answered, none waits for the exporter,
        RSS bounded by the queue, every record in the file; when it comes up the queued records
        arrive, the overflow is counted in ``lumen.log.dropped`` (records delivered + dropped =
        records logged) and reported once on stderr."""
        app = start_exporting_app(start_app, receiver, tmp_path)
        work(app, range(ROUNDS))

        rss_before = app.rss_kib()
        bulk(app, "away", n=500, size=4000, times=20)  # 10,000 records, 40 MB of payload
        work(app, range(ROUNDS, ROUNDS + 3))
        rss_growth_mib = (app.rss_kib() - rss_before) / 1024
        # bounded: the OTLP queue (300 x 4 KB), the console's own backlog (at most 4 MiB of JSON while
        # the test reads stdout) and the allocator's slack; an unbounded OTLP queue would hold > 40 MiB
        assert rss_growth_mib < 32, rss_growth_mib

        receiver.start()
        wait_until(lambda: file_has_work(app, ROUNDS + 3), f"{ROUNDS + 3} work records in the file")
        file_records = exportable(app.file_records("faulty"))

        def accounted(r: RemoteReceiver) -> bool:
            return len(r.logs()) + r.metric_total("lumen.log.dropped", reason="otlp_queue_full") == len(
                file_records
            )

        assert receiver.wait_for(accounted, timeout=20), (len(receiver.logs()), len(file_records))
        delivered, dropped = len(receiver.logs()), receiver.metric_total("lumen.log.dropped")
        assert delivered >= QUEUE
        assert dropped > 0
        away_in_file = Counter(numbered(app.file_records("faulty"), "away"))
        assert {k: 20 for k in range(500)} == dict(away_in_file)
        assert list(range(ROUNDS + 3)) == numbered(app.file_records("faulty"), "work")
        app.stop()
        assert app.stderr.count("OTLP log queue full") == 1
        print(
            f"\nRESULT down-at-start: {ROUNDS + 3} requests answered, none waited for the exporter; "
            f"RSS +{rss_growth_mib:.1f} MiB for 10,000 x 4 KB records; delivered {delivered}, "
            f"dropped (counted) {dropped:.0f}, file kept {len(file_records)}/{len(file_records)}"
        )


class TestCollectorGoesAwayAndComesBack:
    def test_records_logged_while_it_was_away_are_delivered_when_it_returns(
        self, start_app, receiver, tmp_path
    ):
        """Up, then killed mid-run, then back on the same port: nothing logged within the
        queue limit is lost, nothing is delivered twice, and the app never noticed."""
        receiver.start()
        app = start_exporting_app(start_app, receiver, tmp_path)
        work(app, range(0, 100))
        assert receiver.wait_for(lambda r: numbered(log_bodies(r), "work") == list(range(100)))

        receiver.kill()
        work(app, range(100, 270))  # 170 records while it is away: within the queue of 300

        receiver.start()
        wait_until(lambda: file_has_work(app, 270), "270 work records in the file")
        expected = numbered(app.file_records("faulty"), "work")
        assert list(range(270)) == expected
        assert receiver.wait_for(lambda r: numbered(log_bodies(r), "work") == expected, timeout=20), (
            len(numbered(log_bodies(receiver), "work")),
            len(expected),
        )
        assert receiver.wait_for(lambda r: r.metric_total("lumen.log.records", severity="INFO") > 0)
        assert receiver.metric_total("lumen.log.dropped") == 0
        app.stop()
        print(
            f"\nRESULT away-and-back: 270 requests answered, none waited for the exporter; "
            f"{len(expected)}/{len(expected)} work records delivered once, 0 dropped"
        )


class TestSlowCollector:
    def test_a_collector_answering_after_seconds_slows_nothing_and_gets_everything(
        self, start_app, receiver, tmp_path
    ):
        """Every export waits 2 s for an answer: no request does, and every record arrives."""
        receiver.start(delay=SLOW_COLLECTOR)
        app = start_exporting_app(start_app, receiver, tmp_path)
        work(app, range(ROUNDS))
        # the writer thread may still be writing the last ones
        wait_until(lambda: file_has_work(app, ROUNDS), f"{ROUNDS} work records in the file")
        expected = numbered(app.file_records("faulty"), "work")
        assert list(range(ROUNDS)) == expected
        assert receiver.wait_for(lambda r: numbered(log_bodies(r), "work") == expected, timeout=20)
        app.stop()
        print(
            f"\nRESULT slow ({SLOW_COLLECTOR:g} s): {ROUNDS} requests answered, none waited for the "
            f"exporter; {len(expected)}/{len(expected)} delivered"
        )


class TestCollectorRefuses:
    def test_503_then_429_are_retried_and_the_backlog_delivered_once_it_accepts(
        self, start_app, receiver, tmp_path
    ):
        """503 on every export, then 429: no request waits on the retries, the batch stays queued
        (at most one warning: the exporter's own retries may outlast both phases); once the
        collector accepts, every record arrives."""
        receiver.start(fail_status=503)
        app = start_exporting_app(start_app, receiver, tmp_path)
        work(app, range(ROUNDS))
        receiver.start(fail_status=429)
        work(app, range(1000, 1050))
        receiver.start()
        wait_until(lambda: file_has_work(app, ROUNDS + 50), f"{ROUNDS + 50} work records in the file")
        expected = numbered(app.file_records("faulty"), "work")
        assert [*range(ROUNDS), *range(1000, 1050)] == expected
        assert receiver.wait_for(lambda r: numbered(log_bodies(r), "work") == expected, timeout=30), (
            len(numbered(log_bodies(receiver), "work")),
            len(expected),
        )
        app.stop()
        assert app.stderr.count("OTLP log export failed") <= 1
        print(
            f"\nRESULT refused 503/429: {ROUNDS + 50} requests answered, none waited for the exporter; "
            f"{len(expected)}/{len(expected)} delivered after it accepted"
        )
