"""HTTP overhead: FastAPI (uvicorn, one worker) and Django (gunicorn, one gthread worker) on loopback.

Configurations, each a fresh server process per round, rounds interleaved, medians reported:

  bare   the app with stdlib logging to stdout (no telemetry)
  instr  bare + the upstream instrumentation alone (FastAPI/Django instrumentor, SDK providers that
         export nothing, no log handler): the floor under any stack built on it, lumen-otel's too
  lumen  ``opentelemetry-instrument`` with the lumen distro: traces, metrics, correlation, JSON logs
         on stdout and OTLP/HTTP logs - the full product as a service runs it
  peer   the upstream parts a team assembles: opentelemetry-instrumentation-fastapi (defaults) +
         asgi-correlation-id + the OpenTelemetry logging handler, OTLP/HTTP for traces, metrics and
         logs with the SDK batch processors (Django: opentelemetry-instrumentation-django + the
         logging handler; asgi-correlation-id is ASGI-only)

Every request logs one line (plus the server's access line where the server writes one). Stdout
goes to /dev/null; OTLP goes to a discarding loopback sink in a separate process. The load comes
from ``wrk`` (Debian package ``wrk``), bounded by ``--duration``.

    .venv/bin/python benchmarks/bench_http.py [--rounds 3] [--duration 10] [--quick]
        [--frameworks fastapi,django]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

APPS = _common.HERE / "apps"
VENV_BIN = Path(sys.executable).parent
CONFIGS = ("bare", "instr", "lumen", "peer")
BUDGET_THROUGHPUT = 0.60
BUDGET_P99 = 2.0
DJANGO_THREADS = 4

SINK_CODE = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
counts = {}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True
threading.Thread(target=s.serve_forever, daemon=True).start()
print(f"http://127.0.0.1:{s.server_address[1]}", flush=True)
for line in sys.stdin:
    with lock:
        print(repr(counts), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


class Sink:
    """A discarding OTLP/HTTP sink in its own process: answers 200, counts POSTs per path."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SINK_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        return dict(eval(self.proc.stdout.readline()))  # noqa: S307 - our own child's repr of a dict

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(10)


