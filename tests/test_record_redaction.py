"""Redaction belongs to the record: every handler that sees a record sees it redacted, once.

The application's own handlers (on a child logger, which run before the root's; on a
``propagate=False`` logger; added by ``basicConfig(force=True)`` or ``dictConfig`` after set-up;
one that keeps the records, one that formats the exception as Django's ``mail_admins`` does)
see the redacted message, arguments, extras and exception, and lumen-otel's file gets each line
exactly once.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import subprocess
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import lumen_otel
from lumen_otel._logging.pipeline import RootHandler, current_pipeline
from tests.conftest import VENV_BIN, clean_env

SSN = "123-45-6789"
REDACTED_SSN = "[REDACTED:SSN]"


@pytest.fixture
def log_dir(fresh_logging: None, tmp_path: Path) -> Path:
    lumen_otel.configure_logging(service_name="unit", log_dir=str(tmp_path), console=False)
    return tmp_path


@pytest.fixture
def app_stream() -> Iterator[io.StringIO]:
    """A console handler of the application's own on the ``app`` logger, writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("app-console %(levelname)s %(message)s"))
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


class Keep(logging.Handler):
    """A database-like handler: stores a row per record, as the record is when it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.rows.append({**vars(record), "message": record.getMessage()})

    @property
    def messages(self) -> list[str]:
        return [str(row["message"]) for row in self.rows]


class MailAdmins(logging.Handler):
    """What Django's ``AdminEmailHandler`` does with a record: the message, then the exception
    formatted from ``exc_info`` (or the text already formatted), into an e-mail body."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            exception = "".join(traceback.format_exception(*record.exc_info))
        else:
            exception = record.exc_text or ""
        self.bodies.append(f"{record.getMessage()}\n\n{exception}")


def file_lines(log_dir: Path, marker: str) -> list[dict[str, object]]:
    """lumen-otel's JSON lines whose message holds ``marker``, after a flush."""
    pipeline = current_pipeline()
    assert pipeline is not None
    assert pipeline.flush()
    lines = [json.loads(line) for line in (log_dir / "unit.log").read_text().splitlines()]
    return [line for line in lines if marker in str(line["message"])]


@pytest.fixture
def isolated() -> Iterator[logging.Logger]:
    """A ``propagate=False`` logger, as a library or a ``LOGGING`` dict often configures one."""
    logger = logging.getLogger("app.isolated")
    logger.propagate = False
    yield logger
    logger.handlers.clear()
    logger.propagate = True


