"""HL7 listener (FastAPI): receives ORU^R01 results, logs them and writes an audit line.

The message is logged whole, as integration engines do; lumen-otel's redactor masks the
patient's fields (PID, PV1 names...) before any byte reaches a sink.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request

from lumen_otel.demo._patient import hl7_header
from lumen_otel.fastapi import CorrelationIdMiddleware

log = logging.getLogger("hl7.listener")
audit = logging.getLogger("hl7.audit")

app = FastAPI(title="Lumen HL7 listener (demo)")
app.add_middleware(CorrelationIdMiddleware)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/hl7")
async def receive(request: Request) -> dict[str, str]:
    message = (await request.body()).decode("utf-8", errors="replace")
    try:
        header = hl7_header(message)
    except ValueError as exc:
        log.error("Rejected HL7 payload: %s", exc)
        raise HTTPException(400, str(exc)) from None
    log.info("HL7 message received: %s", message, extra={"message_type": header["message_type"]})
    pid = next((s for s in message.split("\r") if s.startswith("PID|")), "")
    mrn = pid.split("|")[3].split("^")[0] if pid.count("|") >= 3 else ""
    audit.info(
        "HL7 audit: message accepted",
        extra={
            "event": "hl7.message.accepted",
            **header,
            "patient_mrn": mrn,
            "ack": "AA",
        },
    )
    return {"ack": "AA", "message_control_id": header["message_control_id"]}
