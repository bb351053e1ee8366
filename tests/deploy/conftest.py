"""Fixtures and helpers for the deploy/ tests: paths, the external tools, real Prometheus.

The tools these tests drive (``bin/lumen-otelcol``, Debian's ``promtool`` and ``prometheus``,
``kustomize``) may be missing on a developer's machine: the tests then skip with the reason.
Under ``CI=true`` a missing tool is a failure, never a skip.

``compose-spec.schema.json`` is the Compose Specification JSON schema as shipped in the
``docker-compose`` 1.29.2 wheel on PyPI (``compose/config/compose_spec.json``, Apache-2.0),
kept here because the tests run without network.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "kubernetes"
GRAFANA = DEPLOY / "grafana"
RULES_DIR = DEPLOY / "prometheus" / "rules"
COLLECTOR_CONFIG = REPO / "collector-config"
HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() == "true"

# Kubernetes releases the manifests must validate against: the oldest we support and a current one.
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")


def need_tool(what: str, path: str | Path | None, hint: str) -> Path:
    """``path`` as a Path, or fail under CI / skip elsewhere with ``hint``."""
    if path is not None and Path(path).is_file() and os.access(path, os.X_OK):
        return Path(path)
    message = f"{what} not found: {hint}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the tests need it)")
    pytest.skip(message)


def collector_binary() -> Path:
    override = os.environ.get("LUMEN_OTELCOL")
    return need_tool(
        "lumen-otelcol", override or REPO / "bin" / "lumen-otelcol", "build it with `make collector`"
    )


def promtool() -> Path:
    return need_tool("promtool", shutil.which("promtool"), "apt-get install prometheus (Debian)")


def prometheus_binary() -> Path:
    return need_tool("prometheus", shutil.which("prometheus"), "apt-get install prometheus (Debian)")


def kustomize() -> Path:
    found = shutil.which("kustomize") or (
        REPO / "bin" / "kustomize" if (REPO / "bin" / "kustomize").exists() else None
    )
    return need_tool("kustomize", found, "run deploy/kubernetes/install-kustomize.sh (go install)")


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- kustomize trees -------------------------------------------------------------------------


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def kustomize_overlays() -> list[Path]:
    return sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))


def manifest_files() -> list[Path]:
    """Every file a kustomization lists as a resource (full Kubernetes objects, not patches)."""
    files: list[Path] = []
    for directory in kustomization_dirs():
        kustomization = load_yaml(directory / "kustomization.yaml")
        for entry in kustomization.get("resources", []):
            path = (directory / entry).resolve()
            if path.is_file():
                files.append(path)
    return sorted(set(files))


def patch_files() -> list[Path]:
    files: list[Path] = []
    for directory in kustomization_dirs():
        for patch in load_yaml(directory / "kustomization.yaml").get("patches", []):
            if "path" in patch:
                files.append((directory / patch["path"]).resolve())
    return sorted(set(files))


# --- what the collector produces -------------------------------------------------------------

# Labels every series may carry, beyond those METRICS.md names per metric: Prometheus's own,
# and those of the collector's internal telemetry (otelcol_*), which tests/deploy/test_stack.py
# sees in a real scrape.
PROMETHEUS_BUILTIN_LABELS = frozenset({"__name__", "le", "job", "instance", "quantile"})
COLLECTOR_TELEMETRY_LABELS = frozenset({"exporter", "receiver", "processor", "transport", "data_type"})
# Collector self-telemetry series the dashboard and rules read, as lumen-otelcol v0.161 serves
# them (counters without _total). test_stack.py finds each in a real scrape, so this list
# cannot drift from the binary.
COLLECTOR_TELEMETRY_SERIES = frozenset(
    {
        "otelcol_receiver_accepted_log_records",
        "otelcol_receiver_refused_log_records",
        "otelcol_exporter_queue_size",
        "otelcol_exporter_sent_log_records",
    }
)


@dataclass(frozen=True)
class ProducedSeries:
    """Metric and label names the collector's pipelines produce (from collector-config/METRICS.md)."""

    metrics: frozenset[str]
    labels: frozenset[str]
    metric_prefixes: frozenset[str]


_BACKTICKED = re.compile(r"`([^`]+)`")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?$")


