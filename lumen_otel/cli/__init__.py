"""The ``lumen-otel`` command line: doctor, demo, trace, redact and collector helpers.

Each sub-command lives in its own module exposing ``register(app)``; this module only
assembles them, so the CLI's heavier dependencies (Typer, Rich) stay in the ``cli`` extra.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["main"]

_COMMAND_MODULES = ("doctor", "demo", "trace", "redact", "collector", "insights")


def build_app() -> Any:  # typer is optional: the sub-modules type it
    try:
        import typer
    except ImportError:
        raise ImportError("the lumen-otel CLI needs Typer and Rich: pip install 'lumen-otel[cli]'") from None

    app = typer.Typer(
        name="lumen-otel",
        help="lumen-otel: OpenTelemetry logging, tracing and PHI redaction for Python services.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in _COMMAND_MODULES:
        importlib.import_module(f"lumen_otel.cli.{name}").register(app)
    return app


def main() -> None:
    try:
        app = build_app()
    except ImportError as exc:
        print(f"lumen-otel: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app()
