"""Delivery gaps an adversarial review found, each closed: no audit line is lost where a retry,
a split or a warning could have kept it.

- OTLP: the real OTLP/HTTP log exporter and ``ResilientLogProcessor`` against a loopback
  ``OTLPReceiver`` answering 413, 400, 500 or 401/403/404/407. A batch refused for what it holds
  is split in halves until the refused record is alone, so only that record is dropped
  (counted, reported by its size, never its content); a 500 or a misconfigured endpoint keeps
  the records (bounded by the queue) until the collector takes them.
- The log file on a real, small tmpfs: a disk that fills again after it was announced
  "writable again" is announced again, and the lost lines are counted.
- Rotation with a FIFO or a directory planted at a backup name keeps to the retention instead of
  leaving a new file behind at every rotation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from lumen_otel._logging.files import SharedRotatingFile
from lumen_otel._otlp.logs import WireLogExporter
from lumen_otel._otlp.processor import ResilientLogProcessor
from lumen_otel._state import STATE
from lumen_otel.testing import OTLPReceiver
from tests.reliability.test_sinks import Drops, _cannot_mount, _fill, _pipeline, _record

RESOURCE = Resource.create({"service.name": "delivery-attacks"})


@pytest.fixture(autouse=True)
def fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees its own rate-limited warnings, whatever ran before it."""
    monkeypatch.setattr(STATE, "reported", {})


def _line(body: str, **attributes: str) -> ReadableLogRecord:
    return ReadableLogRecord(LogRecord(timestamp=1, body=body, attributes=attributes), resource=RESOURCE)


class _Delivery:
    """A processor exporting with the real OTLP/HTTP exporter to ``receiver``; drops by reason."""

    def __init__(self, receiver: OTLPReceiver, *, max_queue_size: int = 1000, batch: int = 64) -> None:
        self.drops = Drops()
        self.processor = ResilientLogProcessor(
            WireLogExporter(endpoint=f"{receiver.endpoint}/v1/logs"),
            max_queue_size=max_queue_size,
            max_batch_size=batch,
            schedule_delay=30,
            max_backoff=0.2,
            on_drop=self.drops,
        )

    def __enter__(self) -> _Delivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.processor.shutdown(2000)


def _received(receiver: OTLPReceiver, prefix: str) -> list[str]:
    return [str(log.body) for log in receiver.logs if str(log.body).startswith(prefix)]


