"""OTLP over TLS and mTLS with certificates made in the test (trustme), as a hospital network requires."""

from __future__ import annotations

import ssl
import subprocess
import textwrap

import pytest
import trustme

from lumen_otel.testing import OTLPReceiver
from tests.conftest import VENV_BIN, clean_env

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent("""
    import logging, lumen_otel
    handle = lumen_otel.bootstrap(service_name="tls-app")
    logging.getLogger("app").warning("over tls")
    handle.force_flush(5)
""")


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def receiver_context(ca: trustme.CA, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def run_app(tmp_path, endpoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            LUMEN_CONSOLE="false",
            LUMEN_SHUTDOWN_TIMEOUT="3",
            OTEL_EXPORTER_OTLP_TIMEOUT="2",
            # a corporate CA bundle must not override the collector's CA
            REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt",
            **env,
        ),
        cwd=tmp_path,
    )


class TestTLS:
    def test_https_with_the_configured_ca_delivers(self, ca, tmp_path):
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        with OTLPReceiver(ssl_context=receiver_context(ca, require_client_cert=False)) as receiver:
            result = run_app(tmp_path, receiver.endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(ca_file))
            assert result.returncode == 0, result.stderr
            assert receiver.wait_for(lambda r: [log.body for log in r.logs] == ["over tls"], timeout=10)

    def test_an_untrusted_server_certificate_is_refused_and_the_app_keeps_running(self, ca, tmp_path):
        other_ca = trustme.CA()
        ca_file = tmp_path / "other-ca.pem"
        other_ca.cert_pem.write_to_path(str(ca_file))
        with OTLPReceiver(ssl_context=receiver_context(ca, require_client_cert=False)) as receiver:
            result = run_app(tmp_path, receiver.endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(ca_file))
            assert result.returncode == 0, result.stderr
            assert receiver.logs == []


class TestMutualTLS:
    def test_client_certificate_is_presented_when_configured(self, ca, tmp_path):
        ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
        ca.cert_pem.write_to_path(str(ca_file))
        client = ca.issue_cert("lumen-app")
        client.cert_chain_pems[0].write_to_path(str(cert_file))
        client.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)
        with OTLPReceiver(ssl_context=receiver_context(ca, require_client_cert=True)) as receiver:
            result = run_app(
                tmp_path,
                receiver.endpoint,
                OTEL_EXPORTER_OTLP_CERTIFICATE=str(ca_file),
                OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(cert_file),
                OTEL_EXPORTER_OTLP_CLIENT_KEY=str(key_file),
            )
            assert result.returncode == 0, result.stderr
            assert receiver.wait_for(lambda r: [log.body for log in r.logs] == ["over tls"], timeout=10)

    def test_without_a_client_certificate_the_receiver_refuses(self, ca, tmp_path):
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        with OTLPReceiver(ssl_context=receiver_context(ca, require_client_cert=True)) as receiver:
            result = run_app(tmp_path, receiver.endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(ca_file))
            assert result.returncode == 0, result.stderr
            assert receiver.logs == []
