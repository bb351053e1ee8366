"""A collector's (or proxy's) answer is read only up to a bound.

Before the fix the OTLP/HTTP exporters read the whole response body: a collector answering 400
with a 200 MB page took the service to 330 MiB. Now at most ``MAX_RESPONSE_BODY`` (64 KiB)
is read and a longer body's connection is closed unread. The memory test runs a real
``WireLogExporter`` in a fresh process against a real loopback server and compares the
process's peak RSS (``VmHWM``) before and after one export: a memory bound, not a timing one.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lumen_otel._otlp.exporters import MAX_RESPONSE_BODY, pinned_ca_session
from tests.conftest import VENV_BIN, clean_env

BODY_SIZE = 50 * 1024 * 1024
_CHUNK = b"x" * 65536


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up in the middle of a body on purpose


class HostileCollector:
    """Answers every POST by path: a 50 MB body with 400, 307 or 200, or small bodies."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path
                if path == "/small":
                    self.answer(400, b"bad request: nope")
                elif path == "/100k":
                    self.answer(400, bytes(i % 251 for i in range(100 * 1024)))
                elif path == "/gzip-bomb":
                    self.gzip_bomb()
                else:
                    status = {"/big-400": 400, "/big-307": 307, "/big-200": 200}[path]
                    self.huge(path, status)

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def huge(self, path: str, status: int) -> None:
                self.send_response(status)
                if status == 307:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(BODY_SIZE))
                self.end_headers()
                written = 0
                try:
                    for _ in range(BODY_SIZE // len(_CHUNK)):
                        self.wfile.write(_CHUNK)
                        written += len(_CHUNK)
                except OSError:  # the client hung up after the part it reads
                    self.close_connection = True
                collector.written[path] = written

            def gzip_bomb(self) -> None:
                """50 MB of zeros, gzip-encoded: a few dozen KiB on the wire."""
                squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
                zeros = bytes(len(_CHUNK))
                body = b"".join(squeeze.compress(zeros) for _ in range(BODY_SIZE // len(zeros)))
                body += squeeze.flush()
                self.send_response(400)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[HostileCollector]:
    hostile = HostileCollector()
    hostile.thread.start()
    try:
        yield hostile
    finally:
        hostile.server.shutdown()
        hostile.server.server_close()
        hostile.thread.join(10)


CHILD = textwrap.dedent("""
    import json, sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from lumen_otel._compat import ApiLogRecord, ReadableLogRecord
    from lumen_otel._otlp.exporters import pinned_ca_session
    from lumen_otel._otlp.logs import WireLogExporter

    def peak_rss_kib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise SystemExit("no VmHWM")

    base, path = sys.argv[1], sys.argv[2]
    record = ReadableLogRecord(
        log_record=ApiLogRecord(timestamp=1, body="hello"),
        resource=Resource.create({"service.name": "t"}),
        instrumentation_scope=InstrumentationScope("t"),
    )
    # one export first, so imports and the first connection are in the baseline
    warm = WireLogExporter(endpoint=base + "/small", session=pinned_ca_session(), timeout=20)
    warm_result = warm.export([record])
    before = peak_rss_kib()
    exporter = WireLogExporter(endpoint=base + path, session=pinned_ca_session(), timeout=20)
    result = exporter.export([record])
    after = peak_rss_kib()
    print(json.dumps({"warm": warm_result.name, "result": result.name, "growth_kib": after - before}))
""")


@pytest.mark.integration
class TestExporterMemory:
    @pytest.mark.parametrize(
        ("path", "outcome"),
        [("/big-400", "FAILURE"), ("/big-307", "SUCCESS"), ("/big-200", "SUCCESS")],
    )
    def test_a_50_mb_answer_does_not_grow_the_process_by_its_size(self, collector, path, outcome):
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-c", CHILD, collector.url, path],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(LUMEN_OTEL_STRICT="0"),
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["warm"] == "FAILURE"  # the /small 400
        assert report["result"] == outcome  # upstream counts 3xx as delivered
        growth_mib = report["growth_kib"] / 1024
        assert growth_mib < 20, f"peak RSS grew {growth_mib:.1f} MiB for a {BODY_SIZE >> 20} MiB body"
        # the rest of the body was never read: the server could not write it all
        assert collector.written.get(path, 0) < BODY_SIZE


class TestSessionReadsABoundedPart:
    def test_a_long_body_is_cut_at_the_bound(self, collector):
        response = pinned_ca_session().post(collector.url + "/100k", data=b"x", timeout=10)
        assert response.status_code == 400
        assert response.content == bytes(i % 251 for i in range(100 * 1024))[:MAX_RESPONSE_BODY]

    def test_a_short_body_is_whole(self, collector):
        session = pinned_ca_session()
        for _ in range(2):  # and the connection is reused for the next request
            response = session.post(collector.url + "/small", data=b"x", timeout=10)
            assert (response.status_code, response.text) == (400, "bad request: nope")

    def test_a_compressed_body_is_bounded_after_decompression(self, collector):
        response = pinned_ca_session().post(collector.url + "/gzip-bomb", data=b"x", timeout=30)
        assert response.status_code == 400
        assert response.content == bytes(MAX_RESPONSE_BODY)
