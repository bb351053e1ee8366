"""lumen-otel: OpenTelemetry-native logging, tracing and PHI redaction for Python services.

One line of set-up (or none, under ``opentelemetry-instrument``)::

    import lumen_otel
    lumen_otel.bootstrap(service_name="lumen_media")

The names below are imported when first used: ``import lumen_otel; lumen_otel.redact(...)``
loads the redactor alone, not the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lumen_otel._version import __version__
from lumen_otel.exceptions import ConfigError

if TYPE_CHECKING:
    from lumen_otel._correlation.context import correlation_scope, get_correlation_id
    from lumen_otel._redaction import Redactor, redact
    from lumen_otel._setup.bootstrap import TelemetryHandle, bootstrap, configure_logging

__all__ = [
    "ConfigError",
    "Redactor",
    "TelemetryHandle",
    "__version__",
    "bootstrap",
    "configure_logging",
    "correlation_scope",
    "get_correlation_id",
    "redact",
]

_LAZY = {
    "Redactor": "lumen_otel._redaction",
    "redact": "lumen_otel._redaction",
    "TelemetryHandle": "lumen_otel._setup.bootstrap",
    "bootstrap": "lumen_otel._setup.bootstrap",
    "configure_logging": "lumen_otel._setup.bootstrap",
    "correlation_scope": "lumen_otel._correlation.context",
    "get_correlation_id": "lumen_otel._correlation.context",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lumen_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
