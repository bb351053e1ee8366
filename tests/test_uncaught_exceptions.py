"""Exceptions nobody caught, in the main thread or in another one, leave the process redacted.

Python prints them raw to stderr; with lumen-otel set up they are logged on ``lumen_otel.uncaught``
instead and reach the file and the console like any other record.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, clean_env

pytestmark = pytest.mark.integration

SSN = "321-54-9876"

THREAD = textwrap.dedent(f"""
    import threading
    import lumen_otel

    lumen_otel.configure_logging(service_name="crashy", console=CONSOLE)

    def work():
        raise ValueError("thread failed for patient Sarah Murphy SSN {SSN}")

    thread = threading.Thread(target=work, name="worker-1")
    thread.start()
    thread.join()
    print("still running")
""")

MAIN = textwrap.dedent(f"""
    import lumen_otel

    lumen_otel.configure_logging(service_name="crashy", console=CONSOLE)
    raise RuntimeError("start-up failed for patient Sarah Murphy SSN {SSN}")
""")


def run(script: str, tmp_path: Path, *, console: bool) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", script.replace("CONSOLE", str(console))],
        env=clean_env(LUMEN_LOG_DIR=str(tmp_path), LUMEN_ENV="prod"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in (tmp_path / "crashy.log").read_text().splitlines()]
    return done, lines


def uncaught(lines: list[dict]) -> list[tuple[str, str, str]]:
    return [
        (line["level"], line["message"], line["exception"]["message"])
        for line in lines
        if line["logger"] == "lumen_otel.uncaught"
    ]


@pytest.mark.parametrize("console", [True, False], ids=["console", "no-console"])
def test_a_threads_uncaught_exception_is_logged_redacted(tmp_path: Path, console: bool) -> None:
    done, lines = run(THREAD, tmp_path, console=console)
    assert 0 == done.returncode, done.stderr
    assert "still running" in done.stdout
    assert [
        (
            "ERROR",
            "uncaught exception in thread worker-1",
            "thread failed for patient [REDACTED:NAME] SSN [REDACTED:SSN]",
        )
    ] == uncaught(lines)
    for output in (done.stdout, done.stderr):
        assert SSN not in output and "Sarah Murphy" not in output


@pytest.mark.parametrize("console", [True, False], ids=["console", "no-console"])
def test_a_crash_of_the_main_thread_is_logged_redacted_and_still_seen(tmp_path: Path, console: bool) -> None:
    done, lines = run(MAIN, tmp_path, console=console)
    assert 1 == done.returncode
    assert [
        (
            "CRITICAL",
            "uncaught exception",
            "start-up failed for patient [REDACTED:NAME] SSN [REDACTED:SSN]",
        )
    ] == uncaught(lines)
    for output in (done.stdout, done.stderr):
        assert SSN not in output and "Sarah Murphy" not in output
    seen = done.stdout if console else done.stderr  # prod: lumen's console is JSON on stdout
    assert "RuntimeError: start-up failed for patient [REDACTED:NAME] SSN [REDACTED:SSN]" in seen
