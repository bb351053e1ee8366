"""No secret is ever printed.

URL userinfo (``https://ops:<password>@host``), OTLP header values, the redaction key and the
contents of a certificate or client key must not appear in any configuration error, warning,
``lumen-otel doctor`` output (text or JSON) or ``repr()``. Each case runs a real process (the
``opentelemetry-instrument`` launcher, ``python -c`` with ``lumen_otel.bootstrap()``, or
``lumen-otel doctor``) and searches everything it printed, stdout and stderr, for the secrets.

Before the fix the password was printed by the configuration error, the LUMEN_ALLOW_INSECURE
warning and doctor; the redaction key by ``repr()`` of the handle and of ``Settings``; a header
token by upstream's "Header format invalid" warning; a key pasted into
``OTEL_EXPORTER_OTLP_CLIENT_KEY`` by the configuration error.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import trustme

from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

PASSWORD = "S3cretPw-9f2c"
TOKEN = "tok-7Qz1x9Lm"
REDACTION_KEY = "RedactionKey-5b8e1d0c7a"
SHORT_KEY = "shortK3y!"
SECRETS = (PASSWORD, TOKEN, REDACTION_KEY, SHORT_KEY)

LAUNCHER = [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", "print('SERVED')"]
BOOTSTRAP = [str(VENV_BIN / "python"), "-c", "import lumen_otel; lumen_otel.bootstrap(); print('SERVED')"]


def run(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(
            OTEL_SERVICE_NAME="svc",
            OTEL_EXPORTER_OTLP_TIMEOUT="1",
            LUMEN_SHUTDOWN_TIMEOUT="2",
            LUMEN_OTEL_STRICT="0",  # the SDK's own export warnings are printed, not raised
            **env,
        ),
    )


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "doctor", "--timeout", "1", *args],
        cwd=REPO,
        env=clean_env(OTEL_SERVICE_NAME="svc", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_nothing_secret(done: subprocess.CompletedProcess[str], *extra: str) -> str:
    printed = done.stdout + done.stderr
    leaked = [secret for secret in (*SECRETS, *extra) if secret in printed]
    assert leaked == [], f"printed {leaked}:\n{printed}"
    return printed


@pytest.fixture(scope="module")
def client_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A real client certificate and key (paths may be printed, their contents never)."""
    root = tmp_path_factory.mktemp("mtls")
    cert = trustme.CA().issue_cert("svc")
    cert_file, key_file = root / "client.pem", root / "client.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    key_file.chmod(0o600)
    key_lines = cert.private_key_pem.bytes().decode().splitlines()
    return cert_file, key_file, key_lines[1]  # a line of the key's base64 body


def pem_contents(client_files: tuple[Path, Path, str]) -> str:
    return client_files[1].read_text()


# (case, environment, what must be printed to show the path really ran)
FAILING_START_UPS = [
    (
        "endpoint with userinfo and a bad port",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"https://ops:{PASSWORD}@collector.example.com:99999"},
        "OTEL_EXPORTER_OTLP_ENDPOINT='https://***@collector.example.com:99999' is not valid",
    ),
    (
        "plaintext endpoint with userinfo in prod",
        {
            "LUMEN_ENV": "prod",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://ops:{PASSWORD}@collector.example.com:4318",
        },
        "OTEL_EXPORTER_OTLP_ENDPOINT='http://***@collector.example.com:4318' is not valid",
    ),
    (
        "plaintext logs endpoint with userinfo in prod",
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://ops:{PASSWORD}@collector.example.com:4318/v1/logs"},
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT='http://***@collector.example.com:4318/v1/logs' is not valid",
    ),
    (
        "gRPC endpoint with userinfo",
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"https://ops:{PASSWORD}@127.0.0.1:4317",
        },
        "OTEL_EXPORTER_OTLP_ENDPOINT='https://***@127.0.0.1:4317' is not valid",
    ),
    ("a redaction key too short", {"LUMEN_REDACTION_KEY": SHORT_KEY}, "LUMEN_REDACTION_KEY='<hidden>'"),
    (
        "a header written with a colon",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization: Bearer {TOKEN}",
        },
        "OTEL_EXPORTER_OTLP_HEADERS='<malformed entry, hidden>' is not valid",
    ),
    (
        "a malformed per-signal header after a good one",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-tenant={TOKEN},x-api-key {TOKEN}",
        },
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS='x-tenant=<hidden>,<malformed entry, hidden>' is not valid",
    ),
]