def produced_series() -> ProducedSeries:
    """Parse collector-config/METRICS.md: every back-ticked series name, with its labels.

    A name written ``metric{label_a,label_b}`` gives the metric and its labels; a name ending
    in ``*`` (``otelcol_exporter_send_failed_*``) is a family prefix.
    """
    path = COLLECTOR_CONFIG / "METRICS.md"
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} is missing: it lists the series the collector produces")
    metrics: set[str] = set()
    labels: set[str] = set()
    prefixes: set[str] = set()
    text = re.sub(r"```.*?```", " ", path.read_text(encoding="utf-8"), flags=re.DOTALL)  # code blocks
    for raw in _BACKTICKED.findall(text):
        token = raw.strip()
        if token.endswith("*") and _METRIC_NAME.match(token.rstrip("*")):
            prefixes.add(token.rstrip("*"))
            continue
        match = _SERIES.match(token.replace(" ", ""))
        if not match:
            continue
        name, label_list = match.groups()
        if label_list is not None:
            metrics.add(name)
            for item in label_list.split(","):
                label = item.split("=")[0].strip().strip('"')
                if label:
                    labels.add(label)
        else:
            # a bare name (tables list metrics and labels in separate cells): a label, or a
            # metric when it has an underscore (every series name does, labels like `le` do not)
            labels.add(name)
            if "_" in name:
                metrics.add(name)
    return ProducedSeries(frozenset(metrics), frozenset(labels), frozenset(prefixes))


# --- real Prometheus -------------------------------------------------------------------------


@dataclass
class RunningPrometheus:
    """Debian's prometheus, started on a loopback port with deploy/'s config."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        import json

        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = self.api("/api/v1/query", query=promql)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def compose_prometheus_config(tmp_path: Path, ports: dict[str, int]) -> Path:
    """deploy/compose/prometheus.yml with only hosts, ports and paths moved to this machine.

    ``ports`` maps a compose host name ("collector", "localhost", ...) to a loopback port;
    hosts not in it point at a closed loopback port (their scrapes fail, nothing leaves
    the machine). Rule files come from deploy/prometheus/rules/ itself.
    """
    config = load_yaml(COMPOSE_DIR / "prometheus.yml")
    config["rule_files"] = [str(RULES_DIR / Path(pattern).name) for pattern in config.get("rule_files", [])]
    closed = free_port()
    for job in config.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            static["targets"] = [
                f"127.0.0.1:{ports.get(target.rsplit(':', 1)[0], closed)}" for target in static["targets"]
            ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def compose_prometheus_flags() -> list[str]:
    """The flags compose.yaml starts Prometheus with, minus the container paths."""
    command = load_yaml(COMPOSE_DIR / "compose.yaml")["services"]["prometheus"]["command"]
    return [flag for flag in command if not flag.startswith(("--config.file", "--storage.tsdb.path"))]


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start real Prometheus with deploy/'s config and flags (remote-write receiver on, rules loaded).

    Call it with the loopback ports that stand for the compose host names, e.g.
    ``start_prometheus({"collector": 8888})``; it is stopped at teardown.
    """
    binary = prometheus_binary()
    stack: list[Iterator[RunningPrometheus]] = []

    def start(ports: dict[str, int] | None = None) -> RunningPrometheus:
        port = free_port()
        generator = _start_prometheus(binary, tmp_path, port, {"localhost": port, **(ports or {})})
        stack.append(generator)
        return next(generator)

    yield start
    for generator in stack:
        generator.close()


def _start_prometheus(
    binary: Path, tmp_path: Path, port: int, ports: dict[str, int]
) -> Iterator[RunningPrometheus]:
    config = compose_prometheus_config(tmp_path, ports)
    log_path = tmp_path / "prometheus.log"
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *compose_prometheus_flags(),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    running = RunningPrometheus(proc, port, log_path)
    try:
        wait_for_port(port, timeout=30, proc=None)
        _wait_ready(running, deadline=time.monotonic() + 30)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_ready(running: RunningPrometheus, deadline: float) -> None:
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {running.proc.returncode}:\n{running.log()}")
        try:
            with urllib.request.urlopen(f"{running.url}/-/ready", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready in time:\n{running.log()}")


# --- PromQL / LogQL names --------------------------------------------------------------------

_PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\")\s*")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


@dataclass(frozen=True)
class QueryNames:
    """The metric names, ``__name__`` regexes and label names one PromQL expression uses."""

    metrics: frozenset[str]
    name_regexes: frozenset[str]
    labels: frozenset[str]


def promql_names(expr: str) -> QueryNames:
    """Metric and label names in a PromQL expression (enough of PromQL for dashboards and rules)."""
    metrics: set[str] = set()
    regexes: set[str] = set()
    labels: set[str] = set()
    for body in _MATCHERS.findall(expr):
        for name, op, value in _MATCHER.findall(body):
            if name == "__name__":
                (regexes if "~" in op else metrics).add(value[1:-1])
            else:
                labels.add(name)
    for group in _GROUPING.findall(expr):
        labels.update(part.strip() for part in group.split(",") if part.strip())
    # What is left outside braces, strings, ranges and groupings: metric names and keywords.
    rest = _GROUPING.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr)))
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    rest = re.sub(r"\boffset\s+\S+", " ", rest)
    for name in _IDENT.findall(rest):
        if name not in _PROMQL_KEYWORDS and not re.fullmatch(r"\d+[smhdwy]?|e|inf|nan", name, re.IGNORECASE):
            metrics.add(name)
    return QueryNames(frozenset(metrics), frozenset(regexes), frozenset(labels))


