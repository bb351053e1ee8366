"""The standard OpenTelemetry variables do what the spec says, through both doors.

``OTEL_SDK_DISABLED``, ``OTEL_{TRACES,LOGS,METRICS}_EXPORTER``, ``OTEL_BLRP_*``, ``OTEL_BSP_*`` and
``OTEL_METRIC_EXPORT_*``: each is parsed and checked by the settings table, handed to the
processors explicitly, shown by ``lumen-otel doctor`` with its source, and exercised here by a
real process exporting to a loopback :class:`~lumen_otel.testing.OTLPReceiver`.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lumen_otel._config.settings import load_settings
from lumen_otel.exceptions import ConfigError
from lumen_otel.testing import OTLPReceiver
from tests.conftest import REPO, VENV_BIN, clean_env

pytestmark = pytest.mark.integration

SSN = "123-45-6789"


class BatchReceiver(OTLPReceiver):
    """An OTLP receiver that also records how many log records and spans each request carried."""

    def __init__(self) -> None:
        super().__init__()
        self.log_batches: list[int] = []
        self.span_batches: list[int] = []

    def _accept(self, path: str, payload: bytes) -> None:
        with self._lock:
            logs, spans = len(self.logs), len(self.spans)
            super()._accept(path, payload)
            if path.endswith("/v1/logs"):
                self.log_batches.append(len(self.logs) - logs)
            elif path.endswith("/v1/traces"):
                self.span_batches.append(len(self.spans) - spans)


@pytest.fixture
def receiver() -> Any:
    with BatchReceiver() as batch_receiver:
        yield batch_receiver


#: logs ``RECORDS`` records (``PAUSE_AFTER`` of them, then a pause of ``PAUSE`` seconds, then the
#: rest) inside ``SPANS`` spans, then says which providers are installed
APP = textwrap.dedent("""
    import json, logging, os, sys, time
    from opentelemetry import metrics, trace
    from lumen_otel._compat import get_logger_provider
    if os.environ.get("DOOR") == "code":
        import lumen_otel
        lumen_otel.bootstrap(service_name="std-vars")
    from lumen_otel._setup.bootstrap import current_handle
    handle = current_handle()
    log = logging.getLogger("app")
    records, spans = int(os.environ.get("RECORDS", "1")), int(os.environ.get("SPANS", "1"))
    pause_after, pause = int(os.environ.get("PAUSE_AFTER", "-1")), float(os.environ.get("PAUSE", "0"))
    tracer = trace.get_tracer("app")
    for s in range(spans):
        with tracer.start_as_current_span(f"work {s}", attributes={"note": "patient SSN 123-45-6789"}):
            if s == 0:
                for i in range(records):
                    if i == pause_after:
                        time.sleep(pause)
                    log.warning("record %d for SSN 123-45-6789", i)
    def sdk(provider):
        return type(provider).__module__.startswith("opentelemetry.sdk")
    print("PROVIDERS " + json.dumps({
        "tracer": sdk(trace.get_tracer_provider()),
        "meter": sdk(metrics.get_meter_provider()),
        "logger": sdk(get_logger_provider()),
        "handle": [p is not None for p in (handle.tracer_provider, handle.meter_provider)]
        + [handle.logger_provider is not None],
    }))
    sys.stdout.flush()
    print("DONE")
