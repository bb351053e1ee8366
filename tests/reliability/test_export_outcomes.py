"""What happens after the collector refuses a batch, or a batch cannot be encoded.

A real FastAPI service (``rel_outcomes.py`` under ``opentelemetry-instrument uvicorn``) exports to
the collector stand-in (``OTLPReceiver`` in a child process), told per request what to answer
(``OTLPReceiver.answer``): 400 to one batch, 413 to a batch over a size, 429/503 with
``Retry-After``, 400 with a 50 MB body. The processor and the exporter are tested together: a
batch that can never be delivered is dropped and counted in ``lumen.log.dropped`` by reason
(``rejected``, ``too_large``, ``unencodable``), and the batches after it are delivered; text
that is not valid Unicode (lone surrogates) is delivered with U+FFFD in its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.reliability.conftest import App, RemoteReceiver, app_env, numbered, uvicorn_argv, wait_until

pytestmark = pytest.mark.integration

REPLACEMENT = "\ufffd"


def start_outcomes_app(start_app: Any, receiver: RemoteReceiver, tmp_path: Path, **extra: str) -> App:
    port = free_port()
    env = app_env(
        "outcomes",
        tmp_path / "logs",
        receiver.endpoint,
        OTEL_BLRP_SCHEDULE_DELAY="200",
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
        **extra,
    )
    return start_app(uvicorn_argv(port, "rel_outcomes:app"), env, name="outcomes", port=port)


def get(app: App, path: str, **params: Any) -> Any:
    with httpx.Client(timeout=30) as client:
        response = client.get(app.url + path, params=params)
        assert response.status_code == 200, response.text[:500]
        return response.json()


def bodies(receiver: RemoteReceiver) -> list[dict[str, Any]]:
    return [{"message": log["body"]} for log in receiver.logs()]


def delivered(receiver: RemoteReceiver, tag: str) -> list[int]:
    return numbered(bodies(receiver), tag)


def dropped(receiver: RemoteReceiver, reason: str) -> float:
    return receiver.metric_total("lumen.log.dropped", reason=reason)


def answers(receiver: RemoteReceiver, status: int, path: str = "/v1/logs") -> list[dict[str, Any]]:
    return [a for a in receiver.items("answer") if a["status"] == status and a["path"].endswith(path)]


def await_delivery(receiver: RemoteReceiver, tag: str, n: int, timeout: float = 30.0) -> None:
    wait_until(
        lambda: delivered(receiver, tag) == list(range(n)),
        lambda: f"{tag} 0..{n - 1} delivered once each; got {delivered(receiver, tag)}",
        timeout=timeout,
    )


class TestPoisonRecords:
    def test_lone_surrogates_in_message_value_and_key_are_delivered_with_a_replacement(
        self, start_app, receiver, tmp_path
    ):
        """A burst of 50 with every 5th record holding a lone surrogate (message, extra value, extra
        key in turn): every good record is delivered, the poisoned ones with U+FFFD, and the
        records logged after the burst too (today: none of them, the batch retried forever)."""
        receiver.start()
        app = start_outcomes_app(start_app, receiver, tmp_path)
        poisoned = get(app, "/mixed", n=50, every=5, tag="mixed")["poisoned"]
        get(app, "/bulk", n=50, tag="after")
        await_delivery(receiver, "after", 50)
        await_delivery(receiver, "mixed", 50)
        by_number = {
            int(log["body"].split()[1]): log for log in receiver.logs() if log["body"].startswith("mixed ")
        }
        for k in poisoned:
            log = by_number[k]
            text = log["body"] + "".join(f"{key}={value}" for key, value in log["attributes"].items())
            assert REPLACEMENT in text, log
        good = [k for k in range(50) if k not in poisoned]
        assert all(REPLACEMENT not in by_number[k]["body"] for k in good)
        assert 0 == dropped(receiver, "unencodable")
        print(
            f"\nRESULT poison: {len(good)}/{len(good)} good, {len(poisoned)}/{len(poisoned)} poisoned "
            f"(with U+FFFD) and 50/50 later records delivered"
        )


class TestRefusedBatches:
    def test_a_400_drops_the_records_refused_on_their_own_counted_rejected_and_the_next_are_delivered(
        self, start_app, receiver, tmp_path
    ):
        receiver.start(answers=[{"status": 400, "path": "/v1/logs", "match": "reject-me", "times": None}])
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/bulk", n=20, tag="reject-me")
        wait_until(lambda: dropped(receiver, "rejected") >= 20, "20 records counted rejected")
        get(app, "/bulk", n=50, tag="after")
        await_delivery(receiver, "after", 50)
        assert [] == delivered(receiver, "reject-me")
        assert len(answers(receiver, 400)) < 4 * 20  # split in halves, each refused record alone once
        app.stop()
        assert app.stderr.count("dropped (rejected)") == 1
        print(
            f"\nRESULT 400: batch counted rejected ({dropped(receiver, 'rejected'):.0f}), "
            "50/50 later delivered"
        )

    def test_a_413_is_split_in_halves_that_are_delivered_when_they_fit(self, start_app, receiver, tmp_path):
        """The collector's limit is 30 kB: a ~45 kB batch is refused, its halves go through."""
        receiver.start(answers=[{"status": 413, "path": "/v1/logs", "over": 30_000, "times": None}])
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/bulk", n=20, size=2000, tag="big")
        await_delivery(receiver, "big", 20)
        assert answers(receiver, 413), "the whole batch was refused first"
        get(app, "/bulk", n=50, tag="after")
        await_delivery(receiver, "after", 50)
        assert 0 == dropped(receiver, "too_large")
        print("\nRESULT 413 (halves fit): 20/20 delivered in halves, 50/50 later delivered")

    def test_a_413_to_the_halves_too_counts_too_large_and_later_batches_go(
        self, start_app, receiver, tmp_path
    ):
        receiver.start(answers=[{"status": 413, "path": "/v1/logs", "match": "huge", "times": None}])
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/bulk", n=20, tag="huge")
        wait_until(lambda: dropped(receiver, "too_large") >= 20, "20 records counted too_large")
        get(app, "/bulk", n=50, tag="after")
        await_delivery(receiver, "after", 50)
        assert [] == delivered(receiver, "huge")
        assert len(answers(receiver, 413)) < 4 * 20  # split in halves, each refused record alone once
        app.stop()
        assert app.stderr.count("dropped (too_large)") == 1
        print(
            f"\nRESULT 413 (halves too large): counted too_large ({dropped(receiver, 'too_large'):.0f}), "
            "50/50 later delivered"
        )

    @pytest.mark.parametrize("status", [429, 503])
    def test_busy_with_retry_after_is_retried_after_the_time_asked_and_delivered(
        self, start_app, receiver, tmp_path, status
    ):
        """``Retry-After: 3`` is longer than the exporter's 2 s timeout: no attempt comes before
        the collector asked for it (a lower bound the protocol sets, not a speed), and the batch is
        delivered once it is taken."""
        receiver.start(
            answers=[{"status": status, "path": "/v1/logs", "match": "busy", "retry_after": "3", "times": 2}]
        )
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/bulk", n=20, tag="busy")
        await_delivery(receiver, "busy", 20)
        refused = answers(receiver, status)
        taken = [a for a in receiver.items("answer") if a["status"] == 200 and a["path"].endswith("/v1/logs")]
        assert 2 == len(refused)
        next_attempts = [refused[1]["time"], min(a["time"] for a in taken if a["time"] > refused[1]["time"])]
        for before, after in zip(refused, next_attempts, strict=True):
            assert after - before["time"] >= 3 * 0.95, (before, after)
        assert 0 == receiver.metric_total("lumen.log.dropped")

    def test_a_400_with_a_50_mb_body_is_counted_memory_bounded_later_batches_delivered(
        self, start_app, receiver, tmp_path
    ):
        receiver.start(
            answers=[
                {"status": 400, "path": "/v1/logs", "match": "flood", "body_size": 50 * 2**20, "times": None}
            ]
        )
        app = start_outcomes_app(start_app, receiver, tmp_path)
        rss_before = app.rss_kib()
        get(app, "/bulk", n=20, tag="flood")
        wait_until(lambda: dropped(receiver, "rejected") >= 20, "20 records counted rejected")
        get(app, "/bulk", n=50, tag="after")
        await_delivery(receiver, "after", 50)
        growth_mib = (app.rss_kib() - rss_before) / 1024
        assert growth_mib < 25, growth_mib  # the 50 MB body is not held (64 KiB is read)
        assert len(answers(receiver, 400)) < 4 * 20  # split in halves, each refused record alone once
        print(
            f"\nRESULT 400 + 50 MB body: counted rejected, RSS +{growth_mib:.1f} MiB, 50/50 later delivered"
        )


