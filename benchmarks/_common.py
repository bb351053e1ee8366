"""What every benchmark script shares: the machine and versions header, interleaved rounds in
one child process per configuration, medians, and the tables.

Numbers from a shared 2-core machine move with the load, so the scripts never compare a number
with one from another run: each prints *ratios* against peers measured in the same run, rounds
interleaved (A B C, B C A, C A B, ...) so a noisy minute hurts every configuration alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

#: distributions whose versions every report prints (missing ones print as "-")
VERSIONS = (
    "lumen-otel",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-logging",
    "opentelemetry-exporter-otlp-proto-http",
    "orjson",
    "python-json-logger",
    "structlog",
)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def header(title: str, extra_versions: Iterable[str] = ()) -> str:
    versions = ", ".join(f"{d} {version(d)}" for d in (*VERSIONS, *extra_versions))
    return "\n".join(
        (
            f"== {title}",
            f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()})",
            f"load average at start: {load_average()}",
            f"versions: {versions}",
        )
    )


def interleaved(configs: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """(round, config) in rotating order: round r starts at config r mod len."""
    order: list[tuple[int, str]] = []
    for r in range(rounds):
        shift = r % len(configs)
        order.extend((r, c) for c in (*configs[shift:], *configs[:shift]))
    return order


def run_child(
    script: Path, args: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script --child ...`` in a fresh interpreter; it writes its result as JSON to --out.

    The child's stdout goes to /dev/null (that is where the console sinks under test write);
    its stderr is kept so warnings a configuration prints can be counted and shown.
    """
    with tempfile.TemporaryDirectory(prefix="lumen-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), "--child", *args, "--out", str(out), "--tmp", tmp]
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=env,
            cwd=str(REPO),
            check=False,
        )
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{' '.join(cmd[2:])} failed ({proc.returncode}):\n{stderr[-4000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        result["stderr_lines"] = len([line for line in stderr.splitlines() if line.strip()])
        result["stderr_sample"] = stderr.strip().splitlines()[:3]
        result["child_seconds"] = time.monotonic() - started
        return result


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def dropped_by_reason(reader: Any) -> dict[str, float]:
    """``lumen.log.dropped`` per ``reason``, read from an in-memory metric reader in the app."""
    drops: dict[str, float] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "lumen.log.dropped":
                    for point in metric.data.data_points:
                        reason = str((point.attributes or {}).get("reason"))
                        drops[reason] = drops.get(reason, 0) + getattr(point, "value", 0)  # a Sum
    return drops
