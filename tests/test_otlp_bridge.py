"""The OTLP bridge's direct hand-off builds the same records the SDK's ``logger.emit`` does.

When lumen-otel's processor is the provider's only one, the bridge builds the SDK record
itself and queues it (skipping the SDK's per-record dispatch, half the bridge's cost). These
tests run the same enriched records through both paths, with the real SDK and the real OTLP
protobuf encoder, and compare what a collector would receive.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from lumen_otel._logging.bridge import OtlpBridge
from lumen_otel._logging.enrich import Enricher
from lumen_otel._otlp.processor import ResilientLogProcessor
from lumen_otel._redaction import Redactor

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


class CapturingExporter:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def export(self, batch: Any) -> LogRecordExportResult:
        self.records.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Bystander(LogRecordProcessor):
    """A second processor: its presence makes the bridge take the SDK's ``logger.emit`` path."""

    def on_emit(self, log_record: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _records() -> list[logging.LogRecord]:
    """Enriched records: plain, with extras of several types, in a trace, an exception, odd levels."""
    enricher = Enricher("bridge-test", Redactor())
    made = []
    cases: list[tuple[int, str, dict[str, Any], Any]] = [
        (logging.INFO, "plain line", {}, None),
        (
            logging.WARNING,
            "with extras",
            {"route": "/a/{id}", "status_code": 200, "ratio": 0.5, "ok": True},
            None,
        ),
        (logging.ERROR, "nested extras", {"payload": {"a": [1, 2]}, "none": None, "big": 2**70}, None),
        (25, "between levels", {}, None),
        (5, "below debug", {}, None),
    ]
    for levelno, message, extra, _ in cases:
        made.append(
            logging.LogRecord("app.orders", levelno, "/srv/app.py", 12, message, None, None, "handler")
        )
        made[-1].__dict__.update(extra)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made.append(
            logging.LogRecord("app", logging.ERROR, "/srv/app.py", 40, "failed", None, sys.exc_info(), "pay")
        )
    for record in made:
        enricher(record)
    in_trace = logging.LogRecord(
        "app.traced", logging.INFO, "/srv/app.py", 7, "inside a span", None, None, "get"
    )
    enricher(in_trace)
    in_trace.trace_id, in_trace.span_id, in_trace.trace_flags = TRACE, SPAN, 1
    in_trace.correlation_id = "7d0f5a1e-6a51-4d3b-9e0c-1f2a3b4c5d6e"
    made.append(in_trace)
    return made


def _export_through(*, direct: bool, records: list[logging.LogRecord] | None = None) -> list[Any]:
    exporter = CapturingExporter()
    limits = LogRecordLimits()
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "bridge-test"}),
        shutdown_on_exit=False,
        log_record_limits=limits,
    )
    processor = ResilientLogProcessor(exporter, max_queue_size=64, on_drop=lambda n, reason: None)  # type: ignore[arg-type]
    provider.add_log_record_processor(processor)
    if not direct:
        provider.add_log_record_processor(Bystander())
    bridge = OtlpBridge(provider, limits)
    for record in records if records is not None else _records():
        bridge.emit(record)
    processor.force_flush()
    processor.shutdown()
    # the path under test is the one taken: only logger.emit's records keep a Context
    assert [r.log_record.context is None for r in exporter.records] == [direct] * len(exporter.records)
    return exporter.records


def _wire(records: list[Any]) -> Any:
    request = encode_logs(records)
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                log.observed_time_unix_nano = 0  # the one field that is "now"
    return request


class TestDirectHandOff:
    def test_a_collector_receives_byte_for_byte_what_the_sdk_path_sends(self):
        records = _records()
        via_sdk = _wire(_export_through(direct=False, records=records))
        direct = _wire(_export_through(direct=True, records=records))
        assert direct.SerializeToString(deterministic=True) == via_sdk.SerializeToString(deterministic=True)
        assert len(direct.resource_logs[0].scope_logs) == 3  # one scope per logger name, as before

    def test_records_carry_trace_ids_severity_body_and_attributes(self):
        records = {r.log_record.body: r for r in _export_through(direct=True)}
        traced = records["inside a span"].log_record
        assert (format(traced.trace_id, "032x"), format(traced.span_id, "016x"), int(traced.trace_flags)) == (
            TRACE,
            SPAN,
            1,
        )
        plain = records["plain line"].log_record
        assert (plain.trace_id, plain.span_id, plain.severity_text, plain.severity_number.value) == (
            0,
            0,
            "INFO",
            9,
        )
        assert dict(records["with extras"].log_record.attributes) == {
            "code.file.path": "/srv/app.py",
            "code.function.name": "handler",
            "code.line.number": 12,
            "route": "/a/{id}",
            "status_code": 200,
            "ratio": 0.5,
            "ok": True,
        }
        assert records["failed"].log_record.attributes["exception.type"] == "ValueError"
        assert records["plain line"].resource.attributes["service.name"] == "bridge-test"

    @pytest.mark.parametrize("direct", [True, False])
    def test_observed_time_is_when_the_bridge_saw_the_record(self, direct):
        for readable in _export_through(direct=direct):
            assert readable.log_record.observed_timestamp >= readable.log_record.timestamp