""")


def run_app(
    tmp_path: Path, door: str, receiver: OTLPReceiver | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The app as a real process: ``door="code"`` calls ``lumen_otel.bootstrap()``,
    ``door="launcher"`` runs under ``opentelemetry-instrument``. Exits normally (atexit flushes)."""
    python = [str(VENV_BIN / "python"), "-c", APP]
    argv = python if door == "code" else [str(VENV_BIN / "opentelemetry-instrument"), *python]
    settings = {
        "OTEL_SERVICE_NAME": "std-vars",
        "DOOR": door,
        "LUMEN_CONSOLE": "false",
        "LUMEN_LOG_DIR": str(tmp_path / "logs"),
        "LUMEN_SHUTDOWN_TIMEOUT": "10",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    if receiver is not None:
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    return subprocess.run(
        argv,
        env=clean_env(**{**settings, **env}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def providers(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROVIDERS "))
    return dict(json.loads(line.removeprefix("PROVIDERS ")))


def exported(receiver: OTLPReceiver) -> dict[str, bool]:
    return {"logs": bool(receiver.logs), "traces": bool(receiver.spans), "metrics": bool(receiver.metrics)}


def file_messages(tmp_path: Path) -> list[str]:
    path = tmp_path / "logs" / "std-vars.log"
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, "DONE" in result.stdout) == (0, True), result.stdout + result.stderr


DOORS = ["code", "launcher"]


class TestSignalExporterNone:
    @pytest.mark.parametrize("door", DOORS)
    @pytest.mark.parametrize("signal", ["traces", "logs", "metrics"])
    def test_none_exports_nothing_for_that_signal_and_the_others_still_export(
        self, tmp_path, receiver, door, signal
    ):
        result = run_app(tmp_path, door, receiver, **{f"OTEL_{signal.upper()}_EXPORTER": "none"})
        ok(result)
        expected = {"logs": True, "traces": True, "metrics": True, signal: False}
        assert exported(receiver) == expected
        assert file_messages(tmp_path) == ["record 0 for SSN [REDACTED:SSN]"]

    def test_none_wins_over_a_signal_endpoint_too(self, tmp_path, receiver):
        result = run_app(
            tmp_path,
            "code",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.endpoint}/v1/traces",
            OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{receiver.endpoint}/v1/logs",
            OTEL_TRACES_EXPORTER="none",
        )
        ok(result)
        assert exported(receiver) == {"logs": True, "traces": False, "metrics": False}
        settings = load_settings(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint, "OTEL_TRACES_EXPORTER": "none"},
            service_name="s",
        )
        assert (settings.export_target("traces"), settings.signal_exporter("traces")) == (None, None)


class TestSignalExporterConsole:
    @pytest.mark.parametrize("door", DOORS)
    def test_console_spans_are_printed_redacted_and_not_sent(self, tmp_path, receiver, door):
        result = run_app(tmp_path, door, receiver, OTEL_TRACES_EXPORTER="console")
        ok(result)
        assert '"name": "work 0"' in result.stdout
        assert '"note": "patient SSN [REDACTED:SSN]"' in result.stdout
        assert SSN not in result.stdout
        assert exported(receiver) == {"logs": True, "traces": False, "metrics": True}

    @pytest.mark.parametrize("door", DOORS)
    def test_console_log_records_are_printed_through_the_log_processor(self, tmp_path, receiver, door):
        result = run_app(tmp_path, door, receiver, OTEL_LOGS_EXPORTER="console", RECORDS="3")
        ok(result)
        for i in range(3):
            assert f'"body": "record {i} for SSN [REDACTED:SSN]"' in result.stdout
        assert SSN not in result.stdout
        assert providers(result)["logger"] is True
        assert exported(receiver) == {"logs": False, "traces": True, "metrics": True}

    def test_console_metrics_are_printed(self, tmp_path, receiver):
        result = run_app(tmp_path, "code", receiver, OTEL_METRICS_EXPORTER="console")
        ok(result)
        assert '"name": "lumen.log.records"' in result.stdout
        assert exported(receiver) == {"logs": True, "traces": True, "metrics": False}

    def test_console_needs_no_endpoint(self, tmp_path):
        result = run_app(tmp_path, "code", OTEL_TRACES_EXPORTER="console", OTEL_LOGS_EXPORTER="console")
        ok(result)
        assert '"name": "work 0"' in result.stdout
        assert '"body": "record 0 for SSN [REDACTED:SSN]"' in result.stdout


class TestSdkDisabled:
    @pytest.mark.parametrize("door", DOORS)
    def test_nothing_is_exported_and_no_sdk_provider_is_installed(self, tmp_path, receiver, door):
        result = run_app(
            tmp_path, door, receiver, OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="console", RECORDS="3"
        )
        ok(result)
        assert receiver.requests == 0
        assert providers(result) == {
            "tracer": False,
            "meter": False,
            "logger": False,
            "handle": [False, False, False],
        }
        assert '"name": "work 0"' not in result.stdout  # console exporters are the SDK's too
        # lumen's own logging is not the SDK: the file (and console) still get every record
        assert file_messages(tmp_path) == [f"record {i} for SSN [REDACTED:SSN]" for i in range(3)]

    def test_false_changes_nothing(self, tmp_path, receiver):
        ok(run_app(tmp_path, "code", receiver, OTEL_SDK_DISABLED="false"))
        assert exported(receiver) == {"logs": True, "traces": True, "metrics": True}


class TestLogBatching:
    @pytest.mark.parametrize("door", DOORS)
    def test_max_export_batch_size_bounds_every_batch(self, tmp_path, receiver, door):
        result = run_app(tmp_path, door, receiver, OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="10", RECORDS="35")
        ok(result)
        assert len(receiver.logs) == 35
        assert max(receiver.log_batches) <= 10, receiver.log_batches
        assert sum(receiver.log_batches) == 35

    @pytest.mark.parametrize("door", DOORS)
    def test_a_long_schedule_delay_sends_only_full_batches_until_shutdown(self, tmp_path, receiver, door):
        """Delay one hour, batches of 10: the first 5 records wait (through a 3 s pause, more than
        the old hard-coded 1 s) for the next 5, and the last 3 go at shutdown: [10, 3]. A delay
        that was ignored would have sent the first 5 alone."""
        result = run_app(
            tmp_path,
            door,
            receiver,
            OTEL_BLRP_SCHEDULE_DELAY="3600000",
            OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="10",
            RECORDS="13",
            PAUSE_AFTER="5",
            PAUSE="3",
        )
        ok(result)
        assert receiver.log_batches == [10, 3]

    def test_queue_size_alias_caps_the_default_batch(self, tmp_path, receiver):
        result = run_app(tmp_path, "code", receiver, OTEL_BLRP_MAX_QUEUE_SIZE="4", RECORDS="4")
        ok(result)
        assert max(receiver.log_batches) <= 4, receiver.log_batches


class TestSpanBatching:
    def test_bsp_batch_size_bounds_every_span_batch(self, tmp_path, receiver):
        result = run_app(
            tmp_path,
            "code",
            receiver,
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
            OTEL_BSP_SCHEDULE_DELAY="3600000",
            SPANS="7",
        )
        ok(result)
        assert receiver.span_batches == [2, 2, 2, 1]


BAD = [
    ("OTEL_SDK_DISABLED", "maybe", "a boolean"),
    ("OTEL_TRACES_EXPORTER", "zipkin", "one of otlp, console, none"),
    ("OTEL_LOGS_EXPORTER", "otlp,console", "one of otlp, console, none (a single exporter"),
    ("OTEL_METRICS_EXPORTER", "prometheus", "one of otlp, console, none"),
    ("OTEL_BLRP_SCHEDULE_DELAY", "1s", "a whole number of milliseconds >= 1"),
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0", "an integer >= 1"),
    ("OTEL_BLRP_EXPORT_TIMEOUT", "-5", "a whole number of milliseconds >= 0"),
    ("OTEL_BLRP_MAX_QUEUE_SIZE", "lots", "an integer >= 1"),
    ("OTEL_BSP_SCHEDULE_DELAY", "0", "a whole number of milliseconds >= 1"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "none", "an integer >= 1"),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "big", "an integer >= 1"),
    ("OTEL_BSP_EXPORT_TIMEOUT", "30s", "a whole number of milliseconds >= 0"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "0", "a whole number of milliseconds >= 1"),
    ("OTEL_METRIC_EXPORT_TIMEOUT", "abc", "a whole number of milliseconds >= 0"),
]
#: a batch larger than its queue: the batch variable is named, with the queue it must fit
TOO_BIG = [
    (
        {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "600", "OTEL_BLRP_MAX_QUEUE_SIZE": "500"},
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE='600' is not valid: expected an integer from 1 to the queue size "
        "(OTEL_BLRP_MAX_QUEUE_SIZE=500)",
    ),
    (
        {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "600", "LUMEN_OTLP_QUEUE_SIZE": "500"},
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE='600' is not valid: expected an integer from 1 to the queue size "
        "(LUMEN_OTLP_QUEUE_SIZE=500)",
    ),
    (
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100", "OTEL_BSP_MAX_QUEUE_SIZE": "50"},
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE='100' is not valid: expected an integer from 1 to the queue size "
        "(OTEL_BSP_MAX_QUEUE_SIZE=50)",
    ),
]


