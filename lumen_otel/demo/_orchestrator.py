"""Start the four demo services, send one request, wait for its logs, stop everything.

Each service is a real process started by ``opentelemetry-instrument`` (the zero-code path
users take), in its own session so a Ctrl-C at the terminal reaches only the orchestrator,
which then stops them in order; on Linux each child also gets ``PR_SET_PDEATHSIG`` so even
a ``kill -9`` of the orchestrator leaves no orphan behind.

Reports runs on Django's own threaded WSGI server (``python -m django runserver --noreload``):
it is WSGI as most Django deployments are, ships with Django (gunicorn is not a dependency
of lumen-otel), serves requests on threads, and stops cleanly on SIGINT so lumen-otel's exit
flush runs. ``--noreload`` matters: the autoreloader would run the app in a second process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["SERVICES", "DemoError", "DemoPrerequisiteError", "DemoRun", "ServiceSpec", "find_collector"]

#: what ``pip install 'lumen-otel[all]'`` brings and the demo needs, module -> extra
_REQUIRED_MODULES = {
    "fastapi": "fastapi",
    "uvicorn": "fastapi",
    "django": "django",
    "httpx": "httpx",
    "opentelemetry.instrumentation.fastapi": "fastapi",
    "opentelemetry.instrumentation.django": "django",
    "opentelemetry.instrumentation.httpx": "httpx",
}
_PASSED_THROUGH_PREFIXES = ("OTEL_", "LUMEN_", "LOG_", "DJANGO_SETTINGS_MODULE")


class DemoError(RuntimeError):
    """Something the user can fix (a missing dependency, a port, the collector binary)."""


class DemoPrerequisiteError(DemoError):
    """Something the demo needs is not installed here (``lumen-otel demo`` exits with 2)."""


@dataclass(frozen=True)
class ServiceSpec:
    """One demo service: its name (``service.name``), framework and what to serve."""

    name: str
    framework: str  # "django" or "fastapi"
    target: str  # uvicorn app path, or the Django settings module
    env_name: str | None = None  # the variable other services find its URL in


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("dubin", "fastapi", "lumen_otel.demo.dubin:app", "LUMEN_DEMO_DUBIN_URL"),
    ServiceSpec("hl7-listener", "fastapi", "lumen_otel.demo.hl7_listener:app", "LUMEN_DEMO_HL7_URL"),
    ServiceSpec("media", "fastapi", "lumen_otel.demo.media:app", "LUMEN_DEMO_MEDIA_URL"),
    ServiceSpec("reports", "django", "lumen_otel.demo.reports_settings"),
)
#: the record each service must have written before the request's logs are complete
EXPECTED_MESSAGES = {
    "reports": "Exam created",
    "media": "Result sent to HL7",
    "dubin": "Criteria query resolved",
    "hl7-listener": "HL7 audit: message accepted",
}


def check_dependencies() -> None:
    missing = {extra for module, extra in _REQUIRED_MODULES.items() if not _importable(module)}
    if missing:
        extras = ",".join(sorted(missing))
        raise DemoPrerequisiteError(
            f"the demo needs the {extras} extra(s): pip install 'lumen-otel[all]' (or make install)"
        )
    if _launcher() is None:
        raise DemoPrerequisiteError("opentelemetry-instrument is not on PATH: pip install 'lumen-otel[all]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _launcher() -> str | None:
    beside = Path(sys.executable).parent / "opentelemetry-instrument"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("opentelemetry-instrument")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def find_collector(roots: list[Path] | None = None) -> tuple[Path, Path]:
    """The ``lumen-otelcol`` binary and ``local.yaml`` for ``--collector``.

    Under ``roots`` (``bin/lumen-otelcol`` and ``collector-config/local.yaml`` in each) when
    given; otherwise found as ``lumen-otel collector`` finds them: ``bin/`` under the cwd or the
    source checkout, else ``lumen-otelcol`` on PATH, and the config from ``./collector-config/``,
    the checkout or the copy packaged with the wheel.
    """
    if roots is not None:
        for root in roots:
            binary, config = root / "bin" / "lumen-otelcol", root / "collector-config" / "local.yaml"
            if binary.is_file() and os.access(binary, os.X_OK):
                if not config.is_file():
                    raise DemoPrerequisiteError(f"{binary} exists but {config} does not")
                return binary, config
        looked = ", ".join(str(root / "bin" / "lumen-otelcol") for root in roots)
    else:
        from lumen_otel.cli import collector as lookup

        found = lookup.find_binary()
        if found is not None:
            try:
                (config,) = lookup.config_paths(["local"])
            except lookup.CollectorNotFound as exc:
                raise DemoPrerequisiteError(f"--collector: {exc}") from None
            return found, config
        looked = ", ".join(str(p) for p in lookup.binary_candidates()) + " and lumen-otelcol on PATH"
    raise DemoPrerequisiteError(
        "--collector needs the lumen-otelcol binary: run `make collector` in a lumen-otel source checkout "
        "(needs Go >= 1.24; writes bin/lumen-otelcol), then run the demo from that checkout or put the "
        f"binary on PATH; the binary is not part of the Python package (looked for {looked}). "
        "Without --collector the demo needs nothing more"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if the orchestrator dies without cleaning up."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen[bytes]
    output: Path
    port: int
    handle: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 25) -> str:
        """The end of what the process printed and of what it logged (console output is off)."""
        shown: list[str] = []
        with contextlib.suppress(OSError):
            self.handle.flush()
            shown += self.output.read_text(errors="replace").splitlines()[-lines:]
        with contextlib.suppress(OSError):
            log_file = self.output.with_suffix(".log")
            for line in log_file.read_text(errors="replace").splitlines()[-10:]:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    record = json.loads(line)
                    shown.append(f"{record['level']} {record['logger']}: {record['message']}")
                    if record.get("exception"):
                        shown.append(str(record["exception"].get("stacktrace") or "").rstrip())
        return "\n".join(shown)


@dataclass
class DemoRun:
    """One run of the demo: ``start()``, ``send()``, ``wait_for_logs()``, ``stop()``.

    Args:
        log_dir: where the services write ``<service>.log`` (and ``<service>.out``, the
            process's own stdout/stderr).
        collector: (binary, config) to run the services through, or None.
        on_progress: called with (event, service name, detail) as things happen.
    """

    log_dir: Path
    collector: tuple[Path, Path] | None = None
    on_progress: Callable[[str, str, str], None] = lambda event, name, detail: None
    env: str = "prod"
    services: tuple[ServiceSpec, ...] = SERVICES
    processes: list[_Process] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    otlp_endpoint: str | None = None

    # ------------------------------------------------------------ start

    def start(self, timeout: float = 90.0) -> None:
        check_dependencies()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(len(self.services) + (4 if self.collector else 0))
        if self.collector:
            self._start_collector(ports[-4:], timeout)
            ports = ports[:-4]
        for spec, port in zip(self.services, ports, strict=True):
            self.urls[spec.name] = f"http://127.0.0.1:{port}"
        for spec, port in zip(self.services, ports, strict=True):
            self.on_progress("starting", spec.name, f"127.0.0.1:{port}")
            self.processes.append(self._spawn(spec.name, self._argv(spec, port), self._env(spec), port))
        deadline = time.monotonic() + timeout
        pending = [p for p in self.processes if p.name != "collector"]
        started = time.monotonic()
        while pending:
            for process in list(pending):
                if self._healthy(process, deadline):
                    pending.remove(process)
                    self.on_progress("ready", process.name, f"{time.monotonic() - started:.1f}s")
            if pending:
                time.sleep(0.1)

    def _healthy(self, process: _Process, deadline: float) -> bool:
        import httpx

        if process.proc.poll() is not None:
            raise DemoError(
                f"{process.name} exited with status {process.proc.returncode} while starting "
                f"(port {process.port} taken, or a dependency missing?). Its output:\n{process.tail()}"
            )
        if time.monotonic() > deadline:
            raise DemoError(
                f"{process.name} did not answer on {process.url} in time. Its output:\n{process.tail()}"
            )
        try:
            return httpx.get(f"{process.url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _argv(self, spec: ServiceSpec, port: int) -> list[str]:
        launcher = _launcher()
        assert launcher is not None
        if spec.framework == "django":
            server = [
                sys.executable,
                "-m",
                "django",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--skip-checks",
            ]
        else:
            server = [
                sys.executable,
                "-m",
                "uvicorn",
                spec.target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "info",
            ]
        return [launcher, *server]

    def _base_env(self) -> dict[str, str]:
        # The user's own OTEL_/LUMEN_ settings would change what the demo shows: start clean.
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PASSED_THROUGH_PREFIXES)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _env(self, spec: ServiceSpec) -> dict[str, str]:
        env = self._base_env()
        env.update(
            {
                "OTEL_SERVICE_NAME": spec.name,
                "OTEL_SERVICE_VERSION": "demo",
                # another installed distro must not win the launcher's "first found" choice
                "OTEL_PYTHON_DISTRO": "lumen",
                "OTEL_PYTHON_CONFIGURATOR": "lumen",
                "LUMEN_ENV": self.env,
                "LUMEN_LOG_DIR": str(self.log_dir),
                "LUMEN_CONSOLE": "false",
                "LUMEN_SHUTDOWN_TIMEOUT": "3",
            }
        )
        env.update({s.env_name: self.urls[s.name] for s in self.services if s.env_name})
        if spec.framework == "django":
            env["DJANGO_SETTINGS_MODULE"] = spec.target
        if self.otlp_endpoint is not None:
            env.update(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
                    "OTEL_BSP_SCHEDULE_DELAY": "200",
                    "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                }
            )
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], port: int) -> _Process:
        output = self.log_dir / f"{name}.out"
        handle = output.open("wb")
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        except OSError as exc:
            handle.close()
            raise DemoError(f"could not start {name}: {exc}") from None
        return _Process(name, proc, output, port, handle)

    @property
    def collector_dir(self) -> Path:
        return self.log_dir / "collector"

    def _start_collector(self, ports: list[int], timeout: float) -> None:
        assert self.collector is not None
        binary, config = self.collector
        grpc_port, http_port, health_port, telemetry_port = ports
        env = self._base_env()
        env.update(
            {
                "LUMEN_COLLECTOR_LISTEN_HOST": "127.0.0.1",
                "LUMEN_COLLECTOR_GRPC_PORT": str(grpc_port),
                "LUMEN_COLLECTOR_HTTP_PORT": str(http_port),
                "LUMEN_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health_port}",
                "LUMEN_COLLECTOR_TELEMETRY_PORT": str(telemetry_port),
                "LUMEN_COLLECTOR_FILE_PATH": str(self.collector_dir / "logs.jsonl"),
                "LUMEN_COLLECTOR_TRACES_FILE_PATH": str(self.collector_dir / "traces.jsonl"),
                "LUMEN_COLLECTOR_METRICS_FILE_PATH": str(self.collector_dir / "metrics.jsonl"),
            }
        )
        self.on_progress("starting", "collector", f"{binary.name} --config {config}")
        process = self._spawn("collector", [str(binary), "--config", str(config)], env, http_port)
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        while True:
            if process.proc.poll() is not None:
                raise DemoError(
                    f"the collector exited with status {process.proc.returncode}. Its output:\n"
                    f"{process.tail()}"
                )
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", http_port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the collector did not listen on 127.0.0.1:{http_port}. Its output:\n{process.tail()}"
                )
            time.sleep(0.1)
        self.otlp_endpoint = f"http://127.0.0.1:{http_port}"
        self.on_progress("ready", "collector", f"OTLP on {self.otlp_endpoint}")

    # ------------------------------------------------------------ the request

    def send(self, cid: str | None = None) -> tuple[str, dict[str, Any]]:
        """POST one exam to Reports with ``X-Correlation-ID``; (correlation ID, response body)."""
        import httpx

        from lumen_otel.demo._patient import SYNTHETIC_PATIENT

        cid = cid or str(uuid.uuid4())
        body = {
            "patient": SYNTHETIC_PATIENT,
            "modality": "XR",
            "procedure_code": "71046",
            "procedure": "XR CHEST 2 VIEWS",
            "indication": "persistent cough",
            "image_count": 2,
        }
        try:
            response = httpx.post(
                f"{self.urls['reports']}/exams", json=body, headers={"X-Correlation-ID": cid}, timeout=30
            )
        except httpx.HTTPError as exc:
            raise DemoError(f"the request to reports failed: {exc}") from None
        if response.status_code != 201:
            raise DemoError(f"reports answered {response.status_code}: {response.text[:500]}")
        return response.headers.get("X-Correlation-ID", cid), response.json()

    def wait_for_logs(self, query: str, timeout: float = 20.0) -> list[str]:
        """Poll the log files until every service's record is there; the services still missing."""
        from lumen_otel.cli.trace import load_from_dir, parse_query

        wanted = parse_query(query)
        deadline = time.monotonic() + timeout
        while True:
            records = load_from_dir(self.log_dir, wanted)
            missing = [
                name
                for name, message in EXPECTED_MESSAGES.items()
                if not any(r.service == name and r.message.startswith(message) for r in records)
            ]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.1)

    def wait_for_collector(self, trace_id: str, timeout: float = 20.0) -> tuple[int, int, set[str]]:
        """(log records, spans, services) of ``trace_id`` the collector wrote to its files."""
        deadline = time.monotonic() + timeout
        while True:
            logs, spans, services = self.collector_counts(trace_id)
            if (len(services) >= len(SERVICES) and spans >= len(SERVICES)) or time.monotonic() > deadline:
                return logs, spans, services
            time.sleep(0.2)

    def collector_counts(self, trace_id: str) -> tuple[int, int, set[str]]:
        """Read the file exporter's OTLP JSON lines (trace ids are hex there)."""
        logs = spans = 0
        services: set[str] = set()
        for name, outer, middle, inner in (
            ("logs.jsonl", "resourceLogs", "scopeLogs", "logRecords"),
            ("traces.jsonl", "resourceSpans", "scopeSpans", "spans"),
        ):
            path = self.collector_dir / name
            if not path.is_file():
                continue
            for line in path.read_text(errors="replace").splitlines():
                try:
                    batch = json.loads(line)
                except ValueError:
                    continue  # a line still being written
                for resource in batch.get(outer, []):
                    service = next(
                        (
                            a["value"].get("stringValue")
                            for a in resource.get("resource", {}).get("attributes", [])
                            if a.get("key") == "service.name"
                        ),
                        None,
                    )
                    for scope in resource.get(middle, []):
                        count = sum(1 for item in scope.get(inner, []) if item.get("traceId") == trace_id)
                        if count and name == "logs.jsonl":
                            logs += count
                            services.add(str(service))
                        elif count:
                            spans += count
        return logs, spans, services

    # ------------------------------------------------------------ stop

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT (a clean exit: lumen-otel flushes), then SIGTERM, then SIGKILL; services first."""
        order = [p for p in self.processes if p.name != "collector"]
        order += [p for p in self.processes if p.name == "collector"]
        for group in (
            [p for p in order if p.name != "collector"],
            [p for p in order if p.name == "collector"],
        ):
            for process in group:
                if process.proc.poll() is None:
                    self.on_progress("stopping", process.name, "")
                    with contextlib.suppress(ProcessLookupError):
                        process.proc.send_signal(signal.SIGINT)
            for process in group:
                self._reap(process, timeout)
        self.processes.clear()

    def _reap(self, process: _Process, timeout: float) -> None:
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.proc.send_signal(sig)
            try:
                process.proc.wait(timeout=timeout if sig is None else 5.0)
                break
            except subprocess.TimeoutExpired:
                continue
        process.handle.close()
        self.on_progress("stopped", process.name, str(process.proc.returncode))


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM (and SIGHUP) become KeyboardInterrupt, so ``finally`` blocks stop the services."""

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                saved[sig] = signal.signal(sig, raise_interrupt)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
