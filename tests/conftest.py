"""Shared fixtures: loopback ports, real subprocess services, the OTLP receiver."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lumen_otel.testing import OTLPReceiver

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PHI_SAMPLES = REPO / "tests" / "data" / "phi-samples" / "phi_samples.jsonl"

os.environ.setdefault("LUMEN_OTEL_STRICT", "1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited with {proc.returncode}:\n{out.decode()}\n{err.decode()}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any lumen/OTel/Lumen-Logger settings."""
    prefixes = ("LUMEN_", "OTEL_", "LOG_", "DJANGO_SETTINGS_MODULE", "NO_COLOR", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["LUMEN_OTEL_STRICT"] = "1"
    env.update(extra)
    return env


@dataclass
class Service:
    """A real server process on a loopback port."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: str = ""
    stderr: str = ""
    logs: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.stdout, self.stderr = out.decode(errors="replace"), err.decode(errors="replace")


@pytest.fixture
def start_service() -> Iterator[object]:
    started: list[Service] = []

    def start(argv: list[str], env: dict[str, str], cwd: Path, port: int, timeout: float = 30.0) -> Service:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        service = Service(proc, port)
        started.append(service)
        wait_for_port(port, timeout, proc)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Undo configure_logging() after an in-process test (the SDK's globals stay)."""
    import logging

    from lumen_otel.testing import reset

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    reset()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
