"""Request latency while the collector is down, gone, slow or refusing, next to a service with none.

One FastAPI app (``apps/fastapi_bench_app.py``, one logged line per request) under
``opentelemetry-instrument uvicorn`` with the lumen distro, product defaults (exporter timeout
10 s), started once per configuration; all of them run side by side for the whole run:

  none      no OTLP endpoint: the baseline every other configuration is divided by
  healthy   exporting to a collector stand-in that accepts everything (reference, no budget)
  down      exporting to a loopback port nobody listens on: the collector never came up
  away      the stand-in took the warm-up records, then was killed (every connection closed)
  slow      the stand-in answers every export after --slow-delay seconds (default 2)
  refusing  the stand-in answers every export with 503

The stand-in is ``lumen_otel.testing.OTLPReceiver`` in a process of its own. Each round sends
--requests ``GET /items/<i>`` to every app, one request at a time and interleaved (app after app,
the order rotating from round to round), so a noisy moment hurts every configuration alike.
Reported: per round and configuration the median and p99 latency; then the median over rounds
and RATIO lines (median latency / the baseline's, per round, median over rounds). Budget: every
fault configuration <= 1.2x the baseline; the test suite asserts the behaviour instead (every
request answered, none waits for the exporter: tests/reliability/test_collector_faults.py).

    .venv/bin/python benchmarks/bench_collector_faults.py [--rounds 5] [--requests 200] [--quick]
        [--configs none,healthy,down,away,slow,refusing] [--json out.json]

Exit status: 0 every budget met, 1 a budget missed, 2 the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

APPS = _common.HERE / "apps"
VENV_BIN = Path(sys.executable).parent
CONFIGS = ("none", "healthy", "down", "away", "slow", "refusing")
FAULTS = ("down", "away", "slow", "refusing")
BUDGET = 1.2
WARMUP = 50  # requests per app before the first round (and records the "away" stand-in takes)
REQUEST_TIMEOUT = 30.0

RECEIVER_CODE = r"""
import json, sys
from lumen_otel.testing import OTLPReceiver
receiver = OTLPReceiver()
mode = sys.argv[1]
if mode == "slow":
    receiver.delay = float(sys.argv[2])
elif mode == "refusing":
    receiver.fail_status = 503
