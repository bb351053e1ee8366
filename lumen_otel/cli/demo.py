"""``lumen-otel demo``: four real services, one request, its trace across all of them."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lumen_otel.demo._orchestrator import SERVICES

if TYPE_CHECKING:
    from rich.console import Console

    from lumen_otel.demo._orchestrator import DemoRun

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(
        cid: Annotated[
            str | None, typer.Option("--cid", help="Correlation ID to send (default: a new UUID).")
        ] = None,
        log_dir: Annotated[
            Path | None,
            typer.Option(
                "--log-dir", help="Where the services write their logs (default: a new temporary directory)."
            ),
        ] = None,
        collector: Annotated[
            bool,
            typer.Option(
                "--collector",
                help="Also export OTLP through the lumen-otelcol collector with its local config "
                "(bin/lumen-otelcol or on PATH; build it with `make collector` in a source checkout).",
            ),
        ] = False,
        keep: Annotated[
            bool, typer.Option("--keep", help="Leave the services running until Ctrl-C.")
        ] = False,
    ) -> None:
        """Run Reports (Django), Media, Dubin and the HL7 listener (FastAPI); follow one request."""
        raise typer.Exit(run_demo(cid=cid, log_dir=log_dir, collector=collector, keep=keep))


def run_demo(*, cid: str | None, log_dir: Path | None, collector: bool, keep: bool) -> int:
    """The whole command; returns the exit status.

    0 ok, 1 failed, 2 a bad option or something the demo needs is not installed (the message
    says what and where to get it), 130 interrupted.
    """
    from lumen_otel._correlation.context import parse_correlation_id
    from lumen_otel.cli.trace import make_console
    from lumen_otel.demo._orchestrator import (
        DemoError,
        DemoPrerequisiteError,
        DemoRun,
        find_collector,
        terminate_on_sigterm,
    )

    console = make_console()
    if cid is not None and parse_correlation_id(cid, warn=False) is None:
        console.print(
            f"[red]error:[/] --cid {escape(repr(cid))} is not a valid correlation ID "
            "(1-128 characters of A-Z a-z 0-9 . _ : + = / @ -, not personal data)"
        )
        return 2
    found_collector = None
    if collector:
        try:
            found_collector = find_collector()
        except DemoPrerequisiteError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            return 2
    directory = (log_dir or Path(tempfile.mkdtemp(prefix="lumen-demo-"))).resolve()

    def progress(event: str, name: str, detail: str) -> None:
        if event == "ready":
            console.print(f"  [green]✓[/] {name:<13} [dim]{escape(detail)}[/]")
        elif event == "starting" and name == "collector":
            console.print(f"  [dim]…[/] {name:<13} [dim]{escape(detail)}[/]")

    run = DemoRun(directory, on_progress=progress)
    with terminate_on_sigterm():
        try:
            run.collector = found_collector
            code = _follow_one_request(run, console, cid, keep)
            if code == 0 and keep:
                console.print(
                    "[bold]Services still running[/] "
                    + " ".join(f"{n}={u}" for n, u in run.urls.items())
                    + " [dim](Ctrl-C stops them)[/]"
                )
                while True:
                    time.sleep(3600)
            return code
        except DemoPrerequisiteError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            return 2
        except DemoError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}")
            return 1
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: stopping the services[/]")
            return 0 if keep else 130
        finally:
            run.stop()


def _follow_one_request(run: DemoRun, console: Console, cid: str | None, keep: bool) -> int:
    from lumen_otel.cli.trace import build_timeline, load_from_dir, parse_query, render

    started = time.monotonic()
    directory = run.log_dir
    console.print(f"[bold]Starting the Lumen demo[/] [dim](logs in {escape(str(directory))})[/]")
    with console.status("starting reports, media, dubin and hl7-listener under opentelemetry-instrument…"):
        run.start()
    console.print(f"[bold]POST /exams[/] to reports [dim]({run.urls['reports']})[/]")
    used_cid, _ = run.send(cid)
    query = parse_query(used_cid)
    with console.status("waiting for the logs…"):
        missing = run.wait_for_logs(used_cid)
    through_collector = None
    if run.collector is not None and query.trace_id is not None:
        with console.status("waiting for the collector's files…"):
            through_collector = run.wait_for_collector(query.trace_id)
    if not keep:
        run.stop()  # before reading the files: every record flushed, no shutdown noise mixed in
    timeline = build_timeline(query, load_from_dir(directory, query), str(directory))
    console.print()
    render(timeline, console)
    console.print()
    if missing:
        console.print(f"[red]error:[/] no records from {', '.join(missing)} within the wait")
        return 1
    if through_collector is not None:
        logs, spans, services = through_collector
        console.print(
            f"[bold]Through lumen-otelcol:[/] {logs} log records and {spans} spans of this trace from "
            f"{len(services)} services, redacted again [dim]({escape(str(run.collector_dir))})[/]"
        )
        if len(services) < len(SERVICES):
            console.print("[red]error:[/] not every service's records reached the collector")
            return 1
    cids, traces = len(timeline.correlation_ids), len(timeline.trace_ids)
    console.print(
        f"[dim]{len(timeline.services)} services · {cids} correlation ID{'s' if cids != 1 else ''} · "
        f"{traces} trace{'s' if traces != 1 else ''} · {time.monotonic() - started:.1f}s. "
        f"Logs: {escape(str(directory))}[/]"
    )
    console.print(f"[dim]Again:[/] {_command()} trace {used_cid} --log-dir {escape(str(directory))}")
    return 0


def _command() -> str:
    """``lumen-otel`` when it is on ``PATH``, else the path it runs from (``.venv/bin/lumen-otel``
    after ``make demo``), so that the line can be pasted as it is."""
    import os
    import shutil
    import sys

    if shutil.which("lumen-otel"):
        return "lumen-otel"
    here = os.path.join(os.path.dirname(sys.executable), "lumen-otel")
    if not os.path.exists(here):
        return "lumen-otel"
    relative = os.path.relpath(here)
    return escape(relative if not relative.startswith("..") else here)
