"""Django under ``opentelemetry-instrument`` without ``DJANGO_SETTINGS_MODULE`` in the environment.

``manage.py``, ``wsgi.py`` and ``asgi.py`` set the variable themselves (``os.environ.setdefault``), after
the launcher has loaded the instrumentations. These tests check that the launcher reads that line (never
running the file), that real ``manage.py check``/``migrate`` and gunicorn then use the project's settings,
that a Django entry point with no settings module stops start-up with a one-line error, and that
``bootstrap()`` called from ``settings.py`` gives server spans.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from lumen_otel._setup.django_settings import (
    Discovery,
    SettingsNotFound,
    apply_discovery,
    discover,
    settings_from_source,
)
from lumen_otel.testing import OTLPReceiver
from tests.conftest import VENV_BIN, clean_env, free_port

MANAGE_PY = '''\
#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    """Run administrative tasks."""
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == '__main__':
    main()
'''

WSGI_PY = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
"""


class TestReadingTheEntryPoint:
    def test_startproject_manage_py_names_its_settings(self) -> None:
        """The line ``django-admin startproject`` writes is found."""
        assert ("mysite.settings", True) == settings_from_source(MANAGE_PY)

    def test_wsgi_module_names_its_settings(self) -> None:
        assert ("mysite.settings", True) == settings_from_source(WSGI_PY)

    def test_item_assignment_is_found(self) -> None:
        source = 'import os\nos.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings.prod"\n'
        assert ("proj.settings.prod", True) == settings_from_source(source)

    def test_environ_imported_from_os_is_found(self) -> None:
        source = 'from os import environ\nenviron.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\n'
        assert ("proj.settings", True) == settings_from_source(source)

    def test_computed_value_is_not_guessed(self) -> None:
        """An f-string or a variable is known only by running the file: not found, still an entry point."""
        f_string = 'import os\nenv = "prod"\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", f"proj.{env}")\n'
        variable = 'import os\nname = "proj.settings"\nos.environ["DJANGO_SETTINGS_MODULE"] = name\n'
        assert (None, True) == settings_from_source(f_string)
        assert (None, True) == settings_from_source(variable)

    def test_reading_the_variable_is_not_setting_it(self) -> None:
        source = 'import os\nprint(os.environ.get("DJANGO_SETTINGS_MODULE"))\n'
        assert (None, False) == settings_from_source(source)

    def test_other_variables_are_ignored(self) -> None:
        source = 'import os\nos.environ.setdefault("APP_SETTINGS", "proj.settings")\n'
        assert (None, False) == settings_from_source(source)

    def test_a_fastapi_app_is_no_django_entry_point(self) -> None:
        source = "import django\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        assert (None, False) == settings_from_source(source)

    def test_django_entry_point_without_the_line(self) -> None:
        source = "import sys\nfrom django.core.management import execute_from_command_line\n"
        assert (None, True) == settings_from_source(source)

    def test_unparsable_source_is_no_entry_point(self) -> None:
        assert (None, False) == settings_from_source("def broken(:\n")


