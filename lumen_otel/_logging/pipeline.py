"""The logging pipeline: one root handler, one queue, one writer thread, several sinks.

    logger.info(...) ─► Logger.callHandlers (caller's thread: enrich + redact, once, before
                        any handler; _server_patches.py)
                     ─► the loggers' handlers, the application's and RootHandler.handle
                     ─► queue ─► writer thread ─► file (JSON lines), test listeners, OTLP bridge
                                               └► console queue ─► console thread (text/JSON)

A record whose walk up the loggers stops before the root (a ``propagate=False`` logger) is
handed to ``RootHandler`` after that walk, so it reaches the pipeline once all the same.

No sink does disk or network I/O on the caller's thread, so an async service's event loop
never waits on a disk or a collector. The file is the durable copy and is written first;
each sink's failure is caught on its own, so one sink never costs another its records. The
console has a thread and a bounded queue of its own: a stdout nobody reads (a full pipe, a
paused terminal) or a stream that raises only costs console lines, dropped and counted in
``lumen.log.dropped`` (``console_blocked``, ``console_error``), never file or OTLP lines.

The queue is bounded: when the writer falls behind by ``LUMEN_LOG_QUEUE_SIZE`` records, a
caller on a thread running an asyncio event loop drops the record at once (counted as
``local_queue_full``), and any other caller waits up to ``LUMEN_LOG_QUEUE_WAIT`` seconds
for the writer to make room (a condition wait the writer signals) before dropping it.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import IO, Any

from lumen_otel._guard import (
    in_internal_scope,
    internal_logger,
    mark_internal_thread,
    report_rate_limited,
    strict,
)
from lumen_otel._logging.bridge import OtlpBridge
from lumen_otel._logging.enrich import Enricher
from lumen_otel._logging.files import SharedRotatingFile
from lumen_otel._logging.formatters import ColorFormatter, record_to_dict, record_to_json, use_color
from lumen_otel._logging.uncaught import install_excepthooks
from lumen_otel._server_patches import patch_logging_config, redact_before_every_handler
from lumen_otel._state import STATE

__all__ = ["Pipeline", "RootHandler", "current_pipeline", "mark_internal_thread"]

Listener = Callable[[dict[str, Any]], None]

_FLUSH = object()
_STOP = object()
# Records written per batch: enough to amortise the syscalls, few enough that a burst of large
# records (4 KB payloads) does not build tens of MB of JSON at once (RSS stays bounded).
_BATCH = 512
_QUEUE_WAIT = 2.0  # default seconds a sync caller may wait for room before a record is dropped
_COUNT_INTERVAL = 0.5  # longest a written record waits to be counted in lumen.log.records
# How long a flush or a close waits for the console once the file is written: a console
# nobody reads must not hold up a flush, a shutdown or the exit by the whole timeout.
_CONSOLE_FLUSH_WAIT = 1.0
# Bytes the console queue may hold besides its record bound: a stalled stdout must not keep
# large records alive (a console that keeps up never holds more than a batch or two)
_CONSOLE_MAX_BYTES = 4 * 1024 * 1024

# what the console queue holds per batch: the records (text) or the JSON lines, the count, the size
_ConsoleBatch = tuple["list[logging.LogRecord] | None", bytes, int, int]


def _is_internal_record(record: logging.LogRecord) -> bool:
    return in_internal_scope() or record.name.startswith(("opentelemetry", "lumen_otel.internal"))


def _on_event_loop() -> bool:
    """True on a thread that is running an asyncio event loop (which must never block).

    ``asyncio._get_running_loop`` is the C-level thread-state lookup behind
    ``get_running_loop``, without the exception; a process that never imported asyncio runs
    no loop.
    """
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio._get_running_loop() is not None


class _Console:
    """The console sink: a thread and a bounded queue of its own.

    The writer thread hands each batch over without waiting (:meth:`offer`); when ``limit``
    records are already waiting (a stdout nobody reads, a paused terminal) the batch is
    dropped and counted (``console_blocked``), and a stream whose ``write`` raises anything
    costs that batch's console lines only (``console_error``). Either way, the file, the OTLP
    bridge and the caller never wait for the console.

    The warnings about it are written from the console thread, never from the writer: stderr
    is often the same stalled pipe as stdout (``2>&1``), and the writer must not block on it.
    ``count`` only counts (``lumen.log.dropped``), it never writes anywhere.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        json_lines: bool,
        limit: int,
        count: Callable[[int, str], None],
    ) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.formatter = None if json_lines else ColorFormatter(color=use_color(stream))
        self.limit = limit
        self._count = count
        self._start()

    def _start(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[Any] = deque()
        self._pending = 0  # records queued or being written
        self._pending_bytes = 0  # bytes of those (their JSON lines, or their messages as text)
        self._blocked = 0  # records dropped because the queue was full, not yet reported
        self.thread = threading.Thread(target=self._run, name="lumen-log-console", daemon=True)
        self.thread.start()

    def after_fork(self) -> None:
        self._start()  # the parent's thread did not survive fork(); its queue is the parent's

    # -- writer thread side ---------------------------------------------------------------
    def offer(self, records: list[logging.LogRecord], lines: bytes) -> None:
        count = len(records)
        with self._cond:
            if self._pending < self.limit and self._pending_bytes < _CONSOLE_MAX_BYTES:
                size = len(lines) if lines else sum(len(str(r.msg)) for r in records)
                self._pending += count
                self._pending_bytes += size
                # JSON: the bytes only (the records can go); text: the records, formatted there
                self._items.append(
                    (None, lines, count, size) if self.json_lines else (records, b"", count, size)
                )
                self._cond.notify()
                return
            self._blocked += count
        self._count(count, "console_blocked")

    def mark(self, event: threading.Event, *, stop: bool = False) -> None:
        """``event`` is set once everything offered so far is written (or failed)."""
        with self._cond:
            self._items.append((_STOP if stop else _FLUSH, event))
            self._cond.notify()

    # -- console thread -------------------------------------------------------------------
    def _run(self) -> None:
        mark_internal_thread()
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                items = list(self._items)
                self._items.clear()
            batch: list[_ConsoleBatch] = []
            for item in items:
                if item[0] is _FLUSH or item[0] is _STOP:
                    self._write(batch)
                    batch = []
                    item[1].set()
                    if item[0] is _STOP:
                        return
                else:
                    batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_ConsoleBatch]) -> None:
        if not batch:
            return
        count = sum(item[2] for item in batch)
        size = sum(item[3] for item in batch)
        try:
            self._write_stream(batch)
        except BaseException as exc:  # noqa: BLE001 - whatever the stream raises costs console lines only
            self._count(count, "console_error")
            report_rate_limited(
                "console-error",
                "console log output failed (%s: %s); the file and OTLP output continue",
                type(exc).__name__,
                exc,
            )
        finally:
            with self._cond:
                self._pending -= count
                self._pending_bytes -= size
                blocked, self._blocked = self._blocked, 0
        if blocked:
            report_rate_limited(
                "dropped-console_blocked",
                "lumen-otel dropped %d console log line(s) while the console was not being read "
                "(console_blocked); the file and OTLP output have them",
                blocked,
            )

    def _write_stream(self, batch: list[_ConsoleBatch]) -> None:
        stream = self.stream
        if self.json_lines:
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                stream.flush()
                for item in batch:  # each as it came (no copy of the whole backlog)
                    buffer.write(item[1])
                buffer.flush()
            else:
                for item in batch:
                    stream.write(item[1].decode("utf-8"))
                stream.flush()
        else:
            formatter = self.formatter
            assert formatter is not None
            stream.write("".join(formatter.format(r) + "\n" for item in batch for r in item[0] or ()))
            stream.flush()


