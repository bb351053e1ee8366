"""One configuration: the header name set up once is the one the middlewares, the propagator and
outgoing calls use, and a second set-up call with other arguments says so instead of being ignored."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx
import pytest

from tests.conftest import VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

FASTAPI_APP = """
import os

import httpx

import lumen_otel

lumen_otel.bootstrap(service_name="one-config", correlation_header="X-Request-ID", console=False)

from fastapi import FastAPI, Request

from lumen_otel.fastapi import CorrelationIdMiddleware

app = FastAPI()
app.add_middleware(CorrelationIdMiddleware)


@app.get("/echo")
async def echo(request: Request) -> dict:
    return {"headers": dict(request.headers)}


@app.get("/call")
async def call() -> dict:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{os.environ['PORT']}/echo")
    return {"downstream": answer.json()["headers"], "cid": lumen_otel.get_correlation_id()}
"""

DJANGO_SCRIPT = """
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="one-configuration-" * 4,
    MIDDLEWARE=["lumen_otel.django.CorrelationIdMiddleware"],
)
django.setup()

import lumen_otel

lumen_otel.bootstrap(service_name="one-config-django", correlation_header="X-Request-ID", console=False)

import httpx
from django.http import JsonResponse
from django.test import Client
from django.urls import path


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


echo = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=echo.serve_forever, daemon=True).start()


def call(request):
    downstream = httpx.get(f"http://127.0.0.1:{echo.server_port}/").json()
    return JsonResponse({"downstream": downstream, "cid": request.correlation_id})


urlpatterns = [path("call", call)]

results = []
for extra in ({}, {"HTTP_X_REQUEST_ID": "legacy-id-42"}):
    response = Client().get("/call", **extra)
    results.append(
        {
            "status": response.status_code,
            "headers": {k.lower(): v for k, v in response.items()},
            "body": json.loads(response.content),
        }
    )
echo.shutdown()
print("RESULTS " + json.dumps(results))
"""


def _assert_one_header(headers: dict[str, str], body: dict[str, object], cid: str | None) -> None:
    """X-Request-ID on the response and the outgoing call, naming the request's ID; no X-Correlation-ID."""
    assert "x-correlation-id" not in headers
    assert "x-request-id" in headers
    if cid is not None:
        assert cid == headers["x-request-id"]
    assert headers["x-request-id"] == body["cid"]
    assert "X-Request-ID" == headers["access-control-expose-headers"]
    downstream = body["downstream"]
    assert isinstance(downstream, dict)
    assert "x-correlation-id" not in downstream
    assert headers["x-request-id"] == downstream["x-request-id"]


