"""``lumen-otel insights``: what the logs are doing, as templates mined with Drain.

Reads a window of records (``--since``/``--until``) and a baseline before it from a log
directory, Loki (``--loki URL``) or OpenSearch/Elasticsearch (``--opensearch URL``), mines templates per
service and level (:mod:`lumen_otel.insights.drain`), and reports the top templates with a
sparkline over the window, templates new since the baseline, spikes against it, and error
templates with correlation IDs to follow with ``lumen-otel trace``. ``--json`` prints the
documented schema instead. An optional summary comes from an OpenAI-compatible endpoint
(``LUMEN_INSIGHTS_LLM_*``, ``--llm/--no-llm``); only redacted templates and counts are sent.

Every piece of log text printed to the terminal has its control, escape and bidi characters
escaped and is never read as Rich markup: log lines can carry an attacker's text.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from lumen_otel.insights.analysis import ERROR_LEVELS, Insights, InsightsBuilder, TemplateInsight, TimeRange
from lumen_otel.insights.sources import (
    Entry,
    LogDirSource,
    LokiSource,
    OpenSearchSource,
    Source,
    parse_time,
)
from lumen_otel.insights.text import escape_text

__all__ = [
    "escape_text",
    "insights_command",
    "make_console",
    "parse_duration",
    "parse_when",
    "register",
    "render",
    "sparkline",
    "time_ranges",
]

_DURATION = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPARK = "▁▂▃▄▅▆▇█"
_LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "yellow bold",
    "ERROR": "red bold",
    "CRITICAL": "white on red",
}


# ---------------------------------------------------------------- parsing options


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``1h``, ``2d``, ``1w`` in seconds.

    Raises:
        ValueError: not a duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (like 30m, 1h, 2d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def parse_when(text: str, now: float) -> float:
    """``now``, a duration before ``now`` (``1h``) or an RFC 3339 time, in seconds since the epoch.

    Raises:
        ValueError: none of those.
    """
    if text.strip().lower() == "now":
        return now
    if _DURATION.match(text):
        return now - parse_duration(text)
    when = parse_time(text.strip())
    if when is None:
        raise ValueError(f"{text!r} is neither 'now', a duration (1h, 30m) nor an RFC 3339 time")
    return when


def time_ranges(
    since: str, until: str, baseline: str | None, now: float
) -> tuple[TimeRange, TimeRange | None]:
    """The window and its baseline (just before it; by default as long as the window).

    Raises:
        ValueError: unreadable values, or a window that ends before it starts.
    """
    end = parse_when(until, now)
    start = end - parse_duration(since) if _DURATION.match(since) else parse_when(since, now)
    if not end > start:
        raise ValueError("--since must come before --until")
    window = TimeRange(start, end)
    if baseline is not None and baseline.strip().lower() in ("none", "off", "0"):
        return window, None
    length = window.seconds if baseline is None else parse_duration(baseline)
    return window, TimeRange(window.since - length, window.since)


# ---------------------------------------------------------------- terminal text


def sparkline(buckets: list[int]) -> str:
    """One character per bucket, scaled to the largest; an empty bucket is a space."""
    top = max(buckets, default=0)
    if top <= 0:
        return " " * len(buckets)
    steps = len(_SPARK) - 1
    return "".join(" " if n == 0 else _SPARK[min(steps, round(n * steps / top))] for n in buckets)


def make_console(stderr: bool = False) -> Any:
    """Rich console: colour only on a terminal and without ``NO_COLOR``; wide lines when piped."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, emoji=False, markup=False)
    if not console.is_terminal:
        console = Console(
            stderr=stderr, highlight=False, emoji=False, markup=False, width=max(console.width, 400)
        )
    return console


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _ratio_text(insight: TemplateInsight) -> str:
    if insight.new:
        return "new"
    if insight.rate_ratio is None:
        return "-"
    return f"x{insight.rate_ratio:.1f}"


def render(insights: Insights, console: Any) -> None:
    """The terminal report: summary, new templates, spikes, errors, then the top per group."""
    from rich.text import Text

    _render_header(insights, console)
    by_id = insights.by_id()
    for kind, heading, ids in (
        ("new", "New since the baseline", insights.new),
        ("spike", "Spikes against the baseline", insights.spikes),
        ("error", "Error templates", insights.errors),
    ):
        if not ids:
            continue
        console.print(Text(f"\n{heading} ({len(ids)})", style="bold red" if kind == "error" else "bold"))
        shown = [by_id[i] for i in ids[: max(10, int(insights.settings.get("top", 5)))]]
        console.print(_findings_table(shown, kind))
        first = next((c for t in shown for c in t.correlation_ids), None) if kind == "error" else None
        if first:
            console.print(Text(f"follow one: lumen-otel trace {escape_text(first)}", style="dim"))
    if insights.groups:
        console.print(Text("\nTop templates per service and level", style="bold"))
    for group in insights.groups:
        head = Text()
        head.append(escape_text(group.service), style="bold cyan")
        head.append(" · ")
        head.append(escape_text(group.level), style=_LEVEL_STYLES.get(group.level, ""))
        head.append(
            f" · {group.count} records, {group.template_count} templates (baseline {group.baseline_count})",
            style="dim",
        )
        console.print(head)
        console.print(_group_table(group.templates))


