"""collector-config/local.yaml: plain OTLP on loopback, redacted records written to a JSON-lines file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.collector.conftest import StartCollector

pytestmark = [pytest.mark.collector, pytest.mark.integration]


def file_bodies(path: Path) -> list[tuple[str, str]]:
    """(service.name, body) of every log record in the file exporter's OTLP-JSON lines."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for resource_logs in json.loads(line).get("resourceLogs", []):
            attrs = {a["key"]: a["value"].get("stringValue") for a in resource_logs["resource"]["attributes"]}
            for scope_logs in resource_logs["scopeLogs"]:
                found += [(attrs["service.name"], r["body"]["stringValue"]) for r in scope_logs["logRecords"]]
    return found


class TestLocalConfig:
    def test_plain_http_on_loopback_writes_redacted_logs_to_the_file(
        self, start_collector: StartCollector, tmp_path: Path
    ) -> None:
        """The demo/development profile: no TLS, a file under LUMEN_COLLECTOR_FILE_PATH, same PHI rules."""
        log_file = tmp_path / "demo" / "collector-logs.jsonl"
        collector = start_collector(
            ["local.yaml"],
            {
                "LUMEN_COLLECTOR_FILE_PATH": str(log_file),
                "LUMEN_COLLECTOR_TRACES_FILE_PATH": str(tmp_path / "demo" / "traces.jsonl"),
                "LUMEN_COLLECTOR_METRICS_FILE_PATH": str(tmp_path / "demo" / "metrics.jsonl"),
                "LUMEN_COLLECTOR_BATCH_TIMEOUT": "100ms",
            },
        )
        provider = LoggerProvider(resource=Resource.create({"service.name": "local-svc"}))
        exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{collector.http_port}/v1/logs", timeout=5)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        provider.get_logger("local").emit(
            body="Patient DOB is 02/03/1989, SSN 059-89-3004", severity_text="INFO"
        )
        provider.shutdown()

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (log_file.exists() and file_bodies(log_file)):
            time.sleep(0.2)
        assert [("local-svc", "Patient DOB is [REDACTED:DOB], SSN [REDACTED:SSN]")] == file_bodies(log_file)
