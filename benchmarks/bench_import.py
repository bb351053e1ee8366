"""Import cost: what a script pays to start before it logs or redacts anything.

Each variant runs in a fresh interpreter (``python -X importtime`` would measure the same
thing, but the wall time of a whole process is what a CLI or a short job sees). Rounds are
interleaved so a noisy neighbour hits every variant alike; the table gives the median of each
and its ratio to a bare interpreter.

    .venv/bin/python benchmarks/bench_import.py            # 15 rounds
    .venv/bin/python benchmarks/bench_import.py --quick    # 5 rounds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

VARIANTS: dict[str, str] = {
    "bare interpreter": "pass",
    "import lumen_otel": "import lumen_otel",
    "lumen_otel.redact()": "import lumen_otel; lumen_otel.redact('MRN: 12345678')",
    "opentelemetry.sdk (traces, logs)": "import opentelemetry.sdk.trace, opentelemetry.sdk._logs",
    "lumen_otel.bootstrap (imported)": "import lumen_otel; lumen_otel.bootstrap",
}


def _modules(code: str) -> int:
    script = f"import sys; {code}; print(sum(1 for m in sys.modules if m.startswith('opentelemetry')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def _once(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    args = parser.parse_args()
    rounds = 5 if args.quick else max(1, min(args.rounds, 200))

    from lumen_otel import __version__

    print(
        f"# import cost: lumen-otel {__version__}, Python {platform.python_version()}, {platform.machine()}"
    )
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for code in VARIANTS.values():  # warm the page cache and the .pyc files
        _once(code)
    for _ in range(rounds):
        for name, code in VARIANTS.items():
            times[name].append(_once(code))
    bare = statistics.median(times["bare interpreter"])
    sdk = statistics.median(times["opentelemetry.sdk (traces, logs)"]) - bare
    print(f"{'variant':36} {'median ms':>10} {'over bare ms':>13} {'otel modules':>13}")
    for name, code in VARIANTS.items():
        median = statistics.median(times[name])
        print(f"{name:36} {median * 1000:10.1f} {(median - bare) * 1000:13.1f} {_modules(code):13d}")
    # The redactor compiles its rules on first use: that, not imports, is most of redact()'s cost.
    for name in ("import lumen_otel", "lumen_otel.redact()", "lumen_otel.bootstrap (imported)"):
        cost = statistics.median(times[name]) - bare
        print(f"RATIO {name} / opentelemetry.sdk import = {cost / sdk if sdk > 0 else float('inf'):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
