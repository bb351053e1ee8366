"""PHI never leaves through side doors: an exception message and traceback, a span's name,
attributes and events, the URL query string (span attributes and the access log), ``repr()``
of the request and its URL, and a warning captured into logging. Checked in everything that
reaches the collector, the JSON file and the console."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import httpx
import pytest

from tests.conftest import VENV_BIN, free_port
from tests.reliability.conftest import App, app_env, uvicorn_argv

pytestmark = pytest.mark.integration

PHI = ("123-45-6789", "97727665")


def leaks(where: str, value: Any) -> list[str]:
    text = json.dumps(value, default=repr)
    return [f"{where}: ...{text[max(0, text.find(p) - 80) : text.find(p) + 20]}..." for p in PHI if p in text]


def all_leaks(app: App, received: list[dict[str, Any]], spans: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for log in received:
        found += leaks(
            f"OTLP log {log['body'][:40]!r}", {"body": log["body"], "attributes": log["attributes"]}
        )
    for span in spans:
        found += leaks(f"OTLP span {span['name'][:40]!r}", span)
    for record in app.file_records("sidedoor"):
        found += leaks(f"file {record['message'][:40]!r}", record)
    for line in app.stdout.splitlines():
        found += leaks("console", line)
    return found


class TestNoPHIThroughSideDoors:
    def test_exceptions_spans_urls_reprs_and_warnings_carry_no_phi(self, start_app, receiver, tmp_path):
        receiver.start()
        port = free_port()
        env = app_env("sidedoor", tmp_path / "logs", receiver.endpoint)
        argv = [a for a in uvicorn_argv(port) if a != "--no-access-log"]
        app = start_app(argv, env, name="sidedoor", port=port)
        statuses = {}
        for path in (
            "/side/patients?ssn=" + PHI[0],
            "/side/boom",
            "/side/logged-exception",
            "/side/span",
            "/side/warn",
        ):
            try:
                statuses[path.split("?")[0]] = httpx.get(app.url + path, timeout=10).status_code
            except httpx.HTTPError as exc:
                statuses[path.split("?")[0]] = repr(exc)
        assert {
            "/side/patients": 200,
            "/side/boom": 500,
            "/side/logged-exception": 200,
            "/side/span": 200,
            "/side/warn": 200,
        } == statuses, app.stderr[-3000:]
        assert receiver.wait_for(
            lambda r: (
                len({s["name"] for s in r.spans()}) >= 5
                and any("deprecated lookup" in str(x["body"]) for x in r.logs())
            )
        )
        app.stop()
        spans, received = receiver.spans(), receiver.logs()
        # what each door carried, so a pass is not a pass for want of data
        assert any(s["name"].startswith("lookup patient") for s in spans)
        assert any("url.query" in s["attributes"] or "http.target" in s["attributes"] for s in spans)
        assert any("chart lookup failed" in str(x["body"]) for x in received)
        found = all_leaks(app, received, spans)
        assert [] == found, "\n".join(found)


class TestDjangoRequestRepr:
    def test_repr_of_a_django_request_with_a_query_is_redacted(self, tmp_path):
        """``<WSGIRequest: GET '/patients?ssn=…'>``: Django's repr shows the query string."""
        import subprocess

        script = textwrap.dedent("""
            import logging, django
            from django.conf import settings
            settings.configure(ALLOWED_HOSTS=["*"])
            django.setup()
            from django.test import RequestFactory
            import lumen_otel
            lumen_otel.configure_logging(service_name="djrepr")
            request = RequestFactory().get("/patients", {"ssn": "123-45-6789", "mrn": "97727665"})
            logging.getLogger("app").warning("bad request %r", request)
        """)
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env=app_env("djrepr", tmp_path / "logs", None),
        )
        assert result.returncode == 0, result.stderr
        record = json.loads((tmp_path / "logs" / "djrepr.log").read_text().splitlines()[-1])
        assert record["message"].startswith("bad request <WSGIRequest: GET '/patients?")
        assert [] == leaks("file", record)
