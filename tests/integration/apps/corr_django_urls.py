"""Views for the Django middleware tests: ids, errors, spawned work (sync and async)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from opentelemetry import trace

from lumen_otel._correlation import context as _correlation

log = logging.getLogger("isolation")


def _ids(request: HttpRequest) -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    return {
        "cid": _correlation.get_correlation_id(),
        "on_request": getattr(request, "correlation_id", None),
        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
    }


class DenyMiddleware:
    """A middleware inside ours that answers some requests itself."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        if request.path == "/denied":
            response = HttpResponse("no", status=401)
            response["X-Correlation-ID"] = "forged"
            return response
        return self.get_response(request)


def ids(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_ids(request))


async def async_ids(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_ids(request))


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom (expected by the test)")


def work(request: HttpRequest, expected: str) -> JsonResponse:
    log.info("request %s", expected)
    thread = threading.Thread(target=log.info, args=("thread %s", expected))
    thread.start()

    async def in_task() -> None:
        await asyncio.sleep(0.001)
        log.info("task %s", expected)

    async def main() -> None:
        await asyncio.create_task(in_task())
        await asyncio.to_thread(log.info, "to_thread %s", expected)

    asyncio.run(main())
    thread.join()
    return JsonResponse(_ids(request))


async def async_work(request: HttpRequest, expected: str) -> JsonResponse:
    log.info("request %s", expected)
    thread = threading.Thread(target=log.info, args=("thread %s", expected))
    thread.start()

    async def in_task() -> None:
        await asyncio.sleep(0.001)
        log.info("task %s", expected)

    await asyncio.create_task(in_task())
    await asyncio.to_thread(log.info, "to_thread %s", expected)
    await asyncio.to_thread(thread.join)
    return JsonResponse(_ids(request))


urlpatterns = [
    path("id", ids),
    path("async-id", async_ids),
    path("boom", boom),
    path("work/<str:expected>", work),
    path("async-work/<str:expected>", async_work),
]
