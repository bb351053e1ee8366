"""Fixtures for the tests that run the real lumen-otelcol binary and a real Prometheus.

- the binary (``make collector`` builds ``bin/lumen-otelcol``) and Debian's ``/usr/bin/prometheus``:
  missing tools skip the tests on a laptop and FAIL them in CI (``CI=true``), so a CI run can
  never go green without having exercised the collector;
- TLS material made per session with trustme: the CA the clients trust, a server certificate
  for 127.0.0.1/localhost, and a second, unrelated CA for the "wrong CA" client;
- ``start_collector``: the collector on free loopback ports with a given set of config files and
  environment, ready once its health check answers;
- ``prometheus``: a real Prometheus with the remote-write receiver on a free port, its TSDB in
  tmp, and a small PromQL client with a bounded poll;
- ``loki_stand_in``: a loopback OTLP/HTTP receiver standing in for Loki's ``/otlp`` endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from lumen_otel.testing import OTLPReceiver
from tests.conftest import REPO, free_port

COLLECTOR_BIN = Path(os.environ.get("LUMEN_OTELCOL_BIN", REPO / "bin" / "lumen-otelcol"))
PROMETHEUS_BIN = Path(os.environ.get("LUMEN_PROMETHEUS_BIN", "/usr/bin/prometheus"))
CONFIG_DIR = REPO / "collector-config"


def require_tool(path: Path, how_to_get_it: str) -> Path:
    """Return ``path`` if it is an executable; otherwise fail in CI and skip elsewhere."""
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = f"{path} is missing: {how_to_get_it}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def collector_bin() -> Path:
    return require_tool(COLLECTOR_BIN, "build it with `make collector` (needs Go and the Go module proxy)")


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return require_tool(PROMETHEUS_BIN, "install Debian's package: `apt-get install -y prometheus`")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for the collector's server side and for its clients."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    client = ca.issue_cert("lumen-test-client@example.invalid")
    other_ca = trustme.CA()
    files = TLSFiles(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_ca_cert=directory / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_cert))
    server.cert_chain_pems[0].write_to_path(str(files.server_cert))
    server.private_key_pem.write_to_path(str(files.server_key))
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    other_ca.cert_pem.write_to_path(str(files.other_ca_cert))
    return files


@pytest.fixture(autouse=True, scope="session")
def _no_requests_ca_override() -> Iterator[None]:
    """Let the SDK exporters' ``certificate_file`` decide which CA is trusted.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` win over a session's ``verify``
    (psf/requests#3829), and some machines set them system-wide: the OTLP/HTTP exporter would then
    trust the system store instead of the test CA and every export would fail verification.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        yield


def distinct_free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (two free_port() calls may return the same one)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def base_env(**extra: str) -> dict[str, str]:
    """A minimal environment for the collector: no inherited OTel/Lumen/endpoint settings."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


@dataclass
class Collector:
    """A running lumen-otelcol process and the loopback ports it listens on."""

    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    health_port: int
    telemetry_port: int
    log_path: Path

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class CollectorLauncher:
    """Starts collectors on free loopback ports and stops them all on ``close()``."""

    def __init__(self, binary: Path, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.started: list[Collector] = []

    def __call__(self, configs: list[str | Path], env: dict[str, str], timeout: float = 30.0) -> Collector:
        """Start with ``configs`` (names in collector-config/ or paths) and ``env`` on top of the ports.

        Free ports are only free until someone binds them (other test processes share the
        machine): a start that loses that race is retried on new ports, a few times.
        """
        for attempt in range(3):
            collector = self._start(configs, env, timeout)
            try:
                wait_healthy(collector, timeout)
            except AssertionError:
                collector.stop()
                if attempt < 2 and "address already in use" in collector.output():
                    continue
                raise
            return collector
        raise AssertionError("unreachable")

    def _start(self, configs: list[str | Path], env: dict[str, str], timeout: float) -> Collector:
        grpc, http, health, telemetry = distinct_free_ports(4)
        full_env = base_env(
            LUMEN_COLLECTOR_LISTEN_HOST="127.0.0.1",
            LUMEN_COLLECTOR_GRPC_PORT=str(grpc),
            LUMEN_COLLECTOR_HTTP_PORT=str(http),
            LUMEN_COLLECTOR_HEALTH_ENDPOINT=f"127.0.0.1:{health}",
            LUMEN_COLLECTOR_TELEMETRY_PORT=str(telemetry),
        )
        full_env.update(env)
        log_path = self.directory / f"collector-{len(self.started)}.log"
        argv = [str(self.binary)]
        argv += [f"--config={CONFIG_DIR / c if isinstance(c, str) else c}" for c in configs]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        collector = Collector(proc, grpc, http, health, telemetry, log_path)
        self.started.append(collector)
        return collector

    def close(self) -> None:
        for collector in self.started:
            collector.stop()


StartCollector = Callable[..., Collector]


@pytest.fixture
def start_collector(collector_bin: Path, tmp_path: Path) -> Iterator[StartCollector]:
    """Start the collector with ``configs`` (file names in collector-config/ or paths) and ``env``."""
    launcher = CollectorLauncher(collector_bin, tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def start_collector_for_module(
    collector_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartCollector]:
    """Like ``start_collector``, for collectors shared by the tests of one module."""
    launcher = CollectorLauncher(collector_bin, tmp_path_factory.mktemp("collector"))
    yield launcher
    launcher.close()


def wait_healthy(collector: Collector, timeout: float) -> None:
    """Poll the health_check extension until the collector reports it is serving."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{collector.health_port}/"
    while time.monotonic() < deadline:
        if collector.proc.poll() is not None:
            raise AssertionError(f"collector exited with {collector.proc.returncode}:\n{collector.output()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"collector not healthy within {timeout}s:\n{collector.output()}")


@pytest.fixture
def loki_stand_in() -> Iterator[OTLPReceiver]:
    """A loopback OTLP/HTTP receiver standing in for Loki's OTLP endpoint (Loki itself is not run)."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def loki_stand_in_for_module() -> Iterator[OTLPReceiver]:
    """The Loki stand-in shared by the tests of one module."""
    with OTLPReceiver() as receiver:
        yield receiver


@dataclass
class Prometheus:
    """A real Prometheus server with the remote-write receiver enabled."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    queries: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def remote_write_endpoint(self) -> str:
        return f"{self.url}/api/v1/write"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant PromQL query over the HTTP API; return the result vector."""
        self.queries.append(promql)
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
            payload = json.load(response)
        assert payload["status"] == "success", payload
        return list(payload["data"]["result"])

    def wait_for(
        self, promql: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds; fail with the last result after ``timeout``."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql!r} never satisfied the check within {timeout}s; last result: {result}")

    def series_names(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/api/v1/label/__name__/values", timeout=5) as response:  # noqa: S310
            return list(json.load(response)["data"])

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_prometheus(binary: Path, directory: Path, timeout: float = 30.0) -> Prometheus:
    """Debian's Prometheus on a free loopback port (never the packaged service on :9090).

    Retried on a new port if another process took the free port first.
    """
    for attempt in range(3):
        try:
            return _start_prometheus(binary, directory, timeout)
        except AssertionError as error:
            if attempt == 2 or "address already in use" not in str(error):
                raise
    raise AssertionError("unreachable")


def _start_prometheus(binary: Path, directory: Path, timeout: float) -> Prometheus:
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n")
    log_path = directory / f"prometheus-{port}.log"
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / f'tsdb-{port}'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-remote-write-receiver",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = Prometheus(proc, port, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"prometheus not ready within {timeout}s:\n{server.output()}")
        time.sleep(0.1)


@pytest.fixture
def prometheus(prometheus_bin: Path, tmp_path: Path) -> Iterator[Prometheus]:
    server = start_prometheus(prometheus_bin, tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prometheus_for_module(
    prometheus_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    server = start_prometheus(prometheus_bin, tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()


def gateway_env(
    tls: TLSFiles, loki: OTLPReceiver, remote_write: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment the gateway config needs for a test: TLS files, Loki stand-in, Prometheus."""
    env = {
        "LUMEN_COLLECTOR_TLS_CERT_FILE": str(tls.server_cert),
        "LUMEN_COLLECTOR_TLS_KEY_FILE": str(tls.server_key),
        "LOKI_OTLP_ENDPOINT": loki.endpoint,
        # nothing listens there unless a test passes a real Prometheus
        "PROMETHEUS_REMOTE_WRITE_ENDPOINT": remote_write or f"http://127.0.0.1:{free_port()}/api/v1/write",
        "LUMEN_COLLECTOR_BATCH_TIMEOUT": "200ms",
        "LUMEN_SPANMETRICS_FLUSH_INTERVAL": "1s",
    }
    env.update(extra)
    return env
