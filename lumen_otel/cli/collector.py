"""``lumen-otel collector validate|run``: the ``lumen-otelcol`` binary with the ``collector-config/`` files.

Configs are given as names (``local``, ``gateway``, ``gateway-keyed``, ``gateway-traces``,
``gateway-search``) or paths; several are merged in order, as the collector's own repeated
``--config`` does (the overlays need ``gateway`` first). A name is looked up in
``./collector-config/``, then in the source checkout this package runs from, then in the copy
packaged with the wheel (when the wheel was built with them).

The binary is not part of the Python package (it is a 48 MB Go program built by
``make collector`` in a source checkout): it is taken from ``./bin/lumen-otelcol``, the
checkout's ``bin/lumen-otelcol``, or ``lumen-otelcol`` on ``PATH``. What is missing is said on
stderr with exit status 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "BINARY_NAME",
    "CONFIG_NAMES",
    "CollectorNotFound",
    "binary_candidates",
    "checkout_root",
    "config_paths",
    "find_binary",
    "missing_binary_message",
    "register",
]

BINARY_NAME = "lumen-otelcol"
#: the configs in collector-config/ that can be named instead of given as paths
CONFIG_NAMES = ("local", "gateway", "gateway-keyed", "gateway-traces", "gateway-search")

#: resolved by Typer from this module's globals (annotations are strings here)
Configs = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="CONFIG",
        help=f"Config names ({', '.join(CONFIG_NAMES)}) or paths, merged in order (default: local).",
    ),
]


class CollectorNotFound(FileNotFoundError):
    """The binary or a config is missing; the message says what to do."""


def checkout_root() -> Path | None:
    """The source checkout this package is imported from (an editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "collector-config").is_dir():
        return root
    return None


def packaged_config_dir() -> Path:
    """Where a wheel carries the named configs (``force-include`` in pyproject.toml)."""
    return Path(__file__).resolve().parent / "collector-config"


def _config_dirs() -> list[Path]:
    dirs = [Path.cwd() / "collector-config"]
    root = checkout_root()
    if root is not None:
        dirs.append(root / "collector-config")
    dirs.append(packaged_config_dir())
    return dirs


def binary_candidates() -> list[Path]:
    candidates = [Path.cwd() / "bin" / BINARY_NAME]
    root = checkout_root()
    if root is not None and root / "bin" / BINARY_NAME not in candidates:
        candidates.append(root / "bin" / BINARY_NAME)
    return candidates


def find_binary() -> Path | None:
    """``bin/lumen-otelcol`` under the cwd or the checkout, else ``lumen-otelcol`` on PATH."""
    for binary in binary_candidates():
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    on_path = shutil.which(BINARY_NAME)
    return Path(on_path) if on_path else None


def missing_binary_message() -> str:
    looked = ", ".join(str(p) for p in binary_candidates())
    return (
        f"the {BINARY_NAME} collector binary was not found (looked for {looked} and for {BINARY_NAME} "
        "on PATH). It is not part of the Python package: build it in a lumen-otel source checkout with "
        "`make collector` (needs Go >= 1.24; writes bin/lumen-otelcol), then run from that checkout or "
        "put the binary on PATH"
    )


def config_paths(names: list[str]) -> list[Path]:
    """Names or paths -> existing files; raises CollectorNotFound naming what is missing."""
    paths = []
    dirs = _config_dirs()
    for name in names or ["local"]:
        candidates = [Path(name)] + [d / f"{name}.yaml" for d in dirs]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            if name in CONFIG_NAMES:
                looked = ", ".join(str(d) for d in dirs if d.is_dir() or d == dirs[0])
                raise CollectorNotFound(
                    f"no collector config {name!r}: the named configs ({', '.join(CONFIG_NAMES)}) are "
                    "collector-config/*.yaml in a lumen-otel source checkout, and this installed package "
                    f"does not carry them (looked in {looked}); run from a checkout or give the file's path"
                )
            raise CollectorNotFound(
                f"no collector config {name!r}: not a file, and not one of the names "
                f"{', '.join(CONFIG_NAMES)}"
            )
        paths.append(found.resolve())
    return paths


def register(app: typer.Typer) -> None:
    collector = typer.Typer(
        help=f"Validate or run the {BINARY_NAME} collector (built with `make collector`) with its configs.",
        no_args_is_help=True,
    )
    app.add_typer(collector, name="collector")

    def prepare(configs: list[str] | None) -> tuple[Path, list[str]]:
        binary = find_binary()
        if binary is None:
            print(f"lumen-otel: {missing_binary_message()}", file=sys.stderr)
            raise typer.Exit(2)
        try:
            paths = config_paths(configs or [])
        except CollectorNotFound as exc:
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
