"""Defence in depth: PHI from a service that skipped lumen's redactor is scrubbed by the collector.

A plain OpenTelemetry SDK client (no lumen-otel) sends log records over OTLP/HTTP with TLS to the
real lumen-otelcol running collector-config/gateway.yaml; a loopback OTLP receiver standing in
for Loki records what the collector forwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumen_otel.testing import LogRecordView, OTLPReceiver
from tests.collector._sdk import plain_sdk_client
from tests.collector.conftest import Collector, StartCollector, TLSFiles, gateway_env
from tests.conftest import PHI_SAMPLES

pytestmark = [pytest.mark.collector, pytest.mark.integration]

HL7_ADT = (
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|RIS|HOSP|202607041242||ADT^A01|MSG166344|P|2.5.1\r\n"
    "PID|1||34849754^^^HOSP^MR||Roberson^James^Q||19960919|M|||146 Margaret Mountains^^Grantfort^NH^19430"
    "||(835)519-2276|||||544-11-7186\r\n"
    "NK1|1|Graves^John|SPO^Spouse||408-232-9120\r\n"
    "PV1|1|I|W^389^1||||1234^Welby^Marcus|5678^Kildare^James|9012^Casey^Ben||||||||||V100\r\n"
    "IN1|1|GOLD|IC123|Acme Health||||||||||||Graves^John|||||||||||||||||||BCB619161724\r\n"
    "OBX|1|TX|18782-3^Radiology Study observation^LN||No acute cardiopulmonary process.||||||F"
)

#: message sent -> message Loki must receive (whole values: what is kept matters as much)
BODY_CASES: dict[str, tuple[str, str]] = {
    "ssn": (
        "Social security number 059-89-3004 on intake form",
        "Social security number [REDACTED:SSN] on intake form",
    ),
    "bare_ssn": ("Intake form lists 644-10-7412 twice", "Intake form lists [REDACTED:SSN] twice"),
    "email_and_phone": (
        "Contact patient via jon16@example.com or 476-973-3122",
        "Contact patient via [REDACTED:EMAIL] or [REDACTED:PHONE]",
    ),
    "phone_shapes": (
        "Call (398) 909-6640, (746)293-3681 or +1 831 244 5295",
        "Call [REDACTED:PHONE], [REDACTED:PHONE] or [REDACTED:PHONE]",
    ),
    "labelled_mrn_and_name": (
        "Scheduling CT for patient Sarah Murphy, MRN: 97727665",
        "Scheduling CT for patient [REDACTED:NAME], MRN: [REDACTED:MRN]",
    ),
    "labelled_dob": ("Patient DOB is 02/03/1989", "Patient DOB is [REDACTED:DOB]"),
    "birth_date_and_name": (
        "Birth date 1954-02-15 does not match for patient Tammy Collins",
        "Birth date [REDACTED:DOB] does not match for patient [REDACTED:NAME]",
    ),
    "labelled_address": (
        "Patient home address: 8279 Hampton Shores, North Danastad, IL 05410",
        "Patient home address: [REDACTED:ADDRESS]",
    ),
    "street_address_and_zip": (
        "Shipping films to 42 Elm Street Apt 3, Springfield, IL 62704",
        "Shipping films to [REDACTED:ADDRESS], Springfield, IL [REDACTED:ZIP]",
    ),
    "plan_id": (
        "Health plan beneficiary number XQZ413840901 is inactive",
        "Health plan beneficiary number [REDACTED:PLAN_ID] is inactive",
    ),
    "ip_address": (
        "Remote session from IP 38.182.243.151 opened for patient portal",
        "Remote session from IP [REDACTED:IP] opened for patient portal",
    ),
    "admission_date": (
        "Admitted 2026-03-02, discharge date: 03/09/2026",
        "Admitted [REDACTED:DATE], discharge date: [REDACTED:DATE]",
    ),
    "url_identifiers": (
        "GET /api/patients/12345678/studies?view=full&patient_id=A778812 took 12 ms",
        "GET /api/patients/[REDACTED:MRN]/studies?view=full&patient_id=[REDACTED:URL] took 12 ms",
    ),
    "device_and_vehicle": (
        "Pump serial number: SN-99812-X paired; vehicle ID 1HGCM82633A004352 parked",
        "Pump serial number: [REDACTED:DEVICE] paired; vehicle ID [REDACTED:VEHICLE] parked",
    ),
    "intl_phone_card_ipv6": (
        "Relative on +44 20 7946 0958 paid with 4111 1111 1111 1111 from 2001:db8:85a3:0:0:8a2e:370:7334",
        "Relative on [REDACTED:PHONE] paid with [REDACTED:ACCOUNT] from [REDACTED:IP]",
    ),
    "hl7_segments": (
        HL7_ADT,
        "MSH|^~\\&|LUMEN_MEDIA|LUMEN|RIS|HOSP|202607041242||ADT^A01|MSG166344|P|2.5.1\r\n"
        "PID|1|[REDACTED:HL7_PID]\r\n"
        "NK1|1|[REDACTED:HL7_NK1]\r\n"
        "PV1|1|I|W^389^1||||[REDACTED:NAME]|[REDACTED:NAME]|[REDACTED:NAME]||||||||||[REDACTED:ACCOUNT]\r\n"
        "IN1|1|GOLD|IC123|Acme Health|[REDACTED:HL7_IN1]\r\n"
        "OBX|1|TX|18782-3^Radiology Study observation^LN||No acute cardiopulmonary process.||||||F",
    ),
    # Shapes the outside corpus (HL7 libraries' test messages, de-identification notes) showed.
    "hl7_z_segment": (
        "MSH|^~\\&|ZAPP|B|C|D|202604201239||ADT^A08|MSG998198|P|2.5.1\rZPI|1|Smith^John^Q|12345678^^^HOSP^MR",
        "MSH|^~\\&|ZAPP|B|C|D|202604201239||ADT^A08|MSG998198|P|2.5.1\rZPI|1|[REDACTED:HL7_Z]",
    ),
    "hl7_clinician_fields": (
        "MSH|^~\\&|OAPP|B|C|D|202604201239||ORM^O01|MSG998199|P|2.5.1\r"
        "ORC|RE|ORD1||||||||5555^Entered^Eve|6666^Verified^Vic|7777^Ordering^Oscar\r"
        "OBR|1|ORD1|ACC1|71250^CT^CPT|||20260101|||||||||8888^Order^Olivia||||||||||||||||9999&Reader&Rick",
        "MSH|^~\\&|OAPP|B|C|D|202604201239||ORM^O01|MSG998199|P|2.5.1\r"
        "ORC|RE|ORD1||||||||[REDACTED:NAME]|[REDACTED:NAME]|[REDACTED:NAME]\r"
        "OBR|1|ORD1|ACC1|71250^CT^CPT|||20260101|||||||||[REDACTED:NAME]||||||||||||||||[REDACTED:NAME]",
    ),
    "hl7_coded_text_is_no_name": (
        "MSH|^~\\&|XAPP|B|C|D|202604201239||ORU^R01|MSG998200|P|2.5.1\rOBX|1|NM|21612-7^Reported Patient Age^LN||05|mo",  # noqa: E501 - sample data
        "MSH|^~\\&|XAPP|B|C|D|202604201239||ORU^R01|MSG998200|P|2.5.1\rOBX|1|NM|21612-7^Reported Patient Age^LN||05|mo",  # noqa: E501 - sample data
    ),
    "note_signature_and_dates": (
        "Record date: 2069-04-07. Attending: YBARRA. Mike Ivan, MD, pager 84710",
        "Record date: [REDACTED:DATE]. Attending: [REDACTED:NAME]. [REDACTED:NAME], MD, pager [REDACTED:PHONE]",  # noqa: E501 - sample data
    ),
    "dotted_ssn_bare_card_world_phones": (
        "Intake: SSN 109.99.6000, paid with 4111111111111111, call +5511987654321 or 13812345678",
        "Intake: SSN [REDACTED:SSN], paid with [REDACTED:ACCOUNT], call [REDACTED:PHONE] or [REDACTED:PHONE]",
    ),
    "relatives_and_callers": (
        "Consent: guardian: Jane Doe; caller Maria Lopez asked for records for Anna Kowalski",
        "Consent: guardian: [REDACTED:NAME]; caller [REDACTED:NAME] asked for records for [REDACTED:NAME]",
    ),
    "hl7_cr_only": (
        "MSH|^~\\&|A|B|C|D|202604201239||ADT^A08|MSG998197|P|2.5.1\rPID|1||91556692^^^HOSP^MR||Arias^Alexander",
        "MSH|^~\\&|A|B|C|D|202604201239||ADT^A08|MSG998197|P|2.5.1\rPID|1|[REDACTED:HL7_PID]",
    ),
}

#: lines that carry no PHI and must arrive byte for byte
UNTOUCHED = [
    "trace_id=6ba8f8eeea59fdda6b2838e0133f5243 span_id=b2c0b0bca0e99efb exported 512 spans",
    "Request finished correlation_id=a7ecc7ee-126e-40a3-b3a7-1b0035b22427 status=200 in 894 ms",
    "Upload of 84 DICOM files took 795 ms",
    "Scheduled job started at 2026-11-26T10:41:00Z",
    "GET /api/v2/studies/1234/series 200 version 3.12.1 from pod lumen-media-5d9f7c",
    "Patient record updated by scheduler",
    "Pt on Heparin drip; Not reviewed by Attending Physician; seen by Cardiology",
    "OID 2.16.840.1.113883.19 bound to 0.0.0.0, epoch 1733600000000 ms",
]

CORRELATION_ID = "3b241101-e2bb-4255-8caf-4136c566a962"

PHI_EXTRAS: dict[str, Any] = {
    "patient_name": "Marissa Miller",
    "ssn": "644-10-7412",
    "mrn": "41767129",
    "dob": "1945-10-24",
    "email": "howepaul@example.org",
    "phone": "429-623-5934",
    "patientAddress": "8279 Hampton Shores",
    "client.address": "38.182.243.151",
    "note": "call back on 476-973-3122 or jon16@example.com",
    "status_code": 200,
    "duration_ms": 248,
    "exam_uuid": "efc46c08-039c-4862-a27e-e409289b8ba9",
    "correlation_id": CORRELATION_ID,
    "function_name": "update_exam",
    "guarantor_name": "[REDACTED:NAME]",
    "member_id": "plan_id:0123456789ab",
    "guardian": "Jane Doe",
    "card_number": "4111111111111111",
}


SERVICE = "plain-sdk-svc"


def _ours(receiver: OTLPReceiver) -> list[LogRecordView]:
    return [r for r in receiver.logs if r.resource.get("service.name") == SERVICE]


def _find(receiver: OTLPReceiver, marker: str) -> LogRecordView:
    matches = [r for r in _ours(receiver) if isinstance(r.body, str) and marker in r.body]
    assert len(matches) == 1, f"{marker!r}: {[r.body for r in receiver.logs]}"
    return matches[0]


@pytest.fixture(scope="module")
def loki_stand_in(loki_stand_in_for_module: OTLPReceiver) -> OTLPReceiver:
    return loki_stand_in_for_module


@pytest.fixture(scope="module")
def gateway(
    start_collector_for_module: StartCollector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
) -> Collector:
    """One gateway for the module: every test looks at different records."""
    return start_collector_for_module(["gateway.yaml"], gateway_env(tls_files, loki_stand_in))


@pytest.fixture(scope="module")
def sent_through_gateway(
    gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
) -> Iterator[tuple[OTLPReceiver, str]]:
    """Send every case once (inside one span), wait until Loki's stand-in has them all."""
    expected = len(BODY_CASES) + len(UNTOUCHED) + 1
    with plain_sdk_client(gateway.https_endpoint, tls_files.ca_cert, SERVICE) as client:
        with client.tracer.start_as_current_span("intake") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            for sent, _ in BODY_CASES.values():
                client.logger.warning(sent, extra={"correlation_id": CORRELATION_ID})
            for sent in UNTOUCHED:
                client.logger.info(sent)
            client.logger.error("Exam record updated", extra=PHI_EXTRAS)
        client.flush()
    assert loki_stand_in.wait_for(lambda r: len(_ours(r)) >= expected, timeout=20), gateway.output()
    yield loki_stand_in, trace_id


