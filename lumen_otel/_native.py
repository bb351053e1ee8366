"""Which path the hot functions take: the native accelerator, or the Python reference.

``lumen_otel_native`` (``native/`` in the repository, ``pip install ./native``) is a Rust
module with byte-identical twins of a few hot functions (the log writer's record dict, the
OTLP attribute encoder). It is loaded once, when lumen-otel is imported, if it is installed,
``LUMEN_NATIVE`` is not ``0`` and its version is lumen-otel's own: a module built for another
version could disagree with this Python code, so it is then left unused (with a warning). The
modules that use it pick their function at import time, so the choice costs nothing per call.

``LUMEN_NATIVE=1`` asks for the accelerator: start-up (the settings, :func:`checked_mode`)
fails naming the variable when it could not be loaded.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import Literal

from lumen_otel._version import __version__
from lumen_otel.exceptions import ConfigError

__all__ = ["NativeMode", "accelerator", "checked_mode", "parse_mode", "status"]

NativeMode = Literal["auto", "0", "1"]

_MODES: dict[str, NativeMode] = {
    "auto": "auto",
    "1": "1",
    "true": "1",
    "yes": "1",
    "on": "1",
    "0": "0",
    "false": "0",
    "no": "0",
    "off": "0",
}
_ACCEPTED = "auto, 0/false (the Python path) or 1/true (require the native accelerator)"
_INSTALL = "pip install ./native"


def parse_mode(name: str, raw: str) -> NativeMode:
    """``auto``, ``0`` or ``1`` from a ``LUMEN_NATIVE`` value (``true``/``false`` and the like too)."""
    mode = _MODES.get(raw.strip().lower())
    if mode is None:
        raise ConfigError(name, raw, _ACCEPTED)
    return mode


def _requested() -> NativeMode:
    """The mode the environment asks for; a value the settings will reject counts as ``auto``."""
    from lumen_otel._config.settings import PARAMETERS

    names = next(param.env for param in PARAMETERS if param.field == "native")
    for name in names:
        raw = os.environ.get(name)
        if raw is not None and raw.strip():
            return _MODES.get(raw.strip().lower(), "auto")
    return "auto"


def _load() -> tuple[ModuleType | None, str]:
    if _requested() == "0":
        return None, "off (LUMEN_NATIVE=0)"
    try:
        module = importlib.import_module("lumen_otel_native")
    except ImportError:
        return None, f"not installed ({_INSTALL})"
    version = getattr(module, "__version__", None)
    if version != __version__:
        warnings.warn(
            f"lumen_otel_native {version} is not built for lumen-otel {__version__}: using the Python "
            f"path (reinstall it: {_INSTALL})",
            RuntimeWarning,
            stacklevel=2,
        )
        return None, f"off (lumen_otel_native {version} does not match lumen-otel {__version__})"
    return module, f"active (lumen_otel_native {version})"


#: the loaded ``lumen_otel_native`` module, or ``None``: the Python path
accelerator: ModuleType | None
#: what ``lumen-otel doctor`` shows: ``active (lumen_otel_native X.Y.Z)``, ``off (...)`` or
#: ``not installed (pip install ./native)``
status: str
accelerator, status = _load()


def checked_mode(name: str, raw: str) -> NativeMode:
    """The settings' parser for ``LUMEN_NATIVE``: :func:`parse_mode`, and ``1`` only when the
    accelerator is loaded, so a service that requires it fails at start-up, not silently slower."""
    mode = parse_mode(name, raw)
    if mode == "1" and accelerator is None:
        raise ConfigError(name, raw, f"auto or 0: the native accelerator is {status}")
    return mode
