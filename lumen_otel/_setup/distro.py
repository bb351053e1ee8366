"""The ``opentelemetry-instrument`` door: defaults first, then the same bootstrap as code.

``LumenDistro`` only sets defaults (``os.environ.setdefault``, as opentelemetry-distro
does) and tunes instrumentations as the loader enables them; ``LumenConfigurator`` calls
the code path ``lumen_otel.bootstrap()`` uses. A bad setting stops the service before it
serves anything, with the message on stderr and exit status 2 — the launcher would
otherwise log the error and start the service half-configured.

The Django instrumentation is enabled during ``django.setup()``, not when the launcher
loads it: only then has the entry point set ``DJANGO_SETTINGS_MODULE`` and put the project on
``sys.path`` (see :mod:`lumen_otel._setup.django_settings`, which also finds the settings module).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from lumen_otel.exceptions import ConfigError

__all__ = ["LumenConfigurator", "LumenDistro"]

#: the FastAPI instrumentation's per-message ``http send``/``receive`` spans halve throughput
_FASTAPI_KWARGS = {"exclude_spans": ["receive", "send"]}


class LumenDistro(BaseDistro):  # type: ignore[misc]  # the launcher's base class is untyped
    def _configure(self, **kwargs: Any) -> None:
        # our pipeline exports logs; the logging instrumentation's own handler would double them
        os.environ.setdefault("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", "false")

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name == "fastapi" and not _fastapi_internal_spans():
            kwargs = {**_FASTAPI_KWARGS, **kwargs}
        if entry_point.name == "logging":
            kwargs = {"enable_log_auto_instrumentation": False, **kwargs}
        if entry_point.name == "django" and os.environ.get("OTEL_PYTHON_DJANGO_INSTRUMENT") != "False":
            self._load_django(entry_point, kwargs)
            return
        super().load_instrumentor(entry_point, **kwargs)

    def _load_django(self, entry_point: Any, kwargs: dict[str, Any]) -> None:
        from lumen_otel._correlation.context import record_response
        from lumen_otel._setup.django_settings import apply_discovery, instrument_when_configured

        try:
            apply_discovery()
        except ConfigError as exc:
            _exit_on_config_error(exc)
        # the hook runs for unsampled requests too: their server lines keep the request's IDs
        kwargs = {"response_hook": record_response, **kwargs}
        instrument_when_configured(lambda: super(LumenDistro, self).load_instrumentor(entry_point, **kwargs))


def _fastapi_internal_spans() -> bool:
    from lumen_otel._setup.bootstrap import current_handle

    handle = current_handle()
    return handle is not None and handle.settings.fastapi_internal_spans


class LumenConfigurator:
    """Entry point ``opentelemetry_configurator: lumen``."""

    def configure(self, **kwargs: Any) -> None:
        try:
            # inside the try: importing the SDK already checks some OTEL_* variables
            from lumen_otel._setup.bootstrap import _setup

            _setup(None, {}, full=True, launcher=True)
        except (ConfigError, ValueError) as exc:
            _exit_on_config_error(exc)


def _exit_on_config_error(exc: ValueError) -> NoReturn:
    # ValueError: the SDK's own checks (e.g. an OTEL_BSP_* batch larger than its queue)
    hint = (
        ""
        if isinstance(exc, ConfigError)
        else " (raised by the OpenTelemetry SDK: check its OTEL_* variables)"
    )
    sys.stderr.write(f"lumen-otel: configuration error: {exc}{hint}\n")
    sys.stderr.flush()
    os._exit(2)  # SystemExit would be swallowed or half-handled inside sitecustomize
