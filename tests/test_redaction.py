"""The PHI redactor: what each rule catches, what it must leave alone, keys, mappings, speed bounds."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from collections import namedtuple
from typing import Any

import pytest

from lumen_otel._redaction import Redactor, get_default_redactor, redact, set_default_redactor
from tests.reliability.conftest import cpu_deadline

R = Redactor()


def r(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# (rule, input, expected): one or more positives per rule.
POSITIVE = [
    (
        "ssn value",
        "Social security number 059-89-3004 on intake form",
        f"Social security number {r('SSN')} on intake form",
    ),
    ("ssn labelled unformatted", "ssn=059893004", f"ssn={r('SSN')}"),
    ("phone dashes", "call 476-973-3122 today", f"call {r('PHONE')} today"),
    ("phone parens", "call (398) 909-6640", f"call {r('PHONE')}"),
    ("phone parens no space", "tel (746)293-3681", f"tel {r('PHONE')}"),
    ("phone +1 spaces", "or +1 831 244 5295.", f"or {r('PHONE')}."),
    ("phone dots", "or 555.123.4567", f"or {r('PHONE')}"),
    ("phone international", "Call +44 20 7946 0958 now", f"Call {r('PHONE')} now"),
    ("phone labelled unformatted", "mobile=5551234567", f"mobile={r('PHONE')}"),
    ("fax labelled", "fax: (555) 111-2222", f"fax: {r('FAX')}"),
    ("email", "Contact patient via jon16@example.com or", f"Contact patient via {r('EMAIL')} or"),
    ("email percent-encoded in a query", "email=john.doe%40example.com&x=1", f"email={r('EMAIL')}&x=1"),
    ("ipv4", "Remote session from IP 38.182.243.151 opened", f"Remote session from IP {r('IP')} opened"),
    ("ipv4 end of sentence", "from 10.1.2.3.", f"from {r('IP')}."),
    ("ipv6 compressed", "client 2001:db8::8a2e:370:7334 connected", f"client {r('IP')} connected"),
    ("ipv6 full", "peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 ok", f"peer {r('IP')} ok"),
    ("card number", "card 4111 1111 1111 1111 on file", f"card {r('ACCOUNT')} on file"),
    (
        "street address unlabelled",
        "moved to 475 Barnes Springs Apt. 250 last year",
        f"moved to {r('ADDRESS')} last year",
    ),
    (
        "address labelled",
        "Patient home address: 8279 Hampton Shores, North Danastad, IL 05410",
        f"Patient home address: {r('ADDRESS')}",
    ),
    ("address lives at", "lives at 12 Baker Street, London; ok", f"lives at {r('ADDRESS')}; ok"),
    ("address po box", "mailing address: PO Box 1234", f"mailing address: {r('ADDRESS')}"),
    ("city key", "city=Springfield", f"city={r('ADDRESS')}"),
    ("zip after state", "Springfield, IL 62704 on file", f"Springfield, IL {r('ZIP')} on file"),
    ("zip labelled", "zip code 90210", f"zip code {r('ZIP')}"),
    (
        "name after patient",
        "Scheduling CT for patient Sarah Murphy, MRN: 97727665",
        f"Scheduling CT for patient {r('NAME')}, MRN: {r('MRN')}",
    ),
    ("name after title", "reviewed by Dr. Gregory House today", f"reviewed by Dr. {r('NAME')} today"),
    ("name with apostrophe and hyphen", "Mr. John O'Brien-Smith arrived", f"Mr. {r('NAME')} arrived"),
    ("name non-ascii", "patient Ünal Özdemir was seen", f"patient {r('NAME')} was seen"),
    ("name all caps after a name label", "Patient Name: SMITH, JOHN Q", f"Patient Name: {r('NAME')}"),
    (
        "name json",
        '{"patient_name": "john smith", "note": "ok"}',
        f'{{"patient_name": "{r("NAME")}", "note": "ok"}}',
    ),
    (
        "name camelCase json",
        '{"firstName": "Ann", "lastName": "Lee"}',
        f'{{"firstName": "{r("NAME")}", "lastName": "{r("NAME")}"}}',
    ),
    ("name query", "GET /search?patient=John%20Smith&page=2", f"GET /search?patient={r('NAME')}&page=2"),
    ("next of kin", "next of kin Mary Jones notified", f"next of kin {r('NAME')} notified"),
    ("mrn prose", "MRN 12345678 merged", f"MRN {r('MRN')} merged"),
    ("mrn key=value", "patient_mrn=A12345 done", f"patient_mrn={r('MRN')} done"),
    ("mrn json number", '{"mrn": 41767129}', f'{{"mrn": {r("MRN")}}}'),
    ("medical record number", "medical record number: 00123-45", f"medical record number: {r('MRN')}"),
    ("patient id", "patient id 12345 not found", f"patient id {r('MRN')} not found"),
    ("mrn query", "GET /studies?mrn=12345678&status=ok", f"GET /studies?mrn={r('MRN')}&status=ok"),
    (
        "patient id in a url path",
        "GET /api/patients/12345678/studies",
        f"GET /api/patients/{r('MRN')}/studies",
    ),
    ("fhir patient path", "GET /fhir/Patient/a1b2c3d4", f"GET /fhir/Patient/{r('MRN')}"),
    (
        "health plan beneficiary",
        "Health plan beneficiary number XQZ413840901 is inactive",
        f"Health plan beneficiary number {r('PLAN_ID')} is inactive",
    ),
    ("member id", "member id W123456789 verified", f"member id {r('PLAN_ID')} verified"),
    ("policy number", "policy number: POL-99812;", f"policy number: {r('PLAN_ID')};"),
    ("account number", "account #998877 closed", f"account #{r('ACCOUNT')} closed"),
    ("licence", "driver's license D1234567 scanned", f"driver's license {r('LICENSE')} scanned"),
    ("vehicle vin", "VIN: 1HGCM82633A004352 logged", f"VIN: {r('VEHICLE')} logged"),
    ("licence plate", "license plate 7ABC123 seen", f"license plate {r('VEHICLE')} seen"),
    ("device serial", "device serial SN-12345X paired", f"device serial {r('DEVICE')} paired"),
    ("device mac", "MAC address 00:1A:2B:3C:4D:5E", f"MAC address {r('DEVICE')}"),
    ("device imei", "imei 490154203237518", f"imei {r('DEVICE')}"),
    ("dob slashes", "Patient DOB is 02/03/1989", f"Patient DOB is {r('DOB')}"),
    ("dob iso", "Birth date 1954-02-15 does not match", f"Birth date {r('DOB')} does not match"),
    ("dob words", "Born on March 3, 1990;", f"Born on {r('DOB')};"),
    ("dob json", '{"dateOfBirth": "1945-10-24"}', f'{{"dateOfBirth": "{r("DOB")}"}}'),
    ("admission date", "admitted on 2026-01-02 to ward 3", f"admitted on {r('DATE')} to ward 3"),
    ("discharge date", "discharged 01/05/2026", f"discharged {r('DATE')}"),
    ("death date", "died 3 Mar 2020", f"died {r('DATE')}"),
    ("biometric", "fingerprint=ab12cd34ef56 stored", f"fingerprint={r('BIOMETRIC')} stored"),
    ("photo", "photo_url=https://cdn.example.com/p/1.jpg ok", f"photo_url={r('PHOTO')} ok"),
]

# Lines that must come out unchanged: one or more near misses per rule.
NEGATIVE = [
    ("ssn-like but a date", "Scheduled for 2026-11-26"),
    ("ssn-like inside an id", "order ORD-123-45-6789X"),
    ("phone-like duration", "Upload of 84 DICOM files took 795 ms"),
    ("phone-like counts", "processed 512 spans in 3 batches of 1000 rows"),
    ("email-like decorator", "@app.get('/health') registered"),
    ("ipv4-like version", "upgraded to 2.5.1 and then 1.2.3"),
    ("ipv4-like dicom uid", "study 1.2.840.10008.5.1.4.1.1.2 stored"),
    ("ipv6-like clock", "at 10:41:00 the job ran"),
    ("ipv6-like scope", "Resolver::resolve failed"),
    ("card-like uuid", "exam efc46c08-039c-4862-a27e-e409289b8ba9 read"),
    ("address-like count", "Upload of 13 DICOM files took 311 ms"),
    ("zip-like number", "queue 12345 items"),
    ("zip after non-state", "ST 12345 set"),
    ("name after patient, lower case", "Remote session opened for patient portal"),
    ("name after patient, a label", "Patient DOB unknown"),
    ("name, a service name key", "service_name=lumen_media hostname=web-01"),
    ("title-like word", "Drive D: mounted, Prof mode off"),
    ("mrn label without a number", "MRN lookup failed"),
    ("account label without a number", "account locked for user"),
    ("policy label without a number", "policy updated"),
    ("dob label without a date", "DOB missing"),
    ("admitted with a timestamp (never redacted)", "admitted at 2026-11-26T10:41:00Z"),
    ("address label without a street", "IP address unknown; server_address=db.internal"),
    ("zip label without digits", "zip archive written"),
    ("device id that is a uuid", "device_id=efc46c08-039c-4862-a27e-e409289b8ba9"),
    ("phone label without a number", "phone verified"),
    ("path without identifier", "GET /api/patients/search?page=2"),
    ("photo label without a path", "photo uploaded"),
    ("python traceback line", 'File "/usr/lib/python3.11/site-packages/foo.py", line 42, in handler'),
    ("log prefix", "2026-11-26 10:41:00,123 INFO request done in 12 ms"),
]

# Never redacted, wherever they appear: the ids, timestamps, durations, statuses and versions that
# correlate and read the logs, even next to a PHI label.
NEVER = [
    ("uuid / correlation id", "correlation_id=a7ecc7ee-126e-40a3-b3a7-1b0035b22427"),
    ("uuid in braces, upper case", "{A7ECC7EE-126E-40A3-B3A7-1B0035B22427}"),
    ("trace id", "trace_id=6ba8f8eeea59fdda6b2838e0133f5243"),
    ("span id", "span_id=b2c0b0bca0e99efb"),
    ("traceparent", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("rfc3339 timestamp", "Scheduled job started at 2026-11-26T10:41:00Z"),
    ("timestamp with offset and micros", "at 2026-11-26T10:41:00.123456+01:00 ok"),
    ("timestamp with a space", "2026-11-26 10:41:00,123"),
    ("duration", "took 1.5s; 894 ms; 12 minutes"),
    ("http status", "status=200 status_code=404 HTTP/1.1 503"),
    ("version", "lumen-otel 0.3.1 on Python 3.11.7"),
    ("log level and logger", "WARNING lumen_otel.internal: retrying"),
    ("hl7 control id outside a message", "ack for MSG800250 sent"),
    ("mrn label followed by a uuid", "mrn=a7ecc7ee-126e-40a3-b3a7-1b0035b22427"),
    ("name label followed by a trace id", "patient_name=6ba8f8eeea59fdda6b2838e0133f5243"),
]

# The 18 HIPAA Safe Harbor identifiers, as far as text patterns can reach them.
HIPAA_18 = [
    ("1 names", "patient Jane Doe", "NAME"),
    ("2 geographic subdivisions", "address: 1 Main Street, Springfield", "ADDRESS"),
    ("3 dates related to the individual", "DOB 1980-01-02", "DOB"),
    ("4 telephone numbers", "phone 555-123-4567", "PHONE"),
    ("5 fax numbers", "fax 555-123-4568", "FAX"),
    ("6 email addresses", "jane@example.org", "EMAIL"),
    ("7 social security numbers", "123-45-6789", "SSN"),
    ("8 medical record numbers", "MRN: 7519166", "MRN"),
    ("9 health plan beneficiary numbers", "member ID MBR150405983", "PLAN_ID"),
    ("10 account numbers", "account number 99881234", "ACCOUNT"),
    ("11 certificate/license numbers", "license number D1234567", "LICENSE"),
    ("12 vehicle identifiers", "VIN 1HGCM82633A004352", "VEHICLE"),
    ("13 device identifiers", "device serial SN-12345X", "DEVICE"),
    ("14 URLs", "https://x.example/api?patient_id=12345", "MRN"),
    ("15 IP addresses", "from 203.0.113.7", "IP"),
    ("16 biometric identifiers", "voiceprint=9f8e7d6c5b4a", "BIOMETRIC"),
    ("17 full-face photographs", "face_image=/img/p/12345.png", "PHOTO"),
    ("18 other unique identifying numbers", "patient identifier PX-99812", "MRN"),
]


class TestTextRules:
    @pytest.mark.parametrize(("rule", "text", "expected"), POSITIVE, ids=[p[0] for p in POSITIVE])
    def test_each_rule_redacts_what_it_is_for(self, rule: str, text: str, expected: str) -> None:
        assert expected == R.redact_text(text)

    @pytest.mark.parametrize(("rule", "text"), NEGATIVE, ids=[n[0] for n in NEGATIVE])
    def test_each_rule_leaves_its_near_misses_alone(self, rule: str, text: str) -> None:
        assert text == R.redact_text(text)

    @pytest.mark.parametrize(("what", "text"), NEVER, ids=[n[0] for n in NEVER])
    def test_ids_timestamps_statuses_and_versions_are_never_redacted(self, what: str, text: str) -> None:
        assert text == R.redact_text(text)

    @pytest.mark.parametrize(("identifier", "text", "kind"), HIPAA_18, ids=[h[0] for h in HIPAA_18])
    def test_the_18_safe_harbor_identifiers(self, identifier: str, text: str, kind: str) -> None:
        counts: dict[str, int] = {}
        out = R.redact_text_counted(text, counts)
        assert (r(kind) in out, {kind: 1}) == (True, counts)

    def test_a_clean_line_is_returned_as_the_same_object(self) -> None:
        line = "Request finished status=200 in 894 ms"
        assert R.redact_text(line) is line

    def test_counts_add_up_per_kind(self) -> None:
        counts: dict[str, int] = {}
        R.redact_text_counted("patient Ann Lee, MRN 1234567, call 555-123-4567 or 555-123-4568", counts)
        assert {"NAME": 1, "MRN": 1, "PHONE": 2} == counts

    def test_empty_and_whitespace_text(self) -> None:
        assert ("", "  \n") == (R.redact_text(""), R.redact_text("  \n"))

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("1 (555) 123-4567", "PHONE"),
            ("1(555)123-4567", "PHONE"),
            ("1-555-123-4567", "PHONE"),
            ("1.555.123.4567", "PHONE"),
            ("1 555 123 4567", "PHONE"),
            ("1555 123 4567", "PHONE"),
            ("555.123.4567", "PHONE"),
            ("4111 1111 1111 1111", "ACCOUNT"),
            ("4111-1111-1111-1111-123", "ACCOUNT"),
            ("078-05-1120", "SSN"),
            ("10.0.0.12", "IP"),
            ("8.8.8.8", "IP"),
            ("12B Elm Road", "ADDRESS"),
            ("1600 Pennsylvania Avenue", "ADDRESS"),
        ],
    )
    def test_every_number_shaped_value_is_found_without_a_label(self, value: str, kind: str) -> None:
        """The value scan only tries its rules where a digit starts one of their shapes: each
        shape that begins with a digit must still get through, anywhere in a line."""
        for line in (f"{value}", f"see {value} today", f"x; {value}, done", f"({value})"):
            assert R.redact_text(line) == line.replace(value, r(kind)), line

    @pytest.mark.parametrize(
        "line", ["GET /a -> 200 in 1.53 ms", "retry 3 of 5 after 250 ms", "v2.1 build 20", "ZIP-less 1234"]
    )
    def test_numbers_that_start_no_value_shape_stay(self, line: str) -> None:
        assert R.redact_text(line) is line


class TestMappings:
    def test_values_are_redacted_by_key_name_whatever_their_shape(self) -> None:
        extra = {
            "patient_name": "marissa miller",
            "ssn": "644-10-7412",
            "mrn": 41767129,
            "dob": "1945-10-24",
            "email": "x@example.org",
            "phone": "(413) 806-5306",
            "patientName": "Ann",
            "guarantor_ssn": "1",
            "home_phone": "555",
            "address": {"street": "1 Main St", "country": "US"},
            "phones": ["1", "2"],
            "date_of_birth": "1945-10-24T00:00:00Z",
        }
        assert {
            "patient_name": r("NAME"),
            "ssn": r("SSN"),
            "mrn": r("MRN"),
            "dob": r("DOB"),
            "email": r("EMAIL"),
            "phone": r("PHONE"),
            "patientName": r("NAME"),
            "guarantor_ssn": r("SSN"),
            "home_phone": r("PHONE"),
            "address": {"street": r("ADDRESS"), "country": r("ADDRESS")},
            "phones": [r("PHONE"), r("PHONE")],
            "date_of_birth": r("DOB"),
        } == R.redact_mapping(extra)

    def test_other_keys_keep_their_values_and_types_but_strings_are_scanned(self) -> None:
        extra = {
            "status_code": 200,
            "duration_ms": 248.5,
            "ok": True,
            "missing": None,
            "service_name": "lumen",
            "hostname": "web-01",
            "exam_uuid": "efc46c08-039c-4862-a27e-e409289b8ba9",
            "note": "call 555-123-4567",
            "nested": {"items": [{"ssn": "123-45-6789"}, "MRN 1234567"]},
        }
        assert {
            "status_code": 200,
            "duration_ms": 248.5,
            "ok": True,
            "missing": None,
            "service_name": "lumen",
            "hostname": "web-01",
            "exam_uuid": "efc46c08-039c-4862-a27e-e409289b8ba9",
            "note": f"call {r('PHONE')}",
            "nested": {"items": [{"ssn": r("SSN")}, f"MRN {r('MRN')}"]},
        } == R.redact_mapping(extra)

    def test_phi_keys_keep_uuids_empty_values_booleans_and_our_tokens(self) -> None:
        extra = {
            "patient_id": "efc46c08-039c-4862-a27e-e409289b8ba9",
            "mrn": "",
            "ssn": None,
            "email": True,
            "name": r("NAME"),
        }
        assert extra == R.redact_mapping(extra)

    @pytest.mark.parametrize(
        ("key", "kind"),
        [
            ("patientName", "NAME"),
            ("PATIENT_SSN", "SSN"),
            ("x-mrn", "MRN"),
            ("emergency_contact_phone", "PHONE"),
            ("client.address", "IP"),
            ("mac_address", "DEVICE"),
            ("zipCode", "ZIP"),
            ("memberId", "PLAN_ID"),
            ("service_name", None),
            ("server.address", None),
            ("file_name", None),
            ("user_id", None),
            ("http.status_code", None),
            ("correlation_id", None),
        ],
    )
    def test_key_names(self, key: str, kind: str | None) -> None:
        assert kind == R.key_kind(key)

    def test_redact_walks_lists_tuples_and_named_tuples_and_leaves_other_types(self) -> None:
        Point = namedtuple("Point", "label value")
        obj = object()
        value = ["SSN 123-45-6789", ("MRN 1234567", 5), Point("p", "ssn=123456789"), b"123-45-6789", obj, 3.5]
        assert [
            f"SSN {r('SSN')}",
            (f"MRN {r('MRN')}", 5),
            Point("p", f"ssn={r('SSN')}"),
            b"123-45-6789",
            obj,
            3.5,
        ] == redact(value)

    def test_the_input_mapping_is_not_modified(self) -> None:
        extra: dict[str, Any] = {"ssn": "123-45-6789", "items": ["MRN 1234567"]}
        R.redact_mapping(extra)
        assert {"ssn": "123-45-6789", "items": ["MRN 1234567"]} == extra


class TestKeyedPseudonyms:
    KEY = "0123456789abcdef-test"

    def test_a_key_gives_kind_and_12_hex_of_hmac_sha256(self) -> None:
        digest = hmac.new(self.KEY.encode(), b"123-45-6789", hashlib.sha256).hexdigest()[:12]
        assert f"SSN ssn:{digest} on file" == Redactor(key=self.KEY).redact_text("SSN 123-45-6789 on file")

    def test_same_input_and_key_give_the_same_token_in_two_processes(self) -> None:
        code = (
            "from lumen_otel._redaction import Redactor;"
            "print(Redactor(key='0123456789abcdef-test').redact_text('patient Ann Lee, MRN 1234567'))"
        )
        env = {**os.environ, "PYTHONHASHSEED": "random"}
        outputs = {
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            ).stdout
            for _ in range(2)
        }
        assert [Redactor(key=self.KEY).redact_text("patient Ann Lee, MRN 1234567") + "\n"] == sorted(outputs)

    def test_a_different_key_gives_a_different_token(self) -> None:
        a = Redactor(key=self.KEY).redact_text("MRN 1234567")
        b = Redactor(key=self.KEY + "x").redact_text("MRN 1234567")
        assert (True, True, True) == (a != b, a.startswith("MRN mrn:"), b.startswith("MRN mrn:"))

    def test_without_a_key_there_is_no_hash_at_all(self) -> None:
        out = R.redact_text("MRN 1234567 SSN 123-45-6789")
        digest = hashlib.sha256(b"1234567").hexdigest()
        assert ("MRN [REDACTED:MRN] SSN [REDACTED:SSN]", False) == (out, digest[:12] in out)

    def test_keyed_output_is_stable_when_redacted_again(self) -> None:
        keyed = Redactor(key=self.KEY)
        once = keyed.redact_text(
            "GET /api/patients/12345678?mrn=12345678&patient=John%20Smith&dob=1980-01-02"
        )
        assert once == keyed.redact_text(once)

    def test_an_empty_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="key"):
            Redactor(key="")


class TestConfiguration:
    def test_extra_keys_redact_mapping_values_and_key_value_text(self) -> None:
        red = Redactor(extra_keys=("case_number", "Insurance-Card"))
        assert (
            {"case_number": r("CUSTOM"), "insurance_card": r("CUSTOM"), "status": "ok"},
            f"case_number={r('CUSTOM')} status=ok",
        ) == (
            red.redact_mapping({"case_number": "C-1", "insurance_card": "X", "status": "ok"}),
            red.redact_text("case_number=C-1 status=ok"),
        )

    def test_extra_patterns_redact_their_matches(self) -> None:
        red = Redactor(extra_patterns=(r"\bACC\d{4,}\b", r"secret-[a-z]+"))
        assert f"accession {r('CUSTOM')} and {r('CUSTOM')}" == red.redact_text(
            "accession ACC77823 and secret-abc"
        )

    def test_an_invalid_extra_pattern_is_a_value_error_naming_it(self) -> None:
        with pytest.raises(ValueError, match=r"invalid redaction pattern '\(unclosed'"):
            Redactor(extra_patterns=("(unclosed",))

    def test_defaults_off_keeps_only_the_custom_rules(self) -> None:
        red = Redactor(defaults=False, extra_keys=("case_number",), extra_patterns=(r"ACC\d+",))
        assert (
            "SSN 123-45-6789 ACC [REDACTED:CUSTOM]",
            {"ssn": "123-45-6789", "case_number": r("CUSTOM")},
        ) == (
            red.redact_text("SSN 123-45-6789 ACC ACC123").replace("ACC [REDACTED", "ACC [REDACTED"),
            red.redact_mapping({"ssn": "123-45-6789", "case_number": "C-1"}),
        )

    def test_extra_patterns_never_touch_uuids(self) -> None:
        red = Redactor(extra_patterns=(r"[0-9a-f]{8}-[0-9a-f]{4}",))
        text = "id efc46c08-039c-4862-a27e-e409289b8ba9"
        assert text == red.redact_text(text)

    def test_the_default_redactor_can_be_replaced(self) -> None:
        before = get_default_redactor()
        try:
            set_default_redactor(Redactor(key="0123456789abcdef-test"))
            assert redact("MRN 1234567").startswith("MRN mrn:")
        finally:
            set_default_redactor(before)
        assert "MRN [REDACTED:MRN]" == redact("MRN 1234567")


class TestFailureIsContained:
    @staticmethod
    def _break(monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(*args: object) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(Redactor, "_redact_plain", broken)

    def test_an_internal_error_withholds_the_value_instead_of_raising_or_leaking(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LUMEN_OTEL_STRICT", "0")
        self._break(monkeypatch)
        assert "[REDACTED:UNPROCESSABLE]" == Redactor().redact_text("SSN 123-45-6789")

    def test_under_the_test_suite_the_error_re_raises(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LUMEN_OTEL_STRICT", "1")
        self._break(monkeypatch)
        with pytest.raises(RuntimeError, match="boom"):
            Redactor().redact_text("SSN 123-45-6789")


class TestAdversarialInputsCannotStall:
    """A megabyte of one repeated unit is redacted within a CPU-time budget: linear patterns take
    well under a second of CPU for it; one that backtracks (quadratic or worse) takes tens of
    minutes or never ends, and is interrupted. The 10 KB -> 100 KB cost ratio is measured, not
    asserted, in benchmarks/bench_redos.py."""

    @pytest.mark.parametrize(
        "unit",
        [
            "1",
            " ",
            "@",
            ".",
            "|",
            "^",
            "1-",
            "1.",
            "a@",
            "a.",
            "MRN ",
            "patient Aa ",
            "1 Aa ",
            "ab:",
            "(1",
            "MSH|^~\\&|",
            "PID|",
            "\r",
            "name=",
            '"',
            "\u00e9",
            "+1 ",
        ],
        ids=repr,
    )
    def test_a_megabyte_is_redacted_within_the_cpu_budget(self, unit: str) -> None:
        text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
        with cpu_deadline(30.0, f"redact() of 1 MB of {unit!r}"):
            redacted = redact(text)
        assert isinstance(redacted, str)


def test_loopback_addresses_are_kept_other_addresses_are_redacted():
    """127.0.0.0/8 and ::1 name this machine, never a patient: access lines stay readable."""
    assert (
        redact("from 127.0.0.1:5000 and ::1 via 38.182.243.151")
        == "from 127.0.0.1:5000 and ::1 via [REDACTED:IP]"
    )
