"""lumen-otel's log formatters, for handlers an application configures itself.

lumen-otel's own sinks already use them; import them for a handler of your own (a
``dictConfig`` entry, a handler on a logger that does not propagate)::

    LOGGING = {
        "version": 1,
        "formatters": {"json": {"()": "lumen_otel.logging.JsonFormatter"}},
        "handlers": {"audit": {"class": "logging.FileHandler", "filename": "audit.log",
                               "formatter": "json"}},
        ...
    }

Both read the fields lumen-otel's enrichment put on a record (service, host, correlation
and trace IDs); on a record that was not enriched they show those fields as ``null``.
"""

from __future__ import annotations

from lumen_otel._logging.formatters import ColorFormatter, JsonFormatter

__all__ = ["ColorFormatter", "JsonFormatter"]
