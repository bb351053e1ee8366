"""Redaction for metrics: data point and exemplar attributes, and resource attributes.

A metric attribute is as easy a place for PHI as a span attribute: ``http.target`` with
``/patients/123-45-6789``, a team's own ``meter.create_counter(...).add(1, {"patient": mrn})``.
Every lumen-otel metric exporter (OTLP over HTTP or gRPC, the console one) sends
:class:`MetricRedaction`'s copy of each batch: attribute keys and values through the same
:class:`~lumen_otel._redaction.spans.AttributeScrubber` that spans use (values by key name and by
value, ``bytes``, URL path segments, keys), resource attributes except the service's own names.

Cost: a metric stream keeps one attribute mapping for its whole life and hands the same object to
every export (SDK 1.45), so the result is remembered per mapping object (bounded): an export in
which no stream is new costs one dictionary look-up per data point, and a clean batch is passed
on as it is, without a copy. Metric names, descriptions, units and meter names are code, not
data, and are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExportResult, MetricsData

from lumen_otel._redaction import Redactor, get_default_redactor
from lumen_otel._redaction.spans import AttributeScrubber, scrubber_for

__all__ = ["MetricRedaction", "RedactingConsoleMetricExporter"]

_MEMO_MAX = 8192


class MetricRedaction:
    """Makes the redacted copy of a :class:`MetricsData` batch (the batch itself when clean).

    Args:
        redactor: the redactor to use; by default the process-wide one at export time, as
            :class:`~lumen_otel._redaction.spans.RedactingSpanExporter` does.
    """

    __slots__ = ("_memo", "_redactor", "_scrubber")

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._redactor = redactor
        self._scrubber: AttributeScrubber | None = None
        #: id(attribute mapping) -> (that mapping, its redacted form or itself)
        self._memo: dict[int, tuple[Mapping[str, Any], Mapping[str, Any] | None]] = {}

    def _scrub(self) -> AttributeScrubber:
        redactor = self._redactor or get_default_redactor()
        scrubber = self._scrubber
        if scrubber is None or scrubber.redactor is not redactor:
            scrubber = self._scrubber = scrubber_for(redactor)
            self._memo.clear()
        return scrubber

    def _attributes(self, scrub: AttributeScrubber, attributes: Mapping[str, Any] | None) -> Any:
        if not attributes:
            return attributes
        memo = self._memo
        hit = memo.get(id(attributes))
        if hit is not None and hit[0] is attributes:
            return hit[1]
        redacted = scrub.attributes(attributes)
        if len(memo) >= _MEMO_MAX:
            memo.clear()  # bounded: endless distinct series are simply checked again
        memo[id(attributes)] = (attributes, redacted)
        return redacted

    def _point(self, scrub: AttributeScrubber, point: Any) -> Any:
        attributes = self._attributes(scrub, point.attributes)
        changes: dict[str, Any] = {}
        if attributes is not point.attributes:
            changes["attributes"] = attributes
        exemplars = getattr(point, "exemplars", None)
        if exemplars:
            redacted = [
                (e, scrub.attributes(e.filtered_attributes)) for e in exemplars
            ]  # exemplars are new objects on every export: not remembered
            if any(attrs is not e.filtered_attributes for e, attrs in redacted):
                changes["exemplars"] = [
                    dataclasses.replace(e, filtered_attributes=attrs) for e, attrs in redacted
                ]
        return dataclasses.replace(point, **changes) if changes else point

    def _metric(self, scrub: AttributeScrubber, metric: Any) -> Any:
        data = metric.data
        points = getattr(data, "data_points", None)
        if points is None or not dataclasses.is_dataclass(data) or isinstance(data, type):
            return metric
        redacted = [self._point(scrub, p) for p in points]
        if all(new is old for new, old in zip(redacted, points, strict=True)):
            return metric
        return dataclasses.replace(metric, data=dataclasses.replace(data, data_points=redacted))

    def __call__(self, data: MetricsData) -> MetricsData:
        """``data`` with PHI removed from its attributes; ``data`` itself when there is none."""
        scrub = self._scrub()
        changed = False
        resource_metrics = []
        for rm in data.resource_metrics:
            resource = scrub.resource(rm.resource)
            scope_metrics = []
            rm_changed = resource is not rm.resource
            for sm in rm.scope_metrics:
                metrics = [self._metric(scrub, m) for m in sm.metrics]
                if all(new is old for new, old in zip(metrics, sm.metrics, strict=True)):
                    scope_metrics.append(sm)
                else:
                    rm_changed = True
                    scope_metrics.append(dataclasses.replace(sm, metrics=metrics))
            if rm_changed:
                changed = True
                resource_metrics.append(
                    dataclasses.replace(rm, resource=resource, scope_metrics=scope_metrics)
                )
            else:
                resource_metrics.append(rm)
        return MetricsData(resource_metrics=resource_metrics) if changed else data


class RedactingConsoleMetricExporter(ConsoleMetricExporter):
    """The SDK's console metric exporter, printing :class:`MetricRedaction`'s copy of each batch
    (``OTEL_METRICS_EXPORTER=console``: stdout is collected like any other sink)."""

    def __init__(self, *args: Any, redactor: Redactor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redaction = MetricRedaction(redactor)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return super().export(self.redaction(metrics_data), timeout_millis, **kwargs)
