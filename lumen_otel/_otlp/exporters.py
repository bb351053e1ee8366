"""OTLP exporters for one signal, over HTTP/protobuf (default) or gRPC.

Endpoints follow the OTLP convention (``<endpoint>/v1/<signal>`` for HTTP) unless the
signal-specific ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` is set; certificates and headers
come from the standard ``OTEL_EXPORTER_OTLP_*`` variables, which the exporters read.
"""

from __future__ import annotations

import os
from typing import Any

from lumen_otel._config.settings import Settings

__all__ = ["build_exporter", "pinned_ca_session", "signal_endpoint"]


def signal_endpoint(settings: Settings, signal: str) -> str | None:
    """The endpoint for one signal; ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` wins when set."""
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"):
        return None  # the exporter reads the signal-specific variable itself
    assert settings.otlp_endpoint is not None
    if settings.otlp_protocol == "grpc":
        return settings.otlp_endpoint
    return f"{settings.otlp_endpoint}/v1/{signal}"


def _grpc_insecure(settings: Settings) -> bool:
    return bool(settings.otlp_endpoint and settings.otlp_endpoint.startswith("http://"))


def build_exporter(settings: Settings, signal: str) -> Any:
    endpoint = signal_endpoint(settings, signal)
    if settings.otlp_protocol == "grpc":
        if signal == "logs":
            from lumen_otel._compat import grpc_log_exporter

            return grpc_log_exporter()(endpoint=endpoint, insecure=_grpc_insecure(settings))
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

            return GrpcSpans(endpoint=endpoint, insecure=_grpc_insecure(settings))
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        return GrpcMetrics(endpoint=endpoint, insecure=_grpc_insecure(settings))
    if signal == "logs":
        # the upstream exporter with a cheaper encoder that writes the same bytes
        from lumen_otel._otlp.logs import WireLogExporter

        return WireLogExporter(endpoint=endpoint, session=pinned_ca_session())
    if signal == "traces":
        from lumen_otel._otlp.spans import WireSpanExporter  # the same bytes, a cheaper encoder

        return WireSpanExporter(endpoint=endpoint, session=pinned_ca_session())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=endpoint, session=pinned_ca_session())


def pinned_ca_session() -> Any:
    """A requests session on which ``OTEL_EXPORTER_OTLP_CERTIFICATE`` really is the CA used.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (set on many hospital hosts for the
    corporate CA) override a session's ``verify`` (psf/requests#3829), so the collector's CA
    was silently ignored and TLS failed. Proxies and other environment settings still apply.
    """
    import requests

    class PinnedCASession(requests.Session):
        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            if self.verify is not True:
                merged["verify"] = self.verify
            return merged

    return PinnedCASession()
