"""Every case of the project's PHI sample file through ``redact()``.

The sample file (``tests/data/phi-samples/phi_samples.jsonl``) holds
synthetic log lines, HL7 messages and ``extra`` payloads; for each, no ``phi`` substring may
survive (matched on word boundaries) and every ``keep`` substring must.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lumen_otel._redaction import Redactor, redact
from tests.conftest import PHI_SAMPLES as SAMPLES


def _load() -> list[dict[str, Any]]:
    with SAMPLES.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


CASES = _load()


def _leaks(output: str, phi: list[str]) -> list[str]:
    return [p for p in phi if re.search(r"(?<!\w)" + re.escape(p) + r"(?!\w)", output)]


def _render(case: dict[str, Any], redactor: Redactor | None = None) -> str:
    """What a sink would write: the redacted message, plus the redacted extras as JSON."""
    fn = redact if redactor is None else redactor.redact
    out = fn(case["text"])
    if case["kind"] == "extra":
        out += " " + json.dumps(fn(case["extra"]))
    return str(out)


class TestSharedSamples:
    def test_the_sample_file_is_there_and_covers_all_three_kinds(self) -> None:
        assert {"text", "hl7", "extra"} == {c["kind"] for c in CASES}
        assert len(CASES) >= 80

    @pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['kind']}" for c in CASES])
    def test_no_phi_survives_and_everything_to_keep_does(self, case: dict[str, Any]) -> None:
        output = _render(case)
        assert ([], []) == (_leaks(output, case["phi"]), [k for k in case["keep"] if k not in output])

    @pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['kind']}" for c in CASES])
    def test_keyed_pseudonyms_leak_nothing_either(self, case: dict[str, Any]) -> None:
        output = _render(case, Redactor(key="test-key-0123456789"))
        assert ([], []) == (_leaks(output, case["phi"]), [k for k in case["keep"] if k not in output])

    @pytest.mark.parametrize("case", [c for c in CASES if c["kind"] == "extra"], ids=lambda c: str(c["id"]))
    def test_extra_values_of_non_phi_keys_keep_their_type(self, case: dict[str, Any]) -> None:
        redacted = redact(case["extra"])
        assert (case["extra"]["status_code"], case["extra"]["duration_ms"], case["extra"]["exam_uuid"]) == (
            redacted["status_code"],
            redacted["duration_ms"],
            redacted["exam_uuid"],
        )

    @pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['kind']}" for c in CASES])
    def test_redacting_twice_changes_nothing_more(self, case: dict[str, Any]) -> None:
        once = redact(case["text"])
        assert once == redact(once)
