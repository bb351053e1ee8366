"""``make demo`` / ``lumen-otel demo``: four real services, one request, one trace, no PHI out."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lumen_otel.demo._orchestrator import DemoError, DemoRun, ServiceSpec, find_collector
from lumen_otel.demo._patient import SYNTHETIC_PATIENT
from tests.conftest import REPO, VENV_BIN, clean_env

pytestmark = pytest.mark.integration

SERVICES = ("reports", "media", "dubin", "hl7-listener")
#: what must never leave a process: the synthetic patient's identifying values
PHI = (
    SYNTHETIC_PATIENT["family_name"],
    SYNTHETIC_PATIENT["given_name"],
    SYNTHETIC_PATIENT["mrn"],
    SYNTHETIC_PATIENT["ssn"],
    SYNTHETIC_PATIENT["ssn"].replace("-", ""),
    SYNTHETIC_PATIENT["street"],
    SYNTHETIC_PATIENT["phone"],
    SYNTHETIC_PATIENT["dob"],
)
TITLE = re.compile(r"^Request (?P<cids>\S+(?:, \S+)*)  trace (?P<tids>\S+(?:, \S+)*)$", re.MULTILINE)
SPAN_LINE = re.compile(r"^[\s│├└─]*(?P<service>reports|media|dubin|hl7-listener)  ", re.MULTILINE)


def demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), "demo", *args],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def log_dir_of(output: str) -> Path:
    match = re.search(r"--log-dir (\S+)\s*$", output, re.MULTILINE)  # make -w adds lines after it
    assert match, output
    return Path(match.group(1))


def records(log_dir: Path, service: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (log_dir / f"{service}.log").read_text().splitlines() if line]


def assert_no_phi(text: str, where: str) -> None:
    leaked = [value for value in PHI if value in text]
    assert [] == leaked, f"PHI in {where}"


class TestMakeDemo:
    def test_make_demo_prints_one_trace_across_four_services_with_phi_masked(self):
        """The README's first command: one correlation ID, one trace id, four services, no PHI."""
        done = subprocess.run(
            ["make", "demo"],
            cwd=REPO,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        output = done.stdout + done.stderr
        assert 0 == done.returncode, output
        title = TITLE.search(done.stdout)
        assert title, done.stdout
        cid, trace_id = title["cids"], title["tids"]
        assert "," not in cid and "," not in trace_id, title.group(0)
        assert trace_id == uuid.UUID(cid).hex
        assert set(SERVICES) == set(SPAN_LINE.findall(done.stdout))
        assert "4 services · 1 correlation ID · 1 trace · " in done.stdout
        for message in (
            "Exam created",
            "Image upload complete",
            "Criteria query resolved",
            "HL7 message received:",
            "HL7 audit: message accepted",
        ):
            assert message in done.stdout
        # the HL7 message is one record, so one escaped line (segments joined by a visible \r),
        # which Rich may wrap at a space under the tree's guides but never splits at the \r
        assert "MSH|^~\\&|LUMEN_MEDIA|LUMEN|LUMEN_HL7|LUMEN|" in done.stdout
        assert "|P|2.5.1\\rPID|1||" in done.stdout
        assert "PID|1||[REDACTED:MRN]^^^LUMEN^MR||[REDACTED:NAME]^[REDACTED:NAME]" in done.stdout
        assert_no_phi(output, "the demo's output")

        log_dir = log_dir_of(done.stdout)
        try:
            self.check_log_files(log_dir, cid, trace_id)
        finally:
            shutil.rmtree(log_dir, ignore_errors=True)  # the demo keeps its logs for the user

    def check_log_files(self, log_dir: Path, cid: str, trace_id: str) -> None:
        for service in SERVICES:
            text = (log_dir / f"{service}.log").read_text()
            assert_no_phi(text, f"{service}.log")
            assert_no_phi((log_dir / f"{service}.out").read_text(), f"{service}.out")
            mine = [r for r in records(log_dir, service) if r["correlation_id"] == cid]
            assert mine, service
            assert {trace_id} == {r["trace_id"] for r in mine}


class TestDemoOptions:
    def test_given_cid_and_log_dir_are_used_and_every_file_is_clean(self, tmp_path):
        cid = str(uuid.uuid4())
        done = demo("--cid", cid, "--log-dir", str(tmp_path))
        assert 0 == done.returncode, done.stdout + done.stderr
        assert f"Request {cid}  trace {uuid.UUID(cid).hex}" in done.stdout
        assert tmp_path.resolve() == log_dir_of(done.stdout)
        for service in SERVICES:
            mine = [r for r in records(tmp_path, service) if r["correlation_id"] == cid]
            assert {uuid.UUID(cid).hex} == {r["trace_id"] for r in mine}
        for path in tmp_path.iterdir():
            assert_no_phi(path.read_text(errors="replace"), path.name)

    def test_invalid_cid_is_refused_before_anything_starts(self, tmp_path):
        done = demo("--cid", "bad id\twith tab", "--log-dir", str(tmp_path), timeout=60)
        assert 2 == done.returncode
        assert "is not a valid correlation ID" in done.stdout
        assert [] == list(tmp_path.iterdir())

    def test_collector_flag_without_the_binary_says_how_to_build_it(self, tmp_path):
        with pytest.raises(
            DemoError, match=r"--collector needs the lumen-otelcol binary: run `make collector`"
        ):
            find_collector([tmp_path])

    def test_a_service_that_cannot_start_stops_the_run_with_its_own_output(self, tmp_path):
        """A missing module, a taken port...: the error says which service and shows why."""
        broken = ServiceSpec("broken", "fastapi", "lumen_otel.demo.no_such_module:app")
        run = DemoRun(tmp_path, services=(broken,))
        try:
            with pytest.raises(DemoError) as raised:
                run.start(timeout=60)
        finally:
            run.stop()
        message = str(raised.value)
        assert message.startswith("broken exited with status 3 while starting"), message
        assert 'Could not import module "lumen_otel.demo.no_such_module"' in message


COLLECTOR = REPO / "bin" / "lumen-otelcol"


@pytest.mark.collector
class TestDemoThroughTheCollector:
    def test_every_service_reaches_the_collector_and_its_files_hold_no_phi(self, tmp_path):
        if not COLLECTOR.exists():
            if os.environ.get("CI") == "true":
                pytest.fail("bin/lumen-otelcol is missing: CI must run `make collector` first")
            pytest.skip("bin/lumen-otelcol is not built (make collector)")
        cid = str(uuid.uuid4())
        done = demo("--collector", "--cid", cid, "--log-dir", str(tmp_path))
        assert 0 == done.returncode, done.stdout + done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("Through lumen-otelcol:"))
        assert re.match(
            r"Through lumen-otelcol: \d+ log records and \d+ spans of this trace from 4 services", line
        )
        collector_logs = (tmp_path / "collector" / "logs.jsonl").read_text()
        assert uuid.UUID(cid).hex in collector_logs
        for path in (tmp_path / "collector").iterdir():
            assert_no_phi(path.read_text(errors="replace"), path.name)


