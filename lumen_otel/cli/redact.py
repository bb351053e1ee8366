"""``lumen-otel redact``: remove PHI from existing log files (or stdin) with the same rules as the pipeline.

Plain-text lines go through the text rules; JSON lines keep their structure and keys and have
their values redacted (by key name and by value). HL7 messages written one segment per line are
gathered back into one message first, so PID/NK1/... fields are masked by position. Files are
rewritten atomically with ``--in-place`` (a temporary file in the same directory, then
``os.replace``), so a crash never leaves a half-redacted log. A summary of what was redacted goes
to stderr.

Output to a pipe or a file is the redacted log byte for byte. Output to a terminal is for reading:
each line has its control, escape, line-separator and bidi characters shown as ``\\x1b``,
``\\u202e``... (as the dev console and ``lumen-otel trace`` show them) and undecodable bytes as
``\\xNN``, so a logged escape sequence cannot retitle, clear or recolour the operator's terminal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import typer

from lumen_otel._config.settings import redaction_key
from lumen_otel._redaction import Redactor
from lumen_otel.cli._terminal import escape_text

__all__ = ["register"]

_HL7_START = re.compile(r"MSH([^\w\s])")
_SEGMENT = re.compile(r"[A-Z][A-Z0-9]{2}")


class _Filter:
    """Redacts a stream of lines, counting kinds; HL7 segments on consecutive lines stay together."""

    __slots__ = ("counts", "lines", "redactor")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.counts: dict[str, int] = {}
        self.lines = 0

    def lines_out(self, raw_lines: Iterable[bytes]) -> Iterator[bytes]:
        block: list[str] = []
        field_sep = ""
        ending = b""
        for raw in raw_lines:
            self.lines += 1
            body, ending = (
                (raw[:-2], b"\r\n")
                if raw.endswith(b"\r\n")
                else ((raw[:-1], b"\n") if raw.endswith(b"\n") else (raw, b""))
            )
            line = body.decode("utf-8", "surrogateescape")
            if block and _SEGMENT.match(line) and line[3:4] in (field_sep, ""):
                block.append(line)
                continue
            if block:
                yield self._text("\n".join(block)).encode("utf-8", "surrogateescape") + b"\n"
                block = []
            start = _HL7_START.match(line)
            if start is not None and ending:
                block, field_sep = [line], start.group(1)
                continue
            yield self._line(line).encode("utf-8", "surrogateescape") + ending
        if block:
            yield self._text("\n".join(block)).encode("utf-8", "surrogateescape") + ending

    def _text(self, text: str) -> str:
        return self.redactor.redact_text_counted(text, self.counts)

    def _line(self, line: str) -> str:
        stripped = line.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                value = json.loads(stripped)
            except ValueError:
                return self._text(line)
            redacted = self.redactor.redact_counted(value, self.counts)
            if redacted == value:
                return line  # nothing found: leave the line byte for byte
            return _dumps(redacted, compact='": ' not in stripped and '", "' not in stripped)
        return self._text(line)


def _dumps(value: Any, compact: bool) -> str:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(value, ensure_ascii=False, separators=separators)


def _filter_stream(flt: _Filter, source: BinaryIO, sink: BinaryIO, for_terminal: bool = False) -> None:
    for chunk in flt.lines_out(source):
        sink.write(_for_terminal(chunk) if for_terminal else chunk)


def _for_terminal(chunk: bytes) -> bytes:
    """Redacted lines made safe to show: line breaks kept (``\\r\\n`` too), everything else escaped."""
    lines = chunk.decode("utf-8", "backslashreplace").split("\n")
    shown = []
    for i, line in enumerate(lines):
        ending = "\r" if i < len(lines) - 1 and line.endswith("\r") else ""
        shown.append(escape_text(line[: len(line) - len(ending)]) + ending)
    return "\n".join(shown).encode("utf-8")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class NotARegularFile(OSError):
    """``--in-place`` is given a link or something else than a regular file."""


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading without following a symbolic link; a regular file only.

    A log directory may be writable by others: a link planted at a log file's name must not make
    ``--in-place`` copy the file it points to (a root-only file, say) into that directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if path.is_symlink():
            raise NotARegularFile(f"{path}: a symbolic link; --in-place rewrites regular files only") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFile(f"{path}: not a regular file; --in-place rewrites regular files only")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _rewrite_in_place(flt: _Filter, path: Path) -> None:
    directory = path.parent
    source = _open_regular(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".redacting", dir=directory)
    try:
        with os.fdopen(fd, "wb") as sink, source:
            _filter_stream(flt, source, sink)
            sink.flush()
            os.fsync(sink.fileno())
            os.chmod(tmp_name, stat.S_IMODE(os.fstat(source.fileno()).st_mode))
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(flt: _Filter) -> str:
    total = sum(flt.counts.values())
    if not total:
        return f"lumen-otel redact: {_count(flt.lines, 'line')}, nothing redacted"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(flt.counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"lumen-otel redact: {_count(flt.lines, 'line')}, {_count(total, 'value')} redacted ({kinds})"


def redact_command(
    files: list[Path] | None = typer.Argument(  # noqa: B008 - Typer declares parameters this way
        None, help="Log files to redact. Without files: stdin to stdout.", show_default=False
    ),
    in_place: bool = typer.Option(
        False, "--in-place", "-i", help="Rewrite the files atomically instead of printing."
    ),
    key: str | None = typer.Option(
        None,
        "--key",
        envvar="LUMEN_REDACTION_KEY",
        show_envvar=True,
        help="HMAC key: keyed pseudonyms (<kind>:<12 hex>) instead of [REDACTED:KIND].",
    ),
    extra_key: list[str] = typer.Option(  # noqa: B008
        [], "--extra-key", help="Another key name to redact (repeatable).", show_default=False
    ),
    extra_pattern: list[str] = typer.Option(  # noqa: B008
        [], "--extra-pattern", help="Another regex to redact (repeatable).", show_default=False
    ),
    unlabelled_names: bool = typer.Option(
        False,
        "--unlabelled-names",
        envvar="LUMEN_REDACTION_UNLABELLED_NAMES",
        show_envvar=True,
        help="Also mask names and places no label announces (slower; see docs/redaction.md).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary on stderr."),
) -> None:
    """Remove PHI from log files (plain text or JSON lines) or from stdin."""
    if in_place and not files:
        typer.echo("lumen-otel redact: --in-place needs at least one file", err=True)
        raise typer.Exit(2)
    try:
        if key:  # the rule the service applies to LUMEN_REDACTION_KEY: a short key is refused
            key = redaction_key("--key/LUMEN_REDACTION_KEY", key)
        redactor = Redactor(
            key=key or None,
            extra_keys=extra_key,
            extra_patterns=extra_pattern,
            unlabelled_names=unlabelled_names,
        )
    except ValueError as exc:
        typer.echo(f"lumen-otel redact: {escape_text(exc)}", err=True)
        raise typer.Exit(2) from None
    flt = _Filter(redactor)
    for path in files or ():
        if not path.is_file():
            typer.echo(f"lumen-otel redact: {escape_text(path)}: no such file", err=True)
            raise typer.Exit(2)
    to_terminal = _is_terminal(sys.stdout)
    if not files:
        _filter_stream(flt, sys.stdin.buffer, sys.stdout.buffer, to_terminal)
        sys.stdout.buffer.flush()
    elif in_place:
        for path in files:
            try:
                _rewrite_in_place(flt, path)
            except NotARegularFile as exc:
                typer.echo(f"lumen-otel redact: {escape_text(exc)}", err=True)
                raise typer.Exit(2) from None
    else:
        for path in files:
            with path.open("rb") as source:
                _filter_stream(flt, source, sys.stdout.buffer, to_terminal)
        sys.stdout.buffer.flush()
    if not quiet:
        typer.echo(_summary(flt), err=True)


def register(app: typer.Typer) -> None:
    """Add ``redact`` to the ``lumen-otel`` command line."""
    app.command("redact")(redact_command)
