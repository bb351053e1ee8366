"""Independent sinks, callers that never wait on the event loop, and
whole log lines or none on a full disk.

- A stdout nobody reads (a pipe whose 64 KiB buffer is full) and a console whose ``write``
  raises: the file (and OTLP) still get every record, and no ``logger.info()`` call takes
  more than 50 ms (measured on every call, in the service process itself).
- A stalled writer and a full queue: a call from a thread running an asyncio event loop
  drops (and counts) the record at once; a sync caller waits at most
  ``LUMEN_LOG_QUEUE_WAIT``, woken by the writer as soon as there is room.
- A real, small tmpfs filling up mid-write: every line in the file parses, each record is
  either whole in the file or counted as dropped (``disk_full``), and everything logged
  after space returns is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import random
import subprocess
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lumen_otel._logging.enrich import Enricher
from lumen_otel._logging.files import SharedRotatingFile
from lumen_otel._logging.pipeline import Pipeline
from lumen_otel._redaction import Redactor
from tests.conftest import VENV_BIN, clean_env

SLOWEST_CALL_MS = 50.0  # the requirement: a logger.info() call with stdout stalled never takes longer


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.sinks", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


class Drops:
    """``count_dropped`` for a pipeline under test: totals by reason, from any thread."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, count: int, reason: str) -> None:
        with self._lock:
            self.by_reason[reason] += count


def _pipeline(drops: Drops, **kwargs: Any) -> Pipeline:
    settings: dict[str, Any] = {
        "enricher": Enricher("sinks", Redactor()),
        "console": None,
        "console_json": False,
        "log_file": None,
        "otlp": None,
        "queue_size": 100,
        "count_dropped": drops,
    }
    settings.update(kwargs)
    return Pipeline(**settings)


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# ---------------------------------------------------------------- item 2: independent sinks

# A service whose stdout is a pipe nobody reads: fill the pipe first (non-blocking writes
# until EAGAIN), then log and time every call. Results go to a file (argv[1]); the process
# then waits for stdin to close, which the test does once it has checked the log file.
STALLED_STDOUT_SERVICE = textwrap.dedent("""
    import json, logging, os, sys, time
    import lumen_otel

    result_path, count = sys.argv[1], int(sys.argv[2])
    os.set_blocking(1, False)
    filled, full = 0, False
    for _ in range(4096):  # a pipe buffer is 64 KiB by default, 1 MiB at most
        try:
            filled += os.write(1, b"#" * 4096)
        except BlockingIOError:
            full = True
            break
    os.set_blocking(1, True)
    lumen_otel.configure_logging(service_name="stalled")
    log = logging.getLogger("app.stalled")
    slowest, calls = 0.0, 0
    for i in range(count):
        started = time.perf_counter()
        log.info("stalled %05d", i, extra={"pad": "p" * (50 + i % 400)})
        slowest = max(slowest, time.perf_counter() - started)
        calls += 1
        if slowest > 1.0:
            break  # a call that waits for the console (2 s before the fix): stop, do not hang the test
    with open(result_path + ".tmp", "w") as out:
        json.dump({"calls": calls, "slowest_ms": slowest * 1000, "filled": filled, "full": full}, out)
    os.replace(result_path + ".tmp", result_path)
    sys.stdin.read()
""")


