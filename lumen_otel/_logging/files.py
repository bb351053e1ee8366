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

Safe files: another local user who can write in the log directory must not be able to make
lumen-otel (often root, in a hospital's service unit) write, create or truncate some other
file. So the log file and its lock are opened with ``O_NOFOLLOW`` (a symbolic link there is
refused, never followed, and nothing is created at its target), must be regular files with
no other hard link, and everything after the open goes through the fd: the size check and
truncation (``os.fstat``, ``os.ftruncate``) and every write. Rotation renames, and
``rename(2)`` moves a link planted at ``.log.1`` itself, never its target. A refused file is
reported (rate-limited) and its lines dropped; console and OTLP output continue. The
directories lumen-otel creates are ``0750`` and the files it creates ``0640``, whatever the
umask; an existing directory or file keeps its mode.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
from pathlib import Path

from lumen_otel._guard import report_once, report_rate_limited

__all__ = ["DIR_MODE", "FILE_MODE", "SharedRotatingFile", "UnsafeLogFile"]

DIR_MODE = 0o750
FILE_MODE = 0o640
_OPEN_ATTEMPTS = 8  # create-or-open races with another process's rotation: bounded retries


class UnsafeLogFile(OSError):
    """The log file (or its lock) is a link or not a plain regular file: never written through."""


def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each ``DIR_MODE`` whatever the umask.

    Directories that already exist (made by the operator or by another worker a moment ago)
    keep their mode. The chmod goes through an fd opened with ``O_NOFOLLOW``, so a link
    swapped in for a directory we just made is never followed.
    """
    if directory.is_dir():
        return
    missing: list[Path] = []
    current = directory
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)  # the umask can only take bits away: never wider than 0750
        except FileExistsError:
            continue  # another worker made it: not ours to chmod
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, DIR_MODE)  # put back what a strict umask (077) took away
        finally:
            os.close(fd)


def open_regular(path: Path, flags: int) -> int:
    """Open, or create with ``FILE_MODE``, the regular file at ``path``, never through a link.

    ``O_NONBLOCK`` on the open keeps a FIFO planted there from blocking the writer thread;
    it is cleared again once the fd is known to be a regular file.

    Raises:
        UnsafeLogFile: ``path`` is a symbolic link, not a regular file, or has other hard links.
        OSError: anything else the open raises (no such directory, permission, disk).
    """
    base = flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    for _ in range(_OPEN_ATTEMPTS):
        created = True
        try:
            # O_EXCL never follows a link: a dangling one makes this EEXIST, not a new target
            fd = os.open(path, base | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, base)
            except FileNotFoundError:
                continue  # renamed away by a rotation between the two opens: create it
            except OSError as exc:
                _raise_if_unsafe(path, None)
                raise exc from None
        try:
            _check_regular(path, fd, created)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise OSError(errno.EAGAIN, f"{path} kept disappearing while it was opened", str(path))


def _check_regular(path: Path, fd: int, created: bool) -> None:
    info = os.fstat(fd)
    _raise_if_unsafe(path, info)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    if created and stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)  # the umask masked the create mode; a file we did not create keeps its own


def _raise_if_unsafe(path: Path, info: os.stat_result | None) -> None:
    """Raise UnsafeLogFile for a link (from ``lstat``) or for the fd's file ``info``."""
    if info is None:
        try:
            info = os.lstat(path)
        except OSError:
            return  # gone: the caller re-raises the open's own error
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeLogFile(
                errno.ELOOP, "it is a symbolic link, and lumen-otel never writes through one", str(path)
            )
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeLogFile(errno.EINVAL, "it is not a regular file", str(path))
    if info.st_nlink > 1:
        raise UnsafeLogFile(
            errno.EMLINK, "it has other hard links, and lumen-otel never writes through one", str(path)
        )


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
        make_dirs(self.path.parent)
        return open_regular(self.path, os.O_WRONLY | os.O_APPEND)

    def _ensure_open(self) -> tuple[int, int]:
        if self._pid != os.getpid():
            # after fork the lock fd is shared with the parent, and flock locks belong to
            # the open file description: open our own so the locks exclude each other
            self._fd = self._lock_fd = None
            self._pid = os.getpid()
        if self._lock_fd is None:
            make_dirs(self.path.parent)
            self._lock_fd = open_regular(Path(f"{self.path}.lock"), os.O_RDWR)
        if self._fd is None:
            self._fd = self._open()
        return self._fd, self._lock_fd

    def _reopen_if_rotated(self) -> int:
        """The fd of the file now at ``self.path`` (a link there is never followed)."""
        assert self._fd is not None
        try:
            on_disk = os.lstat(self.path)
            mine = os.fstat(self._fd)
            if (on_disk.st_ino, on_disk.st_dev) == (mine.st_ino, mine.st_dev):
                return self._fd
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
        self._fd = self._open()
        return self._fd

    # -- writing ----------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Append ``data`` (whole lines); rotate whenever the file reaches its size.

        Large batches go in chunks of whole lines so a file overshoots ``max_bytes`` by at
        most one chunk. Never raises: an unwritable directory or a full disk is reported
        once, a link or other unsafe file at the path (at start-up or planted later) at most
        once a minute, and the other sinks keep working. Returns False when data was not
        written.
        """
        try:
            for chunk in self._chunks(data):
                self._write_chunk(chunk)
            if self.failed:
                self.failed = False
                report_rate_limited("file-recovered", "log file %s is writable again", self.path)
            return True
        except UnsafeLogFile as exc:
            self.failed = True
            report_rate_limited(
                f"file-unsafe:{exc.filename}",
                "cannot write the log file %s (%s; remove it, and set LUMEN_LOG_DIR to a "
                "directory only the service's user can write); console and OTLP output "
                "continue, file lines are dropped until it is a regular file again",
                exc.filename,
                exc.strerror,
                level=logging.ERROR,
            )
            self._close_quietly()
            return False
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
            # size and truncation by the fd of the file now at the path, opened without
            # following a link: a link swapped in is refused, never measured or truncated
            fd = self._reopen_if_rotated()
            if os.fstat(fd).st_size < self.max_bytes:
                return  # another process rotated while we waited for the lock
            if self.backups == 0:
                os.ftruncate(fd, 0)
                return
            # rename(2) never follows a link at either name: a link planted at .log.N is
            # moved or replaced itself, its target untouched
            for index in range(self.backups - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")
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
