"""Honest text output: nothing a client logs can drive an operator's terminal.

The attacks are mounted as a client would: a real FastAPI service under uvicorn on a loopback
port, in dev mode with the coloured console on, logs a JSON body value, a header value and an
``extra`` whose *key* the client chose. The values carry a forged record line, OSC 0 (window
title), ``ESC[2J`` (clear screen), an OSC 8 hyperlink, 8-bit C1 controls, U+2028 and U+202E.
Then the service's stderr (the dev console), ``lumen-otel trace`` over the service's own log
directory and ``lumen-otel redact`` on a terminal are read back: no raw ESC, C1, line separator
or bidi character, one line per record, Rich markup printed literally.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap
import threading
import tty
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, VENV_BIN, clean_env, free_port, wait_for_port

pytestmark = pytest.mark.integration

#: what the client sends: each is logged as a message argument, an extra value and an extra key
ATTACKS = {
    "forged-line": "ok\n12:00:00.000 INFO     term [forged] term.app: correlation_id=forged",
    "carriage-return": "ok\r12:00:00.000 INFO forged",
    "osc-title": "\x1b]0;title\x07",
    "clear-screen": "\x1b[2J\x1b[31mred",
    "osc8-link": "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "line-separator": "one\u2028two\u2029three\x85four",
    "bidi": "invoice\u202etxt.exe\u2066\u200f",
    "c1": "\x9b2J\x9d0;t\x9c",
    "markup": "[bold]x[/bold] [link=http://evil]click[/link]",
    # no control character at all: a line long enough that a wrap at a space starts a forged line
    "long-line": "pad " * 150 + "12:00:00.000 INFO forged",
}
FORGED_TEXT = "12:00:00.000 INFO"
#: raw in terminal output, any of these moves the cursor, restyles, retitles, links or reorders
RAW_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
#: a dev console record line: time, level, service; nothing else may start a line but "  | "
RECORD_LINE = re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +term \[")
#: Rich's own styling (SGR); with colour forced nothing else may start with ESC
SGR = re.compile(r"\x1b\[[0-9;]*m")

APP = textwrap.dedent("""
    import logging

    from fastapi import FastAPI, Request

    app = FastAPI()
    log = logging.getLogger("term.app")


    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}


    @app.post("/note")
    async def note(request: Request) -> dict[str, bool]:
        body = await request.json()
        text = str(body["text"])
        extra = {"note": request.headers.get("x-note", ""), str(body["key"]): text}
        log.warning("client said %s", text, extra=extra)
        return {"ok": True}


    @app.post("/fail")
    async def fail(request: Request) -> dict[str, bool]:
        body = await request.json()
        try:
            raise ValueError(str(body["text"]))
        except ValueError:
            log.exception("lookup failed")
        return {"ok": True}
""")


@dataclass
class HostileRun:
    cid: str
    log_dir: Path
    stderr: str  # the dev console


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    """One service, every attack sent once to /note (body, header, extra key) and to /fail."""
    from lumen_otel.testing import OTLPReceiver

    work = tmp_path_factory.mktemp("terminal")
    (work / "term_app.py").write_text(APP)
    log_dir = work / "logs"
    port = free_port()
    cid = str(uuid.uuid4())
    with OTLPReceiver() as receiver:
        env = clean_env(
            OTEL_SERVICE_NAME="term",
            LUMEN_ENV="dev",
            LUMEN_CONSOLE="true",
            LUMEN_LOG_DIR=str(log_dir),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            LUMEN_OTEL_STRICT="0",
        )
        argv = [
            str(VENV_BIN / "opentelemetry-instrument"),
            str(VENV_BIN / "uvicorn"),
            "term_app:app",
            "--app-dir",
            str(work),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ]
        err_path = work / "app.err"
        with err_path.open("wb") as err, (work / "app.out").open("wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=work, stdout=out, stderr=err)
        try:
            wait_for_port(port, 60, proc)
            headers = {"x-correlation-id": cid, "x-note": b"\x9b2J\x9d0;t\x9c caf\xc3\xa9 \xe2\x80\xa8"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
                for text in ATTACKS.values():
                    assert client.post("/note", json={"text": text, "key": text}).status_code == 200
                    assert client.post("/fail", json={"text": text}).status_code == 200
        finally:
            proc.terminate()
            proc.wait(30)
    yield HostileRun(cid, log_dir, err_path.read_bytes().decode("utf-8"))


def file_records(log_dir: Path) -> list[dict[str, Any]]:
    # split on "\n" only: the JSON lines carry U+2028 and NEL raw, which splitlines() would split on
    text = (log_dir / "term.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line]


def lumen_otel(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "lumen-otel"), *args],
        cwd=REPO,
        env=clean_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def tree_lines(output: str) -> list[str]:
    """The tree's lines without its guides (``│ ├── └──``) and indentation."""
    return [line.lstrip(" │├└─") for line in output.splitlines()]


