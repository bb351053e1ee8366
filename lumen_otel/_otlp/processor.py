"""The OTLP log processor: a batch leaves the queue only once the collector took it.

It replaces the SDK's ``BatchLogRecordProcessor``, which pops a batch before exporting it:
while the collector is down every batch is lost and only a log line says so. Here, while
exports fail, the queue holds what it can (bounded by ``LUMEN_OTLP_QUEUE_SIZE``), delivery
resumes when the collector returns, and every record that could not be kept is counted in
``lumen.log.dropped``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.resources import Resource

from lumen_otel._compat import (
    OK,
    ExportOutcome,
    LogRecordExporter,
    LogRecordExportResult,
    LogRecordProcessor,
    ReadableLogRecord,
    ReadWriteLogRecord,
    exporter_endpoint,
)
from lumen_otel._guard import internal_logger, internal_scope, mark_internal_thread, report_rate_limited
from lumen_otel._otlp.wire import report_permanent

__all__ = ["DropCounter", "ResilientLogProcessor"]

DropCounter = Callable[[int, str], None]


#: longest the writer thread waits for the export thread to free room while exports succeed
_ROOM_WAIT = 0.5
#: longest wait between attempts while the collector refuses or resets connections, seconds
_UNREACHABLE_RETRY = 1.0
#: an exporter that raised, or answered FAILURE without saying why: may succeed later
_RAISED = ExportOutcome("retry", "error")


def _splits(outcome: ExportOutcome) -> bool:
    """A permanent refusal of what the batch holds (too large, or 400: the collector could not
    take some record in it), which halves of the batch may get past."""
    return outcome.kind == "permanent" and (outcome.reason == "too_large" or outcome.status == 400)


class ResilientLogProcessor(LogRecordProcessor):
    """Batching processor that keeps records while the collector is away (bounded)."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        max_queue_size: int,
        on_drop: DropCounter,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        # Short on purpose: a refused connection costs nothing, and with a long cap the queue
        # (bounded) fills and drops records while the collector is already back.
        max_backoff: float = 5.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._max_batch_size = min(max_batch_size, max_queue_size)
        self._schedule_delay = schedule_delay
        self._max_backoff = max_backoff
        self._on_drop = on_drop
        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._lock = threading.Lock()  # guards the queue's length check + append
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._shutdown = False
        #: set by shutdown: the export thread's last drain stops there (monotonic seconds)
        self._final_deadline: float | None = None
        self._flush_requests: list[_FlushRequest] = []
        self._failures = 0
        #: the wait before the next attempt the last retryable outcome asked for (None: backoff)
        self._retry_delay: float | None = None
        self._congested = False
        self._exporter_shut_down = False
        #: records refused on their own since start, by reason (the warnings are rate-limited)
        self._refused: dict[str, int] = {}
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- threads ----------------------------------------------------------------------
    def _start_worker(self) -> None:
        self._pid = os.getpid()
        self._worker = threading.Thread(target=self._run, name="lumen-otlp-logs", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        # the parent's queued records are the parent's to send; the child starts clean
        self._queue = collections.deque()
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._flush_requests = []  # the parent's callers wait on the parent's thread
        if not self._shutdown:
            self._start_worker()

    def _run(self) -> None:
        mark_internal_thread()
        while not self._shutdown:
            self._wake.wait(self._backoff() or self._schedule_delay)
            if self._shutdown:
                break
            with self._lock:
                flushes, self._flush_requests = self._flush_requests, []
            ok = self._export_available(deadline=None, full_batches_only=not flushes)
            for request in flushes:
                request.ok = ok
                request.done.set()
            # cleared after the export: a wake-up asked for during it is about records that
            # batch already carried (the SDK's BatchProcessor does the same); a flush asked for
            # during it wakes the next round at once
            self._wake.clear()
            if self._flush_requests:
                self._wake.set()
        self._last_drain()

    def _last_drain(self) -> None:
        """After shutdown: export what is queued, on this thread, until the shutdown's deadline
        (the caller waits for this thread that long and no longer: no thread is started at exit)."""
        deadline = self._final_deadline
        if deadline is not None and not self._failures:
            self._export_available(deadline=deadline)
        with self._lock:
            flushes, self._flush_requests = self._flush_requests, []
        for request in flushes:
            request.done.set()

    def _backoff(self) -> float:
        if not self._failures:
            return 0.0
        if self._retry_delay is not None:
            return self._retry_delay
        return float(min(self._max_backoff, 0.5 * 2 ** min(self._failures, 10)))

    def _delay_for(self, outcome: ExportOutcome) -> float | None:
        """The wait before retrying after ``outcome`` (``None``: the exponential backoff).

        A refused or reset connection costs nothing to try again: at most ~1 s between attempts,
        so delivery resumes within about a second of the collector's return. The collector's own
        ``Retry-After`` (429/503, capped) is honoured; a busy answer without one and repeated
        timeouts back off exponentially up to ``max_backoff``."""
        if outcome.retry_after is not None:
            return max(outcome.retry_after, 0.05)
        if outcome.reason == "unreachable":
            return float(min(_UNREACHABLE_RETRY, 0.25 * 2 ** min(self._failures - 1, 4)))
        return None

    # -- processor API ----------------------------------------------------------------
    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.enqueue(
            ReadableLogRecord(
                log_record=log_record.log_record,
                resource=log_record.resource or Resource.get_empty(),
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def enqueue(self, readable: ReadableLogRecord) -> None:
        """Queue a finished record (``on_emit`` builds one; the bridge may hand one directly)."""
        if self._shutdown:
            self._on_drop(1, "shutdown")
            return
        full = len(self._queue) >= self._max_queue_size
        if full and self._failures == 0 and not self._congested:
            full = self._wait_for_room()
        with self._lock:
            size = len(self._queue)
            if size >= self._max_queue_size:
                full = True
            else:
                full = False
                self._queue.append(readable)
                size += 1
                if self._congested and size < self._max_queue_size // 2:
                    self._congested = False
        if full:
            self._on_drop(1, "otlp_queue_full")
            report_rate_limited(
                "otlp-queue-full",
                "OTLP log queue full (%d records): the collector is slow or away; dropped records "
                "are counted in lumen.log.dropped, the console and file (when on) still get them",
                self._max_queue_size,
            )
        elif size >= self._max_batch_size and not self._failures and not self._wake.is_set():
            self._wake.set()  # once: Event.set takes a lock and notifies on every call

    def _wait_for_room(self) -> bool:
        """A burst outran a collector that is keeping up: wait (the writer thread, never the
        application's) for the export thread to make room, rather than drop records a healthy
        collector would have taken. Bounded: after one wait that frees nothing the queue counts as
        congested and drops (counted) until it has drained to half. Returns whether still full."""
        self._wake.set()
        deadline = time.monotonic() + _ROOM_WAIT
        while time.monotonic() < deadline:
            if len(self._queue) < self._max_queue_size:
                return False
            if self._failures or self._shutdown:
                break
            time.sleep(0.002)
        self._congested = True
        return True

    def _export_available(self, deadline: float | None, full_batches_only: bool = False) -> bool:
        """Export queued batches; a batch leaves the queue only once accepted.

        The worker (``full_batches_only``) sends what is queued, then goes on only while a full
        batch waits: chasing the records that trickle in during an export would send a request
        per handful of records under a steady trickle of requests. The rest goes with the next
        tick; flush and shutdown still drain everything.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._export_lock.acquire(timeout=wait):
            return False
        try:
            while self._queue:
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                batch: Sequence[ReadableLogRecord] = list(itertools.islice(self._queue, self._max_batch_size))
                outcome, done = self._send(batch)
                if done:  # delivered, or dropped for good (counted): never retried
                    with self._lock:
                        for _ in range(done):
                            self._queue.popleft()
                if outcome.kind != "retry":
                    if self._failures:
                        report_rate_limited(
                            "otlp-recovered",
                            "OTLP log export recovered; sending the %d queued records",
                            len(self._queue),
                            level=logging.INFO,
                        )
                    self._failures = 0
                    self._retry_delay = None
                    if full_batches_only and len(self._queue) < self._max_batch_size:
                        return True
                    # Encoding a batch holds the GIL; between two batches hand it to the request
                    # threads that wait for it rather than make them wait out a switch interval
                    time.sleep(0)
                    continue
                self._failures += 1
                self._retry_delay = self._delay_for(outcome)
                if outcome.reason == "misconfigured":
                    report_rate_limited(
                        "otlp-export-misconfigured",
                        "OTLP log export refused with HTTP %s by %s: check the endpoint and the "
                        "credentials (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS); "
                        "keeping up to %d records and retrying, records beyond that are dropped "
                        "and counted in lumen.log.dropped",
                        outcome.status,
                        exporter_endpoint(self._exporter) or "the collector",
                        self._max_queue_size,
                        level=logging.ERROR,
                    )
                report_rate_limited(
                    "otlp-export-failed",
                    "OTLP log export failed (attempt %d: %s%s); keeping up to %d records and retrying",
                    self._failures,
                    outcome.reason,
                    f", HTTP {outcome.status}" if outcome.status is not None else "",
                    self._max_queue_size,
                )
                return False
            return True
        finally:
            self._export_lock.release()

    def _send(self, batch: Sequence[ReadableLogRecord]) -> tuple[ExportOutcome, int]:
        """Export ``batch``; the outcome and how many records at its head are done with.

        A batch the collector refuses for what it holds (413 or over ``max_request_size``:
        ``too_large``; 400: ``rejected``) is split in halves, again and again, so that one bad
        or big record never takes the audit lines that share its batch down: only a record
        refused on its own is dropped, counted by reason. Any other permanent failure drops the
        batch, counted, so later batches are never held behind it. A retryable failure keeps
        what is left."""
        outcome = self._attempt(batch)
        if len(batch) > 1 and _splits(outcome):
            half = len(batch) // 2
            done = 0
            for part in (batch[:half], batch[half:]):
                part_outcome, part_done = self._send(part)
                done += part_done
                if part_outcome.kind == "retry":
                    return part_outcome, done
            return OK, done
        if outcome.kind == "permanent":
            self._dropped(batch, outcome)
        return outcome, 0 if outcome.kind == "retry" else len(batch)

    def _attempt(self, batch: Sequence[ReadableLogRecord]) -> ExportOutcome:
        """One export of ``batch``: the exporter's classified ``export_outcome`` (lumen's OTLP/HTTP
        exporter), else its ``export`` (SUCCESS is ok, anything else may succeed later)."""
        classified = getattr(self._exporter, "export_outcome", None)
        try:
            with internal_scope():
                if classified is not None:
                    outcome: ExportOutcome = classified(batch)
                    return outcome
                result = self._exporter.export(batch)
        except Exception as exc:  # noqa: BLE001 - exporters must not kill the worker
            internal_logger().debug("OTLP log export raised: %r", exc)
            return _RAISED
        return OK if result is LogRecordExportResult.SUCCESS else _RAISED

    def _dropped(self, batch: Sequence[ReadableLogRecord], outcome: ExportOutcome) -> None:
        self._on_drop(len(batch), outcome.reason)
        if len(batch) > 1 or not _splits(outcome):
            report_permanent("logs", len(batch), outcome)
            return
        # one record refused on its own: its size says which one it was, never its content; the
        # running total says how many the rate-limited warning stands for
        total = self._refused[outcome.reason] = self._refused.get(outcome.reason, 0) + 1
        report_rate_limited(
            f"otlp-logs-record-{outcome.reason}",
            "OTLP log record of %s bytes dropped (%s): the collector refused it on its own "
            "(HTTP %s); %d refused so far, counted in lumen.log.dropped; the records around it "
            "are sent",
            outcome.size if outcome.size is not None else "?",
            outcome.reason,
            outcome.status if outcome.status is not None else "-",
            total,
        )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued; False if ``timeout_millis`` ran out first.

        The export thread does the exports and the caller waits for it until the deadline, so
        a collector that hangs holds this call for ``timeout_millis`` and no longer (an export
        on the caller's thread would wait for the exporter's own, longer, timeout)."""
        if self._shutdown:
            return False
        deadline = time.monotonic() + max(0, timeout_millis) / 1000
        if self._pid != os.getpid() or not self._worker.is_alive():
            return self._export_available(deadline=deadline)  # no export thread to ask
        request = _FlushRequest()
        with self._lock:
            self._flush_requests.append(request)
        self._wake.set()
        return request.done.wait(max(0.0, deadline - time.monotonic())) and request.ok

    def begin_shutdown(self, deadline: float) -> None:
        """Stop taking records and have the export thread do its last export, until ``deadline``
        (monotonic seconds), without waiting for it: :meth:`shutdown` waits. Several processors
        are told first, then waited for, so their last exports run side by side."""
        if self._shutdown:
            return
        self._final_deadline = deadline
        self._shutdown = True
        self._wake.set()

    def shutdown(self, timeout_millis: int | None = None) -> None:
        """Export what is queued (on the export thread: none is started here, which Python 3.12+
        refuses at exit) and stop; returns within ``timeout_millis`` whatever the collector does."""
        seconds = self._shutdown_timeout if timeout_millis is None else timeout_millis / 1000
        if self._final_deadline is None:
            if self._shutdown:
                return
            self.begin_shutdown(time.monotonic() + seconds)
        elif self._exporter_shut_down:
            return
        self._exporter_shut_down = True
        deadline = self._final_deadline
        assert deadline is not None
        worker_alive = self._pid == os.getpid() and self._worker.is_alive()
        if worker_alive:
            self._worker.join(max(0.0, deadline - time.monotonic()))
            worker_alive = self._worker.is_alive()
        elif not self._failures:
            self._export_available(deadline=deadline)  # forked child before its first export: inline
        left = len(self._queue)
        if left:
            self._on_drop(left, "shutdown_timeout")
            report_rate_limited(
                "otlp-shutdown-left",
                "%d log records could not be exported before shutdown; counted in lumen.log.dropped",
                left,
            )
            if not worker_alive:  # a thread still exporting pops what the collector took
                self._queue.clear()
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]
        except Exception:  # noqa: BLE001
            internal_logger().debug("OTLP log exporter shutdown raised", exc_info=True)


class _FlushRequest:
    """One ``force_flush`` waiting for the export thread."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
