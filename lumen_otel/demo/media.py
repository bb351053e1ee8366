"""Media (FastAPI): stores an exam's images, asks Dubin for criteria, sends the ORU^R01."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException

from lumen_otel.demo._patient import build_oru_r01
from lumen_otel.fastapi import CorrelationIdMiddleware

log = logging.getLogger("media.images")

# One client for the process (building one loads the CA bundle: ~100 ms per request otherwise).
_client = httpx.AsyncClient(timeout=20)
app = FastAPI(title="Lumen Media (demo)")
app.add_middleware(CorrelationIdMiddleware)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/images")
async def upload_images(payload: dict[str, Any]) -> dict[str, Any]:
    exam, patient = payload["exam"], payload["patient"]
    image_ids = [f"IMG-{uuid.uuid4().hex[:8]}" for _ in range(exam["image_count"])]
    log.info(
        "Image upload complete",
        extra={
            "exam_id": exam["exam_id"],
            "images": len(image_ids),
            "size_bytes": 2_621_440 * len(image_ids),
        },
    )
    found = await _client.get(
        f"{os.environ['LUMEN_DEMO_DUBIN_URL']}/criteria",
        params={"procedure_code": exam["procedure_code"], "indication": exam["indication"]},
    )
    if found.status_code != 200:
        raise HTTPException(502, "criteria lookup failed")
    criteria = found.json()
    control_id = f"MSG{uuid.uuid4().hex[:10].upper()}"
    message = build_oru_r01(exam, patient, criteria, control_id)
    sent = await _client.post(
        f"{os.environ['LUMEN_DEMO_HL7_URL']}/hl7",
        content=message.encode(),
        headers={"Content-Type": "x-application/hl7-v2+er7"},
    )
    if sent.status_code != 200:
        log.error(
            "HL7 listener refused the result",
            extra={"message_control_id": control_id, "status_code": sent.status_code},
        )
        raise HTTPException(502, "HL7 delivery failed")
    log.info("Result sent to HL7", extra={"message_control_id": control_id, "ack": sent.json()["ack"]})
    return {
        "exam_id": exam["exam_id"],
        "images": image_ids,
        "criteria": criteria,
        "hl7": {"message_control_id": control_id, "ack": sent.json()["ack"]},
    }
