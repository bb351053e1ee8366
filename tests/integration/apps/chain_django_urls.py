"""Views of the Django hop: ``/hop`` calls the next service with httpx; ``/legacy`` forwards
only ``X-Correlation-ID`` (with ``http.client``, which nothing instruments: no traceparent)."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.http import HttpRequest, JsonResponse
from django.urls import path
from opentelemetry import trace

import lumen_otel

SERVICE = os.environ.get("OTEL_SERVICE_NAME", "chain_django")
NEXT = os.environ["CHAIN_NEXT"]
log = logging.getLogger("chain")


def _ids() -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    return {
        "service": SERVICE,
        "cid": lumen_otel.get_correlation_id(),
        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
    }


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _log_here_and_in_a_thread(m: str) -> None:
    log.info("hop %s %s request", SERVICE, m)
    thread = threading.Thread(target=log.info, args=("hop %s %s thread", SERVICE, m))
    thread.start()
    thread.join()


def hop(request: HttpRequest) -> JsonResponse:
    m = request.GET["m"]
    _log_here_and_in_a_thread(m)
    with httpx.Client(timeout=20) as client:
        downstream = client.get(f"{NEXT}/hop", params={"m": m}).json()
    return JsonResponse({**_ids(), "downstream": downstream})


def legacy(request: HttpRequest) -> JsonResponse:
    m = request.GET["m"]
    _log_here_and_in_a_thread(m)
    target = urlsplit(NEXT)
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=20)
    try:
        connection.request(
            "GET", f"/hop?m={m}", headers={"X-Correlation-ID": lumen_otel.get_correlation_id() or ""}
        )
        downstream = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return JsonResponse({**_ids(), "downstream": downstream})


def solo(request: HttpRequest) -> JsonResponse:
    """No next hop: logs from the request, a thread and an asyncio task (the isolation test)."""
    m = request.GET["m"]
    _log_here_and_in_a_thread(m)

    async def in_task() -> None:
        log.info("hop %s %s task", SERVICE, m)

    async def main() -> None:
        await asyncio.create_task(in_task())

    asyncio.run(main())
    return JsonResponse(_ids())


urlpatterns = [path("health", health), path("hop", hop), path("legacy", legacy), path("solo", solo)]
