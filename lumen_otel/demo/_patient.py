"""The demo's synthetic patient and the ORU^R01 result message built for an exam.

Nobody real: the values only have the shapes of real identifiers, so the redactor has
something to find. Tests check that none of them reaches the output or the log files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["SYNTHETIC_PATIENT", "build_oru_r01", "hl7_header"]

#: the patient the demo request is made for (every value synthetic)
SYNTHETIC_PATIENT: dict[str, str] = {
    "family_name": "Whitfield",
    "given_name": "Eleanor",
    "middle_initial": "J",
    "mrn": "48213977",
    "dob": "19570314",
    "sex": "F",
    "ssn": "532-71-8846",
    "street": "1422 Larkspur Lane",
    "city": "Springfield",
    "state": "IL",
    "zip": "62704",
    "phone": "(217)555-0143",
    "account": "ACCT99812",
}


def build_oru_r01(
    exam: dict[str, Any], patient: dict[str, str], criteria: dict[str, Any], control_id: str
) -> str:
    """An HL7 v2.5.1 ORU^R01 (``\\r``-separated) carrying the exam's result for ``patient``."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
    p = patient
    segments = [
        f"MSH|^~\\&|LUMEN_MEDIA|LUMEN|LUMEN_HL7|LUMEN|{now}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{p['mrn']}^^^LUMEN^MR||{p['family_name']}^{p['given_name']}^{p['middle_initial']}||"
        f"{p['dob']}|{p['sex']}|||{p['street']}^^{p['city']}^{p['state']}^{p['zip']}||{p['phone']}|||||"
        f"{p['account']}|{p['ssn']}",
        "PV1|1|O|RAD^XR1||||4471^Okafor^Ngozi^^^DR",
        f"OBR|1|{exam['exam_id']}||{exam['procedure_code']}^{exam['procedure']}^CPT|||{now}",
        f"OBX|1|TX|{exam['procedure_code']}^{exam['procedure']}^CPT||"
        f"Images stored ({exam['image_count']}); criteria {criteria['criteria_set']} rated "
        f"{criteria['rating']}||||||F",
    ]
    return "\r".join(segments)


def hl7_header(message: str) -> dict[str, str]:
    """Message type, control ID and sender from MSH (the fields an audit trail keeps)."""
    msh = message.replace("\n", "\r").split("\r", 1)[0]
    if not msh.startswith("MSH") or len(msh) < 4:
        raise ValueError("not an HL7 v2 message: it must start with an MSH segment")
    fields = msh.split(msh[3])
    # MSH-1 is the separator itself, so MSH-n is fields[n - 1].
    return {
        "message_type": fields[8] if len(fields) > 8 else "",
        "message_control_id": fields[9] if len(fields) > 9 else "",
        "sending_application": fields[2] if len(fields) > 2 else "",
    }
