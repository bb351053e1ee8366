"""``bench_export.py --quick`` end to end through the real collector: the accounting, not the timing.

The benchmark's records/s and RSS figures move with the machine's load and are not asserted here.
What a user relies on is: every record the app logged while the collector was up reached the sink
exactly once, and while it was down every record was either delivered once it came back or counted
in ``lumen.log.dropped`` — none vanished uncounted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collector.conftest import COLLECTOR_BIN, require_tool
from tests.conftest import REPO

BENCH_EXPORT = REPO / "benchmarks" / "bench_export.py"


@pytest.mark.collector
@pytest.mark.integration
class TestBenchExportQuick:
    def test_quick_run_delivers_every_record_and_accounts_for_every_record_of_the_outage(
        self, tmp_path: Path
    ) -> None:
        """One --quick run (10,000 records; a 10 s outage at 1,000 records/s, queue 2048): zero loss
        with the collector up, emitted = delivered + counted drops across the outage, and the
        PASS/MISS lines the docs quote are printed."""
        binary = require_tool(
            COLLECTOR_BIN, "build it with `make collector` (needs Go and the Go module proxy)"
        )
        summary_path = tmp_path / "export.json"
        env = {k: v for k, v in os.environ.items() if k != "LUMEN_OTEL_STRICT"}
        env["LUMEN_OTELCOL_BIN"] = str(binary)
        proc = subprocess.run(
            [sys.executable, str(BENCH_EXPORT), "--quick", "--json", str(summary_path)],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=str(REPO),
            env=env,
            check=False,
        )
        out = proc.stdout
        assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{out}\n{proc.stderr}"  # 1 = budget missed
        expected = ["THROUGHPUT export", "LOSS export", "RSS outage", "PLATEAU outage", "ACCOUNTING outage"]
        found = [prefix for prefix in expected if re.search(rf"^{re.escape(prefix)}:", out, re.M)]
        assert expected == found, out
        assert re.search(r"^versions: .*lumen-otel \S+.*opentelemetry-sdk \S+", out, re.M), out

        summary = json.loads(summary_path.read_text())
        throughput, outage = summary["throughput"], summary["outage"]
        assert {"emitted": 10_000, "delivered": 10_000, "lost": 0, "duplicates": 0} == {
            key: throughput[key] for key in ("emitted", "delivered", "lost", "duplicates")
        }, out
        assert re.search(r"^LOSS export: 0 lost .* PASS$", out, re.M), out

        assert outage["queue_size"] == 2048
        assert outage["dropped_counted"] > 0, out  # 10 s at 1,000/s overflows a queue of 2048
        assert outage["emitted"] == outage["delivered"] + outage["dropped_counted"], out
        assert (0, 0) == (outage["uncounted"], outage["duplicates"]), out
        assert outage["delivered_from_outage"] >= outage["queue_size"], out  # the queue was delivered
        assert re.search(r"^ACCOUNTING outage: .* PASS$", out, re.M), out
        for key in ("rss_start_mib", "rss_outage_max_mib", "rss_late_growth_mib", "rss_bound_mib"):
            assert isinstance(outage[key], float), (key, outage)
