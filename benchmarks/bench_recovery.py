"""How soon OTLP log delivery resumes once the collector comes back.

A real app process (lumen-otel bootstrapped, logging one ``tick <n>`` record every --interval
seconds, product defaults otherwise) exports to the collector stand-in
(``lumen_otel.testing.OTLPReceiver`` in a process of its own, ``tests/reliability/_receiver_main.py``,
which notes the time of every answer). Each round the stand-in is killed (every connection
closes), stays away --away seconds while the app keeps logging (connection refused), and is
restarted on the same port. Measured: from the restart (the stand-in listening again) to its
first accepted ``/v1/logs`` request. Printed per round, then the median and the max.

    .venv/bin/python benchmarks/bench_recovery.py [--rounds 5] [--away 3] [--interval 0.02] [--json out.json]

Bounded: each round waits at most --round-timeout seconds for delivery (a round that times out
is printed as such and the exit status is 1). Exit status: 0 every round recovered within the
1 s budget, 1 a round did not, 2 the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

RECEIVER = _common.REPO / "tests" / "reliability" / "_receiver_main.py"
BUDGET = 1.0  # seconds from the collector's return to the first delivered record

APP = """
import logging, sys, time
import lumen_otel
lumen_otel.bootstrap(service_name="bench-recovery")
log = logging.getLogger("bench.recovery")
interval = float(sys.argv[1])
n = 0
print("READY", flush=True)
while True:
    log.info("tick %d", n)
    n += 1
    time.sleep(interval)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    def __init__(self, port: int, out: Path) -> None:
        self.port, self.out = port, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start listening; the wall-clock time it was ready (a few retries while the old socket lingers)."""
        for _ in range(50):
            proc = subprocess.Popen(
                [sys.executable, str(RECEIVER), str(self.port), str(self.out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdout is not None
            if proc.stdout.readline().strip() == b"READY":
                self.proc = proc
                return time.time()
            proc.kill()
            proc.wait()
            time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def first_log_answer_after(self, since: float) -> float | None:
        if not self.out.exists():
            return None
        for line in self.out.read_text().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if (
                item.get("signal") == "answer"
                and item["path"].endswith("/v1/logs")
                and item["status"] == 200
                and item["time"] >= since
            ):
                return float(item["time"])
        return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--away", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--round-timeout", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(_common.header("bench_recovery: OTLP log delivery after the collector returns"), flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        receiver = Receiver(port, tmp / "received.jsonl")
        receiver.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LUMEN_", "OTEL_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "LUMEN_ENV": "prod",
                "LUMEN_LOG_DIR": str(tmp / "logs"),
                "LUMEN_OTEL_STRICT": "0",
            }
        )
        stderr = (tmp / "app.err").open("wb")
        app = subprocess.Popen(
            [sys.executable, "-c", APP, str(args.interval)],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        times: list[float | None] = []
        try:
            assert app.stdout is not None
            if app.stdout.readline().strip() != b"READY":
                print((tmp / "app.err").read_text()[-3000:], file=sys.stderr)
                return 2
            deadline = time.monotonic() + args.round_timeout
            while receiver.first_log_answer_after(0) is None:  # exporting before the first fault
                if time.monotonic() > deadline:
                    print("no record delivered before the first fault", file=sys.stderr)
                    return 2
                time.sleep(0.05)
            for round_no in range(1, args.rounds + 1):
                receiver.kill()
                time.sleep(args.away)
                ready = receiver.start()
                deadline = time.monotonic() + args.round_timeout
                first = receiver.first_log_answer_after(ready)
                while first is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                    first = receiver.first_log_answer_after(ready)
                recovered = None if first is None else first - ready
                times.append(recovered)
                shown = "timed out" if recovered is None else f"{recovered:.3f} s"
                print(
                    f"round {round_no}: collector away {args.away:g} s, first record delivered {shown}",
                    flush=True,
                )
        finally:
            app.kill()
            app.wait()
            receiver.kill()
            stderr.close()
    measured = [t for t in times if t is not None]
    if not measured:
        print("RESULT recovery: no round recovered")
        return 1
    median, worst = statistics.median(measured), max(measured)
    timed_out = len(times) - len(measured)
    print(
        f"RESULT recovery after the collector's return: median {median:.3f} s, max {worst:.3f} s "
        f"over {len(times)} rounds ({timed_out} timed out); budget {BUDGET:g} s"
    )
    if args.json:
        args.json.write_text(json.dumps({"rounds": times, "median": median, "max": worst}))
    return 0 if not timed_out and worst <= BUDGET * 1.25 else 1


if __name__ == "__main__":
    sys.exit(main())