# ---------------------------------------------------------------- the dev console


class TestDevConsole:
    def test_every_record_is_one_line_with_nothing_raw(self, hostile_run):
        """The attacks in a message, an extra value, a header and an extra key: the console has
        no raw ESC/C1/U+2028/bidi character and exactly one line per record; a traceback's
        lines are marked ``"  | "``, so a forged line inside an exception message stays marked."""
        console = hostile_run.stderr
        assert RAW_UNSAFE.search(console) is None, [m.group() for m in RAW_UNSAFE.finditer(console)][:10]
        lines = console.splitlines()
        assert lines == console.split("\n")[: len(lines)]  # no \r, U+2028, NEL... splitting lines either
        record_lines = [line for line in lines if RECORD_LINE.match(line)]
        assert all(RECORD_LINE.match(line) or line.startswith("  | ") for line in lines), lines
        assert not any(line.startswith(FORGED_TEXT) for line in lines)
        records = file_records(hostile_run.log_dir)
        assert len(record_lines) == len(records)  # the file holds the same records, one a line
        notes = [line for line in record_lines if " term.app: client said " in line]
        failures = [line for line in record_lines if " term.app: lookup failed" in line]
        assert len(notes) == len(failures) == len(ATTACKS)

    def test_attacks_are_shown_as_visible_escapes_and_the_json_keeps_them(self, hostile_run):
        console = hostile_run.stderr
        assert "client said ok\\n12:00:00.000 INFO     term [forged]" in console
        assert "\\x1b]0;title\\x07" in console  # the message, and the extra key the client chose
        assert "\\x1b]8;;http://evil\\x1b\\link" in console
        assert "one\\u2028two\\u2029three\\x85four" in console
        assert "invoice\\u202etxt.exe\\u2066\\u200f" in console
        # a header is decoded as latin-1: its 8-bit bytes arrive as C1 controls (0x9b is CSI)
        assert "note='\\x9b2J\\x9d0;t\\x9c cafÃ© â\\x80¨'" in console
        assert "  | ValueError: ok\n  | 12:00:00.000 INFO     term [forged]" in console
        # the file (JSON lines) is unchanged: the text as logged, JSON-escaped where JSON says so
        notes = [r for r in file_records(hostile_run.log_dir) if r["message"].startswith("client said ")]
        assert [r["message"] for r in notes] == [f"client said {text}" for text in ATTACKS.values()]
        assert all(r[text] == text for r, text in zip(notes, ATTACKS.values(), strict=True))

    def test_coloured_console_has_only_its_own_styling(self):
        """In colour too, every ESC on the line is one of the formatter's own SGR codes."""
        import logging

        from lumen_otel._logging.formatters import ColorFormatter

        for text in ATTACKS.values():
            record = logging.LogRecord("term.app", logging.WARNING, __file__, 1, "said %s", (text,), None)
            record.service_name, record.correlation_id = "term", str(uuid.uuid4())
            record.lumen_extra = {text: text, "nested": {"k": text}, "number": 7}
            record.lumen_exception = {"stacktrace": f"Traceback:\nValueError: {text}\n"}
            line = ColorFormatter(color=True).format(record)
            bare = SGR.sub("", line)
            assert RAW_UNSAFE.search(bare.replace("\n", "")) is None, repr(line)
            first, *rest = bare.split("\n")
            assert RECORD_LINE.match(first) and all(line.startswith("  | ") for line in rest), repr(line)


