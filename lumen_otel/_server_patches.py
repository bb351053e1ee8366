"""Every monkeypatch lumen-otel applies to servers and to ``logging``, in one place.

Servers configure logging after lumen-otel did, and some reset signal handlers in the
workers they fork. Each patch here wraps the original and calls it, then puts back what
lumen-otel needs; each is applied once per process and names the versions it was checked on.

- ``logging.Logger.callHandlers`` (its signature and its caller ``Logger.handle`` checked on
  CPython 3.10 to 3.13), the one place every logger's handlers are reached from: the record is
  enriched and redacted before the first handler sees it, so the application's own handlers (on
  any logger, a handler added by ``basicConfig(force=True)``) see what lumen-otel's outputs see;
  and a record whose walk up the loggers never reached lumen-otel's handler (a
  ``propagate=False`` logger, a root logger someone emptied) is handed to it afterwards, once.
- ``logging.basicConfig``, ``logging.config.dictConfig``/``fileConfig`` (uvicorn's
  ``log_config``, Django's ``LOGGING``) and gunicorn's ``glogging.Logger.setup`` (checked on
  gunicorn 27.0): lumen-otel's root handler is put back and the server loggers are routed
  through the pipeline again afterwards.
- gunicorn's ``uvicorn.workers.UvicornWorker.__init__`` (checked on uvicorn 0.55) and the
  ``uvicorn-worker`` package's ``uvicorn_worker.UvicornWorker.__init__`` (checked on 0.4.0),
  patched from gunicorn's ``Arbiter.spawn_worker`` (checked on gunicorn 27.0) once the worker
  class is loaded: each gives ``uvicorn.error`` and ``uvicorn.access`` gunicorn's handlers and
  ``propagate=False``, which kept uvicorn's lines out of lumen-otel (and its tracebacks went raw
  to stderr through ``logging.lastResort``); they are routed again after it. uvicorn's access
  lines stay off when gunicorn's access log is (no ``--access-logfile``), as without lumen-otel.
- Django's ``AdminEmailHandler.emit`` and ``send_mail`` (``mail_admins``, checked on Django
  5.2), patched once ``django.utils.log`` is loaded: its report is built from the exception and
  the request as they were logged, and redacted as a whole before it is sent.
- The ``UvicornWorker`` classes' ``init_signals``: each sets SIGTERM back to the default action in each
  worker; lumen-otel's flush is installed again.
"""

from __future__ import annotations

import copy
import logging
import logging.config
import sys
from typing import Any

from lumen_otel._guard import internal_logger, report_rate_limited, strict
from lumen_otel._state import STATE

__all__ = [
    "after_fork_in_child",
    "flush_before_uvicorn_reraises",
    "keep_sigterm_flush_in_uvicorn_workers",
    "patch_logging_config",
    "redact_before_every_handler",
]

#: the modules whose ``UvicornWorker`` resets SIGTERM in each gunicorn worker
_UVICORN_WORKER_MODULES = ("uvicorn.workers", "uvicorn_worker", "uvicorn_worker._workers")


def redact_before_every_handler() -> None:
    """Wrap ``logging.Logger.callHandlers``: enrich and redact first, reach the pipeline once.

    A child logger's handlers run before the root's, and a ``propagate=False`` logger's never
    reach the root: redacting in the root handler alone let those handlers print PHI and kept
    those records out of lumen-otel's outputs. The wrapper costs a call and a dict lookup per
    record; with no pipeline installed (before set-up, after ``testing.reset()``) it only calls
    the original. A record that cannot be enriched is dropped (and reported), never passed on
    unredacted.
    """
    original = logging.Logger.callHandlers
    if getattr(original, "_lumen_redacts", False):
        return
    internal = internal_logger()

    def callHandlers(
        self: logging.Logger,
        record: logging.LogRecord,
        _state: Any = STATE,  # bound once: read as locals on every record
        _internal: logging.Logger = internal,
        _original: Any = original,
    ) -> None:
        pipeline = _state.pipeline
        if pipeline is None or self is _internal:
            _original(self, record)
            return
        try:
            pipeline.enricher(record)  # returns at once for a record enriched already
        except Exception:
            if strict():
                raise
            report_rate_limited("handle-error", "lumen-otel dropped a log record", exc_info=True)
            return
        _original(self, record)
        if "lumen_internal" not in record.__dict__:  # the walk stopped before lumen-otel's handler
            handler = pipeline.handler
            if record.levelno >= handler.level:
                handler.handle(record)

    callHandlers._lumen_redacts = True  # type: ignore[attr-defined]
    callHandlers.__wrapped__ = original  # type: ignore[attr-defined]
    logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]


