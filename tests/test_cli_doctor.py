"""``lumen-otel doctor``: settings and their sources, the collector (TCP, TLS), instrumentations, traps."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "doctor", *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def doctor_json(*args: str, **env: str) -> tuple[int, dict[str, Any]]:
    done = doctor("--json", *args, **env)
    return done.returncode, json.loads(done.stdout)


def checks(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["topic"]: (c["status"], c["detail"]) for c in report["checks"]}


GOOD = {"OTEL_SERVICE_NAME": "orders", "LUMEN_ENV": "prod", "DJANGO_SETTINGS_MODULE": "orders.settings"}


class TestGoodConfig:
    def test_exit_0_and_every_setting_shows_where_it_came_from(self, otlp_receiver):
        code, report = doctor_json(
            **GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, LOG_LEVEL="warning"
        )
        assert 0 == code, report
        rows = {r["setting"]: (r["value"], r["source"]) for r in report["settings"]}
        assert ("orders", "OTEL_SERVICE_NAME") == rows["service_name"]
        assert ("prod", "LUMEN_ENV") == rows["env"]
        assert ("WARNING", "LOG_LEVEL") == rows["log_level"]
        assert ("json", "default (LUMEN_ENV=prod)") == rows["log_format"]
        assert ("X-Correlation-ID", "default") == rows["correlation_header"]
        assert (otlp_receiver.endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT") == rows["otlp_endpoint"]
        assert ("ok", f"{otlp_receiver.endpoint} is reachable (TCP; plain http, no TLS)") == checks(report)[
            "collector"
        ]
        assert [] == [c for c in report["checks"] if c["status"] in ("warn", "fail")]

    def test_the_table_is_printed_for_people(self, otlp_receiver):
        done = doctor(**GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint)
        assert 0 == done.returncode, done.stdout + done.stderr
        assert "\x1b[" not in done.stdout
        lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
        assert "env prod LUMEN_ENV" in lines
        assert "log_level INFO default" in lines
        assert f"✓ collector: {otlp_receiver.endpoint} is reachable (TCP; plain http, no TLS)" in lines
        assert "healthy, 0 warning(s)" in lines

    def test_no_endpoint_is_not_a_problem(self):
        code, report = doctor_json(**GOOD)
        assert 0 == code
        assert ("info", "no OTLP endpoint set: logs go to the console/files only") == checks(report)[
            "collector"
        ]


class TestUnreachableEndpoint:
    def test_exit_1_and_says_unreachable(self):
        url = f"http://127.0.0.1:{free_port()}"
        done = doctor(**GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=url)
        assert 1 == done.returncode
        assert f"✗ collector: {url} is unreachable: Connection refused" in done.stdout
        assert "1 problem(s)" in done.stdout

    def test_a_signal_specific_endpoint_is_checked_too(self, otlp_receiver):
        url = f"http://127.0.0.1:{free_port()}/v1/logs"
        code, report = doctor_json(
            **GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=url
        )
        assert 1 == code
        assert "ok" == checks(report)["collector"][0]
        assert ("fail", f"{url} is unreachable: Connection refused") == checks(report)["collector (logs)"]


class TestBadVariable:
    @pytest.mark.parametrize(
        ("name", "value", "expected"),
        [
            ("LUMEN_ENV", "staging", "LUMEN_ENV='staging' is not valid: expected one of dev, prod"),
            (
                "LOG_LEVEL",
                "LOUD",
                "LOG_LEVEL='LOUD' is not valid: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
            ),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "collector:4318",
                "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318' is not",
            ),
        ],
    )
    def test_exit_2_naming_the_variable(self, name, value, expected):
        done = doctor(**{**GOOD, name: value})
        assert 2 == done.returncode
        assert expected in done.stderr
        assert "configuration error" in done.stderr

    def test_json_names_it_too(self):
        code, report = doctor_json(**GOOD, LUMEN_CONSOLE="maybe")
        assert 2 == code
        assert (
            "LUMEN_CONSOLE='maybe' is not valid: expected a boolean (true/false, 1/0, yes/no, on/off)"
            == report["config_error"]
        )


@pytest.fixture
def tls_collector(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback TLS listener with a trustme certificate for ``localhost`` (the CA file's path)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                conn.settimeout(5)
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{listener.getsockname()[1]}", ca_file
    finally:
        stop.set()
        thread.join(5)
        listener.close()


class TestTls:
    def test_valid_certificate_with_the_configured_ca(self, tls_collector):
        url, ca_file = tls_collector
        code, report = doctor_json(
            **GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_EXPORTER_OTLP_CERTIFICATE=str(ca_file)
        )
        assert 0 == code, report
        status, detail = checks(report)["collector"]
        assert "ok" == status
        assert detail.startswith(f"{url} is reachable; TLS valid (TLSv1.3, trusted by CA {ca_file}"), detail

    def test_certificate_not_trusted_without_the_ca(self, tls_collector):
        url, _ = tls_collector
        code, report = doctor_json(**GOOD, OTEL_EXPORTER_OTLP_ENDPOINT=url)
        assert 1 == code
        status, detail = checks(report)["collector"]
        assert "fail" == status
        assert detail.startswith(f"{url}: TLS certificate not valid against the system CA store"), detail


def fake_dist(root: Path, name: str, entry_points: str, requires: str = "") -> Path:
    """A real installed-distribution layout (dist-info) that importlib.metadata finds on PYTHONPATH."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{requires}")
    (info / "entry_points.txt").write_text(entry_points)
    return root


