"""Fixtures for the reliability suite: a collector stand-in we can kill and restart on the
same port, real app processes with their output in files, and small helpers that wait on a
condition (never on a fixed sleep) and time single requests against a behavioural bound.

The "collector" here is :class:`lumen_otel.testing.OTLPReceiver` in a child process (see
``_receiver_main.py``); the tests that need the real ``lumen-otelcol`` binary say so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import VENV_BIN, clean_env, free_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"


# ---------------------------------------------------------------- the collector stand-in


@dataclass
class RemoteReceiver:
    """An OTLP/HTTP receiver in a child process, on a port that stays the same across restarts."""

    out: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, fail_status: int | None = None, delay: float = 0.0, answers: list[dict[str, Any]] | None = None
    ) -> RemoteReceiver:
        """(Re)start; ``answers``: per-request rules, each ``OTLPReceiver.answer``'s keywords."""
        self.kill()
        argv = [sys.executable, str(HERE / "_receiver_main.py"), str(self.port), str(self.out)]
        for answer in answers or ():
            argv += ["--answer", json.dumps(answer)]
        if fail_status is not None:
            argv += ["--fail-status", str(fail_status)]
        if delay:
            argv += ["--delay", str(delay)]
        deadline = time.monotonic() + 15
        while True:  # the old socket may linger for a moment after a kill
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.strip() == b"READY":
                return self
            output = line + self.proc.stdout.read()
            self.kill()
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver did not start: {output!r}")
            time.sleep(0.2)

    def kill(self) -> None:
        """The collector goes away: the process dies and every connection to it closes."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self.proc = None

    def items(self, kind: str) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        found = []
        for line in self.out.read_text().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if item["signal"] == kind:
                found.append(item)
        return found

    def logs(self) -> list[dict[str, Any]]:
        return self.items("log")

    def spans(self) -> list[dict[str, Any]]:
        return self.items("span")

    def metric_total(self, name: str, **attributes: Any) -> float:
        """Latest cumulative value of ``name`` summed over the matching series (as OTLPReceiver's)."""
        latest: dict[tuple[Any, ...], float] = {}
        for point in self.items("metric"):
            if point["name"] != name or any(point["attributes"].get(k) != v for k, v in attributes.items()):
                continue
            key = (point["resource"].get("service.instance.id"), tuple(sorted(point["attributes"].items())))
            latest[key] = point["value"]
        return float(sum(latest.values()))

    def wait_for(self, predicate: Callable[[RemoteReceiver], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.1)
        return predicate(self)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RemoteReceiver]:
    remote = RemoteReceiver(tmp_path / "received.jsonl")
    yield remote
    remote.kill()


# ---------------------------------------------------------------- app processes


@dataclass
class App:
    """A real service process; stdout/stderr go to files (a full pipe would stall the app)."""

    proc: subprocess.Popen[bytes]
    port: int
    log_dir: Path
    stdout_path: Path
    stderr_path: Path
    exit_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def rss_kib(self, pid: int | None = None) -> int:
        for line in Path(f"/proc/{pid or self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self, timeout: float = 20.0) -> float:
        """SIGTERM; the seconds it took to exit (killed and failed after ``timeout``)."""
        if self.proc.poll() is None:
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"did not exit within {timeout}s of SIGTERM:\n{self.stderr[-3000:]}"
                ) from None
            self.exit_seconds = time.monotonic() - started
        return self.exit_seconds or 0.0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def file_records(self, service: str) -> list[dict[str, Any]]:
        """Every JSON line of ``<service>.log`` and its rotated copies (a split line fails the parse)."""
        records = []
        for path in sorted(self.log_dir.glob(f"{service}.log*")):
            if path.name.endswith(".lock"):
                continue
            records += [json.loads(line) for line in path.read_text().splitlines()]
        return records


def app_env(service: str, log_dir: Path, endpoint: str | None, **extra: str) -> dict[str, str]:
    settings = {
        "OTEL_SERVICE_NAME": service,
        "LUMEN_ENV": "prod",
        "LUMEN_LOG_DIR": str(log_dir),
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
        "LUMEN_SHUTDOWN_TIMEOUT": "5",
        # the SDK's own exporters write retry warnings through logging: fine, but not strict-mode errors
        "LUMEN_OTEL_STRICT": "0",
        "PYTHONPATH": str(APPS),
    }
    if endpoint is not None:
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return clean_env(**{**settings, **extra})


def uvicorn_argv(port: int, module: str = "rel_app:app", *more: str) -> list[str]:
    return [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "uvicorn"),
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        *more,
    ]