class TestCommandLine:
    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        (tmp_path / "mysite").mkdir()
        (tmp_path / "manage.py").write_text(MANAGE_PY)
        (tmp_path / "mysite" / "__init__.py").write_text("")
        (tmp_path / "mysite" / "wsgi.py").write_text(WSGI_PY)
        (tmp_path / "mysite" / "asgi.py").write_text(WSGI_PY.replace("wsgi", "asgi"))
        (tmp_path / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
        return tmp_path

    def test_manage_py(self, project: Path) -> None:
        found = discover(["manage.py", "runserver"], ["python", "manage.py", "runserver"], project)
        assert Discovery("mysite.settings", True, (str(project / "manage.py"),)) == found

    def test_manage_py_settings_option_wins(self, project: Path) -> None:
        """``--settings`` is what Django applies over the setdefault."""
        argv = ["manage.py", "check", "--settings=mysite.other"]
        assert "mysite.other" == discover(argv, ["python", *argv], project).module

    def test_missing_script(self, project: Path) -> None:
        found = discover(["nothing.py"], ["python", "nothing.py"], project)
        assert Discovery(None, False, (str(project / "nothing.py"),)) == found

    def test_gunicorn_module_and_application(self, project: Path) -> None:
        wsgi = str(project / "mysite" / "wsgi.py")
        for target in ("mysite.wsgi", "mysite.wsgi:application"):
            argv = ["/venv/bin/gunicorn", "-b", "127.0.0.1:8000", "-w", "2", "-k", "sync", target]
            assert Discovery("mysite.settings", True, (wsgi,)) == discover(argv, ["python", *argv], project)

    def test_gunicorn_chdir(self, project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        elsewhere = tmp_path_factory.mktemp("elsewhere")
        argv = ["/venv/bin/gunicorn", "--chdir", str(project), "mysite.wsgi"]
        assert "mysite.settings" == discover(argv, ["python", *argv], elsewhere).module

    def test_gunicorn_env_option(self, project: Path) -> None:
        argv = ["/venv/bin/gunicorn", "-e", "DJANGO_SETTINGS_MODULE=mysite.prod", "mysite.wsgi"]
        assert "mysite.prod" == discover(argv, ["python", *argv], project).module

    def test_uvicorn_and_daphne_asgi(self, project: Path) -> None:
        for argv in (
            ["/venv/bin/uvicorn", "mysite.asgi:application", "--port", "8001"],
            ["/venv/bin/daphne", "-p", "8001", "mysite.asgi:application"],
        ):
            assert "mysite.settings" == discover(argv, ["python", *argv], project).module

    def test_python_dash_m_gunicorn(self, project: Path) -> None:
        """``python -m gunicorn``: at start-up ``sys.argv`` is still ``['-m', ...]``."""
        argv = ["-m", "mysite.wsgi"]
        orig = ["python", "-m", "gunicorn", "mysite.wsgi"]
        assert "mysite.settings" == discover(argv, orig, project).module

    def test_uvicorn_fastapi_app_is_not_django(self, project: Path) -> None:
        argv = ["/venv/bin/uvicorn", "main:app"]
        assert Discovery(None, False, (str(project / "main.py"),)) == discover(
            argv, ["python", *argv], project
        )

    def test_django_admin_needs_the_variable_or_settings_option(self, project: Path) -> None:
        assert Discovery(None, True, ("django-admin --settings",)) == discover(
            ["/venv/bin/django-admin", "check"], ["python", "/venv/bin/django-admin", "check"], project
        )
        argv = ["/venv/bin/django-admin", "check", "--settings", "mysite.settings"]
        assert "mysite.settings" == discover(argv, ["python", *argv], project).module

    def test_apply_sets_the_variable_only_when_unset(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(project)
        monkeypatch.setattr(sys, "argv", ["manage.py", "check"])
        environ: dict[str, str] = {}
        assert "mysite.settings" == apply_discovery(environ)
        assert {"DJANGO_SETTINGS_MODULE": "mysite.settings"} == environ
        preset = {"DJANGO_SETTINGS_MODULE": "mysite.prod"}
        assert "mysite.prod" == apply_discovery(preset)
        assert {"DJANGO_SETTINGS_MODULE": "mysite.prod"} == preset

    def test_apply_leaves_other_programs_alone(self, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(project)
        monkeypatch.setattr(sys, "argv", ["/venv/bin/uvicorn", "main:app"])
        environ: dict[str, str] = {}
        assert apply_discovery(environ) is None
        assert {} == environ

    def test_apply_refuses_a_django_entry_point_without_settings(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (project / "manage.py").write_text(MANAGE_PY.replace("'mysite.settings'", "f'{sys.argv[0]}'"))
        monkeypatch.chdir(project)
        monkeypatch.setattr(sys, "argv", ["manage.py", "check"])
        with pytest.raises(SettingsNotFound) as raised:
            apply_discovery({})
        assert "DJANGO_SETTINGS_MODULE" in str(raised.value)
        assert str(project / "manage.py") in str(raised.value)


# ---------------------------------------------------------------- real processes


def _startproject(root: Path) -> Path:
    """A project exactly as ``django-admin startproject mysite`` lays it out."""
    project = root / "proj"
    project.mkdir()
    subprocess.run(
        [str(VENV_BIN / "django-admin"), "startproject", "mysite", str(project)],
        check=True,
        env=clean_env(),
        timeout=60,
    )
    return project


def _launch(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / "opentelemetry-instrument"), sys.executable, "manage.py", *args]
    environment = clean_env(OTEL_SERVICE_NAME="mysite", OTEL_TRACES_EXPORTER="none", **env)
    environment.update({"OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
    return subprocess.run(argv, cwd=project, env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
class TestUnderTheLauncher:
    def test_check_sees_the_projects_installed_apps(self, tmp_path: Path) -> None:
        """``check admin auth`` fails with "No installed app" on the empty settings."""
        result = _launch(_startproject(tmp_path), "check", "admin", "auth", "sessions")
        assert (0, "System check identified no issues (0 silenced).") == (
            result.returncode,
            result.stdout.strip(),
        ), result.stderr

    def test_shell_sees_the_projects_settings(self, tmp_path: Path) -> None:
        code = "from django.conf import settings as s; print(s.SETTINGS_MODULE, len(s.INSTALLED_APPS))"
        result = _launch(_startproject(tmp_path), "shell", "-c", code)
        assert "mysite.settings 6" == result.stdout.strip().splitlines()[-1], result.stderr

    def test_migrate_creates_the_projects_database(self, tmp_path: Path) -> None:
        project = _startproject(tmp_path)
        result = _launch(project, "migrate", "--no-input")
        assert 0 == result.returncode, result.stderr
        assert "Applying auth.0001_initial... OK" in result.stdout
        assert (project / "db.sqlite3").is_file()

    def test_gunicorn_serves_the_project(self, tmp_path: Path, start_service: object) -> None:
        """``gunicorn mysite.wsgi``: the admin's login page, not a 500 from empty settings."""
        project = _startproject(tmp_path)
        port = free_port()
        argv = [
            str(VENV_BIN / "opentelemetry-instrument"),
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "mysite.wsgi",
        ]
        env = clean_env(OTEL_SERVICE_NAME="mysite", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
        service = start_service(argv, env, project, port)  # type: ignore[operator]
        response = httpx.get(f"{service.url}/admin/login/", timeout=15)
        assert 200 == response.status_code, response.text[:500]

    def test_no_settings_module_stops_start_up(self, tmp_path: Path) -> None:
        """A Django entry point that names no settings: exit 2 and one line, instead of empty settings."""
        project = _startproject(tmp_path)
        manage = project / "manage.py"
        manage.write_text(manage.read_text().replace("'mysite.settings'", "f'{os.name}.settings'"))
        result = _launch(project, "check")
        lines = result.stderr.strip().splitlines()
        assert 2 == result.returncode, result.stderr
        assert 1 == len(lines), result.stderr
        assert lines[0].startswith("lumen-otel: configuration error: DJANGO_SETTINGS_MODULE is not set")
        assert str(manage) in lines[0]

    def test_a_plain_script_is_left_alone(self, tmp_path: Path) -> None:
        """Django installed, the program is not Django: nothing set, no error."""
        (tmp_path / "job.py").write_text("import os\nprint(os.environ.get('DJANGO_SETTINGS_MODULE'))\n")
        argv = [str(VENV_BIN / "opentelemetry-instrument"), sys.executable, "job.py"]
        env = clean_env(OTEL_SERVICE_NAME="job", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert (0, "None") == (result.returncode, result.stdout.strip()), result.stderr


# ---------------------------------------------------------------- bootstrap() in settings.py

_VIEWS = """\
import logging

from django.http import HttpResponse
from django.urls import path

log = logging.getLogger("app")


def ping(request):
    log.info("ping")
    return HttpResponse("pong")


urlpatterns = [path("ping", ping)]
"""


def _bootstrap_in_settings(root: Path) -> Path:
    project = _startproject(root)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        "import lumen_otel\n\nlumen_otel.bootstrap()\n\n"
        + settings.read_text().replace("ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['127.0.0.1']")
        + textwrap.dedent("""
            MIDDLEWARE = ["lumen_otel.django.CorrelationIdMiddleware", *MIDDLEWARE]
            LOGGING_CONFIG = None
            """)
    )
    (project / "mysite" / "urls.py").write_text(_VIEWS)
    return project


@pytest.mark.integration
class TestBootstrapInSettings:
    @pytest.mark.parametrize("server", ["runserver", "gunicorn"])
    def test_requests_get_server_spans(
        self, server: str, tmp_path: Path, start_service: object, otlp_receiver: OTLPReceiver
    ) -> None:
        """Called at the top of ``settings.py`` (no launcher), ``bootstrap()`` still instruments Django."""
        project = _bootstrap_in_settings(tmp_path)
        port = free_port()
        argv = {
            "runserver": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            "gunicorn": [
                str(VENV_BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "mysite.wsgi",
            ],
        }[server]
        env = clean_env(
            OTEL_SERVICE_NAME="mysite",
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_METRIC_EXPORT_INTERVAL="60000",
        )
        service = start_service(argv, env, project, port)  # type: ignore[operator]
        response = httpx.get(f"{service.url}/ping", timeout=15)
        assert 200 == response.status_code
        assert otlp_receiver.wait_for(lambda r: any(s.kind == 2 for s in r.spans) and bool(r.logs))
        server_span = next(s for s in otlp_receiver.spans if s.kind == 2)
        assert ("GET ping", response.headers["x-correlation-id"].replace("-", "")) == (
            server_span.name,
            server_span.trace_id,
        )
