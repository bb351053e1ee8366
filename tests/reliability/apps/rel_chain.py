"""One hop of the load test's three-service chain (``opentelemetry-instrument uvicorn``).

Like tests/integration/apps/chain_fastapi.py, but with one shared httpx client per process:
a new client per request builds a TLS context each time, which on a 2-core machine costs
more than everything else the hop does.
Env: ``CHAIN_NEXT`` (base URL of the next hop), ``CHAIN_MIDDLEWARE=1`` adds lumen-otel's middleware.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace

import lumen_otel
from lumen_otel.fastapi import CorrelationIdMiddleware

SERVICE = os.environ.get("OTEL_SERVICE_NAME", "chain")
NEXT = os.environ.get("CHAIN_NEXT")
log = logging.getLogger("chain")
app = FastAPI()
if os.environ.get("CHAIN_MIDDLEWARE") == "1":
    app.add_middleware(CorrelationIdMiddleware)
_client: httpx.AsyncClient | None = None


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/hop")
async def hop(m: str) -> dict[str, Any]:
    global _client
    log.info("hop %s %s request", SERVICE, m)
    thread = threading.Thread(target=log.info, args=("hop %s %s thread", SERVICE, m))
    thread.start()

    async def in_task() -> None:
        log.info("hop %s %s task", SERVICE, m)

    await asyncio.create_task(in_task())
    await asyncio.to_thread(thread.join)
    downstream = None
    if NEXT:
        if _client is None:
            # keep-alive shorter than the next hop's (uvicorn: 5 s), so the client never reuses
            # a connection the server is closing at that moment (an httpx ReadError, a 500 here)
            limits = httpx.Limits(max_connections=200, keepalive_expiry=1.0)
            _client = httpx.AsyncClient(timeout=60, limits=limits)
        downstream = (await _client.get(f"{NEXT}/hop", params={"m": m})).json()
    span_context = trace.get_current_span().get_span_context()
    return {
        "service": SERVICE,
        "cid": lumen_otel.get_correlation_id(),
        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
        "downstream": downstream,
    }
