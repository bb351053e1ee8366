"""Correlation ID validation, the ID <-> trace id mapping, and correlation_scope()."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lumen_otel._correlation import context as _correlation
from lumen_otel._correlation.context import (
    CORRELATION_ID_KEY,
    correlation_scope,
    get_correlation_id,
    parse_correlation_id,
    resolve,
    trace_id_for_correlation_id,
)
from lumen_otel._redaction import Redactor, get_default_redactor, set_default_redactor

sys.path.insert(0, str(Path(__file__).parent / "integration" / "apps"))
from corr_support import instrumenting, sdk_tracing

UUID_LOWER = "6f9619ff-8b86-4011-b42d-00c04fc964ff"


@pytest.fixture(autouse=True)
def _fresh_warning_limit() -> Iterator[None]:
    _correlation._warn.reset()
    yield
    _correlation._warn.reset()


class _FlagsSsn(Redactor):
    """A stand-in redactor that flags SSN-shaped text, to test the wiring independently."""

    def redact_text(self, text: str) -> str:
        import re

        return re.sub(r"\b\d{3}-\d{2}-\d{4}\b", "[REDACTED:SSN]", text)


@pytest.fixture
def ssn_redactor() -> Iterator[None]:
    saved = get_default_redactor()
    set_default_redactor(_FlagsSsn())
    yield
    set_default_redactor(saved)


class TestValidHeadersAreKept:
    @pytest.mark.parametrize(
        "value",
        [
            "abc",
            "A",
            "req-42",
            "svc.name:1234/x+a=b_c@x",
            "0" * 128,
            "lumen_media-7f3c",
        ],
    )
    def test_value_in_the_allowed_alphabet_is_returned_unchanged(self, value: str) -> None:
        assert value == parse_correlation_id(value)

    @pytest.mark.parametrize(
        "value",
        [
            UUID_LOWER,
            UUID_LOWER.upper(),
            "{" + UUID_LOWER.upper() + "}",
            "urn:uuid:" + UUID_LOWER,
            "URN:UUID:" + UUID_LOWER.upper(),
            "  " + UUID_LOWER + "\t",
        ],
    )
    def test_a_uuid_in_any_spelling_becomes_canonical_lower_case(self, value: str) -> None:
        assert parse_correlation_id(value) == UUID_LOWER

    def test_the_same_value_repeated_is_one_value(self) -> None:
        assert parse_correlation_id(["abc", "abc"]) == "abc"
        assert parse_correlation_id([UUID_LOWER, UUID_LOWER.upper()]) == UUID_LOWER
        assert parse_correlation_id("abc,abc") == "abc"  # how WSGI joins repeated header lines

    def test_bytes_are_accepted(self) -> None:
        assert parse_correlation_id(b"abc") == "abc"

    def test_missing_header_is_none_without_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        assert parse_correlation_id(None) is None
        assert parse_correlation_id([]) is None
        assert caplog.records == []


class TestBadHeadersAreRejected:
    @pytest.mark.parametrize(
        ("value", "why"),
        [
            ("abc\r\nSet-Cookie: x=1", "CR/LF"),
            ("abc\n", "trailing LF"),
            ("abc\x1b[31m", "ESC"),
            ("abc\x00", "NUL"),
            ("abc\x7f", "DEL"),
            ("caf\u00e9", "non-ASCII"),
            ("\u212aelvin", "Kelvin sign that IGNORECASE would fold to K"),
            ("a" * 129, "129 characters"),
            ("", "empty"),
            ("   ", "blank"),
            ("-abc", "first character not alphanumeric"),
            ("a b", "space"),
            ("a;b", "semicolon"),
            ("00000000-0000-0000-0000-000000000000", "nil UUID"),
            ("{00000000-0000-0000-0000-000000000000}", "nil UUID in braces"),
            ("{" + UUID_LOWER, "unbalanced brace"),
        ],
    )
    def test_value_is_rejected(self, value: str, why: str) -> None:
        assert parse_correlation_id(value) is None, why

    def test_two_different_values_are_rejected(self) -> None:
        assert parse_correlation_id(["abc", "def"]) is None
        assert parse_correlation_id("abc, def") is None

    def test_value_the_redactor_flags_as_phi_is_rejected(self, ssn_redactor: None) -> None:
        assert parse_correlation_id("123-45-6789") is None
        assert parse_correlation_id("order-123") == "order-123"

    @pytest.mark.parametrize("value", ["MRN97727665", "ssn123456789", "mrn_00123456", "dob-1961-03-04"])
    def test_a_label_glued_to_its_value_is_rejected(self, value: str) -> None:
        """The real redactor sees the label and the value once the ID's parts are spaced apart."""
        assert parse_correlation_id(value) is None

    @pytest.mark.parametrize("value", ["order-123", "req-5f3a9b0c1d2e", "checkout.v2.17", "job:42:retry"])
    def test_ordinary_ids_with_letters_and_digits_are_kept(self, value: str) -> None:
        assert value == parse_correlation_id(value)

    def test_uuid_is_never_sent_to_the_phi_check(self, ssn_redactor: None) -> None:
        assert parse_correlation_id(UUID_LOWER) == UUID_LOWER


