"""Every monkeypatch lumen-otel applies to servers and to ``logging.config``, in one place.

Servers configure logging after lumen-otel did, and some reset signal handlers in the
workers they fork. Each patch here wraps the original, calls it first, then puts back what
lumen-otel needs; each is applied once per process and names the versions it was checked on.

- ``logging.config.dictConfig``/``fileConfig`` (uvicorn's ``log_config``, Django's ``LOGGING``)
  and gunicorn's ``glogging.Logger.setup`` (checked on gunicorn 27.0): the server loggers are
  routed through the pipeline again afterwards.
- gunicorn's ``uvicorn.workers.UvicornWorker.init_signals`` (checked on uvicorn 0.55) and the
  ``uvicorn-worker`` package's ``uvicorn_worker.UvicornWorker.init_signals`` (checked on 0.4.0):
  each sets SIGTERM back to the default action in each worker; lumen-otel's flush is installed
  again.
"""

from __future__ import annotations

import logging.config
import sys
from typing import Any

from lumen_otel._state import STATE

__all__ = [
    "after_fork_in_child",
    "flush_before_uvicorn_reraises",
    "keep_sigterm_flush_in_uvicorn_workers",
    "patch_logging_config",
]

#: the modules whose ``UvicornWorker`` resets SIGTERM in each gunicorn worker
_UVICORN_WORKER_MODULES = ("uvicorn.workers", "uvicorn_worker", "uvicorn_worker._workers")


def patch_logging_config() -> None:
    """Re-apply the routing of server loggers after ``dictConfig``/``fileConfig`` and after
    gunicorn sets up its loggers."""
    if STATE.logging_config_patched:
        return
    STATE.logging_config_patched = True
    from lumen_otel._logging.pipeline import route_server_loggers

    for name in ("dictConfig", "fileConfig"):
        original = getattr(logging.config, name)

        def wrapper(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            result = __original(*args, **kwargs)
            route_server_loggers()
            return result

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(logging.config, name, wrapper)
    try:
        from gunicorn import glogging
    except ImportError:
        return
    original_setup = glogging.Logger.setup

    def setup(self: Any, cfg: Any) -> None:
        original_setup(self, cfg)
        route_server_loggers()

    glogging.Logger.setup = setup


def keep_sigterm_flush_in_uvicorn_workers() -> None:
    """gunicorn's ``UvicornWorker`` resets SIGTERM to the default action in each forked worker,
    and uvicorn then re-raises it after its graceful stop: re-install the flush after that reset."""
    for module in _UVICORN_WORKER_MODULES:
        worker_class = getattr(sys.modules.get(module), "UvicornWorker", None)
        if worker_class is not None and not getattr(worker_class.init_signals, "_lumen_flush", False):
            _flush_after_init_signals(worker_class)


def _flush_after_init_signals(worker_class: Any) -> None:
    original = worker_class.init_signals

    def init_signals(self: Any) -> None:
        original(self)
        from lumen_otel._setup.shutdown import flush_on_sigterm

        flush_on_sigterm()

    init_signals._lumen_flush = True  # type: ignore[attr-defined]
    worker_class.init_signals = init_signals


def after_fork_in_child() -> None:
    """In each forked worker: the SIGTERM flush again (see above), and none of the parent's
    pooled exporter connections reused."""
    from lumen_otel._setup.shutdown import close_inherited_connections

    close_inherited_connections()
    keep_sigterm_flush_in_uvicorn_workers()


class _ShutdownBeforeReraise(list):  # type: ignore[type-arg]
    """uvicorn's ``Server._captured_signals``: the signals it caught, which it raises again once
    the server has stopped and its handlers are restored. Iterating it for that (``reversed``)
    is the last moment before a SIGTERM with the default action ends the process: telemetry is
    shut down then, after the server's own last records ("Finished server process")."""

    def __reversed__(self) -> Any:
        if len(self):
            from lumen_otel._setup.shutdown import shutdown_quietly

            shutdown_quietly()
        return super().__reversed__()


def flush_before_uvicorn_reraises(handler: Any) -> None:
    """When ``handler`` (SIGTERM's) is a running uvicorn server's, shut telemetry down just
    before the server raises the caught signal again (``Server._captured_signals``, checked on
    uvicorn 0.55; older uvicorn does not raise it again and exits through ``atexit``)."""
    server = getattr(handler, "__self__", None)
    if server is None or not type(server).__module__.startswith("uvicorn"):
        return
    captured = getattr(server, "_captured_signals", None)
    if isinstance(captured, list) and not isinstance(captured, _ShutdownBeforeReraise):
        server._captured_signals = _ShutdownBeforeReraise(captured)
