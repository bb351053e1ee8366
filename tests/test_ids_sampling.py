"""UUIDv4-shaped trace ids and the sampler that reads their random 56 bits."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from lumen_otel._correlation.context import trace_id_for_correlation_id
from lumen_otel._correlation.sampling import TraceIdRatioLow56, build_sampler
from lumen_otel._correlation.trace_ids import PENDING_TRACE_ID_KEY, UuidTraceIdGenerator
from lumen_otel.exceptions import ConfigError

N = 10_000


class TestUuidTraceIdGenerator:
    def test_trace_ids_are_uuid4s(self) -> None:
        generator = UuidTraceIdGenerator()
        for _ in range(1000):
            value = uuid.UUID(int=generator.generate_trace_id())
            assert (value.version, value.variant) == (4, uuid.RFC_4122)

    def test_right_most_56_bits_are_random(self) -> None:
        generator = UuidTraceIdGenerator()
        low = [generator.generate_trace_id() & ((1 << 56) - 1) for _ in range(2000)]
        assert len(set(low)) == 2000
        # every one of the 56 bits takes both values
        for bit in range(56):
            ones = sum((v >> bit) & 1 for v in low)
            assert 800 < ones < 1200, bit

    def test_span_ids_are_random_and_valid(self) -> None:
        generator = UuidTraceIdGenerator()
        ids = {generator.generate_span_id() for _ in range(1000)}
        assert len(ids) == 1000
        assert 0 not in ids

    def test_pending_trace_id_from_the_propagator_is_used(self) -> None:
        token = otel_context.attach(otel_context.set_value(PENDING_TRACE_ID_KEY, 0x1234))
        try:
            assert UuidTraceIdGenerator().generate_trace_id() == 0x1234
        finally:
            otel_context.detach(token)
        assert UuidTraceIdGenerator().generate_trace_id() != 0x1234


class TestTheRandomTraceIdFlag:
    """W3C Trace Context level 2: a trace this service starts says its trace id is random."""

    def _started(self, **context_values: int) -> TraceFlags:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        provider = TracerProvider(id_generator=UuidTraceIdGenerator(), shutdown_on_exit=False)
        ctx = otel_context.get_current()
        for key, value in context_values.items():
            ctx = otel_context.set_value(PENDING_TRACE_ID_KEY if key == "pending" else key, value, ctx)
        token = otel_context.attach(ctx)
        try:
            with provider.get_tracer("t").start_as_current_span("GET /") as span:
                headers: dict[str, str] = {}
                TraceContextTextMapPropagator().inject(headers)
                flags = span.get_span_context().trace_flags
                assert headers["traceparent"].endswith(f"-{flags:02x}")
                return flags
        finally:
            otel_context.detach(token)

    def test_a_new_trace_sets_the_random_flag(self) -> None:
        flags = self._started()
        assert (True, True) == (flags.sampled, flags.random_trace_id)

    def test_a_trace_id_from_a_legacy_header_is_not_called_random(self) -> None:
        flags = self._started(pending=trace_id_for_correlation_id("order-4711"))
        assert (True, False) == (flags.sampled, flags.random_trace_id)


def _rate_of(sampler: TraceIdRatioBased, trace_ids: list[int]) -> float:
    kept = sum(
        sampler.should_sample(None, t, "GET /").decision is Decision.RECORD_AND_SAMPLE for t in trace_ids
    )
    return kept / len(trace_ids)


class TestSamplerReadsTheRandomBits:
    def test_quarter_of_uuid_correlation_ids_are_sampled(self) -> None:
        """OTEL_TRACES_SAMPLER_ARG=0.25 over 10,000 traces started from UUID correlation IDs."""
        sampler = build_sampler({"OTEL_TRACES_SAMPLER_ARG": "0.25"})
        ids = [trace_id_for_correlation_id(str(uuid.uuid4())) for _ in range(N)]
        kept = sum(sampler.should_sample(None, t, "GET /").decision.is_sampled() for t in ids)
        # binomial sd at n=10k, p=.25 is 0.43 %: +-2 points is > 4 sd
        assert 0.23 < kept / N < 0.27, kept / N

    def test_quarter_of_requests_with_uuid_headers_start_sampled_traces(self) -> None:
        """End to end in the SDK: extract (header -> trace id), server span, sampler decision."""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from lumen_otel._correlation.propagator import CorrelationIdPropagator

        provider = TracerProvider(
            id_generator=UuidTraceIdGenerator(), sampler=build_sampler({"OTEL_TRACES_SAMPLER_ARG": "0.25"})
        )
        tracer = provider.get_tracer("test")
        propagator = CorrelationIdPropagator("X-Correlation-ID")
        sampled = 0
        for _ in range(N):
            cid = str(uuid.uuid4())
            token = otel_context.attach(propagator.extract({"X-Correlation-ID": cid}))
            try:
                span = tracer.start_span("GET /", kind=trace.SpanKind.SERVER)
            finally:
                otel_context.detach(token)
            assert uuid.UUID(cid).int == span.get_span_context().trace_id
            sampled += span.get_span_context().trace_flags.sampled
            span.end()
        provider.shutdown()
        assert 0.23 < sampled / N < 0.27, sampled / N

    def test_quarter_of_sha256_derived_ids_are_sampled(self) -> None:
        ids = [trace_id_for_correlation_id(f"order-{i}") for i in range(N)]
        assert 0.23 < _rate_of(TraceIdRatioLow56(0.25), ids) < 0.27

    def test_stock_sdk_sampler_would_keep_none_of_them(self) -> None:
        """Why the sampler exists: the SDK's ratio sampler reads the fixed UUID variant bits."""
        ids = [uuid.uuid4().int for _ in range(2000)]
        assert _rate_of(TraceIdRatioBased(0.25), ids) == 0.0

    def test_decision_is_deterministic_per_trace_id(self) -> None:
        sampler = TraceIdRatioLow56(0.5)
        trace_id = trace_id_for_correlation_id("legacy-7")
        decisions = {sampler.should_sample(None, trace_id, "x").decision for _ in range(10)}
        assert len(decisions) == 1

    def test_parent_decision_is_followed(self) -> None:
        sampler = build_sampler({"OTEL_TRACES_SAMPLER_ARG": "0"})
        parent = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        ctx = set_span_in_context(NonRecordingSpan(parent))
        assert sampler.should_sample(ctx, 1, "x").decision == Decision.RECORD_AND_SAMPLE


