"""Cost per log record: lumen-otel's prod pipeline against the stdlib baseline and the peer stacks.

Each configuration runs in its own interpreter (one process per configuration, so no handler,
provider or import state leaks between them), rounds interleaved, medians reported. A round
logs ``--n`` records from one thread as fast as it can, then flushes *everything* (writer
threads, batch processors, files), and the clock stops only then: work pushed to a background
thread is still paid for. Every sink that can lose records is counted:

  baseline    plain ``logging.Formatter`` -> ``StreamHandler`` on /dev/null (the 1.0x reference)
  lumen       lumen-otel prod: enrich + redact once, JSON console on /dev/null, rotating JSON file,
              OTLP bridge -> ResilientLogProcessor -> an exporter that discards (counts) records
  pjl         python-json-logger ``JsonFormatter`` -> ``StreamHandler`` on /dev/null
  structlog   structlog + orjson (``JSONRenderer(orjson.dumps)`` -> ``BytesLogger`` on /dev/null)
  otel        the OpenTelemetry logging handler alone (opentelemetry-instrumentation-logging)
              -> SDK ``BatchLogRecordProcessor`` -> discarding exporter
  naive       what a team assembles: stdlib ``FileHandler`` + the OpenTelemetry handler on root
  lumen_noredact  lumen with the built-in PHI rules off: only there to show redaction's share

A discarding exporter keeps up with any burst, so nothing is dropped in the timed runs. Two more
modes export over real OTLP/HTTP to a loopback receiver in a separate process that counts the
log records it accepts:

  --drops      the same burst for lumen, otel and naive, one round: who loses what, who counts it
  --sustained  lumen (and naive, for contrast) at a steady rate (default 2,000 records/s for 30 s)

    .venv/bin/python benchmarks/bench_logging.py [--n 200000] [--rounds 3] [--quick] [--drops] [--sustained]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

SCRIPT = Path(__file__).resolve()
CONFIGS = ("baseline", "lumen", "lumen_noredact", "pjl", "structlog", "otel", "naive")
LABELS = {
    "baseline": "stdlib Formatter -> StreamHandler(/dev/null)",
    "lumen": "lumen-otel prod (enrich+redact, JSON console, file, OTLP)",
    "lumen_noredact": "the same with the built-in PHI rules off (redaction's share, not a product setting)",
    "pjl": "python-json-logger -> StreamHandler(/dev/null)",
    "structlog": "structlog + orjson -> BytesLogger(/dev/null)",
    "otel": "OTel LoggingHandler + BatchLogRecordProcessor",
    "naive": "stdlib FileHandler + OTel LoggingHandler",
}
BUDGET_VS_BASELINE = 3.0
BUDGET_VS_NAIVE = 1.8

# The record every configuration logs: a typical access-style line with two %-args and two extras.
MESSAGE = "GET %s -> %d in %.2f ms"
PATH = "/api/v1/exams/search"
EXTRA = {"route": "/api/v1/exams/{id}", "status_code": 200}
WARMUP = 2000


# ---------------------------------------------------------------------------------- child side


class DiscardingExporter:
    """An OTLP log exporter stand-in that drops batches on the floor and counts the records."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, batch: Any) -> Any:
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        self.exported += len(batch)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class Setup:
    """One configuration, set up in this process: how to log, flush, and count."""

    def __init__(self) -> None:
        self.log: Callable[[float], None] = lambda ms: None
        self.flush: Callable[[], None] = lambda: None
        self.exporter: DiscardingExporter | None = None
        self.file_glob: str | None = None
        self.tmp = Path(".")
        self.counted_drops: Callable[[], dict[str, float]] = dict

    def file_lines(self) -> int | None:
        if self.file_glob is None:
            return None
        marker = PATH.encode()
        return sum(
            sum(1 for line in path.open("rb") if marker in line)  # skip the SDK's own warning lines
            for path in self.tmp.glob(self.file_glob)
        )


def _stdlib_logger(handler: logging.Handler | None) -> logging.Logger:
    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.INFO)
    if handler is not None:
        root.addHandler(handler)
    return logging.getLogger("bench.app")