class RootHandler(logging.Handler):
    """The handler lumen-otel installs on the root logger."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(level=logging.NOTSET)
        self.pipeline = pipeline
        self.set_name("lumen_otel")

    def handle(self, record: logging.LogRecord) -> logging.LogRecord | bool:  # type: ignore[override]
        # No handler lock: enrichment is thread-safe, and taking the lock would serialise
        # every logging thread (and deadlock logging.shutdown() if the writer logs).
        if not self.filter(record):
            return False
        try:
            self.pipeline.submit(record)
        except Exception:
            if strict():
                raise
            report_rate_limited("handle-error", "lumen-otel dropped a log record", exc_info=True)
        return record

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def flush(self) -> None:
        # LUMEN_SHUTDOWN_TIMEOUT, from the handle that installed this pipeline (logging.shutdown
        # at exit calls this too)
        handle = STATE.handle
        if handle is not None and handle.pipeline is self.pipeline:
            self.pipeline.flush(timeout=handle.settings.shutdown_timeout)
        else:
            self.pipeline.flush(timeout=5.0)


class Pipeline:
    def __init__(
        self,
        *,
        enricher: Enricher,
        console: IO[str] | None,
        console_json: bool,
        log_file: SharedRotatingFile | None,
        otlp: OtlpBridge | None,
        queue_size: int,
        queue_wait: float = _QUEUE_WAIT,
        count_records: Callable[[Counter[str]], None] | None = None,
        count_dropped: Callable[[int, str], None] | None = None,
    ) -> None:
        self.enricher = enricher
        self.console = console
        self.console_json = console_json
        self.log_file = log_file
        self.otlp = otlp
        self.queue_size = queue_size
        self.queue_wait = queue_wait
        self.count_records = count_records
        # Records written, by level, not yet added to ``lumen.log.records``: one metric update per
        # level every _COUNT_INTERVAL instead of one per batch (a batch is often a single record
        # in a web service, and the update cost as much as writing it).
        self._pending_counts: Counter[str] = Counter()
        self._counts_pushed_at = time.monotonic()
        self.count_dropped = count_dropped
        self.listeners: list[Listener] = []
        self.handler = RootHandler(self)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # callers waiting for room in a full queue; the writer notifies when it takes a batch
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0
        self._unreported_full = 0  # local_queue_full drops the writer has not reported yet
        self._closed = False
        self._console = (
            _Console(console, json_lines=console_json, limit=queue_size, count=self._count_only)
            if console is not None
            else None
        )
        self._start_thread()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- threads ----------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lumen-log-writer", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # threads do not survive fork(): the child gets its own queue and writer
        self._queue = queue.SimpleQueue()
        self._room = threading.Condition(threading.Lock())  # another thread may have held it
        self._waiting = 0
        self._unreported_full = 0
        self._pending_counts = Counter()  # the parent's to count
        if not self._closed:
            if self._console is not None:
                self._console.after_fork()
            self._start_thread()

    def _is_own_thread(self) -> bool:
        current = threading.current_thread()
        return current is self._thread or (self._console is not None and current is self._console.thread)

    # -- caller side --------------------------------------------------------------------
    def submit(self, record: logging.LogRecord) -> None:
        if self._closed or "lumen_internal" in record.__dict__:
            return  # closed, or already queued (a record handled again, by another logger too)
        record.lumen_internal = _is_internal_record(record)
        if record.__dict__.get("lumen_extra") is None:  # not enriched before the handlers ran
            self.enricher(record)
        if self._queue.qsize() >= self.queue_size and not self._is_own_thread() and not self._wait_for_room():
            # counted here, said by the writer: the caller (perhaps an event loop) never writes
            # to stderr, which may be the very pipe nobody reads
            self._dropped(1, "local_queue_full", report=False)
            self._unreported_full += 1  # a lost update under a race only changes the warning's number
            return
        self._queue.put(record)

    def _wait_for_room(self) -> bool:
        """The queue is full: wait (off an event loop, at most ``queue_wait``) for the writer."""
        if self.queue_wait <= 0 or _on_event_loop():
            return False
        with self._room:
            self._waiting += 1
            try:
                self._room.wait_for(self._has_room, self.queue_wait)
            finally:
                self._waiting -= 1
        return not self._closed and self._queue.qsize() < self.queue_size

    def _has_room(self) -> bool:
        return self._closed or self._queue.qsize() < self.queue_size

    def _notify_room(self) -> None:
        with self._room:
            self._room.notify_all()

    def _count_only(self, count: int, reason: str) -> None:
        self._dropped(count, reason, report=False)

    def _dropped(self, count: int, reason: str, *, report: bool = True) -> None:
        if self.count_dropped is not None:
            try:
                self.count_dropped(count, reason)
            except Exception:
                if strict():
                    raise
                report_rate_limited(
                    "count-dropped", "lumen-otel could not count dropped records", exc_info=True
                )
        if report:
            report_rate_limited(f"dropped-{reason}", "lumen-otel dropped %d log record(s): %s", count, reason)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been written; False on timeout.

        The console gets at most ``_CONSOLE_FLUSH_WAIT`` of the time once the file is written:
        a stdout nobody reads never holds a flush (or the exit) for the whole timeout.
        """
        if self._closed or self._is_own_thread() or not self._thread.is_alive():
            return False
        deadline = time.monotonic() + timeout
        done = threading.Event()
        console_done = threading.Event()
        self._queue.put((_FLUSH, done, console_done))
        if not done.wait(timeout):
            return False
        if self._console is None:
            return True
        return console_done.wait(max(0.0, min(deadline - time.monotonic(), _CONSOLE_FLUSH_WAIT)))

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        if self._thread.is_alive() and not self._is_own_thread():
            deadline = time.monotonic() + timeout
            done = threading.Event()
            console_done = threading.Event()
            self._queue.put((_STOP, done, console_done))
            if done.wait(timeout) and self._console is not None:
                console_done.wait(max(0.0, min(deadline - time.monotonic(), _CONSOLE_FLUSH_WAIT)))
        self._closed = True
        if self._waiting:
            self._notify_room()
        if self.log_file is not None:
            self.log_file.close()

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    # -- writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        mark_internal_thread()
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        while True:
            if self._pending_counts:
                try:  # idle with counts not yet added: add them once the queue stays quiet
                    first = get(timeout=_COUNT_INTERVAL)
                except queue.Empty:
                    self._push_counts()
                    continue
            else:
                first = get()
            batch = [first]
            try:
                while len(batch) < _BATCH:
                    batch.append(get_nowait())
            except queue.Empty:
                pass
            if self._waiting:  # room again: wake the callers waiting for it
                self._notify_room()
            if self._unreported_full:
                full, self._unreported_full = self._unreported_full, 0
                report_rate_limited(
                    "dropped-local_queue_full",
                    "lumen-otel dropped %d log record(s): %s",
                    full,
                    "local_queue_full",
                )
            records: list[logging.LogRecord] = []
            for item in batch:
                if isinstance(item, tuple):
                    self._write(records)
                    records = []
                    self._push_counts()  # a flush or a stop: the counts are up to date too
                    marker, event, console_event = item
                    if self._console is not None:
                        self._console.mark(console_event, stop=marker is _STOP)
                    event.set()
                    if marker is _STOP:
                        return
                else:
                    records.append(item)
            self._write(records)

    def _write(self, records: list[logging.LogRecord]) -> None:
        """Write a batch to every sink, the file first; one sink's failure is its own."""
        if not records:
            return
        try:
            dicts, records = self._serialise(records)
            lines = b"".join(record_to_json(d) for d in dicts) if dicts else b""
        except Exception:
            if strict():
                raise
            internal_logger().exception("lumen-otel log writer failed on a batch of %d records", len(records))
            return
        if self.log_file is not None:
            self._sink("file", len(records), self._write_file, lines)
        if self._console is not None:
            self._sink("console", len(records), self._console.offer, records, lines)
        for listener in list(self.listeners):
            self._sink("listener", len(records), _feed, listener, dicts)
        if self.otlp is not None:
            self._emit_otlp(self.otlp, records)
        if self.count_records is not None:
            self._pending_counts.update(r.levelname for r in records)
            if time.monotonic() - self._counts_pushed_at >= _COUNT_INTERVAL:
                self._push_counts()

    def _serialise(
        self, records: list[logging.LogRecord]
    ) -> tuple[list[dict[str, Any]], list[logging.LogRecord]]:
        if not (self.console_json or self.log_file or self.listeners):
            return [], records
        try:
            return [record_to_dict(r) for r in records], records
        except Exception:
            if strict():
                raise
        # one record that cannot be turned into a dict costs that record only
        dicts, kept = [], []
        for record in records:
            try:
                dicts.append(record_to_dict(record))
                kept.append(record)
            except Exception:  # noqa: BLE001 - the rare path, one record at a time
                self._dropped(1, "serialise_error")
        return dicts, kept

    def _write_file(self, lines: bytes) -> None:
        assert self.log_file is not None
        lost = self.log_file.write(lines)
        if lost:
            # the file reports its own error (once); the count is what the metric needs
            self._dropped(lost, self.log_file.last_failure or "file_error", report=False)

    def _sink(self, name: str, count: int, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except Exception:
            if strict():
                raise
            self._dropped(count, f"{name}_error", report=False)
            report_rate_limited(
                f"sink-error-{name}",
                "lumen-otel %s output failed on a batch of %d records; the other outputs continue",
                name,
                count,
                exc_info=True,
            )

    def _emit_otlp(self, otlp: OtlpBridge, records: list[logging.LogRecord]) -> None:
        failed = 0
        for record in records:
            if not record.lumen_internal:  # type: ignore[attr-defined]
                try:
                    otlp.emit(record)
                except Exception:  # one record's failure costs that record only
                    if strict():
                        raise
                    failed += 1
        if failed:
            self._dropped(failed, "otlp_error", report=False)
            report_rate_limited(
                "sink-error-otlp",
                "lumen-otel OTLP bridge failed on %d records; the file and console continue",
                failed,
            )

    def _push_counts(self) -> None:
        self._counts_pushed_at = time.monotonic()
        if not self._pending_counts or self.count_records is None:
            return
        pending, self._pending_counts = self._pending_counts, Counter()
        try:
            self.count_records(pending)
        except Exception:
            if strict():
                raise
            internal_logger().exception("lumen-otel could not count %d log records", sum(pending.values()))


def _feed(listener: Listener, dicts: list[dict[str, Any]]) -> None:
    for data in dicts:
        listener(data)


_ROUTED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
    "django",
    "django.request",
    "django.server",
    "hypercorn.error",
    "hypercorn.access",
)


