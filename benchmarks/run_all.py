"""Run every benchmark (``make bench``): logging, HTTP, scaling, redaction and export, one after another.

Each script prints its own machine/version header, its table and RATIO/DROPS/GROWTH lines with a
PASS or MISS against the budget. This runner streams them and ends with one summary line per
script; it exits non-zero when a script failed or missed a budget.

    .venv/bin/python benchmarks/run_all.py            # the full run (about 30-40 minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # CI smoke: small N, short runs (a few minutes)
    .venv/bin/python benchmarks/run_all.py --only logging,scaling
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, full-run arguments, quick-run arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "logging": ("bench_logging.py", ["--sustained"], ["--quick", "--sustained"]),
    "http": ("bench_http.py", [], ["--quick"]),
    "scaling": ("bench_scaling.py", [], ["--quick"]),
    "redaction": ("bench_redaction.py", [], ["--rounds", "3", "--number", "200"]),
    # through the real collector (bin/lumen-otelcol): records/s end to end, app RSS while it is down
    "export": ("bench_export.py", [], ["--quick"]),
    "import": ("bench_import.py", [], ["--quick"]),  # start-up: import lumen_otel, redact(), bootstrap
    "insights": ("bench_insights.py", [], ["--quick"]),  # 1 M lines mined into templates
    "adversarial": ("bench_adversarial.py", [], ["--quick"]),  # hostile fields: µs/KiB, capped cost
    "recovery": ("bench_recovery.py", [], ["--quick"]),  # first delivery after the collector returns
    "faults": ("bench_collector_faults.py", [], ["--quick"]),  # latency, collector down/slow/refusing
    "redos": ("bench_redos.py", [], ["--quick"]),  # redaction cost, 100 KB vs 10 KB of hostile input
    "native": ("bench_native.py", [], ["--quick"]),  # the Rust accelerator against the Python path
    # PHI left by lumen in-process, its collector and peers on an outside corpus (tests/data/phi-corpus)
    "phi-corpus": ("bench_phi_corpus.py", [], ["--engines", "lumen,lumen+names,collector"]),
    # the detector of names and places without labels, alone and before the redactor, on that corpus
    "names": ("bench_names.py", [], []),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke: small N, short runs")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated subset of: " + ", ".join(BENCHMARKS)
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")

    summary = []
    for name in names:
        script, full, quick = BENCHMARKS[name]
        path = HERE / script
        if not path.exists():
            summary.append((name, "missing", 0.0))
            continue
        print(f"\n##### {name}: {script} {' '.join(quick if args.quick else full)}", flush=True)
        started = time.monotonic()
        code = subprocess.run(
            [sys.executable, str(path), *(quick if args.quick else full)], check=False
        ).returncode
        status = {0: "PASS", 1: "MISS (a budget was not met)"}.get(code, f"FAILED (exit {code})")
        summary.append((name, status, time.monotonic() - started))
    print("\n##### summary")
    for name, status, seconds in summary:
        print(f"  {name:<10} {status:<30} {seconds:6.0f} s")
    return 0 if all(status == "PASS" for _, status, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
