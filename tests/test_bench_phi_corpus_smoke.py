"""``bench_phi_corpus.py`` on a slice of the corpus, lumen in-process only: the report, not the rates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BENCH = REPO / "benchmarks" / "bench_phi_corpus.py"


class TestBenchPHICorpusSmoke:
    def test_a_slice_prints_the_table_the_per_field_leaks_and_the_targets(self, tmp_path: Path) -> None:
        out_json = tmp_path / "phi.json"
        proc = subprocess.run(
            [sys.executable, str(BENCH), "--engines", "lumen", "--limit", "25", "--json", str(out_json)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(REPO),
            check=False,
        )
        out = proc.stdout
        assert proc.returncode in (0, 1), (
            f"exit {proc.returncode}\n{out}\n{proc.stderr}"
        )  # 1 = a target missed
        assert re.search(r"^lumen\s+25\s+[\d.]+ % \(\d+/\d+\)", out, re.M), out
        assert "leaks per HL7 field, top 15" in out, out
        assert re.search(r"^LEAKED lumen in-process: [\d.]+ % <= 1 % (PASS|MISS)$", out, re.M), out
        assert re.search(r"^KEEP_LOST lumen in-process: \d+ <= 0 (PASS|MISS)$", out, re.M), out
        result = json.loads(out_json.read_text())["results"]["lumen"]
        assert 25 == result["items"]
        assert 25 == result["notes"]
        assert 0 <= result["leaked"] <= result["phi"] > 0
        assert (proc.returncode == 0) == (result["leak_rate"] <= 0.01 and result["keep_lost"] == 0)
