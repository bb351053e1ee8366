"""``ResilientLogProcessor`` with an exporter that classifies its outcomes (ok / retry / permanent):
a permanent failure drops that batch, counted by reason, and never holds the ones after it; a
batch refused for what it holds (too large, 400) is split in halves until the refused record is
alone; the retry delay follows the outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from lumen_otel._compat import OK, ExportOutcome
from lumen_otel._otlp.processor import ResilientLogProcessor


def record(body: str) -> ReadableLogRecord:
    return ReadableLogRecord(LogRecord(timestamp=1, body=body), resource=Resource.get_empty())


class Classifying:
    """An exporter whose ``export_outcome`` answers ``decide(bodies)``; it keeps what it took."""

    def __init__(self, decide: Callable[[list[str]], ExportOutcome]) -> None:
        self.decide = decide
        self.taken: list[str] = []
        self.attempts: list[list[str]] = []

    def export_outcome(self, batch: Sequence[ReadableLogRecord]) -> ExportOutcome:
        bodies = [str(r.log_record.body) for r in batch]
        self.attempts.append(bodies)
        outcome = self.decide(bodies)
        if outcome.ok:
            self.taken += bodies
        return outcome

    def export(self, batch: Any) -> Any:  # pragma: no cover - export_outcome is preferred
        raise AssertionError("export_outcome is used")

    def shutdown(self) -> None:
        pass


def run(exporter: Classifying, bodies: list[str], batch: int = 4) -> list[tuple[int, str]]:
    drops: list[tuple[int, str]] = []
    processor = ResilientLogProcessor(
        exporter,  # type: ignore[arg-type]
        max_queue_size=100,
        max_batch_size=batch,
        schedule_delay=30,
        on_drop=lambda count, reason: drops.append((count, reason)),
    )
    for body in bodies:
        processor.enqueue(record(body))
    assert processor.force_flush(10_000)
    processor.shutdown(1000)
    return drops


class TestPermanentFailures:
    def test_a_rejected_batch_is_dropped_counted_and_the_next_batches_are_delivered(self) -> None:
        exporter = Classifying(
            lambda bodies: ExportOutcome("permanent", "rejected", 415) if "bad" in bodies else OK
        )
        drops = run(exporter, ["a", "b", "bad", "c", "d", "e", "f", "g"])
        assert [(4, "rejected")] == drops
        assert ["d", "e", "f", "g"] == exporter.taken
        assert 2 == len(exporter.attempts)  # the rejected batch was not retried

    def test_a_400_is_split_until_only_the_refused_record_is_dropped(self) -> None:
        exporter = Classifying(
            lambda bodies: ExportOutcome("permanent", "rejected", 400) if "bad" in bodies else OK
        )
        drops = run(exporter, ["a", "b", "bad", "c", "d", "e", "f", "g"])
        assert [(1, "rejected")] == drops
        assert ["a", "b", "c", "d", "e", "f", "g"] == exporter.taken
        assert [["a", "b", "bad", "c"], ["a", "b"], ["bad", "c"], ["bad"], ["c"]] == exporter.attempts[:5]

    def test_unencodable_is_counted_by_its_reason(self) -> None:
        exporter = Classifying(lambda bodies: ExportOutcome("permanent", "unencodable"))
        assert [(2, "unencodable")] == run(exporter, ["a", "b"])

    def test_too_large_is_split_until_the_record_too_large_on_its_own_is_alone(self) -> None:
        def decide(bodies: list[str]) -> ExportOutcome:
            too_big = len(bodies) > 2 or "huge" in bodies
            return ExportOutcome("permanent", "too_large", 413) if too_big else OK

        exporter = Classifying(decide)
        drops = run(exporter, ["a", "b", "huge", "c", "d", "e", "f", "g"])
        assert [(1, "too_large")] == drops  # "huge" alone: "c", which shared its half, is sent
        assert ["a", "b", "c", "d", "e", "f", "g"] == exporter.taken
        assert [["a", "b", "huge", "c"], ["a", "b"], ["huge", "c"], ["huge"], ["c"]] == exporter.attempts[:5]


class TestRetryDelays:
    def _processor(self) -> ResilientLogProcessor:
        return ResilientLogProcessor(
            Classifying(lambda bodies: OK),  # type: ignore[arg-type]
            max_queue_size=10,
            on_drop=lambda count, reason: None,
            max_backoff=5.0,
        )

    def test_an_unreachable_collector_is_tried_again_within_a_second(self) -> None:
        processor = self._processor()
        delays = []
        for failures in range(1, 8):
            processor._failures = failures
            processor._retry_delay = processor._delay_for(ExportOutcome("retry", "unreachable"))
            delays.append(processor._backoff())
        processor.shutdown(100)
        assert [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0] == delays

    def test_retry_after_is_honoured_and_timeouts_back_off(self) -> None:
        processor = self._processor()
        processor._failures = 1
        assert 7.0 == processor._delay_for(ExportOutcome("retry", "busy", 503, 7.0))
        assert processor._delay_for(ExportOutcome("retry", "timeout")) is None  # exponential
        processor._failures, processor._retry_delay = 4, None
        assert 5.0 == processor._backoff()
        processor.shutdown(100)