def wait_healthy(app: App, path: str = "/health", timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise AssertionError(
                f"app exited with {app.proc.returncode}:\n{app.stderr[-4000:]}\n{app.stdout[-2000:]}"
            )
        try:
            if httpx.get(app.url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"app not ready within {timeout}s:\n{app.stderr[-4000:]}")


def launch(
    argv: list[str],
    env: dict[str, str],
    directory: Path,
    *,
    name: str = "app",
    health: str | None = "/health",
    port: int = 0,
    ready_timeout: float = 60.0,
) -> App:
    """Start ``argv`` in ``APPS`` with its output in ``directory``; wait for ``health`` if given."""
    out, err = directory / f"{name}.out", directory / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(argv, env=env, cwd=APPS, stdout=stdout, stderr=stderr)
    app = App(proc, port, Path(env.get("LUMEN_LOG_DIR", directory)), out, err)
    if health is not None:
        try:
            wait_healthy(app, health, ready_timeout)
        except BaseException:
            app.kill()
            raise
    return app


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    """``start_app(argv, env, name=..., port=...)``; every app still running is killed afterwards."""
    started: list[App] = []

    def start(
        argv: list[str],
        env: dict[str, str],
        *,
        name: str = "app",
        health: str | None = "/health",
        port: int = 0,
        ready_timeout: float = 60.0,
    ) -> App:
        app = launch(
            argv,
            env,
            tmp_path,
            name=name,
            health=health if port else None,
            port=port,
            ready_timeout=ready_timeout,
        )
        started.append(app)
        return app

    yield start
    for app in started:
        app.kill()


# ---------------------------------------------------------------- waiting and timing


def wait_until(predicate: Callable[[], bool], what: str | Callable[[], str], timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail saying ``what`` was awaited after ``timeout``.

    A condition wait, not a speed requirement: the deadline is generous, and only a condition that
    never comes true (or the machine stopping) reaches it. ``what`` may be a callable, evaluated on
    failure, for the state seen last."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"still waiting after {timeout:g} s for: {detail}")
        time.sleep(0.05)


class Stalled(BaseException):
    """The CPU budget ran out (a BaseException: the redactor's error containment must not
    swallow it and return a withheld value)."""


@contextlib.contextmanager
def cpu_deadline(seconds: float, what: str) -> Iterator[None]:
    """Interrupt the block once this process has spent ``seconds`` of CPU time in it.

    ``ITIMER_VIRTUAL`` counts the process's own user CPU time and delivers SIGVTALRM, which the
    regex engine checks between steps; pytest-timeout's SIGALRM wall-clock timer is untouched."""

    def expired(signum: int, frame: object) -> None:
        raise Stalled(f"{what}: still running after {seconds:g} CPU seconds")

    previous = signal.signal(signal.SIGVTALRM, expired)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def timed_get(client: httpx.Client, url: str) -> float:
    """GET ``url``; assert the answer is 200; the seconds it took."""
    started = time.monotonic()
    response = client.get(url)
    seconds = time.monotonic() - started
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return seconds


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to ``127.0.0.1:port`` (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                return True
    return False


def numbered(records: list[dict[str, Any]], prefix: str, key: str = "message") -> list[int]:
    """The sorted numbers ``n`` of records whose message is ``<prefix> n`` (duplicates kept)."""
    found = []
    for record in records:
        text = record.get(key)
        if isinstance(text, str) and text.startswith(prefix + " "):
            found.append(int(text.split()[1]))
    return sorted(found)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
