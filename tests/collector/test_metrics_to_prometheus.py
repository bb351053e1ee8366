"""Metrics end to end: the gateway's count connector and span metrics land in a real Prometheus.

A plain OpenTelemetry SDK client logs ERROR and WARNING records and makes server spans over
OTLP/HTTP with TLS; the real collector writes to Debian's Prometheus through remote write; the
test asks Prometheus over its HTTP API with PromQL, polling with a bounded deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode

from lumen_otel.testing import OTLPReceiver
from tests.collector._sdk import plain_sdk_client
from tests.collector.conftest import Collector, Prometheus, StartCollector, TLSFiles, gateway_env

pytestmark = [pytest.mark.collector, pytest.mark.prometheus, pytest.mark.integration]

COUNT_SCOPE = "github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector"
SERVICES = {"billing-svc": (3, 2, 5), "imaging-svc": (1, 4, 2)}  # errors, warnings, infos


@pytest.fixture(scope="module")
def gateway_to_prometheus(
    start_collector_for_module: StartCollector,
    tls_files: TLSFiles,
    loki_stand_in_for_module: OTLPReceiver,
    prometheus_for_module: Prometheus,
) -> Iterator[Collector]:
    """The gateway writing to the real Prometheus, after two services sent logs and spans."""
    env = gateway_env(
        tls_files,
        loki_stand_in_for_module,
        prometheus_for_module.remote_write_endpoint,
        LUMEN_COLLECTOR_INSTANCE="gateway-test-0",
    )
    gateway = start_collector_for_module(["gateway.yaml"], env)
    for service, (errors, warnings, infos) in SERVICES.items():
        with plain_sdk_client(gateway.https_endpoint, tls_files.ca_cert, service) as client:
            for level, count in ((logging.ERROR, errors), (logging.WARNING, warnings), (logging.INFO, infos)):
                for i in range(count):
                    client.logger.log(level, "event %d at level %s", i, logging.getLevelName(level))
            for status in (200, 200, 200, 404, 500):
                with client.tracer.start_as_current_span(
                    "GET /studies/{study_id}",
                    kind=SpanKind.SERVER,
                    attributes={
                        "http.request.method": "GET",
                        "http.route": "/studies/{study_id}",
                        "http.response.status_code": status,
                    },
                ) as span:
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
            client.flush()
    yield gateway


class TestLogCountsInPrometheus:
    def test_error_and_warning_counts_per_service(
        self, gateway_to_prometheus: Collector, prometheus_for_module: Prometheus
    ) -> None:
        """sum by (service_name, severity) of the count connector's series equals what each service logged."""
        query = 'sum by (service_name, severity) (lumen_collector_log_records_total{severity=~"ERROR|WARN"})'
        expected = {
            (service, severity): float(count)
            for service, (errors, warnings, _) in SERVICES.items()
            for severity, count in (("ERROR", errors), ("WARN", warnings))
        }

        def counts(result: list[dict[str, object]]) -> dict[tuple[str, str], float]:
            return {
                (r["metric"]["service_name"], r["metric"]["severity"]): float(r["value"][1])  # type: ignore[index]
                for r in result
            }

        result = prometheus_for_module.wait_for(query, lambda res: counts(res) == expected, timeout=60)
        assert expected == counts(result)

    def test_the_series_carry_the_gateway_instance_and_job(
        self, gateway_to_prometheus: Collector, prometheus_for_module: Prometheus
    ) -> None:
        """Each gateway replica writes its own series (no duplicate-sample conflicts between replicas)."""
        query = 'lumen_collector_log_records_total{service_name="billing-svc",severity="ERROR"}'
        result = prometheus_for_module.wait_for(query, lambda res: len(res) == 1, timeout=60)
        labels = dict(result[0]["metric"])
        labels.pop("instance")  # the SDK's random service.instance.id
        assert {
            "__name__": "lumen_collector_log_records_total",
            "deployment_environment_name": "test",
            "job": "billing-svc",
            "lumen_collector_instance": "gateway-test-0",
            "otel_scope_name": COUNT_SCOPE,
            "service_name": "billing-svc",
            "severity": "ERROR",
        } == labels


class TestSpanMetricsInPrometheus:
    def test_request_count_and_rate_per_service_route_and_status(
        self, gateway_to_prometheus: Collector, prometheus_for_module: Prometheus
    ) -> None:
        """Span metrics give calls per service, route and status code, and a non-zero rate."""
        query = (
            "sum by (service_name, http_route, http_response_status_code) "
            '(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"})'
        )
        expected = {
            (service, "/studies/{study_id}", code): float(n)
            for service in SERVICES
            for code, n in (("200", 3), ("404", 1), ("500", 1))
        }

        def calls(result: list[dict[str, object]]) -> dict[tuple[str, str, str], float]:
            return {
                (m["service_name"], m["http_route"], m["http_response_status_code"]): float(r["value"][1])  # type: ignore[index]
                for r in result
                for m in [r["metric"]]
            }

        result = prometheus_for_module.wait_for(query, lambda res: calls(res) == expected, timeout=60)
        assert expected == calls(result)

        # rate() needs two samples of a series: span metrics are re-flushed every second.
        rate_query = (
            'sum by (service_name) (rate(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"}[1m]))'
        )
        rates = prometheus_for_module.wait_for(rate_query, lambda res: len(res) == 2, timeout=60)
        assert {"billing-svc", "imaging-svc"} == {r["metric"]["service_name"] for r in rates}
        assert all(float(r["value"][1]) > 0 for r in rates)

    def test_errors_and_latency_histogram(
        self, gateway_to_prometheus: Collector, prometheus_for_module: Prometheus
    ) -> None:
        """Errors (status_code=STATUS_CODE_ERROR) and a duration histogram with buckets per service."""
        expected = {("billing-svc", 1.0), ("imaging-svc", 1.0)}

        def per_service(result: list[dict[str, object]]) -> set[tuple[str, float]]:
            return {(r["metric"]["service_name"], float(r["value"][1])) for r in result}  # type: ignore[index]

        errors = prometheus_for_module.wait_for(
            'sum by (service_name) (traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"})',
            lambda res: per_service(res) == expected,
            timeout=60,
        )
        assert expected == per_service(errors)
        p95 = prometheus_for_module.wait_for(
            "histogram_quantile(0.95, sum by (service_name, le) "
            "(traces_span_metrics_duration_milliseconds_bucket))",
            lambda res: len(res) == 2,
            timeout=60,
        )
        assert {"billing-svc", "imaging-svc"} == {r["metric"]["service_name"] for r in p95}
