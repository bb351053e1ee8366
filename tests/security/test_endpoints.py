"""Every OTLP endpoint variable must be encrypted (or loopback, or explicitly
allowed), and each per-signal variable turns on the signal it names.

Before the fix only the main endpoint was checked: ``OTEL_EXPORTER_OTLP_{LOGS,TRACES,METRICS}_ENDPOINT``
with ``http://`` to a remote collector sent telemetry in plaintext with ``LUMEN_ENV=prod``; a
traces- or metrics-only endpoint exported nothing; ``doctor`` did not say where each signal went.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lumen_otel._config.settings import load_settings
from lumen_otel.exceptions import ConfigError
from lumen_otel.testing import OTLPReceiver
from tests.conftest import REPO, VENV_BIN, clean_env, free_port

REMOTE = "collector.example.com"
SIGNAL_VARS = [f"OTEL_EXPORTER_OTLP_{s}_ENDPOINT" for s in ("LOGS", "TRACES", "METRICS")]
ENDPOINT_VARS = ["OTEL_EXPORTER_OTLP_ENDPOINT", *SIGNAL_VARS]
HTTPS_MAIN = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"https://{REMOTE}:4318"}


def settings(**env: str) -> Any:
    return load_settings({"LUMEN_ENV": "prod", **env}, service_name="svc")


class TestEveryEndpointVariableMustBeEncrypted:
    @pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
    @pytest.mark.parametrize("variable", ENDPOINT_VARS)
    def test_plain_http_to_a_remote_collector_is_refused_naming_the_variable(self, variable, protocol):
        env = {**HTTPS_MAIN, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, variable: f"http://{REMOTE}:4318/x"}
        with pytest.raises(ConfigError) as caught:
            settings(**env)
        assert caught.value.name == variable
        assert str(caught.value).startswith(f"{variable}='http://{REMOTE}:4318/x' is not valid")
        assert "LUMEN_ALLOW_INSECURE" in str(caught.value)

    @pytest.mark.parametrize(
        "insecure_var",
        [
            "OTEL_EXPORTER_OTLP_INSECURE",
            "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
            "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
            "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
        ],
    )
    def test_grpc_insecure_true_counts_as_plaintext(self, insecure_var):
        env = {**HTTPS_MAIN, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", insecure_var: "true"}
        with pytest.raises(ConfigError) as caught:
            settings(**env)
        assert caught.value.name == insecure_var
        assert "LUMEN_ALLOW_INSECURE" in str(caught.value)

    def test_grpc_insecure_on_loopback_is_plaintext_and_said_so(self):
        s = settings(
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT="https://127.0.0.1:4317",
            OTEL_EXPORTER_OTLP_TRACES_INSECURE="true",
        )
        traces, logs = s.export_target("traces"), s.export_target("logs")
        assert (traces.encrypted, traces.insecure_source) == (False, "OTEL_EXPORTER_OTLP_TRACES_INSECURE")
        assert logs.encrypted

    def test_grpc_exporter_really_is_plaintext_when_insecure_is_true(self):
        """What doctor says is what the exporter does: upstream keeps TLS for an https:// URL
        whatever ``insecure`` says, so the exporter is handed http://."""
        from lumen_otel._otlp.exporters import build_exporter

        s = settings(
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT="https://127.0.0.1:4317",
            OTEL_EXPORTER_OTLP_TRACES_INSECURE="true",
        )
        traces, logs = build_exporter(s, "traces"), build_exporter(s, "logs")
        try:
            assert (traces._insecure, logs._insecure) == (True, False)
        finally:
            traces.shutdown()
            logs.shutdown()

    def test_insecure_variables_do_not_apply_to_http(self):
        s = settings(**HTTPS_MAIN, OTEL_EXPORTER_OTLP_INSECURE="true")
        assert all(s.export_target(signal).encrypted for signal in ("logs", "traces", "metrics"))

    def test_an_insecure_variable_must_be_a_boolean(self):
        with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_LOGS_INSECURE='maybe'"):
            settings(**HTTPS_MAIN, OTEL_EXPORTER_OTLP_LOGS_INSECURE="maybe")

    def test_allowing_insecure_gives_one_warning_naming_every_plaintext_variable(self):
        s = settings(
            LUMEN_ALLOW_INSECURE="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{REMOTE}:4318",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://{REMOTE}:4318/v1/traces",
        )
        loud = [w for w in s.warnings if "unencrypted" in w]
        assert len(loud) == 1
        assert (
            "(OTEL_EXPORTER_OTLP_ENDPOINT)" in loud[0] and "(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)" in loud[0]
        )
        assert not s.export_target("traces").encrypted

    def test_loopback_plain_http_needs_no_permission(self):
        s = settings(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="http://[::1]:4318/v1/logs")
        assert s.warnings == () or all("unencrypted" not in w for w in s.warnings)

    def test_a_per_signal_variable_is_validated_like_the_main_one(self):
        with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT='collector:4318'"):
            settings(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="collector:4318")