#: server loggers left apart when their project keeps them apart (``propagate=False``): their
#: parent's handlers are not meant for them (Django's ``django`` logger and its ``mail_admins``
#: would e-mail each 5xx access line); their records reach the pipeline all the same, handed to
#: it after the walk (``_server_patches.redact_before_every_handler``)
_KEPT_APART = frozenset({"django.server"})
#: what such a logger gets when its console handler is gone: without any handler,
#: ``logging.lastResort`` would print its warnings on stderr
_NO_OUTPUT = logging.NullHandler()


def current_pipeline() -> Pipeline | None:
    return STATE.pipeline


def install(pipeline: Pipeline, level: str) -> None:
    """Make ``pipeline`` the root logger's only lumen-otel handler and route server loggers."""
    previous = STATE.pipeline
    STATE.pipeline = pipeline
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, RootHandler) or _is_console_handler(handler):
            root.removeHandler(handler)
    root.addHandler(pipeline.handler)
    root.setLevel(level)
    route_server_loggers()
    patch_logging_config()
    redact_before_every_handler()
    logging.captureWarnings(True)
    install_excepthooks()
    if previous is not None and previous is not pipeline:
        previous.close(timeout=2.0)


def _is_console_handler(handler: logging.Handler) -> bool:
    """A plain stream handler on stdout/stderr: would print every record a second time."""
    return (
        type(handler) in (logging.StreamHandler, logging.lastResort.__class__)
        and getattr(handler, "stream", None) in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    ) or type(handler).__module__.startswith("opentelemetry.")


