"""Unlabelled person names and places: found without a label, clinical sentences left alone."""

from __future__ import annotations

import gzip
import itertools
from importlib import resources
from pathlib import Path

import pytest

from lumen_otel._redaction.names import NameDetector, find_unlabelled


def found(text: str) -> list[tuple[str, str]]:
    return [(text[start:end], kind) for start, end, kind in find_unlabelled(text)]


def masked(text: str) -> str:
    out, pos = [], 0
    for start, end, kind in find_unlabelled(text):
        out += [text[pos:start], f"[REDACTED:{kind}]"]
        pos = end
    return "".join(out) + text[pos:]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Discussed the results with Mrs. Okonkwo-Adeyemi today", ["Okonkwo-Adeyemi"]),
        ("dr Haraldsdóttir will call back", ["Haraldsdóttir"]),
        ("Caller: Aiko Tanaka asked about the bill", ["Aiko Tanaka"]),
        ("Spoke with Maria Gonzalez, her daughter", ["Maria Gonzalez"]),
        ("Kevin O'Brien requested a copy of the chart", ["Kevin O'Brien"]),
        ("Paperwork signed by Kowalski, Nowak and Wiśniewski", ["Kowalski", "Nowak", "Wiśniewski"]),
        ("hello, my name is tomasz wójcik and I need a refill", ["tomasz wójcik"]),
        ("Interpreter booked: please call me Fatima", ["Fatima"]),
        ('"the pharmacy was closed," says Ferreira.', ["Ferreira"]),
        ("Imported record GARCIA^ELENA^M from the old system", ["GARCIA^ELENA^M"]),
        ("Ahmed: is the clinic open on Sunday?", ["Ahmed"]),
        ("Chiamaka N. Eze will bring the forms", ["Chiamaka N. Eze"]),
    ],
)
def test_names_without_a_label_are_found(text: str, names: list[str]) -> None:
    assert [value for value, kind in found(text) if kind == "NAME"] == names


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Mailing address is 221 Larkspur Avenue, Springfield", "221 Larkspur Avenue, Springfield"),
        ("Send it to 12 Rue de la Paix, Paris", "12 Rue de la Paix, Paris"),
        ("new address Hauptstraße 5, 10115 Berlin", "Hauptstraße 5, 10115 Berlin"),
        ("moved to Storgata 10, 0155 Oslo last spring", "Storgata 10, 0155 Oslo"),
        ("Lives at ul. Marszałkowska 84, Warszawa", "ul. Marszałkowska 84, Warszawa"),
        ("forward to Calle Mayor 5, Madrid", "Calle Mayor 5, Madrid"),
        ("Ship to PO Box 4471, Wellington", "PO Box 4471, Wellington"),
        ("Billing: 1420 Maple Ave, Apt 3B, Columbus OH 43215", "Columbus OH 43215"),
        ("Unit 3101 Box 1234 for the claim", "Unit 3101 Box 1234"),
        ("forwarding address: FPO AP 96601", "FPO AP 96601"),
        ("She grew up in Kumasi before moving", "Kumasi"),
        ("The family flew to Osaka on Friday", "Osaka"),
        ("Originally from Kraków, Poland", "Kraków, Poland"),
    ],
)
def test_addresses_and_places_are_found(text: str, place: str) -> None:
    assert (place, "ADDRESS") in found(text)


def test_a_letter_head_loses_its_name_and_every_line_of_its_address() -> None:
    text = "Tereza Nováková\n14 Larkspur Avenue\nApt 3\nBRNO\nCzech Republic 60200"
    out = masked(text)
    for line in ("Tereza", "Nováková", "Larkspur", "Apt 3", "BRNO", "Czech Republic", "60200"):
        assert line not in out