class TestBadValuesStopStartUp:
    @pytest.mark.parametrize("door", DOORS)
    @pytest.mark.parametrize(("name", "value", "accepted"), BAD)
    def test_the_variable_is_named(self, tmp_path, receiver, door, name, value, accepted):
        result = run_app(tmp_path, door, receiver, **{name: value})
        expected = f"{name}={value!r} is not valid: expected {accepted}"
        assert "DONE" not in result.stdout
        assert expected in result.stderr, result.stderr
        if door == "launcher":
            assert result.returncode == 2
            assert f"lumen-otel: configuration error: {expected}" in result.stderr
        else:
            assert result.returncode == 1
            assert f"lumen_otel.exceptions.ConfigError: {expected}" in result.stderr
        assert receiver.requests == 0

    @pytest.mark.parametrize("door", DOORS)
    @pytest.mark.parametrize(("env", "message"), TOO_BIG)
    def test_a_batch_larger_than_its_queue(self, tmp_path, receiver, door, env, message):
        result = run_app(tmp_path, door, receiver, **env)
        assert (result.returncode, "DONE" in result.stdout) == (2 if door == "launcher" else 1, False)
        assert message in result.stderr, result.stderr

    @pytest.mark.parametrize(("name", "value", "accepted"), BAD)
    def test_in_the_settings_too(self, name, value, accepted):
        with pytest.raises(ConfigError) as caught:
            load_settings({name: value}, service_name="s")
        assert (caught.value.name, caught.value.value) == (name, value)

    def test_a_default_batch_is_capped_at_a_smaller_queue_not_refused(self):
        settings = load_settings(
            {"LUMEN_OTLP_QUEUE_SIZE": "100", "OTEL_BSP_MAX_QUEUE_SIZE": "64"}, service_name="s"
        )
        assert (settings.blrp_max_export_batch_size, settings.sources["blrp_max_export_batch_size"]) == (
            100,
            "default (capped at LUMEN_OTLP_QUEUE_SIZE)",
        )
        assert (settings.bsp_max_export_batch_size, settings.sources["bsp_max_export_batch_size"]) == (
            64,
            "default (capped at OTEL_BSP_MAX_QUEUE_SIZE)",
        )