class TestTheApplicationsOwnHandlers:
    def test_a_child_loggers_console_handler_prints_the_line_redacted(self, log_dir, app_stream):
        """A child logger's handlers run before the root's: they printed the SSN in clear."""
        logging.getLogger("app.billing").info("invoice for SSN %s (child-handler)", SSN)
        assert "app-console INFO invoice for SSN [REDACTED:SSN] (child-handler)\n" == app_stream.getvalue()
        assert ["invoice for SSN [REDACTED:SSN] (child-handler)"] == [
            line["message"] for line in file_lines(log_dir, "child-handler")
        ]

    def test_a_non_propagating_loggers_records_are_redacted_and_reach_the_file_once(self, log_dir, isolated):
        keep = Keep()
        isolated.addHandler(keep)
        isolated.warning("lookup of %s failed (isolated)", SSN, extra={"ssn": SSN})
        assert ["lookup of [REDACTED:SSN] failed (isolated)"] == keep.messages
        assert REDACTED_SSN == keep.rows[0]["ssn"]
        lines = file_lines(log_dir, "(isolated)")
        assert [("lookup of [REDACTED:SSN] failed (isolated)", REDACTED_SSN, "unit")] == [
            (line["message"], line["ssn"], line["service_name"]) for line in lines
        ]

    def test_a_handler_that_stores_records_keeps_only_redacted_fields(self, log_dir):
        keep = Keep()
        logger = logging.getLogger("app.store")
        logger.addHandler(keep)
        try:
            logger.info("patient %s admitted (stored)", SSN, extra={"ssn": SSN, "note": f"SSN {SSN}"})
        finally:
            logger.removeHandler(keep)
        (row,) = keep.rows
        assert ("patient [REDACTED:SSN] admitted (stored)", None) == (row["msg"], row["args"])
        assert (REDACTED_SSN, f"SSN {REDACTED_SSN}") == (row["ssn"], row["note"])
        assert 1 == len(file_lines(log_dir, "(stored)"))

    def test_a_mail_admins_like_handler_formats_only_the_redacted_exception(self, log_dir):
        mail = MailAdmins()
        logger = logging.getLogger("app.request")
        logger.addHandler(mail)
        try:
            try:
                raise ValueError(f"no chart for SSN {SSN}")
            except ValueError:
                logger.exception("Internal Server Error: /exams (mailed)")
        finally:
            logger.removeHandler(mail)
        (body,) = mail.bodies
        assert SSN not in body
        assert f"ValueError: no chart for SSN {REDACTED_SSN}" in body
        (line,) = file_lines(log_dir, "(mailed)")
        assert {"type": "ValueError", "message": f"no chart for SSN {REDACTED_SSN}"} == {
            k: v
            for k, v in line["exception"].items()  # type: ignore[union-attr]
            if k != "stacktrace"
        }

    def test_an_exception_with_phi_in_its_message_is_redacted_for_a_formatter(self, log_dir, app_stream):
        try:
            raise RuntimeError(f"billing failed for SSN {SSN}")
        except RuntimeError:
            logging.getLogger("app").exception("billing failed (exception)")
        printed = app_stream.getvalue()
        assert SSN not in printed
        assert f"RuntimeError: billing failed for SSN {REDACTED_SSN}" in printed
        (line,) = file_lines(log_dir, "(exception)")
        assert SSN not in json.dumps(line)

    def test_a_logger_adapter_s_message_and_extras_are_redacted(self, log_dir, app_stream):
        adapter = logging.LoggerAdapter(logging.getLogger("app.adapter"), {"ssn": SSN})
        adapter.info("visit for %s (adapter)", SSN)
        assert "app-console INFO visit for [REDACTED:SSN] (adapter)\n" == app_stream.getvalue()
        (line,) = file_lines(log_dir, "(adapter)")
        assert ("visit for [REDACTED:SSN] (adapter)", REDACTED_SSN) == (line["message"], line["ssn"])


