"""Django -> FastAPI -> FastAPI under ``opentelemetry-instrument``: one ID, one trace, every line.

Three real services in subprocesses (``django-admin runserver`` and two ``uvicorn``s), each
started by the ``opentelemetry-instrument`` launcher with lumen-otel's distro, exporting to a
real OTLP/HTTP receiver on loopback and writing JSON logs to ``LUMEN_LOG_DIR``. For each row
of the correlation-ID <-> trace-context mapping (which incoming ``X-Correlation-ID`` and
``traceparent`` give which correlation ID and trace id) one request goes in at the Django end;
the test then reads the three log files and the exported spans.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lumen_otel.testing import OTLPReceiver

sys.path.insert(0, str(Path(__file__).parent / "apps"))
from corr_support import free_port

pytestmark = pytest.mark.integration

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
UUID_LOWER = "6f9619ff-8b86-4011-b42d-00c04fc964ff"
SERVICES = ("chain_django", "chain_b", "chain_c")
SERVER = 2  # OTLP SpanKind.SPAN_KIND_SERVER


@dataclass
class Chain:
    url: str
    log_dir: Path
    receiver: OTLPReceiver
    urls: dict[str, str]

    def lines(self, service: str) -> list[dict[str, Any]]:
        path = self.log_dir / f"{service}.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def lines_for(self, marker: str, expected: int, timeout: float = 15.0) -> dict[str, list[dict[str, Any]]]:
        """Each service's log lines about request ``marker`` (waits for the writer threads)."""
        deadline = time.monotonic() + timeout
        while True:
            found = {
                s: [r for r in self.lines(s) if f" {marker} " in str(r.get("message"))] for s in SERVICES
            }
            if sum(len(v) for v in found.values()) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    tmp = tmp_path_factory.mktemp("chain")
    log_dir = tmp / "logs"
    ports = {s: free_port() for s in SERVICES}
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    processes: list[tuple[subprocess.Popen[bytes], Any]] = []
    with OTLPReceiver() as receiver:
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LUMEN_", "LOG_", "DJANGO_"))
        }
        base_env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(APPS), str(Path(__file__).parents[2])]),
                "LUMEN_ENV": "prod",
                "LUMEN_LOG_DIR": str(log_dir),
                "LUMEN_CONSOLE": "false",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_BLRP_SCHEDULE_DELAY": "200",
                "OTEL_METRIC_EXPORT_INTERVAL": "60000",
            }
        )
        commands = {
            "chain_c": [
                str(BIN / "uvicorn"),
                "chain_fastapi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["chain_c"]),
                "--log-level",
                "info",
            ],
            "chain_b": [
                str(BIN / "uvicorn"),
                "chain_fastapi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["chain_b"]),
                "--log-level",
                "info",
            ],
            "chain_django": [
                str(BIN / "django-admin"),
                "runserver",
                f"127.0.0.1:{ports['chain_django']}",
                "--noreload",
                "--skip-checks",
            ],
        }
        extra_env = {
            "chain_c": {},
            "chain_b": {"CHAIN_NEXT": urls["chain_c"], "CHAIN_MIDDLEWARE": "1"},
            "chain_django": {
                "CHAIN_NEXT": urls["chain_b"],
                "DJANGO_SETTINGS_MODULE": "chain_django_settings",
            },
        }
        try:
            for service in ("chain_c", "chain_b", "chain_django"):
                env = {**base_env, **extra_env[service], "OTEL_SERVICE_NAME": service}
                out = tmp / f"{service}.out"
                handle = out.open("wb")
                process = subprocess.Popen(
                    [str(BIN / "opentelemetry-instrument"), *commands[service]],
                    env=env,
                    cwd=tmp,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
                processes.append((process, handle))
                _wait_ready(urls[service], process, out)
            yield Chain(urls["chain_django"], log_dir, receiver, urls)
        finally:
            for process, _ in processes:
                process.terminate()
            for process, handle in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
                handle.close()


def _sha_trace_id(value: str) -> str:
    return hashlib.sha256(value.encode()).digest()[:16].hex()


# (row, headers sent to the Django end, expected correlation ID or None = "the one echoed",
#  expected trace id or None = "the echoed ID as hex")
# (rows 1 and 2 use different trace ids so that their log lines cannot be confused)
TRACE_ID_2 = "0af7651916cd43dd8448eb211c80319c"
ROWS = [
    (
        "traceparent-and-header",
        {"traceparent": TRACEPARENT, "X-Correlation-ID": "order-42"},
        "order-42",
        TRACE_ID,
    ),
    (
        "traceparent-only",
        {"traceparent": f"00-{TRACE_ID_2}-b7ad6b7169203331-01"},
        str(uuid.UUID(TRACE_ID_2)),
        TRACE_ID_2,
    ),
    (
        "uuid-header",
        {"X-Correlation-ID": "{" + UUID_LOWER.upper() + "}"},
        UUID_LOWER,
        uuid.UUID(UUID_LOWER).hex,
    ),
    (
        "other-header",
        {"X-Correlation-ID": "legacy-order-7"},
        "legacy-order-7",
        _sha_trace_id("legacy-order-7"),
    ),
    ("nothing", {}, None, None),
]


class TestOneIdOneTraceAcrossThreeServices:
    @pytest.mark.parametrize(("row", "headers", "cid", "trace_id"), ROWS, ids=[r[0] for r in ROWS])
    def test_mapping_row(
        self,
        chain: Chain,
        row: str,
        headers: dict[str, str],
        cid: str | None,
        trace_id: str | None,
    ) -> None:
        marker = f"m{uuid.uuid4().hex[:8]}"
        response = httpx.get(f"{chain.url}/hop", params={"m": marker}, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        echoed = response.headers.get_list("x-correlation-id")
        assert len(echoed) == 1
        expected_cid = cid if cid is not None else echoed[0]
        expected_trace = trace_id if trace_id is not None else uuid.UUID(expected_cid).hex
        assert [expected_cid] == echoed
        if cid is None:
            assert uuid.UUID(expected_cid).version == 4

        # what each service saw while handling the request
        body = response.json()
        seen = [(body["service"], body["cid"], body["trace_id"])]
        seen.append(
            (body["downstream"]["service"], body["downstream"]["cid"], body["downstream"]["trace_id"])
        )
        last = body["downstream"]["downstream"]
        seen.append((last["service"], last["cid"], last["trace_id"]))
        assert [(s, expected_cid, expected_trace) for s in SERVICES] == seen

        # every log line about the request, in every service's JSON file
        # (Django: request + thread; each FastAPI hop: request + thread + task)
        lines = chain.lines_for(marker, expected=8)
        assert {s: len(v) for s, v in lines.items()} == {"chain_django": 2, "chain_b": 3, "chain_c": 3}
        for service, records in lines.items():
            for record in records:
                assert (service, expected_cid, expected_trace) == (
                    record["service_name"],
                    record["correlation_id"],
                    record["trace_id"],
                ), record
        # and every other line carrying this trace (access logs, ...) carries this ID
        for service in SERVICES:
            others = [r for r in chain.lines(service) if r.get("trace_id") == expected_trace]
            assert {expected_cid} == {r["correlation_id"] for r in others}, service

        # the exported spans: one trace across the three services
        assert chain.receiver.wait_for(
            lambda r: (
                {
                    s.resource.get("service.name")
                    for s in r.spans
                    if s.trace_id == expected_trace and s.kind == SERVER
                }
                >= set(SERVICES)
            ),
            timeout=15,
        ), "server spans of all three services in the trace"
        server_spans = [s for s in chain.receiver.spans if s.trace_id == expected_trace and s.kind == SERVER]
        if "traceparent" not in headers:
            # the Django server span is the root: no invented parent
            roots = [s for s in server_spans if s.resource.get("service.name") == "chain_django"]
            assert [s.parent_span_id for s in roots] == [None]


class TestLegacyHop:
    @pytest.mark.parametrize("header", ["legacy-order-8", UUID_LOWER.replace("6f", "7a", 1)])
    def test_forwarding_only_the_header_lands_in_the_same_trace(self, chain: Chain, header: str) -> None:
        marker = f"m{uuid.uuid4().hex[:8]}"
        response = httpx.get(
            f"{chain.url}/legacy", params={"m": marker}, headers={"X-Correlation-ID": header}, timeout=30
        )
        assert response.status_code == 200, response.text
        body = response.json()
        a, b = body, body["downstream"]
        assert (header, header) == (a["cid"], b["cid"])
        assert a["trace_id"] == b["trace_id"]
        assert chain.receiver.wait_for(
            lambda r: (
                {
                    s.resource.get("service.name")
                    for s in r.spans
                    if s.trace_id == a["trace_id"] and s.kind == SERVER
                }
                >= {"chain_django", "chain_b"}
            ),
            timeout=15,
        )
        # B's server span is a root of the same trace, not a child of A's client span
        b_server = [
            s
            for s in chain.receiver.spans
            if s.trace_id == a["trace_id"]
            and s.kind == SERVER
            and s.resource.get("service.name") == "chain_b"
        ]
        assert [s.parent_span_id for s in b_server] == [None]


async def _hammer(url: str, n: int, in_flight: int) -> list[tuple[int, list[str]]]:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> tuple[int, list[str]]:
            cid = f"load-{i:04d}"
            response = await client.get(url, params={"m": cid}, headers={"X-Correlation-ID": cid})
            return response.status_code, response.headers.get_list("x-correlation-id")

        return list(await asyncio.gather(*(one(i) for i in range(n))))


class TestIsolationUnderLoadInTheJsonLogs:
    """500 requests with distinct IDs; every line in the JSON log file has its own request's ID.

    uvicorn takes all 500 at once. ``runserver`` listens with a backlog of 10 and resets
    connections beyond what it can accept, so it gets 50 in flight at a time here; the
    500-at-once case for a threaded Django server is in tests/test_middleware_django.py.
    """

    @pytest.mark.parametrize(
        ("service", "path", "in_flight"),
        [
            ("chain_c", "/hop", 500),  # one uvicorn worker
            ("chain_django", "/solo", 50),  # runserver, one thread per request
        ],
    )
    def test_no_id_bleeds_between_requests(
        self, chain: Chain, service: str, path: str, in_flight: int
    ) -> None:
        n, per_request = 500, 3  # each request logs from itself, a thread and an asyncio task
        base = chain.url if service == "chain_django" else chain.urls[service]
        results = asyncio.run(_hammer(f"{base}{path}", n, in_flight))
        assert [(200, [f"load-{i:04d}"]) for i in range(n)] == results
        deadline = time.monotonic() + 20
        while True:
            records = [r for r in chain.lines(service) if " load-" in str(r.get("message"))]
            if len(records) >= n * per_request or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert n * per_request == len(records)
        assert [r for r in records if r["message"].split()[2] != r["correlation_id"]] == []
        assert {f"load-{i:04d}" for i in range(n)} == {r["correlation_id"] for r in records}
        print(f"{service}: {n} requests, {in_flight} in flight, every line with its own request's ID")
