"""``LUMEN_HTTP_SERVER_METRICS``: the HTTP server instrumentations' own metrics, off by default.

Off, a service exports no ``http.server.*`` metric (the collector's ``span_metrics`` connector
derives request rate, errors and duration from the server spans) and still exports every other
metric; on, the instrumentations' histograms and counters are exported as upstream records them.
Real services on loopback (uvicorn, gunicorn) under ``opentelemetry-instrument`` and with
``bootstrap()`` in code, exporting to a real OTLP/HTTP receiver.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lumen_otel._config.settings import load_settings
from lumen_otel.testing import OTLPReceiver
from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

APPS = REPO / "tests" / "apps"


def _env(receiver: OTLPReceiver, log_dir: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        OTEL_SERVICE_NAME="orders",
        LUMEN_ENV="prod",
        LUMEN_LOG_DIR=str(log_dir),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="300",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **extra,
    )


def _metric_names_after_requests(start_service, receiver: OTLPReceiver, argv: list[str], env, path: str):  # type: ignore[no-untyped-def]
    """Serve three requests, wait until the log counter of all three is exported; the names seen."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    service = start_service(argv, env, APPS, port)
    for _ in range(3):
        assert httpx.get(f"{service.url}{path}", timeout=10).status_code == 200
    # lumen's own counter is exported on the same reader: once it counts the requests' records,
    # any http.server.* metric recorded before them is in the same or an earlier export
    assert receiver.wait_for(lambda r: r.metric_total("lumen.log.records", severity="INFO") >= 3, timeout=20)
    assert receiver.wait_for(lambda r: len(r.spans) >= 3)
    service.stop()
    return {m["name"] for m in receiver.metrics}


UVICORN = [str(VENV_BIN / "uvicorn"), "fastapi_app:app", "--host", "127.0.0.1", "--port", "{port}"]
LAUNCHED_UVICORN = [str(VENV_BIN / "opentelemetry-instrument"), *UVICORN]
LAUNCHED_GUNICORN = [
    str(VENV_BIN / "opentelemetry-instrument"),
    str(VENV_BIN / "gunicorn"),
    "--bind",
    "127.0.0.1:{port}",
    "--workers",
    "1",
    "djangoapp.wsgi:application",
]


def _server_metrics(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("http.server.")}


class TestDefault:
    def test_the_setting_is_off_unless_set(self):
        """A service that sets nothing gets the collector-derived RED metrics only."""
        assert load_settings(environ={}).http_server_metrics is False
        assert load_settings(environ={"LUMEN_HTTP_SERVER_METRICS": "on"}).http_server_metrics is True


class TestFastAPI:
    def test_off_no_http_server_metric_is_exported_and_the_others_are(
        self, start_service, otlp_receiver, tmp_path
    ):
        names = _metric_names_after_requests(
            start_service, otlp_receiver, LAUNCHED_UVICORN, _env(otlp_receiver, tmp_path), "/orders/7"
        )
        assert set() == _server_metrics(names)
        assert "lumen.log.records" in names

    def test_on_the_instrumentation_s_duration_histogram_is_exported(
        self, start_service, otlp_receiver, tmp_path
    ):
        env = _env(otlp_receiver, tmp_path, LUMEN_HTTP_SERVER_METRICS="on")
        names = _metric_names_after_requests(start_service, otlp_receiver, LAUNCHED_UVICORN, env, "/orders/7")
        assert {"http.server.duration", "http.server.active_requests"} <= _server_metrics(names)
        counts = [m["value"] for m in otlp_receiver.metrics if m["name"] == "http.server.duration"]
        assert 3 == max(counts)

    def test_off_with_bootstrap_in_code_too(self, start_service, otlp_receiver, tmp_path):
        """The same through ``lumen_otel.bootstrap()`` in the application, without the launcher."""
        env = _env(otlp_receiver, tmp_path, APP_BOOTSTRAP_IN_CODE="1")
        names = _metric_names_after_requests(start_service, otlp_receiver, UVICORN, env, "/orders/7")
        assert set() == _server_metrics(names)
        env = _env(otlp_receiver, tmp_path, APP_BOOTSTRAP_IN_CODE="1", LUMEN_HTTP_SERVER_METRICS="true")
        otlp_receiver.metrics.clear()
        names = _metric_names_after_requests(start_service, otlp_receiver, UVICORN, env, "/orders/7")
        assert "http.server.duration" in _server_metrics(names)


class TestDjango:
    def test_off_no_http_server_metric_is_exported(self, start_service, otlp_receiver, tmp_path):
        env = _env(otlp_receiver, tmp_path, DJANGO_SETTINGS_MODULE="djangoapp.settings")
        names = _metric_names_after_requests(
            start_service, otlp_receiver, LAUNCHED_GUNICORN, env, "/exams/12"
        )
        assert set() == _server_metrics(names)
        assert "lumen.log.records" in names

    def test_on_the_instrumentation_s_duration_histogram_is_exported(
        self, start_service, otlp_receiver, tmp_path
    ):
        env = _env(
            otlp_receiver,
            tmp_path,
            DJANGO_SETTINGS_MODULE="djangoapp.settings",
            LUMEN_HTTP_SERVER_METRICS="on",
        )
        names = _metric_names_after_requests(
            start_service, otlp_receiver, LAUNCHED_GUNICORN, env, "/exams/12"
        )
        assert {"http.server.duration", "http.server.active_requests"} <= _server_metrics(names)