class TestTheHeaderNameIsSetUpOnce:
    def test_fastapi_response_and_outgoing_httpx_call_use_bootstraps_header(self, tmp_path, start_service):
        """``bootstrap(correlation_header="X-Request-ID")`` and ``add_middleware(CorrelationIdMiddleware)``:
        one header everywhere, not X-Request-ID from the propagator and X-Correlation-ID from the
        middleware."""
        (tmp_path / "one_config_app.py").write_text(FASTAPI_APP)
        port = free_port()
        start_service(
            [str(VENV_BIN / "python"), "-m", "uvicorn", "one_config_app:app", "--port", str(port)],
            clean_env(PORT=str(port)),
            tmp_path,
            port,
        )
        fresh = httpx.get(f"http://127.0.0.1:{port}/call", timeout=20)
        assert 200 == fresh.status_code
        _assert_one_header(dict(fresh.headers), fresh.json(), None)
        assert str(uuid.UUID(fresh.headers["x-request-id"])) == fresh.headers["x-request-id"]

        legacy = httpx.get(
            f"http://127.0.0.1:{port}/call", headers={"X-Request-ID": "legacy-id-42"}, timeout=20
        )
        assert 200 == legacy.status_code
        _assert_one_header(dict(legacy.headers), legacy.json(), "legacy-id-42")

    def test_django_response_and_outgoing_httpx_call_use_bootstraps_header(self, tmp_path):
        script = tmp_path / "one_config_django.py"
        script.write_text(DJANGO_SCRIPT)
        done = subprocess.run(
            [str(VENV_BIN / "python"), str(script)],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert 0 == done.returncode, done.stdout + done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULTS "))
        fresh, legacy = json.loads(line.removeprefix("RESULTS "))
        assert (200, 200) == (fresh["status"], legacy["status"])
        _assert_one_header(fresh["headers"], fresh["body"], None)
        _assert_one_header(legacy["headers"], legacy["body"], "legacy-id-42")


class TestASecondSetUpCall:
    def test_the_same_arguments_return_the_handle_other_ones_raise_naming_the_values(
        self, fresh_logging, tmp_path
    ):
        """Repeated identical calls (and bare ones) stay a no-op; a call asking for another value
        is not silently ignored."""
        import lumen_otel
        from lumen_otel import ConfigError

        handle = lumen_otel.configure_logging(service_name="twice", console=False, log_dir=str(tmp_path))
        assert handle is lumen_otel.configure_logging(service_name="twice", console=False, log_dir=tmp_path)
        assert handle is lumen_otel.configure_logging()
        with pytest.raises(ConfigError) as raised:
            lumen_otel.configure_logging(
                service_name="twice", correlation_header="X-Request-ID", log_level="DEBUG"
            )
        assert (
            "lumen-otel is already set up with correlation_header='X-Correlation-ID' (from default), "
            "log_level='INFO' (from default); this call asked for correlation_header='X-Request-ID', "
            "log_level='DEBUG'. Pass the same arguments (or none), or call shutdown() on the handle first"
        ) == str(raised.value)
        assert "X-Correlation-ID" == handle.settings.correlation_header

        handle.shutdown()  # the way out the message names
        again = lumen_otel.configure_logging(
            service_name="twice", console=False, correlation_header="X-Request-ID"
        )
        assert "X-Request-ID" == again.settings.correlation_header

    def test_a_middleware_given_another_header_warns_once(self, fresh_logging):
        import logging

        import lumen_otel
        from lumen_otel.fastapi import CorrelationIdMiddleware

        lumen_otel.configure_logging(service_name="twice", console=False, correlation_header="X-Request-ID")

        async def app(scope: object, receive: object, send: object) -> None:
            return None

        warned: list[str] = []
        listener = logging.Handler()
        listener.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
        internal = logging.getLogger("lumen_otel.internal")
        internal.addHandler(listener)
        try:
            follows = CorrelationIdMiddleware(app)
            CorrelationIdMiddleware(app, header_name="X-Other-ID")
            CorrelationIdMiddleware(app, header_name="X-Other-ID")
        finally:
            internal.removeHandler(listener)
        assert "X-Request-ID" == follows.header_name
        assert 1 == len(warned), warned
        assert "'X-Other-ID' was given explicitly, but lumen-otel is set up with 'X-Request-ID'" in warned[0]


class TestUnderTheLauncher:
    def test_code_asking_for_another_service_name_is_told_the_variable_to_set(self, tmp_path):
        """Under ``opentelemetry-instrument`` lumen-otel is set up from the environment before the
        application's code runs; a ``bootstrap(service_name=...)`` that disagrees stops with the
        variable that would have given that name."""
        env = clean_env(LUMEN_LOG_DIR=str(tmp_path), LUMEN_CONSOLE="false")
        env.pop("OTEL_SERVICE_NAME", None)
        done = subprocess.run(
            [
                str(VENV_BIN / "opentelemetry-instrument"),
                str(VENV_BIN / "python"),
                "-c",
                "import lumen_otel; lumen_otel.bootstrap(service_name='patients')",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 != done.returncode
        assert "this call asked for service_name='patients'" in done.stderr
        assert "set LUMEN_SERVICE_NAME or OTEL_SERVICE_NAME in the environment instead" in done.stderr


class TestASecondBootstrap:
    def test_a_full_set_up_says_traces_are_set_once_per_process_and_offers_no_shutdown(self, tmp_path):
        """After ``bootstrap()`` the tracer and meter providers cannot be replaced: the error does not
        send the user to ``shutdown()``, which would bring logs back without traces."""
        script = (
            "import lumen_otel\n"
            "from lumen_otel.exceptions import AlreadySetUpError\n"
            "lumen_otel.bootstrap(service_name='first', console=False)\n"
            "try:\n"
            "    lumen_otel.bootstrap(service_name='second')\n"
            "except AlreadySetUpError as exc:\n"
            "    print(exc)\n"
        )
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script],
            env=clean_env(LUMEN_LOG_DIR=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 == done.returncode, done.stderr
        assert (
            "lumen-otel is already set up with service_name='first' (from argument); this call asked "
            "for service_name='second'. Pass the same arguments (or none) to use the set-up in force: "
            "OpenTelemetry's tracer and meter providers are set once per process\n"
        ) == done.stdout