class TestHandlersInstalledAfterSetUp:
    def test_basicconfig_force_keeps_lumen_otel_and_its_handler_prints_redacted(self, log_dir):
        stream = io.StringIO()
        logging.basicConfig(force=True, stream=stream, format="basic %(message)s")
        logging.getLogger("app.basic").info("SSN %s on file (basicconfig)", SSN)
        assert "basic SSN [REDACTED:SSN] on file (basicconfig)\n" == stream.getvalue()
        assert 1 == len(file_lines(log_dir, "(basicconfig)"))

    def test_basicconfig_force_on_stderr_does_not_print_each_line_a_second_time(self, log_dir):
        """Its console handler would repeat lumen-otel's console: replaced, as at set-up."""
        logging.basicConfig(force=True)
        handlers = logging.getLogger().handlers
        assert [RootHandler] == [type(h) for h in handlers if type(h) in (RootHandler, logging.StreamHandler)]

    def test_replacing_the_console_handler_of_basicconfig_says_so_once(self, tmp_path: Path) -> None:
        """``basicConfig(format=...)`` after set-up: its format is not used, and the user is told why."""
        script = textwrap.dedent("""
            import logging
            import lumen_otel

            lumen_otel.configure_logging(service_name="unit", console=True)
            logging.basicConfig(force=True, format="MYFMT %(message)s")
            logging.basicConfig(force=True, format="MYFMT %(message)s")
            logging.getLogger("app").warning("hello")
        """)
        done = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script],
            env=clean_env(LUMEN_LOG_DIR=str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 == done.returncode, done.stderr
        assert 1 == done.stderr.count("lumen-otel's console replaces the console handler StreamHandler")
        assert [] == [line for line in done.stderr.splitlines() if line.startswith("MYFMT")]

    def test_dictconfig_after_setup_keeps_lumen_otel_and_its_handlers_see_redacted_text(self, log_dir):
        stream = io.StringIO()
        keep = Keep()
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "formatters": {"plain": {"format": "dict %(message)s"}},
                "handlers": {
                    "buffer": {"class": "logging.StreamHandler", "stream": stream, "formatter": "plain"},
                    "keep": {"()": lambda: keep},
                },
                "root": {"handlers": ["buffer"], "level": "INFO"},
                "loggers": {"app.audit": {"handlers": ["keep"], "propagate": False, "level": "INFO"}},
            }
        )
        try:
            logging.getLogger("app.dict").info("SSN %s on the chart (dictconfig)", SSN)
            logging.getLogger("app.audit").info("audit of %s (dictconfig-audit)", SSN)
        finally:
            logging.getLogger("app.audit").handlers.clear()
            logging.getLogger("app.audit").propagate = True
        assert "dict SSN [REDACTED:SSN] on the chart (dictconfig)\n" == stream.getvalue()
        assert ["audit of [REDACTED:SSN] (dictconfig-audit)"] == keep.messages
        assert 1 == len(file_lines(log_dir, "(dictconfig)"))
        assert 1 == len(file_lines(log_dir, "(dictconfig-audit)"))


class TestOncePerRecord:
    def test_two_handlers_on_the_way_to_the_root_see_the_same_redacted_text(self, log_dir, app_stream):
        stream = io.StringIO()
        second = logging.StreamHandler(stream)
        second.setFormatter(logging.Formatter("app-console %(levelname)s %(message)s"))
        logger = logging.getLogger("app.twice")
        logger.addHandler(second)
        try:
            logger.info("SSN %s, again (two-handlers)", SSN)
        finally:
            logger.removeHandler(second)
        expected = "app-console INFO SSN [REDACTED:SSN], again (two-handlers)\n"
        assert (expected, expected) == (stream.getvalue(), app_stream.getvalue())
        assert ["SSN [REDACTED:SSN], again (two-handlers)"] == [
            line["message"] for line in file_lines(log_dir, "(two-handlers)")
        ]

    def test_a_record_handled_again_by_another_logger_is_neither_re_redacted_nor_duplicated(
        self, log_dir, isolated
    ):
        """A record made elsewhere (``makeLogRecord``) given to ``logger.handle``, then handed on
        to a second logger, as a queue listener or a forwarding handler does."""
        keep = Keep()
        isolated.addHandler(keep)
        record = logging.makeLogRecord(
            {"name": "worker", "levelno": logging.INFO, "levelname": "INFO", "msg": f"SSN {SSN} (again)"}
        )
        isolated.handle(record)
        logging.getLogger("app.forward").handle(record)
        assert [f"SSN {REDACTED_SSN} (again)"] * 2 == [*keep.messages, record.getMessage()]
        assert [f"SSN {REDACTED_SSN} (again)"] == [line["message"] for line in file_lines(log_dir, "(again)")]


