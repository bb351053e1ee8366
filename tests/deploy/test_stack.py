"""The real Prometheus, started with deploy/'s own config, accepts the real collector's writes.

Prometheus runs with deploy/compose/prometheus.yml and the flags compose.yaml gives it
(remote-write receiver on, deploy/prometheus/rules loaded); only ports and paths are moved to
this machine. The collector is bin/lumen-otelcol with collector-config/gateway.yaml and TLS
from deploy/compose/make-certs.sh. Loki is replaced by a loopback OTLP receiver
(lumen_otel.testing.OTLPReceiver) standing in for Loki's /otlp endpoint.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lumen_otel.testing import OTLPReceiver
from tests.conftest import free_port, wait_for_port
from tests.deploy.conftest import (
    COLLECTOR_CONFIG,
    COLLECTOR_TELEMETRY_SERIES,
    Certificates,
    RunningPrometheus,
    collector_binary,
    collector_env,
    load_yaml,
)

pytestmark = [pytest.mark.integration, pytest.mark.collector, pytest.mark.prometheus]

GATEWAY = COLLECTOR_CONFIG / "gateway.yaml"
SERVICE = "deploy_smoke"
DEADLINE = 90.0


def _poll(probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float = DEADLINE) -> Any:
    """Call ``probe`` until ``done`` accepts its result or ``timeout`` passes; return the last result."""
    deadline = time.monotonic() + timeout
    result = probe()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(1.0)
        result = probe()
    return result


def _by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def _telemetry_port_variable() -> str | None:
    """The variable gateway.yaml reads for its own metrics port, if it has one."""
    import re

    text = GATEWAY.read_text(encoding="utf-8")
    match = re.search(r"port:\s*\$\{env:([A-Z0-9_]+)(?::-\d+)?\}", text)
    return match.group(1) if match else None


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the exporters' certificate_file count: requests prefers REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    from the environment over a session's verify (https://github.com/psf/requests/issues/3829)."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def certs(session_certs: Certificates) -> Certificates:
    return session_certs


@pytest.fixture
def gateway(tmp_path: Path, certs: Certificates) -> Iterator[Callable[..., dict[str, int]]]:
    """Start bin/lumen-otelcol with collector-config/gateway.yaml; returns its ports."""
    binary = collector_binary()
    procs: list[subprocess.Popen[bytes]] = []

    def start(certs: Certificates = certs, **env_values: str) -> dict[str, int]:
        ports = {"grpc": free_port(), "http": free_port()}
        env_values = {
            "LUMEN_COLLECTOR_GRPC_PORT": str(ports["grpc"]),
            "LUMEN_COLLECTOR_HTTP_PORT": str(ports["http"]),
            **env_values,
        }
        log = (tmp_path / "collector.log").open("wb")
        proc = subprocess.Popen(
            [str(binary), f"--config={GATEWAY}"],
            env=collector_env(GATEWAY, certs, **env_values),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        procs.append(proc)
        try:
            wait_for_port(ports["http"], timeout=30, proc=None)
        except AssertionError:
            raise AssertionError((tmp_path / "collector.log").read_text(errors="replace")) from None
        if proc.poll() is not None:
            raise AssertionError((tmp_path / "collector.log").read_text(errors="replace"))
        return ports

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _send_telemetry(http_port: int, certs: Certificates) -> None:
    """Spans and log records (2 errors, 1 warning, 1 info) from the plain OpenTelemetry SDK, over mTLS."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tls = {
        "certificate_file": str(certs.ca),
        "client_certificate_file": str(certs.client_cert),
        "client_key_file": str(certs.client_key),
    }
    base = f"https://127.0.0.1:{http_port}"
    resource = Resource.create({"service.name": SERVICE, "deployment.environment.name": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces", **tls))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs", **tls))
    )
    tracer = tracer_provider.get_tracer("tests.deploy")
    logger = logger_provider.get_logger("tests.deploy")
    try:
        for i, (severity, text) in enumerate(
            [
                (SeverityNumber.ERROR, "ERROR"),
                (SeverityNumber.ERROR, "ERROR"),
                (SeverityNumber.WARN, "WARNING"),
                (SeverityNumber.INFO, "INFO"),
            ]
        ):
            with tracer.start_as_current_span("POST /exams", kind=SpanKind.SERVER) as span:
                if severity == SeverityNumber.ERROR:
                    span.set_status(Status(StatusCode.ERROR))
                logger.emit(
                    severity_number=severity,
                    severity_text=text,
                    body=f"deploy smoke record {i}",
                    attributes={"correlation_id": f"deploy-smoke-{i}"},
                )
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()


