"""OTLP exporters for one signal, over HTTP/protobuf (default) or gRPC.

Each signal goes where its :class:`~lumen_otel._config.settings.ExportTarget` says: its own
``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` as given, else the main endpoint (``<endpoint>/v1/<signal>``
for HTTP). The settings module has parsed and checked those URLs (https, or loopback, or
``LUMEN_ALLOW_INSECURE``), so the exporters are handed them rather than reading the variables
again. Certificates and headers come from the standard ``OTEL_EXPORTER_OTLP_*`` variables,
which the exporters read.

Over HTTP, at most :data:`MAX_RESPONSE_BODY` bytes of a collector's answer are read: the
upstream exporters never look at the body, and ``requests`` would otherwise hold all of it (a
collector or proxy answering 400 with a 200 MB page took a service to 330 MiB).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lumen_otel._compat import exporter_is_shut_down
from lumen_otel._config.settings import ExportTarget, Settings
from lumen_otel._otlp.wire import export_encoded

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

    from lumen_otel._redaction import Redactor

__all__ = [
    "MAX_RESPONSE_BODY",
    "WireSignal",
    "build_exporter",
    "build_signal_exporter",
    "pinned_ca_session",
    "request_timeout",
    "signal_endpoint",
    "wire_export",
]

_Result = TypeVar("_Result")

#: the most of a collector's HTTP response body that is read; OTLP answers are a few bytes
MAX_RESPONSE_BODY = 64 * 1024
_CHUNK = 16 * 1024


@dataclasses.dataclass(frozen=True)
class WireSignal(Generic[_Result]):
    """What the wire exporters of one signal (logs, spans) pass to :func:`wire_export`."""

    encode: Callable[[Sequence[Any]], bytes]
    #: (success, failure) of the signal's result enum
    outcomes: tuple[_Result, _Result]
    #: the batch's name in upstream's messages ("logs", "span")
    what: str
    #: the upstream exporter's own logger: its messages keep their source
    logger: logging.Logger
    #: an item with its lone surrogates made encodable
    sanitize: Callable[[Any], Any]


def wire_export(
    exporter: Any,
    items: Sequence[Any],
    upstream_export: Callable[[Sequence[Any]], _Result],
    signal: WireSignal[_Result],
) -> _Result:
    """The ``export`` of the wire exporters: upstream's own (its warning and FAILURE) once the
    exporter is shut down, else :func:`~lumen_otel._otlp.wire.export_encoded` with the signal's
    encoder, falling back to ``upstream_export`` where the export step cannot be borrowed."""
    if exporter_is_shut_down(exporter):
        return upstream_export(items)
    return export_encoded(
        exporter,
        items,
        signal.encode,
        signal.outcomes,
        signal.what,
        signal.logger,
        upstream_export,
        signal.sanitize,
    )


def _target(settings: Settings, signal: str) -> ExportTarget:
    target = settings.export_target(signal)
    if target is None:
        raise ValueError(f"no OTLP endpoint is set for {signal}")
    return target


def signal_endpoint(settings: Settings, signal: str) -> str:
    """The URL one signal's exporter is given (its own variable as given, else the main endpoint)."""
    target = _target(settings, signal)
    if target.protocol == "grpc" and not target.encrypted and target.url.startswith("https://"):
        # OTEL_EXPORTER_OTLP_*INSECURE=true (checked and allowed by the settings): upstream's gRPC
        # exporter keeps TLS for an https:// URL whatever ``insecure`` says, so say http://
        return "http://" + target.url.removeprefix("https://")
    return target.url


def build_exporter(settings: Settings, signal: str, redactor: Redactor | None = None) -> Any:
    """``signal``'s OTLP exporter; a metric exporter redacts its batches with ``redactor`` (by
    default the process-wide one at export time)."""
    target = _target(settings, signal)
    endpoint = signal_endpoint(settings, signal)
    timeout = request_timeout(settings, signal)
    if target.protocol == "grpc":
        insecure = not target.encrypted
        if signal == "logs":
            from lumen_otel._compat import grpc_log_exporter

            return grpc_log_exporter()(endpoint=endpoint, insecure=insecure, timeout=timeout)
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans

            return GrpcSpans(endpoint=endpoint, insecure=insecure, timeout=timeout)
        from lumen_otel._otlp.metrics import grpc_metric_exporter  # lone surrogates made encodable

        return grpc_metric_exporter()(endpoint=endpoint, insecure=insecure, redactor=redactor)
    if signal == "logs":
        # the upstream exporter with a cheaper encoder that writes the same bytes
        from lumen_otel._otlp.logs import WireLogExporter

        return WireLogExporter(endpoint=endpoint, session=pinned_ca_session(), timeout=timeout)
    if signal == "traces":
        from lumen_otel._otlp.spans import WireSpanExporter  # the same bytes, a cheaper encoder

        return WireSpanExporter(endpoint=endpoint, session=pinned_ca_session(), timeout=timeout)
    from lumen_otel._otlp.metrics import SanitizingMetricExporter  # lone surrogates made encodable

    return SanitizingMetricExporter(endpoint=endpoint, session=pinned_ca_session(), redactor=redactor)


