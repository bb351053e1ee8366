"""Properties of the redactor over generated inputs (hypothesis)."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lumen_otel._redaction import Redactor, hl7

R = Redactor()
K = Redactor(key="0123456789abcdef-property")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text likely to hit the rules: label words, separators, digits, HL7 delimiters, PHI-looking pieces.
PIECE_LIST = [
    "patient",
    "Patient",
    "MRN",
    "mrn=",
    "ssn",
    "DOB",
    "born",
    "name",
    "_name",
    "address",
    "home",
    "phone",
    "fax",
    "member id",
    "account #",
    "zip",
    "Dr.",
    "Mr.",
    "John",
    "Smith",
    "O'Brien",
    "Ann-Marie",
    "123-45-6789",
    "555-123-4567",
    "(555)",
    "+1",
    "1980-01-02",
    "02/03/1989",
    "10.0.0.1",
    "::1",
    "fe80::",
    "@",
    "a@b.co",
    "jon@example.com",
    "%40",
    "?",
    "&",
    "=",
    ":",
    ": ",
    '"',
    "'",
    "{",
    "}",
    "[",
    "]",
    ",",
    ";",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "|",
    "^",
    "~",
    "\\",
    "&",
    "MSH|^~\\&|",
    "PID|1||",
    "NK1|",
    "IN1|",
    "PV1|",
    "12345678",
    "1",
    "12",
    "123",
    "1234",
    "12345",
    "IL ",
    "8279 Hampton Shores",
    "Street",
    "Apt. 4",
    "[REDACTED:NAME]",
    "mrn:0123456789ab",
    "é",
    "İ",
    "ß",
    "\u2019",
    "\x00",
    "\ud7ff",
    "/patients/",
    "/Patient/",
    "fingerprint=",
]
PIECES = st.sampled_from(PIECE_LIST)
PHI_ISH = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=25).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=300), PHI_ISH)

# Clean text: letters that spell no label and no value shape, spaces and harmless punctuation,
# and the ids/timestamps/durations that must never be touched.
CLEAN_WORD = st.text(alphabet="bcfghjkquvwxyz", min_size=1, max_size=8)
NEVER = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: format(n, "032x")),
    st.integers(min_value=0, max_value=2**64 - 1).map(lambda n: format(n, "016x")),
    st.datetimes().map(lambda d: d.isoformat(timespec="seconds") + "Z"),
    st.datetimes().map(lambda d: d.isoformat(timespec="microseconds")),
    st.tuples(st.integers(0, 9999), st.sampled_from(["ms", "s", "us"])).map(lambda t: f"{t[0]} {t[1]}"),
    st.builds(lambda t, s: f"00-{t:032x}-{s:016x}-01", st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1)),
)
# ASCII text without an HL7 header: the domain of redact_text's fast path.
ASCII_TEXT = (
    st.lists(
        st.one_of(
            st.sampled_from([p for p in PIECE_LIST if p.isascii()]),
            st.text(alphabet=st.characters(max_codepoint=127), max_size=6),
        ),
        max_size=25,
    )
    .map("".join)
    .filter(lambda t: "MSH" not in t)
)
CLEAN = st.lists(
    st.one_of(CLEAN_WORD, NEVER, st.sampled_from([" ", ", ", "; ", " - ", "="])), max_size=20
).map(" ".join)


class TestProperties:
    @SETTINGS
    @given(ANY_TEXT)
    def test_never_raises_on_any_text(self, text: str) -> None:
        assert isinstance(R.redact_text(text), str)
        assert isinstance(K.redact_text(text), str)

    @SETTINGS
    @given(
        st.recursive(
            st.one_of(
                st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT, st.binary()
            ),
            lambda children: st.one_of(
                st.lists(children, max_size=4),
                st.tuples(children, children),
                st.dictionaries(st.one_of(PIECES, st.text(max_size=10)), children, max_size=4),
            ),
            max_leaves=12,
        )
    )
    def test_never_raises_on_any_structure(self, value: Any) -> None:
        R.redact(value)

    @SETTINGS
    @given(ASCII_TEXT)
    @example("call 555-123-4567 or 555-123-4568 from 10.0.0.7, ref 123-45-6789")
    @example("patient Ann Lee mrn=123 and patient Bob Roe, call 555-123-4567 or 555-123-4568")
    def test_the_fast_path_redacts_as_the_full_path_does(self, text: str) -> None:
        # redact_text's fast path resumes the scans it started; _redact_plain without hints runs
        # them whole. Same output and counts, keyed or not. (URL-encoded text and HL7 segments
        # take their own paths before either.)
        assume("%" not in text and not hl7.has_segment(text))
        for redactor in (R, K):
            fast: dict[str, int] = {}
            full: dict[str, int] = {}
            assert redactor._redact_plain(text, full) == redactor.redact_text_counted(text, fast)
            assert full == fast

    @SETTINGS
    @given(ANY_TEXT)
    def test_idempotent(self, text: str) -> None:
        once = R.redact_text(text)
        assert once == R.redact_text(once)

    @SETTINGS
    @given(ANY_TEXT)
    def test_idempotent_with_a_key(self, text: str) -> None:
        once = K.redact_text(text)
        assert once == K.redact_text(once)

    @SETTINGS
    @given(CLEAN)
    def test_a_clean_string_comes_back_unchanged_never_longer(self, text: str) -> None:
        assert text == R.redact_text(text)

    @SETTINGS
    @given(ANY_TEXT, NEVER, ANY_TEXT)
    @example("DR.", "CD613E30-D8F1-6ADF-91B7-584A2265B1F5", "")
    def test_ids_and_timestamps_embedded_anywhere_survive(self, before: str, token: str, after: str) -> None:
        # In an HL7 segment the field says what a value is: a UUID in PID-3 is the patient's id.
        assume(not hl7.has_segment(before))
        out = R.redact_text(f"{before} {token} {after}")
        assert token in out

    @SETTINGS
    @given(st.dictionaries(PIECES, ANY_TEXT, max_size=5), st.uuids())
    def test_ids_under_any_key_survive(self, extra: dict[str, str], u: uuid.UUID) -> None:
        extra = {**extra, "the_id": str(u)}
        assert str(u) == R.redact_mapping(extra)["the_id"]
