"""Test helpers for services that use lumen-otel (and for lumen-otel's own tests).

- :class:`OTLPReceiver`: a real OTLP/HTTP (protobuf) receiver on a loopback port that decodes
  what it is sent into plain dicts. It stands in for a collector in unit and integration
  tests; it can be told to fail (status code, delay) to exercise retry and drop paths, for
  every request or per request (:meth:`OTLPReceiver.answer`: a status with ``Retry-After``, a
  delay, a large body, for requests on a path, holding some bytes or over a size).
- :func:`capture_logs`: a context manager that collects the records lumen-otel's pipeline
  produces (after enrichment and redaction), as the JSON sinks would see them.
- :func:`reset`: undo :func:`lumen_otel.bootstrap`/:func:`lumen_otel.configure_logging`, so a
  test can configure again with other settings.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LogRecordView", "OTLPReceiver", "SpanView", "capture_logs", "reset"]


@dataclass
class LogRecordView:
    """One OTLP log record, decoded."""

    body: Any
    severity_text: str
    severity_number: int
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    time_unix_nano: int


@dataclass
class SpanView:
    """One OTLP span, decoded."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Answer:
    """One per-request answer of :meth:`OTLPReceiver.answer`; ``used`` counts the requests it took."""

    status: int
    path: str | None = None
    match: bytes | None = None
    over: int | None = None
    retry_after: str | None = None
    body_size: int = 0
    delay: float = 0.0
    times: int | None = 1
    used: int = 0


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return bytes(value.bytes_value)
    return getattr(value, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _hex(raw: bytes) -> str | None:
    return raw.hex() if raw and any(raw) else None


class OTLPReceiver:
    """A loopback OTLP/HTTP receiver that records logs, spans and metrics.

    Example::

        with OTLPReceiver() as receiver:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
            ...
            receiver.wait_for(lambda r: len(r.logs) >= 1)
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.logs: list[LogRecordView] = []
        self.spans: list[SpanView] = []
        self.metrics: list[dict[str, Any]] = []
        self.requests = 0
        #: set to an HTTP status (e.g. 503) to refuse exports, or a delay in seconds to be slow
        self.fail_status: int | None = None
        self.delay: float = 0.0
        #: per-request answers (:meth:`answer`), the first that matches a request is used
        self.rules: list[_Answer] = []
        #: (path, status) of every request, in the order answered
        self.answered: list[tuple[str, int]] = []
        self._lock = threading.RLock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    payload = gzip.decompress(payload)
                rule = receiver._rule_for(self.path, payload)
                delay = rule.delay if rule is not None and rule.delay else receiver.delay
                if delay:
                    time.sleep(delay)
                status = rule.status if rule is not None else receiver.fail_status
                if status is None or 200 <= status < 300:
                    receiver._accept(self.path, payload)
                    status = status or 200
                receiver._answered(self.path, status)
                body_size = rule.body_size if rule is not None else 0
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(body_size))
                if rule is not None and rule.retry_after is not None:
                    self.send_header("Retry-After", rule.retry_after)
                self.end_headers()
                if body_size:
                    chunk = b"x" * min(body_size, 64 * 1024)
                    left = body_size
                    try:
                        while left > 0:
                            self.wfile.write(chunk[:left])
                            left -= len(chunk)
                    except OSError:  # the client stopped reading (as it should) and closed
                        self.close_connection = True

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if ssl_context is not None:  # TLS (and mTLS when the context requires client certificates)
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def start(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(
        self,
        status: int,
        *,
        path: str | None = None,
        match: bytes | str | None = None,
        over: int | None = None,
        retry_after: str | float | None = None,
        body_size: int = 0,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> _Answer:
        """Answer ``status`` (200 accepts) to the next ``times`` requests (``None``: every one)
        whose path ends with ``path``, whose (decompressed) payload holds ``match`` and is longer
        than ``over`` bytes: with a ``Retry-After`` header, after ``delay`` seconds, with a body of
        ``body_size`` bytes. Rules are tried in the order given; a request none matches gets
        :attr:`fail_status` (or 200) as before."""
        rule = _Answer(
            status=status,
            path=path,
            match=match.encode("utf-8") if isinstance(match, str) else match,
            over=over,
            retry_after=None
            if retry_after is None
            else f"{retry_after:g}"
            if isinstance(retry_after, float)
            else str(retry_after),
            body_size=body_size,
            delay=delay,
            times=times,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def _answered(self, path: str, status: int) -> None:
        with self._lock:
            self.answered.append((path, status))

    def _rule_for(self, path: str, payload: bytes) -> _Answer | None:
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.times <= 0:
                    continue
                if rule.path is not None and not path.endswith(rule.path):
                    continue
                if rule.match is not None and rule.match not in payload:
                    continue
                if rule.over is not None and len(payload) <= rule.over:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.used += 1
                return rule
        return None

    def wait_for(self, predicate: Callable[[OTLPReceiver], bool], timeout: float = 10.0) -> bool:
        """Poll until ``predicate(self)`` is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        with self._lock:
            return predicate(self)

    def _accept(self, path: str, payload: bytes) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        with self._lock:
            self.requests += 1
            if path.endswith("/v1/logs"):
                logs_request = ExportLogsServiceRequest.FromString(payload)
                for rl in logs_request.resource_logs:
                    resource = _attrs(rl.resource.attributes)
                    for sl in rl.scope_logs:
                        for lr in sl.log_records:
                            self.logs.append(
                                LogRecordView(
                                    body=_any_value(lr.body),
                                    severity_text=lr.severity_text,
                                    severity_number=lr.severity_number,
                                    trace_id=_hex(lr.trace_id),
                                    span_id=_hex(lr.span_id),
                                    attributes=_attrs(lr.attributes),
                                    resource=resource,
                                    scope=sl.scope.name,
                                    time_unix_nano=lr.time_unix_nano,
                                )
                            )
            elif path.endswith("/v1/traces"):
                trace_request = ExportTraceServiceRequest.FromString(payload)
                for rs in trace_request.resource_spans:
                    resource = _attrs(rs.resource.attributes)
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            self.spans.append(
                                SpanView(
                                    name=sp.name,
                                    trace_id=sp.trace_id.hex(),
                                    span_id=sp.span_id.hex(),
                                    parent_span_id=_hex(sp.parent_span_id),
                                    kind=sp.kind,
                                    attributes=_attrs(sp.attributes),
                                    resource=resource,
                                    status_code=sp.status.code,
                                    events=[
                                        {"name": e.name, "attributes": _attrs(e.attributes)}
                                        for e in sp.events
                                    ],
                                )
                            )
            elif path.endswith("/v1/metrics"):
                metrics_request = ExportMetricsServiceRequest.FromString(payload)
                for rm in metrics_request.resource_metrics:
                    resource = _attrs(rm.resource.attributes)
                    for sm in rm.scope_metrics:
                        for metric in sm.metrics:
                            kind = metric.WhichOneof("data")
                            points = getattr(metric, kind).data_points if kind else []
                            for point in points:
                                value = getattr(point, "as_int", 0) or getattr(point, "as_double", 0.0)
                                if kind == "histogram":
                                    value = point.count
                                self.metrics.append(
                                    {
                                        "name": metric.name,
                                        "kind": kind,
                                        "value": value,
                                        "attributes": _attrs(point.attributes),
                                        "resource": resource,
                                    }
                                )

    def metric_total(self, name: str, **attributes: Any) -> float:
        """The latest cumulative value of ``name`` summed over series matching ``attributes``."""
        with self._lock:
            latest: dict[tuple[Any, ...], float] = {}
            for point in self.metrics:
                if point["name"] != name:
                    continue
                if any(point["attributes"].get(k) != v for k, v in attributes.items()):
                    continue
                key = (
                    point["resource"].get("service.instance.id"),
                    tuple(sorted(point["attributes"].items())),
                )
                latest[key] = point["value"]
            return float(sum(latest.values()))


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect the records lumen-otel's pipeline emits, as the JSON sinks would write them.

    Needs :func:`lumen_otel.configure_logging` (or bootstrap) to have run. Records are
    captured after enrichment and redaction, on the writer thread; the block flushes it
    before returning.
    """
    from lumen_otel._logging.pipeline import current_pipeline

    pipeline = current_pipeline()
    if pipeline is None:
        raise RuntimeError("capture_logs() needs lumen_otel.configure_logging() to have run first")
    captured: list[dict[str, Any]] = []
    pipeline.add_listener(captured.append)
    try:
        yield captured
        pipeline.flush()
    finally:
        pipeline.remove_listener(captured.append)


def reset(timeout: float = 2.0) -> None:
    """Undo lumen-otel's set-up in this process so the next set-up call starts afresh.

    Shuts the telemetry handle down (flushing what is queued, bounded by ``timeout`` seconds),
    removes lumen-otel's handler from the root logger, and forgets the default redactor and the
    rate-limited warnings already reported. The OpenTelemetry API's global tracer, meter and
    logger providers can be set only once per process: those stay.
    """
    import logging

    from lumen_otel._logging.pipeline import RootHandler
    from lumen_otel._state import STATE

    with STATE.lock:
        handle = STATE.handle
        STATE.handle = None
    if handle is not None:
        handle.shutdown(timeout=timeout)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, RootHandler)]
    STATE.pipeline = None
    STATE.redactor = None
    STATE.set_up_by_launcher = False
    STATE.reported.clear()
