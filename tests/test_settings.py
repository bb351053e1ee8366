"""Settings: precedence, validation messages, provenance, and the README table staying true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from lumen_otel._config.settings import PARAMETERS, load_settings
from lumen_otel.exceptions import ConfigError
from tests.conftest import REPO, VENV_BIN, clean_env


class TestPrecedence:
    def test_defaults_for_a_bare_environment(self):
        settings = load_settings({}, service_name="svc")
        assert ("dev", "INFO", "text", None, "X-Correlation-ID") == (
            settings.env,
            settings.log_level,
            settings.log_format,
            settings.otlp_endpoint,
            settings.correlation_header,
        )
        assert settings.sources["env"] == "default"

    def test_argument_beats_lumen_beats_otel_beats_legacy(self):
        env = {
            "LUMEN_LOG_LEVEL": "ERROR",
            "LOG_LEVEL": "DEBUG",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "LOG_COLLECTOR_URL": "http://127.0.0.1:9",
        }
        settings = load_settings(env, service_name="svc")
        assert (settings.log_level, settings.sources["log_level"]) == ("ERROR", "LUMEN_LOG_LEVEL")
        assert (settings.otlp_endpoint, settings.sources["otlp_endpoint"]) == (
            "http://127.0.0.1:4318",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        )
        overridden = load_settings(env, service_name="svc", log_level="warning")
        assert (overridden.log_level, overridden.sources["log_level"]) == ("WARNING", "argument")

    def test_legacy_lumen_logger_names_still_work(self):
        settings = load_settings(
            {
                "LOG_LEVEL": "debug",
                "LOG_FORMAT": "json",
                "LOG_DIR": "/tmp/x",
                "LOG_COLLECTOR_URL": "https://collector.example:4318",
            },
            service_name="s",
        )
        assert (settings.log_level, settings.log_format, str(settings.log_dir), settings.otlp_endpoint) == (
            "DEBUG",
            "json",
            "/tmp/x",
            "https://collector.example:4318",
        )

    def test_prod_defaults_to_json_console(self):
        settings = load_settings({"LUMEN_ENV": "prod"}, service_name="s")
        assert (settings.log_format, settings.sources["log_format"]) == ("json", "default (LUMEN_ENV=prod)")

    def test_missing_service_name_uses_program_name_with_a_warning(self):
        settings = load_settings({})
        assert settings.service_name
        assert any("no service name set" in w for w in settings.warnings)

    def test_redaction_key_is_hidden_in_descriptions(self):
        settings = load_settings({"LUMEN_REDACTION_KEY": "k" * 32}, service_name="s")
        rows = {name: (shown, source) for name, shown, source in settings.describe()}
        assert rows["redaction_key"] == ("<set, hidden>", "LUMEN_REDACTION_KEY")


BAD_VALUES = [
    ("LUMEN_ENV", "staging", "one of dev, prod"),
    ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("LUMEN_LOG_FILE_MAX_BYTES", "-1", "an integer >= 1024"),
    ("LUMEN_LOG_FILE_BACKUPS", "many", "an integer >= 0"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http:// or https:// URL"),
    ("LUMEN_OTLP_ENDPOINT", "https://host:99999", "http:// or https:// URL"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "one of http/protobuf, grpc"),
    ("LUMEN_CONSOLE", "maybe", "a boolean"),
    ("LUMEN_CORRELATION_HEADER", "X Correlation", "an HTTP header name"),
    ("LUMEN_REDACTION_EXTRA_PATTERNS", "([unclosed", "regular expression"),
    ("LUMEN_REDACTION_KEY", "short", "at least 16 characters"),
]


class TestBadValues:
    @pytest.mark.parametrize(("name", "value", "accepted"), BAD_VALUES)
    def test_error_names_variable_value_and_what_is_accepted(self, name, value, accepted):
        with pytest.raises(ConfigError) as caught:
            load_settings({name: value}, service_name="svc")
        message = str(caught.value)
        assert message.startswith(f"{name}=")
        assert accepted in message
        if name != "LUMEN_REDACTION_KEY":
            assert repr(value) in message

    def test_plain_http_to_a_remote_collector_is_refused(self):
        with pytest.raises(
            ConfigError, match=re.escape("OTEL_EXPORTER_OTLP_ENDPOINT='http://collector.example:4318'")
        ):
            load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318"}, service_name="s")

    def test_plain_http_is_allowed_on_loopback_and_when_explicitly_insecure(self):
        assert load_settings(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4318"}, service_name="s"
        ).otlp_endpoint
        settings = load_settings(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318", "LUMEN_ALLOW_INSECURE": "true"},
            service_name="s",
        )
        assert len([w for w in settings.warnings if "unencrypted" in w]) == 1

    def test_redaction_cannot_be_turned_off_in_prod(self):
        with pytest.raises(ConfigError, match="LUMEN_REDACTION='false'"):
            load_settings({"LUMEN_ENV": "prod", "LUMEN_REDACTION": "false"}, service_name="s")

    def test_missing_tls_file_is_reported_at_start_up(self, tmp_path):
        with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_CERTIFICATE="):
            load_settings({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "nope.pem")}, service_name="s")
        junk = tmp_path / "junk.pem"
        junk.write_text("not a certificate")
        with pytest.raises(ConfigError, match="no '-----BEGIN' block"):
            load_settings({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(junk)}, service_name="s")

    def test_unknown_argument_is_a_type_error(self):
        with pytest.raises(TypeError, match="log_levle"):
            load_settings({}, service_name="s", log_levle="INFO")


@pytest.mark.integration
class TestBadValuesUnderTheLauncher:
    @pytest.mark.parametrize(
        ("name", "value", "accepted"),
        [*BAD_VALUES[:5], ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318", "https://")],
    )
    def test_service_refuses_to_start_naming_the_variable(self, tmp_path, name, value, accepted):
        env = clean_env(OTEL_SERVICE_NAME="svc", **{name: value})
        result = subprocess.run(
            [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('SERVED')"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "SERVED" not in result.stdout
        assert f"lumen-otel: configuration error: {name}=" in result.stderr
        assert accepted in result.stderr


class TestReadmeTable:
    def test_readme_configuration_table_lists_every_variable_in_order(self):
        """The README's table is generated from the parameter table; this fails when they drift."""
        from lumen_otel._config.settings import markdown_table

        readme = (REPO / "README.md").read_text()
        assert markdown_table() in readme

    def test_every_variable_in_the_table_is_documented_once(self):
        readme = (REPO / "README.md").read_text()
        for param in PARAMETERS:
            for name in param.env:
                assert len(re.findall(rf"`{name}`", readme)) >= 1, name


