"""The cost of one log record is bounded (LUMEN_LOG_MAX_FIELD_BYTES).

Redaction runs on the caller's thread, for an async service on the event loop. Before the cap a
route that logged a 10 MB body of ``'Dr. A. '`` held uvicorn's loop for 21 s. Now every field is
cut before redaction, the cut is marked with the number of bytes removed, and counted in
``lumen.log.truncated``. The speed is measured in ``benchmarks/bench_adversarial.py``; these tests
check the behaviour (sizes, markers, counts), never the time.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lumen_otel._config.settings import load_settings
from lumen_otel._logging.enrich import DEFAULT_MAX_FIELD_BYTES, Enricher, truncate, truncation_marker
from lumen_otel._redaction import Redactor
from lumen_otel.exceptions import ConfigError
from lumen_otel.testing import OTLPReceiver
from tests.conftest import VENV_BIN, clean_env, free_port

MARKER = re.compile(r"\u2026\[truncated (\d+) bytes\]\Z")
LIMIT = 1024


def _record(msg: str, args: Any = None, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


@pytest.fixture
def counted() -> Iterator[tuple[Enricher, list[tuple[int, str]]]]:
    calls: list[tuple[int, str]] = []
    enricher = Enricher(
        "bounded", Redactor(), max_field_bytes=LIMIT, count_truncated=lambda n, part: calls.append((n, part))
    )
    yield enricher, calls


class TestTruncate:
    def test_short_text_is_returned_as_it_is(self):
        text = "x" * LIMIT
        assert truncate(text, LIMIT) == (text, 0)
        assert truncate(text, LIMIT)[0] is text

    def test_ascii_is_cut_to_the_limit_and_the_cut_counted(self):
        head, cut = truncate("x" * 5000, LIMIT)
        assert head == "x" * LIMIT
        assert cut == 5000 - LIMIT

    def test_the_cut_falls_on_whitespace_near_the_limit(self):
        text = "word " * 1000
        head, cut = truncate(text, LIMIT)
        assert head.endswith(" ") and len(head) <= LIMIT
        assert len(head) + cut == len(text)

    def test_multibyte_text_is_measured_in_utf8_bytes_and_never_split_in_a_character(self):
        text = "\u00e9" * 2000  # 2 bytes each: 4000 bytes
        head, cut = truncate(text, LIMIT + 1)
        assert head == "\u00e9" * (LIMIT // 2)
        assert cut == 4000 - LIMIT
        emoji = "\U0001f600" * 400  # 4 bytes each, fits in 1600 bytes: under LIMIT * 2
        assert truncate(emoji, 2 * LIMIT) == (emoji, 0)

    def test_lone_surrogates_do_not_break_it(self):
        text = "\udcff" * 2000
        head, cut = truncate(text, LIMIT)
        assert len(head.encode("utf-8", "surrogatepass")) + cut == 6000

    def test_zero_means_no_cap(self):
        text = "x" * 100_000
        assert truncate(text, 0) == (text, 0)


class TestEnricherCapsEveryField:
    def test_message_is_cut_before_redaction_and_marked(self, counted):
        enricher, calls = counted
        body = "Dr. A. " * 100_000
        record = _record("received %s", (body,))
        enricher(record)
        match = MARKER.search(record.msg)
        assert match is not None
        kept = record.msg[: match.start()]
        assert "[REDACTED:NAME]" in kept
        assert int(match.group(1)) == len("received " + body) - len(kept.replace("[REDACTED:NAME]", "A"))
        assert calls == [(1, "message")]
        assert record.getMessage() == record.msg

    def test_pii_at_the_cut_is_not_left_half_shown(self, counted):
        enricher, _ = counted
        ssn = "123-45-6789"
        text = "x" * (LIMIT - 5) + f" {ssn} and more " + "y" * 5000
        record = _record(text)
        enricher(record)
        assert "123-45" not in record.msg
        assert MARKER.search(record.msg)

    def test_short_records_are_untouched_and_not_counted(self, counted):
        enricher, calls = counted
        record = _record("order %s looked up", (7,), order_id=7, note="fine")
        enricher(record)
        assert record.msg == "order 7 looked up"
        assert record.lumen_extra == {"order_id": 7, "note": "fine"}
        assert calls == []

    def test_string_extras_and_nested_strings_are_cut(self, counted):
        enricher, calls = counted
        record = _record(
            "payload",
            body="patient " * 10_000,
            nested={"items": ["Dr. A. " * 10_000, "ok"], "k" * 5000: 1},
            small="ok",
        )
        enricher(record)
        extra = record.lumen_extra
        assert MARKER.search(extra["body"])
        assert len(extra["body"]) < 2 * LIMIT
        assert MARKER.search(extra["nested"]["items"][0])
        assert extra["nested"]["items"][1] == "ok"
        assert any(MARKER.search(key) for key in extra["nested"])
        assert extra["small"] == "ok"
        assert calls == [(3, "extra")]
        assert record.body == extra["body"]  # other handlers see the capped, redacted value too

    def test_exception_message_and_stack_are_cut(self, counted):
        enricher, calls = counted
        try:
            raise ValueError("Dr. A. " * 50_000)
        except ValueError:
            record = _record("failed", exc_info=sys.exc_info())
        enricher(record)
        exception = record.lumen_exception
        assert MARKER.search(exception["message"])
        assert MARKER.search(exception["stacktrace"])
        assert len(exception["stacktrace"]) < 4 * LIMIT
        assert sorted(calls) == [(1, "exception"), (1, "stack")]

    def test_stack_info_and_preformatted_exc_text_are_cut(self, counted):
        enricher, calls = counted
        record = _record("x", exc_text="patient " * 10_000)
        record.stack_info = "Dr. A. " * 10_000
        enricher(record)
        assert MARKER.search(record.exc_text)
        assert MARKER.search(record.stack_info)
        assert calls == [(1, "stack"), (1, "stack")]

    def test_zero_turns_the_cap_off(self):
        enricher = Enricher("bounded", Redactor(), max_field_bytes=0)
        record = _record("x" * 100_000)
        enricher(record)
        assert record.msg == "x" * 100_000

    def test_a_broken_counter_does_not_lose_the_record(self):
        def broken(count: int, part: str) -> None:
            raise RuntimeError("meter down")

        enricher = Enricher("bounded", Redactor(), max_field_bytes=LIMIT, count_truncated=broken)
        record = _record("x" * 5000)
        enricher(record)
        assert MARKER.search(record.msg)

    def test_the_default_is_64_kib(self):
        assert DEFAULT_MAX_FIELD_BYTES == 64 * 1024
        assert Enricher("bounded", Redactor()).max_field_bytes == 64 * 1024
        assert truncation_marker(9437184) == "\u2026[truncated 9437184 bytes]"


class TestSetting:
    def test_default(self):
        assert load_settings({}).log_max_field_bytes == 65536

    @pytest.mark.parametrize(("raw", "value"), [("0", 0), ("1024", 1024), ("1_048_576", 1048576)])
    def test_accepted(self, raw, value):
        assert load_settings({"LUMEN_LOG_MAX_FIELD_BYTES": raw}).log_max_field_bytes == value

    @pytest.mark.parametrize("raw", ["100", "-1", "64k", "1.5"])
    def test_nonsense_is_refused_naming_the_variable(self, raw):
        with pytest.raises(ConfigError, match="LUMEN_LOG_MAX_FIELD_BYTES"):
            load_settings({"LUMEN_LOG_MAX_FIELD_BYTES": raw})

    def test_argument(self):
        assert load_settings({}, log_max_field_bytes=4096).log_max_field_bytes == 4096


# ---------------------------------------------------------------- a real service

APP = textwrap.dedent(
    """
    import logging

    from fastapi import FastAPI, Request

    app = FastAPI()
    log = logging.getLogger("app.ingest")


    @app.get("/health")
    async def health():
        return {"status": "ok"}


    @app.post("/ingest")
    async def ingest(request: Request):
        body = (await request.body()).decode()
        log.info("received %s", body)  # on the event loop: redaction runs here
        return {"size": len(body)}
    """
)
BODY = ("Dr. A. " * (10 * 1024 * 1024 // 7 + 1))[: 10 * 1024 * 1024]


@pytest.mark.integration
def test_a_10_mb_body_logged_on_the_event_loop_is_cut_and_health_is_answered(start_service, tmp_path):
    """A real uvicorn under ``opentelemetry-instrument`` with lumen's distro: a route logs a 10 MB
    body of ``'Dr. A. '`` on the event loop while ``/health`` is asked. Every ``/health`` gets its
    answer; the record in the log file is cut to the default 64 KiB, marked with the bytes cut;
    ``lumen.log.truncated`` counts it."""
    (tmp_path / "ingest_app.py").write_text(APP)
    log_dir = tmp_path / "logs"
    port = free_port()
    with OTLPReceiver() as receiver:
        env = clean_env(
            OTEL_SERVICE_NAME="ingest",
            LUMEN_ENV="prod",
            LUMEN_LOG_DIR=str(log_dir),
            LUMEN_CONSOLE="false",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="300",
            OTEL_BSP_SCHEDULE_DELAY="100",
            PYTHONPATH=str(tmp_path),
        )
        argv = [
            str(VENV_BIN / "opentelemetry-instrument"),
            str(VENV_BIN / "uvicorn"),
            "ingest_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        service = start_service(argv, env, tmp_path, port)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health", timeout=30).status_code == 200

        result: dict[str, Any] = {}

        def post() -> None:
            result["response"] = httpx.post(f"{base}/ingest", content=BODY.encode(), timeout=120)

        poster = threading.Thread(target=post)
        poster.start()
        health = []
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(20):
                health.append(client.get("/health").status_code)
        poster.join(180)
        assert not poster.is_alive()
        assert health == [200] * 20
        assert result["response"].status_code == 200
        assert result["response"].json() == {"size": len(BODY)}

        assert receiver.wait_for(lambda r: r.metric_total("lumen.log.truncated", part="message") >= 1, 20)
        service.stop()

    lines = (log_dir / "ingest.log").read_text().splitlines()
    found = [line for line in lines if '"message":"received ' in line]
    assert len(found) == 1
    line = found[0]
    record = json.loads(line)
    match = MARKER.search(record["message"])
    assert match is not None, record["message"][-200:]
    kept = record["message"][len("received ") : match.start()]
    cut = int(match.group(1))
    # bytes kept (before redaction) + bytes cut == the message logged
    assert cut > len(BODY) - 64 * 1024
    assert kept.count("[REDACTED:NAME]") + kept.count(" A. ") > 1000
    # bounded: the cap, times what redaction tokens add ("A" -> "[REDACTED:NAME]"), plus the fields
    assert len(line.encode()) < 4 * 64 * 1024