class TestEachSignalGoesWhereItsVariableSays:
    def test_main_endpoint_gets_the_v1_paths_and_signal_variables_are_used_as_given(self):
        s = settings(**HTTPS_MAIN, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT="https://logs.example.com/ingest")
        assert {t.signal: (t.url, t.source) for t in s.targets} == {
            "logs": ("https://logs.example.com/ingest", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
            "traces": (f"https://{REMOTE}:4318/v1/traces", "OTEL_EXPORTER_OTLP_ENDPOINT"),
            "metrics": (f"https://{REMOTE}:4318/v1/metrics", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        }

    @pytest.mark.parametrize("signal", ["logs", "traces", "metrics"])
    def test_one_signal_variable_turns_on_that_signal_only(self, signal):
        s = settings(**{f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT": "https://x.example.com/v1/x"})
        assert [t.signal for t in s.targets] == [signal]


SCRIPT = textwrap.dedent("""
    import logging, lumen_otel
    from opentelemetry import trace
    handle = lumen_otel.bootstrap(service_name="per-signal")
    with trace.get_tracer("t").start_as_current_span("work"):
        logging.getLogger("app").warning("a record")
    handle.force_flush(5)
    handle.shutdown(5)
    print("DONE")
""")


def run(tmp_path: Path, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(
            OTEL_SERVICE_NAME="svc",
            LUMEN_CONSOLE="false",
            OTEL_EXPORTER_OTLP_TIMEOUT="2",
            LUMEN_SHUTDOWN_TIMEOUT="3",
            **env,
        ),
    )


@pytest.mark.integration
class TestRealStartUp:
    @pytest.mark.parametrize("variable", SIGNAL_VARS)
    def test_launcher_refuses_a_plaintext_signal_endpoint_in_prod(self, tmp_path, variable):
        argv = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('SERVED')"]
        result = run(tmp_path, argv, LUMEN_ENV="prod", **{variable: f"http://{REMOTE}:4318/v1/x"})
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert f"lumen-otel: configuration error: {variable}=" in result.stderr
        assert "LUMEN_ALLOW_INSECURE" in result.stderr

    def test_launcher_refuses_grpc_insecure_to_a_remote_collector(self, tmp_path):
        argv = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('SERVED')"]
        result = run(
            tmp_path,
            argv,
            LUMEN_ENV="prod",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"https://{REMOTE}:4317",
            OTEL_EXPORTER_OTLP_INSECURE="true",
        )
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert "OTEL_EXPORTER_OTLP_INSECURE='true' is not valid" in result.stderr

    @pytest.mark.parametrize(
        ("signal", "expected"),
        [
            ("logs", {"logs": True, "spans": False, "metrics": False}),
            ("traces", {"logs": False, "spans": True, "metrics": False}),
            ("metrics", {"logs": False, "spans": False, "metrics": True}),
        ],
    )
    def test_a_signal_variable_alone_exports_that_signal_only(self, tmp_path, signal, expected):
        with OTLPReceiver() as receiver:
            url = f"{receiver.endpoint}/v1/{signal}"
            result = run(
                tmp_path,
                [str(VENV_BIN / "python"), "-c", SCRIPT],
                **{f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT": url},
            )
            assert result.returncode == 0, result.stderr
            assert "DONE" in result.stdout
            got = {
                "logs": bool(receiver.logs),
                "spans": bool(receiver.spans),
                "metrics": bool(receiver.metrics),
            }
        assert got == expected


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "doctor", *args],
        cwd=REPO,
        env=clean_env(OTEL_SERVICE_NAME="orders", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
class TestDoctorShowsEachSignal:
    def env(self) -> dict[str, str]:
        port = free_port()
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"https://ops:pw@127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://127.0.0.1:{port}/v1/logs",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc,x-tenant=t1",
            "LUMEN_METRICS": "false",
        }

    def test_json_has_endpoint_encryption_source_and_header_names(self):
        env = self.env()
        port = env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"].split(":")[2].split("/")[0]
        done = doctor("--json", **env)
        signals = {row["signal"]: row for row in json.loads(done.stdout)["signals"]}
        assert signals["logs"] == {
            "signal": "logs",
            "exported": True,
            "endpoint": f"http://127.0.0.1:{port}/v1/logs",
            "source": "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            "encrypted": False,
            "transport": "HTTP, plaintext",
            "headers": ["authorization", "x-tenant"],
            "headers_source": "OTEL_EXPORTER_OTLP_HEADERS",
        }
        assert signals["traces"]["endpoint"] == f"https://***@127.0.0.1:{port}/v1/traces"
        assert (signals["traces"]["encrypted"], signals["traces"]["transport"]) == (True, "HTTPS")
        assert (signals["metrics"]["exported"], signals["metrics"]["encrypted"]) == (False, True)

    def test_text_has_an_export_table(self):
        env = self.env()
        done = doctor(**env)
        lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
        export = lines[lines.index("OTLP export") :]
        logs = next(line for line in export if line.startswith("logs "))
        traces = next(line for line in export if line.startswith("traces "))
        assert "NOT encrypted, HTTP, plaintext" in logs and "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT" in logs
        assert "✓ encrypted, HTTPS" in traces and "https://***@127.0.0.1:" in traces
        assert "authorization, x-tenant (values hidden)" in traces

    def test_grpc_insecure_is_shown_as_plaintext(self):
        done = doctor(
            "--json",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"https://127.0.0.1:{free_port()}",
            OTEL_EXPORTER_OTLP_METRICS_INSECURE="true",
        )
        signals = {row["signal"]: row for row in json.loads(done.stdout)["signals"]}
        assert (signals["metrics"]["encrypted"], signals["metrics"]["transport"]) == (
            False,
            "gRPC, plaintext (OTEL_EXPORTER_OTLP_METRICS_INSECURE=true)",
        )
        assert (signals["logs"]["encrypted"], signals["logs"]["transport"]) == (True, "gRPC over TLS")

    def test_grpc_insecure_endpoint_is_checked_without_a_tls_handshake(self, otlp_receiver):
        url = f"https://127.0.0.1:{otlp_receiver.port}"  # a plain listener, as the exporter will find
        done = doctor(
            "--json",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_ENDPOINT=url,
            OTEL_EXPORTER_OTLP_INSECURE="true",
        )
        report = json.loads(done.stdout)
        collector = next(c for c in report["checks"] if c["topic"] == "collector")
        assert (collector["status"], collector["detail"]) == (
            "ok",
            f"{url} is reachable (TCP; gRPC plaintext, no TLS)",
        )

    def test_no_endpoint_means_nothing_exported(self):
        done = doctor("--json")
        signals = json.loads(done.stdout)["signals"]
        assert [(s["signal"], s["exported"], s["endpoint"]) for s in signals] == [
            ("logs", False, None),
            ("traces", False, None),
            ("metrics", False, None),
        ]
