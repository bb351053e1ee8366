"""A small FastAPI service used by the integration tests (run under uvicorn)."""

import logging
import os

if os.environ.get("APP_BOOTSTRAP_IN_CODE") == "1":
    import lumen_otel

    lumen_otel.bootstrap()

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("app.orders")


@app.get("/orders/{order_id}")
def get_order(order_id: int) -> dict[str, int]:
    log.info("order looked up", extra={"order_id": order_id, "payload": {"items": [1, 2]}, "obj": object()})
    return {"order_id": order_id}


@app.get("/fail")
def fail() -> None:
    raise RuntimeError("handler blew up")