def _render_header(insights: Insights, console: Any) -> None:
    from rich.text import Text

    title = Text()
    title.append("Log insights", style="bold")
    title.append(f" · {escape_text(insights.source)}", style="dim")
    console.print(title)
    window = insights.window.to_json()
    info = Text(style="dim")
    info.append(f"window {window['since']} → {window['until']} ({_duration_text(insights.window.seconds)})")
    if insights.baseline is not None:
        info.append(f" · baseline {_duration_text(insights.baseline.seconds)} before")
    else:
        info.append(" · no baseline")
    info.append(
        f"\n{insights.window_records} records in the window, {insights.baseline_records} in the baseline"
    )
    if insights.skipped:
        info.append(f", {insights.skipped} unreadable skipped")
    if insights.templates_evicted:
        info.append(f", {insights.templates_evicted} rare templates evicted (--max-templates)")
    info.append(f" · {len(insights.templates)} templates reported")
    console.print(info)
    if insights.baseline is not None and not insights.baseline_records:
        console.print(
            Text(
                "The baseline holds no records, so no template is called new or a spike: "
                "widen --baseline, or check that the logs reach back that far.",
                style="yellow",
            )
        )
    if insights.summary:
        summary = Text()
        summary.append("\nSummary", style="bold")
        summary.append(f" ({escape_text(insights.summary.get('model', ''))})\n", style="dim")
        summary.append(escape_text(insights.summary.get("text", ""), keep_newlines=True))
        console.print(summary)


def _findings_table(templates: list[TemplateInsight], kind: str) -> Any:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, show_header=True, header_style="dim", pad_edge=False, padding=(0, 1))
    if kind == "spike":
        grid.add_column("vs base", justify="right", no_wrap=True)
    for name in ("count", "window", "service", "level"):
        grid.add_column(name, justify="right" if name == "count" else "left", no_wrap=True)
    grid.add_column("template")
    for insight in templates:
        cells: list[Any] = [Text(_ratio_text(insight), style="yellow bold")] if kind == "spike" else []
        cells += [
            Text(str(insight.count), style="bold"),
            Text(sparkline(insight.buckets), style="red" if insight.error else "cyan"),
            Text(escape_text(insight.service)),
            Text(escape_text(insight.level), style=_LEVEL_STYLES.get(insight.level, "")),
            _template_cell(insight, with_ids=kind == "error"),
        ]
        grid.add_row(*cells)
    return grid


def _group_table(templates: list[TemplateInsight]) -> Any:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    for insight in templates:
        grid.add_row(
            Text(str(insight.count), style="bold"),
            Text(_ratio_text(insight), style="yellow" if insight.new or insight.spike else "dim"),
            Text(sparkline(insight.buckets), style="red" if insight.error else "cyan"),
            _template_cell(insight, with_ids=False),
        )
    return grid


def _template_cell(insight: TemplateInsight, with_ids: bool) -> Any:
    from rich.text import Text

    cell = Text()
    cell.append(escape_text(insight.template), style="red" if insight.level in ERROR_LEVELS else "")
    if insight.examples:
        cell.append("\n  e.g. ", style="dim")
        cell.append(escape_text(insight.examples[0]), style="dim")
    if with_ids and insight.correlation_ids:
        cell.append("\n  correlation IDs: ", style="dim")
        cell.append(", ".join(escape_text(c) for c in insight.correlation_ids))
    return cell


# ---------------------------------------------------------------- the command


def _filtered(entries: Iterator[Entry], services: set[str]) -> Iterator[Entry]:
    return (e for e in entries if e[1] in services) if services else entries


