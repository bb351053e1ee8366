"""The W3C Trace Context "service under test", as a FastAPI app.

``POST /test`` takes a JSON list of ``{"url": ..., "arguments": ...}`` and POSTs ``arguments``
to each ``url`` with httpx, one call after the other. Nothing here touches trace context: the
launcher's instrumentations and the configured propagator do it all, which is what the suite
and ``tests/integration/test_w3c_servers.py`` measure.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/test")
async def test(request: Request) -> Response:
    calls: list[dict[str, Any]] = await request.json()
    async with httpx.AsyncClient(timeout=10) as client:
        for call in calls:
            await client.post(call["url"], json=call.get("arguments", []))
    return Response(status_code=200)
