"""W3C Trace Context through real servers: FastAPI on uvicorn and Django on runserver, each under
``opentelemetry-instrument`` with lumen-otel's distro.

The apps (``tests/apps/w3c``) are the suite's "service under test": ``POST /test`` with a JSON
list of ``{"url", "arguments"}`` makes one httpx call per entry. The callee is a loopback HTTP
server in this process that records every header line it receives, so a test sees exactly what
the next service would: repeated lines sent by the client stay repeated on the way in (httpx
writes each one), and ASGI hands them to the instrumentation one by one while Django's WSGI
server joins them with ``,``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_env, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "apps" / "w3c"
BIN = Path(sys.executable).parent
TRACE_ID = "12345678901234567890123456789012"
OTHER_TRACE_ID = "12345678901234567890123456789011"
PARENT_ID = "1234567890123456"
SSN = "123-45-6789"


class _Callee(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.received: dict[str, list[tuple[str, str]]] = {}


class _Recorder(BaseHTTPRequestHandler):
    server: _Callee

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received[self.path] = [(name.lower(), value) for name, value in self.headers.items()]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Received:
    """The trace-context header lines one outgoing call of the app carried."""

    traceparent: list[str]
    tracestate: list[str]
    baggage: list[str]

    @property
    def trace_id(self) -> str:
        assert 1 == len(self.traceparent), self.traceparent
        return self.traceparent[0].split("-")[1]

    @property
    def flags(self) -> str:
        return self.traceparent[0].split("-")[3]


@dataclass
class App:
    url: str
    callee: _Callee

    def call(self, headers: list[tuple[str, str]]) -> Received:
        """POST /test with these header lines; what the app's call to the callee carried."""
        path = f"/callback/{uuid.uuid4().hex}"
        callee = f"http://127.0.0.1:{self.callee.server_address[1]}{path}"
        response = httpx.post(
            f"{self.url}/test", json=[{"url": callee, "arguments": []}], headers=headers, timeout=20
        )
        assert 200 == response.status_code, response.text
        lines = self.callee.received[path]
        return Received(
            [v for k, v in lines if k == "traceparent"],
            [v for k, v in lines if k == "tracestate"],
            [v for k, v in lines if k == "baggage"],
        )


COMMANDS = {
    "fastapi-uvicorn": lambda port: [
        str(BIN / "uvicorn"),
        "w3c_fastapi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ],
    "django-runserver": lambda port: [
        str(BIN / "django-admin"),
        "runserver",
        f"127.0.0.1:{port}",
        "--noreload",
        "--skip-checks",
    ],
}


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def callee() -> Iterator[_Callee]:
    server = _Callee()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=sorted(COMMANDS))
def app(
    request: pytest.FixtureRequest, callee: _Callee, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    tmp = tmp_path_factory.mktemp(request.param)
    port = free_port()
    env = clean_env(
        PYTHONPATH=os.pathsep.join([str(APPS), str(REPO)]),
        LUMEN_CONSOLE="false",
        OTEL_SERVICE_NAME=f"w3c-{request.param}",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        DJANGO_SETTINGS_MODULE="w3c_django_settings",
    )
    log = tmp / "server.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "opentelemetry-instrument"), *COMMANDS[request.param](port)],
            env=env,
            cwd=tmp,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}", process, log)
            yield App(f"http://127.0.0.1:{port}", callee)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _traceparent(trace_id: str = TRACE_ID, flags: str = "01") -> tuple[str, str]:
    return ("traceparent", f"00-{trace_id}-{PARENT_ID}-{flags}")


class TestTraceparentThroughRealServers:
    def test_two_traceparent_header_lines_start_a_new_random_trace(self, app: App) -> None:
        received = app.call([_traceparent(OTHER_TRACE_ID), _traceparent(TRACE_ID), ("tracestate", "foo=1")])
        assert (False, False, "03", []) == (
            received.trace_id == OTHER_TRACE_ID,
            received.trace_id == TRACE_ID,
            received.flags,
            received.tracestate,
        )

    def test_request_without_traceparent_starts_a_sampled_random_trace(self, app: App) -> None:
        assert "03" == app.call([]).flags

    @pytest.mark.parametrize("flags", ["02", "03", "01"])
    def test_random_flag_of_the_caller_is_kept(self, app: App, flags: str) -> None:
        received = app.call([_traceparent(flags=flags)])
        assert (TRACE_ID, flags) == (received.trace_id, received.flags)


class TestTracestateThroughRealServers:
    @pytest.mark.parametrize(
        ("lines", "forwarded"),
        [
            pytest.param(["foo=1,foo=2"], "foo=1", id="one-line"),
            pytest.param(["foo=1,bar=2", "foo=3"], "foo=1,bar=2", id="two-lines"),
        ],
    )
    def test_duplicate_tracestate_key_keeps_the_first_and_the_rest(
        self, app: App, lines: list[str], forwarded: str
    ) -> None:
        received = app.call([_traceparent(flags="00"), *(("tracestate", line) for line in lines)])
        assert (TRACE_ID, [forwarded]) == (received.trace_id, received.tracestate)

    def test_keys_with_at_signs_are_forwarded(self, app: App) -> None:
        keys = ["foo@", "foo@@bar", "tenant@system", "t" * 242 + "@v", "t@" + "v" * 15]
        members = ",".join(f"{key}={i}" for i, key in enumerate(keys))
        assert [members] == app.call([_traceparent(), ("tracestate", members)]).tracestate

    def test_key_starting_with_at_sign_drops_the_whole_tracestate(self, app: App) -> None:
        received = app.call([_traceparent(), ("tracestate", "@foo=1,bar=2")])
        assert (TRACE_ID, []) == (received.trace_id, received.tracestate)

    def test_member_carrying_phi_is_not_forwarded(self, app: App) -> None:
        received = app.call([_traceparent(), ("tracestate", f"rojo=1,vendor=ssn:{SSN},congo=2")])
        assert ["rojo=1,congo=2"] == received.tracestate

    def test_a_percent_encoded_name_in_a_member_is_not_forwarded(self, app: App) -> None:
        received = app.call([_traceparent(), ("tracestate", "rojo=1,x=patient%20Sarah%20Murphy")])
        assert ["rojo=1"] == received.tracestate


class TestBaggageThroughRealServers:
    def test_baggage_entries_carrying_phi_are_not_forwarded_the_others_are(self, app: App) -> None:
        """A caller's baggage travels on every outgoing call: entries naming or carrying PHI stop here."""
        received = app.call(
            [
                _traceparent(),
                ("baggage", f"tenant=north,patient_name=Sarah%20Murphy,ssn={SSN},note=ssn%20{SSN},region=eu"),
            ]
        )
        assert ["tenant=north,region=eu"] == received.baggage
