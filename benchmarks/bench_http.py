"""HTTP overhead: FastAPI (uvicorn, one worker) and Django (gunicorn, one gthread worker) on loopback.

Configurations, each a fresh server process per round, rounds interleaved, medians reported:

  bare   the app with stdlib logging to stdout (no telemetry)
  instr  bare + the upstream instrumentation alone (FastAPI/Django instrumentor, SDK providers that
         export nothing, no log handler): the floor under any stack built on it, lumen-otel's too
  lumen  ``opentelemetry-instrument`` with the lumen distro: traces, metrics, correlation, redaction,
         JSON logs on stdout, the rotating JSON file (``LUMEN_LOG_DIR``) and OTLP/HTTP for every
         signal - the full product as a service runs it, with its defaults
  lumen+srvmetrics  the same with ``LUMEN_HTTP_SERVER_METRICS=on`` (the instrumentations' own
         ``http.server.*`` metrics recorded in the process as well as derived by the collector)
  peer   the upstream parts a team assembles: opentelemetry-instrumentation-fastapi (defaults) +
         asgi-correlation-id + the OpenTelemetry logging handler, OTLP/HTTP for traces, metrics and
         logs with the SDK batch processors (Django: opentelemetry-instrumentation-django + the
         logging handler; asgi-correlation-id is ASGI-only)

Every request logs one line (plus the server's access line where the server writes one). Stdout
goes to /dev/null; OTLP goes to a discarding loopback sink in a separate process. The load comes
from ``wrk`` (Debian package ``wrk``), bounded by ``--duration``. Besides req/s and latency each
run reports the worker's CPU time per request (all its threads, from ``/proc``; steadier than
req/s on a shared machine) and its resident memory at the end of the load.

``--profile N`` instead serves N requests (one keep-alive client, sequential, loopback) to each
configuration under a deterministic profiler in the worker (``cProfile``, one profiler per thread,
started before the launcher so the export and log-writer threads are profiled too) and prints the
top functions with their share of the per-request time, grouped as lumen-otel, upstream
OpenTelemetry, and everything else.

    .venv/bin/python benchmarks/bench_http.py [--rounds 3] [--duration 10] [--quick]
        [--frameworks fastapi,django] [--configs bare,instr,lumen] [--profile 2000]
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
CONFIGS = ("bare", "instr", "lumen", "lumen+srvmetrics", "peer")
LUMEN_CONFIGS = ("lumen", "lumen+srvmetrics", "lumen@baseline")
#: ``--baseline DIR``: the directory holding another copy of the ``lumen_otel`` package, which the
#: ``lumen@baseline`` configuration imports instead of this tree's (two versions, one run)
BASELINE: list[Path] = []
#: ``--lumen-env NAME=VALUE``: extra settings for every lumen configuration
LUMEN_ENV: dict[str, str] = {}
#: full telemetry against the upstream instrumentation alone, and its p99 against bare
BUDGET_VS_INSTR = 1.0
BUDGET_P99 = 2.5
BUDGET_RSS_MIB = 30.0
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


def _env(framework: str, stack: str, sink: Sink | None, log_dir: Path | None = None) -> dict[str, str]:
    prefixes = ("LUMEN_", "OTEL_", "LOG_", "DJANGO_SETTINGS_MODULE", "NO_COLOR", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(APPS)
    if stack == "lumen@baseline":
        if not BASELINE:
            raise RuntimeError("lumen@baseline needs --baseline DIR")
        env["PYTHONPATH"] = f"{BASELINE[0]}{os.pathsep}{APPS}"
    env["BENCH_STACK"] = stack
    if sink is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
    if stack in LUMEN_CONFIGS:
        env.update({"OTEL_SERVICE_NAME": "bench-lumen", "LUMEN_ENV": "prod"})
        if log_dir is not None:
            env["LUMEN_LOG_DIR"] = str(log_dir)
        env.update(LUMEN_ENV)
    if stack == "lumen+srvmetrics":
        env["LUMEN_HTTP_SERVER_METRICS"] = "on"
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
    if stack in LUMEN_CONFIGS:
        argv = [str(VENV_BIN / "opentelemetry-instrument"), *argv]
    return argv


# ---------------------------------------------------------------- the worker, seen from /proc

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def worker_pid(proc: subprocess.Popen[bytes], framework: str) -> int:
    """The process serving requests: uvicorn itself, gunicorn's one worker (a child of the master)."""
    if framework == "fastapi":
        return proc.pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


