"""Uncaught exceptions go through the pipeline, redacted, instead of raw to stderr.

Python prints an exception nobody caught (in the main thread: ``sys.excepthook``; in a thread:
``threading.excepthook``) straight to stderr, traceback and message as they are: the one place
a patient's name in an exception message would still leave the process unredacted, often into
the container's log collector. With a pipeline installed, the hooks here log the exception on
the ``lumen_otel.uncaught`` logger instead (``CRITICAL`` for the main thread, ``ERROR`` for a
thread), so it reaches the file, the console and OTLP like any other record; when lumen-otel's
console is off, the redacted traceback is also written to stderr, so a crash is still seen
there. A hook the application installed before lumen-otel is called afterwards, as it would
have been; ``KeyboardInterrupt`` keeps Python's own handling. Without a pipeline (before set-up,
after ``testing.reset()``) the hooks are the previous ones.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import Any

from lumen_otel._state import STATE

__all__ = ["install_excepthooks"]

_LOGGER = "lumen_otel.uncaught"


def install_excepthooks() -> None:
    """Wrap ``sys.excepthook`` and ``threading.excepthook`` (once per process)."""
    if not getattr(sys.excepthook, "_lumen", False):
        previous = sys.excepthook

        def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            logged = _log(exc_type, exc, tb, logging.CRITICAL, "uncaught exception")
            if not logged or previous is not sys.__excepthook__:
                previous(exc_type, exc, tb)

        excepthook._lumen = True  # type: ignore[attr-defined]
        sys.excepthook = excepthook
    if not getattr(threading.excepthook, "_lumen", False):
        previous_thread = threading.excepthook

        def thread_excepthook(args: Any) -> None:
            name = getattr(args.thread, "name", "?")
            logged = args.exc_type is not SystemExit and _log(
                args.exc_type,
                args.exc_value,
                args.exc_traceback,
                logging.ERROR,
                f"uncaught exception in thread {name}",
            )
            if not logged or previous_thread is not threading.__excepthook__:
                previous_thread(args)

        thread_excepthook._lumen = True  # type: ignore[attr-defined]
        threading.excepthook = thread_excepthook


def _log(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
    level: int,
    message: str,
) -> bool:
    """True when the exception went through the pipeline (and nothing raw needs printing)."""
    pipeline = STATE.pipeline
    if pipeline is None or issubclass(exc_type, KeyboardInterrupt):
        return False
    try:
        record = logging.getLogger(_LOGGER).makeRecord(
            _LOGGER, level, "(uncaught)", 0, message, (), (exc_type, exc, tb)
        )
        logging.getLogger(_LOGGER).handle(record)
        if pipeline.console is None:
            text = record.exc_text or ""
            sys.stderr.write(f"{record.getMessage()}\n{text}{'' if text.endswith(chr(10)) else chr(10)}")
            sys.stderr.flush()
    except Exception:  # noqa: BLE001 - reporting a crash must not hide it: fall back to Python's
        return False
    return True