class TestBuildSampler:
    def test_default_is_parent_based_always_keeping(self) -> None:
        sampler = build_sampler({})
        assert isinstance(sampler, ParentBased)
        assert "LumenTraceIdRatioBased{1.0}" in sampler.get_description()

    @pytest.mark.parametrize(
        ("name", "description"),
        [
            ("always_on", ALWAYS_ON.get_description()),
            ("always_off", ALWAYS_OFF.get_description()),
            ("parentbased_always_on", ParentBased(ALWAYS_ON).get_description()),
            ("parentbased_always_off", ParentBased(ALWAYS_OFF).get_description()),
            ("traceidratio", "LumenTraceIdRatioBased{0.1}"),
            ("PARENTBASED_TRACEIDRATIO", ParentBased(TraceIdRatioLow56(0.1)).get_description()),
        ],
    )
    def test_standard_names_are_honoured(self, name: str, description: str) -> None:
        sampler = build_sampler({"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": "0.1"})
        assert description == sampler.get_description()

    @pytest.mark.parametrize("arg", ["abc", "1.5", "-0.1", "nan", "inf"])
    def test_bad_argument_names_the_variable(self, arg: str) -> None:
        with pytest.raises(ConfigError) as info:
            build_sampler({"OTEL_TRACES_SAMPLER_ARG": arg})
        assert ("OTEL_TRACES_SAMPLER_ARG", arg) == (info.value.name, info.value.value)

    def test_unknown_sampler_names_the_variable(self) -> None:
        with pytest.raises(ConfigError) as info:
            build_sampler({"OTEL_TRACES_SAMPLER": "sometimes"})
        assert (info.value.name, info.value.value) == ("OTEL_TRACES_SAMPLER", "sometimes")