@pytest.mark.integration
class TestIndependentSinks:
    def test_stdout_nobody_reads_neither_slows_callers_nor_costs_the_file_a_record(self, tmp_path):
        count = 2000
        result = tmp_path / "result.json"
        env = clean_env(
            LUMEN_ENV="prod",  # the JSON console goes to stdout
            LUMEN_LOG_DIR=str(tmp_path),
            LUMEN_LOG_QUEUE_SIZE="100",  # the smallest: a console holding up the writer fills it at once
            LUMEN_OTEL_STRICT="0",
        )
        with (tmp_path / "stderr.txt").open("wb") as stderr:
            proc = subprocess.Popen(
                [str(VENV_BIN / "python"), "-c", STALLED_STDOUT_SERVICE, str(result), str(count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
            )
        try:
            assert _wait_until(lambda: result.exists() or proc.poll() is not None, timeout=120), "no result"
            assert result.exists(), (tmp_path / "stderr.txt").read_text()
            measured = json.loads(result.read_text())
            assert measured["full"], measured  # stdout really was a full pipe while it logged

            def in_file() -> list[str]:
                path = tmp_path / "stalled.log"
                lines = path.read_text().splitlines() if path.exists() else []
                return [json.loads(line)["message"] for line in lines]

            # while stdout is still stalled: the file is written first, never behind the console
            _wait_until(lambda: len(in_file()) >= measured["calls"], timeout=20)
            file_messages = in_file()
        finally:
            stdout, _ = proc.communicate(b"", timeout=60)  # read the pipe at last: the service exits
        stderr_text = (tmp_path / "stderr.txt").read_text()
        console = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
        print(
            f"\nRESULT stalled stdout: {measured['calls']}/{count} calls, slowest "
            f"{measured['slowest_ms']:.1f} ms, file {len(file_messages)}/{count} records while stalled, "
            f"console {len(console)} lines once read (pipe held {measured['filled']} bytes)"
        )
        assert proc.returncode == 0, stderr_text[-3000:]
        assert measured["calls"] == count
        assert file_messages == [f"stalled {i:05d}" for i in range(count)]
        assert measured["slowest_ms"] < SLOWEST_CALL_MS
        assert "console_blocked" in stderr_text  # the dropped console lines were counted and said once
        assert 0 < len(console) < count

    def test_a_console_that_raises_costs_neither_the_file_nor_otlp_a_record(self, tmp_path, otlp_receiver):
        count = 500
        script = textwrap.dedent("""
            import logging, sys, lumen_otel

            class Broken:
                def write(self, text):
                    raise RuntimeError("console is broken")
                def flush(self):
                    pass
                def isatty(self):
                    return False
                def fileno(self):
                    return 1

            sys.stdout = Broken()
            handle = lumen_otel.bootstrap(service_name="broken")
            log = logging.getLogger("app.broken")
            for i in range(int(sys.argv[1])):
                log.info("broken %05d", i)
            handle.force_flush(10)
        """)
        env = clean_env(
            LUMEN_ENV="prod",
            LUMEN_LOG_DIR=str(tmp_path),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
            LUMEN_OTEL_STRICT="0",
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script, str(count)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        expected = [f"broken {i:05d}" for i in range(count)]
        lines = (tmp_path / "broken.log").read_text().splitlines()
        assert [json.loads(line)["message"] for line in lines] == expected
        assert sorted(log.body for log in otlp_receiver.logs if log.body.startswith("broken ")) == expected
        assert result.stderr.count("console log output failed (RuntimeError: console is broken)") == 1
        print(f"\nRESULT raising console: file {len(lines)}/{count}, OTLP {count}/{count}")

    def test_console_failures_are_counted_by_reason(self):
        class Raising:
            def write(self, text: str) -> int:
                raise RuntimeError("no console")

            def flush(self) -> None:
                pass

        class Blocking:
            def write(self, text: str) -> int:
                gate.wait(60)
                return len(text)

            def flush(self) -> None:
                pass

        for stream, reason in ((Raising(), "console_error"), (Blocking(), "console_blocked")):
            gate = threading.Event()
            drops = Drops()
            seen: list[str] = []
            pipeline = _pipeline(drops, console=stream, console_json=True)
            pipeline.add_listener(lambda data, seen=seen: seen.append(data["message"]))
            try:
                for i in range(1000):
                    pipeline.handler.handle(_record("line %d", i))
                assert _wait_until(lambda seen=seen: len(seen) == 1000)
                assert _wait_until(lambda drops=drops, reason=reason: drops.by_reason[reason] > 0)
                # a burst that outruns the console fills its queue as well: blocked, never anything else
                assert set(drops.by_reason) <= {reason, "console_blocked"}, drops.by_reason
                assert seen == [f"line {i}" for i in range(1000)]  # the other sinks: every record
            finally:
                gate.set()
                pipeline.close()
            if reason == "console_error":  # every console line lost is counted, once
                assert sum(drops.by_reason.values()) == 1000, drops.by_reason

    def test_a_failing_otlp_bridge_costs_the_file_nothing(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LUMEN_OTEL_STRICT", "0")

        class FailingBridge:
            def emit(self, record: logging.LogRecord) -> None:
                raise RuntimeError("collector bridge broke")

        drops = Drops()
        log_file = SharedRotatingFile(tmp_path / "otlp.log", 10 * 1024 * 1024, 1)
        pipeline = _pipeline(drops, log_file=log_file, otlp=FailingBridge())
        try:
            for i in range(300):
                pipeline.handler.handle(_record("kept %d", i))
            assert pipeline.flush(timeout=10)
        finally:
            pipeline.close()
        lines = (tmp_path / "otlp.log").read_text().splitlines()
        assert [json.loads(line)["message"] for line in lines] == [f"kept {i}" for i in range(300)]
        assert drops.by_reason == {"otlp_error": 300}


# ---------------------------------------------------------------- item 3: queue full


@contextlib.contextmanager
def stalled_writer(drops: Drops, **kwargs: Any) -> Iterator[tuple[Pipeline, threading.Event, list[str]]]:
    """A pipeline whose writer is stuck in a sink until ``gate`` is set, its queue full."""
    gate, entered = threading.Event(), threading.Event()
    seen: list[str] = []

    def stuck_sink(data: dict[str, Any]) -> None:
        entered.set()
        gate.wait(120)
        seen.append(str(data["message"]))

    pipeline = _pipeline(drops, **kwargs)
    pipeline.add_listener(stuck_sink)
    try:
        pipeline.handler.handle(_record("first"))
        assert entered.wait(10)  # the writer holds "first" and waits in the sink
        for i in range(pipeline.queue_size):
            pipeline.handler.handle(_record("queued %d", i))
        assert drops.by_reason == {}  # room for every one of them: nobody waited yet
        yield pipeline, gate, seen
    finally:
        gate.set()
        pipeline.close()


def _in_thread(target: Callable[[], None], timeout: float) -> bool:
    """Run ``target`` on a new thread; True when it returned within ``timeout``."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


class TestCallersNeverWaitOnTheEventLoop:
    def test_calls_from_a_running_event_loop_drop_at_once_and_count(self):
        drops = Drops()
        durations: list[float] = []

        async def handler_on_the_loop() -> None:
            for i in range(20):
                started = time.perf_counter()
                logging.getLogger("app.async").info("from the loop %d", i)
                durations.append(time.perf_counter() - started)
                await asyncio.sleep(0)

        # the default wait (2 s a call): 20 calls that waited would take 40 s
        logger = logging.getLogger("app.async")
        with stalled_writer(drops) as (pipeline, _, _):
            logger.addHandler(pipeline.handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
            try:
                assert _in_thread(lambda: asyncio.run(handler_on_the_loop()), timeout=10)
            finally:
                logger.removeHandler(pipeline.handler)
                logger.setLevel(logging.NOTSET)
                logger.propagate = True
            assert drops.by_reason == {"local_queue_full": 20}
        print(
            f"\nRESULT event loop, queue full: 20/20 dropped, counted; slowest {max(durations) * 1000:.2f} ms"
        )

    def test_a_sync_caller_waits_at_most_the_configured_time_then_drops_and_counts(self):
        drops = Drops()
        waited: list[float] = []

        def sync_caller() -> None:
            for i in range(3):
                started = time.monotonic()
                pipeline.handler.handle(_record("sync %d", i))
                waited.append(time.monotonic() - started)

        with stalled_writer(drops, queue_wait=0.3) as (pipeline, _, _):
            assert _in_thread(sync_caller, timeout=30)
            assert drops.by_reason == {"local_queue_full": 3}
        print(f"\nRESULT sync caller, queue_wait 0.3: waited {[round(w, 3) for w in waited]} s, 3 dropped")

    def test_queue_wait_zero_never_waits(self):
        drops = Drops()
        with stalled_writer(drops, queue_wait=0) as (pipeline, _, _):
            # were it to wait at all, it would be for the default (2 s): 20 calls, 40 s
            assert _in_thread(lambda: [pipeline.handler.handle(_record("x")) for _ in range(20)], timeout=10)
            assert drops.by_reason == {"local_queue_full": 20}

    def test_a_waiting_sync_caller_is_woken_as_soon_as_there_is_room(self):
        drops = Drops()
        # a wait that ran to its end (10 minutes) would fail the join: only the writer's signal
        # can let this caller through in time
        with stalled_writer(drops, queue_wait=600) as (pipeline, gate, seen):
            thread = threading.Thread(target=lambda: pipeline.handler.handle(_record("patient")), daemon=True)
            thread.start()
            assert _wait_until(lambda: pipeline._waiting == 1, timeout=10)  # it is waiting for room
            gate.set()  # the writer moves on: room again
            thread.join(30)
            assert not thread.is_alive()
            assert pipeline.flush(timeout=10)
            assert drops.by_reason == {}
            assert seen[-1] == "patient"

    def test_queue_wait_is_a_setting_and_a_bad_value_names_the_variable(self, fresh_logging, monkeypatch):
        import lumen_otel
        from lumen_otel import ConfigError
        from lumen_otel._logging.pipeline import current_pipeline

        monkeypatch.setenv("LUMEN_LOG_QUEUE_WAIT", "0.25")
        lumen_otel.configure_logging(service_name="waits", console=False)
        pipeline = current_pipeline()
        assert pipeline is not None
        assert pipeline.queue_wait == 0.25
        from lumen_otel.testing import reset

        reset()
        monkeypatch.setenv("LUMEN_LOG_QUEUE_WAIT", "-1")
        with pytest.raises(ConfigError, match="LUMEN_LOG_QUEUE_WAIT"):
            lumen_otel.configure_logging(service_name="waits", console=False)


# ---------------------------------------------------------------- item 4: a full disk


def _cannot_mount(why: str) -> None:
    """Skipped where a filesystem cannot be mounted; never under CI, which runs as root."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 128 KiB filesystem (a tmpfs) mounted for the test."""
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


def _fill(directory: Path, leave: int) -> Path:
    """Fill ``directory``'s filesystem to the last block, then give back ``leave`` bytes."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for _ in range(4096):  # bounded: 16 MiB, far more than the filesystem
            try:
                out.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        else:
            raise AssertionError("the filesystem never filled up")
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


@pytest.mark.integration
class TestWholeLinesOrNone:
    def test_a_disk_filling_up_mid_write_never_tears_a_line_and_counts_what_did_not_fit(self, small_tmpfs):
        rng = random.Random(16)
        drops = Drops()
        filler = _fill(small_tmpfs, leave=24 * 1024)
        log_file = SharedRotatingFile(small_tmpfs / "audit.log", 10 * 1024 * 1024, 1)
        pipeline = _pipeline(drops, log_file=log_file, queue_size=10_000)
        logged_before = 0
        try:
            # ~120 KiB of records of 100 B to 6 KB, in batches of 1-8: five times the free space
            while logged_before < 60:
                for _ in range(rng.randint(1, 8)):
                    pad = "d" * rng.randint(100, 6000)
                    pipeline.handler.handle(_record("before %03d", logged_before, pad=pad))
                    logged_before += 1
                assert pipeline.flush(timeout=10)
            filler.unlink()  # space returns
            for i in range(200):
                pipeline.handler.handle(_record("after %03d", i, pad="a" * rng.randint(10, 400)))
                if i % 7 == 0:
                    assert pipeline.flush(timeout=10)
            assert pipeline.flush(timeout=10)
        finally:
            pipeline.close()
        lines = (small_tmpfs / "audit.log").read_bytes().split(b"\n")
        assert lines[-1] == b""  # the file ends with a whole line
        messages = [json.loads(line)["message"] for line in lines[:-1]]  # a torn or glued line fails here
        before = [m for m in messages if m.startswith("before ")]
        after = [m for m in messages if m.startswith("after ")]
        assert len(set(before)) == len(before)
        assert drops.by_reason["disk_full"] > 0  # the disk really did fill up
        assert set(drops.by_reason) == {"disk_full"}
        assert len(before) + drops.by_reason["disk_full"] == logged_before  # whole in the file, or counted
        assert after == [f"after {i:03d}" for i in range(200)]  # all there once space returned
        print(
            f"\nRESULT disk full: {len(before)}/{logged_before} records kept whole, "
            f"{drops.by_reason['disk_full']} counted disk_full, {len(after)}/200 after space returned, "
            f"{len(messages)} lines all parse"
        )
