"""A rotating JSON-lines file that several worker processes of one service can share.

Why not the stdlib or concurrent-log-handler:

- ``RotatingFileHandler`` rotates per process: two gunicorn workers each rename the file
  under the other's feet, and lines are lost or split across files.
- ``concurrent-log-handler`` takes a lock-file lock around every record; correct, but a
  system call pair per line on the hot path.

Here the writer thread writes whole batches with one ``os.write`` on an ``O_APPEND`` fd,
holding an exclusive ``flock`` on ``<file>.lock`` (one lock call per batch, not per line);
rotation takes the same lock, re-checks the size and renames ``.log`` → ``.log.1`` → ...;
a writer that finds the path now names another inode re-opens. A line written before a
rotation is in ``.log.1``, one written after it in the new ``.log``: none is lost, none is
split.

Whole lines or none: a disk that fills up mid-write (``ENOSPC``, a quota, a file size
limit) leaves a partial write. Because every writer holds the lock exclusively, the size
measured before the write is the known end of the last whole line; the partial tail is cut
back (``os.ftruncate``) to the last whole line that did fit, and the lines that did not are
reported back to the caller to count (``disk_full``). Writing resumes by itself once there
is space: the next batch simply goes in whole. No torn line, and no line glued onto one.

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
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from lumen_otel._guard import report_once, report_rate_limited
from lumen_otel._state import STATE

__all__ = ["DIR_MODE", "FILE_MODE", "SharedRotatingFile", "UnsafeLogFile"]

DIR_MODE = 0o750
FILE_MODE = 0o640
_OPEN_ATTEMPTS = 8  # create-or-open races with another process's rotation: bounded retries
# the disk (or the quota, or RLIMIT_FSIZE) is full: lines are dropped until there is room again
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class _Unwritten(OSError):
    """A write failed after ``kept`` bytes of the chunk (whole lines) went in."""

    def __init__(self, cause: OSError, kept: int) -> None:
        super().__init__(cause.errno, cause.strerror, cause.filename)
        self.kept = kept


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
    if info.st_uid != os.geteuid():
        # planted by another user of a shared directory: that user could read the records,
        # truncate them, or hold the file's lock and stall the writer
        raise UnsafeLogFile(
            errno.EPERM,
            f"it belongs to another user (uid {info.st_uid}), and lumen-otel writes only its own files",
            str(path),
        )


class LockHeld(OSError):
    """Another process held the log file's lock longer than :data:`LOCK_WAIT`."""


#: longest the writer thread waits for the lock another process holds (a worker of the same
#: service holds it for one write); past it that batch's lines are dropped and counted
LOCK_WAIT = 5.0


def _lock_exclusive(lock_fd: int, path: Path) -> None:
    """``flock(LOCK_EX)`` that gives up after :data:`LOCK_WAIT`: a process holding the lock for
    good (anyone who can open the lock file can ``flock`` it) must not stall the writer thread,
    and with it OTLP export, for the life of the service."""
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + LOCK_WAIT
    pause = 0.001
    while True:
        time.sleep(pause)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockHeld(
                    errno.EWOULDBLOCK, f"its lock {path}.lock is held by another process", str(path)
                ) from None
            pause = min(pause * 2, 0.05)