def _std_log(logger: logging.Logger) -> Callable[[float], None]:
    info = logger.info

    def log(ms: float) -> None:
        info(MESSAGE, PATH, 200, ms, extra=EXTRA)

    return log


def _devnull_text() -> Any:
    return open(os.devnull, "w", encoding="utf-8")


def _otel_provider(exporter: Any) -> Any:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))  # SDK defaults (queue 2048)
    return provider


def _otel_exporter(sink: str | None) -> Any:
    if sink is None:
        return DiscardingExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(endpoint=f"{sink}/v1/logs")


def setup(config: str, tmp: Path, sink: str | None = None) -> Setup:
    s = Setup()
    s.tmp = tmp
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config == "baseline":
        handler = logging.StreamHandler(_devnull_text())
        handler.setFormatter(plain)
        s.log = _std_log(_stdlib_logger(handler))
    elif config == "pjl":
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler(_devnull_text())
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        s.log = _std_log(_stdlib_logger(handler))
    elif config == "structlog":
        import orjson
        import structlog

        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.BytesLoggerFactory(open(os.devnull, "wb")),  # noqa: SIM115
            cache_logger_on_first_use=True,
        )
        slog = structlog.get_logger("bench.app")
        info = slog.info

        def log(ms: float) -> None:
            info(MESSAGE % (PATH, 200, ms), **EXTRA)

        s.log = log
    elif config in ("otel", "naive"):
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        exporter = _otel_exporter(sink)
        provider = _otel_provider(exporter)
        s.exporter = exporter if isinstance(exporter, DiscardingExporter) else None
        logger = _stdlib_logger(LoggingHandler(logger_provider=provider))
        file_handler = None
        if config == "naive":
            file_handler = logging.FileHandler(tmp / "naive.log", encoding="utf-8")
            file_handler.setFormatter(plain)
            logging.getLogger().addHandler(file_handler)
            s.file_glob = "naive.log*"
        s.log = _std_log(logger)

        def flush() -> None:
            if file_handler is not None:
                file_handler.flush()
            provider.force_flush()

        s.flush = flush
    elif config in ("lumen", "lumen_noredact"):
        s.log, s.flush, s.counted_drops = _lumen(tmp, s, sink, redaction=config == "lumen")
        s.file_glob = "bench.log*"
    else:
        raise SystemExit(f"unknown configuration {config!r}")
    return s


def _lumen(tmp: Path, s: Setup, sink: str | None, redaction: bool = True) -> tuple[Any, Any, Any]:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    # lumen.log.dropped / lumen.log.records go to the global meter: read them in memory
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], shutdown_on_exit=False))

    import lumen_otel
    from lumen_otel._setup import bootstrap as _bootstrap

    endpoint = sink
    if sink is None:
        # the real configure_logging() path, with the OTLP exporter swapped for one that discards
        exporter = s.exporter = DiscardingExporter()
        real_exporter = _bootstrap.build_signal_exporter
        _bootstrap.build_signal_exporter = lambda settings, signal: (  # type: ignore[assignment]
            exporter if signal == "logs" else real_exporter(settings, signal)
        )
        endpoint = "http://127.0.0.1:4318"
    logging.getLogger().handlers[:] = []
    handle = lumen_otel.configure_logging(
        service_name="bench",
        env="prod" if redaction else "dev",
        log_format="json",
        console=True,
        log_dir=str(tmp),
        log_file_backups=1000,
        otlp_endpoint=endpoint,
        redaction=redaction,
    )

    def flush() -> None:
        handle.force_flush(timeout=300.0)

    def counted() -> dict[str, float]:
        return _common.dropped_by_reason(reader)

    return _std_log(logging.getLogger("bench.app")), flush, counted


