"""Real services under ``opentelemetry-instrument`` (and bootstrap() in code): what users see."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from lumen_otel._logging.formatters import CORE_FIELDS
from lumen_otel.testing import OTLPReceiver
from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

APPS = REPO / "tests" / "apps"
FIELDS = list(CORE_FIELDS)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def uvicorn_argv(port: int, launcher: bool = True) -> list[str]:
    argv = [str(VENV_BIN / "uvicorn"), "fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    return [str(VENV_BIN / "opentelemetry-instrument"), *argv] if launcher else argv


def service_env(receiver: OTLPReceiver, log_dir: Path, **extra: str) -> dict[str, str]:
    settings = {
        "OTEL_SERVICE_NAME": "orders",
        "LUMEN_ENV": "prod",
        "LUMEN_LOG_DIR": str(log_dir),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    return clean_env(**{**settings, **extra})


def run_one_request(
    start_service, receiver: OTLPReceiver, log_dir: Path, launcher: bool = True, **extra: str
) -> tuple[httpx.Response, object]:
    port = free_port()
    service = start_service(uvicorn_argv(port, launcher), service_env(receiver, log_dir, **extra), APPS, port)
    response = httpx.get(f"{service.url}/orders/7", timeout=10)
    assert receiver.wait_for(
        lambda r: (
            any(s.name == "GET /orders/{order_id}" for s in r.spans)
            and any(log.body == "order looked up" for log in r.logs)
        )
    )
    service.stop()
    return response, service


def check_record_fields(record: dict[str, object], trace_id: str) -> None:
    assert FIELDS == list(record)[: len(FIELDS)]
    assert record["service_name"] == "orders"
    assert record["trace_id"] == trace_id
    assert isinstance(record["span_id"], str) and len(record["span_id"]) == 16
    assert str(record["timestamp"]).endswith("Z")
    assert record["correlation_id"] == str(uuid.UUID(hex=trace_id))


class TestFastAPIUnderLauncher:
    def test_one_request_reaches_console_file_and_otlp_with_every_field(
        self, start_service, otlp_receiver, tmp_path
    ):
        """stdout, the log file and OTLP all carry the request's record, tied to the server span."""
        response, service = run_one_request(start_service, otlp_receiver, tmp_path)
        assert response.status_code == 200
        server_span = next(s for s in otlp_receiver.spans if s.name == "GET /orders/{order_id}")

        for source in (service.stdout, (tmp_path / "orders.log").read_text()):
            lines = json_lines(source)
            record = next(r for r in lines if r["message"] == "order looked up")
            check_record_fields(record, server_span.trace_id)
            assert record["order_id"] == 7
            assert record["payload"] == {"items": [1, 2]}
            assert str(record["obj"]).startswith("<object object at")
            access = [r for r in lines if r["logger"] == "uvicorn.access"]
            assert len(access) == 1, access
            assert access[0]["trace_id"] == server_span.trace_id

        otlp = next(log for log in otlp_receiver.logs if log.body == "order looked up")
        assert otlp.trace_id == server_span.trace_id
        assert otlp.resource["service.name"] == "orders"
        assert otlp.resource["telemetry.distro.name"] == "lumen-otel"
        assert otlp.resource["deployment.environment.name"] == "prod"
        assert otlp.attributes["payload"] == '{"items":[1,2]}'
        assert otlp.attributes["order_id"] == 7
        assert otlp.attributes["correlation_id"] == str(uuid.UUID(hex=server_span.trace_id))
        assert 1 == sum(1 for log in otlp_receiver.logs if log.body.endswith('"GET /orders/7 HTTP/1.1" 200'))

    def test_the_servers_exception_line_carries_the_failed_requests_ids(
        self, start_service, otlp_receiver, tmp_path
    ):
        """uvicorn logs "Exception in ASGI application" after the request's context has ended;
        the line that explains a 500 is still found by that request's correlation and trace IDs."""
        port = free_port()
        service = start_service(uvicorn_argv(port), service_env(otlp_receiver, tmp_path), APPS, port)
        response = httpx.get(f"{service.url}/fail", headers={"X-Correlation-ID": "order-fail-17"}, timeout=10)
        assert response.status_code == 500
        assert otlp_receiver.wait_for(lambda r: any(s.name == "GET /fail" for s in r.spans))
        service.stop()
        server_span = next(s for s in otlp_receiver.spans if s.name == "GET /fail")
        lines = json_lines(service.stdout)
        failure = [r for r in lines if str(r["message"]).startswith("Exception in ASGI application")]
        assert len(failure) == 1, [r["message"] for r in lines]
        assert ("order-fail-17", server_span.trace_id, server_span.span_id) == (
            failure[0]["correlation_id"],
            failure[0]["trace_id"],
            failure[0]["span_id"],
        )
        assert response.headers["x-correlation-id"] == "order-fail-17"

    def test_fastapi_internal_send_receive_spans_are_off(self, start_service, otlp_receiver, tmp_path):
        """Only the server span: the per-message ``http send`` spans halve throughput."""
        run_one_request(start_service, otlp_receiver, tmp_path)
        assert [s.name for s in otlp_receiver.spans] == ["GET /orders/{order_id}"]

    def test_log_counters_are_exported_as_metrics(self, start_service, otlp_receiver, tmp_path):
        run_one_request(start_service, otlp_receiver, tmp_path)
        assert otlp_receiver.wait_for(lambda r: r.metric_total("lumen.log.records", severity="INFO") >= 2)


