import logging

from django.http import JsonResponse
from django.urls import path

log = logging.getLogger("app.exams")


def exam(request, exam_id):  # type: ignore[no-untyped-def]
    log.info("exam looked up", extra={"exam_id": exam_id})
    return JsonResponse({"exam_id": exam_id})


urlpatterns = [path("exams/<int:exam_id>", exam)]
