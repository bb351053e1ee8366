"""``lumen-otel collector validate|run``: the built ``bin/lumen-otelcol`` with ``collector-config/`` files.

Configs are given as names (``local``, ``gateway``, ``gateway-keyed``: files in
``collector-config/``) or paths; several are merged in order, as the collector's own
repeated ``--config`` does (the overlays need ``gateway`` first).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["config_paths", "register"]

#: resolved by Typer from this module's globals (annotations are strings here)
Configs = Annotated[
    list[str] | None,
    typer.Argument(metavar="CONFIG", help="Names in collector-config/ or paths (default: local)."),
]


def _checkout_roots() -> list[Path]:
    return [Path.cwd(), Path(__file__).resolve().parents[2]]


def find_binary() -> Path | None:
    for root in _checkout_roots():
        binary = root / "bin" / "lumen-otelcol"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def config_paths(names: list[str]) -> list[Path]:
    """Names or paths -> existing files; raises FileNotFoundError naming what is missing."""
    paths = []
    for name in names or ["local"]:
        candidates = [Path(name)] + [root / "collector-config" / f"{name}.yaml" for root in _checkout_roots()]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"no collector config {name!r} (a path, or a name in collector-config/)")
        paths.append(found)
    return paths


def register(app: typer.Typer) -> None:
    collector = typer.Typer(
        help="Validate or run the lumen-otelcol collector with collector-config/ files.", no_args_is_help=True
    )
    app.add_typer(collector, name="collector")

    def prepare(configs: list[str] | None) -> tuple[Path, list[str]]:
        binary = find_binary()
        if binary is None:
            print(
                "lumen-otel: bin/lumen-otelcol is not built: run `make collector` in a lumen-otel checkout",
                file=sys.stderr,
            )
            raise typer.Exit(2)
        try:
            paths = config_paths(configs or [])
        except FileNotFoundError as exc:
            print(f"lumen-otel: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        return binary, [arg for path in paths for arg in ("--config", str(path))]

    @collector.command("validate")
    def validate(configs: Configs = None) -> None:
        """Check the config(s) with the collector's own validator (exit 0 when valid)."""
        binary, args = prepare(configs)
        done = subprocess.run([str(binary), "validate", *args], check=False)
        if done.returncode == 0:
            print("valid: " + " + ".join(args[1::2]))
        raise typer.Exit(done.returncode)

    @collector.command("run")
    def run(configs: Configs = None) -> None:
        """Run the collector in the foreground (Ctrl-C stops it)."""
        binary, args = prepare(configs)
        os.execv(str(binary), [str(binary), *args])  # noqa: S606 - the collector replaces this process