def demo_processes(log_dir: Path) -> list[int]:
    """Pids of live processes started for this log directory (read from /proc)."""
    pids = []
    marker = f"LUMEN_LOG_DIR={log_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().split(") ", 1)[1][0]
                if state != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc to find the services")
class TestDemoStopsEverything:
    def start(self, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(VENV_BIN / "lumen-otel"), "demo", "--log-dir", str(tmp_path), *args],
            cwd=REPO,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_line(self, proc: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
        seen = []
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"no {text!r} in:\n{''.join(seen)}")

    def close(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()

    def stopped(self, proc: subprocess.Popen[str], tmp_path: Path) -> int:
        code = proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while demo_processes(tmp_path.resolve()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [] == demo_processes(tmp_path.resolve())
        return code

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
    def test_a_signal_while_services_run_stops_them_all(self, tmp_path, sig):
        """``--keep`` leaves them running; Ctrl-C or SIGTERM then stops every one of them."""
        proc = self.start(tmp_path, "--keep")
        try:
            self.wait_for_line(proc, "Services still running")
            assert 4 <= len(demo_processes(tmp_path.resolve()))
            proc.send_signal(sig)
            assert 0 == self.stopped(proc, tmp_path)
        finally:
            self.close(proc)

    def test_sigterm_during_start_up_leaves_no_orphans(self, tmp_path):
        proc = self.start(tmp_path)
        try:
            self.wait_for_line(proc, "Starting the Lumen demo")
            deadline = time.monotonic() + 30
            while len(demo_processes(tmp_path.resolve())) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGTERM)
            assert 130 == self.stopped(proc, tmp_path)
        finally:
            self.close(proc)
