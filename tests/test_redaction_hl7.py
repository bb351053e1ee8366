"""HL7 v2 messages inside log messages: identifying fields masked field by field, the rest readable."""

from __future__ import annotations

import re

import pytest

from lumen_otel._redaction import Redactor

R = Redactor()
SEPARATORS = {"CR": "\r", "LF": "\n", "CRLF": "\r\n"}

ADT_A01 = [
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|ADT|HOSP|202607041242||ADT^A01|MSG166344|P|2.5.1",
    "EVN|A01|202607041242",
    "PID|1||34849754^^^HOSP^MR~A998877^^^SSA^SS||Roberson^James^Q^Jr^Mr||19960919|M|Alias^Al|2106-3|"
    "146 Margaret Mountains^Apt 4^Grantfort^NH^19430^USA^H||(835)519-2276^PRN^PH|(835)555-0100^WPN^PH|en|M|"
    "CHR|AC99812^^^HOSP^AN|544-11-7186|D1234567^NH",
    "PD1|||Lumen Clinic^^1234|998877^Welby^Marcus^^^Dr",
    "NK1|1|Graves^John|SPO^Spouse|12 Elm Street^^Grantfort^NH^19431|408-232-9120",
    "PV1|1|I|W3^389^1^HOSP||||004777^Attend^Aaron^A|005555^Refer^Rita|006666^Consult^Carl|MED|||||||"
    "007777^Admit^Adam||VN123456|||||||||||||||||||||||||202607041242|202607081000",
    "GT1|1|G5566^^^HOSP|Graves^John||12 Elm Street^^Grantfort^NH^19431|408-232-9120||19650101|M|||511-22-3333",  # noqa: E501 - sample data
    "IN1|1|GOLD|IC123|Acme Health||||GRP42||||||||Graves^John|SPO|19650101|12 Elm Street^^Grantfort^NH^19431"
    "||||||||||||||||POL778899",
    "IN2|1|511-22-3333|||||MCR12345",
]
ADT_A40 = [  # merge: MRG carries the prior identifiers and name
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|ADT|HOSP|202607041242||ADT^A40|MSG200001|P|2.5.1",
    "PID|1||34849754^^^HOSP^MR||Roberson^James",
    "MRG|11112222^^^HOSP^MR||AC5555^^^HOSP^AN||||Roberson^Jim",
]
ORU_R01 = [
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|RIS|HOSP|202605140119||ORU^R01|MSG800250|P|2.5.1",
    "PID|1||95789548^^^HOSP^MR||Martin^Carol^Q||20000908|F|||475 Barnes Springs Apt. 250^^New Brandonmouth^AS^12818"  # noqa: E501 - sample data
    "||(746)293-3681|||||165-42-7668",
    "OBR|1|ORD7784|ACC7823|71250^CT CHEST W/O CONTRAST^CPT|||202605140100|||||||||001122^Order^Olivia",
    "OBX|1|TX|18782-3^Radiology Study observation^LN||No acute cardiopulmonary process.||||||F",
    "NTE|1||Patient John Smith tolerated the procedure well.",
]
SIU_S12 = [
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|SCHED|HOSP|202611261015||SIU^S12|MSG900001|P|2.5.1",
    "SCH|APT1001|APT1001||||ROUTINE^Routine|CT^CT scan|30|min|^^30^202612011000^202612011030||"
    "008888^Placer^Paula|555-301-2000|||009999^Filler^Fred|555-301-3000",
    "PID|1||87550420^^^HOSP^MR||Powell^William^Q||19560917|M|||53542 Kristen Canyon Suite 868^^South Kevintown^AZ^25396"  # noqa: E501 - sample data
    "||(573)671-3663",
    "RGS|1|A",
    "AIS|1|A|71250^CT CHEST W/O CONTRAST^CPT|202612011000|||30|min",
    "AIP|1|A|004777^Tech^Tina^^^^^^^^^^RT|TECH^Technologist",
]

MESSAGES = {"ADT^A01": ADT_A01, "ADT^A40": ADT_A40, "ORU^R01": ORU_R01, "SIU^S12": SIU_S12}

