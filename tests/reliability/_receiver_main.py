"""Run :class:`lumen_otel.testing.OTLPReceiver` in its own process, appending what it gets to a file.

The fault tests stop the "collector" by killing this process: every connection the
exporters hold closes with it, as when a real collector goes away (a receiver thread in
the test process would keep serving kept-alive connections after ``stop()``).

Usage: python _receiver_main.py PORT OUT_JSONL [--fail-status N] [--delay SECONDS] [--answer JSON]...

``--answer`` takes the keyword arguments of :meth:`OTLPReceiver.answer` as a JSON object
(``match`` as text), one per rule, tried in the order given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time

from lumen_otel.testing import OTLPReceiver


class FileReceiver(OTLPReceiver):
    """Appends each decoded log, span and metric point to ``out`` as one JSON line."""

    def __init__(self, port: int, out: str) -> None:
        super().__init__(port=port)
        self._out = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed at process exit
        self._written = {"log": 0, "span": 0, "metric": 0}
        self._write_lock = threading.Lock()

    def _answered(self, path: str, status: int) -> None:
        super()._answered(path, status)
        line = {"signal": "answer", "path": path, "status": status, "time": time.time()}
        with self._write_lock:
            self._out.write(json.dumps(line) + "\n")
            self._out.flush()

    def _accept(self, path: str, payload: bytes) -> None:
        super()._accept(path, payload)
        with self._write_lock, self._lock:
            for kind, items in (("log", self.logs), ("span", self.spans), ("metric", self.metrics)):
                for item in items[self._written[kind] :]:
                    data = dataclasses.asdict(item) if dataclasses.is_dataclass(item) else item
                    self._out.write(json.dumps({**data, "signal": kind}, default=repr) + "\n")
                self._written[kind] = len(items)
            self._out.flush()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("out")
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--answer", action="append", default=[])
    args = parser.parse_args(argv)
    receiver = FileReceiver(args.port, args.out)
    receiver.fail_status = args.fail_status
    receiver.delay = args.delay
    for rule in args.answer:
        receiver.answer(**json.loads(rule))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    receiver.start()
    print("READY", flush=True)
    stop.wait()
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
