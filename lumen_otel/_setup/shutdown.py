"""Shutdown that a hung collector cannot hold up, and the SIGTERM flush servers need.

Each flush or shutdown step runs on a helper thread that the caller waits for only until
its deadline; SIGTERM is caught (when the application has no handler of its own) so records
still queued are flushed before the signal ends the process.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from lumen_otel._guard import internal_logger
from lumen_otel._state import STATE

__all__ = ["flush_on_sigterm", "start_helper", "within"]


def start_helper(fn: Callable[[], Any], result: list[Any] | None = None) -> threading.Thread:
    """Run ``fn`` on a daemon helper thread (its result appended to ``result``)."""

    def run() -> None:
        try:
            value = fn()
        except Exception:  # noqa: BLE001 - shutdown must finish whatever an exporter does
            internal_logger().debug("telemetry flush/shutdown step failed", exc_info=True)
            return
        if result is not None:
            result.append(value)

    worker = threading.Thread(target=run, name="lumen-shutdown", daemon=True)
    worker.start()
    return worker


def within(timeout: float, fn: Callable[[], Any]) -> bool:
    """Run ``fn`` on a helper thread and give up waiting after ``timeout`` seconds."""
    result: list[Any] = []
    worker = start_helper(fn, result)
    worker.join(max(timeout, 0.0))
    return bool(result and result[0] is not False) and not worker.is_alive()


def flush_on_sigterm() -> None:
    """Flush telemetry on SIGTERM when the application has no SIGTERM handler of its own.

    uvicorn (and other servers) stop gracefully on SIGTERM, then restore the default action
    and raise the signal again: the process dies without running ``atexit``, and every
    record still queued for the collector is lost. This handler shuts telemetry down
    (bounded by ``LUMEN_SHUTDOWN_TIMEOUT``), then lets the signal end the process as it would
    have. A server that installs its own handler (gunicorn's workers) replaces this one and
    exits normally, through ``atexit``.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not available here: atexit still covers normal exits
        return


def _on_sigterm(signum: int, frame: object) -> None:
    handle = STATE.handle
    if handle is not None:
        handle.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
