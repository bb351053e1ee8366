"""Hostile input (hypothesis): header parsing, the propagator's extract, the middleware's
response header, the redactor and the JSON formatter never raise, never let CR/LF into a
header, and never write an unescaped control character into a JSON log line."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumen_otel._correlation.context import CORRELATION_ID_KEY, parse_correlation_id
from lumen_otel._correlation.propagator import CorrelationIdPropagator
from lumen_otel._logging.enrich import Enricher
from lumen_otel._logging.formatters import record_to_dict, record_to_json
from lumen_otel._redaction import Redactor, redact
from lumen_otel.fastapi import CorrelationIdMiddleware

# A valid correlation ID (1-128 characters of A-Z a-z 0-9 . _ : + = / @ -, the first a letter or
# digit) or a canonical UUID: nothing else may come out of parsing.
VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/@-]{0,127}", re.ASCII)
#: characters a JSON line must never carry raw: C0 controls (JSON forbids them; CR/LF would forge lines)
RAW_CONTROL = re.compile(r"[\x00-\x1f]")

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F)),
    st.text(alphabet="\r\n\t\x00\x1b\x7f\x85\u2028\u2029 a-Z0{}:,;\"'\\", max_size=300),
    st.binary().map(lambda b: b.decode("latin-1")),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["a", "1", "-", "\r\n", "é", "\ud800"]), st.integers(0, 2000)
    ),
)
header_values = st.one_of(
    hostile_text, st.binary(max_size=300), st.lists(st.one_of(st.text(), st.binary()), max_size=5)
)

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), hostile_text, st.binary(max_size=50)
)
nested = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=30,
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"down": [value]}
    return value


class TestHeaderParsing:
    @FAST
    @given(header_values)
    def test_parse_never_raises_and_returns_only_valid_ids(self, raw):
        """Random text, bytes, repeated values: either None or a valid, header-safe ID."""
        result = parse_correlation_id(raw, warn=False)
        assert result is None or VALID_ID.fullmatch(result)

    @FAST
    @given(hostile_text, hostile_text)
    def test_propagator_extract_never_raises_and_keeps_only_valid_ids(self, cid, traceparent):
        context = CorrelationIdPropagator().extract({"X-Correlation-ID": cid, "traceparent": traceparent})
        value = context.get(CORRELATION_ID_KEY)
        assert isinstance(value, str) and VALID_ID.fullmatch(value)

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=400))
    def test_middleware_never_sends_a_header_with_cr_or_lf(self, raw):
        """Whatever bytes arrive in X-Correlation-ID, the response header is one clean value."""
        sent: list[dict[str, Any]] = []

        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-correlation-id", raw)]}
        asyncio.run(CorrelationIdMiddleware(app)(scope, receive, send))
        headers = sent[0]["headers"]
        values = [bytes(v) for k, v in headers if bytes(k).lower() == b"x-correlation-id"]
        assert len(values) == 1
        assert VALID_ID.fullmatch(values[0].decode("ascii"))
        assert all(b"\r" not in bytes(k) + bytes(v) and b"\n" not in bytes(k) + bytes(v) for k, v in headers)


class TestRedactorNeverRaises:
    @FAST
    @given(hostile_text)
    def test_text(self, text):
        assert isinstance(redact(text), str)

    @FAST
    @given(nested)
    def test_nested_values(self, value):
        redact(value)


def enriched(message: Any, args: Any, extra: dict[str, Any]) -> logging.LogRecord:
    record = logging.LogRecord("hostile", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    Enricher("hostile", Redactor())(record)
    return record


class TestJsonLinesCannotBeInjected:
    @FAST
    @given(hostile_text, nested, st.dictionaries(st.text(max_size=20), nested, max_size=5))
    def test_one_parseable_line_without_raw_control_characters(self, message, arg, extra):
        """Random message, %-argument and extras (keys too): exactly one JSON line, which
        parses back, and carries no raw C0 control or DEL (no forged second line)."""
        extra = {
            k: v for k, v in extra.items() if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        }
        record = enriched(message + " %s", (arg,), extra)
        line = record_to_json(record_to_dict(record))
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        text = line.decode("utf-8")[:-1]
        assert RAW_CONTROL.search(text) is None
        assert json.loads(text)["logger"] == "hostile"

    def test_deeply_nested_and_cyclic_extras_are_bounded(self):
        cyclic: dict[str, Any] = {"label": "loop"}
        cyclic["self"] = cyclic
        listed: list[Any] = [1]
        listed.append(listed)
        record = enriched("deep %s", ("x",), {"deep": deep(500), "cyclic": cyclic, "listed": listed})
        data = json.loads(record_to_json(record_to_dict(record)))
        assert {"label": "loop", "self": "[cycle]"} == data["cyclic"]
        assert [1, "[cycle]"] == data["listed"]
        assert "[nested too deep]" in json.dumps(data["deep"])

    def test_a_megabyte_binary_message_is_one_line(self):
        blob = bytes(range(256)) * 4096
        record = enriched("blob %r", (blob,), {"raw": blob})
        line = record_to_json(record_to_dict(record))
        assert line.count(b"\n") == 1 and RAW_CONTROL.search(line.decode()[:-1]) is None
