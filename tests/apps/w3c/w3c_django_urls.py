"""The W3C Trace Context "service under test", as a Django view (see ``w3c_fastapi``)."""

from __future__ import annotations

import json

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def test(request: HttpRequest) -> HttpResponse:
    calls = json.loads(request.body or b"[]")
    with httpx.Client(timeout=10) as client:
        for call in calls:
            client.post(call["url"], json=call.get("arguments", []))
    return HttpResponse(status=200)


urlpatterns = [path("health", health), path("test", test)]
