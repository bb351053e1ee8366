"""A plain WSGI app for gunicorn's sync worker (``--preload``): ``/work/<i>`` logs ``work <i>``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("rel.wsgi")


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    body: dict[str, Any] = {"status": "ok"}
    if path.startswith("/work/"):
        i = int(path.rsplit("/", 1)[1])
        log.info("work %d %s", i, "y" * 200, extra={"i": i, "pid": os.getpid()})
        body = {"i": i, "pid": os.getpid()}
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