class TestBootstrapInCode:
    def test_bootstrap_in_code_gives_the_same_output(self, start_service, otlp_receiver, tmp_path):
        response, _ = run_one_request(
            start_service, otlp_receiver, tmp_path, launcher=False, APP_BOOTSTRAP_IN_CODE="1"
        )
        assert response.status_code == 200
        server_span = next(s for s in otlp_receiver.spans if s.name == "GET /orders/{order_id}")
        lines = json_lines((tmp_path / "orders.log").read_text())
        check_record_fields(next(r for r in lines if r["message"] == "order looked up"), server_span.trace_id)
        assert len([r for r in lines if r["logger"] == "uvicorn.access"]) == 1

    def test_launcher_and_bootstrap_together_never_duplicate(self, start_service, otlp_receiver, tmp_path):
        _, service = run_one_request(start_service, otlp_receiver, tmp_path, APP_BOOTSTRAP_IN_CODE="1")
        for source in (service.stdout, (tmp_path / "orders.log").read_text()):
            messages = [r["message"] for r in json_lines(source)]
            assert messages.count("order looked up") == 1
        assert 1 == sum(1 for log in otlp_receiver.logs if log.body == "order looked up")
        assert 1 == sum(1 for s in otlp_receiver.spans if s.name == "GET /orders/{order_id}")


class TestDjangoUnderLauncher:
    def test_gunicorn_django_request_has_every_field(self, start_service, otlp_receiver, tmp_path):
        port = free_port()
        env = service_env(
            otlp_receiver, tmp_path, DJANGO_SETTINGS_MODULE="djangoapp.settings", OTEL_SERVICE_NAME="exams"
        )
        argv = [
            str(VENV_BIN / "opentelemetry-instrument"),
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            "-",
            "djangoapp.wsgi:application",
        ]
        service = start_service(argv, env, APPS, port)
        response = httpx.get(f"{service.url}/exams/12", timeout=10)
        assert response.status_code == 200
        assert otlp_receiver.wait_for(lambda r: any(log.body == "exam looked up" for log in r.logs))
        service.stop()
        server_span = next(s for s in otlp_receiver.spans if s.kind == 2)
        for source in (service.stdout, (tmp_path / "exams.log").read_text()):
            lines = json_lines(source)
            record = next(r for r in lines if r["message"] == "exam looked up")
            assert FIELDS == list(record)[: len(FIELDS)]
            assert record["service_name"] == "exams"
            assert record["trace_id"] == server_span.trace_id
            assert record["exam_id"] == 12
            access = [r for r in lines if r["logger"] == "gunicorn.access"]
            assert len(access) == 1, [r["logger"] for r in lines]
            # written after the request's context ended, still found by the request's IDs
            assert (response.headers["x-correlation-id"], server_span.trace_id, server_span.span_id) == (
                access[0]["correlation_id"],
                access[0]["trace_id"],
                access[0]["span_id"],
            )