def child_burst(config: str, n: int, tmp: Path, out: Path, sink: str | None = None) -> None:
    s = setup(config, tmp, sink)
    log = s.log
    for i in range(WARMUP):
        log(i * 0.01)
    s.flush()
    exported_before = s.exporter.exported if s.exporter else 0
    lines_before = s.file_lines() or 0
    drops_before = sum(s.counted_drops().values())

    cpu_started = time.process_time()
    started = time.perf_counter()
    for i in range(n):
        log(i * 0.01)
    logged = time.perf_counter()
    s.flush()
    finished = time.perf_counter()
    cpu = time.process_time() - cpu_started

    counted = s.counted_drops()
    result: dict[str, Any] = {
        "config": config,
        "n": n,
        "caller_s": logged - started,
        "total_s": finished - started,
        "cpu_s": cpu,
        "exported": (s.exporter.exported - exported_before) if s.exporter else None,
        "file_lines": (s.file_lines() or 0) - lines_before if s.file_glob else None,
        "counted_drops": sum(counted.values()) - drops_before,
        "drop_reasons": counted,
    }
    out.write_text(json.dumps(result))
    os._exit(0)  # skip atexit shutdown: measured already, and a hung exporter must not hang the run


def child_sustained(config: str, seconds: float, rate: int, sink: str, tmp: Path, out: Path) -> None:
    s = setup(config, tmp, sink)
    log = s.log
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    latencies: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    next_tick = started
    sent = 0
    behind = 0.0
    clock = time.perf_counter_ns
    while next_tick < deadline:
        for _ in range(per_tick):
            t0 = clock()
            log(sent * 0.01)
            latencies.append(clock() - t0)
            sent += 1
        next_tick += tick
        pause = next_tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            behind = max(behind, -pause)
    elapsed = time.perf_counter() - started
    flush_started = time.perf_counter()
    s.flush()
    flush_s = time.perf_counter() - flush_started
    latencies.sort()
    counted = s.counted_drops()
    result = {
        "config": config,
        "n": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "flush_s": flush_s,
        "max_behind_s": behind,
        "call_p50_us": latencies[len(latencies) // 2] / 1000,
        "call_p99_us": latencies[int(len(latencies) * 0.99)] / 1000,
        "call_max_us": latencies[-1] / 1000,
        "file_lines": s.file_lines(),
        "counted_drops": sum(counted.values()),
        "drop_reasons": counted,
    }
    out.write_text(json.dumps(result))
    os._exit(0)


# ---------------------------------------------------------------------------------- parent side


def _fmt_count(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def run_burst(n: int, rounds: int, configs: tuple[str, ...], timeout: float) -> tuple[bool, dict[str, Any]]:
    print(
        _common.header(
            f"bench_logging: cost per record, {n:,}-record burst + flush, "
            f"{rounds} interleaved rounds, one process per configuration"
        )
    )
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    for round_no, config in _common.interleaved(configs, rounds):
        result = _common.run_child(SCRIPT, ["burst", config, "--n", str(n)], timeout=timeout)
        results[config].append(result)
        print(
            f"  round {round_no + 1} {config:<10} {result['total_s'] * 1e6 / n:8.2f} us/record wall, "
            f"{result['cpu_s'] * 1e6 / n:8.2f} CPU (caller {result['caller_s'] * 1e6 / n:.2f})",
            flush=True,
        )
    print(f"load average at end: {_common.load_average()}")

    per_record = {c: _common.median(r["total_s"] * 1e6 / n for r in results[c]) for c in configs}
    caller = {c: _common.median(r["caller_s"] * 1e6 / n for r in results[c]) for c in configs}
    cpu = {c: _common.median(r["cpu_s"] * 1e6 / n for r in results[c]) for c in configs}
    base = per_record.get("baseline")
    rows = []
    summary: dict[str, Any] = {"n": n, "rounds": rounds, "configs": {}}
    for c in configs:
        rs = results[c]
        exported = [r["exported"] for r in rs]
        lost = [None if e is None else n - e for e in exported]
        worst_lost = None if lost[0] is None else max(lost)  # type: ignore[type-var]
        counted = max(r["counted_drops"] for r in rs)
        uncounted = (
            None
            if worst_lost is None
            else max(
                (n - r["exported"])
                - r["drop_reasons"].get("otlp_queue_full", 0)
                - r["drop_reasons"].get("shutdown", 0)
                for r in rs
            )
            if c.startswith("lumen")
            else worst_lost
        )
        file_lost = None if rs[0]["file_lines"] is None else max(n - r["file_lines"] for r in rs)
        ratio = per_record[c] / base if base else float("nan")
        cpu_ratio = cpu[c] / cpu["baseline"] if "baseline" in cpu else float("nan")
        rows.append(
            (
                c,
                f"{per_record[c]:.2f}",
                f"{ratio:.2f}x",
                f"{cpu[c]:.2f}",
                f"{cpu_ratio:.2f}x",
                f"{caller[c]:.2f}",
                _fmt_count(worst_lost),
                _fmt_count(file_lost),
                _fmt_count(counted) if c.startswith("lumen") else "-",
                _fmt_count(uncounted),
                max(r["stderr_lines"] for r in rs),
            )
        )
        summary["configs"][c] = {
            "us_per_record": per_record[c],
            "caller_us_per_record": caller[c],
            "ratio_vs_baseline": ratio,
            "cpu_us_per_record": cpu[c],
            "cpu_ratio_vs_baseline": cpu_ratio,
            "otlp_lost_max": worst_lost,
            "file_lost_max": file_lost,
            "counted_drops_max": counted,
            "uncounted_max": uncounted,
            "label": LABELS[c],
            "rounds_us": [r["total_s"] * 1e6 / n for r in rs],
        }
    print()
    print(
        _common.table(
            rows,
            (
                "config",
                "wall us/rec",
                "x baseline",
                "CPU us/rec",
                "CPU x baseline",
                "caller us/rec",
                "OTLP lost",
                "file lost",
                "counted drops",
                "uncounted",
                "stderr lines",
            ),
        )
    )
    print(
        "  wall: median wall time per record to log the burst and flush every sink (the budgeted figure); "
        "CPU: process CPU time, all threads (less sensitive to other load); "
        "caller: until the last call returned"
    )
    for c in configs:
        print(f"  {c:<10} {LABELS[c]}")
    print()

    ok = True
    if base and "lumen" in per_record:
        r_base = per_record["lumen"] / base
        good = r_base <= BUDGET_VS_BASELINE
        ok &= good
        print(
            f"RATIO lumen/baseline = {r_base:.2f}x (budget <= {BUDGET_VS_BASELINE}x) {_common.verdict(good)}"
        )
    if "naive" in per_record and "lumen" in per_record:
        r_naive = per_record["naive"] / per_record["lumen"]
        good = r_naive >= BUDGET_VS_NAIVE
        ok &= good
        print(
            f"RATIO naive/lumen = {r_naive:.2f}x faster (budget >= {BUDGET_VS_NAIVE}x) "
            f"{_common.verdict(good)}"
        )
        print(
            f"  (CPU time: lumen/baseline {cpu['lumen'] / cpu.get('baseline', float('nan')):.2f}x, "
            f"naive/lumen {cpu['naive'] / cpu['lumen']:.2f}x)"
        )
    if "lumen" in per_record and "lumen_noredact" in per_record:
        share = per_record["lumen"] - per_record["lumen_noredact"]
        cpu_share = cpu["lumen"] - cpu["lumen_noredact"]
        print(
            f"REDACTION share of lumen: {share:.2f} us/record wall "
            f"({100 * share / per_record['lumen']:.0f}%), "
            f"{cpu_share:.2f} us/record CPU ({100 * cpu_share / cpu['lumen']:.0f}%); without it "
            f"lumen/baseline = {per_record['lumen_noredact'] / base:.2f}x wall"
            if base
            else ""
        )
    for peer in ("lumen_noredact", "pjl", "structlog", "otel", "naive"):
        if base and peer in per_record:
            print(f"RATIO {peer}/baseline = {per_record[peer] / base:.2f}x")
    if "lumen" in summary["configs"]:
        lumen = summary["configs"]["lumen"]
        good = lumen["uncounted_max"] == 0 and (lumen["file_lost_max"] or 0) <= lumen["counted_drops_max"]
        ok &= good
        print(
            f"DROPS lumen: OTLP lost {lumen['otlp_lost_max']}, file lost {lumen['file_lost_max']}, "
            f"counted in lumen.log.dropped {lumen['counted_drops_max']:.0f}, "
            f"uncounted {lumen['uncounted_max']} "
            f"(budget: every drop counted) {_common.verdict(good)}"
        )
    for peer in ("otel", "naive"):
        if peer in summary["configs"]:
            lost = summary["configs"][peer]["otlp_lost_max"] or 0
            print(
                f"DROPS {peer}: OTLP lost {lost:,} of {n:,} ({100 * lost / n:.1f}%), counted nowhere but "
                f"{summary['configs'][peer]['counted_drops_max']:.0f} metrics / a rate-limited warning"
            )
    return ok, summary


SINK_CODE = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
count = 0
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/v1/logs"):
            request = ExportLogsServiceRequest.FromString(body)
            n = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
            with lock:
                count += n
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
server = ThreadingHTTPServer(("127.0.0.1", 0), H); server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
for line in sys.stdin:
    with lock:
        print(count, flush=True)
"""


def _start_sink() -> tuple[subprocess.Popen[str], str]:
    """A loopback OTLP/HTTP receiver in its own process that counts the log records it accepts."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SINK_CODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(_common.REPO),
    )
    assert proc.stdout is not None
    endpoint = proc.stdout.readline().strip()
    if not endpoint.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"the OTLP sink did not start: {endpoint!r}")
    return proc, endpoint


