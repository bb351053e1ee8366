"""A FastAPI service that configures logging itself, as many do, with no lumen-otel code in it.

At import it calls ``logging.basicConfig(force=True)`` (which removes every handler already on the
root logger) and gives its ``billing`` logger a file handler of its own (``BILLING_LOG_FILE``).
Run under ``opentelemetry-instrument`` by tests/integration/test_start_modes.py.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

logging.basicConfig(
    level=logging.INFO, force=True, format="basic-console %(levelname)s %(name)s: %(message)s"
)

log = logging.getLogger("billing")
_billing_file = logging.FileHandler(os.environ["BILLING_LOG_FILE"])
_billing_file.setFormatter(logging.Formatter("%(asctime)s billing-file %(levelname)s %(message)s"))
log.addHandler(_billing_file)

PATIENT = "Zelda Quarrington"
SSN = "123-45-6789"
MRN = "48213377"

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/visit/{marker}")
async def visit(marker: str) -> dict[str, str]:
    log.info(
        "Invoice drafted for patient %s, SSN %s, MRN: %s (%s)", PATIENT, SSN, MRN, marker, extra={"mrn": MRN}
    )
    return {"marker": marker}


@app.get("/crash/{marker}")
async def crash(marker: str) -> dict[str, str]:
    raise RuntimeError(f"billing failed for patient {PATIENT} (SSN {SSN}, MRN: {MRN}) {marker}")
