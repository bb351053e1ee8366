"""lumen-otel: OpenTelemetry-native logging, tracing and PHI redaction for Python services.

One line of set-up (or none, under ``opentelemetry-instrument``)::

    import lumen_otel
    lumen_otel.bootstrap(service_name="lumen_media")
"""

from __future__ import annotations

from lumen_otel._bootstrap import TelemetryHandle, bootstrap, configure_logging
from lumen_otel._correlation import correlation_scope, get_correlation_id
from lumen_otel._redaction import Redactor, redact
from lumen_otel._version import __version__
from lumen_otel.exceptions import ConfigError

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
