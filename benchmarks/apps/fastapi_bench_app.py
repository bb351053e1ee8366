"""The FastAPI service bench_http.py drives: one route that logs one line, in three set-ups.

BENCH_STACK selects the set-up (the launcher does lumen-otel's, so the app does nothing for it):
  bare   stdlib logging to stdout (the service before any telemetry)
  lumen  nothing here: run under ``opentelemetry-instrument`` with the lumen distro
  instr  bare + the upstream instrumentation alone, exporting nothing (the floor of any OTel stack)
  peer   what a team assembles from upstream parts: opentelemetry-instrumentation-fastapi
         (defaults), asgi-correlation-id, the OpenTelemetry logging handler on root, OTLP/HTTP
         exporters for traces, metrics and logs with the SDK batch processors
"""

from __future__ import annotations

import logging
import os
import sys

from fastapi import FastAPI

STACK = os.environ.get("BENCH_STACK", "bare")
app = FastAPI()
log = logging.getLogger("app.items")


@app.get("/items/{item_id}")
def get_item(item_id: int) -> dict[str, int]:
    log.info("item %d looked up", item_id, extra={"item_id": item_id})
    return {"item_id": item_id}


def _peer() -> None:
    from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware
    from opentelemetry import metrics, trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    resource = Resource.create({"service.name": "bench-peer"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(
            resource=resource,
            metric_readers=[
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"))
            ],
        )
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"))
    )
    set_logger_provider(logger_provider)

    console = logging.StreamHandler(sys.stdout)
    console.addFilter(CorrelationIdFilter())
    console.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(console)
    root.addHandler(LoggingHandler(logger_provider=logger_provider))
    root.setLevel(logging.INFO)
    app.add_middleware(CorrelationIdMiddleware)
    FastAPIInstrumentor.instrument_app(app)


def _instr() -> None:
    """The floor of any stack built on the upstream instrumentation: FastAPIInstrumentor (send and
    receive spans off, as lumen-otel runs it) with SDK providers that export nothing."""
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    metrics.set_meter_provider(MeterProvider())
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])


if STACK in ("bare", "instr"):
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if STACK == "instr":
        _instr()
elif STACK == "peer":
    _peer()
