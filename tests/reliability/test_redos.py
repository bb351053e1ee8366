"""Regex denial of service: adversarial inputs against the redaction patterns stay linear.

Every pattern is exercised the way the redactor runs it, through ``redact_text``: each
adversarial seed (digit runs, name-like words, labels, URL/e-mail/IP fragments, HL7
delimiters) is repeated to 10 KB and to 100 KB, as plain text and inside the PID segment of
an HL7 message. Ten times the input may cost at most 30x the time (linear is 10x, with
room for a busy machine; a quadratic pattern shows ~100x), and 100 KB at most 1 s."""

from __future__ import annotations

import time

import pytest

from lumen_otel._redaction import Redactor

SEEDS = [
    "1",
    "a",
    "Aa ",
    "1-",
    "a1",
    "1.",
    "(1 ",
    "x/",
    "@",
    "a.",
    " ",
    "MRN: 1",
    "name: Ab ",
    "Dr. Aa ",
    "ssn=1",
    "DOB: 01/",
    "1 Main St ",
    "f:",
    "http://a/?a=1&",
    "|^",
]
HL7 = "MSH|^~\\&|APP|FAC|APP|FAC|202401011200||ADT^A01|MSG0001|P|2.5\rPID|1||{}||DOE^JOHN\r"
SIZES = (10_000, 100_000)
MAX_RATIO = 30.0
MAX_SECONDS_100K = 1.0
REDACTOR = Redactor()


def seconds(text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        REDACTOR.redact_text(text)
        best = min(best, time.perf_counter() - started)
    return best


class TestRedactionStaysLinear:
    @pytest.mark.parametrize("where", ["plain", "hl7-pid-field"])
    @pytest.mark.parametrize("seed", SEEDS)
    def test_time_per_kb_is_bounded(self, where, seed):
        small, large = ((seed * (size // len(seed) + 1))[:size] for size in SIZES)
        if where == "hl7-pid-field":
            small, large = HL7.format(small), HL7.format(large)
        # best-of: a busy machine only ever adds time
        t_small, t_large = seconds(small, 7), seconds(large, 3)
        print(
            f"\nRESULT redos {where} {seed!r}: 10 KB {t_small * 1000:.1f} ms, "
            f"100 KB {t_large * 1000:.1f} ms, ratio {t_large / max(t_small, 1e-4):.1f}"
        )
        assert t_large <= MAX_SECONDS_100K, (t_small, t_large)
        assert t_large / max(t_small, 1e-4) <= MAX_RATIO or t_large < 0.05, (t_small, t_large)
