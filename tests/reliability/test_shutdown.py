"""Shutdown: SIGTERM under load flushes within ``LUMEN_SHUTDOWN_TIMEOUT``; a hung collector
cannot hold the process beyond it."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.conftest import free_port
from tests.reliability.conftest import app_env, connected_to, numbered, uvicorn_argv, wait_until

pytestmark = pytest.mark.integration

EXIT_MARGIN = 2.5  # seconds for uvicorn's own graceful stop and the interpreter's exit


def load_until_refused(url: str, answered: list[int], stop: threading.Event, start: int) -> None:
    with httpx.Client(timeout=10) as client:
        i = start
        while not stop.is_set():
            try:
                if client.get(f"{url}/work/{i}").status_code == 200:
                    answered.append(i)
            except httpx.HTTPError:
                return
            i += 1


class TestSigterm:
    def test_sigterm_during_load_flushes_every_answered_request_within_the_timeout(
        self, start_app, receiver, tmp_path
    ):
        """Four clients keep the app busy; SIGTERM; the process exits within the shutdown
        timeout and every request it answered has its record at the collector and in the file."""
        receiver.start()
        port = free_port()
        env = app_env(
            "stopping",
            tmp_path / "logs",
            receiver.endpoint,
            LUMEN_SHUTDOWN_TIMEOUT="5",
            OTEL_BLRP_SCHEDULE_DELAY="5000",
        )
        app = start_app(uvicorn_argv(port), env, name="stopping", port=port)
        answered: list[int] = []
        stop = threading.Event()
        clients = [
            threading.Thread(target=load_until_refused, args=(app.url, answered, stop, k * 100_000))
            for k in range(4)
        ]
        for client in clients:
            client.start()
        # SIGTERM once the app is busy answering (the clients keep going until it refuses)
        wait_until(lambda: len(answered) >= 50, lambda: f"50 answered requests, got {len(answered)}")
        seconds = app.stop(timeout=15)
        stop.set()
        for client in clients:
            client.join(10)
        assert len(answered) > 20
        assert seconds <= 5 + EXIT_MARGIN
        assert set(answered) <= set(numbered(app.file_records("stopping"), "work"))
        delivered = set(numbered([{"message": log["body"]} for log in receiver.logs()], "work"))
        assert sorted(set(answered) - delivered) == []
        print(
            f"\nRESULT SIGTERM under load: {len(answered)} answered, all delivered and in the file; "
            f"exit {seconds:.2f} s (timeout 5 s)"
        )


class TestHungCollector:
    def test_a_collector_that_never_answers_cannot_hold_shutdown(self, start_app, receiver, tmp_path):
        """The collector accepts connections and answers after 60 s; exporters wait up to 30 s.
        With ``LUMEN_SHUTDOWN_TIMEOUT=2`` the process is gone within 2 s + margin; the file
        has every record."""
        receiver.start(delay=60)
        port = free_port()
        env = app_env(
            "hung",
            tmp_path / "logs",
            receiver.endpoint,
            LUMEN_SHUTDOWN_TIMEOUT="2",
            OTEL_EXPORTER_OTLP_TIMEOUT="30",
        )
        app = start_app(uvicorn_argv(port), env, name="hung", port=port)
        with httpx.Client(timeout=10) as client:
            for i in range(50):
                assert client.get(f"{app.url}/work/{i}").status_code == 200
        # an export is under way: connected to a collector that answers after 60 s, it is blocked
        wait_until(lambda: connected_to(app.proc.pid, receiver.port), "an export connected to the collector")
        seconds = app.stop(timeout=30)
        assert seconds <= 2 + EXIT_MARGIN, app.stderr[-2000:]
        assert list(range(50)) == numbered(app.file_records("hung"), "work")
        print(f"\nRESULT hung collector (60 s): exit {seconds:.2f} s with LUMEN_SHUTDOWN_TIMEOUT=2")
