"""Load: 1,000 requests, 100 in flight, through three services (FastAPI → FastAPI → FastAPI,
``apps/rel_chain.py``, the correlation chain's hop with a shared client, under
``opentelemetry-instrument``), each
with its own ``X-Correlation-ID``: no ID mixed between requests, no log line lost, every
trace complete at the collector."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from lumen_otel.testing import OTLPReceiver
from tests.conftest import free_port
from tests.reliability.conftest import App, app_env, launch, uvicorn_argv

pytestmark = pytest.mark.integration

SERVICES = ("load_a", "load_b", "load_c")
REQUESTS, IN_FLIGHT, PER_HOP = 1000, 100, 3  # each hop logs from the request, a thread and a task
SERVER = 2


async def hammer(url: str) -> list[tuple[int, str, list[str], Any]]:
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int) -> tuple[int, str, list[str], Any]:
            cid = f"load-{i:04d}"
            async with gate:
                response = await client.get(url, params={"m": cid}, headers={"X-Correlation-ID": cid})
            return response.status_code, cid, response.headers.get_list("x-correlation-id"), response.json()

        return list(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


@pytest.fixture
def chain(tmp_path: Path):
    apps: list[App] = []
    with OTLPReceiver() as receiver:
        try:
            next_url = None
            for service in reversed(SERVICES):
                port = free_port()
                extra = {"LUMEN_CONSOLE": "false", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}
                if next_url:
                    extra["CHAIN_NEXT"] = next_url
                if service == "load_b":
                    extra["CHAIN_MIDDLEWARE"] = "1"
                env = app_env(service, tmp_path / "logs", receiver.endpoint, **extra)
                argv = uvicorn_argv(port, "rel_chain:app")
                apps.append(launch(argv, env, tmp_path, name=service, port=port))
                next_url = apps[-1].url
            yield apps[-1], apps, receiver
        finally:
            for app in apps:
                app.kill()


class TestThreeServiceChainUnderLoad:
    def test_a_thousand_requests_keep_their_ids_lines_and_traces(self, chain):
        """1,000 requests with distinct IDs, 100 in flight: every hop saw its own request's ID,
        every one of the 9,000 log lines is in the files with the right ID, and the collector
        has a complete trace (three server spans, one trace id) for every request."""
        front, apps, receiver = chain
        results = asyncio.run(hammer(f"{front.url}/hop"))
        assert [(200, [cid]) for _, cid, _, _ in results] == [(s, echoed) for s, _, echoed, _ in results]

        trace_of: dict[str, str] = {}
        for _, cid, _, body in results:
            hops, node = [], body
            while node is not None:
                hops.append((node["service"], node["cid"], node["trace_id"]))
                node = node["downstream"]
            assert [(s, cid, body["trace_id"]) for s in SERVICES] == hops
            trace_of[cid] = body["trace_id"]
        assert len(set(trace_of.values())) == REQUESTS

        deadline = time.monotonic() + 30
        while True:
            lines = {
                s: [r for r in apps[0].file_records(s) if " load-" in str(r.get("message"))] for s in SERVICES
            }
            if all(len(v) >= REQUESTS * PER_HOP for v in lines.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {s: REQUESTS * PER_HOP for s in SERVICES} == {s: len(v) for s, v in lines.items()}
        mixed = [r for v in lines.values() for r in v if r["message"].split()[2] != r["correlation_id"]]
        assert [] == mixed
        wrong_trace = [r for v in lines.values() for r in v if r["trace_id"] != trace_of[r["correlation_id"]]]
        assert [] == wrong_trace

        def complete(r: OTLPReceiver) -> bool:
            servers: dict[str, set[str]] = defaultdict(set)
            for span in r.spans:
                if span.kind == SERVER:
                    servers[span.trace_id].add(str(span.resource.get("service.name")))
            return all(servers.get(t) == set(SERVICES) for t in trace_of.values())

        assert receiver.wait_for(complete, timeout=30)
        per_trace = Counter(s.trace_id for s in receiver.spans if s.kind == SERVER)
        assert {3} == {per_trace[t] for t in trace_of.values()}
        print(
            f"\nRESULT load: {REQUESTS} requests x 3 hops, {IN_FLIGHT} in flight; "
            f"0 IDs mixed, {sum(len(v) for v in lines.values())}/{REQUESTS * PER_HOP * 3} lines, "
            f"{len(trace_of)}/{REQUESTS} traces complete"
        )
