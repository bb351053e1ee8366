"""Export through the real collector: records/s delivered end to end, and app memory while it is down.

Three processes on loopback, nothing mocked: the app (a fresh interpreter running lumen-otel's
``configure_logging()`` prod pipeline, console off, OTLP/HTTP on), the real collector binary
``bin/lumen-otelcol`` (a config written to a temp dir: OTLP/HTTP receiver, memory_limiter and batch
as in ``collector-config/``, an ``otlp_http`` exporter), and a sink (an OTLP/HTTP receiver in its
own process that counts the log records inside the collector's requests). Every record carries its
sequence number in the ``seq`` attribute, so the sink tells loss from duplicates exactly.

  throughput  the app logs N records from one thread as fast as it can (N = 100,000; --quick
              10,000; capped in time), then flushes. Reported: records/s delivered end to end
              (first emit -> last record at the sink), lost = N - unique received, duplicates,
              and the app's own ``lumen.log.dropped``. Budget: zero loss.
  outage      the collector is DOWN while the app logs 1,000 records/s for 60 s (--quick 10 s)
              with ``LUMEN_OTLP_QUEUE_SIZE=2048``; the app's RSS (``VmRSS``) is sampled once a
              second; then the collector starts and the app keeps logging for a while, flushes
              and exits. Budgets: RSS plateaus (growth over the second half of the outage
              < 5 MiB) and stays under 2 x (queue x measured bytes per held record) + 10 MiB;
              every record is delivered or counted in ``lumen.log.dropped``.

    .venv/bin/python benchmarks/bench_export.py [--quick] [--n 100000] [--outage 60] [--json out.json]

Exit status: 0 every budget met, 1 a budget missed, 2 the run itself failed.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

SCRIPT = Path(__file__).resolve()
COLLECTOR_BIN = Path(os.environ.get("LUMEN_OTELCOL_BIN", _common.REPO / "bin" / "lumen-otelcol"))
SERVICE = "bench-export"
MIB = 1024 * 1024

# The record every phase logs: the access-style line of bench_logging.py, plus its sequence number.
MESSAGE = "GET %s -> %d in %.2f ms"
PATH = "/api/v1/exams/search"
ROUTE = "/api/v1/exams/{id}"
WARMUP = 1000  # throughput phase: records sent (seq < 0) and flushed before the clock starts

QUEUE_SIZE = 2048  # LUMEN_OTLP_QUEUE_SIZE in the outage phase
RATE = 1000  # records/s in the outage phase
PLATEAU_BUDGET_MIB = 5.0  # RSS growth allowed over the second half of the outage
SLACK_MIB = 10.0  # on top of 2 x what the held records cost (imports on first failure, allocator)


# ---------------------------------------------------------------------------------- child side


def _rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _app(endpoint: str) -> tuple[Any, Callable[[int], None], Callable[[], dict[str, float]]]:
    """lumen-otel's own logging set-up, exporting to ``endpoint``; the counters read in memory."""
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    # lumen.log.dropped / lumen.log.records go to the global meter: read them here, at exit
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], shutdown_on_exit=False))

    import lumen_otel

    handle = lumen_otel.configure_logging(
        service_name=SERVICE, env="prod", log_format="json", console=False, otlp_endpoint=endpoint
    )
    info = logging.getLogger("bench.export").info

    def log(seq: int) -> None:
        info(MESSAGE, PATH, 200, 1.25, extra={"route": ROUTE, "status_code": 200, "seq": seq})

    def counters() -> dict[str, float]:
        return {f"dropped:{reason}": n for reason, n in _common.dropped_by_reason(reader).items()}

    return handle, log, counters


def _finish(handle: Any, counters: Callable[[], dict[str, float]], result: dict[str, Any], out: Path) -> None:
    # flush first (it exports even after failures), then shut down: what is left is counted
    result["flushed"] = handle.force_flush(timeout=60.0)
    result["t_flushed"] = time.time()
    handle.shutdown(timeout=30.0)
    drops = counters()
    result["drop_reasons"] = drops
    result["dropped"] = sum(drops.values())
    result["cpu_s"] = time.process_time()
    result["rss_end_kib"] = _rss_kib()
    out.write_text(json.dumps(result))