def route_server_loggers() -> None:
    """uvicorn, gunicorn and Django loggers go through the root pipeline, exactly once.

    They often have their own console handlers and ``propagate=False`` (uvicorn's
    ``log_config``, Django's ``LOGGING``): drop their console handlers and let them
    propagate, keeping anything else (e.g. Django's ``mail_admins``). ``django.server`` keeps
    its ``propagate=False``: it reaches the pipeline without passing through ``django``'s handlers.
    """
    current = STATE.pipeline
    if current is None:
        return
    for name in _ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if _is_console_handler(handler) or isinstance(handler, RootHandler):
                logger.removeHandler(handler)
        if name in _KEPT_APART and not logger.propagate:
            if not logger.handlers:
                logger.addHandler(_NO_OUTPUT)
        else:
            logger.propagate = True
        logger.disabled = False
    root = logging.getLogger()
    if current.handler not in root.handlers:
        root.addHandler(current.handler)
    for handler in list(root.handlers):
        if _is_console_handler(handler):
            root.removeHandler(handler)
            if not type(handler).__module__.startswith("opentelemetry."):
                report_rate_limited(
                    "console-handler-replaced",
                    "lumen-otel's console replaces the console handler %s added to the root logger "
                    "(basicConfig or dictConfig): its format is not used, lumen-otel's is "
                    "(LUMEN_LOG_FORMAT); a handler of your own class, or on a named logger, is kept",
                    type(handler).__name__,
                )
