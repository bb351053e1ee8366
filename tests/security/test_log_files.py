"""Safe log files: another local user who can write in the log directory must
not be able to make lumen-otel (here root, as a hospital's service unit often is) truncate,
append to, create or rename over a file outside it, and the directory lumen-otel creates
must not let them in at all.

Every test runs lumen-otel for real in a subprocess (``configure_logging`` with
``LUMEN_LOG_DIR``, a small ``LUMEN_LOG_FILE_MAX_BYTES`` so it rotates) under a real umask,
against real files and real symbolic links. The attacker's steps run as uid/gid 65534
(``nobody``) in a log directory that was left world-writable (lumen-otel keeps an existing
directory's mode), the way a local user would plant a link. The victim is a root-owned
0600 file outside the log directory: the attacker cannot touch it, lumen-otel could.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN, clean_env

pytestmark = pytest.mark.integration

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another local user needs root")

NOBODY = 65534
VICTIM_TEXT = b"MRN 0042 | allergies: penicillin\n" * 200  # 6.8 kB: larger than max_bytes
MAX_BYTES = 1024  # the smallest LUMEN_LOG_FILE_MAX_BYTES: rotation every few records

# lumen-otel as a service: log ``first`` records; with ``second`` > 0, flush, say so, wait
# for a line on stdin (the attacker acts meanwhile), then log ``second`` more.
SERVICE = textwrap.dedent("""
    import logging, sys, lumen_otel
    handle = lumen_otel.configure_logging(service_name="svc", console=False)
    log = logging.getLogger("app")
    first, second = int(sys.argv[1]), int(sys.argv[2])
    for i in range(first):
        log.info("record %05d %s", i, "x" * 60)
    if second:
        assert handle.force_flush(30)
        print("FLUSHED", flush=True)
        sys.stdin.readline()
        for i in range(first, first + second):
            log.info("record %05d %s", i, "x" * 60)
    print("SERVED", flush=True)
""")


@dataclass
class World:
    """A scratch tree ``nobody`` can traverse: ``logs/`` (world-writable) and ``outside/``."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def log(self) -> Path:
        return self.logs / "svc.log"

    @property
    def victim(self) -> Path:
        return self.root / "outside" / "patients.db"


@pytest.fixture
def world() -> Iterator[World]:
    # not under tmp_path: pytest makes its base 0700, and nobody must be able to reach logs/
    root = Path(tempfile.mkdtemp(prefix="lumen-safe-files-"))
    try:
        root.chmod(0o755)
        w = World(root)
        w.logs.mkdir()
        w.logs.chmod(0o777)  # an operator's mistake (or lumen-otel's old umask-000 directory)
        w.victim.parent.mkdir(mode=0o755)
        w.victim.write_bytes(VICTIM_TEXT)
        w.victim.chmod(0o600)
        yield w
    finally:
        shutil.rmtree(root)