# ---------------------------------------------------------------- --profile


def _profiled_argv(argv: list[str]) -> list[str]:
    boot = [sys.executable, str(APPS / "_profile_boot.py")]
    if Path(argv[0]).name == "opentelemetry-instrument":
        return [*boot, "--instrument", *argv[1:]]
    return [*boot, *argv]


def _sequential_requests(port: int, path: str, count: int, latencies: list[float] | None = None) -> int:
    """``count`` GETs one after another on one keep-alive connection; how many answered 200."""
    import http.client

    ok = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if latencies is not None:
                latencies.append((time.perf_counter() - start) * 1000)
            ok += response.status == 200
    finally:
        conn.close()
    return ok


def _callgrind_argv(argv: list[str], out_dir: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # switched on around the measured requests only
        "--trace-children=yes",  # opentelemetry-instrument execs the server
        f"--callgrind-out-file={out_dir}/callgrind.%p",
        *argv,
    ]


def run_callgrind(port: int, path: str, pid: int, count: int, out_dir: Path) -> dict[str, Any]:
    """Instructions the worker (all threads) executes for ``count`` sequential requests: collection
    is switched on only around them (and the export threads' schedule delay after them). A count of
    instructions, unlike a time, does not move with the machine's other load."""
    _sequential_requests(port, path, 50)
    subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True, timeout=120)
    ok = _sequential_requests(port, path, count)
    time.sleep(2.0)
    subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True, timeout=120)
    os.kill(pid, signal.SIGTERM)  # callgrind writes what it collected as the process exits
    dump = out_dir / f"callgrind.{pid}"
    total = 0
    deadline = time.monotonic() + 300
    while not total and time.monotonic() < deadline:
        time.sleep(1.0)
        if dump.exists():
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith(("totals:", "summary:")):
                    total = int(line.split()[1])
    if not total:
        raise RuntimeError(
            f"callgrind wrote no totals for {pid}: {sorted(p.name for p in out_dir.iterdir())}"
        )
    return {"requests": ok, "instructions_per_request": total / max(1, ok), "non_2xx": count - ok}


def run_sequential(port: int, path: str, pid: int, count: int) -> dict[str, Any]:
    """``count`` sequential requests after 200 not counted: the worker's CPU time per request (all
    its threads, export included: the run ends once the export threads' schedule delay has passed)
    and the client's latency percentiles. One request at a time leaves the machine's other load
    and the load generator out of the worker's CPU time more than ``wrk``'s concurrency does."""
    _sequential_requests(port, path, 200)
    time.sleep(0.5)
    latencies: list[float] = []
    cpu_before = cpu_seconds(pid)
    ok = _sequential_requests(port, path, count, latencies)
    time.sleep(1.2)
    cpu = cpu_seconds(pid) - cpu_before
    latencies.sort()
    return {
        "requests": ok,
        "rps": count / (sum(latencies) / 1000),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "cpu_ms_per_request": cpu * 1000 / max(1, ok),
        "rss_mib": rss_mib(pid),
        "non_2xx": count - ok,
    }


Func = tuple[str, int, str]


_PROFILER_OWN = ("_profile_boot.py", "cProfile.py", "_lsprof.Profiler")


def _category(func: Func) -> str:
    filename = func[0].replace(os.sep, "/")
    if any(own in filename or own in func[2] for own in _PROFILER_OWN):
        return "profiler"
    if "/lumen_otel/" in filename:
        return "lumen-otel"
    if "/opentelemetry/" in filename:
        return "upstream OpenTelemetry"
    if filename == "~":
        return "builtin"
    return "framework, server, stdlib"


_PARTS = (
    ("/lumen_otel/_logging/", "lumen-otel logging"),
    ("/lumen_otel/_otlp/", "lumen-otel OTLP"),
    ("/lumen_otel/_redaction/", "lumen-otel redaction"),
    ("/lumen_otel/_correlation/", "lumen-otel correlation"),
    ("/lumen_otel/", "lumen-otel other"),
    ("/opentelemetry/sdk/metrics/", "upstream metrics SDK"),
    ("/opentelemetry/sdk/trace/", "upstream trace SDK"),
    ("/opentelemetry/instrumentation/", "upstream instrumentations"),
    ("/opentelemetry/", "upstream API, context, other"),
)


