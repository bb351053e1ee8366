"""Set-up: resource, providers, exporters, the logging pipeline, propagators, instrumentations.

One code path, two doors: ``lumen_otel.bootstrap()`` / ``configure_logging()`` from code,
and the ``lumen`` configurator under ``opentelemetry-instrument``. Every call after the
first returns the same handle: nothing is ever installed twice.

A later call that passes an argument with another value than the one set up raises
:class:`~lumen_otel.exceptions.ConfigError` naming it, instead of being ignored. structlog and
logfire apply a second ``configure()`` because they own what they configure; the OpenTelemetry
API lets the global tracer, meter and logger providers be set once per process, so the resource
and exporters built from the first call's settings cannot be replaced, and applying only the
parts that can would leave a service that reports one name in its logs and another in its
traces. ``handle.shutdown()`` (or ``lumen_otel.testing.reset()``) releases the set-up first.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.util.types import Attributes, AttributeValue

from lumen_otel._compat import LoggerProvider, LogRecordLimits, is_proxy_provider, set_logger_provider
from lumen_otel._config.settings import Settings, load_settings
from lumen_otel._correlation.context import CorrelationIdSpanProcessor, record_response
from lumen_otel._correlation.propagator import install_propagators, install_response_propagator
from lumen_otel._correlation.sampling import build_sampler
from lumen_otel._correlation.trace_ids import UuidTraceIdGenerator
from lumen_otel._guard import internal_logger
from lumen_otel._logging import pipeline as pipeline_module
from lumen_otel._logging.bridge import OtlpBridge
from lumen_otel._logging.enrich import Enricher
from lumen_otel._logging.files import SharedRotatingFile
from lumen_otel._otlp.exporters import build_signal_exporter
from lumen_otel._otlp.processor import ResilientLogProcessor
from lumen_otel._redaction import Redactor, set_default_redactor
from lumen_otel._redaction.spans import RedactingSpanExporter, scrubber_for
from lumen_otel._server_patches import after_fork_in_child
from lumen_otel._setup.shutdown import flush_on_sigterm, flush_providers, shutdown_providers
from lumen_otel._state import STATE
from lumen_otel._version import __version__
from lumen_otel.exceptions import AlreadySetUpError

__all__ = ["TelemetryHandle", "bootstrap", "configure_logging"]


@dataclass
class TelemetryHandle:
    """What :func:`bootstrap` set up; flush or shut it down (``atexit`` does both)."""

    settings: Settings
    pipeline: pipeline_module.Pipeline
    logger_provider: LoggerProvider | None = None
    log_record_limits: LogRecordLimits | None = field(default=None, repr=False)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    resource: Resource | None = None
    full: bool = False
    _shut_down: bool = field(default=False, repr=False)

    def __repr__(self) -> str:
        """The dataclass repr, built from each field's own repr: ``Settings``'s hides the
        redaction key and URL userinfo, and the handle holds no other secret."""
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"TelemetryHandle({shown})"

    def force_flush(self, timeout: float | None = None) -> bool:
        """Write and export everything queued so far; False if ``timeout`` ran out."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout  # one deadline for the pipeline and every provider
        ok = self.pipeline.flush(timeout)
        providers = [p for p in (self.logger_provider, self.tracer_provider, self.meter_provider) if p]
        return flush_providers(providers, deadline) and ok

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush and stop; a hung collector cannot hold this beyond ``timeout`` seconds."""
        with STATE.lock:
            if self._shut_down:
                return
            self._shut_down = True
            if STATE.handle is self:
                STATE.handle = None
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.pipeline.flush(timeout)
        # The providers shut down side by side against the same deadline, starting no thread
        # (this runs from atexit, where Python 3.12+ refuses new threads)
        providers = [p for p in (self.logger_provider, self.tracer_provider, self.meter_provider) if p]
        shutdown_providers(providers, deadline)
        self.pipeline.close(timeout=max(0.0, min(1.0, deadline - time.monotonic())))


# ---------------------------------------------------------------- building blocks


def build_resource(settings: Settings, redactor: Redactor | None = None) -> Resource:
    """The service's resource. ``service.instance.id`` comes from the SDK's own detector, which the
    providers run again in each forked worker (gunicorn, uvicorn ``--workers``), so every worker
    is an instance of its own.

    With ``redactor``, the attributes ``OTEL_RESOURCE_ATTRIBUTES`` and the detectors added are
    redacted here, once, so that no exporter (HTTP or gRPC, any signal) sends them raw."""
    attributes: dict[str, AttributeValue] = {
        "service.name": settings.service_name,
        "service.version": settings.service_version,
        "host.name": socket.gethostname(),
        "deployment.environment.name": settings.env,
        "telemetry.distro.name": "lumen-otel",
        "telemetry.distro.version": __version__,
    }
    resource = Resource.create(attributes)
    return resource if redactor is None else scrubber_for(redactor).resource(resource)


_OTEL_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class _LogCounters:
    """``lumen.log.records`` (by severity), ``lumen.log.dropped`` (by reason) and
    ``lumen.log.truncated`` (fields cut before redaction, by part)."""

    def __init__(self) -> None:
        meter = metrics.get_meter("lumen_otel", __version__)
        self.records = meter.create_counter(
            "lumen.log.records", unit="{record}", description="Log records written, by severity"
        )
        self.dropped = meter.create_counter(
            "lumen.log.dropped", unit="{record}", description="Log records lost, by reason"
        )
        self.truncated = meter.create_counter(
            "lumen.log.truncated",
            unit="{field}",
            description="Log record fields cut before redaction (LUMEN_LOG_MAX_FIELD_BYTES; part record: "
            "LUMEN_LOG_MAX_RECORD_BYTES), by part",
        )

    def count_records(self, levels: Counter[str]) -> None:
        for level, count in levels.items():
            # the OpenTelemetry severity text, as the collector's own count uses: WARN, FATAL
            self.records.add(count, {"severity": _OTEL_SEVERITY_TEXT.get(level, level)})

    def count_dropped(self, count: int, reason: str) -> None:
        self.dropped.add(count, {"reason": reason})

    def count_truncated(self, count: int, part: str) -> None:
        self.truncated.add(count, {"part": part})


def _build_pipeline(
    settings: Settings,
    redactor: Redactor,
    logger_provider: LoggerProvider | None,
    limits: LogRecordLimits | None,
    counters: _LogCounters,
) -> pipeline_module.Pipeline:
    log_file = None
    if settings.log_dir is not None:
        log_file = SharedRotatingFile(
            settings.log_dir / f"{settings.service_name}.log",
            settings.log_file_max_bytes,
            settings.log_file_backups,
        )
    return pipeline_module.Pipeline(
        enricher=Enricher(
            settings.service_name,
            redactor,
            max_field_bytes=settings.log_max_field_bytes,
            max_record_bytes=settings.log_max_record_bytes,
            count_truncated=counters.count_truncated,
        ),
        console=sys.stderr
        if settings.console and settings.log_format == "text"
        else (sys.stdout if settings.console else None),
        console_json=settings.log_format == "json",
        log_file=log_file,
        otlp=OtlpBridge(logger_provider, limits) if logger_provider is not None else None,
        queue_size=settings.log_queue_size,
        queue_wait=settings.log_queue_wait,
        count_records=counters.count_records,
        count_dropped=counters.count_dropped,
    )


def _build_redactor(settings: Settings) -> Redactor:
    return Redactor(
        key=settings.redaction_key,
        extra_keys=settings.redaction_extra_keys,
        extra_patterns=settings.redaction_extra_patterns,
        defaults=settings.redaction,
        unlabelled_names=settings.redaction_unlabelled_names,
    )


# ---------------------------------------------------------------- the two doors


def configure_logging(service_name: str | None = None, **overrides: Any) -> TelemetryHandle:
    """Install lumen-otel's logging on the root logger (the original Lumen Logger call).

    Console (coloured text in dev, JSON in prod), the rotating JSON-lines file when
    ``LUMEN_LOG_DIR`` is set, and OTLP logs when an endpoint is set. Idempotent: a later
    call with the same arguments (or none) returns the same handle.

    Raises:
        ConfigError: a setting is invalid (the message names the variable and the value).
        AlreadySetUpError: (a ``ConfigError``) lumen-otel is already set up with another value
            for an argument given here; a logging-only set-up can be made again after
            ``handle.shutdown()``.
    """
    return _setup(service_name, overrides, full=False, launcher=False)


def bootstrap(service_name: str | None = None, **overrides: Any) -> TelemetryHandle:
    """Set up logs, traces, metrics, propagators and the installed instrumentations.

    Call it first thing at start-up (or let ``opentelemetry-instrument`` do it). Later
    calls with the same arguments (or none) return the same handle; a later call that asks for
    another value (``correlation_header="X-Request-ID"`` when ``X-Correlation-ID`` is set up)
    raises instead of being ignored. Example::

        handle = lumen_otel.bootstrap(service_name="lumen_media")
        ...
        handle.shutdown()   # also runs at exit

    Raises:
        ConfigError: a setting is invalid (the message names the variable and the value).
        AlreadySetUpError: (a ``ConfigError``) lumen-otel is already set up with another value
            for an argument given here; the message names each one, its value in force and where
            that came from. Traces and metrics are set up once per process.
    """
    return _setup(service_name, overrides, full=True, launcher=False)


def _already_set_up(differing: list[tuple[str, Any, Any, str]], handle: TelemetryHandle) -> AlreadySetUpError:
    """The error for a second set-up call that asked for other values than the ones in force."""
    name, _, active, _ = differing[0]
    current = ", ".join(f"{field}={value!r} (from {source})" for field, _, value, source in differing)
    asked = ", ".join(f"{field}={value!r}" for field, value, _, _ in differing)
    if handle.full:
        way_out = (
            "Pass the same arguments (or none) to use the set-up in force: OpenTelemetry's tracer and "
            "meter providers are set once per process"
        )
    else:
        way_out = "Pass the same arguments (or none), or call shutdown() on the handle first"
    hint = (
        _environment_hint([field for field, _, _, source in differing if source != "argument"])
        if STATE.set_up_by_launcher
        else ""
    )
    return AlreadySetUpError(
        name,
        active,
        f"lumen-otel is already set up with {current}; this call asked for {asked}. {way_out}{hint}",
    )


def _environment_hint(fields_from_environment: list[str]) -> str:
    """Under ``opentelemetry-instrument`` the first set-up reads only the environment: name the
    variables that would give the values the code asks for."""
    from lumen_otel._config.settings import PARAMETERS

    names = [" or ".join(p.env) for p in PARAMETERS if p.field in fields_from_environment and p.env]
    if not names:
        return ""
    return (
        " (under opentelemetry-instrument the set-up happens before the application's code runs: "
        f"set {', '.join(names)} in the environment instead)"
    )


def _differing_arguments(
    settings: Settings, service_name: str | None, overrides: dict[str, Any]
) -> list[tuple[str, Any, Any, str]]:
    """(argument, asked, in force, its source) for each argument whose value is not the one in force.

    Only arguments given are compared: a bare ``bootstrap()`` means "whatever is set up". Each is
    checked and coerced as :func:`load_settings` would, alongside the first call's arguments (a
    bad one raises its own ConfigError).
    """
    given = {k: v for k, v in {"service_name": service_name, **overrides}.items() if v is not None}
    if not given:
        return []
    earlier = {name: getattr(settings, name) for name, src in settings.sources.items() if src == "argument"}
    asked = load_settings(**{**earlier, **given})
    return [
        (name, getattr(asked, name), getattr(settings, name), settings.sources.get(name, "default"))
        for name in given
        if getattr(asked, name) != getattr(settings, name)
    ]


def _setup(
    service_name: str | None, overrides: dict[str, Any], *, full: bool, launcher: bool
) -> TelemetryHandle:
    with STATE.lock:
        handle = STATE.handle
        if handle is not None:
            differing = _differing_arguments(handle.settings, service_name, overrides)
            if differing:
                raise _already_set_up(differing, handle)
        if handle is not None and (handle.full or not full):
            return handle
        settings = load_settings(service_name=service_name, **overrides)
        sampler = build_sampler(os.environ) if full else None  # a bad sampler variable stops start-up too
        for warning in settings.warnings:
            internal_logger().warning("%s", warning)
        if handle is not None:  # configure_logging() earlier, bootstrap() now: upgrade in place
            STATE.handle = _upgrade(handle, settings, sampler, launcher)
            return STATE.handle
        handle = STATE.handle = _install(settings, sampler, launcher=launcher)
        STATE.set_up_by_launcher = launcher
        atexit.register(handle.shutdown)
        flush_on_sigterm()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_fork_in_child)
        return handle


def _install(settings: Settings, sampler: Sampler | None, *, launcher: bool) -> TelemetryHandle:
    redactor = _build_redactor(settings)
    resource = build_resource(settings, redactor)
    set_default_redactor(redactor)
    counters = _LogCounters()
    limits = LogRecordLimits()
    logger_provider = _logger_provider(settings, resource, limits, counters)
    pipeline = _build_pipeline(settings, redactor, logger_provider, limits, counters)
    pipeline_module.install(pipeline, settings.log_level)
    handle = TelemetryHandle(
        settings=settings,
        pipeline=pipeline,
        logger_provider=logger_provider,
        log_record_limits=limits,
        resource=resource,
    )
    if sampler is not None:
        _install_tracing_and_metrics(handle, redactor, sampler, launcher)
    return handle


def _upgrade(
    handle: TelemetryHandle, settings: Settings, sampler: Sampler | None, launcher: bool
) -> TelemetryHandle:
    assert sampler is not None
    _install_tracing_and_metrics(handle, _build_redactor(settings), sampler, launcher)
    return handle


def _logger_provider(
    settings: Settings, resource: Resource, limits: LogRecordLimits, counters: _LogCounters
) -> LoggerProvider | None:
    # OTLP (an endpoint is set), the SDK's console exporter, or nothing (no endpoint,
    # OTEL_LOGS_EXPORTER=none, OTEL_SDK_DISABLED=true): then no logger provider at all
    exporter = build_signal_exporter(settings, "logs")
    if exporter is None:
        return None
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False, log_record_limits=limits)
    provider.add_log_record_processor(
        ResilientLogProcessor(
            exporter,
            max_queue_size=settings.otlp_queue_size,
            max_batch_size=settings.blrp_max_export_batch_size,
            schedule_delay=settings.blrp_schedule_delay_ms / 1000,
            on_drop=counters.count_dropped,
            shutdown_timeout=settings.shutdown_timeout,
        )
    )
    set_logger_provider(provider)
    return provider


def _install_tracing_and_metrics(
    handle: TelemetryHandle, redactor: Redactor, sampler: Sampler, launcher: bool
) -> None:
    settings = handle.settings
    if not settings.sdk_disabled:  # OTEL_SDK_DISABLED=true: no SDK provider, the API stays no-op
        _install_providers(handle, redactor, sampler)
    _install_propagators(settings)
    if not launcher:
        _instrument_installed_libraries(settings)
    handle.full = True


def _install_providers(handle: TelemetryHandle, redactor: Redactor, sampler: Sampler) -> None:
    """The tracer and meter providers, each signal with the exporter ``OTEL_<SIGNAL>_EXPORTER``
    names and the ``OTEL_BSP_*``/``OTEL_METRIC_EXPORT_*`` values the settings checked."""
    settings = handle.settings
    resource = handle.resource or build_resource(settings, redactor)

    tracer_provider = TracerProvider(
        resource=resource,
        shutdown_on_exit=False,
        id_generator=UuidTraceIdGenerator(),
        sampler=sampler,
    )
    tracer_provider.add_span_processor(CorrelationIdSpanProcessor())
    span_exporter = build_signal_exporter(settings, "traces")
    if span_exporter is not None:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                _redacting(span_exporter, redactor),  # console spans are redacted as OTLP ones are
                max_queue_size=settings.bsp_max_queue_size,
                schedule_delay_millis=settings.bsp_schedule_delay_ms,
                max_export_batch_size=settings.bsp_max_export_batch_size,
                export_timeout_millis=settings.bsp_export_timeout_ms,
            )
        )
    _set_global(trace.set_tracer_provider, trace.get_tracer_provider, tracer_provider, "TracerProvider")
    handle.tracer_provider = tracer_provider

    readers = []
    metric_exporter = build_signal_exporter(settings, "metrics")
    if metric_exporter is not None:
        readers.append(
            PeriodicExportingMetricReader(
                metric_exporter,
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.metric_export_timeout_ms,
            )
        )
    meter_provider = _LumenMeterProvider(
        resource=resource,
        metric_readers=readers,
        shutdown_on_exit=False,
        http_server_metrics=settings.http_server_metrics,
    )
    _set_global(metrics.set_meter_provider, metrics.get_meter_provider, meter_provider, "MeterProvider")
    handle.meter_provider = meter_provider


#: meters of the HTTP server instrumentations; they create only ``http.server.*`` instruments
_HTTP_SERVER_SCOPES = frozenset(
    f"opentelemetry.instrumentation.{name}"
    for name in ("asgi", "wsgi", "fastapi", "starlette", "django", "flask", "falcon", "pyramid")
) | {"opentelemetry.instrumentation.aiohttp_server"}


class _LumenMeterProvider(MeterProvider):
    """The SDK's meter provider; with ``LUMEN_HTTP_SERVER_METRICS`` off it hands the HTTP server
    instrumentations a no-op meter.

    The collector's ``span_metrics`` connector derives request rate, errors and duration by
    route, method and status from the server spans, so recording the same histograms in the
    process is duplicated work: the SDK hashes each measurement's attributes and takes an
    aggregation lock four to six times per request, on the request's thread. Every other meter
    (lumen's own counters, the application's) is the SDK's as usual.
    """

    def __init__(self, *args: Any, http_server_metrics: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lumen_http_server_metrics = http_server_metrics

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> metrics.Meter:
        if not self._lumen_http_server_metrics and name in _HTTP_SERVER_SCOPES:
            return metrics.NoOpMeter(name, version=version, schema_url=schema_url)
        return super().get_meter(name, version, schema_url, attributes)


def _set_global(setter: Callable[[Any], None], getter: Callable[[], Any], provider: Any, kind: str) -> None:
    current = getter()
    if not is_proxy_provider(current):
        internal_logger().warning(
            "a global %s was already set by someone else; lumen-otel's is not installed", kind
        )
        return
    setter(provider)


def _redacting(exporter: Any, redactor: Redactor) -> Any:
    return RedactingSpanExporter(exporter, redactor)


def _install_propagators(settings: Settings) -> None:
    install_propagators(settings.correlation_header)
    install_response_propagator(settings.correlation_header)


#: instrumentations bootstrap() enables from code (the launcher loads all installed ones)
_INSTRUMENTORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("opentelemetry.instrumentation.threading", "ThreadingInstrumentor", {}),
    ("opentelemetry.instrumentation.fastapi", "FastAPIInstrumentor", {}),
    ("opentelemetry.instrumentation.django", "DjangoInstrumentor", {"response_hook": record_response}),
    ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor", {}),
)


def _instrument_installed_libraries(settings: Settings) -> None:
    import importlib

    for module_name, class_name, defaults in _INSTRUMENTORS:
        kwargs = dict(defaults)
        if class_name == "FastAPIInstrumentor" and not settings.fastapi_internal_spans:
            kwargs["exclude_spans"] = ["receive", "send"]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # the framework's extra is not installed
        instrumentor = getattr(module, class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        if class_name == "DjangoInstrumentor" and _django_settings_being_imported():
            _instrument_django_later(instrumentor, kwargs)  # bootstrap() called from settings.py
            continue
        try:
            instrumentor.instrument(**kwargs)
        except Exception:  # noqa: BLE001 - one broken instrumentation must not stop start-up
            internal_logger().warning("could not enable %s", class_name, exc_info=True)


def _django_settings_being_imported() -> bool:
    from lumen_otel._setup.django_settings import settings_being_imported

    return settings_being_imported()


def _instrument_django_later(instrumentor: Any, kwargs: dict[str, Any]) -> None:
    """Django's middleware list is final only once ``settings.py`` has run: instrument in ``setup()``."""
    from lumen_otel._setup.django_settings import instrument_when_configured

    instrument_when_configured(lambda: instrumentor.instrument(**kwargs))


def current_handle() -> TelemetryHandle | None:
    return STATE.handle
