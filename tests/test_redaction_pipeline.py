"""PHI samples through the whole pipeline: nothing identifying reaches the file, the console or OTLP."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap

import pytest

from tests.conftest import PHI_SAMPLES, VENV_BIN, clean_env

pytestmark = pytest.mark.integration

SAMPLES = [json.loads(line) for line in PHI_SAMPLES.read_text().splitlines() if line.strip()]


def found(needle: str, haystack: str) -> bool:
    """Word-boundary match, as the samples' README asks (so '250' does not match '2500')."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])", haystack) is not None


@pytest.fixture(scope="module")
def pipeline_output(tmp_path_factory):
    """Log every sample once through bootstrap() (file, JSON console, OTLP) and collect what left."""
    from lumen_otel.testing import OTLPReceiver

    log_dir = tmp_path_factory.mktemp("logs")
    script = textwrap.dedent(f"""
        import json, logging, lumen_otel
        handle = lumen_otel.bootstrap(service_name="phi")
        log = logging.getLogger("app.phi")
        for line in open({str(PHI_SAMPLES)!r}):
            sample = json.loads(line)
            if sample["kind"] == "extra":
                log.info(sample["text"], extra=dict(sample["extra"], sample_id=sample["id"]))
            else:
                log.info(sample["text"], extra={{"sample_id": sample["id"]}})
        try:
            raise ValueError("lookup failed for patient SSN 123-45-6789")
        except ValueError:
            log.exception("exception sample", extra={{"sample_id": -1}})
    """)
    with OTLPReceiver() as receiver:
        env = clean_env(
            LUMEN_ENV="prod", LUMEN_LOG_DIR=str(log_dir), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
        )
        result = subprocess.run(
            [str(VENV_BIN / "python"), "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert receiver.wait_for(lambda r: len(r.logs) >= len(SAMPLES) + 1)
        otlp = {log.attributes["sample_id"]: log for log in receiver.logs if "sample_id" in log.attributes}
    file_records = {
        r["sample_id"]: r for r in map(json.loads, (log_dir / "phi.log").read_text().splitlines())
    }
    console = result.stdout
    return file_records, otlp, console


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['id']}-{s['kind']}" for s in SAMPLES])
def test_sample_is_redacted_in_every_sink(pipeline_output, sample):
    file_records, otlp, console = pipeline_output
    file_text = json.dumps(file_records[sample["id"]], ensure_ascii=False)
    otlp_record = otlp[sample["id"]]
    otlp_text = json.dumps(
        {"body": otlp_record.body, "attributes": otlp_record.attributes}, ensure_ascii=False
    )
    console_line = next(line for line in console.splitlines() if f'"sample_id":{sample["id"]}' in line)
    for sink, text in (("file", file_text), ("otlp", otlp_text), ("console", console_line)):
        leaked = [phi for phi in sample["phi"] if found(phi, text)]
        assert leaked == [], f"{sink} leaked {leaked}: {text}"
        lost = [keep for keep in sample["keep"] if keep not in text]
        assert lost == [], f"{sink} lost {lost}: {text}"


def test_exception_message_and_traceback_are_redacted(pipeline_output):
    file_records, otlp, _ = pipeline_output
    record = file_records[-1]
    assert "123-45-6789" not in json.dumps(record)
    assert "123-45-6789" not in json.dumps(otlp[-1].attributes)
    assert record["exception"]["type"] == "ValueError"
