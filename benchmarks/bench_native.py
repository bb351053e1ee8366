"""The native accelerator against the Python path: whole pipeline, then each function it replaces.

  pipeline   bench_logging's lumen prod burst (enrich + redact, JSON console, file, OTLP bridge
             -> discarding exporter), one interpreter per run, ``LUMEN_NATIVE=0`` and ``=1``
             in interleaved rounds; the clock stops once every sink is flushed
  functions  in one process, rounds interleaved: ``record_to_dict`` on an enriched record, and the
             OTLP encoding of a 512-record log batch and a 512-span batch (``encode_logs_request``,
             ``encode_spans_request``) with the Python and the native attribute encoder

Ratios are native / Python, per round, median reported: below 1.0 the accelerator is cheaper.
Needs ``lumen_otel_native`` (``pip install ./native`` or ``make native``).

    .venv/bin/python benchmarks/bench_native.py [--n 100000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BENCH_LOGGING = Path(__file__).resolve().parent / "bench_logging.py"
PATHS = ("python", "native")


def pipeline(n: int, rounds: int) -> list[list[Any]]:
    """Per-record cost of the lumen prod burst, each path in its own interpreter."""
    per_record: dict[str, list[float]] = {p: [] for p in PATHS}
    cpu: dict[str, list[float]] = {p: [] for p in PATHS}
    for _round, path in _common.interleaved(PATHS, rounds):
        env = {**os.environ, "LUMEN_NATIVE": "1" if path == "native" else "0"}
        result = _common.run_child(BENCH_LOGGING, ["burst", "lumen", "--n", str(n)], timeout=600, env=env)
        per_record[path].append(result["total_s"] / n * 1e6)
        cpu[path].append(result["cpu_s"] / n * 1e6)
    ratios = [a / b for a, b in zip(per_record["native"], per_record["python"], strict=True)]
    cpu_ratios = [a / b for a, b in zip(cpu["native"], cpu["python"], strict=True)]
    return [
        [
            "lumen prod burst (µs/record, wall)",
            f"{statistics.median(per_record['python']):.2f}",
            f"{statistics.median(per_record['native']):.2f}",
            f"{statistics.median(ratios):.2f}x",
        ],
        [
            "lumen prod burst (µs/record, CPU all threads)",
            f"{statistics.median(cpu['python']):.2f}",
            f"{statistics.median(cpu['native']):.2f}",
            f"{statistics.median(cpu_ratios):.2f}x",
        ],
    ]


def _record() -> logging.LogRecord:
    record = logging.LogRecord(
        "bench.app",
        logging.INFO,
        "app.py",
        1,
        "GET %s -> %d in %.2f ms",
        ("/api/v1/exams/search", 200, 1.5),
        None,
    )
    record.service_name, record.hostname = "bench", "host-1"
    record.correlation_id = record.trace_id = "0af7651916cd43dd8448eb211c80319c"
    record.span_id = "b7ad6b7169203331"
    record.lumen_extra = {"route": "/api/v1/exams/{id}", "status_code": 200}
    return record


def _log_batch() -> list[Any]:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    resource, scope = Resource.create({"service.name": "bench"}), InstrumentationScope("bench.app")
    batch = []
    for i in range(512):
        record = LogRecord(
            timestamp=1_795_000_000_000_000_000 + i,
            observed_timestamp=1_795_000_000_000_000_000 + i,
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body=f"GET /api/v1/exams/search -> 200 in {i * 0.01:.2f} ms",
            attributes={
                "code.function.name": "handler",
                "code.file.path": "/srv/app/views.py",
                "code.line.number": 42,
                "route": "/api/v1/exams/{id}",
                "status_code": 200,
                "correlation_id": f"{i:032x}",
                "duration_ms": i * 0.01,
            },
        )
        record.trace_id, record.span_id = 0x0AF7651916CD43DD8448EB211C80319C + i, 0xB7AD6B7169203331
        batch.append(ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope))
    return batch


def _span_batch() -> list[Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for i in range(512):
        attributes = {
            "http.request.method": "GET",
            "http.route": "/api/v1/exams/{id}",
            "http.response.status_code": 200,
            "url.path": f"/api/v1/exams/{i}",
            "server.address": "127.0.0.1",
            "server.port": 8000,
            "lumen.correlation_id": f"{i:032x}",
        }
        with tracer.start_as_current_span("GET /api/v1/exams/{id}", attributes=attributes):
            pass
    provider.shutdown()
    return list(exporter.get_finished_spans())


def functions(rounds: int, number: int) -> list[list[Any]]:
    import lumen_otel_native

    from lumen_otel._logging import formatters
    from lumen_otel._otlp import logs, spans, wire

    if wire._native_entries is None:  # loaded under LUMEN_NATIVE=0: use the module directly
        wire._native_entries = lumen_otel_native.attribute_entries
    record, log_batch, span_batch = _record(), _log_batch(), _span_batch()

    def with_encoder(path: str, encode: Callable[[], bytes]) -> Callable[[], bytes]:
        entries = wire.native_attribute_entries if path == "native" else wire.python_attribute_entries

        def run() -> bytes:
            logs.attribute_entries = spans.attribute_entries = entries
            return encode()

        return run

    cases: dict[str, tuple[int, dict[str, Callable[[], Any]]]] = {
        "record_to_dict (µs/record)": (
            1,
            {
                "python": lambda: formatters.python_record_to_dict(record),
                "native": lambda: lumen_otel_native.record_to_dict(record),
            },
        ),
        "OTLP log batch encoding (µs/record)": (
            512,
            {p: with_encoder(p, lambda: logs.encode_logs_request(log_batch)) for p in PATHS},
        ),
        "OTLP span batch encoding (µs/span)": (
            512,
            {p: with_encoder(p, lambda: spans.encode_spans_request(span_batch)) for p in PATHS},
        ),
    }
    rows = []
    for label, (items, calls) in cases.items():
        assert calls["python"]() == calls["native"](), label  # the same output, or no comparison
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        repeat = number if items == 1 else max(1, number // 200)
        for _round, path in _common.interleaved(PATHS, rounds):
            seconds = min(timeit.repeat(calls[path], number=repeat, repeat=3))
            times[path].append(seconds / repeat / items * 1e6)
        ratios = [a / b for a, b in zip(times["native"], times["python"], strict=True)]
        rows.append(
            [
                label,
                f"{statistics.median(times['python']):.3f}",
                f"{statistics.median(times['native']):.3f}",
                f"{statistics.median(ratios):.2f}x",
            ]
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="records per pipeline burst (default 100000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument(
        "--number", type=int, default=20_000, help="calls per function timing (default 20000)"
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke: small N, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds, args.number = 5_000, 2, 2_000
    try:
        import lumen_otel_native
    except ImportError:
        print("skipped: lumen_otel_native is not installed (pip install ./native, or make native)")
        return 0
    print(_common.header("native accelerator vs the Python path", ["lumen-otel-native"]))
    print(
        f"lumen_otel_native {lumen_otel_native.__version__}; ratios are native / Python, median of rounds\n"
    )
    rows = pipeline(args.n, args.rounds) + functions(args.rounds, args.number)
    print(_common.table(rows, ["what", "Python", "native", "native/Python"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