def test_settings_module_is_the_only_reader_of_lumen_variables():
    """One module parses the configuration: no other module reads LUMEN_* variables directly."""
    allowed = {"_settings.py", "_propagator.py", "_distro.py", "_guard.py"}
    offenders = []
    for path in Path(REPO / "lumen_otel").rglob("*.py"):
        if path.name in allowed or "cli" in path.parts or "demo" in path.parts:
            continue
        if re.search(r"environ(?:\.get)?\(?\[?[\"']LUMEN_", path.read_text()):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param(
            {
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5000",
                "OTEL_BSP_MAX_QUEUE_SIZE": "10",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            },
            # lumen's settings check OTEL_BSP_* themselves, before the SDK sees them
            "lumen-otel: configuration error: OTEL_BSP_MAX_EXPORT_BATCH_SIZE='5000' is not valid: "
            "expected an integer from 1 to the queue size (OTEL_BSP_MAX_QUEUE_SIZE=10)\n",
            id="batch larger than its queue",
        ),
        pytest.param(
            {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "-1"},
            # importing the SDK already raises for this one
            "lumen-otel: configuration error: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT must be a non-negative integer "
            "but got -1 (raised by the OpenTelemetry SDK: check its OTEL_* variables)\n",
            id="checked when the SDK is imported",
        ),
    ],
)
def test_a_variable_the_sdk_checks_stops_the_service_under_the_launcher(tmp_path, variables, message):
    """The SDK's own checks must not leave a half-configured service running (exit 0, a traceback,
    no telemetry): the one-line error and exit status 2, before the program runs."""
    result = subprocess.run(
        [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('SERVED')"],
        env=clean_env(OTEL_SERVICE_NAME="svc", **variables),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (2, "", message) == (result.returncode, result.stdout, result.stderr)
