"""``lumen-otel insights --opensearch`` against a real node: the same insights as from a log directory.

A baseline hour and a window hour of records are indexed in the document shape of the collector's
``lumen_search`` exporter, and written as lumen JSON log lines into a log directory. The window
holds a template new since the baseline and a burst of errors; both sources must give the same
``--json`` insights.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VENV_BIN, clean_env
from tests.search.conftest import OpenSearchNode, install_templates
from tests.search.test_trace_opensearch import T0, _document, _line

pytestmark = [pytest.mark.search, pytest.mark.integration]

INDEX = "logs-lumen-insightstest"
HOUR = 3600.0


def _lines() -> list[dict[str, Any]]:
    lines = []
    for i in range(60):  # the baseline hour: steady traffic
        lines.append(_line(i * 60, "media", "INFO", "media.app", f"stored image {i} of exam EX-{100 + i}"))
    for i in range(60):  # the window hour: the same traffic, plus something new and an error burst
        lines.append(
            _line(HOUR + i * 60, "media", "INFO", "media.app", f"stored image {i} of exam EX-{200 + i}")
        )
    for i in range(12):
        cid = str(uuid.uuid4())
        message = f"PACS upload failed after {i + 1} retries"
        lines.append(_line(HOUR + 1800 + i, "media", "ERROR", "media.app", message, cid=cid))
    lines.append(_line(HOUR + 1900, "media", "WARNING", "media.app", "cache warmed in 812 ms"))
    return lines


def _insights(source: list[str]) -> dict[str, Any]:
    since = (T0 + dt.timedelta(seconds=HOUR)).isoformat()
    until = (T0 + dt.timedelta(seconds=2 * HOUR)).isoformat()
    done = subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "insights", *source, "--since", since, "--until", until, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(NO_COLOR="1"),
        check=False,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in data["templates"]}


def _counts(data: dict[str, Any]) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {
        (t["service"], t["level"], t["template"]): (t["count"], t["baseline_count"])
        for t in data["templates"]
    }


@pytest.fixture(scope="module")
def sources(opensearch: OpenSearchNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    installed = install_templates(opensearch)
    assert 0 == installed.returncode, installed.stdout + installed.stderr
    lines = _lines()
    bulk = "".join(
        json.dumps({"create": {"_index": INDEX}}) + "\n" + json.dumps(_document(line)) + "\n"
        for line in lines
    )
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{opensearch.url}/_bulk?refresh=true",
        data=bulk.encode(),
        method="POST",
        headers={"Content-Type": "application/x-ndjson"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert not json.load(response)["errors"]
    log_dir: Path = tmp_path_factory.mktemp("insights-logs")
    with (log_dir / "media.log").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)
    return {
        "opensearch": ["--opensearch", opensearch.url, "--index", INDEX],
        "log-dir": ["--log-dir", str(log_dir)],
    }


def test_the_node_and_the_log_directory_give_the_same_insights(sources: dict[str, list[str]]) -> None:
    from_search = _insights(sources["opensearch"])
    from_files = _insights(sources["log-dir"])
    assert _counts(from_files) == _counts(from_search)
    for key in ("new", "spikes", "errors", "records"):
        assert from_files[key] == from_search[key], key


def test_the_window_shows_the_new_templates_and_the_error_burst_with_ids_to_follow(
    sources: dict[str, list[str]],
) -> None:
    data = _insights(sources["opensearch"])
    assert {"window": 73, "baseline": 60} == {k: data["records"][k] for k in ("window", "baseline")}
    templates = _by_id(data)
    errors = [templates[i] for i in data["errors"]]
    assert [("media", "ERROR", 12)] == [(t["service"], t["level"], t["count"]) for t in errors]
    assert errors[0]["new"]
    assert 1 <= len(errors[0]["correlation_ids"]) <= 5
    assert all(uuid.UUID(cid) for cid in errors[0]["correlation_ids"])
    new_levels = {templates[i]["level"] for i in data["new"]}
    assert {"ERROR", "WARNING"} == new_levels
    steady = [t for t in templates.values() if t["level"] == "INFO"]
    assert [(60, 60, False)] == [(t["count"], t["baseline_count"], t["new"]) for t in steady]
