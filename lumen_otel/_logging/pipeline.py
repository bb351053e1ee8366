"""The logging pipeline: one root handler, one queue, one writer thread, several sinks.

    logger.info(...) ─► RootHandler.handle (caller's thread: enrich + redact, once)
                     ─► queue ─► writer thread ─► console (text/JSON), file (JSON lines),
                                                  OTLP bridge, test listeners

No sink does disk or network I/O on the caller's thread, so an async service's event loop
never waits on a disk or a collector. The queue is bounded: when the writer falls behind
by ``LUMEN_LOG_QUEUE_SIZE`` records callers wait for it (briefly) rather than lose lines.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections import Counter
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
from lumen_otel._server_patches import patch_logging_config
from lumen_otel._state import STATE

__all__ = ["Pipeline", "RootHandler", "current_pipeline", "mark_internal_thread"]

Listener = Callable[[dict[str, Any]], None]

_FLUSH = object()
_STOP = object()
# Records written per batch: enough to amortise the syscalls, few enough that a burst of large
# records (4 KB payloads) does not build tens of MB of JSON at once (RSS stays bounded).
_BATCH = 512
_QUEUE_WAIT = 2.0  # seconds a caller may wait for room before a record is dropped (and counted)
_COUNT_INTERVAL = 0.5  # longest a written record waits to be counted in lumen.log.records


def _is_internal_record(record: logging.LogRecord) -> bool:
    return in_internal_scope() or record.name.startswith(("opentelemetry", "lumen_otel.internal"))


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
        count_records: Callable[[Counter[str]], None] | None = None,
        count_dropped: Callable[[int, str], None] | None = None,
    ) -> None:
        self.enricher = enricher
        self.console = console
        self.console_json = console_json
        self.color_formatter = (
            ColorFormatter(color=use_color(console)) if console and not console_json else None
        )
        self.log_file = log_file
        self.otlp = otlp
        self.queue_size = queue_size
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
        self._closed = False
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
        self._pending_counts = Counter()  # the parent's to count
        if not self._closed:
            self._start_thread()

    # -- caller side --------------------------------------------------------------------
    def submit(self, record: logging.LogRecord) -> None:
        if self._closed:
            return
        record.lumen_internal = _is_internal_record(record)
        self.enricher(record)
        if self._queue.qsize() >= self.queue_size and threading.current_thread() is not self._thread:
            deadline = time.monotonic() + _QUEUE_WAIT
            while self._queue.qsize() >= self.queue_size:
                if time.monotonic() >= deadline or self._closed:
                    self._dropped(1, "local_queue_full")
                    return
                time.sleep(0.001)
        self._queue.put(record)

    def _dropped(self, count: int, reason: str) -> None:
        if self.count_dropped is not None:
            self.count_dropped(count, reason)
        report_rate_limited(f"dropped-{reason}", "lumen-otel dropped %d log record(s): %s", count, reason)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been written; False on timeout."""
        if self._closed or threading.current_thread() is self._thread or not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            done = threading.Event()
            self._queue.put((_STOP, done))
            done.wait(timeout)
        self._closed = True
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
            records: list[logging.LogRecord] = []
            for item in batch:
                if isinstance(item, tuple):
                    self._write(records)
                    records = []
                    self._push_counts()  # a flush or a stop: the counts are up to date too
                    marker, event = item
                    event.set()
                    if marker is _STOP:
                        return
                else:
                    records.append(item)
            self._write(records)

    def _write(self, records: list[logging.LogRecord]) -> None:
        if not records:
            return
        try:
            dicts = (
                [record_to_dict(r) for r in records]
                if (self.console_json or self.log_file or self.listeners)
                else []
            )
            lines = b"".join(record_to_json(d) for d in dicts) if dicts else b""
            if self.console is not None:
                self._write_console(records, lines)
            if self.log_file is not None:
                self.log_file.write(lines)
            for listener in list(self.listeners):
                for data in dicts:
                    listener(data)
            if self.otlp is not None:
                for record in records:
                    if not record.lumen_internal:  # type: ignore[attr-defined]
                        self.otlp.emit(record)
            if self.count_records is not None:
                self._pending_counts.update(r.levelname for r in records)
                if time.monotonic() - self._counts_pushed_at >= _COUNT_INTERVAL:
                    self._push_counts()
        except Exception:
            if strict():
                raise
            internal_logger().exception("lumen-otel log writer failed on a batch of %d records", len(records))

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

    def _write_console(self, records: list[logging.LogRecord], lines: bytes) -> None:
        stream = self.console
        assert stream is not None
        try:
            if self.console_json:
                buffer = getattr(stream, "buffer", None)
                if buffer is not None:
                    stream.flush()
                    buffer.write(lines)
                    buffer.flush()
                else:
                    stream.write(lines.decode("utf-8"))
                    stream.flush()
            else:
                assert self.color_formatter is not None
                stream.write("".join(self.color_formatter.format(r) + "\n" for r in records))
                stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken pipe: the other sinks go on
            report_rate_limited("console-error", "console log output failed: %s", exc)


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
    logging.captureWarnings(True)
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
    propagate, keeping anything else (e.g. Django's ``mail_admins``).
    """
    current = STATE.pipeline
    if current is None:
        return
    for name in _ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if _is_console_handler(handler) or isinstance(handler, RootHandler):
                logger.removeHandler(handler)
        logger.propagate = True
        logger.disabled = False
    root = logging.getLogger()
    if current.handler not in root.handlers:
        root.addHandler(current.handler)
    for handler in list(root.handlers):
        if _is_console_handler(handler):
            root.removeHandler(handler)