class TestPHIInLogBodies:
    @pytest.mark.parametrize("case", sorted(BODY_CASES))
    def test_the_collector_redacts_phi_in_message_text(
        self, sent_through_gateway: tuple[OTLPReceiver, str], case: str
    ) -> None:
        """A message with PHI arrives at Loki with the PHI replaced and everything else as sent."""
        receiver, _ = sent_through_gateway
        _, expected = BODY_CASES[case]
        assert expected == _find(receiver, expected[:14]).body

    def test_messages_without_phi_arrive_unchanged(
        self, sent_through_gateway: tuple[OTLPReceiver, str]
    ) -> None:
        """Trace ids, correlation ids, durations, versions and timestamps are not mistaken for PHI."""
        receiver, _ = sent_through_gateway
        assert UNTOUCHED == [_find(receiver, line).body for line in UNTOUCHED]

    def test_service_name_correlation_id_and_trace_ids_survive(
        self, sent_through_gateway: tuple[OTLPReceiver, str]
    ) -> None:
        """What Loki and Grafana join on is never touched by the redaction rules."""
        receiver, trace_id = sent_through_gateway
        record = _find(receiver, "Social security number")
        assert (SERVICE, CORRELATION_ID, trace_id, True) == (
            record.resource["service.name"],
            record.attributes["correlation_id"],
            record.trace_id,
            record.span_id is not None,
        )