def attacker(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a shell step as nobody (uid/gid 65534, no supplementary groups)."""
    return subprocess.run(
        ["sh", "-c", script],
        cwd=cwd,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def plant(link: Path, target: Path) -> None:
    result = attacker(f"ln -s '{target}' '{link.name}'", link.parent)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.lstat(link).st_uid == NOBODY


def service_env(log_dir: Path, backups: int, max_bytes: int = MAX_BYTES) -> dict[str, str]:
    return clean_env(
        LUMEN_LOG_DIR=str(log_dir),
        LUMEN_LOG_FILE_BACKUPS=str(backups),
        LUMEN_LOG_FILE_MAX_BYTES=str(max_bytes),
    )


def serve(
    log_dir: Path, *, backups: int, records: int = 200, umask: int = 0o022, max_bytes: int = MAX_BYTES
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "-c", SERVICE, str(records), "0"],
        env=service_env(log_dir, backups, max_bytes),
        umask=umask,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "SERVED" in result.stdout, result.stderr[-3000:]
    return result


def refusals(stderr: str, path: Path) -> list[str]:
    return [line for line in stderr.splitlines() if f"cannot write the log file {path} (" in line]


def assert_untouched(victim: Path) -> None:
    data = victim.read_bytes()
    if data != VICTIM_TEXT:
        pytest.fail(
            f"lumen-otel changed a file through a link: {len(VICTIM_TEXT)} -> {len(data)} bytes, "
            f"{data.count(b'{')} JSON lines in it"
        )
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def logged_indexes(paths: list[Path]) -> list[int]:
    """Record numbers in the given files; every line must be whole JSON."""
    indexes = []
    for path in paths:
        for line in path.read_text().splitlines():
            message = json.loads(line)["message"]
            if message.startswith("record "):
                indexes.append(int(message.split()[1]))
    return sorted(indexes)


@needs_root
class TestALinkIsNeverFollowed:
    @pytest.mark.parametrize("backups", [0, 3])
    def test_a_link_at_the_log_file_leaves_its_target_as_it_was(self, world, backups):
        """Before: backups=0 truncated the target to 0 bytes, backups=3 appended JSON lines
        to it. Now: one error naming the path, the target byte-for-byte as it was, the link
        left for the operator to see."""
        plant(world.log, world.victim)
        result = serve(world.logs, backups=backups)
        assert_untouched(world.victim)
        errors = refusals(result.stderr, world.log)
        assert len(errors) == 1, result.stderr[-3000:]
        assert "symbolic link" in errors[0] and "LUMEN_LOG_DIR" in errors[0]
        assert os.readlink(world.log) == str(world.victim)
        assert sorted(p.name for p in world.logs.iterdir()) == ["svc.log", "svc.log.lock"]

    def test_a_dangling_link_at_the_lock_file_creates_nothing(self, world):
        """Before: start-up created the link's target, in a directory nobody cannot write."""
        target = world.victim.parent / "created-by-lumen"
        plant(world.logs / "svc.log.lock", target)
        result = serve(world.logs, backups=3)
        assert not os.path.lexists(target)
        errors = refusals(result.stderr, world.logs / "svc.log.lock")
        assert len(errors) == 1 and "symbolic link" in errors[0], result.stderr[-3000:]

    @pytest.mark.parametrize("backups", [0, 3])
    def test_a_link_swapped_in_while_serving_is_refused_and_earlier_lines_are_kept(self, world, backups):
        """The race: the file was fine at start-up, then (as a rotation would leave it, or
        with an unlink) a link replaces it. Before: the writer re-opened the path through
        the link and appended every later line to the target."""
        service = subprocess.Popen(
            [str(VENV_BIN / "python"), "-c", SERVICE, "5", "200"],
            env=service_env(world.logs, backups, max_bytes=64 * 1024),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert service.stdout is not None and service.stdout.readline() == "FLUSHED\n"
            swap = attacker(f"mv svc.log svc.log.before && ln -s '{world.victim}' svc.log", world.logs)
            assert swap.returncode == 0, swap.stderr
            out, err = service.communicate("go\n", timeout=120)
        finally:
            if service.poll() is None:
                service.kill()
                service.communicate()
        assert service.returncode == 0 and "SERVED" in out, err[-3000:]
        assert_untouched(world.victim)
        assert len(refusals(err, world.log)) == 1, err[-3000:]
        assert logged_indexes([world.logs / "svc.log.before"]) == list(range(5))

    def test_a_link_at_the_first_backup_is_replaced_never_written_through(self, world):
        """Rotation renames; rename(2) moves or replaces a link itself. (Today's code was
        already safe here: this pins it.)"""
        plant(world.logs / "svc.log.1", world.victim)
        serve(world.logs, backups=2)
        assert_untouched(world.victim)
        rotated = [world.logs / name for name in ("svc.log.1", "svc.log.2")]
        assert all(stat.S_ISREG(os.lstat(p).st_mode) for p in rotated)  # the link was rotated away
        assert not any(p.is_symlink() for p in world.logs.iterdir())

    def test_a_hard_link_at_the_log_file_is_refused(self, world):
        """A hard link to a file nobody does not own needs fs.protected_hardlinks=0 (made here
        by root). Before: lines were appended to the victim, and with backups=0 it was
        truncated."""
        os.link(world.victim, world.log)
        result = serve(world.logs, backups=0)
        assert_untouched(world.victim)
        errors = refusals(result.stderr, world.log)
        assert len(errors) == 1 and "hard links" in errors[0], result.stderr[-3000:]

    def test_a_fifo_at_the_log_file_neither_blocks_nor_is_written(self, world):
        """Before: opening a FIFO with no reader for writing blocked the writer thread: no
        error, every file line lost, and exit held up for the whole shutdown timeout."""
        result = attacker("mkfifo svc.log", world.logs)
        assert result.returncode == 0, result.stderr
        result = serve(world.logs, backups=3, records=20)
        errors = refusals(result.stderr, world.log)
        assert len(errors) == 1 and "not a regular file" in errors[0], result.stderr[-3000:]

    def test_a_fifo_with_a_reader_behind_it_gets_no_line(self, world):
        """Before: the attacker's reader on a FIFO planted at the log file received every
        line lumen-otel logged."""
        assert attacker("mkfifo svc.log", world.logs).returncode == 0
        reader = subprocess.Popen(
            ["cat", "svc.log"],
            cwd=world.logs,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            result = serve(world.logs, backups=3, records=20)
            for _ in range(200):  # a reader still waiting for a writer: let it see EOF
                if reader.poll() is not None:
                    break
                with contextlib.suppress(OSError):
                    os.close(os.open(world.log, os.O_WRONLY | os.O_NONBLOCK))
                time.sleep(0.05)
            stolen, _ = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.communicate()
        assert stolen == b"", f"the FIFO's reader got {stolen.count(b'{')} log lines"
        assert len(refusals(result.stderr, world.log)) == 1, result.stderr[-3000:]


class TestModes:
    @pytest.mark.parametrize("umask", [0o000, 0o077], ids=["umask-000", "umask-077"])
    def test_the_directories_lumen_creates_are_0750_whatever_the_umask(self, tmp_path, umask):
        log_dir = tmp_path / "var" / "logs"
        serve(log_dir, backups=3, umask=umask)
        assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o750
        assert stat.S_IMODE(log_dir.stat().st_mode) == 0o750

    @needs_root
    def test_under_umask_000_no_other_user_can_plant_a_link_in_the_new_directory(self, world):
        """Before: the directory lumen created under umask 000 was 0777."""
        log_dir = world.root / "fresh"
        serve(log_dir, backups=3, umask=0o000)
        result = attacker(f"ln -s '{world.victim}' fresh/svc.log.9", world.root)
        assert result.returncode != 0 and "Permission denied" in result.stderr
        assert not os.path.lexists(log_dir / "svc.log.9")

    def test_an_existing_directory_keeps_its_mode(self, tmp_path):
        log_dir = tmp_path / "logs"
        log_dir.mkdir(mode=0o700)
        log_dir.chmod(0o2770)
        serve(log_dir, backups=3, umask=0o000)
        assert stat.S_IMODE(log_dir.stat().st_mode) == 0o2770

    @pytest.mark.parametrize("umask", [0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
    def test_the_files_lumen_creates_are_0640_whatever_the_umask(self, tmp_path, umask):
        """Before: 0640 under a permissive umask, but 0600 under 077 (the log shipper in
        the file's group could not read it)."""
        serve(tmp_path, backups=3, umask=umask)
        files = sorted(tmp_path.glob("svc.log*"))  # svc.log itself is gone if the last write rotated
        assert {p.name for p in files} - {"svc.log"} == {
            "svc.log.1",
            "svc.log.2",
            "svc.log.3",
            "svc.log.lock",
        }
        assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
            p.name: "0o640" for p in files
        }

    def test_an_existing_file_keeps_its_mode(self, tmp_path):
        log = tmp_path / "svc.log"
        log.write_bytes(b"")
        log.chmod(0o600)
        serve(tmp_path, backups=0, records=5)
        assert stat.S_IMODE(log.stat().st_mode) == 0o600


class TestLoggingStillWorks:
    @pytest.mark.parametrize("backups", [0, 500])
    def test_every_record_is_in_the_files_as_a_whole_line(self, tmp_path, backups):
        """2000 records, rotation every ~1 kB: with backups every record is in exactly one
        file; with none the file is truncated in place (by fd) and stays small."""
        serve(tmp_path, backups=backups, records=2000, umask=0o000)
        logs = [p for p in tmp_path.glob("svc.log*") if not p.name.endswith(".lock")]
        if backups:
            assert len(logs) > 50  # it really rotated
            assert logged_indexes(logs) == list(range(2000))
        else:
            assert [p.name for p in logs] == ["svc.log"]  # truncated in place, never renamed
            indexes = logged_indexes(logs)  # whole lines; empty if the last write truncated it
            assert indexes == list(range(2000 - len(indexes), 2000))
        assert all(p.stat().st_size < MAX_BYTES + 8192 for p in logs)


@needs_root
class TestFilesOfAnotherUser:
    """A user who can write in the log directory plants files instead of links."""

    def test_a_regular_file_planted_at_the_log_name_is_refused(self, world):
        """Before: the planted world-writable file was written to and rotated, so its owner
        read every record and could truncate or forge them."""
        result = attacker("umask 000; touch svc.log", world.logs)
        assert result.returncode == 0, result.stderr
        result = serve(world.logs, backups=3)
        assert 0 == world.log.stat().st_size
        errors = refusals(result.stderr, world.log)
        assert len(errors) == 1 and "belongs to another user" in errors[0], result.stderr[-3000:]
        assert not (world.logs / "svc.log.1").exists()

    def test_a_lock_held_by_another_process_costs_file_lines_only(self, world, otlp_receiver):
        """Before: the writer waited on the lock for good: no console line, no OTLP record, and
        each request waited for the full queue. Now the file's lines are dropped and counted
        after a bounded wait and every record still reaches OTLP."""
        serve(world.logs, backups=3, records=1)  # the service's own files, then someone locks
        with subprocess.Popen(
            [
                str(VENV_BIN / "python"),
                "-c",
                "import fcntl, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX);"
                " print('LOCKED', flush=True); sys.stdin.readline()",
                str(world.logs / "svc.log.lock"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as holder:
            assert holder.stdout is not None and "LOCKED" in holder.stdout.readline()
            env = service_env(world.logs, 3) | {
                "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
                "LUMEN_SHUTDOWN_TIMEOUT": "30",  # the exit flush outlasts the first batch's lock wait
            }
            result = subprocess.run(
                [str(VENV_BIN / "python"), "-c", SERVICE, "50", "0"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
        assert 0 == result.returncode, result.stderr[-3000:]
        delivered = [log.body for log in otlp_receiver.logs if log.body.startswith("record ")]
        assert 50 == len(delivered)
        assert any("is held by another process" in line for line in refusals(result.stderr, world.log))
        assert [0] == logged_indexes([world.log])  # only the record written before the lock was taken

    def test_a_directory_planted_at_a_rotated_name_keeps_the_retention_and_the_size_limit(self, world):
        """Before: rotation failed on the directory, the error named the live file, and the file
        grew without limit; then every rotation left a new file behind, never pruned. Now the
        directory is moved aside once, rotation keeps its backups as usual (the newest records,
        none torn), the live file stays near its limit and the blocking name is reported."""
        result = attacker("mkdir svc.log.1", world.logs)
        assert result.returncode == 0, result.stderr
        result = serve(world.logs, backups=3, records=200)
        files = [p for p in world.logs.iterdir() if p.name.startswith("svc.log") and p.is_file()]
        files = [p for p in files if not p.name.endswith(".lock")]
        assert len(files) <= 3 + 1
        kept = logged_indexes(files)
        assert list(range(200 - len(kept), 200)) == kept
        bound = MAX_BYTES + 4096 + 200  # a file overshoots its limit by at most one write chunk
        assert [] == [(p.name, p.stat().st_size) for p in files if p.stat().st_size > bound]
        assert any(f"{world.logs / 'svc.log.1'}" in line for line in result.stderr.splitlines())
