"""The public surface is small and stable: this test fails when it changes by accident."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import types
from importlib.metadata import entry_points

import pytest

import lumen_otel


def test_exported_members():
    assert lumen_otel.__all__ == [
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
    for name in lumen_otel.__all__:
        assert hasattr(lumen_otel, name), name


def test_config_error_is_a_value_error():
    assert issubclass(lumen_otel.ConfigError, ValueError)


def test_entry_points_the_launcher_finds():
    found = {
        (group, ep.name): ep.value
        for group in ("opentelemetry_distro", "opentelemetry_configurator", "opentelemetry_propagator")
        for ep in entry_points(group=group)
        if ep.value.startswith("lumen_otel")
    }
    assert found == {
        ("opentelemetry_distro", "lumen"): "lumen_otel._setup.distro:LumenDistro",
        ("opentelemetry_configurator", "lumen"): "lumen_otel._setup.distro:LumenConfigurator",
        (
            "opentelemetry_propagator",
            "lumen_correlation",
        ): "lumen_otel._correlation.propagator:CorrelationIdPropagator",
        (
            "opentelemetry_propagator",
            "lumen_tracecontext",
        ): "lumen_otel._correlation.propagator:RedactingTraceContextPropagator",
        (
            "opentelemetry_propagator",
            "lumen_baggage",
        ): "lumen_otel._correlation.propagator:RedactingBaggagePropagator",
    }


def test_framework_modules_are_public_by_path():
    import lumen_otel.django
    import lumen_otel.fastapi

    assert lumen_otel.fastapi.CorrelationIdMiddleware
    assert lumen_otel.django.CorrelationIdMiddleware


PUBLIC_MODULES = {
    "lumen_otel.exceptions": ["AlreadySetUpError", "ConfigError"],
    "lumen_otel.fastapi": ["CorrelationIdMiddleware", "httpx_event_hooks"],
    "lumen_otel.insights": [
        "Cluster",
        "Drain",
        "Insights",
        "InsightsBuilder",
        "TemplateInsight",
        "TimeRange",
        "mask",
        "tokenize",
    ],
    "lumen_otel.django": ["CorrelationIdMiddleware", "httpx_event_hooks"],
    "lumen_otel.logging": ["ColorFormatter", "JsonFormatter"],
    "lumen_otel.testing": ["LogRecordView", "OTLPReceiver", "SpanView", "capture_logs", "reset"],
    "lumen_otel.tracing": [
        "CorrelationIdPropagator",
        "CorrelationIdSpanProcessor",
        "RedactingSpanExporter",
        "UuidTraceIdGenerator",
    ],
}


class TestEveryPublicModule:
    """Each module users import by path says what it exports, and the list is locked here."""

    @pytest.mark.parametrize("name", sorted(PUBLIC_MODULES))
    def test_exported_members(self, name: str) -> None:
        module = importlib.import_module(name)
        assert PUBLIC_MODULES[name] == module.__all__
        for member in module.__all__:
            assert getattr(module, member) is not None, member

    @pytest.mark.parametrize("name", ["lumen_otel", *sorted(PUBLIC_MODULES)])
    def test_what_a_module_defines_in_the_open_is_exported(self, name: str) -> None:
        """A public-looking class or function defined in a public module is in its ``__all__``."""
        module = importlib.import_module(name)
        defined = {
            member
            for member, value in vars(module).items()
            if not member.startswith("_")
            # type(), not isinstance(): a lazy object (Django's settings) must not be evaluated
            and (issubclass(type(value), type) or type(value) is types.FunctionType)
            and value.__module__ == name
        }
        assert set() == defined - set(module.__all__)

    def test_classes_users_are_told_to_import_live_in_public_modules(self) -> None:
        from lumen_otel.logging import JsonFormatter
        from lumen_otel.tracing import RedactingSpanExporter, UuidTraceIdGenerator

        formatted = JsonFormatter().format(
            logging.LogRecord("app", logging.INFO, __file__, 1, "hi", (), None)
        )
        assert "hi" == json.loads(formatted)["message"]
        assert UuidTraceIdGenerator().generate_trace_id() > 0
        assert callable(RedactingSpanExporter.export)


class TestLightImport:
    """``import lumen_otel; lumen_otel.redact(...)`` is cheap: a script that only redacts loads
    none of OpenTelemetry."""

    def test_redact_loads_no_opentelemetry_module(self) -> None:
        script = (
            "import sys, lumen_otel\n"
            "print(lumen_otel.redact('SSN 123-45-6789'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        ).stdout.splitlines()
        assert ["SSN [REDACTED:SSN]", "[]"] == out

    def test_the_lazy_names_are_the_real_ones(self) -> None:
        from lumen_otel._redaction import redact
        from lumen_otel._setup.bootstrap import bootstrap

        assert lumen_otel.redact is redact
        assert lumen_otel.bootstrap is bootstrap
        with pytest.raises(AttributeError, match="no_such_name"):
            lumen_otel.no_such_name  # noqa: B018

    def test_redact_keeps_the_type_of_its_argument(self) -> None:
        assert isinstance(lumen_otel.redact("MRN: 12345678"), str)
        assert {"ssn": "[REDACTED:SSN]", "n": 1} == lumen_otel.redact({"ssn": "123-45-6789", "n": 1})
        assert 7 == lumen_otel.redact(7)