#: a Django project's ``mail_admins`` (with its HTML report asked for) and the in-memory e-mail
#: backend, a 500 logged as Django's handler logs it (the request as ``extra``), then runserver's
#: access line for it
DJANGO_MAIL = """
import json, logging, logging.config, sys
import django
from django.conf import settings

urlpatterns = []
settings.configure(
    DEBUG=False, SECRET_KEY="test-only-not-secret", ADMINS=[("Ops", "ops@clinic.example")],
    ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", LOGGING_CONFIG=None,
)
django.setup()
import lumen_otel
lumen_otel.configure_logging(service_name="unit", log_dir=sys.argv[1], console=False)
logging.config.dictConfig({
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "mail_admins": {
            "level": "ERROR", "class": "django.utils.log.AdminEmailHandler", "include_html": True,
        },
        "django.server": {"class": "logging.StreamHandler"},
    },
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
})
from django.core import mail
from django.test import RequestFactory

request = RequestFactory().post("/exams", {"ssn": "SSN_VALUE", "note": "chart for SSN SSN_VALUE"})
try:
    raise ValueError("no chart for SSN SSN_VALUE")
except ValueError:
    logging.getLogger("django.request").error(
        "Internal Server Error: %s", request.path, exc_info=True,
        extra={"status_code": 500, "request": request},
    )
logging.getLogger("django.server").error('"POST /exams HTTP/1.1" 500 145', extra={"status_code": 500})
lumen_otel._setup.bootstrap.current_handle().force_flush()
print(json.dumps([
    {"subject": m.subject, "body": m.body, "html": len(m.alternatives), "raw": m.message().as_string()}
    for m in mail.outbox
]))
""".replace("SSN_VALUE", SSN)


class TestDjangosMailAdmins:
    def test_the_report_keeps_the_request_and_the_traceback_with_nothing_raw(self, tmp_path):
        """Django's ``mail_admins`` report is still the report Django writes (the request, the
        exception, the traceback), redacted as a whole: the POST data included; the HTML version,
        whose local variables cannot be redacted reliably, is not sent. One e-mail for the 500:
        runserver's access line for it does not pass through ``django``'s handlers."""
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", textwrap.dedent(DJANGO_MAIL), str(tmp_path)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert 0 == result.returncode, result.stderr
        (sent,) = json.loads(result.stdout)
        assert "[Django] ERROR (EXTERNAL IP): Internal Server Error: /exams" == sent["subject"]
        body = sent["body"]
        expected = {
            "exception": True,
            "traceback": True,
            "request": True,
            "POST data, redacted": True,
            "HTML report": 0,
            "raw SSN": False,
        }
        assert expected == {
            "exception": f"Exception Value: no chart for SSN {REDACTED_SSN}" in body,
            "traceback": 'Traceback (most recent call last):\n  File "<string>", line ' in body,
            "request": "Request information:" in body,
            "POST data, redacted": f"ssn = '{REDACTED_SSN}'" in body,
            "HTML report": sent["html"],
            "raw SSN": SSN in body + sent["subject"] + sent["raw"] + result.stdout + result.stderr,
        }
        lines = [json.loads(line) for line in (tmp_path / "unit.log").read_text().splitlines()]
        assert [
            ("django.request", "Internal Server Error: /exams"),
            ("django.server", '"POST /exams HTTP/1.1" 500 145'),
        ] == [(line["logger"], line["message"]) for line in lines]


class TestValuesFoundOnceAreMaskedEverywhere:
    def test_a_phi_key_value_is_masked_in_the_message_and_the_exception(self, log_dir: Path) -> None:
        """The MRN under ``mrn`` in ``extra`` also goes from the message and the exception that
        repeat it unlabelled; a name labelled in the message goes from the exception text too."""
        logger = logging.getLogger("app.merge")
        try:
            raise LookupError("no chart for 97727665 (Okafor)")
        except LookupError:
            logger.exception("merge failed for patient Okafor: 97727665", extra={"mrn": "97727665"})
        handle = lumen_otel.configure_logging()
        handle.force_flush()
        (record,) = [json.loads(line) for line in (log_dir / "unit.log").read_text().splitlines()]
        assert (
            "merge failed for patient [REDACTED:NAME]: [REDACTED:MRN]",
            "[REDACTED:MRN]",
            "no chart for [REDACTED:MRN] ([REDACTED:NAME])",
        ) == (record["message"], record["mrn"], record["exception"]["message"])
        assert "97727665" not in record["exception"]["stacktrace"]
        assert "Okafor" not in record["exception"]["stacktrace"]
