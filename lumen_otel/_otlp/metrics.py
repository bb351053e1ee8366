"""OTLP metric export that text with lone surrogates cannot stop.

A lone surrogate (what ``json.loads('"\\ud800"')`` gives) cannot be written as UTF-8. Upstream's
metrics encoder (SDK 1.45.1) then drops an attribute holding one in its key or value (with a
traceback on every export), and a metric description or meter name holding one makes
``encode_metrics`` fail: every cumulative export of the process fails, clean metrics too. Here a
batch holding such text is sent as a copy with U+FFFD in its place (the SDK's public data classes,
``dataclasses.replace``); a clean batch is handed to upstream's ``export`` as it is.

Before that, each batch goes through :class:`~lumen_otel._redaction.metrics.MetricRedaction`: data
point, exemplar and resource attributes leave the process redacted, as span attributes do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from lumen_otel._guard import report_rate_limited
from lumen_otel._otlp.wire import _SURROGATES, clean_attributes, clean_text
from lumen_otel._redaction import Redactor
from lumen_otel._redaction.metrics import MetricRedaction

__all__ = ["SanitizingMetricExporter", "clean_metrics_data", "grpc_metric_exporter"]


def _dirty(value: Any) -> bool:
    """Whether ``value`` (a string, attribute mapping or sequence) holds a lone surrogate."""
    kind = type(value)
    if kind is str:
        return not value.isascii() and _SURROGATES.search(value) is not None
    if isinstance(value, Mapping):
        return any(_dirty(k) or _dirty(v) for k, v in value.items())
    if kind is tuple or kind is list:
        return any(_dirty(v) for v in value)
    return False


def _text(value: str | None) -> str | None:
    return clean_text(value) if value else value


def _point(point: Any) -> Any:
    changes: dict[str, Any] = {"attributes": clean_attributes(point.attributes)}
    exemplars = getattr(point, "exemplars", None)
    if exemplars:
        changes["exemplars"] = [
            dataclasses.replace(e, filtered_attributes=clean_attributes(e.filtered_attributes))
            for e in exemplars
        ]
    return dataclasses.replace(point, **changes)


def _metric(metric: Any) -> Any:
    data = metric.data
    points = getattr(data, "data_points", None)
    if points is not None and dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.replace(data, data_points=[_point(p) for p in points])
    return dataclasses.replace(
        metric,
        name=clean_text(metric.name),
        description=_text(metric.description),
        unit=_text(metric.unit),
        data=data,
    )


def _scope(scope: InstrumentationScope) -> InstrumentationScope:
    return InstrumentationScope(
        clean_text(scope.name),
        _text(scope.version),
        _text(scope.schema_url),
        clean_attributes(scope.attributes),
    )


def _needs_cleaning(data: MetricsData) -> bool:
    for rm in data.resource_metrics:
        if _dirty(rm.resource.attributes) or _dirty(rm.schema_url):
            return True
        for sm in rm.scope_metrics:
            scope = sm.scope
            if _dirty(scope.name) or _dirty(scope.version) or _dirty(scope.attributes):
                return True
            if _dirty(sm.schema_url) or _dirty(scope.schema_url):
                return True
            for metric in sm.metrics:
                if _dirty(metric.name) or _dirty(metric.description) or _dirty(metric.unit):
                    return True
                for point in getattr(metric.data, "data_points", ()):
                    if _dirty(point.attributes):
                        return True
                    for exemplar in getattr(point, "exemplars", None) or ():
                        if _dirty(exemplar.filtered_attributes):
                            return True
    return False


def clean_metrics_data(data: MetricsData) -> MetricsData | None:
    """A copy of ``data`` with every lone surrogate in its text (resource and scope attributes,
    scope name and version, metric names, descriptions and units, data point and exemplar
    attribute keys and values) replaced by U+FFFD; ``None`` when it holds none (``data`` is left
    as it is either way)."""
    if not _needs_cleaning(data):
        return None
    return MetricsData(
        resource_metrics=[
            dataclasses.replace(
                rm,
                resource=Resource(
                    clean_attributes(rm.resource.attributes) or {}, _text(rm.resource.schema_url)
                ),
                schema_url=_text(rm.schema_url) or "",
                scope_metrics=[
                    dataclasses.replace(
                        sm,
                        scope=_scope(sm.scope),
                        schema_url=_text(sm.schema_url) or "",
                        metrics=[_metric(m) for m in sm.metrics],
                    )
                    for sm in rm.scope_metrics
                ],
            )
            for rm in data.resource_metrics
        ]
    )


def encodable(data: MetricsData) -> MetricsData:
    """``data``, or its cleaned copy (with a rate-limited warning) when it holds lone surrogates."""
    cleaned = clean_metrics_data(data)
    if cleaned is None:
        return data
    report_rate_limited(
        "otlp-metrics-sanitized",
        "OTLP metrics batch held text that is not valid Unicode (lone surrogates): sent with U+FFFD "
        "in their place",
    )
    return cleaned


class SanitizingMetricExporter(OTLPMetricExporter):
    """The upstream OTLP/HTTP metric exporter sending redacted batches
    (:class:`~lumen_otel._redaction.metrics.MetricRedaction`, with ``redactor`` or the process-wide
    one); a batch holding lone surrogates is sent with U+FFFD in their place
    (:func:`clean_metrics_data`) instead of losing attributes or failing to encode."""

    def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redaction = MetricRedaction(redactor)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        data = encodable(self.redaction(metrics_data))
        result: MetricExportResult = super().export(data, timeout_millis, **kwargs)
        return result


@functools.cache
def grpc_metric_exporter() -> type[Any]:
    """The upstream OTLP/gRPC metric exporter with the same passes (imported only for gRPC)."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

    class SanitizingGrpcMetricExporter(Grpc):
        def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.redaction = MetricRedaction(redactor)

        def export(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            data = encodable(self.redaction(metrics_data))
            result: MetricExportResult = super().export(data, timeout_millis, **kwargs)
            return result

    return SanitizingGrpcMetricExporter
