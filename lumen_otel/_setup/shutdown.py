"""Shutdown that a hung collector cannot hold up, and the SIGTERM flush servers need.

One deadline for everything: the pipeline, then each provider, gets what is left of it, never
a whole timeout of its own.

No thread is started on the shutdown path. Shutdown runs from ``atexit``, and from Python 3.12
on ``threading`` refuses new threads once the interpreter is shutting down (atexit callbacks run
after ``threading._shutdown``: "can't create new thread at interpreter shutdown"). So each
export thread that already exists — the pipeline's writer, the OTLP log processor's, the SDK's
span batch worker and metric reader ticker — is told to stop, does its last export itself, and
is waited for until the deadline; a thread still blocked on a hung collector then is a daemon,
and is left behind. ``force_flush`` (called while the service runs) may use helper threads,
and falls back to running a step inline where threads cannot be started.

SIGTERM: servers stop gracefully on it, then restore the previous action and raise the signal
again; when that action is the default, the process dies without running ``atexit`` and every
record still queued for the collector is lost. :func:`flush_on_sigterm` installs a handler that
shuts telemetry down first (when the application has none of its own), and
:func:`flush_before_uvicorn_reraises` covers the case where uvicorn had already installed its
handlers when telemetry was set up (``bootstrap()`` in the application module under plain
``uvicorn``: uvicorn imports the application inside its signal capture).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from lumen_otel._compat import (
    exporter_sessions,
    finish_processor,
    shutdown_processors,
    signal_processor_stop,
)
from lumen_otel._guard import internal_logger
from lumen_otel._server_patches import flush_before_uvicorn_reraises
from lumen_otel._state import STATE

__all__ = [
    "close_inherited_connections",
    "flush_before_uvicorn_reraises",
    "flush_on_sigterm",
    "flush_providers",
    "shutdown_providers",
    "start_helper",
    "within",
]


def start_helper(fn: Callable[[], Any], result: list[Any] | None = None) -> threading.Thread:
    """Run ``fn`` on a daemon helper thread (its result appended to ``result``).

    Raises:
        RuntimeError: threads cannot be started here (the interpreter is shutting down).
    """

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


def _quietly(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - shutdown must finish whatever an exporter does
        internal_logger().debug("telemetry flush/shutdown step failed", exc_info=True)
        return False


def within(timeout: float, fn: Callable[[], Any]) -> bool:
    """Run ``fn`` on a helper thread and give up waiting after ``timeout`` seconds (inline when
    no thread can be started: at interpreter shutdown)."""
    result: list[Any] = []
    try:
        worker = start_helper(fn, result)
    except RuntimeError:
        return _quietly(fn) is not False
    worker.join(max(timeout, 0.0))
    return bool(result and result[0] is not False) and not worker.is_alive()


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _millis(deadline: float) -> int:
    return int(_remaining(deadline) * 1000)


def flush_providers(providers: Iterable[Any], deadline: float) -> bool:
    """Force-flush every provider side by side, all against ``deadline``; False if any failed or
    was still flushing then."""
    steps: list[tuple[threading.Thread | None, list[Any]]] = []
    for provider in providers:
        result: list[Any] = []
        step = partial(_flush_one, provider, deadline)
        try:
            steps.append((start_helper(step, result), result))
        except RuntimeError:  # at interpreter shutdown: inline, bounded by the exporters' own timeouts
            steps.append((None, [_quietly(step)]))
    ok = True
    for worker, result in steps:
        if worker is not None:
            worker.join(_remaining(deadline))
            ok = ok and not worker.is_alive()
        ok = ok and bool(result) and result[0] is not False
    return ok


def shutdown_providers(providers: Iterable[Any], deadline: float) -> None:
    """Shut the providers down against one ``deadline``, starting no thread.

    Every export thread is told to stop first, so all of them do their last export side by side;
    each is then waited for with what is left of the deadline. The SDK's ``TracerProvider.shutdown``
    takes no timeout (its batch processor would wait 30 s for a hung collector): its batch
    processors are shut down first with the deadline (``BatchSpanProcessor._batch_processor``,
    checked on opentelemetry-sdk 1.45.1), after which the provider's own shutdown has nothing left
    to wait for.
    """
    providers = list(providers)
    processors = [p for provider in providers for p in shutdown_processors(provider)]
    for processor in processors:  # each export thread starts its last export now
        _quietly(partial(signal_processor_stop, processor, deadline))
    for processor in processors:
        _quietly(partial(finish_processor, processor, deadline))
    for provider in providers:
        _quietly(partial(_shutdown_provider, provider, deadline))


def _flush_one(provider: Any, deadline: float) -> Any:
    return provider.force_flush(_millis(deadline))


def _shutdown_provider(provider: Any, deadline: float) -> None:
    try:
        provider.shutdown(timeout_millis=_millis(deadline))  # MeterProvider: bounded, no thread
    except TypeError:
        provider.shutdown()  # Tracer/LoggerProvider: their processors are shut down already


# ---------------------------------------------------------------- SIGTERM


def flush_on_sigterm() -> None:
    """Flush telemetry on SIGTERM when the application has no SIGTERM handler of its own.

    uvicorn (and other servers) stop gracefully on SIGTERM, then restore the default action
    and raise the signal again: the process dies without running ``atexit``, and every
    record still queued for the collector is lost. This handler shuts telemetry down
    (bounded by ``LUMEN_SHUTDOWN_TIMEOUT``), then lets the signal end the process as it would
    have. A server that installs its own handler (gunicorn's workers) replaces this one and
    exits normally, through ``atexit``; a uvicorn server already running gets
    :func:`flush_before_uvicorn_reraises`.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            return
    except (ValueError, OSError):  # not available here: atexit still covers normal exits
        return
    flush_before_uvicorn_reraises(current)


def _on_sigterm(signum: int, frame: object) -> None:
    _shutdown_now()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _shutdown_now() -> None:
    handle = STATE.handle
    if handle is not None:
        handle.shutdown()


def shutdown_quietly() -> None:
    """Shut telemetry down now, never raising (a server's signal path calls it)."""
    _quietly(_shutdown_now)


# ---------------------------------------------------------------- fork


def close_inherited_connections() -> None:
    """In a forked child: close the pooled connections the exporters' HTTP sessions inherited.

    The sockets belong to connections the parent keeps using; a child writing its requests on
    them too would interleave two processes' bytes on one connection. Closing the child's copy
    of the fd leaves the parent's connection open; the session opens new connections for the
    child on its next export.
    """
    handle = STATE.handle
    if handle is None:
        return
    for session in exporter_sessions(handle):
        with contextlib.suppress(Exception):
            session.close()  # requests: closes the adapters' pools; the session stays usable