def _part(func: Func) -> str:
    filename = func[0].replace(os.sep, "/")
    return next((label for marker, label in _PARTS if marker in filename), _category(func))


def _load_profile(directory: Path, errlog: Path) -> dict[str, Any]:
    """The worker's profile (see apps/_profile_boot.py): own time per function, per category, per thread.

    A builtin's own time (``re``, ``orjson``, locks...) counts to the category of the Python
    functions that called it, in proportion to the time each spent in it."""
    import marshal

    files = sorted(directory.glob("*.marshal"))
    if not files:
        raise RuntimeError(f"the worker wrote no profile\n{errlog.read_text()[-3000:]}")
    data = marshal.loads(files[-1].read_bytes())  # noqa: S302 - written by our own child
    data["functions"] = {f: v for f, v in data["functions"].items() if _category(f) != "profiler"}
    other = "framework, server, stdlib"
    grouped: dict[str, dict[str, float]] = {"categories": {}, "parts": {}}
    for kind, classify in (("categories", _category), ("parts", _part)):
        sums = grouped[kind]
        for func, (_, tt, callers) in data["functions"].items():
            cat = classify(func)
            if cat != "builtin":
                sums[cat] = sums.get(cat, 0.0) + tt
                continue
            total = sum(max(0.0, v) for v in callers.values())
            if not total:
                sums[other] = sums.get(other, 0.0) + tt
                continue
            for caller, ctt in callers.items():
                caller_cat = classify(caller)
                caller_cat = other if caller_cat == "builtin" else caller_cat
                sums[caller_cat] = sums.get(caller_cat, 0.0) + tt * max(0.0, ctt) / total
    return {"functions": data["functions"], "threads": data["threads"], **grouped}


