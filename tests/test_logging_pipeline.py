"""The logging pipeline: fields, sinks, once-per-record, idempotency, never raising."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import lumen_otel
from lumen_otel._logging.formatters import CORE_FIELDS, ColorFormatter, use_color
from lumen_otel._logging.pipeline import Pipeline
from lumen_otel.testing import capture_logs
from tests.conftest import VENV_BIN, clean_env

FIELDS = list(CORE_FIELDS)


@pytest.fixture
def configured(fresh_logging, tmp_path):
    lumen_otel.configure_logging(service_name="unit", log_dir=str(tmp_path), console=False)
    return tmp_path


def file_records(log_dir) -> list[dict[str, object]]:
    return [json.loads(line) for line in (log_dir / "unit.log").read_text().splitlines()]


class TestRecordShape:
    def test_fields_in_design_order_and_missing_ids_are_null(self, configured):
        with capture_logs() as records:
            logging.getLogger("app").info("outside any request")
        assert FIELDS == list(records[0])
        assert (records[0]["correlation_id"], records[0]["trace_id"], records[0]["span_id"]) == (
            None,
            None,
            None,
        )
        assert records[0]["level"] == "INFO" and records[0]["service_name"] == "unit"

    def test_extra_values_of_any_type_reach_the_file(self, configured):
        class Thing:
            def __str__(self) -> str:
                return "thing-7"

        cyclic: dict[str, object] = {"label": "loop"}
        cyclic["self"] = cyclic
        logging.getLogger("app").info(
            "with extras",
            extra={
                "payload": {"a": [1, 2, {"b": None}]},
                "obj": Thing(),
                "items": (1, "two"),
                "blob": b"\xff\x00",
                "cyclic": cyclic,
                "big": 2**70,
            },
        )
        lumen_otel._setup.bootstrap.current_handle().force_flush()
        record = file_records(configured)[-1]
        assert record["payload"] == {"a": [1, 2, {"b": None}]}
        assert (record["obj"], record["items"], record["blob"]) == ("thing-7", [1, "two"], "\\xff\x00")
        assert record["cyclic"] == {"label": "loop", "self": "[cycle]"}
        assert record["big"] == 2**70

    def test_extras_keep_the_order_they_were_given_in(self, configured):
        with capture_logs() as records:
            logging.getLogger("app").info("ordered", extra={"zeta": 1, "alpha": 2, "mid": "x", "beta": None})
        assert list(records[0])[len(FIELDS) :] == ["zeta", "alpha", "mid", "beta"]

    def test_attributes_a_record_factory_or_filter_adds_are_extras_too(self, configured):
        """Extras are read from the end of a plain record; attributes added another way still count."""

        class EarlyRecord(logging.LogRecord):
            def __init__(self, *args: object, **kwargs: object) -> None:
                self.tenant = "early"  # set before the standard attributes
                super().__init__(*args, **kwargs)  # type: ignore[arg-type]

        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.request_path = "/from-factory"
            return record

        def add_region(record: logging.LogRecord) -> bool:
            record.region = "eu-1"
            return True

        logger = logging.getLogger("app.factory")
        logger.addFilter(add_region)
        try:
            logging.setLogRecordFactory(factory)
            with capture_logs() as records:
                logger.info("via factory", extra={"given": 1})
            logging.setLogRecordFactory(EarlyRecord)
            with capture_logs() as early:
                logger.info("early attribute")
        finally:
            logging.setLogRecordFactory(previous)
            logger.removeFilter(add_region)
        assert {k: records[0][k] for k in ("request_path", "given", "region")} == {
            "request_path": "/from-factory",
            "given": 1,
            "region": "eu-1",
        }
        assert (early[0]["tenant"], early[0]["region"]) == ("early", "eu-1")

    def test_an_extra_named_like_a_core_field_does_not_overwrite_it(self, configured):
        with capture_logs() as records:
            logging.getLogger("app").info("hi", extra={"level_hint": 1, "hostname_alias": "x"})
        assert records[0]["level"] == "INFO"

    def test_exception_is_structured(self, configured):
        with capture_logs() as records:
            try:
                raise ValueError("bad input 42")
            except ValueError:
                logging.getLogger("app").exception("failed")
        exception = records[0]["exception"]
        assert (exception["type"], exception["message"]) == ("ValueError", "bad input 42")
        assert "Traceback (most recent call last)" in exception["stacktrace"]
        assert list(records[0])[-1] == "exception"

    def test_bad_format_arguments_never_raise_and_keep_the_message(self, configured):
        with capture_logs() as records:
            logging.getLogger("app").info("count=%d of %s", "not-a-number")  # noqa: PLE1206 - on purpose
        assert records[0]["message"].startswith("count=%d of %s (unformattable arguments")


def _summed(calls: list[dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for call in calls:
        for level, count in call.items():
            totals[level] = totals.get(level, 0) + count
    return totals


class TestRecordCounts:
    """``lumen.log.records`` is fed in sums, not once per written batch, and never lags for long."""

    @staticmethod
    def _pipeline(calls: list[dict[str, int]]) -> Pipeline:
        from lumen_otel._logging.enrich import Enricher
        from lumen_otel._redaction import Redactor

        return Pipeline(
            enricher=Enricher("counts", Redactor()),
            console=None,
            console_json=False,
            log_file=None,
            otlp=None,
            queue_size=1000,
            count_records=lambda levels: calls.append(dict(levels)),
        )

    @staticmethod
    def _log(pipeline: Pipeline, level: int, n: int) -> None:
        for i in range(n):
            pipeline.handler.handle(logging.LogRecord("app", level, __file__, 1, "line %d", (i,), None))

    def test_records_are_counted_without_a_flush_once_logging_pauses(self):
        calls: list[dict[str, int]] = []
        pipeline = self._pipeline(calls)
        try:
            for _ in range(20):  # spaced out: the writer takes each record as a batch of its own
                self._log(pipeline, logging.INFO, 1)
                time.sleep(0.005)
            self._log(pipeline, logging.WARNING, 3)
            deadline = time.monotonic() + 5
            while sum(sum(c.values()) for c in calls) < 23 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _summed(calls) == {"INFO": 20, "WARNING": 3}
            assert len(calls) <= 3  # summed, not one metric update per batch
        finally:
            pipeline.close()

    def test_a_flush_brings_the_counts_up_to_date(self):
        calls: list[dict[str, int]] = []
        pipeline = self._pipeline(calls)
        try:
            self._log(pipeline, logging.ERROR, 5)
            assert pipeline.flush(timeout=5)
            assert _summed(calls) == {"ERROR": 5}
        finally:
            pipeline.close()


class TestOncePerRecord:
    def test_configure_twice_never_duplicates_a_line(self, configured):
        lumen_otel.configure_logging(service_name="unit", log_dir=str(configured), console=False)
        with capture_logs() as records:
            logging.getLogger("app").info("only once")
        assert [r["message"] for r in records] == ["only once"]
        assert (
            sum(isinstance(h, lumen_otel._logging.pipeline.RootHandler) for h in logging.getLogger().handlers)
            == 1
        )

    def test_uvicorn_dictconfig_after_configure_still_routes_access_lines_once(self, configured):
        from uvicorn.config import LOGGING_CONFIG

        logging.config.dictConfig(LOGGING_CONFIG)
        with capture_logs() as records:
            logging.getLogger("uvicorn.access").info(
                '%s - "%s %s HTTP/%s" %d', "client", "GET", "/", "1.1", 200
            )
            logging.getLogger("uvicorn.error").info("Application startup complete.")
        assert [r["logger"] for r in records] == ["uvicorn.access", "uvicorn.error"]
        assert records[0]["message"] == 'client - "GET / HTTP/1.1" 200'

    def test_django_style_logging_is_routed_once(self, configured):
        """Django's ``django.server`` logger: own console handler, ``propagate: False``."""
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"django.server": {"format": "[{server_time}] {message}", "style": "{"}},
                "handlers": {
                    "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"}
                },
                "loggers": {
                    "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False}
                },
            }
        )
        with capture_logs() as records:
            logging.getLogger("django.server").info('"GET / HTTP/1.1" 200 2')
        assert [r["logger"] for r in records] == ["django.server"]

    def test_django_server_socket_and_time_stay_out_of_the_output(self, configured):
        """``runserver`` passes its connection's socket and a second timestamp as ``extra`` for its
        own formatter: lumen-otel's records keep the status code, not those; Django's handler
        still finds them on the record."""
        seen: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record)

        logger = logging.getLogger("django.server")
        keep = Keep()
        logger.addHandler(keep)
        try:
            with socket.socket() as connection, capture_logs() as records:
                logger.info(
                    '"GET / HTTP/1.1" 200 2',
                    extra={"request": connection, "server_time": "27/Nov/2026 10:00:00", "status_code": 200},
                )
        finally:
            logger.removeHandler(keep)
        assert records[0]["status_code"] == 200
        assert "request" not in records[0] and "server_time" not in records[0]
        assert isinstance(seen[0].request, socket.socket) and seen[0].server_time == "27/Nov/2026 10:00:00"

    def test_enrichment_runs_on_the_callers_thread_and_writing_on_the_writer(self, configured):
        seen: list[str] = []
        pipeline = lumen_otel._logging.pipeline.current_pipeline()
        pipeline.add_listener(lambda record: seen.append(threading.current_thread().name))

        async def handler() -> None:
            logging.getLogger("app").info("from the event loop")

        asyncio.run(handler())
        pipeline.flush()
        assert seen == ["lumen-log-writer"]