def _deploy_promql() -> list[str]:
    """The dashboard's PromQL (Grafana variables filled in) and every rule expression."""
    import json

    from tests.deploy.conftest import GRAFANA, RULES_DIR

    dashboard = json.loads((GRAFANA / "dashboards" / "lumen-services.json").read_text(encoding="utf-8"))
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == "prometheus"
    ]
    exprs += [
        rule["expr"]
        for path in sorted(RULES_DIR.glob("*.yaml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]
    grafana = {"$__rate_interval": "1m", "$__range": "5m", "$service": ".+"}
    for variable, value in grafana.items():
        exprs = [e.replace(variable, value) for e in exprs]
    return exprs


def _query_error(prometheus: RunningPrometheus, expr: str) -> str | None:
    import urllib.error

    try:
        body = prometheus.api("/api/v1/query", query=expr)
    except urllib.error.HTTPError as exc:
        return exc.read().decode(errors="replace")
    return None if body.get("status") == "success" else str(body)


class TestPrometheusAcceptsTheCollectorsWrites:
    def test_series_from_the_collector_appear_in_prometheus(
        self,
        start_prometheus: Callable[..., RunningPrometheus],
        gateway: Callable[..., dict[str, int]],
        certs: Certificates,
    ) -> None:
        """Log counts and spanmetrics written by the collector are queryable in deploy/'s Prometheus,
        it scrapes the collector's own metrics, and every dashboard and rule query runs there."""
        telemetry_port = free_port()
        with OTLPReceiver() as loki_stand_in:
            # compose's scrape target collector:8888 becomes the collector's telemetry port here
            prometheus = start_prometheus({"collector": telemetry_port})
            ports = gateway(
                LOKI_OTLP_ENDPOINT=f"{loki_stand_in.endpoint}/otlp",
                PROMETHEUS_REMOTE_WRITE_ENDPOINT=f"{prometheus.url}/api/v1/write",
                LUMEN_COLLECTOR_TELEMETRY_PORT=str(telemetry_port),
            )
            _send_telemetry(ports["http"], certs)
            # fails fast (TLS, pipeline) before the longer Prometheus polls
            assert loki_stand_in.wait_for(lambda r: len(r.logs) >= 4, timeout=30), "no logs reached Loki"

            expected_logs = {"ERROR": 2.0, "WARN": 1.0}
            logs = _poll(
                lambda: _by_label(
                    prometheus.query(
                        f'sum by (severity) (lumen_collector_log_records_total{{service_name="{SERVICE}"}})'
                    ),
                    "severity",
                ),
                lambda counts: expected_logs.items() <= counts.items(),
            )
            expected_calls = {"STATUS_CODE_ERROR": 2.0, "STATUS_CODE_UNSET": 2.0}
            calls = _poll(
                lambda: _by_label(
                    prometheus.query(
                        "sum by (status_code) (traces_span_metrics_calls_total"
                        f'{{service_name="{SERVICE}", span_kind="SPAN_KIND_SERVER"}})'
                    ),
                    "status_code",
                ),
                lambda counts: counts == expected_calls,
            )

            # the collector's own metrics, scraped by the job the pipeline alerts read
            scraped = _poll(
                lambda: _by_label(
                    prometheus.query(
                        'sum by (job) (otelcol_receiver_accepted_log_records{job="lumen-otelcol"})'
                        ' * on (job) group_left () max by (job) (up{job="lumen-otelcol"})'
                    ),
                    "job",
                ),
                lambda sent: sent.get("lumen-otelcol", 0) >= 4,
            )

            # the collector self-telemetry the dashboard and rules read is really served
            missing_telemetry = sorted(
                name
                for name in COLLECTOR_TELEMETRY_SERIES
                if not prometheus.query(f'{name}{{job="lumen-otelcol"}}')
            )
            # every dashboard and rule query is valid PromQL for the real engine, over real series
            invalid = {
                expr: error
                for expr in _deploy_promql()
                if (error := _query_error(prometheus, expr)) is not None
            }

        assert {k: logs.get(k) for k in expected_logs} == expected_logs, logs
        assert expected_calls == calls
        assert {"lumen-otelcol": 4.0} == scraped
        assert {} == invalid
        assert [] == missing_telemetry

    def test_deploys_alert_rules_are_loaded(self, start_prometheus: Callable[..., RunningPrometheus]) -> None:
        """Prometheus started from deploy/'s config has the lumen rule groups, all healthy."""
        prometheus = start_prometheus()
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        expected = {
            g["name"]
            for g in load_yaml(Path(__file__).parents[2] / "deploy/prometheus/rules/lumen-alerts.yaml")[
                "groups"
            ]
        }
        assert expected == {g["name"] for g in groups}
        assert [] == [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]


def _trustme_certificates(directory: Path) -> Certificates:
    """One CA; a certificate for 127.0.0.1 usable as server and client (like the agent's in Kubernetes)."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")  # trustme sets both serverAuth and clientAuth
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    leaf.cert_chain_pems[0].write_to_path(str(directory / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(directory / "tls.key"))
    return Certificates(
        directory / "ca.crt",
        directory / "tls.crt",
        directory / "tls.key",
        directory / "tls.crt",
        directory / "tls.key",
    )


class TestNodeAgent:
    def test_agent_forwards_to_the_gateway_over_mutual_tls(
        self,
        tmp_path: Path,
        start_prometheus: Callable[..., RunningPrometheus],
        gateway: Callable[..., dict[str, int]],
    ) -> None:
        """components/agent/agent.yaml runs: service → agent → gateway (mTLS) → Prometheus."""
        from tests.deploy.conftest import K8S

        certs = _trustme_certificates(tmp_path / "trustme")
        agent_config = K8S / "components" / "agent" / "agent.yaml"
        with OTLPReceiver() as loki_stand_in:
            prometheus = start_prometheus()
            ports = gateway(
                certs=certs,
                LOKI_OTLP_ENDPOINT=f"{loki_stand_in.endpoint}/otlp",
                PROMETHEUS_REMOTE_WRITE_ENDPOINT=f"{prometheus.url}/api/v1/write",
            )
            agent_port = free_port()
            agent_log = tmp_path / "agent.log"
            with agent_log.open("wb") as log:
                agent = subprocess.Popen(
                    [str(collector_binary()), f"--config={agent_config}"],
                    env=collector_env(
                        agent_config,
                        certs,
                        LUMEN_GATEWAY_ENDPOINT=f"https://127.0.0.1:{ports['http']}",
                        LUMEN_COLLECTOR_HTTP_PORT=str(agent_port),
                    ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_for_port(agent_port, timeout=30, proc=None)
                _send_telemetry(agent_port, certs)
                calls = _poll(
                    lambda: _by_label(
                        prometheus.query(f'sum(traces_span_metrics_calls_total{{service_name="{SERVICE}"}})'),
                        "",
                    ),
                    lambda counts: counts.get("") == 4.0,
                )
            finally:
                agent.terminate()
                agent.wait(timeout=20)
        assert {"": 4.0} == calls, agent_log.read_text(errors="replace")
