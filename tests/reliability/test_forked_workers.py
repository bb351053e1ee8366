"""Forked workers: gunicorn ``--preload`` with 2 workers (sync WSGI and UvicornWorker) and
``uvicorn --workers 2``. Every worker exports under its own ``service.instance.id``, nothing
deadlocks, nothing is lost at shutdown, and both workers share one rotating log file
without losing or splitting a line."""

from __future__ import annotations

import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import VENV_BIN, free_port
from tests.reliability.conftest import app_env, numbered

pytestmark = pytest.mark.integration

REQUESTS = 400


def uvicorn_worker_available() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import uvicorn.workers  # noqa: F401
        except ImportError:
            return False
    return True


def gunicorn_argv(port: int, app: str, worker_class: str) -> list[str]:
    return [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "gunicorn"),
        "--preload",
        "--workers",
        "2",
        "--worker-class",
        worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
        app,
    ]


SERVERS = {
    "gunicorn-sync-wsgi": lambda port: gunicorn_argv(port, "rel_wsgi:application", "sync"),
    "gunicorn-uvicorn-worker": lambda port: gunicorn_argv(
        port, "rel_app:app", "uvicorn.workers.UvicornWorker"
    ),
    "uvicorn-workers-2": lambda port: [
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "uvicorn"),
        "rel_app:app",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ],
}


class TestForkedWorkers:
    @pytest.mark.parametrize("server", list(SERVERS))
    def test_each_worker_exports_as_itself_and_nothing_is_lost(self, start_app, receiver, tmp_path, server):
        """400 requests, 8 in flight, over two workers; then SIGTERM to the master. Both
        workers answered; each pid exported under one ``service.instance.id`` of its own;
        every record reached the collector and the (rotated, shared) file exactly once."""
        if server == "gunicorn-uvicorn-worker" and not uvicorn_worker_available():
            pytest.skip("uvicorn.workers is not in the installed uvicorn (uvicorn --workers 2 covers it)")
        receiver.start()
        port = free_port()
        env = app_env(
            "forked",
            tmp_path / "logs",
            receiver.endpoint,
            LUMEN_LOG_FILE_MAX_BYTES=str(32 * 1024),
            LUMEN_LOG_FILE_BACKUPS="500",
        )
        health = "/work/0" if server == "gunicorn-sync-wsgi" else "/health"
        app = start_app(SERVERS[server](port), env, name=server, port=port, health=health, ready_timeout=120)

        # a fresh connection per request: the kernel hands each accept to whichever worker
        # wakes first, so a few kept-alive connections can all belong to one worker
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
        sent = 0
        pids: set[int] = set()
        with httpx.Client(timeout=20, limits=limits) as client:

            def one(i: int) -> int:
                response = client.get(f"{app.url}/work/{i}")
                assert response.status_code == 200
                return int(response.json()["pid"])

            with ThreadPoolExecutor(8) as pool:
                # both workers must answer; a bounded top-up if one took every connection
                for batch in (REQUESTS, 100, 100, 100):
                    pids |= set(pool.map(one, range(sent + 1, sent + batch + 1)))
                    sent += batch
                    if len(pids) == 2:
                        break
        assert len(pids) == 2, f"one worker answered all {sent} requests: {pids}"
        seconds = app.stop(timeout=30)

        expected = sorted([0, *range(1, sent + 1)]) if health == "/work/0" else list(range(1, sent + 1))
        assert expected == numbered(app.file_records("forked"), "work")
        rotated = len([p for p in app.log_dir.glob("forked.log.*") if not p.name.endswith(".lock")])
        assert rotated >= 3

        logs = [log for log in receiver.logs() if str(log["body"]).startswith("work ")]
        assert expected == numbered([{"message": log["body"]} for log in logs], "work")
        instances: dict[int, set[str]] = defaultdict(set)
        for log in logs:
            instances[int(log["attributes"]["pid"])].add(log["resource"]["service.instance.id"])
        assert pids == set(instances)
        assert [1] * len(pids) == [len(ids) for ids in instances.values()]
        assert len(set.union(*instances.values())) == len(pids)
        # every worker exports: each one's start-up record arrives under its own instance id
        started = {
            log["resource"]["service.instance.id"]
            for log in receiver.logs()
            if str(log["body"]).startswith(("Started server process", "Booting worker"))
        }
        assert len(started) == 2, started
        print(
            f"\nRESULT {server}: {sent} requests over pids {sorted(pids)}, "
            f"{len(set.union(*instances.values()))} instance id(s) answering, {len(started)} started, "
            f"{len(logs)} records delivered, file {len(expected)} lines over {rotated + 1} files, "
            f"stopped in {seconds:.2f} s"
        )