def test_a_note_heading_is_no_letter_head() -> None:
    text = "Chief Complaint\nChest pain since this morning\nSeen by Cardiology"
    assert find_unlabelled(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Pt on Heparin drip, titrate per protocol",
        "PT C/O SOB since this morning",
        "Patient Instructions",
        "Will follow up in 2 weeks",
        "May 2024 visit was cancelled",
        "Dr. visit scheduled for Monday",
        "Grant application submitted",
        "Rose Bengal stain negative",
        "Austin Flint murmur heard at the apex",
        "Bell palsy on the left, improving",
        "Glasgow Coma Scale 15 on arrival",
        "Transferred to ICU from ED at 0300",
        "Moved to Step Down Unit overnight",
        "Seen by Cardiology and discussed with Radiology",
        "Patient says Tylenol helps with the pain",
        "Given 2 Tylenol 500 mg at 0800",
        "Started Lasix 40 mg IV, Unit 5 of blood hung",
        "Left lower lobe consolidation on Chest X-ray",
        "Plan: Continue Metformin 500 mg BID",
        "Hepatitis B Surface Antigen negative, Vitamin B Complex given",
        "Foley catheter placed, Whipple procedure planned",
        "Message type ADT^A01 and ORU^R01 from LAB^HOSP",
        "Blood pressure 120/80, HR 72, SpO2 98 %",
        "request completed in 12 ms",
        "Returned from New Zealand last week, moved to Canada in 2019",
    ],
)
def test_clinical_sentences_are_left_alone(text: str) -> None:
    assert find_unlabelled(text) == []


def test_an_hl7_message_is_left_to_the_hl7_rules() -> None:
    message = "MSH|^~\\&|A|B|C|D|202601011200||ADT^A01|1|P|2.5\rPID|1||123||SMITH^JOHN||19700101|M"
    assert find_unlabelled(message) == []


def test_an_eponym_without_its_noun_is_a_name() -> None:
    """The eponym rule needs the noun after the name: on its own ``Austin Flint`` is a person."""
    assert found("Referred by Austin Flint yesterday") == [("Austin Flint", "NAME")]


def test_spans_are_sorted_and_do_not_overlap() -> None:
    text = "Mr. Paulsen lives at 74 Sikelianou Street, Athens, and Ms. Rossi at Via Roma 12, 00184 Roma"
    spans = find_unlabelled(text)
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert "Paulsen" not in masked(text) and "Sikelianou" not in masked(text) and "Rossi" not in masked(text)


@pytest.mark.parametrize(
    "text", ["", " ", "\x00\ud800", "^^^", "1" * 5000, "Ab " * 3000, "Mr.", "Mr. " * 500]
)
def test_odd_input_does_not_raise(text: str) -> None:
    assert isinstance(find_unlabelled(text), list)


def test_the_shipped_lists_are_lower_case_and_ordered_by_frequency() -> None:
    data = resources.files("lumen_otel._redaction").joinpath("data")
    first = gzip.decompress(data.joinpath("first_names.txt.gz").read_bytes()).decode().splitlines()
    assert first[:3] == ["james", "john", "robert"]
    assert all(name == name.lower() for name in first)
    assert NameDetector(first_names=10, surnames=10, cities=10).find("Caller: Zebulon Quist") == [
        (8, 21, "NAME")
    ]


class TestInTheRedactor:
    def test_off_by_default_on_with_the_setting_and_the_label_rules_still_run_first(
        self, fresh_logging: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``LUMEN_REDACTION_UNLABELLED_NAMES=true`` adds the detector to every sink's redaction; a
        labelled name is masked whole by the label rules, as without it."""
        import json
        import logging

        import lumen_otel
        from lumen_otel._redaction import Redactor

        line = "User: Marcus Paulsen flew to Den Haag; patient John Smith SSN 123-45-6789"
        assert "Marcus Paulsen" in Redactor().redact_text(line)
        monkeypatch.setenv("LUMEN_REDACTION_UNLABELLED_NAMES", "true")
        handle = lumen_otel.configure_logging(service_name="names", console=False, log_dir=str(tmp_path))
        logging.getLogger("app").info(line)
        handle.force_flush()
        (record,) = [json.loads(x) for x in (tmp_path / "names.log").read_text().splitlines()]
        assert (
            "User: [REDACTED:NAME] flew to [REDACTED:ADDRESS]; patient [REDACTED:NAME] SSN [REDACTED:SSN]"
        ) == record["message"]

    def test_masking_twice_changes_nothing(self) -> None:
        from lumen_otel._redaction import Redactor

        redactor = Redactor(unlabelled_names=True)
        once = redactor.redact_text("Ms. Jones flew to Den Haag with Brabec, Doyle and Gonzalez.")
        assert once == redactor.redact_text(once)
        assert "Jones" not in once and "Den Haag" not in once and "Gonzalez" not in once
