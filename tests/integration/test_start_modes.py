"""Third-party apps under ``opentelemetry-instrument``, in every start mode, read back from every sink.

Two applications written without a line of lumen-otel, the way real ones are:
``tests/apps/realdjango`` (a ``startproject`` layout whose ``manage.py``/``wsgi.py`` only
``setdefault`` ``DJANGO_SETTINGS_MODULE``, with its own ``LOGGING``: a console handler on the
``patients`` logger, a non-propagating ``audit`` logger with its own file, a SQLite row handler and
``mail_admins`` with the file-based e-mail backend) and ``tests/apps/basicconfig_fastapi.py``
(``logging.basicConfig(force=True)`` at import, a ``billing`` logger with its own file). Each start
mode runs once for the whole module: the server is started on a free loopback port with
``LUMEN_ENV=prod``, ``LUMEN_LOG_DIR`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a real
:class:`~lumen_otel.testing.OTLPReceiver`; it is sent four visits that log an SSN, a patient
name and an MRN (with ``X-Correlation-ID`` and a sampled ``traceparent``, with a UUID header only,
with an unsampled ``traceparent`` only, with nothing), one request that raises with the same PHI in
the exception (500) and one that is not found, with an MRN in its path (404); it is stopped with
SIGTERM, and then every sink is read.

====================================== ==== ==== ====== ======= ==== ====== === ===== ==== ==== =======
start mode (app)                       http file server console otlp output app audit rows mail billing
====================================== ==== ==== ====== ======= ==== ====== === ===== ==== ==== =======
``manage.py runserver`` (Django)       x    x    x      x       x    x      x   x     x    x
gunicorn sync (Django)                 x    x    x      x       x    x      x   x     x    x
gunicorn ``--threads 4`` (Django)      x    x    x      x       x    x      x   x     x    x
gunicorn ``--preload`` (Django)        x    x    x      x       x    x      x   x     x    x
gunicorn ``uvicorn.workers`` (FastAPI) x    x    x      x       x    x      x                   x
gunicorn ``uvicorn_worker`` (FastAPI)  x    x    x      x       x    x      x                   x
``uvicorn --workers 2`` (FastAPI)      x    x    x      x       x    x      x                   x
``uvicorn`` (FastAPI)                  x    x    x      x       x    x      x                   x
====================================== ==== ==== ====== ======= ==== ====== === ===== ==== ==== =======

What each sink (column) must show:

- **http**: 200/500/404 answers, each echoing its correlation ID once.
- **file** (``<LUMEN_LOG_DIR>/<service>.log``) and **console** (lumen's JSON lines on stdout): every
  line has ``service_name``, ``hostname`` and ``timestamp``; every line about a request (its marker
  in the message or exception, or its trace id) carries that request's correlation ID and trace id,
  including the unsampled request, the 404's ``django.request`` warning and the server's own lines;
  each application record exactly once; no raw PHI.
- **server**: lumen's file keeps the server's start-up lines and one access line per request.
- **otlp**: the application records arrived once each with the request's IDs, nothing raw.
- **output**: no raw PHI anywhere in the process's stdout or stderr, tracebacks included.
- **app** (the app's own ``StreamHandler`` on the ``patients`` logger, on stderr; the plain console
  handlers of the root logger, ``basicConfig``'s, and of server loggers are replaced by lumen-otel's
  console, so nothing is printed twice), **audit** (the
  non-propagating logger's file), **rows** (the SQLite handler), **billing** (the FastAPI logger's
  ``FileHandler``): one line or row per record, redacted exactly as lumen-otel's own sinks are;
  **mail**: one ``mail_admins`` e-mail for the 500, none for the 404, with no raw PHI in the
  subject, the message or Django's traceback report.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import hashlib
import importlib.util
import json
import os
import random
import signal
import sqlite3
import string
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from lumen_otel import redact
from lumen_otel.testing import LogRecordView, OTLPReceiver
from tests.conftest import REPO, VENV_BIN, clean_env, free_port

pytestmark = pytest.mark.integration

APPS = REPO / "tests" / "apps"
DJANGO_PROJECT = APPS / "realdjango"

PATIENT, SSN, MRN = "Zelda Quarrington", "123-45-6789", "48213377"
#: what must never reach a sink: the SSN, the MRN and the patient's (unmistakable) surname
RAW_PHI = (SSN, MRN, "Quarrington")
VISIT_TEXT = {
    "django": "Visit booked for patient {p}, SSN {s}, MRN: {m} ({marker})",
    "fastapi": "Invoice drafted for patient {p}, SSN {s}, MRN: {m} ({marker})",
}
VISIT_PREFIX = {app: text.split(" for ")[0] for app, text in VISIT_TEXT.items()}
CRASH_TEXT = "billing failed for patient {p} (SSN {s}, MRN: {m}) {marker}"
AUDIT_TEXT = "chart opened for patient {p}, MRN: {m} ({marker})"
APP_LOGGER = {"django": "patients", "fastapi": "billing"}
SERVICE = {"django": "clinic", "fastapi": "billing_api"}
WAIT = 20.0  # seconds: the longest the sinks are awaited after the requests
STARTUP = 90.0  # seconds: the longest a server is awaited (a shared, loaded machine)


# ---------------------------------------------------------------- start modes


@dataclass(frozen=True)
class Mode:
    """One way users start a service: the command after ``opentelemetry-instrument``."""

    name: str
    app: Literal["django", "fastapi"]
    command: Callable[[int], list[str]]
    #: lumen's file must keep these server lines from start-up ({port} is filled in)
    startup: tuple[str, ...]
    access_logger: str

    def __str__(self) -> str:
        return self.name


def _gunicorn(port: int, *args: str) -> list[str]:
    # no control socket: the default one in $HOME would be shared by every gunicorn on the machine
    return [
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "10",
        "--no-control-socket",
        *args,
    ]


def _uvicorn(port: int, *args: str) -> list[str]:
    return [
        str(VENV_BIN / "uvicorn"),
        "basicconfig_fastapi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]


GUNICORN_START = ("Listening at: http://127.0.0.1:{port}", "Booting worker with pid")
MODES = [
    Mode(
        "django-runserver-autoreload",
        "django",
        lambda port: [str(VENV_BIN / "python"), "manage.py", "runserver", f"127.0.0.1:{port}"],
        ("Watching for file changes with StatReloader",),
        "django.server",
    ),
    Mode(
        "django-gunicorn-sync",
        "django",
        lambda port: _gunicorn(port, "--workers", "2", "clinic.wsgi:application"),
        GUNICORN_START,
        "gunicorn.access",
    ),
    Mode(
        "django-gunicorn-threads",
        "django",
        lambda port: _gunicorn(port, "--workers", "1", "--threads", "4", "clinic.wsgi:application"),
        GUNICORN_START,
        "gunicorn.access",
    ),
    Mode(
        "django-gunicorn-preload",
        "django",
        lambda port: _gunicorn(port, "--workers", "2", "--preload", "clinic.wsgi:application"),
        GUNICORN_START,
        "gunicorn.access",
    ),
    Mode(
        "fastapi-gunicorn-uvicorn.workers",
        "fastapi",
        lambda port: _gunicorn(port, "-k", "uvicorn.workers.UvicornWorker", "basicconfig_fastapi:app"),
        (*GUNICORN_START, "Application startup complete"),
        "uvicorn.access",
    ),
    Mode(
        "fastapi-gunicorn-uvicorn_worker",
        "fastapi",
        lambda port: _gunicorn(port, "-k", "uvicorn_worker.UvicornWorker", "basicconfig_fastapi:app"),
        (*GUNICORN_START, "Application startup complete"),
        "uvicorn.access",
    ),
    Mode(
        "fastapi-uvicorn-workers-2",
        "fastapi",
        lambda port: _uvicorn(port, "--workers", "2"),
        ("Uvicorn running on http://127.0.0.1:{port}", "Application startup complete"),
        "uvicorn.access",
    ),
    Mode(
        "fastapi-uvicorn",
        "fastapi",
        _uvicorn,
        ("Uvicorn running on http://127.0.0.1:{port}", "Application startup complete"),
        "uvicorn.access",
    ),
]
DJANGO_MODES = [m for m in MODES if m.app == "django"]
FASTAPI_MODES = [m for m in MODES if m.app == "fastapi"]


# ---------------------------------------------------------------- one run of a mode


def _letters(n: int = 10) -> str:
    """A marker the redactor leaves alone (no digits that could look like a phone or an MRN)."""
    return "".join(random.choices(string.ascii_lowercase, k=n))


def _hashed_trace_id(correlation_id: str) -> str:
    return hashlib.sha256(correlation_id.encode()).digest()[:16].hex()


@dataclass
class Sent:
    """One request and the IDs every line about it must carry."""

    label: str
    kind: Literal["visit", "crash", "missing"]
    marker: str
    headers: dict[str, str]
    cid: str | None  # None: the one the service made up (read back from the response)
    trace_id: str | None
    status: int = 0
    echoed: list[str] = field(default_factory=list)

    def path(self, app: str) -> str:
        prefix = "/patients" if app == "django" else ""
        if self.kind == "missing":
            return f"/patients/{MRN}/chart/{self.marker}"
        return f"{prefix}/{self.kind}/{self.marker}"

    @property
    def ids(self) -> tuple[str | None, str | None]:
        """(correlation ID, trace id); a request sent without IDs must have been given both."""
        if self.cid is None or self.trace_id is None:
            return "<a new UUID, echoed>", "<that UUID as a trace id>"
        return self.cid, self.trace_id


def _requests() -> list[Sent]:
    sampled, unsampled, crash_trace = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    header_uuid = str(uuid.uuid4())
    header_cid, crash_cid, missing_cid = f"visit-{_letters()}", f"crash-{_letters()}", f"missing-{_letters()}"
    return [
        Sent(
            "visit header+traceparent",
            "visit",
            _letters(),
            {"X-Correlation-ID": header_cid, "traceparent": f"00-{sampled}-00f067aa0ba902b7-01"},
            header_cid,
            sampled,
        ),
        Sent(
            "visit uuid header",
            "visit",
            _letters(),
            {"X-Correlation-ID": header_uuid},
            header_uuid,
            uuid.UUID(header_uuid).hex,
        ),
        Sent(
            "visit unsampled traceparent",
            "visit",
            _letters(),
            {"traceparent": f"00-{unsampled}-b7ad6b7169203331-00"},
            str(uuid.UUID(unsampled)),
            unsampled,
        ),
        Sent("visit nothing", "visit", _letters(), {}, None, None),
        Sent(
            "crash",
            "crash",
            _letters(),
            {"X-Correlation-ID": crash_cid, "traceparent": f"00-{crash_trace}-53995c3f42cd8ad8-01"},
            crash_cid,
            crash_trace,
        ),
        Sent(
            "missing",
            "missing",
            _letters(),
            {"X-Correlation-ID": missing_cid},
            missing_cid,
            _hashed_trace_id(missing_cid),
        ),
    ]


@dataclass
class Run:
    """Everything one server run left in every sink (read after the process has exited)."""

    mode: Mode
    port: int
    sent: list[Sent]
    stdout: str
    stderr: str
    file_text: str
    otlp: list[LogRecordView]
    app_files: dict[str, str]
    rows: list[tuple[str, str, str, str]]
    emails: list[email.message.EmailMessage]

    @property
    def service(self) -> str:
        return SERVICE[self.mode.app]

    @property
    def visits(self) -> list[Sent]:
        return [s for s in self.sent if s.kind == "visit"]

    def of(self, kind: str) -> Sent:
        return next(s for s in self.sent if s.kind == kind)

    def of_label(self, label: str) -> Sent:
        return next(s for s in self.sent if s.label == label)

    def visit_message(self, sent: Sent) -> str:
        """The visit's message as lumen-otel's redactor leaves it."""
        return redact(VISIT_TEXT[self.mode.app].format(p=PATIENT, s=SSN, m=MRN, marker=sent.marker))

    def audit_message(self, sent: Sent) -> str:
        return redact(AUDIT_TEXT.format(p=PATIENT, m=MRN, marker=sent.marker))

    def file_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.file_text.splitlines() if line.strip()]

    def console_records(self) -> list[dict[str, Any]]:
        """lumen's JSON lines on stdout (other writers may share the stream)."""
        records = []
        for line in self.stdout.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "service_name" in record:
                    records.append(record)
        return records


