"""TLS at start-up: no plain http:// to a non-loopback collector unless allowed, and
certificate/key files with bad content stop the service with the variable named.

The collector-side refusals (a plain-HTTP client and a wrong-CA client against lumen-otelcol's
TLS receiver, mTLS without a client certificate) are tested with the real binary in
tests/collector/test_tls_receiver.py; they are not duplicated here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN
from tests.reliability.conftest import app_env

pytestmark = pytest.mark.integration


def launch(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('STARTED')"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=app_env("tls", tmp_path / "logs", None, **env)
    )


class TestStartUpRefusals:
    def test_plain_http_to_a_remote_collector_exits_2_naming_the_variable(self, tmp_path):
        result = launch(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://192.0.2.10:4318")
        assert (2, "") == (result.returncode, result.stdout)
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in result.stderr and "LUMEN_ALLOW_INSECURE" in result.stderr

    def test_allowing_insecure_starts_with_one_loud_warning(self, tmp_path):
        result = launch(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT="http://192.0.2.10:4318",
            LUMEN_ALLOW_INSECURE="true",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            LUMEN_SHUTDOWN_TIMEOUT="1",
        )
        assert (0, "STARTED") == (result.returncode, result.stdout.strip())
        assert result.stderr.count("LUMEN_ALLOW_INSECURE=true") == 1

    @pytest.mark.parametrize(
        "variable",
        [
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        ],
    )
    def test_a_pem_file_with_bad_content_exits_2_naming_the_variable(self, tmp_path, variable):
        bad = tmp_path / "bad.pem"
        bad.write_text("this is not a certificate\n")
        result = launch(
            tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="https://127.0.0.1:4318", **{variable: str(bad)}
        )
        assert 2 == result.returncode
        assert variable in result.stderr and str(bad) in result.stderr