def child_burst(endpoint: str, n: int, cap: float, out: Path) -> None:
    handle, log, counters = _app(endpoint)
    for seq in range(-WARMUP, 0):
        log(seq)
    handle.force_flush(timeout=30.0)
    cpu0 = time.process_time()
    t_start = time.time()
    deadline = time.monotonic() + cap
    emitted = 0
    for seq in range(n):
        log(seq)
        emitted += 1
        if not seq % 1000 and time.monotonic() > deadline:
            break
    t_emitted = time.time()
    result = {"emitted": emitted, "t_start": t_start, "t_emitted": t_emitted, "cpu0_s": cpu0}
    _finish(handle, counters, result, out)


def child_paced(endpoint: str, rate: int, seconds: float, out: Path) -> None:
    handle, log, counters = _app(endpoint)
    rss_ready = _rss_kib()
    t0_wall = time.time()
    t0 = time.monotonic()
    # SIGUSR1 from the parent = "the collector is up": remember the first seq logged after it
    state = {"seq": 0, "seq_at_up": -1}
    signal.signal(signal.SIGUSR1, lambda *_: state.__setitem__("seq_at_up", state["seq"]))
    print(f"EMITTING {t0_wall!r} {rss_ready}", flush=True)
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        ahead = t0 + state["seq"] / rate - now
        if ahead > 0:
            time.sleep(ahead)
        log(state["seq"])
        state["seq"] += 1
    result = {
        "emitted": state["seq"],
        "seq_at_up": state["seq_at_up"],
        "t_start": t0_wall,
        "t_emitted": time.time(),
        "rss_ready_kib": rss_ready,
    }
    _finish(handle, counters, result, out)


def _deep_size(objects: list[Any]) -> int:
    """Bytes reachable from ``objects`` (each object once), not counting types, modules, functions."""
    skip = (type, type(sys), type(_deep_size), type(len))
    seen: set[int] = set()
    stack = list(objects)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def child_held(endpoint: str, queue_size: int, out: Path) -> None:
    """What ``queue_size`` held records cost: fill the OTLP queue (nothing listens), measure it."""
    from lumen_otel._otlp.processor import ResilientLogProcessor

    handle, log, _ = _app(endpoint)
    for seq in range(-50, 0):  # warm-up: first-use allocations are not the records' cost
        log(seq)
    handle.pipeline.flush(30.0)
    processors = [o for o in gc.get_objects() if isinstance(o, ResilientLogProcessor)]
    queued = len(processors[0]._queue) if processors else 0
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for seq in range(queue_size - queued):
        log(seq)
    handle.pipeline.flush(30.0)
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    records = list(processors[0]._queue) if processors else []
    per_record = _deep_size(records) / len(records) if records else 0.0
    # two views of one cost: the objects the queue references (deep size), and what Python
    # allocated, still alive, while those records went through the pipeline (tracemalloc)
    traced_per_record = traced / max(1, queue_size - queued)
    out.write_text(
        json.dumps(
            {
                "held": len(records),
                "deep_bytes_per_record": per_record,
                "traced_bytes_per_record": traced_per_record,
                "bytes_per_record": max(per_record, traced_per_record),
            }
        )
    )
    os._exit(0)  # nothing to deliver: skip the exit-time flush against a port nobody listens on


class _SinkState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[int] = set()
        self.records = 0
        self.duplicates = 0
        self.warmup = 0
        self.unnumbered = 0
        self.requests = 0
        self.first_t = 0.0
        self.last_t = 0.0