def _replaceable(name: str, missing_ok: bool = False) -> bool:
    """Whether rotation may move or replace ``name``: a regular file or a link (``rename(2)``
    moves or replaces the link itself); not a directory or anything else planted there."""
    try:
        info = os.lstat(name)
    except FileNotFoundError:
        return missing_ok
    return stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)


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
        #: why the last :meth:`write` lost lines: ``disk_full``, ``file_unsafe``, ``file_locked``
        #: or ``file_error``
        self.last_failure: str | None = None
        #: after the lock wait ran out, batches are dropped at once until then (monotonic)
        self._lock_held_until = 0.0
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=partial_after_fork(weakref.ref(self)))

    # -- file descriptors -------------------------------------------------------------
    def _open(self) -> int:
        make_dirs(self.path.parent)
        return open_regular(self.path, os.O_WRONLY | os.O_APPEND)

    def _ensure_open(self) -> tuple[int, int]:
        if self._pid != os.getpid():
            # after fork the lock fd is shared with the parent, and flock locks belong to
            # the open file description: open our own so the locks exclude each other (the
            # inherited fds are closed: the parent's locks and file stay as they are)
            self._close_quietly()
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
    def write(self, data: bytes) -> int:
        """Append ``data`` (whole lines); rotate whenever the file reaches its size.

        Large batches go in chunks of whole lines so a file overshoots ``max_bytes`` by at
        most one chunk. Never raises: an unwritable directory or a full disk is reported
        once, a link or other unsafe file at the path (at start-up or planted later) at most
        once a minute, and the other sinks keep working. Returns the number of lines *not*
        written (0: all of them), with the reason in :attr:`last_failure`; every line is in
        the file whole or not at all.
        """
        done = 0  # bytes of ``data`` written whole
        if self._lock_held_until and time.monotonic() < self._lock_held_until:
            self.last_failure = "file_locked"
            return data.count(b"\n") or 1
        try:
            for chunk in self._chunks(data):
                self._write_chunk(chunk)
                done += len(chunk)
            if self.failed:
                self.failed = False
                if report_rate_limited("file-recovered", "log file %s is writable again", self.path):
                    # said "writable again": the next failure must be said at once, or lines are
                    # lost while the last word on stderr is that all is well
                    self._forget_failure_reports()
            return 0
        except UnsafeLogFile as exc:
            self.failed = True
            self.last_failure = "file_unsafe"
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
        except OSError as exc:
            self.failed = True
            if isinstance(exc, _Unwritten):
                done += exc.kept
            if isinstance(exc, LockHeld):
                # the lock is held for good: drop (and count) at once for a while, not per batch
                self._lock_held_until = time.monotonic() + 10 * LOCK_WAIT
                self.last_failure = "file_locked"
                report_rate_limited(
                    f"file-locked:{self.path}",
                    "cannot write the log file %s (%s); console and OTLP output continue, "
                    "file lines are dropped and counted until the lock is free",
                    self.path,
                    exc.strerror,
                    level=logging.ERROR,
                )
                return data.count(b"\n", done) or 1
            full = exc.errno in _FULL
            self.last_failure = "disk_full" if full else "file_error"
            report_once(
                f"file-error:{self.path}",
                "cannot write the log file %s (%s); console and OTLP output continue, "
                "file lines are dropped until it is writable again",
                self.path,
                exc.strerror or exc,
            )
            if not full:  # a full disk is no fault of the fd: keep it for when space returns
                self._close_quietly()
        return data.count(b"\n", done) or 1

    def _forget_failure_reports(self) -> None:
        """Lift the rate limits of this file's failure reports (a recovery was announced)."""
        for key in (
            f"file-error:{self.path}",
            f"file-locked:{self.path}",
            f"file-unsafe:{self.path}",
            f"file-unsafe:{self.path}.lock",
        ):
            STATE.reported.pop(key, None)

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
        _lock_exclusive(lock_fd, self.path)
        try:
            fd = self._reopen_if_rotated()
            # every writer holds the lock exclusively: this is where our lines start, and
            # what a partial write is cut back to
            start = os.fstat(fd).st_size
            view = memoryview(chunk)
            written = 0
            try:
                while written < len(chunk):
                    written += os.write(fd, view[written:])
            except OSError as exc:
                kept = chunk.rfind(b"\n", 0, written) + 1 if written else 0
                if written != kept:
                    self._cut_back(fd, start + kept, exc)
                raise _Unwritten(exc, kept) from exc
            size = start + written
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        if size >= self.max_bytes:
            self._rotate()

    def _cut_back(self, fd: int, size: int, cause: OSError) -> None:
        """Drop the torn tail of a partial write: the file ends with a whole line again."""
        try:
            os.ftruncate(fd, size)  # shrinking needs no space, even on a full disk
        except OSError as exc:
            report_rate_limited(
                f"file-torn:{self.path}",
                "log file %s: a write failed part-way (%s) and the partial line could not be removed (%s)",
                self.path,
                cause.strerror or cause,
                exc.strerror or exc,
                level=logging.ERROR,
            )

    def _rotate(self) -> None:
        assert self._lock_fd is not None
        _lock_exclusive(self._lock_fd, self.path)
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
            self._move_planted_aside()
            try:
                for index in range(self.backups - 1, 0, -1):
                    source, target = f"{self.path}.{index}", f"{self.path}.{index + 1}"
                    if not _replaceable(source):
                        continue  # nothing there, or not ours to move (a planted directory)
                    if _replaceable(target, missing_ok=True):
                        os.replace(source, target)
                    else:
                        os.unlink(source)  # the next name is blocked: this backup is the oldest
                if not _replaceable(f"{self.path}.1", missing_ok=True):
                    raise UnsafeLogFile(errno.EISDIR, "it is not a regular file", f"{self.path}.1")
                os.replace(self.path, f"{self.path}.1")
            except OSError as exc:
                # a backup name that cannot be replaced (a directory planted there): the file is
                # moved aside under a name of its own, so no line is lost and the live file
                # keeps its size limit, and the blocking name is reported
                aside = f"{self.path}.{time.time_ns()}"
                moved = True
                try:
                    os.replace(self.path, aside)
                except OSError:
                    moved = False
                pruned = self._prune_moved_aside() if moved else 0
                report_rate_limited(
                    f"file-rotate:{self.path}",
                    "log file %s could not be rotated (%s: %s); %s%s",
                    self.path,
                    exc.filename or self.path,
                    exc.strerror or exc,
                    f"moved aside to {aside}" if moved else "it keeps growing",
                    f", {pruned} older moved-aside file(s) removed to keep {self.backups}" if pruned else "",
                    level=logging.ERROR,
                )
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _move_planted_aside(self) -> None:
        """Move a directory, FIFO or other non-regular entry planted at a backup name out of
        rotation's way, once, under a name of its own: rotation then proceeds as usual and
        ``backups`` holds. Left in place, every rotation had to move the log aside to a new
        name that nothing pruned: anyone who can write in the log directory could fill the disk."""
        for index in range(1, self.backups + 1):
            name = f"{self.path}.{index}"
            if _replaceable(name, missing_ok=True):
                continue
            aside = f"{name}.planted-{time.time_ns()}"
            try:
                os.rename(name, aside)  # the entry itself, never what a link in it points at
            except OSError as exc:
                outcome = f"it could not be moved aside ({exc.strerror or exc})"
            else:
                outcome = f"moved aside to {aside}; rotation goes on"
            report_rate_limited(
                f"file-planted:{self.path}",
                "log file backup name %s held something that is not a regular file (planted by "
                "someone who can write in %s?): %s",
                name,
                self.path.parent,
                outcome,
                level=logging.ERROR,
            )

    def _prune_moved_aside(self) -> int:
        """Remove the oldest logs moved aside (``<file>.<ns>``) beyond ``backups``: they count
        against the retention like numbered backups. Returns how many were removed."""
        prefix = f"{self.path.name}."
        aside: list[tuple[int, str]] = []
        try:
            names = os.listdir(self.path.parent)
        except OSError:
            return 0
        for name in names:
            suffix = name[len(prefix) :] if name.startswith(prefix) else ""
            if len(suffix) >= 16 and suffix.isdigit():
                aside.append((int(suffix), name))
        aside.sort()
        removed = 0
        for _, name in aside[: max(0, len(aside) - self.backups)]:
            path = self.path.parent / name
            if not _replaceable(str(path)):
                continue  # only our own regular files (or links, removed themselves) go
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
        return removed

    def _close_quietly(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None

    def close(self) -> None:
        self._close_quietly()

    def after_fork_in_child(self) -> None:
        """A forked child holds none of the parent's fds: the file is opened again on its
        first write."""
        self._close_quietly()
        self._pid = os.getpid()


def partial_after_fork(ref: weakref.ReferenceType[SharedRotatingFile]) -> Callable[[], None]:
    """The at-fork hook of one file, holding it only weakly (a closed pipeline's file goes)."""

    def after_fork() -> None:
        log_file = ref()
        if log_file is not None:
            log_file.after_fork_in_child()

    return after_fork
