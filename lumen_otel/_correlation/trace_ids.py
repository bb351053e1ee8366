"""Trace ids that are UUIDv4s, so a correlation ID and a trace id can be the same 128 bits.

A generated trace id has the UUID version (4) and variant (``10``) bits set and every other
bit random. The right-most 7 bytes (56 bits) are untouched random bits, which is what W3C
Trace Context level 2 and the OpenTelemetry probability-sampling spec call "the random part"
of a trace id, so a sampler that reads only those bits (:mod:`lumen_otel._correlation.sampling`) samples
these ids fairly. The SDK's stock ``TraceIdRatioBased`` reads the low 64 bits, which include
the fixed variant bits, and would sample UUIDv4 ids at 0 % for any ratio <= 0.5.

When :mod:`lumen_otel._correlation.propagator` has already decided the trace id of the request (derived
from an ``X-Correlation-ID`` header, see design section 4) it leaves it in the OpenTelemetry
context under :data:`PENDING_TRACE_ID_KEY`; the generator hands that id to the next root span
started in that context (the server span) instead of a random one. See the module docstring
of :mod:`lumen_otel._correlation.propagator` for why it is done this way.
"""

from __future__ import annotations

import random
import uuid

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID

__all__ = ["PENDING_TRACE_ID_KEY", "UuidTraceIdGenerator", "new_trace_id", "trace_id_to_uuid"]

#: OpenTelemetry context key: the trace id the next root span in this context must use.
PENDING_TRACE_ID_KEY = otel_context.create_key("lumen-pending-trace-id")

_VERSION_MASK = ~(0xF << 76)
_VERSION_4 = 0x4 << 76
_VARIANT_MASK = ~(0x3 << 62)
_VARIANT_RFC4122 = 0x2 << 62


class _RandomTraceId(int):
    """A trace id :func:`new_trace_id` made, so still known to be random once it is a pending id.

    The propagator leaves both kinds of pending id in the context, one derived from the caller's
    ``X-Correlation-ID`` and one freshly made; only the second earns the random-trace-id flag.
    """

    __slots__ = ()


def new_trace_id() -> int:
    """A random UUIDv4-shaped 128-bit trace id (never the invalid id 0)."""
    # random.getrandbits, like the SDK's RandomIdGenerator: trace ids are not secrets, and
    # the random module reseeds itself in forked children.
    value = random.getrandbits(128)
    return _RandomTraceId((value & _VERSION_MASK & _VARIANT_MASK) | _VERSION_4 | _VARIANT_RFC4122)


def trace_id_to_uuid(trace_id: int) -> str:
    """The trace id in canonical lower-case UUID form: the correlation ID of a request that came
    without one."""
    return str(uuid.UUID(int=trace_id))


class UuidTraceIdGenerator(IdGenerator):
    """Trace ids are UUIDv4s (or the id the propagator decided for this request); span ids random.

    Pass it to the SDK: ``TracerProvider(id_generator=UuidTraceIdGenerator(), ...)``.
    """

    def generate_span_id(self) -> int:
        span_id = random.getrandbits(64)
        while span_id == INVALID_SPAN_ID:
            span_id = random.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        pending = otel_context.get_value(PENDING_TRACE_ID_KEY)
        if isinstance(pending, int) and pending != INVALID_TRACE_ID:
            return int(pending)
        return int(new_trace_id())

    def is_trace_id_random(self) -> bool:
        """True for the trace ids made here (their right-most 56 bits are random), so the SDK sets
        the W3C random-trace-id flag (``03``/``02``) on the traces this service starts, including
        a request's pending id when it was made here rather than taken from the caller. An id
        derived from an incoming ``X-Correlation-ID`` is not random: no flag then. The SDK asks
        in the same context in which it asked for the id."""
        pending = otel_context.get_value(PENDING_TRACE_ID_KEY)
        if isinstance(pending, int) and pending != INVALID_TRACE_ID:
            return isinstance(pending, _RandomTraceId)
        return True
