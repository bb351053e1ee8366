"""The service the export-outcome tests run (``opentelemetry-instrument uvicorn rel_outcomes:app``).

- ``/bulk`` logs ``n`` numbered records (``<tag> <k>``) with a ``size``-byte payload each;
- ``/mixed`` logs ``n`` numbered records, every ``every``-th one "poisoned" with a lone surrogate
  (what ``json.loads('"\\ud800"')`` returns for a client's JSON), in turn in the message, in an
  extra value and in an extra key;
- ``/span`` makes one span named ``<name>`` with a lone surrogate in an attribute (``poison=1``).
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI
from opentelemetry import trace

app = FastAPI()
log = logging.getLogger("rel.outcomes")
SURROGATE = json.loads('"\\ud800"')


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bulk")
async def bulk(n: int = 10, size: int = 16, tag: str = "bulk") -> dict[str, int]:
    payload = "x" * size
    for k in range(n):
        log.info("%s %d", tag, k, extra={"payload": payload})
    return {"n": n}


@app.get("/mixed")
async def mixed(n: int = 50, every: int = 5, tag: str = "mixed") -> dict[str, list[int]]:
    poisoned = []
    for k in range(n):
        if k % every != every - 1:
            log.info("%s %d", tag, k, extra={"k": k})
            continue
        poisoned.append(k)
        kind = (k // every) % 3
        if kind == 0:
            log.info("%s %d bad-message " + SURROGATE, tag, k, extra={"k": k})
        elif kind == 1:
            log.info("%s %d bad-value", tag, k, extra={"k": k, "client_note": "note " + SURROGATE})
        else:
            log.info("%s %d bad-key", tag, k, extra={"k": k, "field" + SURROGATE: "v"})
    return {"poisoned": poisoned}


@app.get("/span")
async def span(name: str = "plain", poison: int = 0) -> dict[str, str]:
    tracer = trace.get_tracer("rel.outcomes")
    attributes = {"client.note": "note " + SURROGATE} if poison else {"client.note": "clean"}
    with tracer.start_as_current_span(name, attributes=attributes):
        pass
    return {"status": "ok"}