def _short(func: Func) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    path = filename.replace(os.sep, "/")
    for marker in ("/site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line} {name}"


def report_profile(framework: str, config: str, result: dict[str, Any], top: int = 25) -> None:
    profile = result["profile"]
    requests = max(1, result["requests"])
    total = sum(profile["categories"].values()) or 1.0
    print(
        f"\n-- profile {framework}/{config}: {result['requests']} requests, "
        f"{total * 1e6 / requests:.0f} us of profiled CPU per request (cProfile inflates small calls)"
    )
    for cat, seconds in sorted(profile["categories"].items(), key=lambda kv: -kv[1]):
        print(f"   {cat:<28} {100 * seconds / total:5.1f} %  {seconds * 1e6 / requests:7.0f} us/request")
    print("   by part:")
    for part, seconds in sorted(profile["parts"].items(), key=lambda kv: -kv[1]):
        print(f"     {part:<30} {100 * seconds / total:5.1f} %  {seconds * 1e6 / requests:7.0f} us/request")
    print(
        "   by thread: "
        + ", ".join(
            f"{name} {100 * t / total:.1f} %"
            for name, t in sorted(profile["threads"].items(), key=lambda kv: -kv[1])
            if t / total >= 0.005
        )
    )
    ranked = sorted(profile["functions"].items(), key=lambda kv: -kv[1][1])
    own = [r for r in ranked if _category(r[0]) == "lumen-otel"][:12]
    rows = [*ranked[:top], ("", (0, 0.0, {})), *own]
    for func, (nc, tt, _) in rows:
        if not func:
            print("   lumen-otel's own functions:")
            continue
        print(
            f"   {100 * tt / total:5.1f} %  {nc / requests:6.1f} calls/req  "
            f"[{_category(func)[:8]}] {_short(func)}"
        )


def run_one(
    framework: str,
    stack: str,
    duration: float,
    warmup: float,
    connections: int,
    profile_requests: int = 0,
    sequential: int = 0,
    callgrind: int = 0,
) -> dict[str, Any]:
    port = free_port()
    sink = Sink() if stack not in ("bare", "instr") else None
    with tempfile.TemporaryDirectory(prefix="lumen-bench-http-") as tmp:
        errlog = Path(tmp) / "stderr.txt"
        log_dir = Path(tmp) / "logs"
        log_dir.mkdir()
        env = _env(framework, stack, sink, log_dir)
        argv = _argv(framework, stack, port)
        if profile_requests:
            env["BENCH_PROFILE_DIR"] = str(Path(tmp) / "profile")
            argv = _profiled_argv(argv)
        if callgrind:
            argv = _callgrind_argv(argv, Path(tmp))
        with errlog.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=str(APPS),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        try:
            slow = 10.0 if callgrind else 1.0
            wait_for_port(port, proc, timeout=30.0 * slow)
            path = "/items/42"
            wait_ready(f"http://127.0.0.1:{port}{path}", proc, timeout=60.0 * slow)
            pid = worker_pid(proc, framework)
            if profile_requests:
                _sequential_requests(port, path, min(200, profile_requests))  # warm-up, not counted
                time.sleep(0.5)
                os.kill(pid, signal.SIGRTMIN + 1)
                time.sleep(0.5)
                result = {"requests": _sequential_requests(port, path, profile_requests)}
                time.sleep(1.5)  # the export threads' work for these requests (schedule delay 1 s)
                os.kill(pid, signal.SIGRTMIN + 2)
                time.sleep(1.0)
            elif callgrind:
                result = run_callgrind(port, path, pid, callgrind, Path(tmp))
            elif sequential:
                result = run_sequential(port, path, pid, sequential)
            else:
                if warmup > 0:
                    run_wrk(f"http://127.0.0.1:{port}{path}", warmup, connections)
                cpu_before = cpu_seconds(pid)
                result = run_wrk(f"http://127.0.0.1:{port}{path}", duration, connections)
                result["cpu_ms_per_request"] = (
                    (cpu_seconds(pid) - cpu_before) * 1000 / max(1, result["requests"])
                )
                result["rss_mib"] = rss_mib(pid)
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
        if profile_requests:
            result["profile"] = _load_profile(Path(env["BENCH_PROFILE_DIR"]), errlog)
    return result


def run_framework(
    framework: str,
    rounds: int,
    duration: float,
    warmup: float,
    connections: int,
    configs: tuple[str, ...],
    profile_requests: int = 0,
    sequential: int = 0,
    callgrind: int = 0,
) -> tuple[bool, dict[str, Any]]:
    server = (
        "uvicorn (1 worker)"
        if framework == "fastapi"
        else f"gunicorn (1 gthread worker, {DJANGO_THREADS} threads)"
    )
    if framework == "django":
        connections = min(connections, DJANGO_THREADS)
    if profile_requests:
        load = f"{profile_requests} sequential requests under cProfile"
    elif sequential:
        load = f"{sequential} sequential requests (one keep-alive client)"
    elif callgrind:
        load = f"{callgrind} sequential requests under valgrind --tool=callgrind"
    else:
        load = f"wrk -t1 -c{connections} for {duration:g} s after a {warmup:g} s warm-up"
    print(
        _common.header(
            f"bench_http: {framework} under {server}, {load}, {rounds} interleaved rounds",
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
        result = run_one(
            framework, config, duration, warmup, connections, profile_requests, sequential, callgrind
        )
        results[config].append(result)
        if profile_requests:
            report_profile(framework, config, result)
            continue
        if callgrind:
            print(
                f"  round {round_no + 1} {config:<16} "
                f"{result['instructions_per_request']:12,.0f} instructions/request"
            )
            continue
        print(
            f"  round {round_no + 1} {config:<16} {result['rps']:9.1f} req/s  "
            f"p50 {result['p50_ms']:7.2f} ms  "
            f"p99 {result['p99_ms']:7.2f} ms  CPU {result['cpu_ms_per_request']:.3f} ms/req  "
            f"RSS {result['rss_mib']:.1f} MiB  non-2xx {result['non_2xx']}  "
            f"OTLP posts {result.get('sink_posts', '-')}",
            flush=True,
        )
    print(f"load average at end: {_common.load_average()}")
    if callgrind:
        ipr = {c: _common.median(r["instructions_per_request"] for r in results[c]) for c in configs}
        for c in configs:
            vs = "  ".join(f"{ipr[c] / ipr[o]:.2f}x {o}" for o in ("bare", "instr") if o in ipr and o != c)
            print(f"INSTRUCTIONS {framework} {c:<16} {ipr[c]:12,.0f} per request  {vs}")
        return True, {"instructions_per_request": ipr}
    if profile_requests:
        return True, {"profiles": {c: [r["profile"]["categories"] for r in results[c]] for c in configs}}
    keys = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "rss_mib")
    med = {c: {k: _common.median(r[k] for r in results[c]) for k in keys} for c in configs}
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
                f"{m['cpu_ms_per_request']:.3f}",
                f"{m['rss_mib']:.1f}",
                sum(r["non_2xx"] for r in results[c]),
            )
        )
    print()
    print(
        _common.table(
            rows,
            (
                "config",
                "req/s",
                "p50 ms",
                "p99 ms",
                "x bare req/s",
                "x bare p99",
                "CPU ms/req",
                "RSS MiB",
                "non-2xx",
            ),
        )
    )
    ok = True
    instr = med.get("instr")
    for lumen in (c for c in LUMEN_CONFIGS if c in med):
        m = med[lumen]
        if instr:
            vs_instr = m["rps"] / instr["rps"]
            good = vs_instr >= BUDGET_VS_INSTR
            ok &= good
            print(
                f"RATIO {framework} {lumen}/instr throughput = {vs_instr:.2f}x "
                f"(budget >= {BUDGET_VS_INSTR}x) {_common.verdict(good)}; "
                f"CPU per request {m['cpu_ms_per_request'] / instr['cpu_ms_per_request']:.2f}x"
            )
        if base:
            p99 = m["p99_ms"] / base["p99_ms"]
            rss = m["rss_mib"] - base["rss_mib"]
            good_p, good_r = p99 <= BUDGET_P99, rss <= BUDGET_RSS_MIB
            ok &= good_p and good_r
            print(f"RATIO {framework} {lumen}/bare throughput = {m['rps'] / base['rps']:.2f}x")
            print(
                f"RATIO {framework} {lumen}/bare p99 = {p99:.2f}x (budget <= {BUDGET_P99}x) "
                f"{_common.verdict(good_p)}"
            )
            print(
                f"RATIO {framework} {lumen} RSS = bare {rss:+.1f} MiB (budget <= +{BUDGET_RSS_MIB:g} MiB) "
                f"{_common.verdict(good_r)}"
            )
    if base and "peer" in med:
        print(
            f"RATIO {framework} peer/bare throughput = {med['peer']['rps'] / base['rps']:.2f}x, "
            f"p99 = {med['peer']['p99_ms'] / base['p99_ms']:.2f}x"
        )
    if base and instr:
        print(
            f"RATIO {framework} instr/bare throughput = {instr['rps'] / base['rps']:.2f}x, "
            f"p99 = {instr['p99_ms'] / base['p99_ms']:.2f}x (upstream instrumentation alone)"
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
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="profile N sequential requests per configuration"
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=0,
        metavar="N",
        help="instead of wrk: N requests one at a time; CPU per request and latency",
    )
    parser.add_argument(
        "--callgrind",
        type=int,
        default=0,
        metavar="N",
        help="instead of wrk: instructions per request over N sequential requests (valgrind)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a directory holding another version of the lumen_otel package, run as lumen@baseline",
    )
    parser.add_argument(
        "--lumen-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every lumen configuration (repeatable)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_http needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    configs = tuple(c for c in args.configs.split(",") if c)
    LUMEN_ENV.update(item.split("=", 1) for item in args.lumen_env)
    if args.baseline is not None:
        if not (args.baseline / "lumen_otel" / "__init__.py").is_file():
            print(f"--baseline {args.baseline}: no lumen_otel package there", file=sys.stderr)
            return 2
        BASELINE.append(args.baseline.resolve())
    ok = True
    summary: dict[str, Any] = {}
    for framework in (f for f in args.frameworks.split(",") if f):
        good, summary[framework] = run_framework(
            framework,
            max(1, args.rounds),
            args.duration,
            args.warmup,
            args.connections,
            configs,
            max(0, args.profile),
            max(0, args.sequential),
            max(0, args.callgrind),
        )
        ok &= good
        print()
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
