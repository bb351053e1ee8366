"""uvicorn's own lines under gunicorn's ``UvicornWorker``, started by ``opentelemetry-instrument``.

``UvicornWorker.__init__`` (``uvicorn.workers`` and the ``uvicorn-worker`` package's
``uvicorn_worker``) gives ``uvicorn.error`` and ``uvicorn.access`` gunicorn's handlers and
``propagate=False`` after lumen-otel set up. A real gunicorn with each worker class on a loopback
port serves a FastAPI app with a route that logs an SSN and one that raises with an SSN in the
exception, with ``--access-logfile -``; it is stopped with SIGTERM, and then lumen-otel's JSON file
must hold uvicorn's start-up lines with the service name, each access line once with the
request's IDs, the "Exception in ASGI application" traceback redacted, and no output of the
process may hold the SSN or a traceback printed past lumen-otel. Without ``--access-logfile``,
gunicorn's access log is off, and so are uvicorn's access lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

SSN = "123-45-6789"
SERVICE = "uvworker"
WORKERS = ("uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker")
WAIT = 60.0  # bound on each wait for the server: start-up, answers, exit

APP = f"""
import logging

from fastapi import FastAPI

log = logging.getLogger("uvworker.app")
app = FastAPI()


@app.get("/health")
async def health():
    return {{"status": "ok"}}


@app.get("/visit/{{marker}}")
async def visit(marker: str):
    log.info("visit %s for SSN %s", marker, "{SSN}")
    return {{"marker": marker}}


@app.get("/crash/{{marker}}")
async def crash(marker: str):
    raise RuntimeError(f"crash {{marker}} for SSN {SSN}")
"""


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f"{module} is not installed (the dev dependency group has it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class Run:
    """What one gunicorn run left behind."""

    records: list[dict[str, Any]]
    file_text: str
    stdout: str
    stderr: str

    def named(self, logger: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["logger"] == logger]

    def about(self, text: str, logger: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if text in r["message"] and logger in (None, r["logger"])]


def _serve(worker: str, tmp: Path, *, access_log: bool) -> Run:
    """Start gunicorn with ``worker`` under the launcher, visit, crash, stop it; read every output."""
    _require(worker.partition(".")[0])
    app_dir = tmp / "app"
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "uvworker_app.py").write_text(textwrap.dedent(APP))
    log_dir = tmp / "logs"
    port = free_port()
    argv = [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "-k",
        worker,
        *(["--access-logfile", "-"] if access_log else []),
        "uvworker_app:app",
    ]
    env = clean_env(
        OTEL_SERVICE_NAME=SERVICE,
        LUMEN_ENV="prod",
        LUMEN_LOG_DIR=str(log_dir),
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        PYTHONPATH=str(app_dir),
    )
    out, err = tmp / "stdout", tmp / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            argv, env=env, cwd=app_dir, stdout=stdout, stderr=stderr, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_answering(url, proc, err)
        with httpx.Client(timeout=20) as client:
            assert 200 == client.get(f"{url}/visit/m-visit").status_code
            assert 500 == client.get(f"{url}/crash/m-crash").status_code
        proc.send_signal(signal.SIGTERM)
        proc.wait(WAIT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    file_text = "".join(path.read_text() for path in sorted(log_dir.glob("*.log")))
    return Run(
        records=[json.loads(line) for line in file_text.splitlines() if line.strip()],
        file_text=file_text,
        stdout=out.read_text(errors="replace"),
        stderr=err.read_text(errors="replace"),
    )


def _wait_answering(url: str, proc: subprocess.Popen[bytes], err: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {proc.returncode}:\n{err.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer on {url} within {WAIT:g} s")


class _Runs(dict[str, Run]):
    """One run per worker class, made on first use."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, worker: str) -> Run:
        run = self[worker] = _serve(worker, self.factory.mktemp(worker.replace(".", "-")), access_log=True)
        return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> _Runs:
    """The runs, shared by this module's tests: each server is started once."""
    return _Runs(tmp_path_factory)


@pytest.mark.parametrize("worker", WORKERS)
class TestUvicornLinesUnderUvicornWorker:
    def test_start_up_lines_are_in_the_file_with_the_service_name(self, runs, worker):
        run = runs[worker]
        for message in ("Started server process", "Application startup complete."):
            found = run.about(message, "uvicorn.error")
            assert [(SERVICE, "INFO")] == [(r["service_name"], r["level"]) for r in found], message

    def test_each_access_line_is_in_lumen_otels_file_and_console_once_with_the_requests_ids(
        self, runs, worker
    ):
        run = runs[worker]
        (visit,) = run.about("visit m-visit")
        (access,) = run.about("/visit/m-visit", "uvicorn.access")
        assert visit["correlation_id"] is not None and visit["trace_id"] is not None
        assert (visit["correlation_id"], visit["trace_id"]) == (access["correlation_id"], access["trace_id"])
        console = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        assert 1 == sum("/visit/m-visit" in r["message"] for r in console)
        assert 1 == run.stdout.count("/visit/m-visit")  # no line of gunicorn's own format beside it

    def test_the_asgi_exception_is_in_the_file_once_redacted_with_its_traceback(self, runs, worker):
        run = runs[worker]
        (record,) = run.about("Exception in ASGI application", "uvicorn.error")
        exception = record["exception"]
        assert ("RuntimeError", "crash m-crash for SSN [REDACTED:SSN]") == (
            exception["type"],
            exception["message"],
        )
        assert exception["stacktrace"].startswith("Traceback (most recent call last)")
        assert exception["stacktrace"].rstrip().endswith("RuntimeError: crash m-crash for SSN [REDACTED:SSN]")
        assert record["correlation_id"] is not None and record["service_name"] == SERVICE

    def test_no_output_holds_the_ssn_or_a_traceback_printed_past_lumen_otel(self, runs, worker):
        run = runs[worker]
        assert [] == [name for name, text in vars(run).items() if isinstance(text, str) and SSN in text]
        assert "Traceback" not in run.stderr and "Exception in ASGI application" not in run.stderr


def test_without_an_access_log_uvicorn_logs_no_access_lines(tmp_path):
    """gunicorn's access log is off unless asked for (``--access-logfile``): so are uvicorn's lines."""
    run = _serve("uvicorn_worker.UvicornWorker", tmp_path, access_log=False)
    assert [] == run.named("uvicorn.access")
    assert 1 == len(run.about("Application startup complete.", "uvicorn.error"))
    assert 1 == len(run.about("Exception in ASGI application", "uvicorn.error"))
