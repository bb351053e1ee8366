"""Dubin (FastAPI): the imaging-criteria lookup standing in for the RAG service."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from lumen_otel.fastapi import CorrelationIdMiddleware

log = logging.getLogger("dubin.criteria")

app = FastAPI(title="Lumen Dubin (demo)")
app.add_middleware(CorrelationIdMiddleware)

_CRITERIA = {"71046": ("ACR-AC-CHEST-2025", "usually appropriate", 0.92)}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/criteria")
async def criteria(procedure_code: str, indication: str) -> dict[str, object]:
    criteria_set, rating, score = _CRITERIA.get(procedure_code, ("ACR-AC-GENERIC", "may be appropriate", 0.5))
    # A warning on purpose: the trace view highlights it.
    log.warning("Criteria index is 3 days old; answering from the cached copy", extra={"index_age_days": 3})
    log.info(
        "Criteria query resolved",
        extra={"criteria_set": criteria_set, "rating": rating, "score": score, "indication": indication},
    )
    return {"criteria_set": criteria_set, "rating": rating, "score": score}
