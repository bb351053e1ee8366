"""Plain OpenTelemetry SDK clients (no lumen-otel at all) that export to the collector over TLS.

They play "a service that never went through lumen's in-process redactor": whatever PHI they
log reaches the collector as is, so the collector's own rules are what the tests measure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer


@dataclass
class PlainSDKClient:
    """A stdlib logger and a tracer wired to the collector with the plain SDK."""

    logger: logging.Logger
    tracer: Tracer
    logger_provider: LoggerProvider
    tracer_provider: TracerProvider

    def flush(self) -> None:
        assert self.tracer_provider.force_flush(10_000)
        assert self.logger_provider.force_flush(10_000)


@contextmanager
def plain_sdk_client(endpoint: str, ca_file: Path, service_name: str) -> Iterator[PlainSDKClient]:
    """Yield a client exporting logs and spans to ``endpoint`` (https) trusting ``ca_file``."""
    resource = Resource.create({"service.name": service_name, "deployment.environment.name": "test"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", certificate_file=str(ca_file), timeout=5),
            schedule_delay_millis=100,
        )
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", certificate_file=str(ca_file), timeout=5),
            schedule_delay_millis=100,
        )
    )
    logger = logging.getLogger(f"plain-sdk.{service_name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider)
    logger.addHandler(handler)
    client = PlainSDKClient(logger, tracer_provider.get_tracer("plain-sdk"), logger_provider, tracer_provider)
    try:
        yield client
    finally:
        logger.removeHandler(handler)
        tracer_provider.shutdown()
        logger_provider.shutdown()