ALL_SET = {
    "OTEL_SDK_DISABLED": ("false", "sdk_disabled", "False"),
    "OTEL_TRACES_EXPORTER": ("none", "traces_exporter", "none"),
    "OTEL_LOGS_EXPORTER": ("console", "logs_exporter", "console"),
    "OTEL_METRICS_EXPORTER": ("otlp", "metrics_exporter", "otlp"),
    "OTEL_BLRP_SCHEDULE_DELAY": ("250", "blrp_schedule_delay_ms", "250"),
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": ("64", "blrp_max_export_batch_size", "64"),
    "OTEL_BLRP_EXPORT_TIMEOUT": ("7000", "blrp_export_timeout_ms", "7000"),
    "OTEL_BLRP_MAX_QUEUE_SIZE": ("4096", "otlp_queue_size", "4096"),
    "OTEL_BSP_SCHEDULE_DELAY": ("300", "bsp_schedule_delay_ms", "300"),
    "OTEL_BSP_MAX_QUEUE_SIZE": ("1024", "bsp_max_queue_size", "1024"),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": ("128", "bsp_max_export_batch_size", "128"),
    "OTEL_BSP_EXPORT_TIMEOUT": ("8000", "bsp_export_timeout_ms", "8000"),
    "OTEL_METRIC_EXPORT_INTERVAL": ("15000", "metric_export_interval_ms", "15000"),
    "OTEL_METRIC_EXPORT_TIMEOUT": ("9000", "metric_export_timeout_ms", "9000"),
}
DEFAULTS = {
    "sdk_disabled": "False",
    "traces_exporter": "otlp",
    "logs_exporter": "otlp",
    "metrics_exporter": "otlp",
    "blrp_schedule_delay_ms": "1000",
    "blrp_max_export_batch_size": "512",
    "blrp_export_timeout_ms": "30000",
    "bsp_schedule_delay_ms": "5000",
    "bsp_max_queue_size": "2048",
    "bsp_max_export_batch_size": "512",
    "bsp_export_timeout_ms": "30000",
    "metric_export_interval_ms": "60000",
    "metric_export_timeout_ms": "30000",
}


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "doctor", *args],
        cwd=REPO,
        env=clean_env(OTEL_SERVICE_NAME="orders", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def doctor_json(**env: str) -> dict[str, Any]:
    done = doctor("--json", **env)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


class TestDoctor:
    def test_every_standard_variable_is_listed_with_its_source(self, receiver):
        report = doctor_json(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, **{k: v[0] for k, v in ALL_SET.items()}
        )
        rows = {r["setting"]: (r["value"], r["source"]) for r in report["settings"]}
        for name, (_, setting, shown) in ALL_SET.items():
            assert rows[setting] == (shown, name)
        defaults = {r["setting"]: (r["value"], r["source"]) for r in doctor_json()["settings"]}
        for setting, shown in DEFAULTS.items():
            assert defaults[setting] == (shown, "default")

    def test_signals_say_none_and_console_with_the_variable(self, receiver):
        report = doctor_json(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_TRACES_EXPORTER="none",
            OTEL_LOGS_EXPORTER="console",
        )
        signals = {row["signal"]: row for row in report["signals"]}
        assert (
            signals["traces"]["exported"],
            signals["traces"]["endpoint"],
            signals["traces"]["source"],
        ) == (
            False,
            None,
            "OTEL_TRACES_EXPORTER",
        )
        assert (signals["logs"]["exported"], signals["logs"]["transport"], signals["logs"]["source"]) == (
            True,
            "console (stdout)",
            "OTEL_LOGS_EXPORTER",
        )
        assert (signals["metrics"]["exported"], signals["metrics"]["source"]) == (
            True,
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        )
        assert report["exit_code"] == 0

    def test_the_text_table_shows_them(self, receiver):
        done = doctor(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_TRACES_EXPORTER="none",
            OTEL_LOGS_EXPORTER="console",
            OTEL_BLRP_MAX_EXPORT_BATCH_SIZE="10",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
        assert "traces_exporter none OTEL_TRACES_EXPORTER" in lines
        assert "blrp_max_export_batch_size 10 OTEL_BLRP_MAX_EXPORT_BATCH_SIZE" in lines
        assert "bsp_schedule_delay_ms 5000 default" in lines
        assert "traces - not exported (OTEL_TRACES_EXPORTER=none) OTEL_TRACES_EXPORTER -" in lines
        assert "logs - console (stdout) OTEL_LOGS_EXPORTER -" in lines

    def test_sdk_disabled_is_explained_and_the_endpoint_is_not_used(self, receiver):
        report = doctor_json(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SDK_DISABLED="true")
        checks = {c["topic"]: (c["status"], c["detail"]) for c in report["checks"]}
        status, detail = checks["sdk"]
        assert status == "info"
        assert "no OpenTelemetry SDK provider is installed and nothing is exported" in detail
        assert "lumen's console and file logging still run as configured" in detail
        assert checks["collector"] == (
            "info",
            f"{receiver.endpoint} is set but not used (not checked): OTEL_SDK_DISABLED=true",
        )
        assert [(s["signal"], s["exported"], s["source"]) for s in report["signals"]] == [
            ("logs", False, "OTEL_SDK_DISABLED"),
            ("traces", False, "OTEL_SDK_DISABLED"),
            ("metrics", False, "OTEL_SDK_DISABLED"),
        ]
        rows = {r["setting"]: (r["value"], r["source"]) for r in report["settings"]}
        assert rows["sdk_disabled"] == ("True", "OTEL_SDK_DISABLED")

    def test_a_bad_value_is_a_configuration_error(self):
        report = doctor_json(OTEL_METRICS_EXPORTER="prometheus")
        assert report["exit_code"] == 2
        assert report["config_error"].startswith("OTEL_METRICS_EXPORTER='prometheus' is not valid")


class TestBatchExportTimeoutBoundsEachRequest:
    """``OTEL_BLRP_EXPORT_TIMEOUT``/``OTEL_BSP_EXPORT_TIMEOUT`` bound the exporter's request timeout
    (the SDK's batch processors do not bound an export themselves)."""

    VARIABLES = (
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    )

    @pytest.fixture(autouse=True)
    def _no_request_timeouts(self, monkeypatch):
        for name in self.VARIABLES:
            monkeypatch.delenv(name, raising=False)

    @staticmethod
    def _exporter(signal: str, endpoint: str, **env: str) -> Any:
        from lumen_otel._otlp.exporters import build_exporter

        return build_exporter(load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **env}), signal)

    @staticmethod
    def _timeout(exporter: Any) -> float:
        from lumen_otel._compat import retry_window

        return retry_window(exporter)[0]

    @pytest.mark.parametrize(
        ("signal", "variable", "own"),
        [
            ("logs", "OTEL_BLRP_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"),
            ("traces", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
        ],
    )
    def test_the_smaller_timeout_wins(self, monkeypatch, signal, variable, own):
        endpoint = "http://127.0.0.1:4318"
        assert self._timeout(self._exporter(signal, endpoint)) == 10.0  # upstream's default
        assert self._timeout(self._exporter(signal, endpoint, **{variable: "500"})) == 0.5
        assert self._timeout(self._exporter(signal, endpoint, **{variable: "0"})) == 10.0  # no bound
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")  # seconds, as upstream reads it
        assert self._timeout(self._exporter(signal, endpoint)) == 2.0
        assert self._timeout(self._exporter(signal, endpoint, **{variable: "500"})) == 0.5
        assert self._timeout(self._exporter(signal, endpoint, **{variable: "7000"})) == 2.0
        monkeypatch.setenv(own, "1")
        assert self._timeout(self._exporter(signal, endpoint, **{variable: "7000"})) == 1.0

    def test_a_slow_collector_is_given_up_on_within_the_log_batch_timeout(self):
        import time

        from lumen_otel._compat import LogRecordExportResult
        from tests.test_otlp_wire import _readable

        delay = 5.0
        with OTLPReceiver() as slow:
            slow.answer(200, path="/v1/logs", delay=delay, times=None)
            exporter = self._exporter("logs", slow.endpoint, OTEL_BLRP_EXPORT_TIMEOUT="500")
            assert self._timeout(exporter) == 0.5
            started = time.monotonic()
            result = exporter.export([_readable()])
            took = time.monotonic() - started
            exporter.shutdown()
        assert result is LogRecordExportResult.FAILURE
        # without the bound the attempt waits for the answer (upstream's 10 s would outlast it)
        assert took < delay
