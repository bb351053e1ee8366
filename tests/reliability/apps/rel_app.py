"""The FastAPI service the reliability tests run (``opentelemetry-instrument uvicorn rel_app:app``).

- ``/work/{i}`` logs one numbered record (``work <i>``), so a test can account for every one;
- ``/bulk`` logs ``n`` records with a ``size``-byte payload each (memory and queue tests);
- ``/side/*`` put PHI where it is easy to forget: an exception message, a span name and
  attributes, the URL query, ``repr()`` of the request and its URL, and a warning.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from fastapi import FastAPI, Request
from opentelemetry import trace

app = FastAPI()
log = logging.getLogger("rel.app")
PID = os.getpid()
SSN = "123-45-6789"
MRN_TEXT = "MRN: 97727665"


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/work/{i}")
async def work(i: int) -> dict[str, int]:
    log.info("work %d", i, extra={"i": i, "pid": os.getpid()})
    return {"i": i, "pid": os.getpid()}


@app.get("/bulk")
async def bulk(n: int = 10, size: int = 1024, tag: str = "bulk") -> dict[str, int]:
    payload = "x" * size
    for k in range(n):
        log.info("%s %d", tag, k, extra={"payload": payload})
    return {"n": n}


@app.get("/side/patients")
async def patients(request: Request) -> dict[str, Any]:
    """The query string carries an SSN: the span's url.query and the access log must not."""
    log.info("patients listed for %r", request.url)
    log.info("request object %r, query %r", request, dict(request.query_params))
    return {"count": 0}


@app.get("/side/boom")
async def boom() -> None:
    ssn = SSN  # a local the traceback could show
    raise ValueError(f"lookup failed for patient SSN {ssn}, {MRN_TEXT}")


@app.get("/side/logged-exception")
async def logged_exception() -> dict[str, str]:
    try:
        ssn = SSN
        raise KeyError(f"no chart for SSN {ssn}")
    except KeyError:
        log.exception("chart lookup failed")
    return {"status": "handled"}


@app.get("/side/span")
async def span() -> dict[str, str]:
    tracer = trace.get_tracer("rel.app")
    with tracer.start_as_current_span(
        f"lookup patient {MRN_TEXT}",
        attributes={
            "patient.ssn": SSN,
            "note": f"patient SSN {SSN}",
            "db.statement": f"SELECT * FROM p WHERE ssn='{SSN}'",  # noqa: S608 - a span attribute, never run
        },
    ) as current:
        current.add_event("found", {"detail": f"{MRN_TEXT} matched"})
        current.set_attribute("lookup.mrn", "97727665")
    return {"status": "ok"}


@app.get("/side/warn")
async def warn() -> dict[str, str]:
    warnings.warn(f"deprecated lookup by SSN {SSN}", UserWarning, stacklevel=1)
    return {"status": "warned"}