class TestDistrosAndInstrumentations:
    def test_installed_instrumentations_are_listed_with_whether_they_load(self, tmp_path):
        fake_dist(
            tmp_path,
            "fake-instrumentation-nosuchlib",
            "[opentelemetry_instrumentor]\nnosuchlib = fake_nosuchlib:Instrumentor\n",
            "Requires-Dist: nosuchlib>=1.0; extra == 'instruments'\n",
        )
        code, report = doctor_json(
            **GOOD, PYTHONPATH=str(tmp_path), OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="asyncio"
        )
        assert 0 == code
        rows = {r["name"]: r for r in report["instrumentations"]}
        assert "loads" == rows["fastapi"]["status"]
        assert "loads" == rows["django"]["status"]
        assert ("disabled", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") == (
            rows["asyncio"]["status"],
            rows["asyncio"]["detail"],
        )
        assert "skipped" == rows["nosuchlib"]["status"]
        assert "nosuchlib>=1.0" in rows["nosuchlib"]["detail"]

    def test_another_distro_is_a_warning_until_lumen_is_chosen(self, tmp_path):
        fake_dist(
            tmp_path,
            "opentelemetry-distro-fake",
            "[opentelemetry_distro]\ndistro = fake_distro:OpenTelemetryDistro\n",
        )
        code, report = doctor_json(**GOOD, PYTHONPATH=str(tmp_path))
        assert 0 == code
        status, detail = checks(report)["distro"]
        assert "warn" == status
        assert detail.endswith("takes the first one it finds. Set OTEL_PYTHON_DISTRO=lumen"), detail
        _, report = doctor_json(**GOOD, PYTHONPATH=str(tmp_path), OTEL_PYTHON_DISTRO="lumen")
        assert ("ok", "lumen (OTEL_PYTHON_DISTRO=lumen)") == checks(report)["distro"]


class TestTraps:
    def test_uvicorn_reload_is_a_warning(self):
        code, report = doctor_json("--", "opentelemetry-instrument", "uvicorn", "app:app", "--reload", **GOOD)
        assert 0 == code
        assert "warn" == checks(report)["uvicorn --reload"][0]

    def test_gunicorn_preload_needs_no_fork_hook_over_http(self):
        code, report = doctor_json("--", "gunicorn", "--preload", "-w", "4", "app.wsgi", **GOOD)
        assert 0 == code
        status, detail = checks(report)["gunicorn --preload"]
        assert "ok" == status
        assert detail.startswith("no post_fork hook needed: lumen-otel restarts"), detail

    def test_gunicorn_preload_over_grpc_is_a_warning(self):
        code, report = doctor_json(
            **GOOD, GUNICORN_CMD_ARGS="--preload --workers 2", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
        )
        assert 0 == code
        status, detail = checks(report)["gunicorn --preload"]
        assert "warn" == status
        assert "gRPC channel made in the master before fork" in detail

    def test_django_without_settings_module_is_a_warning(self):
        env = {k: v for k, v in GOOD.items() if k != "DJANGO_SETTINGS_MODULE"}
        code, report = doctor_json(**env)
        assert 0 == code
        status, detail = checks(report)["Django"]
        assert "warn" == status
        assert detail.startswith("Django is installed but DJANGO_SETTINGS_MODULE is not set"), detail

    def test_help_explains_the_command_argument(self):
        done = subprocess.run(
            [str(VENV_BIN / "lumen-otel"), "doctor", "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            timeout=60,
            check=False,
        )
        assert 0 == done.returncode
        assert "checked for known traps" in done.stdout