def _wait_answering(url: str, proc: subprocess.Popen[bytes], err: Path) -> None:
    """Until the server answers anything at all (a broken app answers 500 and is then examined)."""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{err.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{url}/health", timeout=5)
            return
        time.sleep(0.2)
    raise AssertionError(f"server did not answer within {STARTUP} s:\n{err.read_text()[-4000:]}")


def _wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition for at most ``timeout`` s; the assertions afterwards say what was missing."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _log_text(log_dir: Path, service: str) -> str:
    return "".join(_read(p) for p in sorted(log_dir.glob(f"{service}.log*")) if not p.name.endswith(".lock"))


def _emails(mail_dir: Path) -> list[email.message.EmailMessage]:
    """Each message the file-based backend wrote (one file per connection, messages separated by a rule)."""
    messages = []
    for path in sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []:
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk, policy=email.policy.default))
    return [m for m in messages if isinstance(m, email.message.EmailMessage)]


def _rows(db: Path) -> list[tuple[str, str, str, str]]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.execute("SELECT logger, level, message, formatted FROM log_entry ORDER BY created"))


def run_mode(mode: Mode, tmp: Path) -> Run:
    """Start ``mode`` under the launcher, send the requests, SIGTERM it, read every sink."""
    if "uvicorn_worker" in mode.name and importlib.util.find_spec("uvicorn_worker") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and uvicorn-worker is not installed (the dev group has it)", pytrace=False)
        pytest.skip("pip install uvicorn-worker (the dev group has it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = tmp / "logs"
    app_dir = DJANGO_PROJECT if mode.app == "django" else APPS
    app_files = {"audit": tmp / "audit.log", "billing": tmp / "billing.log"}
    sent = _requests()
    with OTLPReceiver() as receiver:
        env = clean_env(
            OTEL_SERVICE_NAME=SERVICE[mode.app],
            LUMEN_ENV="prod",
            LUMEN_LOG_DIR=str(log_dir),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BLRP_SCHEDULE_DELAY="200",
            OTEL_BSP_SCHEDULE_DELAY="200",
            OTEL_METRIC_EXPORT_INTERVAL="60000",
            LUMEN_OTEL_STRICT="0",  # as users run it
            CLINIC_AUDIT_LOG=str(app_files["audit"]),
            CLINIC_LOG_DB=str(tmp / "log.db"),
            CLINIC_MAIL_DIR=str(tmp / "mail"),
            BILLING_LOG_FILE=str(app_files["billing"]),
        )
        out, err = tmp / "stdout", tmp / "stderr"
        argv = [str(VENV_BIN / "opentelemetry-instrument"), *mode.command(port)]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                argv, env=env, cwd=app_dir, stdout=stdout, stderr=stderr, start_new_session=True
            )
        try:
            _wait_answering(url, proc, err)
            limits = httpx.Limits(max_keepalive_connections=0)  # spread over the workers
            with httpx.Client(timeout=30, limits=limits) as client:
                for request in sent:
                    response = client.get(url + request.path(mode.app), headers=request.headers)
                    request.status = response.status_code
                    request.echoed = response.headers.get_list("x-correlation-id")
                    if request.cid is None and len(request.echoed) == 1:
                        with contextlib.suppress(ValueError):
                            request.cid = request.echoed[0]
                            request.trace_id = uuid.UUID(request.cid).hex

            # the runserver child is killed by its parent on SIGTERM: let the sinks catch up first
            def settled() -> bool:
                text = _log_text(log_dir, SERVICE[mode.app])
                bodies = " ".join(str(r.body) for r in list(receiver.logs))
                return all(s.marker in text and s.marker in bodies for s in sent)

            _wait_until(settled)
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything of its session still running
            if proc.poll() is None:
                proc.wait(10)
        otlp = list(receiver.logs)
    return Run(
        mode=mode,
        port=port,
        sent=sent,
        stdout=_read(out),
        stderr=_read(err),
        file_text=_log_text(log_dir, SERVICE[mode.app]),
        otlp=otlp,
        app_files={name: _read(path) for name, path in app_files.items()},
        rows=_rows(tmp / "log.db"),
        emails=_emails(tmp / "mail"),
    )


