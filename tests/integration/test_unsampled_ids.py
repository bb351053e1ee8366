"""Requests that are not sampled keep their IDs on every line, the server's own lines included.

A Django project in a temporary directory (lumen-otel's middleware first in ``MIDDLEWARE``, or
none) runs under ``opentelemetry-instrument`` on ``runserver --noreload``, gunicorn and uvicorn,
writing JSON lines to ``LUMEN_LOG_DIR``. Twenty requests go in unsampled (a caller's ``traceparent``
with flags ``00``, or the service's own ratio sampler at 0), and one to a URL that does not exist.
Each line about a request (the view's, the server's access line, Django's ``Not Found``, some
written after the request's context has ended) must carry that request's correlation ID and trace id.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

REQUESTS = 20
ACCESS_LOGGER = {"runserver": "django.server", "gunicorn": "gunicorn.access", "uvicorn": "uvicorn.access"}

_SETTINGS = """\
SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "idsite.urls"
WSGI_APPLICATION = "idsite.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["lumen_otel.django.CorrelationIdMiddleware", "django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
"""

_URLS = """\
import logging

from django.http import HttpResponse
from django.urls import path

log = logging.getLogger("app")


def work(request, marker):
    log.info("work %s", marker)
    return HttpResponse("ok")


urlpatterns = [path("work/<str:marker>", work)]
"""

_MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


def _project(root: Path, middleware: bool) -> Path:
    site = root / "idsite"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    settings = (
        _SETTINGS if middleware else _SETTINGS.replace('"lumen_otel.django.CorrelationIdMiddleware", ', "")
    )
    (site / "settings.py").write_text(settings)
    (site / "urls.py").write_text(_URLS)
    for kind in ("wsgi", "asgi"):
        (site / f"{kind}.py").write_text(
            textwrap.dedent(f"""\
                import os

                from django.core.{kind} import get_{kind}_application

                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idsite.settings")
                application = get_{kind}_application()
                """)
        )
    (root / "manage.py").write_text(_MANAGE)
    return root


def _argv(server: str, port: int) -> list[str]:
    command = {
        "runserver": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "gunicorn": [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            "-",
            "idsite.wsgi",
        ],
        "uvicorn": [
            str(VENV_BIN / "uvicorn"),
            "idsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    }[server]
    return [str(VENV_BIN / "opentelemetry-instrument"), *command]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("server", ["runserver", "gunicorn", "uvicorn"])
@pytest.mark.parametrize(
    ("unsampled_by", "middleware"),
    [("caller", True), ("ratio", True), ("caller", False)],
    ids=["caller", "ratio", "caller-no-middleware"],
)
def test_every_line_of_an_unsampled_request_has_its_ids(
    server: str, unsampled_by: str, middleware: bool, tmp_path: Path, start_service: Any
) -> None:
    """With lumen-otel's middleware, and without it (the launcher alone: the propagator's ID)."""
    project = _project(tmp_path / "project", middleware)
    log_dir = tmp_path / "logs"
    env = clean_env(
        DJANGO_SETTINGS_MODULE="idsite.settings",
        OTEL_SERVICE_NAME="ids",
        LUMEN_ENV="prod",
        LUMEN_CONSOLE="false",
        LUMEN_LOG_DIR=str(log_dir),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    if unsampled_by == "ratio":
        env.update({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"})
    port = free_port()
    service = start_service(_argv(server, port), env, project, port)

    expected: dict[str, tuple[str, str]] = {}  # marker -> (correlation ID, trace id)
    with httpx.Client(base_url=service.url, timeout=15) as client:
        for _ in range(REQUESTS + 1):
            marker = uuid.uuid4().hex[:16]
            headers: dict[str, str] = {}
            trace_id = uuid.uuid4().hex
            if unsampled_by == "caller":
                headers["traceparent"] = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-00"
            path = f"/work/{marker}" if len(expected) < REQUESTS else f"/missing/{marker}"
            response = client.get(path, headers=headers)
            assert (200 if path.startswith("/work") else 404) == response.status_code
            cid = response.headers["x-correlation-id"]
            # no traceparent: the correlation ID is the trace id written as a UUID
            expected[marker] = (cid, trace_id if unsampled_by == "caller" else cid.replace("-", ""))
    service.stop()

    lines = _lines(log_dir / "ids.log")
    not_found = marker  # the last request
    for marker, ids in expected.items():
        about = [r for r in lines if marker in str(r["message"])]
        loggers = {"django.request" if marker == not_found else "app", ACCESS_LOGGER[server]}
        assert loggers == {r["logger"] for r in about}, (marker, about)
        assert [ids] * len(about) == [(r["correlation_id"], r["trace_id"]) for r in about], about