class TestOneCharacterClass:
    def test_the_console_and_the_cli_share_one_class(self):
        from lumen_otel._logging import formatters
        from lumen_otel.cli import _terminal

        assert _terminal.UNSAFE_TEXT is formatters.UNSAFE_TEXT
        assert _terminal.escape_text("a\x1b[2J\n\u202e") == formatters.escape_unsafe("a\x1b[2J\n\u202e")

    def test_rich_helpers_print_log_text_literally(self):
        import io

        from rich.console import Console

        from lumen_otel.cli._terminal import log_text, markup_safe

        out = io.StringIO()
        console = Console(file=out, width=200, color_system=None, highlight=False)
        console.print(log_text("[bold]x[/bold] :warning: \x1b]0;t\x07", style="red"))
        remote = "[link=http://evil]x[/link] \\ \x1b[2J"
        console.print(f"[red]error:[/] {markup_safe(remote)}")
        assert out.getvalue() == (
            "[bold]x[/bold] :warning: \\x1b]0;t\\x07\nerror: [link=http://evil]x[/link] \\ \\x1b[2J\n"
        )

    def test_the_class_covers_controls_separators_and_bidi_and_the_fast_path_is_sound(self):
        from lumen_otel.cli._terminal import UNSAFE_TEXT, escape_text

        required = [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029]
        required += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
        assert all(UNSAFE_TEXT.fullmatch(chr(c)) for c in required)
        # escape_unsafe skips the regex for isprintable() text: sound only if no unsafe char is printable
        assert not [
            c for c in map(chr, range(sys.maxunicode + 1)) if UNSAFE_TEXT.match(c) and c.isprintable()
        ]
        assert (
            escape_text("a\nb\rc\td\x1be\x9bf\u2028g\U000e0041")
            == "a\\nb\\rc\\td\\x1be\\x9bf\\u2028g\\U000e0041"
        )
        assert escape_text("one\ntwo\r\x1b", keep_newlines=True) == "one\ntwo\\r\\x1b"
        # text that only looks unusual stays as it is: accents, CJK, emoji and Persian (ZWJ/ZWNJ)
        legit = "naïve café 東京 👩\u200d⚕️ \u0646\u0627\u0645\u0647\u200c\u0647\u0627 [b]x[/b] C:\\tmp"
        assert escape_text(legit) == legit


# ---------------------------------------------------------------- lumen-otel trace


