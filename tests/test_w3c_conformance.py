"""W3C Trace Context level 2, rule by rule, through lumen-otel's propagators and the real SDK.

Each test plays one service hop: the headers of an incoming request are put in the carrier a
real server hands the instrumentations (an ASGI scope with one entry per header line, or a WSGI
environ in which repeated lines are joined with ``,``), extracted with the propagators
``install_propagators`` installs, a server span is started with the SDK and lumen-otel's id
generator and sampler, and the ``traceparent``/``tracestate`` of an outgoing call made inside
it are what the test looks at — what the next service would receive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from opentelemetry.trace.span import TraceState

from lumen_otel._correlation.propagator import CorrelationIdPropagator, RedactingTraceContextPropagator
from lumen_otel._correlation.sampling import build_sampler
from lumen_otel._correlation.trace_ids import UuidTraceIdGenerator

TRACE_ID = "12345678901234567890123456789012"
PARENT_ID = "1234567890123456"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
UNSAMPLED = f"00-{TRACE_ID}-{PARENT_ID}-00"
SSN = "123-45-6789"

Lines = list[tuple[str, str]]

PROPAGATOR = CompositePropagator(
    [
        RedactingTraceContextPropagator(),
        W3CBaggagePropagator(),
        CorrelationIdPropagator("X-Correlation-ID", trust_incoming_ids=True),
    ]
)
PROVIDER = TracerProvider(
    id_generator=UuidTraceIdGenerator(), sampler=build_sampler({}), shutdown_on_exit=False
)


@dataclass(frozen=True)
class Outgoing:
    """The trace-context headers of a call made while handling the request."""

    version: str
    trace_id: str
    parent_id: str
    flags: int
    tracestate: str | None

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def random(self) -> bool:
        return bool(self.flags & 0x02)


def _asgi(lines: Lines) -> tuple[object, object]:
    scope = {
        "type": "http",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in lines],
    }
    return scope, asgi_getter


def _wsgi(lines: Lines) -> tuple[object, object]:
    environ: dict[str, str] = {}
    for name, value in lines:  # as wsgiref and gunicorn build the environ
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ, wsgi_getter


SERVERS: dict[str, Callable[[Lines], tuple[object, object]]] = {"asgi": _asgi, "wsgi": _wsgi}


@pytest.fixture(params=sorted(SERVERS))
def hop(request: pytest.FixtureRequest) -> Callable[[Lines], Outgoing]:
    """Handles one request with these header lines as that kind of server would; returns what
    the outgoing call carried."""
    to_carrier = SERVERS[request.param]

    def handle(lines: Lines) -> Outgoing:
        carrier, getter = to_carrier(lines)
        token = otel_context.attach(PROPAGATOR.extract(carrier, getter=getter))
        try:
            with PROVIDER.get_tracer("w3c").start_as_current_span("POST /test", kind=SpanKind.SERVER):
                sent: dict[str, str] = {}
                PROPAGATOR.inject(sent)
        finally:
            otel_context.detach(token)
        version, trace_id, parent_id, flags = sent["traceparent"].split("-")
        return Outgoing(version, trace_id, parent_id, int(flags, 16), sent.get("tracestate"))

    return handle


def _continued(out: Outgoing) -> bool:
    return out.trace_id == TRACE_ID and out.parent_id != PARENT_ID


# ---------------------------------------------------------------- traceparent


class TestTraceparentIsContinued:
    """A valid traceparent: same trace id, this service's span as the new parent id."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(VALID, id="version-00"),
            pytest.param(f"cc-{TRACE_ID}-{PARENT_ID}-01", id="future-version-cc"),
            pytest.param(
                f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like", id="future-version-extra-fields"
            ),
            pytest.param(f"fe-{TRACE_ID}-{PARENT_ID}-01-", id="future-version-empty-extra-field"),
            pytest.param(f" {VALID}", id="leading-space"),
            pytest.param(f"\t{VALID}", id="leading-tab"),
            pytest.param(f"{VALID} \t", id="trailing-ows"),
        ],
    )
    def test_valid_traceparent_continues_the_trace(
        self, hop: Callable[[Lines], Outgoing], value: str
    ) -> None:
        out = hop([("traceparent", value)])
        assert (True, "00") == (_continued(out), out.version)

    @pytest.mark.parametrize("name", ["traceparent", "TraceParent", "TRACEPARENT"])
    def test_header_name_is_case_insensitive(self, hop: Callable[[Lines], Outgoing], name: str) -> None:
        assert _continued(hop([(name, VALID)]))