class TestRejectionWarning:
    def test_warning_is_escaped_and_truncated(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, logger="lumen_otel.correlation")
        parse_correlation_id("evil\r\n\x1b[2J" + "x" * 300)
        [record] = caplog.records
        assert record.name == "lumen_otel.correlation"
        message = record.getMessage()
        assert "\r" not in message and "\n" not in message and "\x1b" not in message
        assert "'evil\\r\\n\\x1b[2J" in message
        assert "(310 characters)" in message
        assert len(message) < 250

    def test_phi_value_is_not_repeated_in_the_warning(
        self,
        ssn_redactor: None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING, logger="lumen_otel.correlation")
        parse_correlation_id("123-45-6789")
        [record] = caplog.records
        assert "123-45-6789" not in record.getMessage()
        assert "[REDACTED:SSN]" in record.getMessage()

    def test_warnings_are_rate_limited_and_count_what_was_dropped(
        self,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING, logger="lumen_otel.correlation")
        for _ in range(1000):
            parse_correlation_id("bad value")
        assert len(caplog.records) == 1
        _correlation._warn._last = -1e9  # the interval has passed
        parse_correlation_id("bad value")
        assert len(caplog.records) == 2
        assert "(999 similar warnings suppressed)" in caplog.records[1].getMessage()

    def test_warn_false_stays_silent(self, caplog: pytest.LogCaptureFixture) -> None:
        assert parse_correlation_id("bad value", warn=False) is None
        assert caplog.records == []


class TestTraceIdMapping:
    def test_uuid_maps_to_its_own_128_bits(self) -> None:
        assert uuid.UUID(UUID_LOWER).int == trace_id_for_correlation_id(UUID_LOWER)

    def test_other_value_maps_to_the_first_16_bytes_of_its_sha256(self) -> None:
        expected = int.from_bytes(hashlib.sha256(b"order-42").digest()[:16], "big")
        assert expected == trace_id_for_correlation_id("order-42")

    def test_remote_parent_and_header_keeps_both(self) -> None:
        parent = SpanContext(0xABC, 0xDEF, is_remote=True)
        assert resolve(parent, "order-42") == ("order-42", None)

    def test_remote_parent_without_header_gives_the_trace_id_as_uuid(self) -> None:
        parent = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0xDEF, is_remote=True)
        assert resolve(parent, None) == ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", None)
        assert resolve(parent, "bad value") == ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", None)

    def test_uuid_header_without_parent_gives_its_bits(self) -> None:
        assert (UUID_LOWER, uuid.UUID(UUID_LOWER).int) == resolve(None, "{" + UUID_LOWER.upper() + "}")

    def test_nothing_gives_a_new_uuid4_that_is_the_trace_id(self) -> None:
        cid, trace_id = resolve(None, None)
        assert trace_id is not None
        assert cid == str(uuid.UUID(int=trace_id))
        assert uuid.UUID(cid).version == 4
        assert uuid.UUID(cid).variant == uuid.RFC_4122


class TestGetCorrelationId:
    def test_outside_any_request_it_is_none(self) -> None:
        assert get_correlation_id() is None

    def test_reads_the_id_the_propagator_left_in_the_opentelemetry_context(self) -> None:
        token = otel_context.attach(otel_context.set_value(CORRELATION_ID_KEY, "from-extract"))
        try:
            assert get_correlation_id() == "from-extract"
        finally:
            otel_context.detach(token)
        assert get_correlation_id() is None


