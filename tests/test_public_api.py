"""The public surface is small and stable: this test fails when it changes by accident."""

from __future__ import annotations

from importlib.metadata import entry_points

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
    }


def test_framework_modules_are_public_by_path():
    import lumen_otel.django
    import lumen_otel.fastapi

    assert lumen_otel.fastapi.CorrelationIdMiddleware
    assert lumen_otel.django.CorrelationIdMiddleware
