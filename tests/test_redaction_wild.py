"""Shapes real-world data showed the redactor: values repeated across a record, identifiers of
unusual shape, names without a label, look-alike characters, and nursing notes left readable."""

from __future__ import annotations

import pytest

from lumen_otel._redaction import Redactor

R = Redactor()


def r(kind: str) -> str:
    return f"[REDACTED:{kind}]"


class TestShapesSeenInTheWild:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("paid with 4111111111111111.", f"paid with {r('ACCOUNT')}."),
            ("amex 378282246310005 on file", f"amex {r('ACCOUNT')} on file"),
            ("SSN 109.99.6000 on file", f"SSN {r('SSN')} on file"),
            ("form lists 109.99.6000", f"form lists {r('SSN')}"),
            ("DOB 01/02/1960.", f"DOB {r('DOB')}."),
            ("DOB 01/02/1960. Next visit soon", f"DOB {r('DOB')}. Next visit soon"),
            ("call +55 11 98765-4321", f"call {r('PHONE')}"),
            ("call +5511987654321 now", f"call {r('PHONE')} now"),
            ("Praxis +49 30 12345678", f"Praxis {r('PHONE')}"),
            ("son on +91 98765 43210", f"son on {r('PHONE')}"),
            ("call 13812345678 now", f"call {r('PHONE')} now"),
            ("call 301 343-2822", f"call {r('PHONE')}"),
            ("seen by dr. Smith", f"seen by dr. {r('NAME')}"),
            ("DR. SMITH reviewed", f"DR. {r('NAME')} reviewed"),
            ("card 4532123412341234 declined", f"card {r('ACCOUNT')} declined"),
            ("EHMS pager 84710", f"EHMS pager {r('PHONE')}"),
            ("Record date: 2069-04-07", f"Record date: {r('DATE')}"),
            ("MR:\t8249813", f"MR:\t{r('MRN')}"),
            ("MR 8249813 D:07/20/83 T:07/21/83", f"MR {r('MRN')} D:{r('DATE')} T:{r('DATE')}"),
            ("DD: 04/07/69 DV: 04/07/69", f"DD: {r('DATE')} DV: {r('DATE')}"),
        ],
    )
    def test_the_value_is_masked(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(
        "text",
        [
            "took 1733600000000 ms",  # epoch milliseconds
            "order 4111111111111112 shipped",  # a card's shape, but no valid check digit
            "span 1234567890123456 exported",
            "version 10.2.3 deployed",
            "OID 2.16.840.1.113883.19 registered",
            "listening on 0.0.0.1 and 0.0.0.0",
        ],
    )
    def test_numbers_that_only_look_like_one_stay(self, text: str) -> None:
        assert text == R.redact_text(text)


class TestNamesWithoutALabel:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("caller Maria Lopez asked for a copy", f"caller {r('NAME')} asked for a copy"),
            ("pulled the report for John Smith today", f"pulled the report for {r('NAME')} today"),
            ("sent records for Jane Doe", f"sent records for {r('NAME')}"),
            ("spoke with Anna Bell about it", f"spoke with {r('NAME')} about it"),
            ("seen by Peter Parker in clinic", f"seen by {r('NAME')} in clinic"),
            ("Dictated by:  FILBERT BRIGHT", f"Dictated by:  {r('NAME')}"),
            ("Mike Ivan, MD, on call", f"{r('NAME')}, MD, on call"),
            ("Xzavian G. Tavares, M.D.", f"{r('NAME')}, M.D."),
            ("PCP:  Gilbert Perez", f"PCP:  {r('NAME')}"),
            ("Attending: YBARRA", f"Attending: {r('NAME')}"),
            ("MRN 12345 merged into 67890", f"MRN {r('MRN')} merged into {r('MRN')}"),
            ('guardian: "Jane Doe"', f'guardian: "{r("NAME")}"'),
            ("policy holder Al Bowman signed", f"policy holder {r('NAME')} signed"),
            ("patient J. Smith arrived", f"patient {r('NAME')} arrived"),
            ("Hi Freddy, your results are in", f"Hi {r('NAME')}, your results are in"),
            ("What is your last name? Magnusson", f"What is your last name? {r('NAME')}"),
        ],
    )
    def test_the_name_is_masked(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(
        "text",
        [
            "seen by Cardiology today",
            "report for Main Street Clinic",
            "Not reviewed by Attending Physician",
            "spoke with the family",
            "MD notified of BP",
        ],
    )
    def test_departments_and_roles_are_no_names(self, text: str) -> None:
        assert text == R.redact_text(text)


class TestNursingNotesStayReadable:
    @pytest.mark.parametrize(
        "text",
        [
            "Pt on Heparin drip, tolerating well",
            "PT C/O pain 5/10",
            "Patient Instructions given and understood",
            "Pt Denies SOB, Pt Tolerated diet",
            "pt to Radiology at 14:00",
            "Patient Education provided",
            "Dp/Pt: Dp palpable bilaterally, Pt by doppler",
            "Gen: Patient A&Ox4, thin-appearing",
            "Dear Team, the pump is back",
            'GET /patient "HTTP/1.1 200 OK"',
            'patient="HTTP/1.1 200 OK"',
        ],
    )
    def test_the_note_comes_back_unchanged(self, text: str) -> None:
        assert text == R.redact_text(text)


class TestLookAlikeCharacters:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("SSN 644\u00a010\u00a07412", f"SSN {r('SSN')}"),
            ("SSN 644\u200b-10-7412", f"SSN {r('SSN')}"),
            ("SSN \uff16\uff14\uff14-10-7412", f"SSN {r('SSN')}"),
            ("SSN 644\u201010\u20107412", f"SSN {r('SSN')}"),
            ("phone 555\u2010123\u20104567", f"phone {r('PHONE')}"),
            ("SSN 644 10 7412", f"SSN {r('SSN')}"),
        ],
    )
    def test_the_value_is_found_through_them(self, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    def test_the_text_around_keeps_its_characters(self) -> None:
        assert f"Café\u00a0menu: SSN {r('SSN')}" == R.redact_text("Café\u00a0menu: SSN 644\u201010\u20107412")


class TestValuePropagation:
    def test_a_labelled_value_is_masked_where_it_repeats_in_the_text(self) -> None:
        assert (
            f"patient {r('NAME')} arrived; {r('NAME')} called back, MRN: {r('MRN')} (ref {r('MRN')})"
            == R.redact_text("patient Sarah Murphy arrived; Murphy called back, MRN: 97727665 (ref 97727665)")
        )

    def test_a_value_under_a_phi_key_is_masked_in_the_other_values(self) -> None:
        assert {"mrn": r("MRN"), "note": f"duplicate of {r('MRN')}", "count": 2} == R.redact_mapping(
            {"mrn": "97727665", "note": "duplicate of 97727665", "count": 2}
        )

    def test_a_record_is_redacted_as_one(self) -> None:
        message, extras, (exception,) = R.redact_record(
            "merge done for Kowalski",
            {"patient_name": "Anna Kowalski", "account": "ZX99812", "step": "merge"},
            "KeyError: 'ZX99812'",
        )
        assert (f"merge done for {r('NAME')}", "merge", f"KeyError: '{r('ACCOUNT')}'") == (
            message,
            extras["step"],
            exception,
        )

    def test_short_and_common_values_do_not_wipe_the_text(self) -> None:
        assert {"patient_name": r("NAME"), "note": "Li said the TEST was fine, Y"} == R.redact_mapping(
            {"patient_name": "Li", "note": "Li said the TEST was fine, Y"}
        )


class TestRolesAndCardsAsKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "mother",
            "father",
            "guardian",
            "emergencyContact",
            "caregiver",
            "subscriber",
            "insured",
            "policy_holder",
            "physician",
            "next-of-kin",
        ],
    )
    def test_a_relative_or_role_is_a_name_key(self, key: str) -> None:
        assert {key: r("NAME")} == R.redact_mapping({key: "Jane Doe"})

    @pytest.mark.parametrize("key", ["card_number", "cc", "pan", "creditCardNumber"])
    def test_a_card_key_masks_its_number_whole(self, key: str) -> None:
        assert {key: r("ACCOUNT")} == R.redact_mapping({key: "4111111111111111"})

    @pytest.mark.parametrize("key", ["parent", "relative", "sibling"])
    def test_technical_words_stay_keys_of_no_kind(self, key: str) -> None:
        assert {key: "/var/lib/x"} == R.redact_mapping({key: "/var/lib/x"})
