"""How the redactor's cost grows with hostile input: CPU time for 100 KB / CPU time for 10 KB.

Each adversarial seed (digit runs, name-like words, labels, URL/e-mail/IP fragments, HL7 delimiters:
the seeds of tests/reliability/test_redos.py and tests/test_redaction.py) is repeated to 10 KB and to
100 KB, as plain text and inside the PID segment of an HL7 message, and redacted with
``Redactor.redact_text``. Linear patterns cost about 10x for ten times the input; one that backtracks
quadratically shows ~100x. Rounds are interleaved (every case at 10 KB and 100 KB once per round, the
order of the cases rotating), times are this process's CPU time, best of --repeat per round, median
over rounds. Budget: ratio <= 30x for every case whose 100 KB time is at least --floor-ms (below that,
timer noise dominates the ratio).

The test suite asserts the behaviour instead: a megabyte of each seed is redacted within a CPU
budget, and a backtracking pattern is interrupted (tests/reliability/test_redos.py).

    .venv/bin/python benchmarks/bench_redos.py [--rounds 5] [--repeat 3] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from lumen_otel._redaction import Redactor

SEEDS = (
    "1",
    "a",
    "Aa ",
    "1-",
    "a1",
    "1.",
    "(1 ",
    "x/",
    "@",
    "a.",
    " ",
    "MRN: 1",
    "name: Ab ",
    "Dr. Aa ",
    "ssn=1",
    "DOB: 01/",
    "1 Main St ",
    "f:",
    "http://a/?a=1&",
    "|^",
    ".",
    "|",
    "^",
    "a@",
    "MRN ",
    "patient Aa ",
    "1 Aa ",
    "ab:",
    "(1",
    "MSH|^~\\&|",
    "PID|",
    "\r",
    "name=",
    '"',
    "\u00e9",
    "+1 ",
)
HL7 = "MSH|^~\\&|APP|FAC|APP|FAC|202401011200||ADT^A01|MSG0001|P|2.5\rPID|1||{}||DOE^JOHN\r"
SMALL, LARGE = 10_000, 100_000
BUDGET = 30.0


def text(seed: str, where: str, size: int) -> str:
    body = (seed * (size // len(seed) + 1))[:size]
    return HL7.format(body) if where == "hl7" else body


def cpu_seconds(redactor: Redactor, value: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        redactor.redact_text(value)
        best = min(best, time.process_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and round; the best counts")
    parser.add_argument(
        "--floor-ms", type=float, default=5.0, help="100 KB time below which no budget applies"
    )
    parser.add_argument("--quick", action="store_true", help="smoke: 2 rounds, 1 run each")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeat = 2, 1
    rounds, repeat = max(1, args.rounds), max(1, args.repeat)
    cases = [(seed, where) for where in ("plain", "hl7") for seed in SEEDS]
    print(
        _common.header(
            f"bench_redos: {len(cases)} hostile inputs at {SMALL // 1000} KB and {LARGE // 1000} KB, "
            f"{rounds} interleaved rounds, best of {repeat} per round, process CPU time"
        ),
        flush=True,
    )
    redactor = Redactor()
    inputs = {case: (text(*case, SMALL), text(*case, LARGE)) for case in cases}
    times: dict[tuple[str, str], tuple[list[float], list[float]]] = {case: ([], []) for case in cases}
    for r in range(rounds):
        shift = (r * 7) % len(cases)
        for case in (*cases[shift:], *cases[:shift]):
            small, large = inputs[case]
            times[case][0].append(cpu_seconds(redactor, small, repeat))
            times[case][1].append(cpu_seconds(redactor, large, repeat))
        print(f"  round {r + 1} done", flush=True)
    print(f"load average at end: {_common.load_average()}")

    rows, summary, missed = [], {}, []
    for seed, where in cases:
        small_ms = _common.median(times[(seed, where)][0]) * 1000
        large_ms = _common.median(times[(seed, where)][1]) * 1000
        ratio = large_ms / max(small_ms, 1e-3)
        judged = large_ms >= args.floor_ms
        if judged and ratio > BUDGET:
            missed.append(f"{where} {seed!r}")
        summary[f"{where} {seed!r}"] = {"small_ms": small_ms, "large_ms": large_ms, "ratio": ratio}
        rows.append(
            (
                f"{where} {seed!r}",
                f"{small_ms:.2f}",
                f"{large_ms:.2f}",
                f"{ratio:.1f}x" + ("" if judged else " *"),
            )
        )
    rows.sort(key=lambda row: -float(row[3].split("x")[0]))
    print()
    print(_common.table(rows, ("input", "10 KB ms", "100 KB ms", "ratio")))
    print(f"(* 100 KB under {args.floor_ms:g} ms: not judged)")
    worst = max(summary.values(), key=lambda s: s["ratio"] if s["large_ms"] >= args.floor_ms else 0.0)
    worst_name = next(k for k, v in summary.items() if v is worst)
    print(
        f"RATIO redos worst 100KB/10KB = {worst['ratio']:.1f}x ({worst_name}; budget <= {BUDGET:g}x) "
        f"{_common.verdict(not missed)}"
    )
    if missed:
        print(f"MISSED: {', '.join(missed)}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