receiver.start()
print(receiver.endpoint, flush=True)
for line in sys.stdin:  # one line in, one line of counts out; EOF ends the process
    with receiver._lock:
        counts = {"logs": len(receiver.logs), "spans": len(receiver.spans), "requests": receiver.requests}
    print(json.dumps(counts), flush=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """The collector stand-in in its own process; ``kill()`` is the collector going away."""

    def __init__(self, mode: str, delay: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER_CODE, mode, str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(_common.REPO),
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        if not self.endpoint.startswith("http://127.0.0.1:"):
            self.kill()
            raise RuntimeError(f"collector stand-in ({mode}) did not start")

    def counts(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@dataclass
class App:
    config: str
    proc: subprocess.Popen[bytes]
    url: str
    stderr_path: Path
    receiver: Receiver | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=REQUEST_TIMEOUT))

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.receiver is not None:
            self.receiver.kill()


def _env(config: str, endpoint: str | None, log_dir: Path) -> dict[str, str]:
    prefixes = ("LUMEN_", "OTEL_", "LOG_", "DJANGO_SETTINGS_MODULE", "NO_COLOR", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(APPS)
    env.update(
        {
            "BENCH_STACK": "lumen",
            "OTEL_SERVICE_NAME": f"bench-faults-{config}",
            "LUMEN_ENV": "prod",
            "LUMEN_LOG_DIR": str(log_dir),
        }
    )
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    return env


def wait_ready(app: App, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise RuntimeError(
                f"{app.config}: exited with {app.proc.returncode}:\n{app.stderr_path.read_text()[-3000:]}"
            )
        try:
            if app.client.get(f"{app.url}/items/0", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{app.config}: not ready within {timeout:g} s:\n{app.stderr_path.read_text()[-3000:]}"
    )


def start(config: str, tmp: Path, slow_delay: float) -> App:
    receiver = None
    endpoint: str | None = None
    if config == "down":
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    elif config != "none":
        receiver = Receiver(config, slow_delay)
        endpoint = receiver.endpoint
    port = free_port()
    stderr_path = tmp / f"{config}.err"
    argv = [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "uvicorn"),
        "fastapi_bench_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=str(APPS),
            env=_env(config, endpoint, tmp / f"logs-{config}"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    app = App(config, proc, f"http://127.0.0.1:{port}", stderr_path, receiver)
    try:
        wait_ready(app)
        for i in range(WARMUP):
            get(app, i)
        if config == "away":
            assert receiver is not None
            deadline = time.monotonic() + 30
            while receiver.counts()["logs"] < WARMUP and time.monotonic() < deadline:
                time.sleep(0.2)
            if receiver.counts()["logs"] < WARMUP:
                raise RuntimeError(f"away: the stand-in got {receiver.counts()} of {WARMUP} warm-up records")
            receiver.kill()  # the collector goes away; the app keeps its endpoint
    except BaseException:
        app.stop()
        raise
    return app


def get(app: App, i: int) -> float:
    started = time.perf_counter()
    response = app.client.get(f"{app.url}/items/{i}")
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{app.config}: GET /items/{i} answered {response.status_code}")
    return seconds


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per app per round")
    parser.add_argument(
        "--slow-delay", type=float, default=2.0, help="seconds the slow stand-in takes per export"
    )
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated subset (none is required)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=900.0, help="stop starting rounds after this long"
    )
    parser.add_argument("--quick", action="store_true", help="smoke: 3 rounds of 50 requests")
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests = 3, 50
    configs = tuple(c for c in args.configs.split(",") if c)
    unknown = set(configs) - set(CONFIGS)
    if unknown or "none" not in configs:
        parser.error(f"--configs: a subset of {', '.join(CONFIGS)} that includes none")
    rounds, requests = max(1, args.rounds), max(1, args.requests)

    print(
        _common.header(
            f"bench_collector_faults: {len(configs)} apps side by side, {rounds} interleaved rounds of "
            f"{requests} requests each (one at a time), after {WARMUP} warm-up requests; slow = "
            f"{args.slow_delay:g} s per export",
            extra_versions=("fastapi", "uvicorn", "httpx"),
        ),
        flush=True,
    )
    began = time.monotonic()
    samples: dict[str, list[list[float]]] = {c: [] for c in configs}
    apps: dict[str, App] = {}
    with tempfile.TemporaryDirectory(prefix="lumen-bench-faults-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            for config in configs:
                apps[config] = start(config, tmp, args.slow_delay)
            for r in range(rounds):
                if time.monotonic() - began > args.max_seconds:
                    print(f"  stopped after {r} rounds: --max-seconds {args.max_seconds:g} reached")
                    break
                shift = r % len(configs)
                order = (*configs[shift:], *configs[:shift])
                for config in configs:
                    samples[config].append([])
                for i in range(requests):
                    for config in order:
                        samples[config][-1].append(get(apps[config], WARMUP + r * requests + i))
                print(
                    f"  round {r + 1}  "
                    + "  ".join(
                        f"{c} {statistics.median(samples[c][-1]) * 1000:.2f}/{p99(samples[c][-1]) * 1000:.2f}"
                        for c in configs
                    )
                    + "  (median/p99 ms)",
                    flush=True,
                )
            stderr_lines = {
                c: len(
                    [line for line in a.stderr_path.read_text(errors="replace").splitlines() if line.strip()]
                )
                for c, a in apps.items()
            }
        except Exception as exc:
            print(f"bench_collector_faults: the run failed: {exc}", file=sys.stderr)
            return 2
        finally:
            for app in apps.values():
                app.stop()
    print(f"load average at end: {_common.load_average()}")
    done = len(samples["none"])
    if not done:
        print("bench_collector_faults: no round completed", file=sys.stderr)
        return 2

    per_round = {c: [statistics.median(s) for s in samples[c]] for c in configs}
    ratios = {c: [m / b for m, b in zip(per_round[c], per_round["none"], strict=True)] for c in configs}
    summary: dict[str, Any] = {"rounds": done, "requests": requests, "configs": {}}
    rows = []
    for c in configs:
        every = [x for s in samples[c] for x in s]
        med = statistics.median(per_round[c]) * 1000
        ratio = statistics.median(ratios[c])
        worst = max(every) * 1000
        summary["configs"][c] = {
            "median_ms": med,
            "p99_ms": p99(every) * 1000,
            "max_ms": worst,
            "ratio": ratio,
            "answered": len(every),
            "stderr_lines": stderr_lines[c],
        }
        rows.append(
            (c, f"{med:.2f}", f"{p99(every) * 1000:.2f}", f"{worst:.1f}", f"{ratio:.2f}x", len(every))
        )
    print()
    print(_common.table(rows, ("config", "median ms", "p99 ms", "max ms", "x none", "answered 200")))
    ok = True
    for c in configs:
        if c == "none":
            continue
        ratio = summary["configs"][c]["ratio"]
        if c in FAULTS:
            good = ratio <= BUDGET
            ok &= good
            print(
                f"RATIO {c}/none median latency = {ratio:.2f}x (budget <= {BUDGET}x) {_common.verdict(good)}"
            )
        else:
            print(f"RATIO {c}/none median latency = {ratio:.2f}x (reference, no budget)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
