"""Run a server under one cProfile profiler per thread, for ``bench_http.py --profile``.

    python _profile_boot.py [--instrument] SERVER_SCRIPT ARG...

The profilers start before anything else (with ``--instrument``, before the launcher's
``initialize()``, which is all ``opentelemetry-instrument``'s ``sitecustomize`` does), so threads
the set-up starts (span export, log writer, OTLP log export, metric reader) are profiled too. A
forked worker (gunicorn) starts afresh. Times are each thread's CPU time. ``SIGRTMIN+1`` takes a
snapshot of every thread's profile, ``SIGRTMIN+2`` another and writes the difference to
``$BENCH_PROFILE_DIR/<pid>.marshal``: what the requests between the two signals cost, start-up and
warm-up left out.
"""

from __future__ import annotations

import cProfile
import marshal
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

Key = tuple[str, int, str]
_profilers: list[tuple[str, cProfile.Profile]] = []
_start: dict[int, dict[Key, tuple[int, float, dict[Key, float]]]] = {}


def _profiler() -> cProfile.Profile:
    """Each thread's own CPU clock: time a thread spends waiting (locks, queues, epoll) is not work."""
    return cProfile.Profile(time.thread_time_ns, 1e-9)


def _begin_thread(*_: Any) -> None:
    profiler = _profiler()
    _profilers.append((threading.current_thread().name, profiler))
    profiler.enable()


def _main_profiler() -> None:
    _profilers.clear()
    _start.clear()
    profiler = _profiler()
    _profilers.append(("MainThread", profiler))
    profiler.enable()


def _snapshot() -> dict[int, dict[Key, tuple[int, float, dict[Key, float]]]]:
    """Per profiler: function -> (calls, own time, {caller: own time spent under that caller})."""
    out = {}
    for index, (_, profiler) in enumerate(list(_profilers)):
        profiler.snapshot_stats()
        out[index] = {
            func: (nc, tt, {caller: c[2] for caller, c in callers.items()})
            for func, (_, nc, tt, _, callers) in profiler.stats.items()  # type: ignore[attr-defined]
        }
    return out


def _on_start(*_: Any) -> None:
    _start.clear()
    _start.update(_snapshot())


def _on_end(*_: Any) -> None:
    end = _snapshot()
    diff: dict[str, Any] = {"threads": {}, "functions": {}}
    for index, stats in end.items():
        name = _profilers[index][0]
        before = _start.get(index, {})
        thread_total = 0.0
        for func, (nc, tt, callers) in stats.items():
            b_nc, b_tt, b_callers = before.get(func, (0, 0.0, {}))
            d_tt, d_nc = tt - b_tt, nc - b_nc
            if d_nc <= 0 and d_tt <= 0:
                continue
            thread_total += d_tt
            nc0, tt0, callers0 = diff["functions"].get(func, (0, 0.0, {}))
            merged = dict(callers0)
            for caller, ctt in callers.items():
                merged[caller] = merged.get(caller, 0.0) + ctt - b_callers.get(caller, 0.0)
            diff["functions"][func] = (nc0 + d_nc, tt0 + d_tt, merged)
        diff["threads"][name] = diff["threads"].get(name, 0.0) + thread_total
    directory = Path(os.environ["BENCH_PROFILE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{os.getpid()}.marshal").write_bytes(marshal.dumps(diff))


def main() -> None:
    args = sys.argv[1:]
    instrument = args[:1] == ["--instrument"]
    if instrument:
        args = args[1:]
    threading.setprofile(_begin_thread)
    _main_profiler()
    os.register_at_fork(after_in_child=_main_profiler)
    signal.signal(signal.SIGRTMIN + 1, _on_start)
    signal.signal(signal.SIGRTMIN + 2, _on_end)
    if instrument:
        from opentelemetry.instrumentation.auto_instrumentation import initialize

        initialize()
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