class TestPHIInAttributes:
    def test_phi_named_attributes_are_masked_and_the_rest_kept(
        self, sent_through_gateway: tuple[OTLPReceiver, str]
    ) -> None:
        """Extras named like PHI are masked whole; PHI-shaped values are masked inside other extras.

        Values lumen's in-process redactor already replaced (``[REDACTED:KIND]``, keyed pseudonyms)
        pass as they are, so a pseudonym can still be followed across records.
        """
        receiver, trace_id = sent_through_gateway
        record = _find(receiver, "Exam record updated")
        attributes = {k: v for k, v in record.attributes.items() if not k.startswith("code.")}
        assert {
            "patient_name": "****",
            "ssn": "****",
            "mrn": "****",
            "dob": "****",
            "email": "****",
            "phone": "****",
            "patientAddress": "****",
            "client.address": "****",
            "note": "call back on **** or ****",
            "status_code": 200,
            "duration_ms": 248,
            "exam_uuid": "efc46c08-039c-4862-a27e-e409289b8ba9",
            "correlation_id": CORRELATION_ID,
            "function_name": "update_exam",
            "guarantor_name": "[REDACTED:NAME]",
            "member_id": "plan_id:0123456789ab",
            "guardian": "****",
            "card_number": "****",
        } == attributes
        assert trace_id == record.trace_id


