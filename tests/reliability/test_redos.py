"""Regex denial of service: adversarial inputs cannot stall the redactor.

Every pattern is exercised the way the redactor runs it, through ``redact_text``: each
adversarial seed (digit runs, name-like words, labels, URL/e-mail/IP fragments, HL7
delimiters) is repeated to 1 MB, as plain text and inside the PID segment of an HL7 message.
What a user would notice is a log call that hangs its request: each redaction must finish
within a CPU-time budget (``conftest.cpu_deadline``), counted in the process's own CPU seconds so a
busy machine does not eat into it. Linear patterns take about a second of CPU per MB at
worst; one pattern that backtracks quadratically takes tens of minutes on 1 MB, and an
exponential one never finishes, so the budget separates the two by orders of magnitude.

How the cost grows from 10 KB to 100 KB (the linearity ratio) is measured, not asserted:
``benchmarks/bench_redos.py``.
"""

from __future__ import annotations

import pytest

from lumen_otel._redaction import Redactor
from tests.reliability.conftest import Stalled, cpu_deadline

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
SIZE = 1_000_000
CPU_BUDGET = 30.0  # CPU seconds for one 1 MB redaction: linear ~1 s, quadratic tens of minutes
REDACTOR = Redactor()


def hostile(seed: str, where: str) -> str:
    text = (seed * (SIZE // len(seed) + 1))[:SIZE]
    return HL7.format(text) if where == "hl7-pid-field" else text


class TestRedactionCannotStall:
    @pytest.mark.parametrize("where", ["plain", "hl7-pid-field"])
    @pytest.mark.parametrize("seed", SEEDS)
    def test_a_megabyte_of_hostile_input_is_redacted_within_the_cpu_budget(self, where, seed):
        text = hostile(seed, where)
        with cpu_deadline(CPU_BUDGET, f"redact_text of 1 MB of {seed!r} ({where})"):
            redacted = REDACTOR.redact_text(text)
        assert isinstance(redacted, str)
        assert "[REDACTED:UNPROCESSABLE]" != redacted  # redacted, not withheld after an internal error


def test_the_cpu_deadline_interrupts_a_backtracking_pattern():
    """The guard itself: a pattern with catastrophic backtracking is stopped, not waited for."""
    backtracking = Redactor(extra_patterns=(r"(\d+)+x",))
    with pytest.raises(Stalled, match=r"still running after 0\.5 CPU seconds"):
        with cpu_deadline(0.5, "a backtracking extra pattern"):
            backtracking.redact_text("1" * 40)