class TestConsole:
    def test_no_color_wins_over_force_color(self, monkeypatch):
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert use_color(sys.stdout) is False

    def test_force_color_colours_a_pipe(self, monkeypatch):
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert use_color(io.StringIO()) is True

    def test_a_pipe_is_plain_by_default(self, monkeypatch):
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        assert use_color(io.StringIO()) is False

    def test_dev_line_has_time_level_service_cid_logger_message_extras(self):
        record = logging.LogRecord(
            "app.orders", logging.WARNING, __file__, 1, "slow\x1b[2J query", None, None
        )
        record.service_name, record.correlation_id = "orders", "0f8fad5b-d9cb-469f-a165-70867728950e"
        record.lumen_extra = {"duration_ms": 812, "table": "exams"}
        line = ColorFormatter(color=False).format(record)
        assert line.endswith(
            " WARNING  orders [0f8fad5b] app.orders: slow\\x1b[2J query duration_ms=812 table=exams"
        )


class TestFailuresNeverReachTheApplication:
    def test_unwritable_log_dir_reports_once_and_console_keeps_working(self, tmp_path):
        blocked = tmp_path / "blocked"
        blocked.write_text("a file where the directory should be")
        script = textwrap.dedent(f"""
            import logging, lumen_otel
            lumen_otel.configure_logging(service_name="svc", log_dir={str(blocked / "logs")!r})
            for i in range(3):
                logging.getLogger("app").warning("still serving %d", i)
            print("APP OK")
        """)
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script],
            env=clean_env(LUMEN_OTEL_STRICT="0"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0
        assert "APP OK" in result.stdout
        assert result.stderr.count("cannot write the log file") == 1
        assert result.stderr.count("still serving") == 3


@pytest.mark.integration
class TestDeliveryAtExit:
    def test_ten_thousand_records_all_reach_otlp_and_the_file(self, tmp_path, otlp_receiver):
        script = textwrap.dedent("""
            import logging, lumen_otel
            lumen_otel.bootstrap(service_name="burst")
            log = logging.getLogger("app.burst")
            for i in range(10_000):
                log.info("record %d", i)
        """)
        env = clean_env(
            LUMEN_LOG_DIR=str(tmp_path),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
            LUMEN_CONSOLE="false",
            LUMEN_LOG_FILE_MAX_BYTES=str(64 * 1024 * 1024),
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        bodies = {log.body for log in otlp_receiver.logs if log.body.startswith("record ")}
        assert len(bodies) == 10_000
        lines = (tmp_path / "burst.log").read_text().splitlines()
        assert len([line for line in lines if '"record ' in line]) == 10_000

    def test_an_exporter_that_logs_neither_recurses_nor_hangs(self, tmp_path, otlp_receiver):
        script = textwrap.dedent("""
            import logging, lumen_otel
            from lumen_otel._otlp.logs import WireLogExporter  # the log exporter lumen-otel builds
            original = WireLogExporter.export_outcome  # what the log processor calls
            def chatty_export(self, batch):
                logging.getLogger("vendor.exporter").warning("exporting %d records", len(batch))
                return original(self, batch)
            WireLogExporter.export_outcome = chatty_export
            handle = lumen_otel.bootstrap(service_name="chatty")
            logging.getLogger("app").info("payload record", extra={"payload": {"k": 1}, "obj": object()})
            handle.force_flush(5)
            logging.getLogger("app").info("second record")
        """)
        env = clean_env(
            LUMEN_LOG_DIR=str(tmp_path),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
            LUMEN_CONSOLE="false",
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert sorted(log.body for log in otlp_receiver.logs) == ["payload record", "second record"]
        record = next(log for log in otlp_receiver.logs if log.body == "payload record")
        assert record.attributes["payload"] == '{"k":1}'
        assert record.attributes["obj"].startswith("<object object at")
        file_lines = (tmp_path / "chatty.log").read_text()
        assert "exporting 1 records" in file_lines  # kept locally, never exported again

    def test_logging_shutdown_before_exit_neither_deadlocks_nor_loses_records(self, tmp_path, otlp_receiver):
        """Frameworks call logging.shutdown() themselves; the bridge must flush, not hang."""
        script = textwrap.dedent("""
            import logging, lumen_otel
            lumen_otel.bootstrap(service_name="bye")
            for i in range(500):
                logging.getLogger("app").info("bye %d", i)
            logging.shutdown()
            logging.getLogger("app").info("after shutdown")
        """)
        env = clean_env(
            LUMEN_LOG_DIR=str(tmp_path),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
            LUMEN_CONSOLE="false",
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert len({log.body for log in otlp_receiver.logs if log.body.startswith("bye ")}) == 500
        assert len((tmp_path / "bye.log").read_text().splitlines()) >= 500

    def test_two_processes_share_one_rotating_file_without_losing_lines(self, tmp_path):
        script = textwrap.dedent("""
            import logging, os, sys, lumen_otel
            lumen_otel.configure_logging(service_name="shared", console=False)
            log = logging.getLogger("worker")
            for i in range(4000):
                log.info("w%s-%05d %s", sys.argv[1], i, "x" * 80)
        """)
        env = clean_env(
            LUMEN_LOG_DIR=str(tmp_path), LUMEN_LOG_FILE_MAX_BYTES=str(64 * 1024), LUMEN_LOG_FILE_BACKUPS="200"
        )
        procs = [subprocess.Popen([str(VENV_BIN / "python"), "-c", script, str(n)], env=env) for n in (1, 2)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        files = sorted(tmp_path.glob("shared.log*"))
        assert len([f for f in files if not f.name.endswith(".lock")]) > 10  # it really rotated
        messages = []
        for path in files:
            if path.name.endswith(".lock"):
                continue
            for line in path.read_text().splitlines():
                messages.append(json.loads(line)["message"].split()[0])  # a split line would not parse
        assert sorted(messages) == sorted(f"w{n}-{i:05d}" for n in (1, 2) for i in range(4000))
        assert all(os.path.getsize(f) < 64 * 1024 + 512 * 1024 for f in files)


def test_core_fields_are_the_designs_order():
    """Design §5's key order, spelled out once here: every other check compares against CORE_FIELDS."""
    expected = ("timestamp", "level", "service_name", "hostname", "logger", "message",
                "correlation_id", "trace_id", "span_id")  # fmt: skip
    assert expected == CORE_FIELDS