PHI = {
    "ADT^A01": [
        "34849754",
        "A998877",
        "Roberson",
        "James",
        "Alias",
        "19960919",
        "146 Margaret Mountains",
        "Apt 4",
        "Grantfort",
        "19430",
        "(835)519-2276",
        "(835)555-0100",
        "AC99812",
        "544-11-7186",
        "D1234567",
        "Welby",
        "Marcus",
        "Graves",
        "John",
        "12 Elm Street",
        "408-232-9120",
        "Attend",
        "Aaron",
        "Refer",
        "Rita",
        "Consult",
        "Carl",
        "Admit",
        "Adam",
        "VN123456",
        "202607081000",
        "G5566",
        "19650101",
        "511-22-3333",
        "POL778899",
        "GRP42",
        "MCR12345",
    ],
    "ADT^A40": ["34849754", "Roberson", "James", "11112222", "AC5555", "Jim"],
    "ORU^R01": [
        "95789548",
        "Martin",
        "Carol",
        "20000908",
        "475 Barnes Springs Apt. 250",
        "New Brandonmouth",
        "12818",
        "(746)293-3681",
        "165-42-7668",
        "Order",
        "Olivia",
        "John Smith",
    ],
    "SIU^S12": [
        "87550420",
        "Powell",
        "William",
        "19560917",
        "53542 Kristen Canyon Suite 868",
        "South Kevintown",
        "(573)671-3663",
        "Placer",
        "Paula",
        "555-301-2000",
        "Filler",
        "Fred",
        "555-301-3000",
        "Tech",
        "Tina",
    ],
}
KEEP = {
    "ADT^A01": [
        # MSH-7 and EVN-2 equal the admission time (PV1-44): masked there too.
        "MSH|^~\\&|LUMEN_MEDIA|LUMEN|ADT|HOSP|[REDACTED:DATE]||ADT^A01|MSG166344|P|2.5.1",
        "EVN|A01|[REDACTED:DATE]",
        "^^^HOSP^MR",
        "^^^SSA^SS",
        "|M|",
        "^NH^",
        "SPO^Spouse",
        "W3^389^1^HOSP",
        "Acme Health",
        "IC123",
        "GOLD",
        "Lumen Clinic",
    ],
    "ADT^A40": ["ADT^A40", "MSG200001", "MRG|"],
    "ORU^R01": [
        "ORU^R01",
        "MSG800250",
        "ORD7784",
        "ACC7823",
        "71250^CT CHEST W/O CONTRAST^CPT",
        "18782-3^Radiology Study observation^LN",
        "No acute cardiopulmonary process.",
        "tolerated the procedure",
    ],
    "SIU^S12": [
        "SIU^S12",
        "MSG900001",
        "APT1001",
        "ROUTINE^Routine",
        "CT^CT scan",
        "^AZ^",
        "71250^CT CHEST W/O CONTRAST^CPT",
        "TECH^Technologist",
        "RGS|1|A",
    ],
}


def _leaks(output: str, phi: list[str]) -> list[str]:
    return [p for p in phi if re.search(r"(?<!\w)" + re.escape(p) + r"(?!\w)", output)]


