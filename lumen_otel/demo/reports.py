"""Reports (Django): ``POST /exams`` creates an exam and hands its image to Media.

Served by Django's own threaded WSGI server (``django runserver --noreload``) under
``opentelemetry-instrument``; see :mod:`lumen_otel.demo._orchestrator` for why.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Any

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

import lumen_otel

log = logging.getLogger("reports.exams")
_exam_numbers = itertools.count(1001)
# One client for the process, as a real service keeps one: building a client loads the CA
# bundle (~100 ms), which would otherwise show up as latency in every request's trace.
_media = httpx.Client(timeout=20)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def create_exam(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "use POST"}, status=405)
    try:
        body: dict[str, Any] = json.loads(request.body or b"{}")
        patient = body["patient"]
    except (ValueError, KeyError):
        log.warning("Rejected exam request: no patient in the body")
        return JsonResponse({"detail": "a JSON body with a patient is required"}, status=400)
    exam = {
        "exam_id": f"EX-{next(_exam_numbers)}",
        "modality": body.get("modality", "XR"),
        "procedure_code": body.get("procedure_code", "71046"),
        "procedure": body.get("procedure", "XR CHEST 2 VIEWS"),
        "indication": body.get("indication", "persistent cough"),
        "image_count": int(body.get("image_count", 2)),
    }
    # patient_mrn is a PHI key name: the redactor masks it in every sink.
    log.info(
        "Exam created",
        extra={"exam_id": exam["exam_id"], "modality": exam["modality"], "patient_mrn": patient.get("mrn")},
    )
    media_url = os.environ["LUMEN_DEMO_MEDIA_URL"]
    upload = _media.post(f"{media_url}/images", json={"exam": exam, "patient": patient})
    if upload.status_code >= 400:
        log.error(
            "Media refused the image upload",
            extra={"exam_id": exam["exam_id"], "status_code": upload.status_code},
        )
        return JsonResponse({"exam": exam, "detail": "media failed"}, status=502)
    return JsonResponse(
        {"exam": exam, "media": upload.json(), "correlation_id": lumen_otel.get_correlation_id()},
        status=201,
    )


urlpatterns = [path("health", health), path("exams", create_exam)]