class TestCorrelationScope:
    def test_given_uuid_becomes_the_id_and_the_trace_id(self) -> None:
        with sdk_tracing() as exporter:
            with correlation_scope(UUID_LOWER.upper()) as cid:
                assert UUID_LOWER == cid == get_correlation_id()
                assert uuid.UUID(UUID_LOWER).int == trace.get_current_span().get_span_context().trace_id
            assert get_correlation_id() is None
            [span] = exporter.get_finished_spans()
            assert uuid.UUID(UUID_LOWER).int == span.context.trace_id
            assert span.parent is None
            assert span.attributes["correlation_id"] == UUID_LOWER

    def test_non_uuid_id_gives_the_sha256_trace_id(self) -> None:
        with sdk_tracing(), correlation_scope("nightly-export-7"):
            expected = trace_id_for_correlation_id("nightly-export-7")
            assert expected == trace.get_current_span().get_span_context().trace_id

    def test_no_id_makes_one_that_is_the_trace_id(self) -> None:
        with sdk_tracing(), correlation_scope() as cid:
            trace_id = trace.get_current_span().get_span_context().trace_id
            assert str(uuid.UUID(int=trace_id)) == cid
            assert uuid.UUID(cid).version == 4

    def test_invalid_id_is_replaced_by_a_new_one(self) -> None:
        with correlation_scope("bad\r\nvalue") as cid:
            assert uuid.UUID(cid).version == 4

    def test_inside_a_span_the_scope_starts_its_own_trace(self) -> None:
        with sdk_tracing() as exporter:
            tracer = trace.get_tracer("test")
            with tracer.start_as_current_span("outer") as outer, correlation_scope("job-1"):
                inner = trace.get_current_span().get_span_context()
                assert outer.get_span_context().trace_id != inner.trace_id
            assert len(exporter.get_finished_spans()) == 2

    def test_nested_scopes_restore_the_outer_id(self) -> None:
        with correlation_scope("outer"):
            with correlation_scope("inner"):
                assert get_correlation_id() == "inner"
            assert get_correlation_id() == "outer"

    def test_exception_leaves_no_id_behind(self) -> None:
        with pytest.raises(RuntimeError), correlation_scope("boom"):
            raise RuntimeError("x")
        assert get_correlation_id() is None

    def test_without_an_sdk_the_id_still_works(self) -> None:
        with correlation_scope("no-sdk") as cid:
            assert "no-sdk" == cid == get_correlation_id()
            assert (
                isinstance(trace.get_current_span(), NonRecordingSpan)
                or not trace.get_current_span().is_recording()
            )


class TestSpawnedWorkKeepsTheId:
    """Tasks and to_thread copy the context; threads need the threading instrumentation."""

    def test_asyncio_task_and_to_thread_keep_the_id(self) -> None:
        async def main() -> list[str | None]:
            with correlation_scope("async-job"):

                async def child() -> str | None:
                    await asyncio.sleep(0)
                    return get_correlation_id()

                task = asyncio.create_task(child())
                in_thread = await asyncio.to_thread(get_correlation_id)
                return [await task, in_thread]

        assert asyncio.run(main()) == ["async-job", "async-job"]

    def test_threads_keep_the_id_with_the_threading_instrumentation(self) -> None:
        from opentelemetry.instrumentation.threading import ThreadingInstrumentor

        seen: list[str | None] = []
        with instrumenting(ThreadingInstrumentor()), correlation_scope("threaded-job"):
            thread = threading.Thread(target=lambda: seen.append(get_correlation_id()))
            thread.start()
            thread.join()
            with ThreadPoolExecutor(2) as pool:
                seen.append(pool.submit(get_correlation_id).result())

            async def via_executor() -> str | None:
                return await asyncio.get_running_loop().run_in_executor(None, get_correlation_id)

            seen.append(asyncio.run(via_executor()))
        assert seen == ["threaded-job"] * 3

    def test_trace_flags_are_not_invented(self) -> None:
        with sdk_tracing(), correlation_scope("job-2"):
            assert trace.get_current_span().get_span_context().trace_flags == TraceFlags.SAMPLED
