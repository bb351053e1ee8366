"""Cost per record as the message grows (100 B -> 100 KB) and as ``extra`` grows (0 -> 50 keys).

lumen-otel's prod pipeline (as in bench_logging.py: enrich + redact, JSON console on /dev/null,
file, OTLP bridge with a discarding exporter) against the stdlib baseline, each in its own process,
rounds interleaved, medians reported. Every case logs a bounded number of records and flushes
everything before the clock stops. Growth should be linear: ten times the bytes, about ten times
the cost once the fixed per-record cost is amortised. A few adversarial 10 KB messages (long runs
of digits, separators, '@', labels) check that no redaction pattern backtracks catastrophically.

    .venv/bin/python benchmarks/bench_scaling.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

SCRIPT = Path(__file__).resolve()
CONFIGS = ("baseline", "lumen")
SIZES = (100, 1_000, 10_000, 100_000)
EXTRA_KEYS = (0, 5, 10, 25, 50)
BYTES_PER_CASE = 4_000_000  # bounds the work per size: 40 records of 100 KB, 2,000 of 100 B
TEXT = (
    "Upload of 84 DICOM files took 795 ms; queue depth 12, worker pool busy 3/8, retry budget 5, "
    "cache hit ratio 0.93 for study 1.2.840.113619 on node ris-7; "
)
ADVERSARIAL = {  # name -> a pattern repeated to the size wanted
    "digits": "1",
    "digit-dashes": "12-",
    "dots-digits": "1.",
    "at-signs": "a@",
    "labels": "patient name: ",
    "spaces": " ",
    "hl7-ish": "PID|1||",
}
ADVERSARIAL_SIZES = (5_000, 20_000)
GROWTH_LIMIT = 1.5  # 4x the bytes of an adversarial message may cost at most 1.5 x 4x (linear, with slack)


def message(size: int, text: str = TEXT) -> str:
    return (text * (size // len(text) + 1))[:size]


def _time_case(log: Any, flush: Any, msg: str, extra: dict[str, Any] | None, n: int) -> float:
    for _ in range(min(20, n)):
        log(msg, extra)
    flush()
    started = time.perf_counter()
    for _ in range(n):
        log(msg, extra)
    flush()
    return (time.perf_counter() - started) * 1e6 / n


def child(config: str, quick: bool, tmp: Path, out: Path) -> None:
    import logging

    import bench_logging

    setup = bench_logging.setup(config, tmp)
    logger = logging.getLogger("bench.scaling")
    info = logger.info

    def log(msg: str, extra: dict[str, Any] | None) -> None:
        info(msg, extra=extra)

    budget = BYTES_PER_CASE // (20 if quick else 1)
    result: dict[str, Any] = {"size": {}, "extra": {}, "adversarial": {}}
    for size in SIZES:
        n = max(10, min(2_000, budget // size))
        result["size"][str(size)] = _time_case(log, setup.flush, message(size), None, n)
    for keys in EXTRA_KEYS:
        extra = {f"field_{i}": f"value {i} of the record" for i in range(keys)}
        result["extra"][str(keys)] = _time_case(
            log, setup.flush, message(100), extra, 100 if quick else 1_000
        )
    for name, text in (("normal", TEXT), *ADVERSARIAL.items()):
        for size in ADVERSARIAL_SIZES:
            n = 10 if quick else 100
            result["adversarial"][f"{name}@{size}"] = _time_case(
                log, setup.flush, message(size, text), None, n
            )
    out.write_text(json.dumps(result))
    os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke: a twentieth of the records")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.quick, args.tmp, args.out)
        return 0

    print(
        _common.header(
            f"bench_scaling: cost per record by message size and extra keys, "
            f"{args.rounds} interleaved rounds, one process per configuration"
        )
    )
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    for round_no, config in _common.interleaved(CONFIGS, max(1, args.rounds)):
        extra_args = ["--quick"] if args.quick else []
        runs[config].append(_common.run_child(SCRIPT, [config, *extra_args], timeout=900))
        print(f"  round {round_no + 1} {config} done", flush=True)
    print(f"load average at end: {_common.load_average()}")

    def med(config: str, table: str, key: str) -> float:
        return _common.median(r[table][key] for r in runs[config])

    ok = True
    rows = []
    previous: float | None = None
    for size in SIZES:
        lumen, base = med("lumen", "size", str(size)), med("baseline", "size", str(size))
        growth = "-" if previous is None else f"{lumen / previous:.1f}x"
        rows.append(
            (
                f"{size:,} B",
                f"{base:.1f}",
                f"{lumen:.1f}",
                f"{lumen / base:.2f}x",
                growth,
                f"{lumen / (size / 1000):.2f}",
            )
        )
        previous = lumen
    print()
    print("message size (no extra):")
    print(
        _common.table(
            rows,
            ("message", "baseline us/rec", "lumen us/rec", "x baseline", "growth vs previous", "lumen us/KB"),
        )
    )
    small, large = med("lumen", "size", str(SIZES[-2])), med("lumen", "size", str(SIZES[-1]))
    factor = large / small
    linear = factor <= (SIZES[-1] / SIZES[-2]) * 1.5
    ok &= linear
    print(
        f"GROWTH lumen {SIZES[-2]:,} B -> {SIZES[-1]:,} B: {factor:.1f}x "
        f"for {SIZES[-1] // SIZES[-2]}x the bytes "
        f"(linear: <= {1.5 * SIZES[-1] / SIZES[-2]:.0f}x) {_common.verdict(linear)}"
    )

    rows = []
    for keys in EXTRA_KEYS:
        lumen, base = med("lumen", "extra", str(keys)), med("baseline", "extra", str(keys))
        rows.append((keys, f"{base:.1f}", f"{lumen:.1f}", f"{lumen / base:.2f}x"))
    print()
    print("extra keys (100 B message; the baseline formatter ignores extras):")
    print(_common.table(rows, ("extra keys", "baseline us/rec", "lumen us/rec", "x baseline")))
    zero, fifty = med("lumen", "extra", "0"), med("lumen", "extra", str(EXTRA_KEYS[-1]))
    ten = med("lumen", "extra", "10")
    per_key = (fifty - ten) / (EXTRA_KEYS[-1] - 10)
    print(
        f"GROWTH lumen 0 -> {EXTRA_KEYS[-1]} extra keys: {fifty / zero:.1f}x; {per_key:.2f} us per extra key "
        f"(10 -> 50 keys: {fifty - ten:.1f} us for 40 keys, per-key cost 10-25 vs 25-50: "
        f"{(med('lumen', 'extra', '25') - ten) / 15:.2f} / {(fifty - med('lumen', 'extra', '25')) / 25:.2f})"
    )

    rows = []
    calm = True
    small_size, large_size = ADVERSARIAL_SIZES
    linear_growth = large_size / small_size
    normal = med("lumen", "adversarial", f"normal@{large_size}")
    worst = 0.0
    for name in ("normal", *ADVERSARIAL):
        small = med("lumen", "adversarial", f"{name}@{small_size}")
        large = med("lumen", "adversarial", f"{name}@{large_size}")
        growth = large / small
        bad = growth > GROWTH_LIMIT * linear_growth
        worst = max(worst, growth)
        calm &= not bad
        rows.append(
            (
                name,
                f"{small:.1f}",
                f"{large:.1f}",
                f"{growth:.1f}x",
                f"{large / normal:.2f}x",
                "MISS" if bad else "",
            )
        )
    print()
    print(f"adversarial messages through lumen (redaction included), {small_size:,} B and {large_size:,} B:")
    print(
        _common.table(
            rows, ("message", f"us/rec @{small_size:,}", f"us/rec @{large_size:,}", "growth", "x normal", "")
        )
    )
    print(
        f"ADVERSARIAL worst growth = {worst:.1f}x for {linear_growth:.0f}x the bytes "
        f"(linear: <= {GROWTH_LIMIT * linear_growth:.0f}x, no catastrophic backtracking) "
        f"{_common.verdict(calm)}"
    )
    ok &= calm
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
