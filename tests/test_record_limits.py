"""One record cannot hurt the application: its cost is bounded and odd extras never lose it.

A cap per field (``LUMEN_LOG_MAX_FIELD_BYTES``) still let one record carry any number of full
fields: a request body of forty 64 KiB strings, logged as an ``extra`` on the event loop, held a
uvicorn service for seconds, and a 1 MB ``extra`` key was not cut at all. The record as a whole is
now held to ``LUMEN_LOG_MAX_RECORD_BYTES`` before redaction, and keys are cut like values. A key
whose ``str()`` raises, a mapping whose ``items()`` raises, ``stack_info=True`` and NaN are written
as a user would expect: the record is kept, the stack is in the line, the line is strict JSON.
These tests check sizes, markers, counts and order, never the time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import lumen_otel
from lumen_otel._config.settings import load_settings
from lumen_otel._logging.pipeline import current_pipeline
from lumen_otel.exceptions import ConfigError
from lumen_otel.testing import OTLPReceiver
from tests.conftest import VENV_BIN, clean_env, free_port

MARKER = re.compile(r"\u2026\[truncated (\d+) bytes\]\Z")
FIELD = 1024
RECORD = 4096


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _lines(log_dir: Path) -> list[dict[str, Any]]:
    """lumen-otel's JSON lines, after a flush, parsed strictly (a bare ``NaN`` fails)."""
    pipeline = current_pipeline()
    assert pipeline is not None
    assert pipeline.flush()

    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    text = (log_dir / "unit.log").read_text(encoding="utf-8")
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def _line(log_dir: Path, message: str) -> dict[str, Any]:
    (found,) = [line for line in _lines(log_dir) if line["message"] == message]
    return found


@pytest.fixture
def limited(fresh_logging: None, tmp_path: Path) -> Path:
    """configure_logging() with a file sink, a 1 KiB field cap and a 4 KiB record budget."""
    lumen_otel.configure_logging(
        service_name="unit",
        log_dir=str(tmp_path),
        console=False,
        log_max_field_bytes=FIELD,
        log_max_record_bytes=RECORD,
    )
    return tmp_path


@pytest.fixture
def log_dir(fresh_logging: None, tmp_path: Path) -> Path:
    lumen_otel.configure_logging(service_name="unit", log_dir=str(tmp_path), console=False)
    return tmp_path


def _items(count: int) -> list[str]:
    """``count`` strings of just under the field cap, each distinct."""
    return [f"item {i} " + "word " * 190 for i in range(count)]


class TestRecordBudget:
    def test_extras_past_the_budget_are_cut_and_marked(self, limited):
        """Forty values, each under the field cap: the first ones are kept whole, the one that
        reaches the budget is cut, every later one is only its marker; the bytes kept and cut
        add up to what was logged, and the kept ones fit the budget."""
        items = _items(40)
        logging.getLogger("app").info("payload", extra={"items": items})
        written = _line(limited, "payload")["items"]
        assert len(items) == len(written)
        kept = 0
        cut_at = None
        for i, (original, value) in enumerate(zip(items, written, strict=True)):
            match = MARKER.search(value)
            if match is None:
                assert cut_at is None
                assert original == value
                kept += _size(value)
                continue
            cut_at = i if cut_at is None else cut_at
            head = value[: match.start()]
            assert original.startswith(head)
            assert _size(head) + int(match.group(1)) == _size(original)
            kept += _size(head)
            if i > cut_at:
                assert head == ""
        assert cut_at is not None and 0 < cut_at < 10
        assert kept <= RECORD

    def test_the_message_and_exception_share_the_budget(self, limited):
        """A record with a long message and a long traceback: together they stay in the budget."""
        try:
            raise ValueError("word " * 200)
        except ValueError:
            logging.getLogger("app").exception("failed " + "word " * 190, extra={"items": _items(3)})
        (line,) = [line for line in _lines(limited) if line["message"].startswith("failed")]
        texts = [
            line["message"],
            *line["items"],
            line["exception"]["message"],
            line["exception"]["stacktrace"],
        ]
        heads = [MARKER.split(text)[0] if MARKER.search(text) else text for text in texts]
        assert sum(map(_size, heads)) <= RECORD
        assert MARKER.search(line["exception"]["stacktrace"])

    def test_a_key_longer_than_the_cap_is_cut_and_marked(self, limited, tmp_path):
        """``extra={<1 MB key>: 1}``: the key in the line is cut to the field cap and marked, and
        the uncut attribute is not left on the record for the application's own handlers."""
        key = "k" * 1_000_000
        seen: list[logging.LogRecord] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append(record)

        handler = Keep()
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        try:
            logger.info("big key", extra={key: 1, "ok": 2})
        finally:
            logger.removeHandler(handler)
        line = _line(limited, "big key")
        (cut_key,) = [k for k in line if k.startswith("k")]
        match = MARKER.search(cut_key)
        assert match is not None
        assert _size(cut_key[: match.start()]) + int(match.group(1)) == len(key)
        assert line[cut_key] == 1
        assert line["ok"] == 2
        assert not hasattr(seen[0], key)

    def test_zero_turns_the_budget_off(self, fresh_logging, tmp_path):
        lumen_otel.configure_logging(
            service_name="unit",
            log_dir=str(tmp_path),
            console=False,
            log_max_field_bytes=FIELD,
            log_max_record_bytes=0,
        )
        items = _items(40)
        logging.getLogger("app").info("payload", extra={"items": items})
        assert items == _line(tmp_path, "payload")["items"]

    def test_small_records_are_untouched(self, limited):
        logging.getLogger("app").info("order %s", 7, extra={"order_id": 7, "note": "fine"})
        line = _line(limited, "order 7")
        assert (7, "fine") == (line["order_id"], line["note"])


