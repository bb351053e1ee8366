"""``lumen-otel redact`` run as the real console script."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).parent / "lumen-otel"

TEXT_LOG = (
    "2026-11-26 10:41:00,123 INFO Scheduling CT for patient Sarah Murphy, MRN: 97727665\n"
    "2026-11-26 10:41:01,000 INFO Request finished correlation_id=a7ecc7ee-126e-40a3-b3a7-1b0035b22427 status=200\n"  # noqa: E501 - sample data
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|RIS|HOSP|202605140119||ORU^R01|MSG800250|P|2.5.1\n"
    "PID|1||95789548^^^HOSP^MR||Martin^Carol^Q||20000908|F\n"
    "OBX|1|TX|18782-3^Radiology Study observation^LN||No acute cardiopulmonary process.||||||F\n"
    "Contact patient via jon16@example.com or 476-973-3122\n"
)
TEXT_REDACTED = (
    "2026-11-26 10:41:00,123 INFO Scheduling CT for patient [REDACTED:NAME], MRN: [REDACTED:MRN]\n"
    "2026-11-26 10:41:01,000 INFO Request finished correlation_id=a7ecc7ee-126e-40a3-b3a7-1b0035b22427 status=200\n"  # noqa: E501 - sample data
    "MSH|^~\\&|LUMEN_MEDIA|LUMEN|RIS|HOSP|202605140119||ORU^R01|MSG800250|P|2.5.1\n"
    "PID|1||[REDACTED:MRN]^^^HOSP^MR||[REDACTED:NAME]^[REDACTED:NAME]^[REDACTED:NAME]||[REDACTED:DOB]|F\n"
    "OBX|1|TX|18782-3^Radiology Study observation^LN||No acute cardiopulmonary process.||||||F\n"
    "Contact patient via [REDACTED:EMAIL] or [REDACTED:PHONE]\n"
)
JSON_LINES = [
    {
        "timestamp": "2026-11-26T10:41:00.123456Z",
        "level": "INFO",
        "message": "Exam record updated",
        "correlation_id": "a7ecc7ee-126e-40a3-b3a7-1b0035b22427",
        "patient_name": "Marissa Miller",
        "mrn": 41767129,
        "nested": {"phones": ["429-623-5934"], "ok": True},
        "duration_ms": 248,
    },
    {"timestamp": "2026-11-26T10:41:01.000000Z", "level": "INFO", "message": "clean", "status_code": 200},
]


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LUMEN_REDACTION_KEY"}
    full_env.update(env or {})
    return subprocess.run(
        [str(CLI), "redact", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )


class TestRedactCommand:
    def test_stdin_to_stdout_with_a_summary_on_stderr(self) -> None:
        result = run(stdin=TEXT_LOG)
        assert (
            0,
            TEXT_REDACTED,
            "lumen-otel redact: 6 lines, 9 values redacted (NAME 4, MRN 2, DOB 1, EMAIL 1, PHONE 1)\n",
        ) == (result.returncode, result.stdout, result.stderr)

    def test_json_lines_keep_structure_keys_and_untouched_lines(self) -> None:
        source = "\n".join(json.dumps(line) for line in JSON_LINES) + "\n"
        result = run(stdin=source)
        first, second = result.stdout.splitlines()
        assert (
            {
                **JSON_LINES[0],
                "patient_name": "[REDACTED:NAME]",
                "mrn": "[REDACTED:MRN]",
                "nested": {"phones": ["[REDACTED:PHONE]"], "ok": True},
            },
            json.dumps(JSON_LINES[1]),
            list(JSON_LINES[0]),
        ) == (json.loads(first), second, list(json.loads(first)))

    def test_files_are_printed_in_order(self, tmp_path: Path) -> None:
        a, b = tmp_path / "a.log", tmp_path / "b.log"
        a.write_text("SSN 123-45-6789\n")
        b.write_text("MRN 1234567\n")
        result = run(str(a), str(b), "--quiet")
        assert (0, "SSN [REDACTED:SSN]\nMRN [REDACTED:MRN]\n", "") == (
            result.returncode,
            result.stdout,
            result.stderr,
        )

    def test_in_place_rewrites_atomically_and_keeps_the_file_mode(self, tmp_path: Path) -> None:
        log = tmp_path / "svc.log"
        log.write_bytes(TEXT_LOG.encode())
        log.chmod(0o640)
        inode_before = log.stat().st_ino
        result = run("--in-place", str(log))
        assert (0, "", TEXT_REDACTED, 0o640, ["svc.log"], True) == (
            result.returncode,
            result.stdout,
            log.read_text(),
            stat.S_IMODE(log.stat().st_mode),
            sorted(p.name for p in tmp_path.iterdir()),
            log.stat().st_ino != inode_before,
        )

    def test_crlf_line_endings_and_non_utf8_bytes_survive(self, tmp_path: Path) -> None:
        log = tmp_path / "win.log"
        log.write_bytes(b"SSN 123-45-6789\r\nbad byte \xff here\r\n")
        result = run("-i", str(log), "-q")
        assert (0, "") == (result.returncode, result.stderr)
        assert b"SSN [REDACTED:SSN]\r\nbad byte \xff here\r\n" == log.read_bytes()

    def test_a_key_from_the_option_or_the_environment_gives_pseudonyms(self) -> None:
        option = run("--key", "0123456789abcdef-cli", "-q", stdin="MRN 1234567\n")
        env = run("-q", stdin="MRN 1234567\n", env={"LUMEN_REDACTION_KEY": "0123456789abcdef-cli"})
        assert (0, "", 0, "") == (option.returncode, option.stderr, env.returncode, env.stderr)
        by_option, by_env = option.stdout, env.stdout
        assert (True, by_option) == (
            by_option.startswith("MRN mrn:") and len(by_option) == len("MRN mrn:") + 13,
            by_env,
        )

    def test_extra_keys_and_patterns(self) -> None:
        result = run(
            "--extra-key",
            "case_number",
            "--extra-pattern",
            r"ACC\d+",
            "-q",
            stdin='{"case_number": "C-1"}\naccession ACC7823\n',
        )
        assert '{"case_number": "[REDACTED:CUSTOM]"}\naccession [REDACTED:CUSTOM]\n' == result.stdout

    def test_errors_exit_2_with_a_message(self, tmp_path: Path) -> None:
        missing = run(str(tmp_path / "nope.log"))
        bad_pattern = run("--extra-pattern", "(", stdin="x\n")
        no_file = run("--in-place")
        assert (2, 2, 2) == (missing.returncode, bad_pattern.returncode, no_file.returncode)
        assert "no such file" in missing.stderr and "invalid redaction pattern" in bad_pattern.stderr

    def test_a_clean_file_is_left_byte_for_byte(self, tmp_path: Path) -> None:
        log = tmp_path / "clean.log"
        content = b'{"a":1,"b":"x"}\nplain  spaced\ttext\n'
        log.write_bytes(content)
        result = run("-i", str(log))
        assert (content, "lumen-otel redact: 2 lines, nothing redacted\n") == (
            log.read_bytes(),
            result.stderr,
        )


class TestHostileInput:
    def test_a_short_key_is_refused_as_the_service_refuses_it(self) -> None:
        option = run("--key", "short", stdin="MRN 1234567\n")
        env = run(stdin="MRN 1234567\n", env={"LUMEN_REDACTION_KEY": "short"})
        for result in (option, env):
            assert (2, "") == (result.returncode, result.stdout)
            assert "at least 16 characters" in result.stderr
            assert "short" not in result.stderr.replace("lumen-otel redact", "")

    def test_in_place_never_follows_a_link_planted_at_a_log_name(self, tmp_path: Path) -> None:
        """A link at ``svc.log`` pointing at a private file: the file is neither read into the
        log directory nor changed; the command says why."""
        private = tmp_path / "private"
        private.mkdir(mode=0o700)
        secret = private / "notes.txt"
        secret.write_text("root-only secret: db_password=Hunter2-XYZ MRN 1234567\n")
        log_dir = tmp_path / "logs"
        log_dir.mkdir()
        (log_dir / "svc.log").symlink_to(secret)
        result = run("-i", str(log_dir / "svc.log"))
        assert 2 == result.returncode
        assert "symbolic link" in result.stderr
        assert (log_dir / "svc.log").is_symlink()
        assert "db_password=Hunter2-XYZ MRN 1234567\n" in secret.read_text()
        assert ["svc.log"] == sorted(p.name for p in log_dir.iterdir())

    def test_one_line_and_one_value_are_counted_in_the_singular(self) -> None:
        result = run(stdin="MRN: 12345678\n")
        assert "lumen-otel redact: 1 line, 1 value redacted (MRN 1)\n" == result.stderr
