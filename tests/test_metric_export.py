"""Metric export that one attribute holding a lone surrogate cannot spoil.

A lone surrogate (``json.loads('"\\ud800"')``) cannot be written as UTF-8. With upstream's
OTLP/HTTP metric exporter (SDK 1.45.1) an attribute holding one is dropped from its data point on
every export, and a metric description holding one makes every cumulative export fail to encode,
clean metrics too, for the life of the process. Lumen's exporter sends such text with U+FFFD.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader

from lumen_otel._config.settings import load_settings
from lumen_otel._otlp.exporters import build_exporter, build_signal_exporter
from lumen_otel._otlp.metrics import SanitizingMetricExporter, clean_metrics_data
from lumen_otel.testing import OTLPReceiver

LONE = json.loads('"\\ud800"')
LOW = json.loads('"\\udc00"')


class _Recording:
    """Keeps each ``export`` result of the exporter it is mixed into."""

    results: list[MetricExportResult]

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        result: MetricExportResult = super().export(metrics_data, timeout_millis, **kwargs)  # type: ignore[misc]
        self.results.append(result)
        return result


class RecordingLumen(_Recording, SanitizingMetricExporter):
    results: list[MetricExportResult] = []


class RecordingUpstream(_Recording, OTLPMetricExporter):
    results: list[MetricExportResult] = []


def _export_twice(
    exporter: Any, receiver: OTLPReceiver
) -> tuple[list[MetricExportResult], list[list[dict[str, Any]]]]:
    """A real provider and periodic reader: clean and bad counters, two cumulative exports; each
    export's results and the points the receiver got from it."""
    exporter.results = []
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("metric-export-test")
    clean = meter.create_counter("clean.requests")
    bad = meter.create_counter("bad.requests")
    described = meter.create_counter("described.requests", description="from " + LONE)
    seen: list[list[dict[str, Any]]] = []
    try:
        for _ in range(2):
            clean.add(1, {"route": "/ok"})
            bad.add(1, {"route": "/x" + LONE})
            bad.add(1, {LOW + "key": "v"})
            described.add(1)
            before = len(receiver.metrics)
            provider.force_flush()
            seen.append(receiver.metrics[before:])
        results = list(exporter.results)
    finally:
        provider.shutdown()
    return results, seen


@pytest.fixture
def receiver() -> Any:
    with OTLPReceiver() as metric_receiver:
        yield metric_receiver


def test_a_lone_surrogate_is_sent_as_u_fffd_on_every_export(receiver):
    exporter = RecordingLumen(endpoint=receiver.endpoint + "/v1/metrics")
    results, seen = _export_twice(exporter, receiver)
    assert results == [MetricExportResult.SUCCESS, MetricExportResult.SUCCESS]
    for number, points in enumerate(seen, start=1):
        by_series = {(p["name"], tuple(sorted(p["attributes"].items()))): p["value"] for p in points}
        assert by_series == {
            ("clean.requests", (("route", "/ok"),)): number,
            ("bad.requests", (("route", "/x\ufffd"),)): number,
            ("bad.requests", (("\ufffdkey", "v"),)): number,
            ("described.requests", ()): number,
        }


def test_upstreams_exporter_loses_the_same_data(receiver):
    """The difference: upstream's exporter fails every export of this data (the description cannot
    be encoded), so the clean counter is lost too."""
    results, seen = _export_twice(RecordingUpstream(endpoint=receiver.endpoint + "/v1/metrics"), receiver)
    assert results == [MetricExportResult.FAILURE, MetricExportResult.FAILURE]
    assert seen == [[], []]


def test_upstreams_exporter_drops_an_attribute_holding_a_lone_surrogate(receiver):
    exporter = OTLPMetricExporter(endpoint=receiver.endpoint + "/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    try:
        provider.get_meter("m").create_counter("bad.requests").add(1, {"route": "/x" + LONE})
        provider.force_flush()
        points = list(receiver.metrics)
    finally:
        provider.shutdown()
    assert [(p["name"], p["attributes"]) for p in points] == [("bad.requests", {})]


def test_clean_data_is_handed_on_as_it_is():
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1, {"k": "v\u00e9"})
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    assert clean_metrics_data(data) is None


def test_lumens_metric_exporter_is_the_sanitizing_one(receiver):
    settings = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
    assert isinstance(build_exporter(settings, "metrics"), SanitizingMetricExporter)
    assert isinstance(build_signal_exporter(settings, "metrics"), SanitizingMetricExporter)


def test_the_grpc_metric_exporter_cleans_too():
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    )
    exporter = build_exporter(settings, "metrics")
    try:
        assert type(exporter).__name__ == "SanitizingGrpcMetricExporter"
    finally:
        exporter.shutdown()