class TestSetting:
    def test_the_default_is_256_kib(self):
        assert load_settings({}).log_max_record_bytes == 256 * 1024

    @pytest.mark.parametrize(("raw", "value"), [("0", 0), ("1024", 1024), ("1_048_576", 1048576)])
    def test_accepted(self, raw, value):
        assert load_settings({"LUMEN_LOG_MAX_RECORD_BYTES": raw}).log_max_record_bytes == value

    @pytest.mark.parametrize("raw", ["100", "-1", "256k"])
    def test_nonsense_is_refused_naming_the_variable(self, raw):
        with pytest.raises(ConfigError, match="LUMEN_LOG_MAX_RECORD_BYTES"):
            load_settings({"LUMEN_LOG_MAX_RECORD_BYTES": raw})


class _BadKey:
    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return False

    def __str__(self) -> str:
        raise RuntimeError("key str")


class _ItemsRaise(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("items boom")


class TestOddExtrasKeepTheRecord:
    def test_a_key_whose_str_raises_is_written_as_unprintable(self, log_dir):
        logging.getLogger("app").info("bad key", extra={"d": {_BadKey(): 1, "ok": 2}})
        logging.getLogger("app").info("after")
        assert {"<unprintable key>": 1, "ok": 2} == _line(log_dir, "bad key")["d"]
        assert _line(log_dir, "after")

    def test_a_mapping_whose_items_raise_is_written_as_unreadable(self, log_dir):
        logging.getLogger("app").info("bad dict", extra={"d": _ItemsRaise(a=1), "ok": 2})
        line = _line(log_dir, "bad dict")
        assert ("<unreadable dict>", 2) == (line["d"], line["ok"])

    def test_stack_info_is_in_the_line_redacted(self, log_dir):
        logging.getLogger("app").info("lookup 123-45-6789", stack_info=True)
        line = _line(log_dir, "lookup [REDACTED:SSN]")
        assert line["stack_info"].startswith("Stack (most recent call last):")
        assert "test_stack_info_is_in_the_line_redacted" in line["stack_info"]
        assert "123-45-6789" not in line["stack_info"]
        assert "[REDACTED:SSN]" in line["stack_info"]

    @pytest.mark.parametrize("big", [None, 10**400], ids=["orjson", "stdlib-fallback"])
    def test_nan_and_infinity_are_written_as_null(self, log_dir, big):
        """Strict JSON whichever encoder writes the line (a >64-bit integer takes the stdlib one)."""
        extra: dict[str, Any] = {"n": float("nan"), "i": float("inf"), "m": [float("-inf")], "big": big}
        logging.getLogger("app").info("floats", extra=extra)
        line = _line(log_dir, "floats")
        assert (None, None, [None], big) == (line["n"], line["i"], line["m"], line["big"])


# ---------------------------------------------------------------- a real service

APP = textwrap.dedent(
    """
    import json
    import logging

    from fastapi import FastAPI, Request

    app = FastAPI()
    log = logging.getLogger("app.ingest")


    @app.get("/health")
    async def health():
        return {"status": "ok"}


    @app.post("/ingest")
    async def ingest(request: Request):
        log.info("ingest", extra=json.loads(await request.body()))  # on the event loop
        return {"ok": True}
    """
)
PIECE = ("1 A St " * 9400)[:65000]
BODY = json.dumps({"items": [PIECE + str(i) for i in range(40)]})


@pytest.fixture
def ingest_service(start_service: Any, tmp_path: Path) -> Iterator[tuple[Any, str, OTLPReceiver, Path]]:
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
            PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
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
        yield service, f"http://127.0.0.1:{port}", receiver, log_dir


@pytest.mark.integration
def test_a_body_of_full_fields_logged_on_the_event_loop_is_cut_to_the_record_budget(ingest_service):
    """A real uvicorn under ``opentelemetry-instrument``: a route logs a 2.6 MB JSON body (forty
    64 KiB strings) as ``extra`` while another client asks ``/health``. Both are answered, the
    ``/health`` access line is written after the ingest record, the record holds at most the
    default 256 KiB budget (the rest of each string cut and marked) and ``lumen.log.truncated``
    counts it as ``record``."""
    service, base, receiver, log_dir = ingest_service
    assert httpx.get(f"{base}/health", timeout=30).status_code == 200
    result: dict[str, Any] = {}

    def post() -> None:
        result["response"] = httpx.post(f"{base}/ingest", content=BODY.encode(), timeout=120)

    poster = threading.Thread(target=post)
    poster.start()
    health = []
    with httpx.Client(base_url=base, timeout=120) as client:
        while poster.is_alive() and len(health) < 500:
            health.append(client.get("/health", params={"probe": str(len(health))}).status_code)
        poster.join(180)
        assert not poster.is_alive()
        health.append(client.get("/health", params={"probe": "last"}).status_code)
    assert [200] * len(health) == health
    assert result["response"].status_code == 200
    assert receiver.wait_for(lambda r: r.metric_total("lumen.log.truncated", part="record") >= 1, 20)
    service.stop()

    lines = [json.loads(line) for line in (log_dir / "ingest.log").read_text().splitlines()]
    messages = [line["message"] for line in lines]
    (ingest,) = [line for line in lines if line["message"] == "ingest"]
    assert any("probe=last" in message for message in messages[messages.index("ingest") :])
    items = ingest["items"]
    assert len(items) == 40
    markers = [MARKER.search(item) for item in items]
    assert all(markers[-30:])
    assert all(item == m.group() for item, m in zip(items[-30:], markers[-30:], strict=True) if m)
    logged = sum(len(PIECE + str(i)) for i in range(40))
    cut = sum(int(m.group(1)) for m in markers if m)
    assert logged - cut <= 256 * 1024
