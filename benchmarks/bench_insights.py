"""``lumen-otel insights`` over a large log directory: seconds, lines/s and peak RSS.

Writes ``--lines`` generated JSON lines (default 1,000,000; lumen's record shape, six services,
about forty templates with varying numbers, ids, IPs and redaction tokens, rotated files, an
error burst and a template new in the window) into a temporary log directory, then runs the
real CLI (``lumen-otel insights --log-dir ... --json``) on it in a child process, twice: on a
tenth of the lines and on all of them. Budgets: all the lines in 60 s or less, and peak RSS that
does not grow with the lines (memory is bounded by templates): at most 1.5x the tenth's + 20 MB.

    .venv/bin/python benchmarks/bench_insights.py [--lines 1000000] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

BUDGET_SECONDS = 60.0
RSS_GROWTH = 1.5
RSS_SLACK_MB = 20.0
START = 1_795_000_000.0  # 2026-11-18T10:13:20Z: the baseline hour, then the window hour
SPAN = 7200.0

SERVICES = ("reports", "media", "dubin", "hl7-listener", "scheduler", "billing")
IPS = [f"10.{a}.{b}.{c}" for a, b, c in ((0, 3, 7), (0, 9, 12), (1, 2, 3), (4, 4, 20), (7, 1, 99))]


#: (service, level, logger, message) with variable parts: {int:A-B}, {hex:BITS}, {HEX:BITS},
#: {ip}, {ratio} and {pick:a|b|c}
TEMPLATES = (
    ("reports", "INFO", "reports.exams", "Exam created exam_id=EX-{int:1000-9999} modality=XR"),
    ("reports", "INFO", "reports.exams", "Exam {int:1-99999} assigned to radiologist {int:1-80}"),
    ("reports", "INFO", "django.server", '"GET /exams/{int:1-9999} HTTP/1.1" 200 {int:200-9000}'),
    ("reports", "INFO", "django.server", '"POST /exams HTTP/1.1" 201 {int:100-900}'),
    ("reports", "WARNING", "reports.exams", "Slow query on exams took {int:500-4000}ms"),
    (
        "reports",
        "INFO",
        "reports.audit",
        "Chart opened for patient [REDACTED:NAME], MRN: [REDACTED:MRN] by user {int:1-500}",
    ),
    (
        "media",
        "INFO",
        "media.images",
        "Image upload complete exam_id=EX-{int:1000-9999} images={int:1-9} size_bytes={int:100000-9000000}",
    ),
    ("media", "INFO", "media.images", "Stored object {hex:64} in bucket dicom-{int:1-4}"),
    ("media", "INFO", "uvicorn.access", '{ip}:{int:1024-65535} - "POST /images HTTP/1.1" 200'),
    ("media", "INFO", "httpx", 'HTTP Request: GET http://{ip}:{int:1024-65535}/criteria "HTTP/1.1 200 OK"'),
    ("media", "DEBUG", "media.cache", "cache hit ratio {ratio} for study 1.2.840.{int:10000-999999}"),
    ("media", "WARNING", "media.images", "Retrying upload {int:1-5}/5 after timeout of {int:1-30}s"),
    ("dubin", "WARNING", "dubin.criteria", "Criteria index is {int:1-9} days old; answering from the cache"),
    (
        "dubin",
        "INFO",
        "dubin.criteria",
        "Criteria query resolved criteria_set=ACR-AC-CHEST-{int:2020-2026} score={ratio}",
    ),
    (
        "dubin",
        "INFO",
        "uvicorn.access",
        '[REDACTED:IP]:{int:1024-65535} - "GET /criteria?procedure_code={int:70000-79999} HTTP/1.1" 200',
    ),
    (
        "hl7-listener",
        "INFO",
        "hl7.listener",
        "HL7 message received: MSH|^~\\&|LUMEN_MEDIA|LUMEN|{int:20260101000000-20261231235959}"
        "||ORU^R01|MSG{HEX:40}|P|2.5.1",
    ),
    ("hl7-listener", "INFO", "hl7.audit", "HL7 audit: message accepted patient_mrn=mrn:{hex:48} ack=AA"),
    ("hl7-listener", "WARNING", "hl7.listener", "Segment PV1 missing in message MSG{HEX:40}"),
    (
        "scheduler",
        "INFO",
        "scheduler.jobs",
        "Job reminder-{int:1-50} finished in {int:1-900}ms, next run in {int:1-60}m",
    ),
    ("scheduler", "INFO", "scheduler.jobs", "Queue depth {int:0-200} worker pool busy {int:0-8}/8"),
    ("scheduler", "DEBUG", "scheduler.lock", "Lock {hex:32} acquired by worker {int:1-8}"),
    (
        "billing",
        "INFO",
        "billing.claims",
        "Claim CLM-{int:100000-999999} submitted for account [REDACTED:ACCOUNT] amount {int:10-9000}",
    ),
    (
        "billing",
        "INFO",
        "billing.claims",
        "Payer {pick:aetna|cigna|medicare|bcbs} responded in {int:50-3000}ms with status accepted",
    ),
    (
        "billing",
        "ERROR",
        "billing.claims",
        "Claim CLM-{int:100000-999999} rejected by payer: code {int:1-99}",
    ),
    # only in the window: a new error template (a burst in the last eighth) and a new info template
    (
        "media",
        "ERROR",
        "media.hl7",
        "HL7 send to {ip}:2575 failed after {int:1-5} retries: connection refused",
    ),
    (
        "scheduler",
        "INFO",
        "scheduler.jobs",
        "Feature flag {pick:fast-path|new-ui|v2-api} enabled for {int:1-90}",
    ),
)
BURST, NEW = len(TEMPLATES) - 2, len(TEMPLATES) - 1
_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def _compile(text: str, rng: random.Random) -> Callable[[], str]:
    """A maker of messages for one template: its literal parts and one function per field."""
    parts: list[str | Callable[[], str]] = []
    last = 0
    for match in _FIELD.finditer(text):
        parts.append(text[last : match.start()])
        kind, arg = match.group(1), match.group(2) or ""
        if kind == "int":
            low, high = (int(x) for x in arg.split("-"))
            parts.append(lambda low=low, high=high: str(rng.randint(low, high)))
        elif kind in ("hex", "HEX"):
            bits, upper = int(arg), kind == "HEX"
            parts.append(
                lambda bits=bits, upper=upper: format(
                    rng.getrandbits(bits), f"0{bits // 4}{'X' if upper else 'x'}"
                )
            )
        elif kind == "ip":
            parts.append(lambda: rng.choice(IPS))
        elif kind == "ratio":
            parts.append(lambda: f"{rng.random():.2f}")
        else:
            choices = arg.split("|")
            parts.append(lambda choices=choices: rng.choice(choices))
        last = match.end()
    parts.append(text[last:])
    return lambda: "".join(p if isinstance(p, str) else p() for p in parts)


def _timestamp(seconds: float) -> str:
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1e6):06d}Z"


def generate(log_dir: Path, lines: int, seed: int = 7) -> None:
    """``lines`` records over two hours (baseline, then window) in ``<service>.log`` (+ ``.log.1``)."""
    rng = random.Random(seed)
    makers = [_compile(text, rng) for _, _, _, text in TEMPLATES]
    weights = [rng.choice((1, 2, 5, 10, 20, 40)) for _ in TEMPLATES[:BURST]]
    handles = {
        (service, part): (log_dir / (f"{service}.log.1" if part else f"{service}.log")).open("wb")
        for service in SERVICES
        for part in (0, 1)
    }
    step = SPAN / lines
    chosen = rng.choices(range(BURST), weights=weights, k=lines)
    dumps = orjson.dumps
    try:
        for i in range(lines):
            when = START + i * step
            in_window = when >= START + SPAN / 2
            which = chosen[i]
            if in_window and when >= START + SPAN * 7 / 8 and i % 50 == 0:
                which = BURST
            elif in_window and i % 400 == 0:
                which = NEW
            service, level, logger, _ = TEMPLATES[which]
            message = makers[which]()
            cid = f"{rng.getrandbits(128):032x}"
            record = {
                "timestamp": _timestamp(when),
                "level": level,
                "service_name": service,
                "hostname": "bench",
                "logger": logger,
                "message": message,
                "correlation_id": f"{cid[:8]}-{cid[8:12]}-4{cid[13:16]}-a{cid[17:20]}-{cid[20:]}",
                "trace_id": cid,
                "span_id": cid[:16],
            }
            # the first half hour lands in the rotated file, as after a size rotation
            handles[(service, when < START + SPAN / 4)].write(dumps(record) + b"\n")
    finally:
        for handle in handles.values():
            handle.close()


def run_cli(log_dir: Path, extra: list[str], timeout: float) -> tuple[float, float, dict[str, object]]:
    """(seconds, peak RSS in MB, the JSON) of one ``lumen-otel insights`` child process."""
    exe = Path(sys.executable).parent / "lumen-otel"
    cmd = [
        str(exe),
        "insights",
        "--log-dir",
        str(log_dir),
        "--since",
        _timestamp(START + SPAN / 2),
        "--until",
        _timestamp(START + SPAN),
        "--no-llm",
        "--json",
        *extra,
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(_common.REPO))
        try:
            _, status, usage = _wait4(proc.pid, timeout)
        except TimeoutError:
            proc.kill()
            proc.wait()
            raise
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"lumen-otel insights failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    rss_mb = usage.ru_maxrss / 1024  # KB on Linux: this child's own peak
    return seconds, rss_mb, json.loads(stdout)


def _wait4(pid: int, timeout: float) -> tuple[int, int, resource.struct_rusage]:
    """``os.wait4`` with a deadline (polled every 50 ms, so the loop is bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return done, status, usage
        time.sleep(0.05)
    raise TimeoutError(f"lumen-otel insights took more than {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the large run")
    parser.add_argument("--quick", action="store_true", help="smoke: 50,000 lines")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the mining")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    lines = 50_000 if args.quick else max(1_000, min(args.lines, 20_000_000))
    print(_common.header(f"bench_insights: lumen-otel insights over {lines:,} generated JSON lines"))

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lumen-bench-insights-") as tmp:
        report: dict[str, object] = {}
        for name, n in (("tenth", lines // 10), ("all", lines)):
            log_dir = Path(tmp) / name
            log_dir.mkdir()
            started = time.perf_counter()
            generate(log_dir, n)
            size = sum(p.stat().st_size for p in log_dir.iterdir())
            print(
                f"  generated {n:,} lines ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            seconds, rss, report = run_cli(log_dir, [], timeout=max(120.0, BUDGET_SECONDS * 5))
            results[name] = {
                "lines": n,
                "seconds": seconds,
                "lines_per_second": n / seconds,
                "peak_rss_mb": rss,
            }
            print(f"  {name}: {seconds:.1f} s, {n / seconds:,.0f} lines/s, peak RSS {rss:.0f} MB", flush=True)
            if args.profile and name == "all":
                _profile(log_dir)
        print(f"load average at end: {_common.load_average()}")

    print()
    rows = [
        (
            name,
            f"{r['lines']:,.0f}",
            f"{r['seconds']:.1f}",
            f"{r['lines_per_second']:,.0f}",
            f"{r['peak_rss_mb']:.0f}",
        )
        for name, r in results.items()
    ]
    print(_common.table(rows, ("run", "lines", "seconds", "lines/s", "peak RSS MB")))
    templates = report.get("templates") or []
    assert isinstance(templates, list)
    print(
        f"found: {len(report.get('groups') or [])} service/level groups, "
        f"{len(templates)} templates reported, "
        f"new {len(report.get('new') or [])}, spikes {len(report.get('spikes') or [])}, "
        f"errors {len(report.get('errors') or [])}, evicted {report.get('templates_evicted')}"
    )
    full, tenth = results["all"], results["tenth"]
    fast = full["seconds"] <= BUDGET_SECONDS * lines / 1_000_000
    rss_limit = tenth["peak_rss_mb"] * RSS_GROWTH + RSS_SLACK_MB
    bounded = full["peak_rss_mb"] <= rss_limit
    print(
        f"TIME {lines:,} lines in {full['seconds']:.1f} s ({full['lines_per_second']:,.0f} lines/s; "
        f"budget {BUDGET_SECONDS * lines / 1_000_000:.0f} s) {_common.verdict(fast)}"
    )
    print(
        f"MEMORY peak RSS {full['peak_rss_mb']:.0f} MB for {lines:,} lines vs {tenth['peak_rss_mb']:.0f} MB "
        f"for {lines // 10:,} (bounded: <= {rss_limit:.0f} MB) {_common.verdict(bounded)}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if fast and bounded else 1


def _profile(log_dir: Path) -> None:
    """Where the time goes, in this process (the CLI's reading and mining, without its startup)."""
    import cProfile
    import pstats

    from lumen_otel.insights.analysis import InsightsBuilder, TimeRange
    from lumen_otel.insights.sources import LogDirSource

    window = TimeRange(START + SPAN / 2, START + SPAN)
    builder = InsightsBuilder(window, TimeRange(START, START + SPAN / 2))
    source = LogDirSource(log_dir)
    profiler = cProfile.Profile()
    profiler.enable()
    builder.add_all(source.entries(builder.since, builder.until))
    builder.build(source=str(log_dir))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    sys.exit(main())