# Loki's OTLP ingestion: service.name becomes the stream label service_name; these record
# fields become structured metadata (next to the record's attributes, e.g. correlation_id).
LOKI_OTLP_FIELDS = frozenset(
    {"service_name", "severity_text", "severity_number", "trace_id", "span_id", "flags"}
)
_LOGQL_SELECTOR = re.compile(r"^\s*\{([^}]*)\}")
_LOGQL_LABEL_FILTER = re.compile(r"\|\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|==|=|>=|<=|>|<)")


def logql_labels(expr: str) -> frozenset[str]:
    """Stream-selector and label-filter names of a LogQL log query."""
    selector = _LOGQL_SELECTOR.match(expr)
    assert selector, f"not a LogQL log query: {expr!r}"
    names = {name for name, _op, _value in _MATCHER.findall(selector.group(1))}
    names.update(_LOGQL_LABEL_FILTER.findall(expr[selector.end() :]))
    return frozenset(names)


# --- the collector ---------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def env_references(config: Path) -> dict[str, bool]:
    """Every ``${env:NAME}`` a collector config reads, and whether it has a ``:-default``."""
    found: dict[str, bool] = {}
    for name, default in _ENV_REF.findall(config.read_text(encoding="utf-8")):
        found[name] = found.get(name, False) or bool(default)
    return found


@dataclass(frozen=True)
class Certificates:
    """A CA with a server certificate for 127.0.0.1 and a client certificate (files on disk)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """Run deploy/compose/make-certs.sh into ``directory`` (the compose stack's own CA script)."""
    subprocess.run(
        ["bash", str(COMPOSE_DIR / "make-certs.sh")],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CERT_DIR": str(directory), "DAYS": "2"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Certificates(
        directory / "ca.crt",
        directory / "collector.crt",
        directory / "collector.key",
        directory / "client.crt",
        directory / "client.key",
    )


@pytest.fixture(scope="session")
def session_certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """make-certs.sh's CA and certificates, made once per test session (RSA key generation is slow)."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


def collector_env(configs: Path | list[Path], certs: Certificates, **values: str) -> dict[str, str]:
    """An environment giving ``configs`` every variable they read: loopback addresses and free
    ports, the test's TLS files, a redaction key.

    ``values`` override or add variables (ports, endpoints). A variable read without a default
    that nobody here knows how to fill fails the test by name.
    """
    paths = configs if isinstance(configs, list) else [configs]
    known = {
        "LOKI_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}/otlp",
        "PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"http://127.0.0.1:{free_port()}/api/v1/write",
        "LUMEN_COLLECTOR_TLS_CERT_FILE": str(certs.server_cert),
        "LUMEN_COLLECTOR_TLS_KEY_FILE": str(certs.server_key),
        "LUMEN_COLLECTOR_CLIENT_CA_FILE": str(certs.ca),
        "LUMEN_COLLECTOR_LISTEN_HOST": "127.0.0.1",
        "LUMEN_COLLECTOR_GRPC_PORT": str(free_port()),
        "LUMEN_COLLECTOR_HTTP_PORT": str(free_port()),
        "LUMEN_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{free_port()}",
        "LUMEN_COLLECTOR_HEALTH_PORT": str(free_port()),
        "LUMEN_COLLECTOR_TELEMETRY_HOST": "127.0.0.1",
        "LUMEN_COLLECTOR_TELEMETRY_PORT": str(free_port()),
        "LUMEN_COLLECTOR_INSTANCE": "deploy-test",
        # short intervals: the tests poll for results, production keeps the defaults
        "LUMEN_COLLECTOR_BATCH_TIMEOUT": "200ms",
        "LUMEN_SPANMETRICS_FLUSH_INTERVAL": "1s",
        "LUMEN_REDACTION_KEY": "deploy-tests-redaction-key-0123456789abcdef",
        "TRACES_OTLP_ENDPOINT": f"127.0.0.1:{free_port()}",
        # the agent (deploy/kubernetes/components/agent/agent.yaml)
        "K8S_POD_IP": "127.0.0.1",
        "K8S_NODE_NAME": "test-node",
        "LUMEN_GATEWAY_ENDPOINT": f"https://127.0.0.1:{free_port()}",
        **values,
    }
    refs: dict[str, bool] = {}
    for path in paths:
        for name, has_default in env_references(path).items():
            refs[name] = refs.get(name, False) or has_default
    unknown = sorted(name for name, has_default in refs.items() if not has_default and name not in known)
    if unknown:
        pytest.fail(
            f"{[p.name for p in paths]} read {unknown} without a default: teach tests/deploy to set them"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMEN_", "OTEL_", "K8S_"))}
    env.update({name: known[name] for name in refs if name in known})
    env.update(values)
    return env