def _env(framework: str, stack: str, sink: Sink | None) -> dict[str, str]:
    prefixes = ("LUMEN_", "OTEL_", "LOG_", "DJANGO_SETTINGS_MODULE", "NO_COLOR", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(APPS)
    env["BENCH_STACK"] = stack
    if sink is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
    if stack == "lumen":
        env.update({"OTEL_SERVICE_NAME": "bench-lumen", "LUMEN_ENV": "prod"})
    if framework == "django":
        env["DJANGO_SETTINGS_MODULE"] = "benchdjango.settings"  # the launcher's Django instrumentor reads it
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the app (not just the listening socket: gunicorn's worker boots later) answers 200."""
    import urllib.request

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http
                if response.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s (last: {last})")


def _argv(framework: str, stack: str, port: int) -> list[str]:
    if framework == "fastapi":
        argv = [
            str(VENV_BIN / "uvicorn"),
            "fastapi_bench_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
    else:
        # gthread: the sync worker closes every connection and stalls wrk's keep-alive clients
        argv = [
            str(VENV_BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            str(DJANGO_THREADS),
            "benchdjango.wsgi:application",
        ]
    if stack == "lumen":
        argv = [str(VENV_BIN / "opentelemetry-instrument"), *argv]
    return argv


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, duration: float, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    result: dict[str, Any] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    result["socket_errors"] = errors.group(1).strip() if errors else ""
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return result


def run_one(framework: str, stack: str, duration: float, warmup: float, connections: int) -> dict[str, Any]:
    port = free_port()
    sink = Sink() if stack not in ("bare", "instr") else None
    with tempfile.TemporaryDirectory(prefix="lumen-bench-http-") as tmp:
        errlog = Path(tmp) / "stderr.txt"
        with errlog.open("wb") as err:
            proc = subprocess.Popen(
                _argv(framework, stack, port),
                cwd=str(APPS),
                env=_env(framework, stack, sink),
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        try:
            wait_for_port(port, proc)
            path = "/items/42"
            wait_ready(f"http://127.0.0.1:{port}{path}", proc)
            if warmup > 0:
                run_wrk(f"http://127.0.0.1:{port}{path}", warmup, connections)
            result = run_wrk(f"http://127.0.0.1:{port}{path}", duration, connections)
        except Exception as exc:
            raise RuntimeError(f"{framework}/{stack}: {exc}\n{errlog.read_text()[-3000:]}") from exc
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            if sink is not None:
                time.sleep(0.2)
                result_counts = sink.counts()
                sink.stop()
        if sink is not None:
            result["sink_posts"] = result_counts
        result["stderr_tail"] = errlog.read_text(errors="replace").strip().splitlines()[-2:]
    return result


def run_framework(
    framework: str, rounds: int, duration: float, warmup: float, connections: int, configs: tuple[str, ...]
) -> tuple[bool, dict[str, Any]]:
    server = (
        "uvicorn (1 worker)"
        if framework == "fastapi"
        else f"gunicorn (1 gthread worker, {DJANGO_THREADS} threads)"
    )
    if framework == "django":
        connections = min(connections, DJANGO_THREADS)
    print(
        _common.header(
            f"bench_http: {framework} under {server}, wrk -t1 -c{connections} for {duration:g} s after a "
            f"{warmup:g} s warm-up, {rounds} interleaved rounds",
            extra_versions=(
                "fastapi",
                "uvicorn",
                "django",
                "gunicorn",
                "opentelemetry-instrumentation-fastapi",
                "opentelemetry-instrumentation-django",
                "asgi-correlation-id",
            ),
        )
    )
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for round_no, config in _common.interleaved(configs, rounds):
        result = run_one(framework, config, duration, warmup, connections)
        results[config].append(result)
        print(
            f"  round {round_no + 1} {config:<6} {result['rps']:9.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
            f"p99 {result['p99_ms']:7.2f} ms  non-2xx {result['non_2xx']}  "
            f"OTLP posts {result.get('sink_posts', '-')}",
            flush=True,
        )
    print(f"load average at end: {_common.load_average()}")
    med = {
        c: {k: _common.median(r[k] for r in results[c]) for k in ("rps", "p50_ms", "p99_ms")} for c in configs
    }
    base = med.get("bare")
    if base and not base["rps"]:
        raise RuntimeError(f"{framework}: the bare server answered no requests")
    rows = []
    for c in configs:
        m = med[c]
        rows.append(
            (
                c,
                f"{m['rps']:.1f}",
                f"{m['p50_ms']:.2f}",
                f"{m['p99_ms']:.2f}",
                f"{m['rps'] / base['rps']:.2f}x" if base else "-",
                f"{m['p99_ms'] / base['p99_ms']:.2f}x" if base else "-",
                sum(r["non_2xx"] for r in results[c]),
            )
        )
    print()
    print(
        _common.table(rows, ("config", "req/s", "p50 ms", "p99 ms", "x bare req/s", "x bare p99", "non-2xx"))
    )
    ok = True
    if base and "lumen" in med:
        throughput = med["lumen"]["rps"] / base["rps"]
        p99 = med["lumen"]["p99_ms"] / base["p99_ms"]
        good_t, good_p = throughput >= BUDGET_THROUGHPUT, p99 <= BUDGET_P99
        ok = good_t and good_p
        print(
            f"RATIO {framework} lumen/bare throughput = {throughput:.2f}x (budget >= {BUDGET_THROUGHPUT}x) "
            f"{_common.verdict(good_t)}"
        )
        print(
            f"RATIO {framework} lumen/bare p99 = {p99:.2f}x (budget <= {BUDGET_P99}x) "
            f"{_common.verdict(good_p)}"
        )
    if base and "peer" in med:
        print(
            f"RATIO {framework} peer/bare throughput = {med['peer']['rps'] / base['rps']:.2f}x, "
            f"p99 = {med['peer']['p99_ms'] / base['p99_ms']:.2f}x"
        )
    if base and "instr" in med:
        print(
            f"RATIO {framework} instr/bare throughput = {med['instr']['rps'] / base['rps']:.2f}x, "
            f"p99 = {med['instr']['p99_ms'] / base['p99_ms']:.2f}x (upstream instrumentation alone)"
        )
    if "lumen" in med and "peer" in med:
        print(f"RATIO {framework} lumen/peer throughput = {med['lumen']['rps'] / med['peer']['rps']:.2f}x")
    return ok, {"medians": med, "rounds": results}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--frameworks", default="fastapi,django")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--quick", action="store_true", help="smoke: 2 s runs after 1 s of warm-up")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_http needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    configs = tuple(c for c in args.configs.split(",") if c)
    ok = True
    summary: dict[str, Any] = {}
    for framework in (f for f in args.frameworks.split(",") if f):
        good, summary[framework] = run_framework(
            framework, max(1, args.rounds), args.duration, args.warmup, args.connections, configs
        )
        ok &= good
        print()
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
