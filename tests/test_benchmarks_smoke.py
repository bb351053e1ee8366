"""The benchmark scripts keep running: ``bench_logging.py --quick`` end to end, no timing asserted.

Timings on a shared CI machine mean nothing; what this guards is that the script (and the
lumen-otel internals it builds the pipeline from) still run, count drops, and print the ratio
lines the performance table in docs/performance.md is made from.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH_LOGGING = REPO / "benchmarks" / "bench_logging.py"


@pytest.mark.integration
class TestBenchLoggingQuick:
    def test_quick_run_prints_every_ratio_line_and_the_drop_accounting(self, tmp_path):
        """One --quick run: every configuration runs in its own process and the summary prints."""
        summary = tmp_path / "summary.json"
        proc = subprocess.run(
            [sys.executable, str(BENCH_LOGGING), "--quick", "--rounds", "3", "--json", str(summary)],
            capture_output=True,
            text=True,
            timeout=280,
            cwd=str(REPO),
            check=False,
        )
        out = proc.stdout
        assert proc.returncode in (0, 1), (
            f"exit {proc.returncode}\n{out}\n{proc.stderr}"
        )  # 1 = a budget missed
        expected = [
            "RATIO lumen/baseline",
            "RATIO naive/lumen",
            "RATIO pjl/baseline",
            "RATIO structlog/baseline",
            "RATIO otel/baseline",
            "RATIO naive/baseline",
            "REDACTION share of lumen",
            "DROPS lumen",
            "DROPS otel",
            "DROPS naive",
        ]
        found = [prefix for prefix in expected if re.search(rf"^{re.escape(prefix)}\b", out, re.M)]
        assert expected == found, out
        assert re.search(r"^versions: .*lumen-otel \S+.*opentelemetry-sdk \S+", out, re.M), out
        assert summary.exists()
        drops = next(line for line in out.splitlines() if line.startswith("DROPS lumen"))
        assert "uncounted 0 " in drops, drops  # at --quick's N nothing is lost, and nothing uncounted
