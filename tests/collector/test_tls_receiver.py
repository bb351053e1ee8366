"""The gateway's OTLP receivers speak TLS only, to clients trusting its CA (with mTLS: that it trusts)."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GRPCLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from lumen_otel.testing import OTLPReceiver
from tests.collector.conftest import Collector, StartCollector, TLSFiles, gateway_env

pytestmark = [pytest.mark.collector, pytest.mark.integration]


def export_request(body: str) -> bytes:
    """One OTLP log record as the protobuf an OTLP/HTTP client posts."""
    record = LogRecord(
        body=AnyValue(string_value=body),
        severity_text="INFO",
        severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
    )
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="tls-probe"))])
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=[record])])]
    )
    return bytes(request.SerializeToString())


def post_logs(url: str, body: str, verify: ssl.SSLContext | bool, cert: tuple[str, str] | None = None) -> int:
    context = verify
    if cert is not None and isinstance(context, ssl.SSLContext):
        context.load_cert_chain(*cert)
    with httpx.Client(verify=context, timeout=5, trust_env=False) as client:
        response = client.post(
            f"{url}/v1/logs", content=export_request(body), headers={"Content-Type": "application/x-protobuf"}
        )
    return response.status_code


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture
def gateway(start_collector: StartCollector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver) -> Collector:
    return start_collector(["gateway.yaml"], gateway_env(tls_files, loki_stand_in))


class TestServerTLS:
    def test_a_client_trusting_the_gateway_ca_is_accepted(
        self, gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        """The control case: the right CA gets a 200 and the record reaches Loki's stand-in."""
        status = post_logs(gateway.https_endpoint, "accepted over TLS", trusting(tls_files.ca_cert))
        assert loki_stand_in.wait_for(lambda r: len(r.logs) == 1, timeout=10)
        assert (200, ["accepted over TLS"]) == (status, [r.body for r in loki_stand_in.logs])

    def test_a_plain_http_client_is_refused(self, gateway: Collector, loki_stand_in: OTLPReceiver) -> None:
        """Cleartext OTLP/HTTP is refused and nothing is forwarded.

        Go answers 400 'HTTP request to an HTTPS server' and closes; when the close races the
        unread request body the kernel sends a reset instead, which the client sees before the
        400. Both are a refusal.
        """
        with httpx.Client(timeout=5, trust_env=False) as client:
            try:
                response = client.post(
                    f"http://127.0.0.1:{gateway.http_port}/v1/logs",
                    content=export_request("sent in clear text"),
                    headers={"Content-Type": "application/x-protobuf"},
                )
            except (httpx.ReadError, httpx.RemoteProtocolError):
                response = None
        if response is not None:
            assert (400, True) == (response.status_code, "HTTPS server" in response.text)
        assert not loki_stand_in.wait_for(lambda r: len(r.logs) > 0, timeout=2)

    def test_a_client_trusting_another_ca_is_refused(
        self, gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        """A client that does not trust the gateway's CA fails certificate verification."""
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            post_logs(gateway.https_endpoint, "wrong CA", trusting(tls_files.other_ca_cert))
        assert not loki_stand_in.wait_for(lambda r: len(r.logs) > 0, timeout=2)

    def test_grpc_clients_use_tls_too(
        self, gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        """The OTLP/gRPC receiver uses the same certificate; an SDK gRPC exporter trusting the CA delivers."""
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.resources import Resource as SDKResource

        credentials = grpc.ssl_channel_credentials(root_certificates=tls_files.ca_cert.read_bytes())
        exporter = GRPCLogExporter(
            endpoint=f"127.0.0.1:{gateway.grpc_port}", credentials=credentials, timeout=5
        )
        provider = LoggerProvider(resource=SDKResource.create({"service.name": "grpc-probe"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        provider.get_logger("grpc-probe").emit(body="over gRPC with TLS", severity_text="INFO")
        provider.shutdown()
        assert loki_stand_in.wait_for(lambda r: len(r.logs) == 1, timeout=10), gateway.output()
        assert [("grpc-probe", "over gRPC with TLS")] == [
            (r.resource["service.name"], r.body) for r in loki_stand_in.logs
        ]


class TestMutualTLS:
    @pytest.fixture
    def mtls_gateway(
        self, start_collector: StartCollector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> Collector:
        env = gateway_env(tls_files, loki_stand_in, LUMEN_COLLECTOR_CLIENT_CA_FILE=str(tls_files.ca_cert))
        return start_collector(["gateway.yaml"], env)

    def test_with_a_client_ca_a_client_without_certificate_is_refused(
        self, mtls_gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        """LUMEN_COLLECTOR_CLIENT_CA_FILE turns on mTLS: no client certificate, no data."""
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            post_logs(mtls_gateway.https_endpoint, "no client cert", trusting(tls_files.ca_cert))
        assert not loki_stand_in.wait_for(lambda r: len(r.logs) > 0, timeout=2)

    def test_with_a_client_ca_a_client_with_a_signed_certificate_is_accepted(
        self, mtls_gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        cert = (str(tls_files.client_cert), str(tls_files.client_key))
        status = post_logs(mtls_gateway.https_endpoint, "with client cert", trusting(tls_files.ca_cert), cert)
        assert loki_stand_in.wait_for(lambda r: len(r.logs) == 1, timeout=10)
        assert (200, ["with client cert"]) == (status, [r.body for r in loki_stand_in.logs])