class TestFailingStartUp:
    @pytest.mark.parametrize(
        ("case", "env", "expected"), FAILING_START_UPS, ids=[c[0] for c in FAILING_START_UPS]
    )
    def test_launcher_exits_2_without_printing_a_secret(self, tmp_path, case, env, expected):
        done = run(LAUNCHER, tmp_path, **env)
        printed = assert_nothing_secret(done)
        assert done.returncode == 2, printed
        assert f"lumen-otel: configuration error: {expected}" in printed

    @pytest.mark.parametrize(
        ("case", "env", "expected"), FAILING_START_UPS, ids=[c[0] for c in FAILING_START_UPS]
    )
    def test_bootstrap_traceback_prints_no_secret(self, tmp_path, case, env, expected):
        done = run(BOOTSTRAP, tmp_path, **env)
        printed = assert_nothing_secret(done)
        assert done.returncode == 1 and "SERVED" not in done.stdout, printed
        assert f"lumen_otel.exceptions.ConfigError: {expected}" in printed

    def test_key_contents_pasted_into_the_variable_are_not_echoed(self, tmp_path, client_files):
        contents = pem_contents(client_files)
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": contents,
        }
        for argv in (LAUNCHER, BOOTSTRAP):
            done = run(argv, tmp_path, **env)
            printed = assert_nothing_secret(done, client_files[2])
            assert "OTEL_EXPORTER_OTLP_CLIENT_KEY='<file contents, hidden>' is not valid" in printed

    @pytest.mark.parametrize("as_json", [False, True])
    @pytest.mark.parametrize(
        ("case", "env", "expected"), FAILING_START_UPS, ids=[c[0] for c in FAILING_START_UPS]
    )
    def test_doctor_reports_the_error_without_the_secret(self, case, env, expected, as_json):
        done = doctor(*(["--json"] if as_json else []), **env)
        printed = assert_nothing_secret(done)
        assert done.returncode == 2
        if as_json:
            assert json.loads(done.stdout)["config_error"].startswith(expected)
        else:
            assert expected in " ".join(printed.split())


class TestRunningService:
    def test_the_allow_insecure_warning_hides_the_password(self, tmp_path):
        # 0.0.0.0 is not a loopback address to the settings, yet nothing leaves the machine
        endpoint = f"http://ops:{PASSWORD}@0.0.0.0:{free_port()}"
        done = run(
            BOOTSTRAP,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            LUMEN_ALLOW_INSECURE="true",
            LUMEN_TRACES="false",
            LUMEN_METRICS="false",
        )
        printed = assert_nothing_secret(done)
        assert done.returncode == 0, printed
        assert printed.count("LUMEN_ALLOW_INSECURE=true") == 1
        assert "goes to http://***@0.0.0.0:" in printed

    def test_repr_of_settings_handle_and_failed_exports_hide_every_secret(self, tmp_path, client_files):
        cert_file, key_file, key_line = client_files
        script = textwrap.dedent("""
            import logging, lumen_otel
            from lumen_otel._config.settings import load_settings
            settings = load_settings()
            print(repr(settings)); print(settings); print(settings.targets); print(settings.describe())
            handle = lumen_otel.bootstrap()
            print(repr(handle)); print(handle); print(vars(handle))
            logging.getLogger("app").warning("export me")
            handle.force_flush(2)
            print("REPRS-DONE")
        """)
        done = run(
            [str(VENV_BIN / "python"), "-c", script],
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"https://ops:{PASSWORD}@127.0.0.1:{free_port()}",
            OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{TOKEN},x-tenant={TOKEN}",
            OTEL_EXPORTER_OTLP_LOGS_HEADERS=f"x-api-key={TOKEN}",
            OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(cert_file),
            OTEL_EXPORTER_OTLP_CLIENT_KEY=str(key_file),
            LUMEN_REDACTION_KEY=REDACTION_KEY,
        )
        printed = assert_nothing_secret(done, key_line)
        assert done.returncode == 0 and "REPRS-DONE" in done.stdout, printed
        assert "https://***@127.0.0.1:" in printed
        assert "redaction_key='<hidden>'" in printed
        assert "header_names=('x-api-key',)" in printed  # names are shown, values never


class TestDoctor:
    @pytest.mark.parametrize("as_json", [False, True])
    def test_a_valid_configuration_full_of_secrets(self, client_files, as_json):
        cert_file, key_file, key_line = client_files
        done = doctor(
            *(["--json"] if as_json else []),
            OTEL_EXPORTER_OTLP_ENDPOINT=f"https://ops:{PASSWORD}@127.0.0.1:{free_port()}",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"https://ops:{PASSWORD}@localhost:{free_port()}/v1/traces?key={TOKEN}",
            OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{TOKEN}",
            OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(cert_file),
            OTEL_EXPORTER_OTLP_CLIENT_KEY=str(key_file),
            LUMEN_REDACTION_KEY=REDACTION_KEY,
        )
        printed = assert_nothing_secret(done, key_line)
        assert done.returncode == 1, printed  # the collector is unreachable: the checks ran
        if as_json:
            report = json.loads(done.stdout)
            rows = {r["setting"]: r["value"] for r in report["settings"]}
            assert rows["redaction_key"] == "<set, hidden>"
            assert rows["otlp_endpoint"].startswith("https://***@127.0.0.1:")
            assert rows["otlp_traces_endpoint"].endswith("/v1/traces?***")
            assert report["signals"][0]["headers"] == ["authorization"]
        else:
            assert "https://***@127.0.0.1:" in printed and "is unreachable" in printed