class TestRefusedForWhatABatchHolds:
    def test_one_record_too_large_for_the_collector_costs_only_itself(
        self, otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 413 to any request over 50 kB: the 60 audit lines around an 80 kB record arrive."""
        otlp_receiver.answer(413, path="/v1/logs", over=50_000, times=None)
        with _Delivery(otlp_receiver) as delivery:
            for i in range(30):
                delivery.processor.enqueue(_line(f"audit before {i}"))
            delivery.processor.enqueue(_line("big", blob="secret-content " * 5500))
            for i in range(30):
                delivery.processor.enqueue(_line(f"audit after {i}"))
            assert delivery.processor.force_flush(15_000)
        expected = [f"audit before {i}" for i in range(30)] + [f"audit after {i}" for i in range(30)]
        assert expected == _received(otlp_receiver, "audit")
        assert {"too_large": 1} == dict(delivery.drops.by_reason)
        stderr = caplog.text
        assert "OTLP log record of" in stderr and "dropped (too_large)" in stderr, stderr
        assert "secret-content" not in stderr  # its size is reported, never its content

    def test_a_400_to_one_record_drops_that_record_alone_counted_rejected(
        self, otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        otlp_receiver.answer(400, path="/v1/logs", match="refuse-me", times=None)
        with _Delivery(otlp_receiver) as delivery:
            for i in range(40):
                delivery.processor.enqueue(_line("refuse-me" if i == 17 else f"audit {i}"))
            assert delivery.processor.force_flush(15_000)
        assert [f"audit {i}" for i in range(40) if i != 17] == _received(otlp_receiver, "audit")
        assert {"rejected": 1} == dict(delivery.drops.by_reason)
        assert "dropped (rejected)" in caplog.text


class TestACollectorThatFailsForAWhile:
    @pytest.mark.parametrize("status", [500, 401, 403, 404, 407])
    def test_records_are_kept_and_delivered_once_the_collector_takes_them(
        self, otlp_receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture, status: int
    ) -> None:
        otlp_receiver.fail_status = status
        with _Delivery(otlp_receiver) as delivery:
            for i in range(100):
                delivery.processor.enqueue(_line(f"audit {i}"))
            assert not delivery.processor.force_flush(3000)
            assert ("/v1/logs", status) in otlp_receiver.answered
            otlp_receiver.fail_status = None
            assert delivery.processor.force_flush(15_000)
        assert [f"audit {i}" for i in range(100)] == _received(otlp_receiver, "audit")
        assert {} == dict(delivery.drops.by_reason)
        stderr = caplog.text
        assert f"HTTP {status}" in stderr, stderr
        if status != 500:  # a misconfiguration names the endpoint an operator has to fix
            assert f"{otlp_receiver.endpoint}/v1/logs" in stderr, stderr

    def test_a_misconfigured_endpoint_still_keeps_to_the_queue_bound_and_counts_the_rest(
        self, otlp_receiver: OTLPReceiver
    ) -> None:
        otlp_receiver.fail_status = 404
        with _Delivery(otlp_receiver, max_queue_size=50, batch=10) as delivery:
            for i in range(10):
                delivery.processor.enqueue(_line(f"audit {i}"))
            assert not delivery.processor.force_flush(3000)
            for i in range(10, 80):
                delivery.processor.enqueue(_line(f"audit {i}"))
            otlp_receiver.fail_status = None
            assert delivery.processor.force_flush(15_000)
        assert [f"audit {i}" for i in range(50)] == _received(otlp_receiver, "audit")
        assert {"otlp_queue_full": 30} == dict(delivery.drops.by_reason)


# ---------------------------------------------------------------- the log file


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 128 KiB filesystem (a tmpfs) mounted for the test, as in test_sinks."""
    import subprocess

    if os.geteuid() != 0:
        _cannot_mount("mounting a tmpfs needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "lumen-small", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        _cannot_mount(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.integration
class TestADiskThatFillsAgain:
    def test_a_second_full_disk_after_writable_again_is_announced_and_counted(
        self, small_tmpfs: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        drops = Drops()
        log_file = SharedRotatingFile(small_tmpfs / "audit.log", 10 * 1024 * 1024, 1)
        pipeline = _pipeline(drops, log_file=log_file, queue_size=1000)
        try:
            filler = _fill(small_tmpfs, leave=0)
            pipeline.handler.handle(_record("first outage %d", 1, pad="f" * 4000))
            assert pipeline.flush(timeout=10)
            filler.unlink()
            pipeline.handler.handle(_record("space is back %d", 1))
            assert pipeline.flush(timeout=10)
            _fill(small_tmpfs, leave=0)
            for i in range(5):
                pipeline.handler.handle(_record("second outage %d", i, pad="s" * 4000))
            assert pipeline.flush(timeout=10)
        finally:
            pipeline.close()
        stderr = caplog.text
        said = [line for line in stderr.splitlines() if "log file" in line and str(log_file.path) in line]
        assert 3 == len(said), stderr
        assert "cannot write" in said[0] and "writable again" in said[1] and "cannot write" in said[2]
        assert {"disk_full": 6} == dict(drops.by_reason)
        assert b"space is back 1" in log_file.path.read_bytes()


class TestAPlantedBackupName:
    @pytest.mark.parametrize("planted", ["fifo", "directory"])
    def test_rotation_keeps_to_the_retention_and_says_so(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, planted: str
    ) -> None:
        blocked = tmp_path / "svc.log.1"
        if planted == "fifo":
            os.mkfifo(blocked)
        else:
            blocked.mkdir()
        log_file = SharedRotatingFile(tmp_path / "svc.log", 1024, 2)
        try:
            for i in range(400):
                assert 0 == log_file.write(f"audit line {i:03d} {'x' * 100}\n".encode())
        finally:
            log_file.close()
        logs = sorted(
            p.name
            for p in tmp_path.iterdir()
            if p.is_file() and not p.name.endswith(".lock") and "planted" not in p.name
        )
        assert ["svc.log", "svc.log.1", "svc.log.2"] == logs
        assert b"audit line 399" in (tmp_path / "svc.log").read_bytes()
        assert "svc.log.1" in caplog.text