class Runs:
    """One run per mode, made the first time a test asks for it, whatever the test order."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.done: dict[str, Run | BaseException] = {}

    def __getitem__(self, mode: Mode) -> Run:
        if mode.name not in self.done:
            try:
                self.done[mode.name] = run_mode(mode, self.factory.mktemp(mode.name))
            except (AssertionError, OSError, subprocess.SubprocessError, httpx.HTTPError) as exc:
                self.done[mode.name] = exc
        result = self.done[mode.name]
        if isinstance(result, BaseException):
            raise AssertionError(f"{mode}: the run itself failed: {result}")
        return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    yield Runs(tmp_path_factory)


# ---------------------------------------------------------------- what the sinks must show


def phi_lines(text: str) -> list[str]:
    """The lines of ``text`` holding raw PHI (cut for the failure message)."""
    return [line[:300] for line in text.splitlines() if any(raw in line for raw in RAW_PHI)][:5]


def about(record: dict[str, Any], sent: Sent) -> bool:
    """Whether a lumen JSON record is about request ``sent``: its marker or its trace id."""
    return sent.marker in json.dumps(record) or (
        sent.trace_id is not None and record.get("trace_id") == sent.trace_id
    )


def check_lumen_records(run: Run, records: list[dict[str, Any]], text: str) -> None:
    """What lumen's JSON sinks (file, console) must hold for one run."""
    assert records, f"{run.mode}: no lumen JSON records at all"
    assert [] == phi_lines(text)
    missing = [
        r
        for r in records
        if r.get("service_name") != run.service or not r.get("hostname") or not r.get("timestamp")
    ]
    assert [] == missing[:3], "lines without service_name/hostname/timestamp"

    # every line about a request carries that request's correlation ID and trace id
    expected_ids = {s.label: [s.ids] for s in run.sent}
    seen_ids = {
        s.label: sorted(
            {(r.get("correlation_id"), r.get("trace_id")) for r in records if about(r, s)}, key=str
        )
        for s in run.sent
    }
    wrong = [
        (s.label, r.get("logger"), str(r.get("message"))[:100], r.get("correlation_id"), r.get("trace_id"))
        for s in run.sent
        for r in records
        if about(r, s) and (r.get("correlation_id"), r.get("trace_id")) != s.ids
    ]
    assert expected_ids == seen_ids, wrong

    # each application record exactly once, redacted as the redactor does it
    logger = APP_LOGGER[run.mode.app]
    expected_visits = {s.label: [(run.visit_message(s), "[REDACTED:MRN]")] for s in run.visits}
    seen_visits = {
        s.label: [(r["message"], r.get("mrn")) for r in records if r.get("logger") == logger and about(r, s)]
        for s in run.visits
    }
    assert expected_visits == seen_visits

    # the failing request's exception, once, with the request's IDs
    crash = run.of("crash")
    errors = [r for r in records if about(r, crash) and "exception" in r]
    assert [("RuntimeError", crash.ids)] == [
        (r["exception"]["type"], (r["correlation_id"], r["trace_id"])) for r in errors
    ]
    if run.mode.app == "django":
        missing_request = run.of("missing")
        not_found = [r for r in records if r.get("logger") == "django.request" and about(r, missing_request)]
        expected = [("WARNING", f"Not Found: /patients/[REDACTED:MRN]/chart/{missing_request.marker}")]
        assert expected == [(r["level"], r["message"]) for r in not_found]


