"""The clinic's views: they log patient data as real code too often does, and one of them fails."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse

log = logging.getLogger("patients")
audit = logging.getLogger("audit")

PATIENT = "Zelda Quarrington"
SSN = "123-45-6789"
MRN = "48213377"


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def visit(request: HttpRequest, marker: str) -> JsonResponse:
    log.info(
        "Visit booked for patient %s, SSN %s, MRN: %s (%s)", PATIENT, SSN, MRN, marker, extra={"mrn": MRN}
    )
    audit.info("chart opened for patient %s, MRN: %s (%s)", PATIENT, MRN, marker)
    return JsonResponse({"marker": marker})


def crash(request: HttpRequest, marker: str) -> JsonResponse:
    raise RuntimeError(f"billing failed for patient {PATIENT} (SSN {SSN}, MRN: {MRN}) {marker}")