def _segments(message: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", message)


class TestMessages:
    @pytest.mark.parametrize("sep", SEPARATORS.values(), ids=SEPARATORS.keys())
    @pytest.mark.parametrize("name", MESSAGES)
    def test_identifying_fields_are_masked_and_the_rest_stays_readable(self, name: str, sep: str) -> None:
        message = sep.join(MESSAGES[name])
        out = R.redact_text(message)
        assert ([], []) == (_leaks(out, PHI[name]), [k for k in KEEP[name] if k not in out])

    @pytest.mark.parametrize("sep", SEPARATORS.values(), ids=SEPARATORS.keys())
    @pytest.mark.parametrize("name", MESSAGES)
    def test_structure_is_kept_segment_by_segment(self, name: str, sep: str) -> None:
        message = sep.join(MESSAGES[name])
        out = R.redact_text(message)
        shape = [(s[:3], s.count("|"), s.count("~")) for s in _segments(message)]
        assert (shape, out.count(sep)) == (
            [(s[:3], s.count("|"), s.count("~")) for s in _segments(out)],
            message.count(sep),
        )

    def test_pid_fields_one_by_one(self) -> None:
        out = _segments(R.redact_text("\r".join(ADT_A01)))[2].split("|")
        assert [
            "PID",
            "1",
            "",
            "[REDACTED:MRN]^^^HOSP^MR~[REDACTED:MRN]^^^SSA^SS",
            "",
            "[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]",
            "",
            "[REDACTED:DOB]",
            "M",
            "[REDACTED:NAME]^[REDACTED:NAME]",
            "2106-3",
            "[REDACTED:ADDRESS]^[REDACTED:ADDRESS]^[REDACTED:ADDRESS]^NH^[REDACTED:ADDRESS]^USA^H",
            "",
            "[REDACTED:PHONE]^PRN^PH",
            "[REDACTED:PHONE]^WPN^PH",
            "en",
            "M",
            "CHR",
            "[REDACTED:ACCOUNT]^^^HOSP^AN",
            "[REDACTED:SSN]",
            "[REDACTED:LICENSE]^NH",
        ] == out

    def test_doctors_in_pv1_lose_their_names_and_their_id_numbers(self) -> None:
        pv1 = _segments(R.redact_text("\r".join(ADT_A01)))[5].split("|")
        assert (
            [
                "[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]",
                "[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]",
                "[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]",
                "[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]",
            ],
            "[REDACTED:ACCOUNT]",
            "[REDACTED:DATE]",
        ) == ([pv1[7], pv1[8], pv1[9], pv1[17]], pv1[19], pv1[45])

    def test_a_message_inside_a_log_line_with_text_around_it(self) -> None:
        line = "Received " + "\r".join(ORU_R01[:2]) + "\nfor patient Carol Martin, reply sent to 10.0.0.7"
        out = R.redact_text(line)
        assert (True, True, [], True) == (
            out.startswith("Received MSH|^~\\&|LUMEN_MEDIA|"),
            out.endswith("\nfor patient [REDACTED:NAME], reply sent to [REDACTED:IP]"),
            _leaks(out, ["95789548", "Martin", "Carol"]),
            "ORU^R01|MSG800250" in out,
        )

    def test_two_messages_in_one_text(self) -> None:
        text = "\r".join(ADT_A40) + "\n" + "\r".join(ORU_R01)
        out = R.redact_text(text)
        assert ([], ["MSG200001", "MSG800250"]) == (
            _leaks(out, PHI["ADT^A40"] + PHI["ORU^R01"]),
            [c for c in ("MSG200001", "MSG800250") if c in out],
        )


class TestDelimitersAndEscapes:
    def test_separators_are_read_from_msh_1_and_msh_2(self) -> None:
        message = "MSH#$~\\&#APP#FAC#RCV#HOSP#2026##ADT$A01#MSG1#P#2.5\rPID#1##123456$$$HOSP$MR##Doe$Jane"
        assert (
            "MSH#$~\\&#APP#FAC#RCV#HOSP#2026##ADT$A01#MSG1#P#2.5\rPID#1##[REDACTED:MRN]$$$HOSP$MR##"
            "[REDACTED:NAME]$[REDACTED:NAME]" == R.redact_text(message)
        )

    def test_escaped_separators_stay_inside_their_component(self) -> None:
        message = "MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|1||123456||O\\T\\Brien^Mary\\S\\Ann|||"
        assert (
            "MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|1||[REDACTED:MRN]||[REDACTED:NAME]^[REDACTED:NAME]|||"
            == R.redact_text(message)
        )

    def test_pseudonyms_hash_the_unescaped_value(self) -> None:
        keyed = Redactor(key="0123456789abcdef-test")
        escaped = keyed.redact_text("MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|1||||Smith\\T\\Jones")
        assert keyed.token("NAME", "Smith&Jones") in escaped

    def test_a_replacement_containing_a_separator_is_escaped(self) -> None:
        message = "MSH:^~\\&:A:B:C:D:2026::ADT^A01:M1:P:2.5\rPID:1::123456"
        out = R.redact_text(message)
        assert "PID:1::[REDACTED\\F\\MRN]" == _segments(out)[1]


class TestMalformed:
    @pytest.mark.parametrize(
        "text",
        [
            "MSH",
            "MSH|",
            "MSH|^~\\&",
            "MSH|^~\\&|LUMEN",
            "MSH|^^^^|A|B",  # repeated encoding characters: not a header
            "MSHA|^~\\&|x",
            "MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID",
            "MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|",
            "MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|1||123",
            "MSH|^~\\&|A\rnot a segment SSN 123-45-6789",
            "xMSH|^~\\&|A|B SSN 123-45-6789",
            "MSH|^~\\&|" + "|" * 5000,
            "MSH|^~\\&|\r" + "PID|" * 2000,
        ],
    )
    def test_malformed_or_truncated_hl7_never_raises_and_falls_back_to_text_rules(self, text: str) -> None:
        out = R.redact_text(text)
        assert ("123-45-6789" in out, isinstance(out, str)) == (False, True)

    def test_truncated_pid_masks_what_is_there(self) -> None:
        out = R.redact_text("MSH|^~\\&|A|B|C|D|2026||ADT^A01|M1|P|2.5\rPID|1||95789548^^^HOSP^MR||Martin^Ca")
        assert out.endswith("PID|1||[REDACTED:MRN]^^^HOSP^MR||[REDACTED:NAME]^[REDACTED:NAME]")

    def test_a_non_hl7_text_mentioning_msh_uses_the_text_rules(self) -> None:
        assert "MSH segment missing for patient [REDACTED:NAME]" == R.redact_text(
            "MSH segment missing for patient Ann Lee"
        )


MSH = "MSH|^~\\&|APP|FAC|RCV|HOSP|20260101120000||ADT^A01|CTRL1|P|2.5.1"
PID = (
    "PID|1||97727665^^^HOSP^MR||KOWALSKI^ANNA^M||19600102|F|||77 Lakeview Road^^Springfield^IL^62704"
    "||(217)555-0199"
)


def _message(*segments: str) -> str:
    return "\r".join([MSH, *segments])


class TestValuesRepeatedElsewhere:
    def test_a_value_masked_in_its_field_is_masked_in_every_other_segment(self) -> None:
        out = R.redact_text(
            _message(
                "EVN|A01|20260101120000",
                PID,
                "PV1|1|I|W3^389^1" + "|" * 41 + "20260101120000",
                "IN1|1|GOLD|IC1|Acme Health|77 Lakeview Road^^Springfield^IL^62704",
                "OBX|1|TX|1^Note||Spoke to KOWALSKI, Anna about 97727665.||||||F",
                "NTE|1||Daughter lives at 77 Lakeview Road too",
                "QRD|20260101|R|I|Q1|||1^RD|97727665^KOWALSKI|DEM",
                "ZPV|1|19600102|Anna Kowalski",
            )
        )
        assert (
            [],
            ["ADT^A01", "CTRL1", "Acme Health", "Spoke to", "Daughter lives at", "Note"],
            "MSH|^~\\&|APP|FAC|RCV|HOSP|[REDACTED:DATE]||ADT^A01|CTRL1|P|2.5.1",
        ) == (
            _leaks(
                out,
                [
                    "KOWALSKI",
                    "Kowalski",
                    "ANNA",
                    "Anna",
                    "97727665",
                    "19600102",
                    "77 Lakeview Road",
                    "Springfield",
                    "20260101120000",
                ],
            ),
            [
                k
                for k in ["ADT^A01", "CTRL1", "Acme Health", "Spoke to", "Daughter lives at", "Note"]
                if k in out
            ],
            _segments(out)[0],
        )

    def test_a_value_repeated_in_the_text_around_the_message_is_masked_too(self) -> None:
        out = R.redact_text("Received " + _message(PID) + "\nack sent for 97727665")
        assert out.endswith("\nack sent for [REDACTED:MRN]")

    def test_short_and_common_values_do_not_wipe_clinical_text(self) -> None:
        out = R.redact_text(
            _message(
                "PID|1||1^^^HOSP^MR||TEST^PATIENT^M||19600102|M",
                "OBX|1|ST|1^Flag||M||||||F",
                "NTE|1||TEST PATIENT result 1 reviewed, Y",
            )
        )
        assert ["OBX|1|ST|1^Flag||M||||||F", "NTE|1||TEST PATIENT result 1 reviewed, Y"] == _segments(out)[2:]


class TestIdentifiersOfAnyShape:
    def test_pid_3_identifiers_that_look_like_trace_ids_are_masked(self) -> None:
        out = R.redact_text(
            _message("PID|1||4111111111111111^^^HOSP^MR~0c4f8f7e-1d2a-4b3c-9d8e-7f6a5b4c3d2e^^^EMPI^PI")
        )
        assert "PID|1||[REDACTED:MRN]^^^HOSP^MR~[REDACTED:MRN]^^^EMPI^PI" == _segments(out)[1]

    def test_every_clinician_field_loses_name_and_id_number(self) -> None:
        out = R.redact_text(
            _message(
                "EVN|A01|20260101|||411^Clerk^Carla",
                "ORC|RE|ORD1||||||||5555^Entered^Eve|6666^Verified^Vic|7777^Ordering^Oscar",
                "OBR|1|ORD1|ACC1|71250^CT^CPT|||20260101|||||||||8888^Order^Olivia"
                + "|" * 16
                + "9999&Reader&Rick|1111&Assist&Al|2222&Tech&Tom|3333&Typist&Tia",
            )
        )
        assert (
            [],
            ["ORC|RE|ORD1|", "OBR|1|ORD1|ACC1|71250^CT^CPT|||20260101|"],
        ) == (
            _leaks(
                out,
                [
                    "411",
                    "Clerk",
                    "5555",
                    "Eve",
                    "6666",
                    "Vic",
                    "7777",
                    "Oscar",
                    "8888",
                    "Olivia",
                    "9999",
                    "Reader",
                    "Rick",
                    "1111",
                    "Assist",
                    "2222",
                    "Tom",
                    "3333",
                    "Tia",
                ],
            ),
            [k for k in ["ORC|RE|ORD1|", "OBR|1|ORD1|ACC1|71250^CT^CPT|||20260101|"] if k in out],
        )

    def test_a_message_whose_escape_character_was_lost_is_still_read(self) -> None:
        out = R.redact_text(
            "MSH|^~ &|A|B|C|D|2011||ORU^R01|C1|T|2.3\nPID||55555|151615161^^^1||TEST^EMR^SAMPLE"
        )
        assert (
            "PID||[REDACTED:MRN]|[REDACTED:MRN]^^^1||[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]"
            == (_segments(out)[1])
        )


class TestZSegments:
    def test_z_fields_are_masked_by_the_data_type_they_show(self) -> None:
        out = R.redact_text(
            _message(
                "ZPI|1|Smith^John^Q|12345678^^^HOSP^MR|(217)555-0100^PRN^PH|19590101|Y|TEST|M|ROUTINE^Routine"
                "|SPO^Spouse|12 Elm Street^^Grantfort^NH^19431"
            )
        )
        assert (
            "ZPI|1|[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]|[REDACTED:MRN]^^^HOSP^MR|[REDACTED:PHONE]^PRN^PH"
            "|[REDACTED:DATE]|Y|TEST|M|ROUTINE^Routine|SPO^Spouse"
            "|[REDACTED:ADDRESS]^^[REDACTED:ADDRESS]^NH^[REDACTED:ADDRESS]"
        ) == _segments(out)[1]

    def test_fields_can_be_configured_per_segment(self) -> None:
        redactor = Redactor(hl7_fields={"ZPI": {7: "NAME", 8: "MRN"}, "OBX": {5: "TEXT"}})
        out = redactor.redact_text(_message("ZPI|1|||||Y|TEST|M", "OBX|1|ST|1^Flag||Mrs Ada Lovelace||||||F"))
        assert [
            "ZPI|1|||||Y|[REDACTED:NAME]|[REDACTED:MRN]",
            "OBX|1|ST|1^Flag||Mrs [REDACTED:NAME]||||||F",
        ] == (_segments(out)[1:])

    @pytest.mark.parametrize(
        "fields",
        [{"zpi": {1: "NAME"}}, {"ZPI": {0: "NAME"}}, {"ZPI": {1: "PERSON"}}],
    )
    def test_a_bad_configuration_is_refused_at_construction(self, fields: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(ValueError, match="HL7"):
            Redactor(hl7_fields=fields)