class TestInvalidTraceparentStartsANewTrace:
    """An invalid traceparent is ignored as a whole: a new trace id, and the caller's tracestate
    is not read."""

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(f"ff-{TRACE_ID}-{PARENT_ID}-01", id="version-ff-forbidden"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-01.", id="version-00-trailing-character"),
            pytest.param(
                f"00-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like", id="version-00-extra-field"
            ),
            pytest.param(
                f"cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future",
                id="future-version-flags-not-followed-by-dash",
            ),
            pytest.param(f"cc-{TRACE_ID}-{PARENT_ID}-1", id="future-version-shorter-than-55"),
            pytest.param(f"0-{TRACE_ID}-{PARENT_ID}-01", id="version-too-short"),
            pytest.param(f"000-{TRACE_ID}-{PARENT_ID}-01", id="version-too-long"),
            pytest.param(f".0-{TRACE_ID}-{PARENT_ID}-01", id="version-illegal-character"),
            pytest.param(f"0A-{TRACE_ID}-{PARENT_ID}-01", id="version-uppercase-hex"),
            pytest.param(f"00-{TRACE_ID.upper()[:-1]}A-{PARENT_ID}-01", id="trace-id-uppercase-hex"),
            pytest.param(f"00-{'0' * 32}-{PARENT_ID}-01", id="trace-id-all-zero"),
            pytest.param(f"00-{TRACE_ID}3-{PARENT_ID}-01", id="trace-id-too-long"),
            pytest.param(f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", id="trace-id-too-short"),
            pytest.param(f"00-.{TRACE_ID[1:]}-{PARENT_ID}-01", id="trace-id-illegal-character"),
            pytest.param(f"00-{TRACE_ID}-123456789012345A-01", id="parent-id-uppercase-hex"),
            pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="parent-id-all-zero"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}7-01", id="parent-id-too-long"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01", id="parent-id-too-short"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-0A", id="flags-uppercase-hex"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-001", id="flags-too-long"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-1", id="flags-too-short"),
            pytest.param(f"00-{TRACE_ID}-{PARENT_ID}-.0", id="flags-illegal-character"),
            pytest.param("", id="empty"),
        ],
    )
    def test_malformed_traceparent_is_ignored_with_its_tracestate(
        self, hop: Callable[[Lines], Outgoing], value: str
    ) -> None:
        out = hop([("traceparent", value), ("tracestate", "foo=1")])
        assert (False, None) == (out.trace_id == TRACE_ID, out.tracestate)

    @pytest.mark.parametrize(
        "second",
        [
            pytest.param(f"00-{TRACE_ID[:-1]}1-{PARENT_ID}-01", id="different-trace-ids"),
            pytest.param(VALID, id="identical-values"),
            pytest.param("", id="second-line-empty"),
        ],
    )
    def test_repeated_traceparent_header_is_invalid(
        self, hop: Callable[[Lines], Outgoing], second: str
    ) -> None:
        """traceparent is not a list: two lines (ASGI) or two values joined by the server (WSGI)
        are not two chances, and neither trace is joined."""
        out = hop([("traceparent", VALID), ("traceparent", second), ("tracestate", "foo=1")])
        assert (False, False, None) == (
            out.trace_id == TRACE_ID,
            out.trace_id == second[3:35],
            out.tracestate,
        )

    @pytest.mark.parametrize("name", ["trace-parent", "trace.parent", "trace_parent"])
    def test_other_header_names_are_not_traceparent(
        self, hop: Callable[[Lines], Outgoing], name: str
    ) -> None:
        assert hop([(name, VALID)]).trace_id != TRACE_ID


