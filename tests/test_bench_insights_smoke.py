"""``bench_insights.py --quick`` keeps running: the lines it prints, not the timing.

Seconds and RSS move with the machine's load and are not asserted; what is checked is that the
generator, the real ``lumen-otel insights`` child process and the summary lines work, and that
the generated burst and new template are found.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BENCH_INSIGHTS = REPO / "benchmarks" / "bench_insights.py"


@pytest.mark.integration
class TestBenchInsightsQuick:
    def test_quick_run_prints_the_time_and_memory_lines(self, tmp_path: Path) -> None:
        summary = tmp_path / "insights.json"
        proc = subprocess.run(
            [sys.executable, str(BENCH_INSIGHTS), "--quick", "--json", str(summary)],
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
        assert re.search(
            r"^TIME 50,000 lines in [\d.]+ s \(.* lines/s; budget \d+ s\) (PASS|MISS)$", out, re.M
        ), out
        assert re.search(r"^MEMORY peak RSS \d+ MB for 50,000 lines .* (PASS|MISS)$", out, re.M), out
        found = re.search(r"^found: .* new (\d+), spikes \d+, errors (\d+), evicted 0$", out, re.M)
        assert found, out
        assert int(found.group(1)) >= 2  # the burst and the feature flag
        assert int(found.group(2)) >= 2  # the burst and the claim rejections
        numbers = json.loads(summary.read_text())
        assert {"tenth", "all"} == set(numbers)
        assert 50_000 == numbers["all"]["lines"]
