"""Redaction gaps found by an adversarial review: HL7 after ``body=`` or without its MSH, values
hidden by URL encoding or glued to a word, and FHIR/JSON written into a log message."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import lumen_otel
from lumen_otel._redaction import Redactor

R = Redactor()

MESSAGE = (
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\r"
    "PID|1||MRN55667788^^^H^MR||Doe^Jane^Q||19800101|F|||1 Main St^^Chicago^IL^60601||3125550111\r"
    "NK1|1|Doe^John|SPO\r"
    "ZPI|1|Secret^Patient|19800101|MRN99887766"
)
PHI_IN_MESSAGE = ("MRN55667788", "Doe", "Jane", "19800101", "3125550111", "Secret", "MRN99887766")
PID_LINE = "PID|1||12345678^^^LUMEN^MR||Murphy^Sarah^J||19610304|F|||1 Main St^^Chicago^IL^60601"
MASKED_PID_LINE = (
    "PID|1||[REDACTED:MRN]^^^LUMEN^MR||[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]||[REDACTED:DOB]|F|||"
    "[REDACTED:ADDRESS]^^[REDACTED:ADDRESS]^IL^[REDACTED:ADDRESS]"
)
FHIR_PATIENT = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"},
        {"type": {"text": "MRN"}, "value": "97727665"},
    ],
    "name": [{"use": "official", "family": "Murphy", "given": ["Sarah", "Jane"]}],
    "birthDate": "1980-01-01",
}


class TestHL7WhereverItStarts:
    @pytest.mark.parametrize("prefix", ["body=", "raw=", "payload: ", "msg='"])
    def test_a_message_after_a_key_is_masked_field_by_field(self, prefix: str) -> None:
        out = R.redact_text(prefix + MESSAGE)
        assert out.startswith(prefix + "MSH|^~\\&|A|B|C|D|")
        assert [v for v in PHI_IN_MESSAGE if v in out] == []

    def test_an_identifier_alone_in_a_z_segment_field_is_masked(self) -> None:
        out = R.redact_text(MESSAGE)
        assert out.endswith("ZPI|1|[REDACTED:NAME]^[REDACTED:NAME]|[REDACTED:DATE]|[REDACTED:ID]")

    @pytest.mark.parametrize("prefix", ["", "2026-12-01 10:00:02 INFO ", "segment=", 'seg="'])
    def test_a_segment_logged_without_its_msh_is_masked(self, prefix: str) -> None:
        assert prefix + MASKED_PID_LINE == R.redact_text(prefix + PID_LINE)

    def test_segments_one_per_line_without_msh_are_all_masked(self) -> None:
        text = "INFO " + PID_LINE + "\nNK1|1|Murphy^John|SPO"
        assert "INFO " + MASKED_PID_LINE + "\nNK1|1|[REDACTED:NAME]^[REDACTED:NAME]|SPO" == R.redact_text(
            text
        )

    @pytest.mark.parametrize(
        "text",
        [
            "| PID | 123 | Murphy |",
            "|PID|1|Murphy|Sarah|",
            "ps aux | grep PID|sort|uniq|head",
            "see https://example.org/a|b|c|d",
            "status OBX|pending",
        ],
    )
    def test_pipes_in_ordinary_text_are_no_segment(self, text: str) -> None:
        assert text == R.redact_text(text)


class TestEncodedAndGluedValues:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("x=patient%20Sarah%20Murphy&y=1", "x=patient%20[REDACTED:NAME]&y=1"),
            ("q=mrn%3D55554444", "q=mrn%3D[REDACTED:MRN]"),
            ("GET /find?ssn%3A123-45-6789%26x=1", "GET /find?ssn%3A[REDACTED:SSN]%26x=1"),
            ("to=jane%40example.com", "to=[REDACTED:EMAIL]"),
            ("cpu at 100%25 for 5 min", "cpu at 100%25 for 5 min"),
        ],
    )
    def test_url_encoded_values_are_masked_in_place(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("x123-45-6789", "x[REDACTED:SSN]"),
            ("_123-45-6789_", "_[REDACTED:SSN]_"),
            ("MRN-12345", "MRN-[REDACTED:MRN]"),
            ("call (312)5550199", "call [REDACTED:PHONE]"),
        ],
    )
    def test_values_glued_to_their_neighbours_are_masked(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("patient: sarah murphy", "patient: [REDACTED:NAME]"),
            ("Full name: john smith, seen today", "Full name: [REDACTED:NAME], seen today"),
            ("patient: stable condition", "patient: stable condition"),
            ("patient: will return tomorrow", "patient: will return tomorrow"),
        ],
    )
    def test_a_lower_case_name_after_an_explicit_label_is_masked(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(
        "text",
        ["ORD-123-45-67890", "2026-12-01T10:00:00-05:00", "room-101 visit-2", "build 2026-123-45-6789"],
    )
    def test_ids_and_dates_with_hyphens_stay(self, text: str) -> None:
        assert text == R.redact_text(text)


class TestJsonInText:
    def test_a_fhir_patient_logged_as_text_loses_its_names_and_identifiers(self) -> None:
        out = R.redact_text("upstream body: " + json.dumps(FHIR_PATIENT))
        assert json.loads(out.removeprefix("upstream body: ")) == {
            "resourceType": "Patient",
            "id": "pat-1",
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "[REDACTED:SSN]"},
                {"type": {"text": "MRN"}, "value": "[REDACTED:MRN]"},
            ],
            "name": [
                {
                    "use": "official",
                    "family": "[REDACTED:NAME]",
                    "given": ["[REDACTED:NAME]", "[REDACTED:NAME]"],
                }
            ],
            "birthDate": "[REDACTED:DOB]",
        }

    def test_fhir_identifiers_in_an_extra_dict_are_masked_by_their_system(self) -> None:
        out = R.redact({"body": FHIR_PATIENT})
        assert [
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "[REDACTED:SSN]"},
            {"type": {"text": "MRN"}, "value": "[REDACTED:MRN]"},
        ] == out["body"]["identifier"]

    def test_other_identifiers_and_plain_json_keys_stay(self) -> None:
        text = '{"identifier": [{"system": "urn:x:orders", "value": "ORD-1"}], "family": "sans-serif"'
        assert text.replace('"family": "sans-serif"', '"family": "[REDACTED:NAME]"') == R.redact_text(text)
        plain = '{"service": "checkout", "status": "ok", "route": "/api/v1/items"}'
        assert plain == R.redact_text(plain)


class TestThroughTheFileSink:
    def test_hl7_after_a_key_and_encoded_values_never_reach_the_log_file(
        self, fresh_logging: None, tmp_path: Path
    ) -> None:
        lumen_otel.configure_logging(service_name="attacks", log_dir=str(tmp_path), console=False)
        log = logging.getLogger("app.attacks")
        log.info("payload=%s", MESSAGE)
        log.info(PID_LINE)
        log.info("GET /find?q=%s", "mrn%3D55554444")
        log.info("upstream body: %s", json.dumps(FHIR_PATIENT))
        lumen_otel._setup.bootstrap.current_handle().force_flush()
        written = (tmp_path / "attacks.log").read_text()
        leaked = [
            v
            for v in (
                *PHI_IN_MESSAGE,
                "12345678",
                "Murphy",
                "Sarah",
                "19610304",
                "55554444",
                "123456789",
                "97727665",
            )
            if v in written
        ]
        assert [] == leaked
        assert written.count("[REDACTED:NAME]") >= 6