class TestTraceFlags:
    """Level 2: the random-trace-id flag is set on traces started here and copied from a parent;
    the sampled flag reflects this service's (parent-based) decision; reserved bits are zero."""

    def test_new_trace_is_sampled_with_random_trace_id_flag(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert 0x03 == hop([]).flags

    def test_trace_restarted_after_invalid_traceparent_has_random_trace_id_flag(
        self, hop: Callable[[Lines], Outgoing]
    ) -> None:
        assert 0x03 == hop([("traceparent", f"00-{'0' * 32}-{PARENT_ID}-01")]).flags

    def test_trace_id_derived_from_correlation_id_has_no_random_flag(
        self, hop: Callable[[Lines], Outgoing]
    ) -> None:
        """Its bits come from the caller's X-Correlation-ID, not from a random source."""
        assert 0x01 == hop([("X-Correlation-ID", "order-42")]).flags

    @pytest.mark.parametrize(
        ("incoming", "outgoing"),
        [
            pytest.param("00", 0x00, id="neither"),
            pytest.param("01", 0x01, id="sampled-without-random"),
            pytest.param("02", 0x02, id="random-unsampled"),
            pytest.param("03", 0x03, id="random-sampled"),
            pytest.param("ff", 0x03, id="reserved-bits-not-forwarded"),
            pytest.param("06", 0x02, id="reserved-bit-with-random"),
        ],
    )
    def test_random_flag_is_kept_from_the_parent(
        self, hop: Callable[[Lines], Outgoing], incoming: str, outgoing: int
    ) -> None:
        out = hop([("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-{incoming}")])
        assert (True, outgoing) == (_continued(out), out.flags)


# ---------------------------------------------------------------- tracestate


def _forwarded(
    hop: Callable[[Lines], Outgoing], *tracestate: str, traceparent: str = UNSAMPLED
) -> str | None:
    out = hop([("traceparent", traceparent), *(("tracestate", value) for value in tracestate)])
    assert _continued(out)  # a bad tracestate never affects traceparent
    return out.tracestate


KEY_WITHOUT_AT = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
ALL_VALUE_CHARACTERS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")


class TestTracestateIsForwarded:
    def test_members_are_forwarded_in_order(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert "foo=1,bar=2" == _forwarded(hop, "foo=1,bar=2")

    def test_several_header_lines_are_one_list_in_order(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert "foo=1,bar=2,rojo=1,congo=2,baz=3" == _forwarded(hop, "foo=1,bar=2", "rojo=1,congo=2", "baz=3")

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("foo=1 \t , \t bar=2, \t baz=3", id="ows-around-commas"),
            pytest.param(" foo=1,bar=2,baz=3\t", id="ows-at-both-ends"),
            pytest.param("foo=1,,bar=2, ,baz=3,", id="empty-members"),
        ],
    )
    def test_ows_and_empty_members_are_ignored(self, hop: Callable[[Lines], Outgoing], value: str) -> None:
        assert "foo=1,bar=2,baz=3" == _forwarded(hop, value)

    def test_empty_header_line_is_ignored(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert ("foo=1", "foo=1", None) == (
            _forwarded(hop, "foo=1", ""),
            _forwarded(hop, "", "foo=1"),
            _forwarded(hop, ""),
        )

    def test_leading_spaces_of_a_value_are_part_of_it(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert "foo=  1,bar=2" == _forwarded(hop, "foo=  1 ,bar=2")

    @pytest.mark.parametrize(
        ("lines", "forwarded"),
        [
            pytest.param(("foo=1,foo=1",), "foo=1", id="same-value-one-line"),
            pytest.param(("foo=1,bar=2,foo=3",), "foo=1,bar=2", id="different-values-one-line"),
            pytest.param(("foo=1", "foo=2"), "foo=1", id="across-header-lines"),
        ],
    )
    def test_repeated_key_keeps_its_first_value_and_the_other_members(
        self, hop: Callable[[Lines], Outgoing], lines: tuple[str, ...], forwarded: str
    ) -> None:
        assert forwarded == _forwarded(hop, *lines)

    def test_thirty_two_members_are_kept(self, hop: Callable[[Lines], Outgoing]) -> None:
        members = [f"bar{i:02d}={i:02d}" for i in range(1, 33)]
        assert ",".join(members) == _forwarded(hop, ",".join(members[:16]), ",".join(members[16:]))

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param(KEY_WITHOUT_AT, id="every-allowed-character"),
            pytest.param(KEY_WITHOUT_AT + "@a-z0-9_-*/", id="every-allowed-character-with-at"),
            pytest.param("0foo", id="starts-with-digit"),
            pytest.param("z" * 256, id="256-characters"),
            pytest.param("tenant@system", id="multi-tenant"),
            pytest.param("t" * 241 + "@" + "v" * 14, id="tenant-241-system-14"),
            pytest.param("t" * 242 + "@v", id="tenant-longer-than-241"),
            pytest.param("t@" + "v" * 15, id="system-longer-than-14"),
            pytest.param("foo@", id="ends-with-at"),
            pytest.param("foo@@bar", id="two-at-signs-together"),
            pytest.param("foo@bar@baz", id="two-at-signs-apart"),
        ],
    )
    def test_key_in_the_grammar_is_forwarded(self, hop: Callable[[Lines], Outgoing], key: str) -> None:
        assert f"foo=1,{key}=1" == _forwarded(hop, "foo=1", f"{key}=1")

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(ALL_VALUE_CHARACTERS, id="every-allowed-character"),
            pytest.param("x" * 256, id="256-characters"),
            pytest.param("a b", id="inner-space"),
        ],
    )
    def test_value_in_the_grammar_is_forwarded(self, hop: Callable[[Lines], Outgoing], value: str) -> None:
        assert f"foo={value}" == _forwarded(hop, f"foo={value}")