def _phi_samples() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PHI_SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _contains(text: str, needle: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])", text) is not None


class TestSharedPHISamples:
    def test_every_shared_sample_arrives_without_its_phi_and_with_its_keep_values(
        self, gateway: Collector, tls_files: TLSFiles, loki_stand_in: OTLPReceiver
    ) -> None:
        """The project's PHI sample set (tests/data/phi-samples) through the collector alone."""
        samples = _phi_samples()
        with plain_sdk_client(gateway.https_endpoint, tls_files.ca_cert, "samples-svc") as client:
            for sample in samples:
                extra = dict(sample.get("extra") or {})
                extra["sample_id"] = sample["id"]
                client.logger.info(sample["text"], extra=extra)
            client.flush()
        assert loki_stand_in.wait_for(
            lambda r: sum("sample_id" in x.attributes for x in r.logs) >= len(samples), timeout=20
        ), gateway.output()
        by_id = {r.attributes["sample_id"]: r for r in loki_stand_in.logs if "sample_id" in r.attributes}
        leaks, lost = [], []
        for sample in samples:
            record = by_id[sample["id"]]
            values = [str(record.body)] + [str(v) for k, v in record.attributes.items() if k != "sample_id"]
            text = "\n".join(values)
            leaks += [(sample["id"], phi) for phi in sample["phi"] if _contains(text, phi)]
            lost += [(sample["id"], keep) for keep in sample["keep"] if keep not in text]
        assert ([], []) == (leaks, lost)


def test_sdk_client_module_is_plain_opentelemetry() -> None:
    """The defence-in-depth client must not import lumen_otel (else it would redact first)."""
    source = (Path(__file__).parent / "_sdk.py").read_text(encoding="utf-8")
    assert "lumen_otel" not in source


class TestKeyedPseudonyms:
    def test_with_the_keyed_overlay_phi_attributes_become_hmac_sha256_of_the_value(
        self, start_collector: StartCollector, tls_files: TLSFiles, loki_stand_in_for_module: OTLPReceiver
    ) -> None:
        """gateway-keyed.yaml: the same value always maps to the same HMAC under LUMEN_REDACTION_KEY."""
        key = "lumen-test-key-0123456789abcdef-32b"
        env = gateway_env(tls_files, loki_stand_in_for_module, LUMEN_REDACTION_KEY=key)
        collector = start_collector(["gateway.yaml", "gateway-keyed.yaml"], env)
        with plain_sdk_client(collector.https_endpoint, tls_files.ca_cert, "keyed-svc") as client:
            client.logger.warning(
                "keyed record", extra={"ssn": "644-10-7412", "note": "mrn on file, call 476-973-3122"}
            )
            client.flush()

        def keyed(r: OTLPReceiver) -> list[LogRecordView]:
            return [x for x in r.logs if x.resource.get("service.name") == "keyed-svc"]

        assert loki_stand_in_for_module.wait_for(lambda r: len(keyed(r)) == 1, timeout=20), collector.output()
        record = keyed(loki_stand_in_for_module)[0]

        def mac(value: str) -> str:
            return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

        assert {"ssn": mac("644-10-7412"), "note": f"mrn on file, call {mac('476-973-3122')}"} == {
            k: record.attributes[k] for k in ("ssn", "note")
        }