#: the variable bounding one whole batch export, per signal (milliseconds), and its settings field
_BATCH_TIMEOUTS = {
    "logs": ("blrp_export_timeout_ms", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"),
    "traces": ("bsp_export_timeout_ms", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
}
_DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds: upstream's when no OTEL_EXPORTER_OTLP_*TIMEOUT is set


def request_timeout(settings: Settings, signal: str) -> float | None:
    """The ``timeout`` (seconds) ``signal``'s exporter is given: at most ``OTEL_BLRP_EXPORT_TIMEOUT``
    (logs) or ``OTEL_BSP_EXPORT_TIMEOUT`` (traces) when that is set (not 0), else ``None``
    (upstream's own: ``OTEL_EXPORTER_OTLP_<SIGNAL>_TIMEOUT``, else ``OTEL_EXPORTER_OTLP_TIMEOUT``,
    in seconds, else 10 s). When both are set the smaller wins. The SDK's batch processors do
    not bound an export themselves (1.45.1), so this is what makes the setting hold."""
    entry = _BATCH_TIMEOUTS.get(signal)
    if entry is None:
        return None
    field, variable = entry
    if settings.sources.get(field, "default") == "default":
        return None
    batch_ms: int = getattr(settings, field)
    if not batch_ms:
        return None  # 0: no bound of its own
    import os

    raw = os.environ.get(variable) or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        own = float(raw) if raw else _DEFAULT_REQUEST_TIMEOUT
    except ValueError:
        own = _DEFAULT_REQUEST_TIMEOUT  # as upstream reads an invalid value
    return min(batch_ms / 1000.0, own)


def build_signal_exporter(settings: Settings, signal: str, redactor: Redactor | None = None) -> Any | None:
    """The exporter ``signal`` gets as ``OTEL_<SIGNAL>_EXPORTER`` says: OTLP (:func:`build_exporter`),
    the SDK's console exporter on stdout, or ``None`` (``none``, no endpoint, or the SDK disabled).
    Metric exporters redact with ``redactor`` (span exporters are wrapped by the caller)."""
    kind = settings.signal_exporter(signal)
    if kind == "otlp":
        return build_exporter(settings, signal, redactor)
    if kind != "console":
        return None
    import sys

    if signal == "logs":
        from lumen_otel._compat import ConsoleLogRecordExporter

        return ConsoleLogRecordExporter(out=sys.stdout)
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stdout)
    from lumen_otel._redaction.metrics import RedactingConsoleMetricExporter

    return RedactingConsoleMetricExporter(out=sys.stdout, redactor=redactor)


def pinned_ca_session(max_body: int = MAX_RESPONSE_BODY) -> Any:
    """A requests session on which ``OTEL_EXPORTER_OTLP_CERTIFICATE`` really is the CA used, and
    that reads at most ``max_body`` bytes of any response body.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (set on many hospital hosts for the
    corporate CA) override a session's ``verify`` (psf/requests#3829), so the collector's CA
    was silently ignored and TLS failed. Proxies and other environment settings still apply.

    The body is bounded in the transport adapter, below the session's own handling (which
    reads a redirect's whole body before it returns): the response is streamed, at most
    ``max_body`` decoded bytes are read, and a longer body's connection is closed unread.
    ``content``/``text`` then give the part read.
    """
    import requests
    from requests.adapters import HTTPAdapter

    class BoundedBodyAdapter(HTTPAdapter):
        def send(
            self,
            request: PreparedRequest,
            stream: bool = False,  # always streamed: the body is read here, bounded
            timeout: float | tuple[float | None, float | None] | None = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            response = super().send(
                request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            _bound_body(response, max_body)
            return response

    class PinnedCASession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            adapter = BoundedBodyAdapter()
            self.mount("https://", adapter)
            self.mount("http://", adapter)

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            merged: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            if self.verify is not True:
                merged["verify"] = self.verify
            return merged

    return PinnedCASession()


def _bound_body(response: Any, limit: int) -> None:
    """Read at most ``limit`` bytes of a streamed response; it then holds just those.

    Read through urllib3's public ``stream`` (decoding, with its own decompression bounds),
    with read errors turned into the requests exceptions ``content`` would raise; the part read
    becomes the response's ``raw`` stream, which ``content`` reads as it reads any file."""
    from requests.exceptions import ChunkedEncodingError, ContentDecodingError
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import SSLError as RequestsSSLError
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

    raw = response.raw
    if raw is None or not hasattr(raw, "stream"):
        return
    parts: list[bytes] = []
    size = 0
    complete = False
    try:
        for chunk in raw.stream(_CHUNK, decode_content=True):
            if size + len(chunk) > limit:
                parts.append(chunk[: limit - size])
                break
            parts.append(chunk)
            size += len(chunk)
        else:
            complete = True
    except ProtocolError as exc:
        raise ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise RequestsConnectionError(exc) from exc
    except SSLError as exc:
        raise RequestsSSLError(exc) from exc
    finally:
        if not complete:
            raw.close()  # the rest stays unread (or broke): this connection is not reused
        raw.release_conn()
    response.raw = io.BytesIO(b"".join(parts))
