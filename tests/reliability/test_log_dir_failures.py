"""Disk full and an unwritable log directory: one clear error, console and OTLP carry on,
the app keeps serving.

We run as root, so ``chmod`` cannot make a directory unwritable: "unwritable" is a log dir
whose parent is a regular file (``mkdir`` fails with ENOTDIR), and "disk full" is a log
directory on a full 64 KiB tmpfs (every write fails with ENOSPC).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.reliability.conftest import app_env, numbered, uvicorn_argv

pytestmark = pytest.mark.integration


def unwritable(tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file where the log directory's parent should be")
    return blocker / "logs"


def _cannot_mount(why: str) -> None:
    """Skipped where a filesystem cannot be mounted; never under CI, which runs as root."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


def disk_full(tmp_path: Path) -> Path:
    """A 64 KiB tmpfs filled to its last block: creating the log file works, every write fails
    with ENOSPC. (Not a link to /dev/full: lumen-otel refuses to write through a link.)"""
    if os.geteuid() != 0:
        _cannot_mount("mounting a tmpfs needs root")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "lumen-full", str(log_dir)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        _cannot_mount(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    with (log_dir / "filler").open("wb", buffering=0) as filler, contextlib.suppress(OSError):
        for _ in range(1000):  # ENOSPC after 64 KiB
            filler.write(b"\0" * 4096)
    return log_dir


@pytest.fixture(autouse=True)
def _unmount(tmp_path: Path) -> Iterator[None]:
    yield
    if os.path.ismount(tmp_path / "logs"):
        subprocess.run(["umount", str(tmp_path / "logs")], check=True)


class TestLogFileFailures:
    @pytest.mark.parametrize(
        ("case", "make_dir", "reason"),
        [
            ("unwritable", unwritable, "Not a directory"),
            ("disk-full", disk_full, "No space left on device"),
        ],
    )
    def test_one_clear_error_and_console_and_otlp_keep_working(
        self, start_app, receiver, tmp_path, case, make_dir, reason
    ):
        """100 requests: all 200; stderr names the file and the cause exactly once; every
        record is still on the console (JSON) and at the collector."""
        receiver.start()
        log_dir = make_dir(tmp_path)
        port = free_port()
        env = app_env("sick", log_dir, receiver.endpoint)
        app = start_app(uvicorn_argv(port), env, name=case, port=port)
        with httpx.Client(timeout=10) as client:
            assert [200] * 100 == [client.get(f"{app.url}/work/{i}").status_code for i in range(100)]
        assert receiver.wait_for(
            lambda r: numbered([{"message": x["body"]} for x in r.logs()], "work") == list(range(100))
        )
        app.stop()
        errors = [line for line in app.stderr.splitlines() if "cannot write the log file" in line]
        assert len(errors) == 1, app.stderr[-2000:]
        assert str(log_dir / "sick.log") in errors[0] and reason in errors[0]
        console = [json.loads(line) for line in app.stdout.splitlines() if line.startswith("{")]
        assert list(range(100)) == numbered(console, "work")
        print(
            f"\nRESULT {case}: 100/100 requests 200, 1 error line ({errors[0][:140]}), "
            f"console 100/100, OTLP 100/100"
        )
