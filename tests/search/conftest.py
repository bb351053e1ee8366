"""Fixtures for the tests that run a real OpenSearch node.

- ``opensearch``: OpenSearch 2.19.6 in one JVM (tests/search/node/EmbeddedNode.java, built by
  ``tests/search/build-node.sh`` into ``build/opensearch-node/``), on free loopback ports, data
  and logs in a session tmp dir, security off, ``-Xmx512m``; ready once ``/_cluster/health``
  answers (a bounded poll), stopped with SIGTERM at the end of the session. When the node is not
  built or Java is missing the tests skip, and fail instead under ``CI=true`` (as
  ``tests/collector/conftest.py`` does for the collector).
- the collector fixtures of tests/collector/conftest.py (the real ``bin/lumen-otelcol``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import (  # noqa: F401 - fixtures, re-exported for tests/search
    _no_requests_ca_override,
    collector_bin,
    distinct_free_ports,
    loki_stand_in,
    start_collector,
    start_collector_for_module,
    tls_files,
)
from tests.conftest import REPO

NODE_DIR = Path(os.environ.get("LUMEN_OPENSEARCH_NODE_DIR", REPO / "build" / "opensearch-node"))
NODE_CLASS = "health.lumen.search.EmbeddedNode"
SEARCH_CONFIG = REPO / "collector-config" / "search"
INSTALL_SCRIPT = SEARCH_CONFIG / "install.sh"
HOW_TO_BUILD = "build it with `tests/search/build-node.sh` (needs a JDK >= 17, mvn and Maven Central)"


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def require_node() -> tuple[Path, list[Path]]:
    """The java binary and the node's classpath; fail in CI and skip elsewhere when missing."""
    java = shutil.which("java")
    if java is None:
        _unavailable("java is not on PATH (a JDK >= 17)")
    classes = NODE_DIR / "classes"
    launcher = classes / Path(*NODE_CLASS.split(".")).with_suffix(".class")
    if not launcher.is_file() or not (NODE_DIR / "lib" / "opensearch-2.19.6.jar").is_file():
        _unavailable(f"the OpenSearch test node is not built in {NODE_DIR}: {HOW_TO_BUILD}")
    return Path(str(java)), [classes, NODE_DIR / "lib" / "*"]


@dataclass
class OpenSearchNode:
    """A running node and a small JSON client for its REST API."""

    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    log_path: Path
    started_in: float = 0.0  # seconds from exec to a green/yellow /_cluster/health
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """``method path`` with a JSON body; returns the decoded answer, raises on HTTP >= 400."""
        self.requests.append(f"{method} {path}")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback http
            return json.loads(response.read() or b"null")

    def refresh(self, index: str) -> None:
        self.request("POST", f"/{index}/_refresh")

    def search(self, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.request("POST", f"/{index}/_search", body)["hits"]["hits"])

    def wait_for_hits(self, index: str, body: dict[str, Any], count: int, timeout: float = 60.0) -> list[Any]:
        """Refresh and search until at least ``count`` hits; fail with the last answer after ``timeout``."""
        deadline = time.monotonic() + timeout
        hits: list[Any] = []
        for _ in range(int(timeout / 0.25) + 1):
            try:
                self.refresh(index)
                hits = self.search(index, body)
            except urllib.error.HTTPError as error:
                if error.code != 404:  # the data stream does not exist until the first document
                    raise
            if len(hits) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert len(hits) >= count, f"{len(hits)} hits for {body} in {index} after {timeout}s: {hits}"
        return hits

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_node(java: Path, classpath: list[Path], directory: Path, timeout: float = 120.0) -> OpenSearchNode:
    """Start the node on free loopback ports; retried on new ports if another process took them."""
    for attempt in range(3):
        node = _start_node(java, classpath, directory / f"node-{attempt}")
        try:
            _wait_ready(node, timeout)
        except AssertionError:
            node.stop()
            if attempt < 2 and "BindException" in node.output():
                continue
            raise
        return node
    raise AssertionError("unreachable")


def _start_node(java: Path, classpath: list[Path], home: Path) -> OpenSearchNode:
    http_port, transport_port = distinct_free_ports(2)
    home.mkdir(parents=True)
    (home / "tmp").mkdir()
    log_path = home / "node.log"
    argv = [
        str(java),
        "-Xms512m",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        "-Dlog4j2.disable.jmx=true",
        "-Dlog4j.shutdownHookEnabled=false",
        "-cp",
        os.pathsep.join(str(p) for p in classpath),
        NODE_CLASS,
        str(home),
        str(http_port),
        str(transport_port),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    return OpenSearchNode(proc, http_port, home, log_path)


def _wait_ready(node: OpenSearchNode, timeout: float) -> None:
    started = time.monotonic()
    deadline = started + timeout
    url = f"{node.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
    for _ in range(int(timeout / 0.2) + 1):
        if node.proc.poll() is not None:
            raise AssertionError(f"the OpenSearch node exited with {node.proc.returncode}:\n{node.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http
                if json.load(response).get("status") in ("green", "yellow"):
                    node.started_in = time.monotonic() - started
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise AssertionError(f"the OpenSearch node was not ready within {timeout}s:\n{node.output()}")


@pytest.fixture(scope="session")
def opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearchNode]:
    java, classpath = require_node()
    node = start_node(java, classpath, tmp_path_factory.mktemp("opensearch"))
    print(f"\nOpenSearch test node ready on {node.url} in {node.started_in:.1f}s")
    yield node
    node.stop()


def install_templates(node: OpenSearchNode) -> subprocess.CompletedProcess[str]:
    """collector-config/search/install.sh against the node (template only: no ISM plugin here)."""
    return subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "--no-policy", node.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