def otlp_text(record: LogRecordView) -> str:
    return json.dumps({"body": record.body, "attributes": record.attributes}, default=str)


ALL = [pytest.param(m, id=m.name) for m in MODES]
DJANGO = [pytest.param(m, id=m.name) for m in DJANGO_MODES]
FASTAPI = [pytest.param(m, id=m.name) for m in FASTAPI_MODES]


class TestEverySinkInEveryStartMode:
    @pytest.mark.parametrize("mode", ALL)
    def test_http_answers_and_echoes_the_correlation_id(self, runs: Runs, mode: Mode) -> None:
        """The app works under the launcher: visits answer 200, the crash 500, the unknown path
        404, each with its correlation ID echoed once."""
        run = runs[mode]
        expected = {
            s.label: ({"visit": 200, "crash": 500, "missing": 404}[s.kind], [s.cid]) for s in run.sent
        }
        assert expected == {s.label: (s.status, s.echoed) for s in run.sent}
        assert run.of_label("visit nothing").trace_id is not None, "the new ID is not a UUID"

    @pytest.mark.parametrize("mode", ALL)
    def test_lumen_json_file(self, runs: Runs, mode: Mode) -> None:
        """``<LUMEN_LOG_DIR>/<service>.log``: well-formed, correlated, each record once, no raw PHI."""
        run = runs[mode]
        check_lumen_records(run, run.file_records(), run.file_text)

    @pytest.mark.parametrize("mode", ALL)
    def test_lumen_json_console(self, runs: Runs, mode: Mode) -> None:
        """lumen's prod console (JSON lines on stdout) holds the same records as the file."""
        run = runs[mode]
        check_lumen_records(run, run.console_records(), run.stdout)

    @pytest.mark.parametrize("mode", ALL)
    def test_server_lines_in_the_file(self, runs: Runs, mode: Mode) -> None:
        """The server's start-up lines and one access line per request are kept (not lost to the
        app's own logging configuration), in lumen's file."""
        run = runs[mode]
        records = run.file_records()
        messages = [str(r.get("message")) for r in records]
        startup = [line.format(port=run.port) for line in mode.startup]
        assert startup == [line for line in startup if any(line in m for m in messages)]
        access = {s.label: 1 for s in run.sent}
        assert access == {
            s.label: sum(
                1 for r in records if r.get("logger") == mode.access_logger and s.marker in r["message"]
            )
            for s in run.sent
        }

    @pytest.mark.parametrize("mode", ALL)
    def test_otlp_receiver(self, runs: Runs, mode: Mode) -> None:
        """The collector gets each application record once, redacted, and every record about a
        request (the server's lines too) with that request's IDs."""
        run = runs[mode]
        assert run.otlp, f"{mode}: nothing reached the OTLP receiver"
        leaked = [otlp_text(r)[:300] for r in run.otlp if any(raw in otlp_text(r) for raw in RAW_PHI)]
        assert [] == leaked[:5]
        assert {run.service} == {r.resource.get("service.name") for r in run.otlp}

        def about_otlp(record: LogRecordView, sent: Sent) -> bool:
            return sent.marker in otlp_text(record) or (
                sent.trace_id is not None and record.trace_id == sent.trace_id
            )

        expected_ids = {s.label: [s.ids] for s in run.sent}
        seen_ids = {
            s.label: sorted(
                {(r.attributes.get("correlation_id"), r.trace_id) for r in run.otlp if about_otlp(r, s)},
                key=str,
            )
            for s in run.sent
        }
        wrong = [
            (s.label, r.scope, str(r.body)[:100], r.attributes.get("correlation_id"), r.trace_id)
            for s in run.sent
            for r in run.otlp
            if about_otlp(r, s) and (r.attributes.get("correlation_id"), r.trace_id) != s.ids
        ]
        assert expected_ids == seen_ids, wrong
        prefix = VISIT_PREFIX[mode.app]
        expected = {s.label: [run.visit_message(s)] for s in run.visits}
        seen = {
            s.label: [
                r.body
                for r in run.otlp
                if isinstance(r.body, str) and r.body.startswith(prefix) and about_otlp(r, s)
            ]
            for s in run.visits
        }
        assert expected == seen
        crash = run.of("crash")
        errors = [r.attributes.get("exception.type") for r in run.otlp if about_otlp(r, crash)]
        assert ["RuntimeError"] == [e for e in errors if e is not None]

    @pytest.mark.parametrize("mode", ALL)
    def test_process_output_holds_no_raw_phi(self, runs: Runs, mode: Mode) -> None:
        """Nothing the process printed (lumen's console, the app's and the server's handlers,
        tracebacks) shows the SSN, the MRN or the patient's name."""
        run = runs[mode]
        assert {"stdout": [], "stderr": []} == {
            "stdout": phi_lines(run.stdout),
            "stderr": phi_lines(run.stderr),
        }

    @pytest.mark.parametrize("mode", ALL)
    def test_app_console_handler(self, runs: Runs, mode: Mode) -> None:
        """A console handler on an application logger (Django ``LOGGING``'s ``StreamHandler`` on
        ``patients``) prints each record once on stderr, redacted like lumen's. Plain console
        handlers on the root logger (the one ``basicConfig(force=True)`` installed) and on server
        loggers (the project's ``django.server`` handler under runserver) are replaced by
        lumen-otel's console, which prints each of those lines once (the console sink test): no
        line reaches the terminal twice."""
        run = runs[mode]
        if mode.app == "django":
            prefix = "patients-console INFO patients: "
            expected = {s.label: [prefix + run.visit_message(s)] for s in run.visits}
        else:
            prefix = "basic-console INFO billing: "
            expected = {s.label: [] for s in run.visits}
        seen = {
            s.label: [
                line for line in run.stderr.splitlines() if line.startswith(prefix) and s.marker in line
            ]
            for s in run.visits
        }
        if mode.access_logger == "django.server":
            expected.update({f"access {s.label}": [] for s in run.sent})
            seen.update(
                {
                    f"access {s.label}": [
                        line
                        for line in run.stderr.splitlines()
                        if line.startswith("[") and f"{s.marker} HTTP/1.1" in line
                    ]
                    for s in run.sent
                }
            )
        assert expected == seen

    @pytest.mark.parametrize("mode", DJANGO)
    def test_audit_file_of_a_non_propagating_logger(self, runs: Runs, mode: Mode) -> None:
        """The ``audit`` logger (``propagate: False``) writes its own file: one redacted line per visit."""
        run = runs[mode]
        lines = run.app_files["audit"].splitlines()
        expected = {s.label: [f"AUDIT INFO {run.audit_message(s)}"] for s in run.visits}
        seen = {s.label: [line.split(" ", 2)[2] for line in lines if s.marker in line] for s in run.visits}
        assert expected == seen
        assert [] == phi_lines(run.app_files["audit"])

    @pytest.mark.parametrize("mode", DJANGO)
    def test_sqlite_rows_of_a_custom_handler(self, runs: Runs, mode: Mode) -> None:
        """The app's database handler stores one row per record; the message it reads with
        ``record.getMessage()`` and the formatted line are both redacted."""
        run = runs[mode]
        expected = {
            s.label: [("patients", "INFO", run.visit_message(s), f"INFO|patients|{run.visit_message(s)}")]
            for s in run.visits
        }
        seen = {
            s.label: [row for row in run.rows if s.marker in row[2] or s.marker in row[3]] for s in run.visits
        }
        assert expected == seen
        assert [] == [row for row in run.rows if any(raw in "|".join(row) for raw in RAW_PHI)]

    @pytest.mark.parametrize("mode", DJANGO)
    def test_mail_admins_report(self, runs: Runs, mode: Mode) -> None:
        """``mail_admins`` sends one report for the 500 (none for the 404, none for the access
        line), still the report Django writes (the request, the exception and its traceback), with
        the PHI in the exception redacted and nowhere raw: subject, message, report."""
        run = runs[mode]
        crash = run.of("crash")
        value = redact(CRASH_TEXT.format(p=PATIENT, s=SSN, m=MRN, marker=crash.marker))
        texts = []
        for message in run.emails:
            body = message.get_body(preferencelist=("plain",))
            texts.append(body.get_content() if body is not None else "")
        expected = {
            "subjects": [
                f"[Django] ERROR (EXTERNAL IP): Internal Server Error: /patients/crash/{crash.marker}"
            ],
            "report names the exception and the path": [True],
            "report shows the redacted exception value": [True],
            "report has the traceback": [True],
            "report has the request": [True],
            "lines with raw PHI": [],
        }
        seen = {
            "subjects": [str(m["Subject"]) for m in run.emails],
            "report names the exception and the path": [
                f"RuntimeError at /patients/crash/{crash.marker}" in t for t in texts
            ],
            "report shows the redacted exception value": [f"Exception Value: {value}" in t for t in texts],
            "report has the traceback": ["in crash\n    raise RuntimeError(" in t for t in texts],
            "report has the request": ["Request information:" in t for t in texts],
            "lines with raw PHI": [
                line
                for message, text in zip(run.emails, texts, strict=True)
                for line in phi_lines(str(message["Subject"]))
                + phi_lines(text)
                + phi_lines(message.as_string())
            ],
        }
        assert expected == seen

    @pytest.mark.parametrize("mode", FASTAPI)
    def test_billing_file_handler(self, runs: Runs, mode: Mode) -> None:
        """The ``billing`` logger's own ``FileHandler`` writes one redacted line per record."""
        run = runs[mode]
        lines = run.app_files["billing"].splitlines()
        expected = {s.label: [f"billing-file INFO {run.visit_message(s)}"] for s in run.visits}
        seen = {s.label: [line.split(" ", 2)[2] for line in lines if s.marker in line] for s in run.visits}
        assert expected == seen
        assert [] == phi_lines(run.app_files["billing"])
