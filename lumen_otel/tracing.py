"""lumen-otel's tracing pieces, for a service that builds its own OpenTelemetry providers.

:func:`lumen_otel.bootstrap` installs all of them; import them to assemble a
``TracerProvider`` by hand::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from lumen_otel.tracing import (
        CorrelationIdSpanProcessor, RedactingSpanExporter, UuidTraceIdGenerator,
    )

    provider = TracerProvider(id_generator=UuidTraceIdGenerator())
    provider.add_span_processor(CorrelationIdSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(my_exporter)))

- :class:`UuidTraceIdGenerator`: trace ids that are UUIDv4s (so the correlation ID of a request
  is its trace id), with the right-most 56 bits random;
- :class:`CorrelationIdSpanProcessor`: puts the request's correlation ID on its spans;
- :class:`RedactingSpanExporter`: redacts span names, attributes, events and status messages
  before the exporter it wraps sees them;
- :class:`CorrelationIdPropagator`: the ``X-Correlation-ID`` propagator (also registered as the
  ``lumen_correlation`` entry point for ``OTEL_PROPAGATORS``).
"""

from __future__ import annotations

from lumen_otel._correlation.context import CorrelationIdSpanProcessor
from lumen_otel._correlation.propagator import CorrelationIdPropagator
from lumen_otel._correlation.trace_ids import UuidTraceIdGenerator
from lumen_otel._redaction.spans import RedactingSpanExporter

__all__ = [
    "CorrelationIdPropagator",
    "CorrelationIdSpanProcessor",
    "RedactingSpanExporter",
    "UuidTraceIdGenerator",
]
