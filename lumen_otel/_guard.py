"""Telemetry never raises into the application: the internal logger and the guard.

lumen-otel's own problems (a full disk, an exporter error) are reported on a
non-propagating internal logger that writes straight to stderr, so they can never loop
back through the pipeline they are about. Repeated messages are rate-limited.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from lumen_otel._state import STATE

__all__ = ["internal_logger", "report_once", "report_rate_limited"]

_INTERNAL = logging.getLogger("lumen_otel.internal")
_INTERNAL.propagate = False
_INTERNAL.setLevel(logging.INFO)
if not _INTERNAL.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("lumen-otel %(levelname)s: %(message)s"))
    _INTERNAL.addHandler(_handler)

_lock = threading.Lock()


def _reinit_after_fork() -> None:
    global _lock  # noqa: PLW0603 - another thread may have held it at fork(): the child needs its own
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def internal_logger() -> logging.Logger:
    return _INTERNAL


def report_rate_limited(
    key: str,
    message: str,
    *args: object,
    level: int = logging.WARNING,
    interval: float = 60.0,
    exc_info: bool = False,
) -> bool:
    """Log ``message`` at most once per ``interval`` seconds for ``key``; True when logged."""
    now = time.monotonic()
    reported = STATE.reported
    with _lock:
        last = reported.get(key)
        if last is not None and now - last < interval:
            return False
        reported[key] = now
    try:
        _INTERNAL.log(level, message, *args, exc_info=exc_info)
    except Exception:  # noqa: BLE001 - a broken stderr must not break the application
        return False
    return True


def report_once(key: str, message: str, *args: object, level: int = logging.ERROR) -> bool:
    return report_rate_limited(key, message, *args, level=level, interval=float("inf"))


def strict() -> bool:
    """Under our own test suite internal errors re-raise, so bugs cannot hide behind the guard."""
    return os.environ.get("LUMEN_OTEL_STRICT") == "1"


class _ThreadState(threading.local):
    """Per thread; the class default answers for threads that never set it (no AttributeError
    raised and caught on every application log call)."""

    internal = False


_thread_state = _ThreadState()


def mark_internal_thread() -> None:
    """Records logged on this thread (our writer, our exporters) never go back out over OTLP."""
    _thread_state.internal = True


class internal_scope:
    """Records logged inside (e.g. by an exporter that logs) stay local: no OTLP re-entry."""

    __slots__ = ("_previous",)

    def __enter__(self) -> None:
        self._previous = _thread_state.internal
        _thread_state.internal = True

    def __exit__(self, *exc: object) -> None:
        _thread_state.internal = self._previous


def in_internal_scope() -> bool:
    return _thread_state.internal
