"""A rotating JSON-lines file that several worker processes of one service can share.

Why not the stdlib or concurrent-log-handler:

- ``RotatingFileHandler`` rotates per process: two gunicorn workers each rename the file
  under the other's feet, and lines are lost or split across files.
- ``concurrent-log-handler`` takes a lock-file lock around every record; correct, but a
  system call pair per line on the hot path.

Here the writer thread writes whole batches with one ``os.write`` on an ``O_APPEND`` fd
(the kernel appends each call whole, so lines from several processes never interleave),
holding a *shared* ``flock`` on ``<file>.lock``; rotation takes the lock *exclusively*,
re-checks the size and renames ``.log`` → ``.log.1`` → ...; a writer that finds the path
now names another inode re-opens. A line written before a rotation is in ``.log.1``, one
written after it in the new ``.log``: none is lost, none is split.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from lumen_otel._guard import report_once, report_rate_limited

__all__ = ["SharedRotatingFile"]


class SharedRotatingFile:
    """Append-only JSON-lines file with cross-process size rotation."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        self.failed = False

    # -- file descriptors -------------------------------------------------------------
    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _ensure_open(self) -> tuple[int, int]:
        if self._pid != os.getpid():
            # after fork the lock fd is shared with the parent, and flock locks belong to
            # the open file description: open our own so the locks exclude each other
            self._fd = self._lock_fd = None
            self._pid = os.getpid()
        if self._lock_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        if self._fd is None:
            self._fd = self._open()
        return self._fd, self._lock_fd

    def _reopen_if_rotated(self) -> int:
        assert self._fd is not None
        try:
            on_disk = os.stat(self.path)
            mine = os.fstat(self._fd)
            if (on_disk.st_ino, on_disk.st_dev) == (mine.st_ino, mine.st_dev):
                return self._fd
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = self._open()
        return self._fd

    # -- writing ----------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Append ``data`` (whole lines); rotate whenever the file reaches its size.

        Large batches go in chunks of whole lines so a file overshoots ``max_bytes`` by at
        most one chunk. Never raises: an unwritable directory or a full disk is reported
        once and the other sinks keep working. Returns False when data was not written.
        """
        try:
            for chunk in self._chunks(data):
                self._write_chunk(chunk)
            if self.failed:
                self.failed = False
                report_rate_limited("file-recovered", "log file %s is writable again", self.path)
            return True
        except OSError as exc:
            self.failed = True
            report_once(
                f"file-error:{self.path}",
                "cannot write the log file %s (%s); console and OTLP output continue, "
                "file lines are dropped until it is writable again",
                self.path,
                exc.strerror or exc,
            )
            self._close_quietly()
            return False

    def _chunks(self, data: bytes) -> list[bytes]:
        limit = max(4096, self.max_bytes // 8)
        if len(data) <= limit:
            return [data]
        chunks, start = [], 0
        while start < len(data):
            end = data.rfind(b"\n", start, start + limit) + 1
            if end <= start:  # one line longer than the limit: write it whole
                end = data.find(b"\n", start + limit) + 1 or len(data)
            chunks.append(data[start:end])
            start = end
        return chunks

    def _write_chunk(self, chunk: bytes) -> None:
        fd, lock_fd = self._ensure_open()
        fcntl.flock(lock_fd, fcntl.LOCK_SH)
        try:
            fd = self._reopen_if_rotated()
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            size = os.fstat(fd).st_size
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        if size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            try:
                if os.stat(self.path).st_size < self.max_bytes:
                    return  # another process rotated while we waited for the lock
            except FileNotFoundError:
                return
            if self.backups == 0:
                os.truncate(self.path, 0)
                return
            for index in range(self.backups - 1, 0, -1):
                source = Path(f"{self.path}.{index}")
                if source.exists():
                    os.replace(source, f"{self.path}.{index + 1}")
            os.replace(self.path, f"{self.path}.1")
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _close_quietly(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None

    def close(self) -> None:
        self._close_quietly()