class TestSpans:
    def test_a_span_with_a_lone_surrogate_is_delivered_with_a_replacement(
        self, start_app, receiver, tmp_path
    ):
        receiver.start()
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/span", name="poison-span", poison=1)
        get(app, "/span", name="after-span")
        wait_until(
            lambda: {"poison-span", "after-span"} <= {s["name"] for s in receiver.spans()},
            lambda: f"both spans delivered; got {sorted({s['name'] for s in receiver.spans()})}",
        )
        poison = next(s for s in receiver.spans() if s["name"] == "poison-span")
        assert "note " + REPLACEMENT == poison["attributes"].get("client.note"), poison["attributes"]

    def test_a_400_to_a_span_batch_is_dropped_with_a_warning_saying_why(self, start_app, receiver, tmp_path):
        receiver.start(answers=[{"status": 400, "path": "/v1/traces", "match": "refused-span", "times": 1}])
        app = start_outcomes_app(start_app, receiver, tmp_path)
        get(app, "/span", name="refused-span")
        wait_until(lambda: answers(receiver, 400, "/v1/traces"), "the span batch refused")
        get(app, "/span", name="after-span")
        wait_until(lambda: "after-span" in {s["name"] for s in receiver.spans()}, "the next span delivered")
        app.stop()
        assert "OTLP span batch of" in app.stderr and "dropped (rejected)" in app.stderr, app.stderr[-3000:]