def patch_logging_config() -> None:
    """Re-apply the routing of server loggers after ``basicConfig``/``dictConfig``/``fileConfig``,
    after gunicorn sets up its loggers and after ``UvicornWorker`` copies gunicorn's handlers."""
    if STATE.logging_config_patched:
        return
    STATE.logging_config_patched = True
    from lumen_otel._logging.pipeline import route_server_loggers

    for module, name in (
        (logging.config, "dictConfig"),
        (logging.config, "fileConfig"),
        (logging, "basicConfig"),
    ):
        original = getattr(module, name)

        def wrapper(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            result = __original(*args, **kwargs)
            route_server_loggers()
            _patch_admin_email_handler()  # Django's LOGGING is applied through dictConfig
            return result

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, name, wrapper)
    _patch_uvicorn_worker_init()
    _patch_admin_email_handler()
    try:
        from gunicorn import glogging
    except ImportError:
        return
    original_setup = glogging.Logger.setup

    def setup(self: Any, cfg: Any) -> None:
        original_setup(self, cfg)
        route_server_loggers()
        _patch_spawn_worker()

    glogging.Logger.setup = setup


def _patch_admin_email_handler() -> None:
    """Django's ``mail_admins`` report, from the record as logged, redacted as a whole.

    The record it is given is redacted (its exception formatted into ``exc_text``, its
    ``request`` extra turned into text), which leaves Django's report without the traceback and
    the request. It is given a copy with the exception and the request as they were logged, and
    the subject and text it builds are redacted before they are sent; the HTML version (with
    each frame's local variables, which cannot be redacted reliably in HTML) is not sent.
    """
    handler_class = getattr(sys.modules.get("django.utils.log"), "AdminEmailHandler", None)
    if handler_class is None or getattr(handler_class.emit, "_lumen_redacts", False):
        return
    from lumen_otel._logging.enrich import AS_LOGGED, keep_as_logged_for_mail

    keep_as_logged_for_mail()
    original_emit = handler_class.emit
    original_send_mail = handler_class.send_mail

    def emit(self: Any, record: logging.LogRecord) -> None:
        logged = AS_LOGGED.get(record)
        if logged is not None and STATE.pipeline is not None:
            record = copy.copy(record)  # the other handlers keep the redacted record
            exc_info, request = logged
            if exc_info:
                record.exc_info = exc_info
            if request is not None:
                record.request = request
        original_emit(self, record)

    def send_mail(self: Any, subject: str, message: str, *args: Any, **kwargs: Any) -> None:
        pipeline = STATE.pipeline
        if pipeline is not None:
            redact = pipeline.enricher.redactor.redact_text
            subject, message = redact(subject), redact(message)
            kwargs["html_message"] = None
        original_send_mail(self, subject, message, *args, **kwargs)

    emit._lumen_redacts = True  # type: ignore[attr-defined]
    handler_class.emit = emit
    handler_class.send_mail = send_mail


def _patch_spawn_worker() -> None:
    """The master loads the worker class after its loggers: patch it when a worker is made."""
    arbiter = getattr(sys.modules.get("gunicorn.arbiter"), "Arbiter", None)
    if arbiter is None or getattr(arbiter.spawn_worker, "_lumen_route", False):
        return
    original = arbiter.spawn_worker

    def spawn_worker(self: Any) -> Any:
        _patch_uvicorn_worker_init()
        return original(self)

    spawn_worker._lumen_route = True  # type: ignore[attr-defined]
    arbiter.spawn_worker = spawn_worker


def _patch_uvicorn_worker_init() -> None:
    """Patch the ``__init__`` of every ``UvicornWorker`` class loaded so far (see above)."""
    for module in _UVICORN_WORKER_MODULES:
        worker_class = getattr(sys.modules.get(module), "UvicornWorker", None)
        if worker_class is not None and not getattr(worker_class.__init__, "_lumen_route", False):
            _route_after_init(worker_class)


def _route_after_init(worker_class: Any) -> None:
    original = worker_class.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        from lumen_otel._logging.pipeline import route_server_loggers

        route_server_loggers()
        if not _gunicorn_access_log_enabled(getattr(self, "log", None)):
            # uvicorn logs access lines only to a logger with handlers: none, as gunicorn asked
            logging.getLogger("uvicorn.access").propagate = False

    __init__._lumen_route = True  # type: ignore[attr-defined]
    worker_class.__init__ = __init__


def _gunicorn_access_log_enabled(log: Any) -> bool:
    """gunicorn's own answer (``--access-logfile``, a log config, syslog), as its logger works it out."""
    enabled = getattr(log, "_access_log_enabled", None)
    if isinstance(enabled, bool):
        return enabled
    cfg = getattr(log, "cfg", None)
    if cfg is None:
        return True
    return bool(
        getattr(cfg, "accesslog", None)
        or getattr(cfg, "logconfig", None)
        or getattr(cfg, "logconfig_dict", None)
        or getattr(cfg, "logconfig_json", None)
        or (getattr(cfg, "syslog", False) and not getattr(cfg, "disable_redirect_access_to_syslog", False))
    )


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