def _stop_sink(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def run_drops(n: int, configs: tuple[str, ...]) -> tuple[bool, dict[str, Any]]:
    """The burst again, exporting over real OTLP/HTTP: an exporter that costs something fills queues."""
    print(
        _common.header(
            f"bench_logging --drops: {n:,}-record burst exported over OTLP/HTTP to a loopback receiver "
            "in a separate process (counts what arrives); one round: it counts records, it does not time them"
        )
    )
    ok = True
    rows = []
    summary: dict[str, Any] = {"n": n, "configs": {}}
    for config in configs:
        proc, endpoint = _start_sink()
        try:
            result = _common.run_child(
                SCRIPT, ["burst", config, "--n", str(n), "--sink", endpoint], timeout=900
            )
            received = _sink_count(proc) - WARMUP
        finally:
            _stop_sink(proc)
        lost = n - received
        counted = result["counted_drops"]
        uncounted = lost - counted if config.startswith("lumen") else lost
        file_lost = None if result["file_lines"] is None else n - result["file_lines"]
        summary["configs"][config] = {
            **result,
            "received": received,
            "otlp_lost": lost,
            "uncounted": uncounted,
        }
        rows.append(
            (
                config,
                f"{received:,}",
                f"{lost:,} ({100 * lost / n:.1f}%)",
                _fmt_count(file_lost),
                f"{counted:,.0f}" if config.startswith("lumen") else "-",
                f"{uncounted:,}",
                result["stderr_lines"],
                f"{result['total_s'] * 1e6 / n:.1f}",
            )
        )
        if config.startswith("lumen"):
            ok &= uncounted == 0 and not file_lost
    print(f"load average at end: {_common.load_average()}")
    print()
    print(
        _common.table(
            rows,
            (
                "config",
                "OTLP received",
                "OTLP lost",
                "file lost",
                "counted in lumen.log.dropped",
                "uncounted",
                "stderr lines",
                "wall us/rec",
            ),
        )
    )
    for config, data in summary["configs"].items():
        if config.startswith("lumen"):
            print(
                f"DROPS-OTLP lumen: lost {data['otlp_lost']:,} over OTLP ({data['drop_reasons']}), "
                f"uncounted {data['uncounted']}, file lost {n - (data['file_lines'] or 0)} "
                f"(budget: every drop counted) {_common.verdict(ok)}"
            )
        else:
            print(
                f"DROPS-OTLP {config}: lost {data['otlp_lost']:,} of {n:,} "
                f"({100 * data['otlp_lost'] / n:.1f}%), "
                f"counted nowhere; {data['stderr_lines']} stderr line(s): {data['stderr_sample'][:1]}"
            )
    return ok, summary


def _sink_count(proc: subprocess.Popen[str], settle: float = 10.0) -> int:
    """Ask the sink how many log records it holds; wait until the number stops moving."""
    assert proc.stdin is not None and proc.stdout is not None
    last, deadline = -1, time.monotonic() + settle
    while True:
        proc.stdin.write("count\n")
        proc.stdin.flush()
        count = int(proc.stdout.readline())
        if count == last or time.monotonic() > deadline:
            return count
        last = count
        time.sleep(0.3)


def run_sustained(seconds: float, rate: int, configs: tuple[str, ...]) -> tuple[bool, dict[str, Any]]:
    print(
        _common.header(
            f"bench_logging --sustained: {rate:,} records/s for {seconds:g} s, OTLP/HTTP to a "
            "loopback receiver (counts log records) in a separate process"
        )
    )
    ok = True
    summary: dict[str, Any] = {"rate": rate, "seconds": seconds, "configs": {}}
    rows = []
    for config in configs:
        proc, endpoint = _start_sink()
        try:
            result = _common.run_child(
                SCRIPT,
                ["sustained", config, "--seconds", str(seconds), "--rate", str(rate), "--sink", endpoint],
                timeout=seconds + 120,
            )
            received = _sink_count(proc)
        finally:
            _stop_sink(proc)
        lost = result["n"] - received
        file_lost = None if result["file_lines"] is None else result["n"] - result["file_lines"]
        summary["configs"][config] = {
            **result,
            "received": received,
            "otlp_lost": lost,
            "file_lost": file_lost,
        }
        rows.append(
            (
                config,
                f"{result['n']:,}",
                f"{result['rate']:,.0f}",
                f"{received:,}",
                f"{lost:,}",
                _fmt_count(file_lost),
                f"{result['counted_drops']:.0f}",
                f"{result['call_p50_us']:.1f}",
                f"{result['call_p99_us']:.1f}",
                f"{result['call_max_us']:.0f}",
            )
        )
        if config == "lumen":
            good = lost == 0 and not file_lost and result["counted_drops"] == 0
            ok &= good
    print(f"load average at end: {_common.load_average()}")
    print()
    print(
        _common.table(
            rows,
            (
                "config",
                "sent",
                "rec/s",
                "received",
                "OTLP lost",
                "file lost",
                "counted drops",
                "call p50 us",
                "call p99 us",
                "call max us",
            ),
        )
    )
    if "lumen" in summary["configs"]:
        lumen = summary["configs"]["lumen"]
        print(
            f"SUSTAINED lumen: {lumen['n']:,} records at {lumen['rate']:,.0f}/s, "
            f"lost {lumen['otlp_lost']} over "
            f"OTLP, {lumen['file_lost']} in the file (budget: zero drops) {_common.verdict(ok)}"
        )
    return ok, summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200_000, help="records per burst (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="CI smoke: small N, short sustained mode")
    parser.add_argument("--sustained", action="store_true", help="also run the sustained-rate mode")
    parser.add_argument("--sustained-only", action="store_true", help="run only the sustained-rate mode")
    parser.add_argument("--drops", action="store_true", help="also run the burst over real OTLP/HTTP (drops)")
    parser.add_argument("--drops-only", action="store_true", help="run only the OTLP/HTTP burst")
    parser.add_argument("--seconds", type=float, default=30.0, help="sustained mode duration (default 30)")
    parser.add_argument("--rate", type=int, default=2000, help="sustained mode records/s (default 2000)")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        mode, config = args.child
        if mode == "burst":
            child_burst(config, args.n, args.tmp, args.out, args.sink)
        else:
            child_sustained(config, args.seconds, args.rate, args.sink, args.tmp, args.out)
        return 0

    if args.quick:
        args.n = min(args.n, 3000)
        args.seconds = min(args.seconds, 2.0)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    ok = True
    summary: dict[str, Any] = {}
    if not (args.sustained_only or args.drops_only):
        good, summary["burst"] = run_burst(args.n, max(args.rounds, 1), configs, timeout=600)
        ok &= good
    if args.drops or args.drops_only:
        print()
        good, summary["drops"] = run_drops(
            args.n, tuple(c for c in ("lumen", "otel", "naive") if c in configs)
        )
        ok &= good
    if args.sustained or args.sustained_only:
        print()
        good, summary["sustained"] = run_sustained(
            args.seconds, args.rate, tuple(c for c in ("lumen", "naive") if c in configs)
        )
        ok &= good
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
