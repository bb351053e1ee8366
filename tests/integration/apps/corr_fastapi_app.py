"""A FastAPI app for the middleware tests: plain routes, errors, WebSocket, spawned work."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import httpx
from fastapi import FastAPI, Request, WebSocket
from opentelemetry import trace
from starlette.middleware.cors import CORSMiddleware

from lumen_otel._correlation import context as _correlation
from lumen_otel.fastapi import CorrelationIdMiddleware, httpx_event_hooks

log = logging.getLogger("isolation")


def _ids() -> dict[str, Any]:
    span_context = trace.get_current_span().get_span_context()
    return {
        "cid": _correlation.get_correlation_id(),
        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
    }


class DenyMiddleware:
    """Another middleware that answers some requests itself (inside the correlation one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/denied":
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"x-correlation-id", b"forged")],
                }
            )
            await send({"type": "http.response.body", "body": b"no"})
            return
        await self.app(scope, receive, send)


def make_app(*, middleware: bool = True) -> FastAPI:
    app = FastAPI()

    @app.get("/id")
    async def ids() -> dict[str, Any]:
        return _ids()

    @app.get("/sync-id")
    def sync_ids() -> dict[str, Any]:  # runs in the threadpool: the contextvar copy follows
        return _ids()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom (expected by the test)")

    @app.get("/work/{expected}")
    async def work(expected: str) -> dict[str, Any]:
        log.info("request %s", expected)

        def in_thread() -> None:
            log.info("thread %s", expected)

        thread = threading.Thread(target=in_thread)
        thread.start()

        async def in_task() -> None:
            await asyncio.sleep(0.001)
            log.info("task %s", expected)

        task = asyncio.create_task(in_task())
        await asyncio.sleep(0.002)
        await task
        await asyncio.to_thread(log.info, "to_thread %s", expected)
        await asyncio.to_thread(thread.join)
        return _ids()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {k: request.headers.get(k) for k in ("traceparent", "x-correlation-id")}

    @app.get("/call")
    async def call(target: str, hooks: bool = False) -> dict[str, Any]:
        """Calls ``target`` with httpx: async, sync from a worker thread, and from a task."""
        async_hooks = httpx_event_hooks(is_async=True) if hooks else {}
        sync_hooks = httpx_event_hooks() if hooks else {}

        def sync_call() -> Any:
            with httpx.Client(event_hooks=sync_hooks) as client:
                return client.get(target).json()

        async with httpx.AsyncClient(event_hooks=async_hooks) as client:
            from_async = (await client.get(target)).json()
            from_task = (await asyncio.create_task(client.get(target))).json()
        from_thread = await asyncio.to_thread(sync_call)
        return {"async": from_async, "task": from_task, "sync_thread": from_thread, **_ids()}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        log.info("ws %s", text)
        await websocket.send_json(_ids())
        await websocket.close()

    app.add_middleware(DenyMiddleware)
    app.add_middleware(
        CORSMiddleware, allow_origins=["https://front.example"], allow_methods=["*"], allow_headers=["*"]
    )
    if middleware:
        app.add_middleware(CorrelationIdMiddleware)
    return app