def child_sink() -> None:
    """An OTLP/HTTP receiver that counts the log records (by ``seq``) in what the collector sends."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    state = _SinkState()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path.endswith("/v1/logs"):
                seqs: list[int] = []
                unnumbered = 0
                for rl in ExportLogsServiceRequest.FromString(body).resource_logs:
                    for sl in rl.scope_logs:
                        for record in sl.log_records:
                            for kv in record.attributes:
                                if kv.key == "seq":
                                    seqs.append(kv.value.int_value)
                                    break
                            else:
                                unnumbered += 1
                now = time.time()
                with state.lock:
                    state.requests += 1
                    state.unnumbered += unnumbered
                    for seq in seqs:
                        if seq < 0:
                            state.warmup += 1
                            continue
                        state.records += 1
                        if seq in state.seen:
                            state.duplicates += 1
                        else:
                            state.seen.add(seq)
                            state.first_t = state.first_t or now
                            state.last_t = now
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    for line in sys.stdin:  # "stats [below]": the counts, and how many unique seq are < below
        below = int(line.split()[1]) if len(line.split()) > 1 else 0
        with state.lock:
            stats = {
                "unique": len(state.seen),
                "records": state.records,
                "duplicates": state.duplicates,
                "warmup": state.warmup,
                "unnumbered": state.unnumbered,
                "requests": state.requests,
                "first_t": state.first_t,
                "last_t": state.last_t,
                "unique_below": sum(1 for s in state.seen if s < below),
                "cpu_s": time.process_time(),
            }
        print(json.dumps(stats), flush=True)


# --------------------------------------------------------------------------------- parent side


def _child_env(**extra: str) -> dict[str, str]:
    """The environment without inherited lumen/OTel settings: the benchmark sets what it measures."""
    prefixes = ("LUMEN_", "OTEL_", "LOG_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in ports:
            ports.append(port)
    return ports


class Sink:
    """The sink child process and its stdin/stdout control channel."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--child", "sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(_common.REPO),
            env=_child_env(),
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        if not self.endpoint.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the OTLP sink did not start: {self.endpoint!r}")

    def stats(self, below: int = 0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"stats {below}\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def settle(self, expected: int, timeout: float, quiet: float = 3.0) -> dict[str, Any]:
        """Poll until ``expected`` unique records arrived, or nothing new came for ``quiet`` s."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            stats = self.stats()
            if stats["unique"] >= expected or time.monotonic() > deadline:
                return stats
            if stats["records"] != last:
                last, last_change = stats["records"], time.monotonic()
            elif time.monotonic() - last_change > quiet:
                return stats
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


COLLECTOR_CONFIG = """\
# written by benchmarks/bench_export.py: loopback only
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
processors:
  memory_limiter:          # as in collector-config/
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
  batch:
    timeout: 1s
    send_batch_size: 8192
    send_batch_max_size: 16384
exporters:
  otlp_http/sink:
    endpoint: {sink}
    sending_queue:
      queue_size: 5000
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp_http/sink]
"""


class Collector:
    """bin/lumen-otelcol on two loopback ports chosen now; started when asked (possibly later)."""

    def __init__(self, directory: Path, sink: str) -> None:
        if not (COLLECTOR_BIN.is_file() and os.access(COLLECTOR_BIN, os.X_OK)):
            raise RuntimeError(f"{COLLECTOR_BIN} is missing: build it with `make collector`")
        self.http_port, self.health_port = _free_ports(2)
        self.config = directory / "collector.yaml"
        self.config.write_text(
            COLLECTOR_CONFIG.format(http=self.http_port, health=self.health_port, sink=sink)
        )
        self.log_path = directory / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(COLLECTOR_BIN), f"--config={self.config}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ
                },  # no inherited OTel settings
            )

    def healthy(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.poll() is not None:
            raise RuntimeError(f"the collector exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the collector was not healthy within {timeout} s:\n{self.output()[-3000:]}"
                )
            time.sleep(0.1)

    def cpu_s(self) -> float:
        if self.proc is None or self.proc.poll() is not None:
            return float("nan")
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _app_argv(mode: str, endpoint: str, out: Path, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--child", mode, "--endpoint", endpoint, "--out", str(out), *args]


def _run_app(argv: list[str], env: dict[str, str], timeout: float, stderr: Path) -> dict[str, Any]:
    with stderr.open("wb") as err:
        proc = subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=str(_common.REPO),
            timeout=timeout,
            check=False,
        )
    out = Path(argv[argv.index("--out") + 1])
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"app child failed ({proc.returncode}):\n{stderr.read_text(errors='replace')[-3000:]}"
        )
    return dict(json.loads(out.read_text()))


def _stderr_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def run_throughput(n: int, cap: float) -> tuple[bool, dict[str, Any]]:
    print(
        _common.header(
            f"bench_export throughput: {n:,} records from one thread, lumen-otel prod -> OTLP/HTTP -> "
            "lumen-otelcol (memory_limiter, batch) -> otlp_http -> loopback sink in its own process",
            extra_versions=("requests", "protobuf"),
        )
    )
    print(f"collector: {COLLECTOR_BIN} ({_collector_version()})")
    with tempfile.TemporaryDirectory(prefix="lumen-bench-export-") as tmp_name:
        tmp = Path(tmp_name)
        sink = Sink()
        collector = Collector(tmp, sink.endpoint)
        try:
            collector.start()
            collector.wait_healthy()
            result = _run_app(
                _app_argv("burst", collector.endpoint, tmp / "app.json", "--n", str(n), "--cap", str(cap)),
                _child_env(),
                timeout=cap + 180,
                stderr=tmp / "app.stderr",
            )
            stats = sink.settle(result["emitted"], timeout=60)
            collector_cpu = collector.cpu_s()
            stderr = _stderr_lines(tmp / "app.stderr")
        finally:
            collector.stop()
            sink.stop()
    emitted = int(result["emitted"])
    lost = emitted - stats["unique"]
    seconds = stats["last_t"] - result["t_start"] if stats["unique"] else float("nan")
    delivered_rate = stats["unique"] / seconds if stats["unique"] else 0.0
    emit_rate = emitted / (result["t_emitted"] - result["t_start"])
    app_cpu = result["cpu_s"] - result["cpu0_s"]
    summary = {
        "n": n,
        "emitted": emitted,
        "delivered": stats["unique"],
        "lost": lost,
        "duplicates": stats["duplicates"],
        "unnumbered": stats["unnumbered"],
        "dropped_counted": result["dropped"],
        "drop_reasons": result["drop_reasons"],
        "end_to_end_s": seconds,
        "delivered_per_s": delivered_rate,
        "emit_per_s": emit_rate,
        "flush_s": result["t_flushed"] - result["t_emitted"],
        "app_flush_ok": result["flushed"],
        "app_cpu_us_per_record": app_cpu * 1e6 / emitted,
        "collector_cpu_s": collector_cpu,
        "sink_requests": stats["requests"],
        "app_stderr_lines": len(stderr),
        "app_stderr_sample": stderr[:3],
    }
    print(f"load average at end: {_common.load_average()}")
    print()
    print(
        _common.table(
            [
                (
                    "lumen -> lumen-otelcol -> sink",
                    f"{emitted:,}",
                    f"{stats['unique']:,}",
                    f"{lost:,}",
                    f"{stats['duplicates']:,}",
                    f"{result['dropped']:,.0f}",
                    f"{emit_rate:,.0f}",
                    f"{delivered_rate:,.0f}",
                    f"{seconds:.2f}",
                    f"{app_cpu * 1e6 / emitted:.1f}",
                    f"{collector_cpu:.2f}",
                    len(stderr),
                )
            ],
            (
                "path",
                "emitted",
                "delivered",
                "lost",
                "duplicates",
                "lumen.log.dropped",
                "emit rec/s",
                "e2e rec/s",
                "e2e s",
                "app CPU us/rec",
                "collector CPU s",
                "app stderr lines",
            ),
        )
    )
    print(
        "  emit rec/s: the app's caller loop; e2e rec/s: unique records at the sink / (first emit -> last "
        f"record at the sink), flush included; {stats['requests']} requests from the collector to the sink"
    )
    print()
    print(
        f"THROUGHPUT export: {delivered_rate:,.0f} records/s delivered end to end "
        f"({stats['unique']:,} records in {seconds:.2f} s; the app emitted {emit_rate:,.0f}/s)"
    )
    ok = lost == 0
    print(
        f"LOSS export: {lost} lost of {emitted:,}, {stats['duplicates']} duplicates, "
        f"lumen.log.dropped {result['dropped']:.0f} (budget: 0 lost) {_common.verdict(ok)}"
    )
    return ok, summary


def _collector_version() -> str:
    try:
        proc = subprocess.run(
            [str(COLLECTOR_BIN), "--version"], capture_output=True, text=True, timeout=20, check=False
        )
        return proc.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def measure_held(queue_size: int, tmp: Path) -> dict[str, Any]:
    """Bytes per record the OTLP queue holds, measured in a child with nothing listening."""
    (dead_port,) = _free_ports(1)
    return _run_app(
        _app_argv("held", f"http://127.0.0.1:{dead_port}", tmp / "held.json"),
        _child_env(LUMEN_OTLP_QUEUE_SIZE=str(queue_size)),
        timeout=120,
        stderr=tmp / "held.stderr",
    )


def run_outage(outage: float, recovery: float, rate: int, queue_size: int) -> tuple[bool, dict[str, Any]]:
    print(
        _common.header(
            f"bench_export outage: the collector is down for {outage:g} s while the app logs {rate:,} "
            f"records/s (LUMEN_OTLP_QUEUE_SIZE={queue_size}), then up for {recovery:g} s; app RSS sampled "
            "once a second from /proc/<pid>/status",
            extra_versions=("requests", "protobuf"),
        )
    )
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory(prefix="lumen-bench-export-") as tmp_name:
        tmp = Path(tmp_name)
        held = measure_held(queue_size, tmp)
        sink = Sink()
        collector = Collector(tmp, sink.endpoint)
        app: subprocess.Popen[str] | None = None
        try:
            out = tmp / "app.json"
            with (tmp / "app.stderr").open("wb") as err:
                app = subprocess.Popen(
                    _app_argv(
                        "paced",
                        collector.endpoint,
                        out,
                        "--rate",
                        str(rate),
                        "--seconds",
                        str(outage + recovery),
                    ),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=_child_env(LUMEN_OTLP_QUEUE_SIZE=str(queue_size)),
                    cwd=str(_common.REPO),
                )
            assert app.stdout is not None
            line = app.stdout.readline().split()
            if not line or line[0] != "EMITTING":
                app.wait(30)
                raise RuntimeError(f"app child did not start:\n{(tmp / 'app.stderr').read_text()[-3000:]}")
            t0 = time.monotonic()
            t0_wall, rss_ready = float(line[1]), int(line[2])
            t_up_wall = 0.0
            hard_deadline = t0 + outage + recovery + 150
            tick = 0
            while app.poll() is None:
                try:
                    samples.append((time.monotonic() - t0, _rss_kib(app.pid)))
                except (OSError, RuntimeError):
                    break  # exiting
                if collector.proc is None and time.monotonic() - t0 >= outage:
                    collector.start()
                    collector.wait_healthy()  # well under a second: the sampling barely pauses
                    t_up_wall = time.time()
                    app.send_signal(signal.SIGUSR1)
                if time.monotonic() > hard_deadline:
                    raise RuntimeError("the app child did not finish in time")
                tick += 1
                time.sleep(max(0.0, t0 + tick - time.monotonic()))
            app.wait(30)
            if app.returncode != 0 or not out.exists():
                raise RuntimeError(
                    f"app child failed ({app.returncode}):\n{(tmp / 'app.stderr').read_text()[-3000:]}"
                )
            result = dict(json.loads(out.read_text()))
            expected = int(result["emitted"] - result["dropped"])
            stats = sink.settle(expected, timeout=60)
            below = max(0, int(result["seq_at_up"]))  # records logged before the collector was up
            stats_below = sink.stats(below)["unique_below"]
            stderr = _stderr_lines(tmp / "app.stderr")
        finally:
            if app is not None and app.poll() is None:
                app.kill()
                app.wait()
            collector.stop()
            sink.stop()

    emitted, delivered, dropped = int(result["emitted"]), int(stats["unique"]), float(result["dropped"])
    uncounted = emitted - delivered - dropped
    outage_samples = [(t, kib) for t, kib in samples if t <= outage + 0.5]
    start_kib = outage_samples[0][1]
    mid_kib = min(outage_samples, key=lambda s: abs(s[0] - outage / 2))[1]
    late = [kib for t, kib in outage_samples if t >= outage / 2]
    outage_max = max(kib for _, kib in outage_samples)
    growth = (outage_max - start_kib) / 1024
    late_growth = (max(late) - mid_kib) / 1024
    emitted_after = emitted - below
    delivered_after = delivered - stats_below
    lag = stats["first_t"] - t_up_wall if stats["first_t"] and t_up_wall else float("nan")
    held_mib = queue_size * held["bytes_per_record"] / MIB
    bound = 2 * held_mib + SLACK_MIB
    unbounded_mib = rate * outage * held["bytes_per_record"] / MIB
    summary = {
        "outage_s": outage,
        "recovery_s": recovery,
        "rate": rate,
        "queue_size": queue_size,
        "emitted": emitted,
        "delivered": delivered,
        "dropped_counted": dropped,
        "drop_reasons": result["drop_reasons"],
        "uncounted": uncounted,
        "duplicates": stats["duplicates"],
        "delivered_from_outage": stats_below,
        "emitted_before_collector_up": below,
        "emitted_after_collector_up": emitted_after,
        "delivered_after_collector_up": delivered_after,
        "first_delivery_after_up_s": lag,
        "collector_up_after_s": t_up_wall - t0_wall if t_up_wall else None,
        "app_flush_ok": result["flushed"],
        "rss_ready_mib": rss_ready / 1024,
        "rss_start_mib": start_kib / 1024,
        "rss_mid_mib": mid_kib / 1024,
        "rss_outage_max_mib": outage_max / 1024,
        "rss_outage_end_mib": outage_samples[-1][1] / 1024,
        "rss_max_mib": max(kib for _, kib in samples) / 1024,
        "rss_end_mib": samples[-1][1] / 1024,
        "rss_growth_mib": growth,
        "rss_late_growth_mib": late_growth,
        "rss_series_mib": [(round(t, 1), round(kib / 1024, 1)) for t, kib in samples],
        "held_records_measured": held["held"],
        "bytes_per_held_record": held["bytes_per_record"],
        "deep_bytes_per_held_record": held["deep_bytes_per_record"],
        "traced_bytes_per_held_record": held["traced_bytes_per_record"],
        "queue_cost_mib": held_mib,
        "rss_bound_mib": bound,
        "unbounded_would_hold_mib": unbounded_mib,
        "app_stderr_lines": len(stderr),
        "app_stderr_sample": stderr[:3],
    }
    print(f"load average at end: {_common.load_average()}")
    print()
    every = max(1, len(samples) // 16)
    series = [s for i, s in enumerate(samples) if not i % every or i == len(samples) - 1]
    print("RSS (MiB) at t s: " + ", ".join(f"{t:.0f}:{kib / 1024:.1f}" for t, kib in series))
    print(
        f"  collector started at t={outage:g} s, healthy "
        f"{summary['collector_up_after_s'] or float('nan'):.1f} s after the first record; "
        f"the app exited at t={samples[-1][0]:.0f} s"
    )
    print()
    print(
        _common.table(
            [
                (
                    "outage",
                    f"{start_kib / 1024:.1f}",
                    f"{mid_kib / 1024:.1f}",
                    f"{outage_max / 1024:.1f}",
                    f"{outage_samples[-1][1] / 1024:.1f}",
                    f"{growth:+.1f}",
                    f"{late_growth:+.1f}",
                ),
                (
                    "whole run",
                    f"{samples[0][1] / 1024:.1f}",
                    "-",
                    f"{summary['rss_max_mib']:.1f}",
                    f"{summary['rss_end_mib']:.1f}",
                    f"{summary['rss_max_mib'] - samples[0][1] / 1024:+.1f}",
                    "-",
                ),
            ],
            ("RSS MiB", "start", "mid", "max", "end", "growth", "growth 2nd half"),
        )
    )
    print()
    print(
        _common.table(
            [
                (
                    f"{emitted:,}",
                    f"{delivered:,}",
                    f"{stats_below:,} of {below:,}",
                    f"{dropped:,.0f}",
                    ", ".join(
                        f"{k.split(':', 1)[1]} {v:,.0f}" for k, v in sorted(result["drop_reasons"].items())
                    )
                    or "-",
                    f"{uncounted:,.0f}",
                    f"{stats['duplicates']:,}",
                    len(stderr),
                )
            ],
            (
                "emitted",
                "delivered",
                "delivered from the outage",
                "lumen.log.dropped",
                "by reason",
                "uncounted",
                "duplicates",
                "app stderr lines",
            ),
        )
    )
    print(
        f"  queue bound LUMEN_OTLP_QUEUE_SIZE={queue_size}: {held['bytes_per_record']:,.0f} bytes "
        f"per held record (measured on {held['held']:,} queued records: deep size "
        f"{held['deep_bytes_per_record']:,.0f}, tracemalloc {held['traced_bytes_per_record']:,.0f}; "
        f"the larger counts) = {held_mib:.1f} MiB held; unbounded, "
        f"{outage:g} s x {rate:,}/s would hold {unbounded_mib:.1f} MiB"
    )
    print()
    plateau_ok = late_growth < PLATEAU_BUDGET_MIB
    bound_ok = growth <= bound
    accounting_ok = uncounted == 0
    print(
        f"RSS outage: start {start_kib / 1024:.1f} MiB, max {outage_max / 1024:.1f}, end "
        f"{outage_samples[-1][1] / 1024:.1f}, growth {growth:+.1f} MiB (budget <= {bound:.1f} = 2 x "
        f"{held_mib:.1f} held + {SLACK_MIB:g}) {_common.verdict(bound_ok)}"
    )
    print(
        f"PLATEAU outage: RSS growth over the second half of the outage {late_growth:+.1f} MiB "
        f"(budget < {PLATEAU_BUDGET_MIB:g}) {_common.verdict(plateau_ok)}"
    )
    print(
        f"RECOVERY outage: first record at the sink {lag:.1f} s after the collector was healthy; "
        f"{delivered_after:,} of the {emitted_after:,} records logged after that were delivered, "
        f"{emitted_after - delivered_after:,} dropped (counted) while the queue was still full"
    )
    print(
        f"ACCOUNTING outage: emitted {emitted:,} = delivered {delivered:,} + dropped (counted) {dropped:,.0f}"
        f" + uncounted {uncounted:,.0f}; {stats['duplicates']} duplicates (budget: 0 uncounted) "
        f"{_common.verdict(accounting_ok)}"
    )
    return plateau_ok and bound_ok and accounting_ok, summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="throughput records (default 100000)")
    parser.add_argument("--cap", type=float, default=120.0, help="longest the throughput app emits, s")
    parser.add_argument(
        "--outage", type=float, default=60.0, help="seconds the collector is down (default 60)"
    )
    parser.add_argument("--recovery", type=float, default=15.0, help="seconds of logging after it is up")
    parser.add_argument("--rate", type=int, default=RATE, help="outage-phase records/s (default 1000)")
    parser.add_argument("--queue-size", type=int, default=QUEUE_SIZE, help="LUMEN_OTLP_QUEUE_SIZE (outage)")
    parser.add_argument("--only", choices=("throughput", "outage"), help="run one phase")
    parser.add_argument("--quick", action="store_true", help="CI smoke: 10,000 records, a 10 s outage")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "sink":
        child_sink()
        return 0
    if args.child == "burst":
        child_burst(args.endpoint, args.n, args.cap, args.out)
        return 0
    if args.child == "paced":
        child_paced(args.endpoint, args.rate, args.seconds, args.out)
        return 0
    if args.child == "held":
        child_held(args.endpoint, int(os.environ["LUMEN_OTLP_QUEUE_SIZE"]), args.out)
        return 0

    if args.quick:
        args.n = min(args.n, 10_000)
        args.cap = min(args.cap, 60.0)
        args.outage = min(args.outage, 10.0)
        args.recovery = min(args.recovery, 10.0)
    ok = True
    summary: dict[str, Any] = {}
    try:
        if args.only in (None, "throughput"):
            good, summary["throughput"] = run_throughput(args.n, args.cap)
            ok &= good
        if args.only in (None, "outage"):
            if args.only is None:
                print()
            good, summary["outage"] = run_outage(args.outage, args.recovery, args.rate, args.queue_size)
            ok &= good
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as error:
        print(f"ERROR bench_export: {error}", file=sys.stderr)
        return 2
    summary["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