class TestInvalidTracestateIsDiscarded:
    """One member outside the grammar, or too many members, and the whole tracestate is dropped
    (the trace itself is continued)."""

    @pytest.mark.parametrize(
        "member",
        [
            pytest.param("@foo=1", id="key-starts-with-at"),
            pytest.param("FOO=1", id="key-uppercase"),
            pytest.param("foo.bar=1", id="key-with-dot"),
            pytest.param("foo =1", id="space-before-equals"),
            pytest.param("_foo=1", id="key-starts-with-underscore"),
            pytest.param("z" * 257 + "=1", id="key-257-characters"),
            pytest.param("=1", id="key-empty"),
            pytest.param("foo", id="no-equals-sign"),
            pytest.param("foo=", id="value-empty"),
            pytest.param("foo=bar=baz", id="value-with-equals"),
            pytest.param("foo=" + "x" * 257, id="value-257-characters"),
            pytest.param("foo=a\tb", id="value-with-tab"),
            pytest.param("foo=caf\u00e9", id="value-not-ascii"),
        ],
    )
    def test_member_outside_the_grammar_discards_the_whole_header(
        self, hop: Callable[[Lines], Outgoing], member: str
    ) -> None:
        assert _forwarded(hop, "bar=2", member) is None

    def test_thirty_three_members_discard_the_whole_header(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert _forwarded(hop, ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 34))) is None

    @pytest.mark.parametrize("name", ["trace-state", "trace.state"])
    def test_other_header_names_are_not_tracestate(self, hop: Callable[[Lines], Outgoing], name: str) -> None:
        out = hop([("traceparent", UNSAMPLED), (name, "foo=1")])
        assert out.tracestate is None

    def test_tracestate_without_traceparent_is_not_forwarded(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert hop([("tracestate", "foo=1,bar=2")]).tracestate is None


class TestTracestateCarryingPHI:
    """A member whose key or value the redactor would change is dropped; nothing is logged raw."""

    def test_member_with_phi_is_dropped_and_the_others_keep_their_order(
        self, hop: Callable[[Lines], Outgoing]
    ) -> None:
        incoming = (
            f"rojo=00f067aa0ba902b7,vendor=ssn:{SSN},foo@=1,acme=patient Sarah Murphy,congo=t61rcWkgMzE"
        )
        assert "rojo=00f067aa0ba902b7,foo@=1,congo=t61rcWkgMzE" == _forwarded(hop, incoming)

    def test_member_whose_key_names_phi_is_dropped(self, hop: Callable[[Lines], Outgoing]) -> None:
        assert "rojo=1" == _forwarded(hop, "mrn=97727665,rojo=1")

    def test_rejected_tracestate_is_not_logged_raw(
        self, hop: Callable[[Lines], Outgoing], caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.DEBUG):
            assert _forwarded(hop, f"rojo=1,bad key=ssn {SSN}") is None
        assert [] == [r.getMessage() for r in caplog.records if SSN in r.getMessage()]


# ---------------------------------------------------------------- mutating


def _extracted_state(*tracestate: str) -> TraceState:
    carrier, getter = _asgi([("traceparent", UNSAMPLED), *(("tracestate", value) for value in tracestate)])
    return trace.get_current_span(PROPAGATOR.extract(carrier, getter=getter)).get_span_context().trace_state


@pytest.fixture
def state() -> TraceState:
    return _extracted_state("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,foo@=1")


class TestMutatingTracestate:
    """What a vendor that writes its own member gets from the trace state on its spans."""

    def test_updated_member_moves_to_the_left_and_the_others_keep_their_order(
        self, state: TraceState
    ) -> None:
        assert "rojo=new,congo=t61rcWkgMzE,foo@=1" == state.update("rojo", "new").to_header()

    def test_added_member_goes_first(self, state: TraceState) -> None:
        assert (
            "lumen@acme=1,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7,foo@=1"
            == state.add("lumen@acme", "1").to_header()
        )

    def test_adding_to_thirty_two_members_removes_the_right_most(self) -> None:
        added = _extracted_state(",".join(f"k{i:02d}=v" for i in range(32))).add("new", "1")
        assert (32, "new", "k30") == (len(added), next(iter(added)), list(added)[-1])

    def test_deleted_member_leaves_the_others_in_order(self, state: TraceState) -> None:
        assert "congo=t61rcWkgMzE,foo@=1" == state.delete("rojo").to_header()

    @pytest.mark.parametrize(("key", "value"), [("@x", "1"), ("x", ""), ("x", "a=b"), ("X", "1")])
    def test_invalid_member_is_not_added(self, state: TraceState, key: str, value: str) -> None:
        assert (state, state) == (state.add(key, value), state.update(key, value))

    def test_a_vendor_member_set_in_a_span_is_forwarded_first(self) -> None:
        mutated = trace.SpanContext(
            int(TRACE_ID, 16),
            0x1111111111111111,
            is_remote=False,
            trace_flags=trace.TraceFlags(0),
            trace_state=_extracted_state("foo@=1,rojo=2").update("rojo", "3"),
        )
        sent: dict[str, str] = {}
        PROPAGATOR.inject(sent, trace.set_span_in_context(trace.NonRecordingSpan(mutated)))
        assert (f"00-{TRACE_ID}-1111111111111111-00", "rojo=3,foo@=1") == (
            sent["traceparent"],
            sent["tracestate"],
        )
