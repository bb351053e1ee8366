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


def doctor(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "doctor", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def doctor_json(*args: str, cwd: Path = REPO, **env: str) -> tuple[int, dict[str, Any]]:
    done = doctor("--json", *args, cwd=cwd, **env)
    return done.returncode, json.loads(done.stdout)


def checks(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["topic"]: (c["status"], c["detail"]) for c in report["checks"]}


GOOD = {"OTEL_SERVICE_NAME": "orders", "LUMEN_ENV": "prod"}


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

    def test_an_instrumentation_that_does_not_load_is_skipped_with_the_reason(self, tmp_path):
        """Listed as loading only when it would: its module imports, and the library it instruments
        is there (opentelemetry-instrumentation-httpx also ships ``httpx2``, for a library not installed)."""
        fake_dist(
            tmp_path,
            "fake-instrumentation-broken",
            "[opentelemetry_instrumentor]\nbroken = fake_broken_instrumentation:Instrumentor\n",
        )
        code, report = doctor_json(**GOOD, PYTHONPATH=str(tmp_path))
        assert 0 == code
        rows = {r["name"]: (r["status"], r["detail"]) for r in report["instrumentations"]}
        assert (
            "skipped",
            "cannot be loaded: ModuleNotFoundError: No module named 'fake_broken_instrumentation'",
        ) == rows["broken"]
        assert "skipped" == rows["httpx2"][0]
        assert '"httpx2 >= 2.0.0"' in rows["httpx2"][1]
        assert ("loads", "") == rows["httpx"]
        done = doctor(**GOOD, PYTHONPATH=str(tmp_path))
        assert not any(line.split()[:2] == ["loads", "httpx2"] for line in done.stdout.splitlines())

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

    def test_a_service_that_is_not_django_gets_no_django_line(self, tmp_path):
        """Django installed beside a FastAPI service (``[all]``) is no reason for a warning."""
        code, report = doctor_json(cwd=tmp_path, **GOOD)
        assert 0 == code, report
        assert "Django" not in checks(report)

    @pytest.mark.parametrize("where", ["command", "GUNICORN_CMD_ARGS", "gunicorn.conf.py"])
    def test_a_uvicorn_worker_set_up_is_checked(self, tmp_path, where):
        worker = "uvicorn_worker.UvicornWorker"
        args: list[str] = ["--", "gunicorn", "app:app"]
        env = dict(GOOD)
        if where == "command":
            args = ["--", "gunicorn", "-k", worker, "app:app"]
        elif where == "GUNICORN_CMD_ARGS":
            env["GUNICORN_CMD_ARGS"] = f"--workers 2 --worker-class={worker}"
        else:
            (tmp_path / "gunicorn.conf.py").write_text(f'workers = 2\nworker_class = "{worker}"\n')
        code, report = doctor_json(*args, cwd=tmp_path, **env)
        assert 0 == code, report
        status, detail = checks(report)["gunicorn UvicornWorker"]
        assert "ok" == status
        assert detail.startswith(worker) and detail.endswith(
            ": UvicornWorker loggers routed through lumen-otel"
        )
        if where == "gunicorn.conf.py":
            assert f"({tmp_path / 'gunicorn.conf.py'})" in detail

    def test_the_settings_module_a_manage_py_sets_is_reported(self, tmp_path):
        (tmp_path / "manage.py").write_text(
            "import os\nimport sys\n\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'clinic.settings')\n"
            "from django.core.management import execute_from_command_line\n"
            "execute_from_command_line(sys.argv)\n"
        )
        (tmp_path / "clinic").mkdir()
        (tmp_path / "clinic" / "settings.py").write_text("INSTALLED_APPS = []\n")
        code, report = doctor_json(cwd=tmp_path, **GOOD)
        assert 0 == code, report
        assert (
            "ok",
            f"settings module clinic.settings (os.environ.setdefault in {tmp_path / 'manage.py'})",
        ) == checks(report)["Django"]
        _, report = doctor_json(cwd=tmp_path, **GOOD, DJANGO_SETTINGS_MODULE="clinic.settings")
        assert ("ok", "settings module clinic.settings (DJANGO_SETTINGS_MODULE)") == checks(report)["Django"]

    def test_a_settings_module_that_no_file_provides_fails(self, tmp_path):
        """A misspelt module would stop the service with "No module named ..." at start-up."""
        (tmp_path / "clinic").mkdir()
        (tmp_path / "clinic" / "settings.py").write_text("INSTALLED_APPS = []\n")
        code, report = doctor_json(cwd=tmp_path, **GOOD, DJANGO_SETTINGS_MODULE="clinic.setings")
        assert 1 == code, report
        assert (
            "fail",
            f"settings module clinic.setings (DJANGO_SETTINGS_MODULE) is not found under {tmp_path} or "
            "sys.path: Django would stop with 'No module named ...' at start-up. Check its spelling",
        ) == checks(report)["Django"]

    def test_the_settings_module_of_the_wsgi_module_a_command_names_or_the_missing_one(self, tmp_path):
        (tmp_path / "clinic").mkdir()
        (tmp_path / "clinic" / "__init__.py").write_text("")
        wsgi = tmp_path / "clinic" / "wsgi.py"
        wsgi.write_text(
            "import os\nfrom django.core.wsgi import get_wsgi_application\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'clinic.prod')\n"
            "application = get_wsgi_application()\n"
        )
        (tmp_path / "clinic" / "prod.py").write_text("INSTALLED_APPS = []\n")
        env = dict(GOOD)
        code, report = doctor_json(
            "--", "opentelemetry-instrument", "gunicorn", "clinic.wsgi", cwd=tmp_path, **env
        )
        assert 0 == code, report
        assert ("ok", f"settings module clinic.prod (os.environ.setdefault in {wsgi})") == checks(report)[
            "Django"
        ]
        wsgi.write_text(
            "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n"
        )
        code, report = doctor_json("--", "gunicorn", "clinic.wsgi", cwd=tmp_path, **env)
        assert 1 == code, report
        status, detail = checks(report)["Django"]
        assert "fail" == status
        assert detail.startswith("DJANGO_SETTINGS_MODULE is not set and no os.environ.setdefault"), detail
        assert str(wsgi) in detail

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


class TestLogDirectory:
    def test_a_directory_that_cannot_be_made_is_a_problem_naming_it_and_the_fix(self, tmp_path):
        """A file where the directory's parent should be stops every user, root included."""
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        wanted = blocker / "logs"
        done = doctor(**GOOD, LUMEN_LOG_DIR=str(wanted))
        assert 1 == done.returncode, done.stdout + done.stderr
        lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
        assert (
            f"✗ log directory: LUMEN_LOG_DIR={wanted}: cannot write orders.log there ({blocker} is not a "
            "directory). Point LUMEN_LOG_DIR at a writable directory, or create it writable by the "
            "service's user (mkdir -p, then chown/chmod)"
        ) in lines
        assert "1 problem(s), 0 warning(s)" in lines
        assert "healthy, 0 warning(s)" not in lines

    def test_the_legacy_variable_is_named_when_it_set_the_directory(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("")
        code, report = doctor_json(**GOOD, LOG_DIR=str(blocker))
        assert 1 == code
        status, detail = checks(report)["log directory"]
        assert "fail" == status
        assert detail.startswith(
            f"LOG_DIR={blocker}: cannot write orders.log there ({blocker} is not a directory)"
        )

    def test_a_writable_directory_is_fine_and_nothing_is_left_behind(self, tmp_path):
        existing = tmp_path / "logs"
        existing.mkdir()
        code, report = doctor_json(**GOOD, LUMEN_LOG_DIR=str(existing))
        assert 0 == code, report
        assert ("ok", f"LUMEN_LOG_DIR={existing} is writable") == checks(report)["log directory"]
        missing = tmp_path / "new" / "logs"
        code, report = doctor_json(**GOOD, LUMEN_LOG_DIR=str(missing))
        assert 0 == code, report
        assert ("ok", f"LUMEN_LOG_DIR={missing} is writable (it will be created in {tmp_path})") == checks(
            report
        )["log directory"]
        assert [existing] == list(tmp_path.iterdir())
        assert [] == list(existing.iterdir())