def insights_command(
    log_dir: Annotated[
        Path | None,
        typer.Option(
            "--log-dir",
            envvar="LUMEN_LOG_DIR",
            show_envvar=True,
            help="Directory of <service>.log files, rotated ones included (default: ./logs).",
        ),
    ] = None,
    loki: Annotated[
        str | None, typer.Option("--loki", metavar="URL", help="Read from Loki's query_range API.")
    ] = None,
    loki_query: Annotated[
        str, typer.Option("--loki-query", metavar="LOGQL", help="With --loki: the LogQL stream selector.")
    ] = '{service_name=~".+"}',
    opensearch: Annotated[
        str | None,
        typer.Option("--opensearch", metavar="URL", help="Read from OpenSearch's _search API."),
    ] = None,
    elasticsearch: Annotated[
        str | None,
        typer.Option("--elasticsearch", metavar="URL", help="Read from Elasticsearch (as --opensearch)."),
    ] = None,
    index: Annotated[
        str,
        typer.Option(
            "--index",
            envvar="OPENSEARCH_LOGS_INDEX",
            show_envvar=True,
            help="With --opensearch/--elasticsearch: index, data stream or pattern.",
        ),
    ] = "logs-lumen-*",
    search_user: Annotated[
        str | None,
        typer.Option(
            "--search-user",
            envvar="OPENSEARCH_USER",
            show_envvar=True,
            help="Basic-auth user for the search node (the password comes from OPENSEARCH_PASSWORD).",
        ),
    ] = None,
    search_ca_file: Annotated[
        Path | None,
        typer.Option(
            "--search-ca-file", envvar="OPENSEARCH_CA_FILE", show_envvar=True, help="CA bundle for https."
        ),
    ] = None,
    since: Annotated[
        str,
        typer.Option("--since", help="Start of the window: a duration before --until (1h, 30m) or RFC 3339."),
    ] = "1h",
    until: Annotated[
        str, typer.Option("--until", help="End of the window: 'now', a duration ago, or RFC 3339.")
    ] = "now",
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            metavar="DURATION",
            help="Length of the baseline just before the window (default: as long as the window; 'none').",
        ),
    ] = None,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="Only this service (repeatable).")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, max=1000, help="Templates shown per service and level.")
    ] = 5,
    min_count: Annotated[
        int, typer.Option("--min-count", min=1, help="Fewest lines in the window for a spike.")
    ] = 10,
    spike_factor: Annotated[
        float, typer.Option("--spike-factor", min=1.0, help="Rate against the baseline that makes a spike.")
    ] = 3.0,
    buckets: Annotated[int, typer.Option("--buckets", min=1, max=200, help="Sparkline buckets.")] = 24,
    max_templates: Annotated[
        int, typer.Option("--max-templates", min=10, help="Templates kept (least recently seen evicted).")
    ] = 5000,
    sim_threshold: Annotated[
        float, typer.Option("--sim-threshold", min=0.0, max=1.0, help="Drain's similarity threshold.")
    ] = 0.4,
    llm: Annotated[
        bool | None,
        typer.Option(
            "--llm/--no-llm",
            help="Ask LUMEN_INSIGHTS_LLM_URL for a summary (default: when it is set).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the insights as JSON (schema_version 1).")
    ] = False,
) -> None:
    """Summarise what the logs are doing: templates, new ones, spikes and errors."""
    err = make_console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(_error_text(message))
        return typer.Exit(2)

    if sum(x is not None for x in (loki, opensearch, elasticsearch)) > 1:
        raise fail("give one of --loki, --opensearch, --elasticsearch")
    try:
        window, base = time_ranges(since, until, baseline, time.time())
    except ValueError as exc:
        raise fail(str(exc)) from None
    source: Source
    if loki:
        source = LokiSource(loki, loki_query)
    elif opensearch or elasticsearch:
        source = OpenSearchSource(
            str(opensearch or elasticsearch),
            index,
            kind="opensearch" if opensearch else "elasticsearch",
            auth=(search_user, os.environ.get("OPENSEARCH_PASSWORD", "")) if search_user else None,
            api_key=os.environ.get("ELASTICSEARCH_API_KEY") or None,
            verify=str(search_ca_file) if search_ca_file else None,
        )
    else:
        directory = log_dir or Path("logs")
        if not directory.is_dir():
            raise fail(f"no log directory {directory} (use --log-dir or LUMEN_LOG_DIR)")
        source = LogDirSource(directory)
    builder = InsightsBuilder(
        window, base, buckets=buckets, max_templates=max_templates, sim_threshold=sim_threshold
    )
    try:
        builder.add_all(_filtered(source.entries(builder.since, builder.until), set(service or ())))
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    insights = builder.build(
        source=source.description,
        skipped=source.skipped,
        top=top,
        min_count=min_count,
        spike_factor=spike_factor,
    )
    _maybe_summarise(insights, llm, err)
    if as_json:
        print(json.dumps(insights.to_json(), indent=2, ensure_ascii=True))
    else:
        render(insights, make_console())
    if not insights.window_records:
        err.print(_error_text(f"no records in the window in {source.description}", "warning"))
        raise typer.Exit(1)


def _error_text(message: str, kind: str = "error") -> Any:
    from rich.text import Text

    text = Text()
    text.append(f"{kind}: ", style="red bold" if kind == "error" else "yellow bold")
    text.append(escape_text(message))
    return text


def _maybe_summarise(insights: Insights, wanted: bool | None, err: Any) -> None:
    from lumen_otel.insights.llm import LLMConfig, LLMError, summarise

    if wanted is False:
        return
    try:
        config = LLMConfig.from_env(os.environ)
    except LLMError as exc:
        err.print(_error_text(f"no LLM summary: {exc}", "warning"))
        return
    if config is None:
        if wanted:
            err.print(_error_text("no LLM summary: LUMEN_INSIGHTS_LLM_URL is not set", "warning"))
        return
    if not insights.templates:
        return
    try:
        insights.summary = {"model": config.model, "text": summarise(insights, config)}
    except LLMError as exc:
        err.print(_error_text(f"no LLM summary: {exc}", "warning"))


def register(app: typer.Typer) -> None:
    """Add ``insights`` to the ``lumen-otel`` command line."""
    app.command("insights")(insights_command)
