"""What one hostile log record costs the caller's thread, without and with LUMEN_LOG_MAX_FIELD_BYTES.

Redaction runs where ``logger.info`` is called: in an async service, on the event loop. Its cost is
linear in the input but not small on text built to hit its rules: ``'Dr. A. ' * N`` (a title and an
initial, again and again), ``'patient ' * N`` (a label word with no value), long digit runs, runs of
spaces, an HL7 message. Two tables:

1. **Uncapped redactor, µs per KiB**: ``Redactor.redact_text`` on each input at --kib KiB (process
   CPU time, best of --repeat, median over --rounds). The worst case times the record's size is
   what one record costs without a cap (the 10 MB body: that figure in seconds).
2. **Capped cost per record**: the same inputs at full size (1 MiB; the HL7 message 1 MiB; the body
   10 MiB) through the real ``Enricher`` with the default cap (64 KiB) and with --cap-kib variants:
   milliseconds of CPU per record, and the size of the message that comes out.

And the common path: the same enricher on an ordinary record (a short message and three extras),
with the cap on and off, in ns per record: the cap's overhead when nothing is cut.

    .venv/bin/python benchmarks/bench_adversarial.py [--rounds 3] [--repeat 3] [--kib 64] [--cap-kib 16]
        [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from lumen_otel._logging.enrich import DEFAULT_MAX_FIELD_BYTES, Enricher
from lumen_otel._redaction import Redactor

KIB = 1024
MIB = 1024 * KIB
_HL7_HEADER = "MSH|^~\\&|LAB|GENERAL|EHR|GENERAL|202401011200||ORU^R01|MSG0001|P|2.5\r"
_HL7_SEGMENTS = (
    "PID|1||12345678^^^GENERAL^MR||DOE^JOHN^A||19800102|M|||1 MAIN ST^^SPRINGFIELD^IL^62701||555-0100\r"
    "OBX|1|TX|NOTE^Clinical note||Patient John Doe seen by Dr. A. Smith, MRN 12345678, DOB 01/02/1980|\r"
)

#: name -> (seed repeated to the size, full size of one record)
INPUTS: dict[str, tuple[str, int]] = {
    "digits '1'*N": ("1", MIB),
    "digit groups '123 '*N": ("123 ", MIB),
    "spaces ' '*N": (" ", MIB),
    "'Dr. A. '*N": ("Dr. A. ", MIB),
    "'patient '*N": ("patient ", MIB),
    "'MRN: 1 '*N": ("MRN: 1 ", MIB),
    "'Patient: Aa Bb, '*N": ("Patient: Aa Bb, ", MIB),
    "HL7 ORU message": (_HL7_SEGMENTS, MIB),
    "10 MiB body 'Dr. A. '*N": ("Dr. A. ", 10 * MIB),  # BODY
}


BODY = "10 MiB body 'Dr. A. '*N"


def build(name: str, size: int) -> str:
    seed, _ = INPUTS[name]
    body = (seed * (size // len(seed) + 1))[:size]
    return _HL7_HEADER + body[: size - len(_HL7_HEADER)] if name.startswith("HL7") else body


def cpu(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def record(message: str, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("bench", logging.INFO, __file__, 1, "%s", (message,), None)
    rec.__dict__.update(extra)
    return rec


def enrich_cost(enricher: Enricher, message: str, repeat: int) -> tuple[float, int]:
    out: list[int] = []

    def run() -> None:
        rec = record(message)
        enricher(rec)
        out.append(len(rec.msg.encode("utf-8")))

    return cpu(run, repeat), out[-1]


def common_path_ns(enricher: Enricher, n: int) -> float:
    records = [
        record(f"order {i} looked up", order_id=i, route="/orders/{order_id}", status="ok") for i in range(n)
    ]
    started = time.process_time()
    for rec in records:
        enricher(rec)
    return (time.process_time() - started) / n * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and round; the best counts")
    parser.add_argument("--kib", type=int, default=64, help="input size for the uncapped µs/KiB table")
    parser.add_argument(
        "--cap-kib", type=int, nargs="*", default=[16], help="caps to compare with the default"
    )
    parser.add_argument("--quick", action="store_true", help="smoke: 1 round, 1 run, 16 KiB")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeat, args.kib = 1, 1, 16
    rounds, repeat = max(1, args.rounds), max(1, args.repeat)
    caps = [DEFAULT_MAX_FIELD_BYTES, *(k * KIB for k in args.cap_kib)]
    print(
        _common.header(
            f"bench_adversarial: {len(INPUTS)} hostile inputs; uncapped redactor at {args.kib} KiB, "
            f"capped records at full size (caps {', '.join(f'{c // KIB} KiB' for c in caps)}); "
            f"{rounds} rounds, best of {repeat}, process CPU time"
        ),
        flush=True,
    )
    redactor = Redactor()
    per_kib: dict[str, list[float]] = {name: [] for name in INPUTS}
    capped: dict[tuple[str, int], list[float]] = {(name, cap): [] for name in INPUTS for cap in caps}
    out_size: dict[tuple[str, int], int] = {}
    enrichers = {cap: Enricher("bench", redactor, max_field_bytes=cap) for cap in caps}
    full = {
        name: build(name, size if not args.quick else min(size, MIB)) for name, (_, size) in INPUTS.items()
    }
    sample = {name: build(name, args.kib * KIB) for name in INPUTS}
    for r in range(rounds):
        for name in INPUTS:
            text = sample[name]
            per_kib[name].append(cpu(lambda text=text: redactor.redact_text(text), repeat) * 1e6 / args.kib)
            for cap in caps:
                seconds, size = enrich_cost(enrichers[cap], full[name], repeat)
                capped[(name, cap)].append(seconds)
                out_size[(name, cap)] = size
        print(f"  round {r + 1} done", flush=True)

    n = 2_000 if args.quick else 20_000
    on = Enricher("bench", redactor, max_field_bytes=DEFAULT_MAX_FIELD_BYTES)
    off = Enricher("bench", redactor, max_field_bytes=0)
    pairs = [(common_path_ns(on, n), common_path_ns(off, n)) for _ in range(rounds * 5)]  # interleaved
    common_on = _common.median(p[0] for p in pairs)
    common_off = _common.median(p[1] for p in pairs)
    print(f"load average at end: {_common.load_average()}")

    summary: dict[str, Any] = {"us_per_kib": {}, "capped_ms": {}, "uncapped_estimate_ms": {}, "out_bytes": {}}
    rows = []
    for name in INPUTS:
        us = _common.median(per_kib[name])
        record_size = len(full[name].encode())
        estimate_ms = us * record_size / KIB / 1000
        summary["us_per_kib"][name] = us
        summary["uncapped_estimate_ms"][name] = estimate_ms
        row: list[Any] = [name, f"{us:,.1f}", f"{record_size // KIB:,}", f"{estimate_ms:,.0f}"]
        for cap in caps:
            ms = _common.median(capped[(name, cap)]) * 1000
            summary["capped_ms"][f"{name} @{cap // KIB}KiB"] = ms
            summary["out_bytes"][f"{name} @{cap // KIB}KiB"] = out_size[(name, cap)]
            row += [f"{ms:,.2f}", f"{out_size[(name, cap)] // KIB:,}"]
        rows.append(row)
    rows.sort(key=lambda row: -float(row[1].replace(",", "")))
    headers = ["input", f"uncapped µs/KiB @{args.kib}KiB", "record KiB", "uncapped ms/record (est.)"]
    for cap in caps:
        headers += [f"ms/record @{cap // KIB}KiB cap", "out KiB"]
    print()
    print(_common.table(rows, headers))
    worst = max(summary["us_per_kib"], key=summary["us_per_kib"].get)
    default_kib = DEFAULT_MAX_FIELD_BYTES // KIB
    worst_capped = max(
        (k for k in summary["capped_ms"] if k.endswith(f"@{default_kib}KiB")), key=summary["capped_ms"].get
    )
    body = summary["uncapped_estimate_ms"][BODY] / 1000
    print(
        f"WORST uncapped {summary['us_per_kib'][worst]:,.1f} us/KiB ({worst}); the 10 MiB body ~{body:,.1f} s"
    )
    print(
        f"WORST capped record @{default_kib}KiB = {summary['capped_ms'][worst_capped]:,.1f} ms "
        f"({worst_capped})"
    )
    print(
        f"COMMON record (short message, 3 extras): {common_on:,.0f} ns with the cap, "
        f"{common_off:,.0f} ns without ({common_on - common_off:+,.0f} ns)"
    )
    summary["common_ns"] = {"cap": common_on, "no_cap": common_off}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
