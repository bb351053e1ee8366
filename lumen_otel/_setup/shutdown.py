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

from lumen_otel._compat import log_record_processors
from lumen_otel._guard import internal_logger
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
    processors = [p for provider in providers for p in _processors(provider)]
    for processor in processors:  # each export thread starts its last export now
        _quietly(partial(_signal_stop, processor, deadline))
    for processor in processors:
        _quietly(partial(_finish, processor, deadline))
    for provider in providers:
        _quietly(partial(_shutdown_provider, provider, deadline))


def _flush_one(provider: Any, deadline: float) -> Any:
    return provider.force_flush(_millis(deadline))


def _processors(provider: Any) -> list[Any]:
    """The log processors and span batch processors of ``provider`` (metric readers: its own
    ``shutdown`` takes the timeout)."""
    found: list[Any] = list(log_record_processors(provider) or ())
    active = getattr(provider, "_active_span_processor", None)
    for span_processor in getattr(active, "_span_processors", ()):
        batch = getattr(span_processor, "_batch_processor", None)
        if batch is not None:
            found.append(batch)
    return found


def _signal_stop(processor: Any, deadline: float) -> None:
    stop = getattr(processor, "begin_shutdown", None)
    if stop is not None:  # ResilientLogProcessor
        stop(deadline)
        return
    if hasattr(processor, "_worker_awaken") and not getattr(processor, "_shutdown", True):
        # the SDK's BatchProcessor.shutdown, split in two: stop and wake the worker (its last
        # EXPORT_ALL runs on that thread), then wait for it in _finish
        processor._shutdown = True
        processor._worker_awaken.set()
        processor._lumen_signalled = True


def _finish(processor: Any, deadline: float) -> None:
    if getattr(processor, "_lumen_signalled", False):
        processor._lumen_signalled = False
        if processor._pid == os.getpid():
            processor._worker_thread.join(_remaining(deadline))
        processor._shutdown_timeout_exceeded = True
        processor._exporter.shutdown()
        return
    shutdown = processor.shutdown
    try:
        shutdown(timeout_millis=_millis(deadline))
    except TypeError:
        shutdown()


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


class _ShutdownBeforeReraise(list):  # type: ignore[type-arg]
    """uvicorn's ``Server._captured_signals``: the signals it caught, which it raises again once
    the server has stopped and its handlers are restored. Iterating it for that (``reversed``)
    is the last moment before a SIGTERM with the default action ends the process: telemetry is
    shut down then, after the server's own last records ("Finished server process")."""

    def __reversed__(self) -> Any:
        if len(self):
            _quietly(_shutdown_now)
        return super().__reversed__()


def flush_before_uvicorn_reraises(handler: Any) -> None:
    """When ``handler`` (SIGTERM's) is a running uvicorn server's, shut telemetry down just
    before the server raises the caught signal again (checked on uvicorn 0.55; older uvicorn
    does not raise it again and exits through ``atexit``)."""
    server = getattr(handler, "__self__", None)
    if server is None or not type(server).__module__.startswith("uvicorn"):
        return
    captured = getattr(server, "_captured_signals", None)
    if isinstance(captured, list) and not isinstance(captured, _ShutdownBeforeReraise):
        server._captured_signals = _ShutdownBeforeReraise(captured)


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
    for session in _exporter_sessions(handle):
        with contextlib.suppress(Exception):
            session.close()  # requests: closes the adapters' pools; the session stays usable


def _exporter_sessions(handle: Any) -> list[Any]:
    exporters: list[Any] = []
    for provider in (handle.logger_provider, handle.tracer_provider):
        for processor in _processors(provider) if provider is not None else ():
            exporters.append(getattr(processor, "_exporter", None))
    for reader in getattr(handle.meter_provider, "_metric_readers", ()) or ():
        exporters.append(getattr(reader, "_exporter", None))
    sessions = []
    for exporter in exporters:
        inner = getattr(exporter, "_exporter", exporter)  # RedactingSpanExporter wraps the real one
        # the requests session: ``exporter._client._transport._session`` on the 1.45 OTLP/HTTP
        # exporters, ``exporter._session`` before
        transport = getattr(getattr(inner, "_client", None), "_transport", None)
        session = getattr(transport, "_session", None) or getattr(inner, "_session", None)
        if session is not None and hasattr(session, "close"):
            sessions.append(session)
    return sessions