class TestTrace:
    def test_no_color_output_has_no_escape_byte_at_all(self, hostile_run):
        done = lumen_otel("trace", hostile_run.cid, "--log-dir", str(hostile_run.log_dir), NO_COLOR="1")
        assert 0 == done.returncode, done.stderr
        assert "\x1b" not in done.stdout
        assert RAW_UNSAFE.search(done.stdout) is None, [m.group() for m in RAW_UNSAFE.finditer(done.stdout)]

    def test_coloured_output_has_only_riches_styling(self, hostile_run):
        done = lumen_otel(
            "trace", hostile_run.cid, "--log-dir", str(hostile_run.log_dir), FORCE_COLOR="1", COLUMNS="2000"
        )
        assert 0 == done.returncode, done.stderr
        assert SGR.search(done.stdout)  # Rich did style it
        bare = SGR.sub("", done.stdout)
        assert "\x1b" not in bare and "\x9d" not in bare and "\x9b" not in bare  # no OSC, no CSI
        assert RAW_UNSAFE.search(bare) is None

    def test_one_line_per_record_and_markup_printed_literally(self, hostile_run):
        """Piped (80 columns in the environment), every record is one line: not even a long one wraps."""
        done = lumen_otel("trace", hostile_run.cid, "--log-dir", str(hostile_run.log_dir), COLUMNS="80")
        lines = tree_lines(done.stdout)
        assert not any(line.startswith(FORGED_TEXT) for line in lines), done.stdout
        assert any(f"client said {ATTACKS['long-line']}" in line for line in lines)
        records = [line for line in lines if re.match(r"\+[\d.]+ ms  (WARNING|ERROR) ", line)]
        assert len(records) == 2 * len(ATTACKS)
        # an error record's exception is its own second line: "ValueError: <escaped message>"
        exceptions = [line for line in lines if line.startswith("ValueError: ")]
        assert len(exceptions) == len(ATTACKS)
        assert "ValueError: ok\\n12:00:00.000 INFO     term [forged]" in done.stdout
        assert "client said [bold]x[/bold] [link=http://evil]click[/link]" in done.stdout
        assert "\\x1b]8;;http://evil\\x1b\\link" in done.stdout

    def test_a_remote_error_is_neither_markup_nor_escapes(self, tmp_path):
        """Loki's error body is printed in the error message: literally, escaped."""
        body = b"[bold]x[/bold] [link=http://evil]click[/link] \x1b]0;title\x07\x1b[2J"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(500)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            done = lumen_otel("trace", str(uuid.uuid4()), "--loki", url, NO_COLOR="1", COLUMNS="2000")
        finally:
            server.shutdown()
            server.server_close()
        assert 2 == done.returncode
        assert "Loki answered 500: [bold]x[/bold] [link=http://evil]click[/link]" in done.stderr
        assert "\x1b" not in done.stderr and "\\x1b]0;title\\x07\\x1b[2J" in done.stderr


# ---------------------------------------------------------------- lumen-otel redact


def run_on_terminal(argv: list[str], env: dict[str, str]) -> tuple[bytes, str, int]:
    """``argv`` with its stdout on a pseudo-terminal in raw mode (bytes as written)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    return b"".join(chunks), stderr, proc.wait(60)


class TestRedact:
    @pytest.fixture
    def hostile_log(self, hostile_run, tmp_path) -> Path:
        """The service's JSON lines plus plain-text lines as another program would write them."""
        path = tmp_path / "mixed.log"
        # (a raw "\n" would end a plain-text line already in the file: those lines leave it out)
        plain = "".join(
            f"12:00:01 app: client said {text}\n" for text in ATTACKS.values() if "\n" not in text
        )
        path.write_bytes((hostile_run.log_dir / "term.log").read_bytes() + plain.encode() + b"bad \x9b\xff\n")
        return path

    def test_on_a_terminal_nothing_raw_reaches_it_and_a_pipe_gets_every_byte(self, hostile_log):
        shown, stderr, code = run_on_terminal(
            [str(VENV_BIN / "lumen-otel"), "redact", str(hostile_log)], clean_env()
        )
        assert 0 == code, stderr
        assert b"\x1b" not in shown
        text = shown.decode("utf-8", "replace")
        assert "\ufffd" not in text  # valid UTF-8: undecodable bytes are shown as \xNN
        assert RAW_UNSAFE.search(text) is None, [m.group() for m in RAW_UNSAFE.finditer(text)][:10]
        lines = text.split("\n")
        assert len(lines) == hostile_log.read_bytes().count(b"\n") + 1  # one line in, one line out
        assert not any(line.startswith(FORGED_TEXT) for line in lines)
        assert "client said [bold]x[/bold] [link=http://evil]click[/link]" in text
        assert "client said \\x1b]0;title\\x07" in text and "bad \\x9b\\xff" in text
        assert "lines" in stderr and "\x1b" not in stderr  # the summary: counts only, no log text
        # to a pipe (or a file) the output stays byte for byte, ESC and all
        raw = hostile_log.read_bytes()
        done = subprocess.run(
            [str(VENV_BIN / "lumen-otel"), "redact", str(hostile_log)],
            env=clean_env(),
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert 0 == done.returncode
        assert done.stdout.endswith(raw[raw.index(b"12:00:01 app:") :])  # nothing to redact there
