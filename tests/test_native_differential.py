"""The native accelerator writes exactly what the Python path writes.

``lumen_otel_native`` (``native/``, Rust) replaces a few hot functions when it is installed:
the log writer's record dict and the OTLP attribute encoder. The Python functions stay the
reference; every test here runs both on the same input (generated records, log records and
spans with lone surrogates, big integers, NaN and -0.0, nested extras, bytes; the PHI corpora's
texts as messages) and requires the same JSON line and the same protobuf bytes, or the same
exception. Under ``CI=true`` a missing accelerator fails these tests: CI builds it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord as ApiLogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from lumen_otel import __version__
from lumen_otel._logging import formatters
from lumen_otel._otlp import logs, spans, wire

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
RESOURCE = Resource.create({"service.name": "native-test"})


def _load_native() -> ModuleType:
    try:
        import lumen_otel_native
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("lumen_otel_native is not importable: CI must build the accelerator (make native)")
        pytest.skip("the native accelerator is not installed: pip install ./native")
    return lumen_otel_native


@pytest.fixture(scope="module")
def native() -> ModuleType:
    return _load_native()


def corpus_texts() -> list[str]:
    """The message texts of the PHI corpora under tests/data (clinical notes, HL7, samples)."""
    texts = []
    for path in sorted(DATA.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = json.loads(line).get("text") if line.strip() else None
            if isinstance(text, str):
                texts.append(text)
    return texts


# ------------------------------------------------------------------------------- strategies

#: any code point, lone surrogates (what undecodable bytes become) included
any_char = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
any_text = st.lists(any_char, max_size=40).map("".join)
floats = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e16, 5e-324]))
integers = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**64 + 2), st.just(-(2**63)))
scalars = st.one_of(st.none(), st.booleans(), integers, floats, any_text, st.binary(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(any_text, inner, max_size=4),
    ),
    max_leaves=12,
)
#: extra keys: text, and sometimes the core fields an extra must never overwrite
extra_keys = st.one_of(any_text, st.sampled_from([*formatters.CORE_FIELDS, "exception"]))
created = st.one_of(
    st.floats(min_value=0, max_value=253_402_300_799.0),
    st.floats(min_value=1.7e9, max_value=1.9e9),
    st.sampled_from([-1.5, 253_402_300_799.9999996, 1e13, 0.9999995, 1_795_000_000.0000005]),
    st.integers(min_value=0, max_value=2**40),
)
ids = st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=16, max_size=32))


@st.composite
def log_records(draw: st.DrawFn, message: st.SearchStrategy[str] = any_text) -> logging.LogRecord:
    """A ``LogRecord`` as the enricher leaves it, each enricher field present or not."""
    args: Any = draw(st.one_of(st.just(()), st.tuples(scalars), st.tuples(scalars, values)))
    msg: Any = draw(message) + " %s" * len(args) if args else draw(st.one_of(message, values))
    if draw(st.booleans()) and not args:
        msg, args = "%(a)s and %(b)r", ({"a": draw(values), "b": draw(values)},)
    record = logging.LogRecord(draw(any_text), logging.INFO, "app.py", 1, msg, args, None, func="handler")
    record.created = draw(created)
    record.levelname = draw(st.sampled_from(["INFO", "WARNING", "ERROR"]))
    for name in ("service_name", "hostname", "correlation_id", "trace_id", "span_id"):
        if draw(st.booleans()):
            setattr(record, name, draw(st.one_of(ids, any_text)))
    if draw(st.booleans()):
        record.lumen_extra = draw(st.dictionaries(extra_keys, values, max_size=6))
    choice = draw(st.sampled_from(["none", "lumen", "lumen_none", "exc_text"]))
    if choice == "lumen":
        record.lumen_exception = {"type": "ValueError", "message": draw(any_text), "stacktrace": "..."}
    elif choice == "lumen_none":
        record.lumen_exception = None
    elif choice == "exc_text":
        record.exc_text = draw(any_text)
    if draw(st.booleans()):
        record.stack_info = draw(st.one_of(st.none(), any_text))
    return record


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gives: its value or the type of the exception it raises."""
    try:
        return "value", call()
    except Exception as exc:  # the two paths must fail alike
        return "raises", type(exc)


def json_line(data: Any) -> bytes:
    return formatters.record_to_json(data)


def assert_same_dict(native: ModuleType, record: logging.LogRecord) -> None:
    expected = outcome(lambda: formatters.python_record_to_dict(record))
    actual = outcome(lambda: native.record_to_dict(record))
    if expected[0] == "raises":
        assert expected == actual
        return
    assert actual[0] == "value"
    # the same keys in the same order, the same values (repr: types too), the same JSON line
    assert repr(expected[1]) == repr(actual[1])
    assert json_line(expected[1]) == json_line(actual[1])


# ----------------------------------------------------------------------------------- records


class TestRecordToDict:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(record=log_records())
    def test_generated_records_give_the_same_json_line(self, native, record):
        assert_same_dict(native, record)

    def test_the_phi_corpora_as_messages(self, native):
        texts = corpus_texts()
        assert texts, "tests/data holds the PHI corpora"
        for i, text in enumerate(texts):
            record = logging.LogRecord("clinic.notes", logging.INFO, "a.py", 1, text, (), None)
            record.service_name, record.correlation_id = "notes", f"{i:032x}"
            record.lumen_extra = {"note": text, "length": len(text)}
            assert_same_dict(native, record)
            record = logging.LogRecord("clinic.notes", logging.INFO, "a.py", 1, "note: %s", (text,), None)
            assert_same_dict(native, record)

    def test_record_subclasses_and_patched_classes_take_getattr(self, native, monkeypatch):
        class Custom(logging.LogRecord):
            @property
            def service_name(self) -> str:
                return "from-a-property"

            def getMessage(self) -> str:
                return "custom message"

        record = Custom("x", logging.INFO, "a.py", 1, "%s", ("arg",), None)
        assert_same_dict(native, record)
        assert native.record_to_dict(record)["service_name"] == "from-a-property"
        assert native.record_to_dict(record)["message"] == "custom message"
        monkeypatch.setattr(logging.LogRecord, "hostname", "class-level", raising=False)
        plain = logging.LogRecord("x", logging.INFO, "a.py", 1, "m", (), None)
        assert native.record_to_dict(plain)["hostname"] == "class-level"
        assert_same_dict(native, plain)

    def test_a_patched_get_message_is_called(self, native, monkeypatch):
        """Libraries patch ``LogRecord.getMessage`` (to format ``{}`` messages, say): the native
        path must call the patched method as the Python path does, not format ``msg % args``."""
        record = logging.LogRecord("x", logging.INFO, "a.py", 1, "user {}", ("ada",), None)
        monkeypatch.setattr(logging.LogRecord, "getMessage", lambda self: str(self.msg).format(*self.args))
        assert native.record_to_dict(record)["message"] == "user ada"
        assert_same_dict(native, record)
        monkeypatch.undo()
        record = logging.LogRecord("x", logging.INFO, "a.py", 1, "user %s", ("ada",), None)
        assert native.record_to_dict(record)["message"] == "user ada"

    def test_broken_records_raise_what_python_raises(self, native):
        wrong_args = logging.LogRecord("x", logging.INFO, "a.py", 1, "%d %d", ("one",), None)
        no_level = logging.LogRecord("x", logging.INFO, "a.py", 1, "m", (), None)
        del no_level.levelname
        unhashable = logging.LogRecord("x", logging.INFO, "a.py", 1, "m", (), None)
        unhashable.lumen_extra = _ItemsOf([([1], "list key")])
        for record in (wrong_args, no_level, unhashable):
            assert_same_dict(native, record)
            assert outcome(lambda r=record: native.record_to_dict(r))[0] == "raises"

    def test_stack_info_and_non_finite_floats_give_the_same_strict_line(self, native):
        """``stack_info`` follows the exception as its own field; NaN and the infinities are
        ``null`` on both paths, with orjson and with the stdlib fallback a >64-bit integer takes."""

        class Unanswerable:
            def __bool__(self) -> bool:
                raise RuntimeError("no truth")

        for big in (None, 10**400):
            record = logging.LogRecord(
                "x", logging.INFO, "a.py", 1, "m", (), None, sinfo="Stack (most recent...)"
            )
            record.lumen_extra = {"n": math.nan, "i": [math.inf, -math.inf], "big": big}
            record.exc_text = "Traceback..."
            assert_same_dict(native, record)
            line = json_line(native.record_to_dict(record))
            data = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}"))
            assert ["exception", "stack_info"] == list(data)[-2:]
            assert (None, [None, None], "Stack (most recent...)") == (
                data["n"],
                data["i"],
                data["stack_info"],
            )
        for stack_info in ("", None, Unanswerable()):
            record = logging.LogRecord("x", logging.INFO, "a.py", 1, "m", (), None)
            record.stack_info = stack_info
            assert_same_dict(native, record)

    @given(seconds=st.floats(min_value=0, max_value=253_402_300_798.0))
    @example(seconds=0.0000005)
    @example(seconds=0.0000015)
    @example(seconds=1_795_000_000.9999996)
    def test_timestamps_round_as_python_rounds(self, native, seconds):
        assert native.rfc3339(seconds) == formatters.rfc3339(seconds)

    def test_the_active_function_is_the_native_one_unless_turned_off(self, native):
        from lumen_otel import _native

        if _native.accelerator is None:
            assert formatters.record_to_dict is formatters.python_record_to_dict
            assert wire.attribute_entries is wire.python_attribute_entries
        else:
            assert formatters.record_to_dict is native.record_to_dict
            assert wire.attribute_entries is wire.native_attribute_entries


class _ItemsOf:
    """A mapping-like ``lumen_extra`` that is not a dict: both paths go through ``items()``."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self._items = items

    def __bool__(self) -> bool:
        return bool(self._items)

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._items)


# -------------------------------------------------------------------------------------- OTLP

attribute_keys = st.one_of(any_text, st.sampled_from(["", "code.line.number", "http.route"]))
attribute_values = st.one_of(
    any_text,
    st.booleans(),
    integers,
    floats,
    st.none(),
    st.binary(max_size=8),
    st.lists(st.text(max_size=5), max_size=3),
    st.tuples(st.integers()),
)


def entries(encode: Callable[..., None], tag: bytes, attributes: Any) -> tuple[str, Any]:
    parts: list[bytes] = []
    result = outcome(lambda: encode(tag, attributes, parts.append))
    return (result[1] if result[0] == "raises" else b"".join(parts)), result[0]


@pytest.fixture(scope="module")
def native_encoder(native: ModuleType) -> Iterator[None]:
    """``wire.native_attribute_entries`` usable under ``LUMEN_NATIVE=0`` too (wire was loaded
    without the accelerator then), so both runs of the suite compare the two paths."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wire, "_native_entries", native.attribute_entries)
        yield


class TestAttributeEntries:
    @settings(max_examples=400, deadline=None)
    @given(
        tag=st.sampled_from([b"\x32", b"\x4a"]),
        attributes=st.one_of(st.none(), st.dictionaries(attribute_keys, attribute_values, max_size=8)),
    )
    def test_generated_attributes_give_the_same_fields(self, native_encoder, tag, attributes):
        expected = entries(wire.python_attribute_entries, tag, attributes)
        assert expected == entries(wire.native_attribute_entries, tag, attributes)

    def test_non_string_keys_and_subclasses_go_to_upstream(self, native_encoder):

        class Text(str):
            pass

        for attributes in ({1: "a"}, {"k": Text("v")}, {Text("k"): "v"}, {"k": True}, {"k": 2**63}):
            expected = entries(wire.python_attribute_entries, b"\x32", attributes)
            assert expected == entries(wire.native_attribute_entries, b"\x32", attributes)


def _readable(body: str, attributes: dict[str, Any], i: int) -> ReadableLogRecord:
    record = ApiLogRecord(
        timestamp=1_795_000_000_123_456_789 + i,
        observed_timestamp=1_795_000_000_223_456_789 + i,
        severity_text="INFO",
        severity_number=SeverityNumber.INFO,
        body=body,
        attributes=attributes,
    )
    record.trace_id, record.span_id = 0x0AF7651916CD43DD8448EB211C80319C + i, 0xB7AD6B7169203331
    scope = InstrumentationScope(f"scope.{i % 3}")
    return ReadableLogRecord(log_record=record, resource=RESOURCE, instrumentation_scope=scope)


@pytest.fixture
def encoder_paths(
    native_encoder: None, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[], bytes]], None]:
    """Runs an encoding with each attribute encoder in the log and span encoders, asserts the
    same bytes (or the same exception)."""

    def check(encode: Callable[[], bytes]) -> None:
        results = []
        for path in (wire.python_attribute_entries, wire.native_attribute_entries):
            monkeypatch.setattr(logs, "attribute_entries", path)
            monkeypatch.setattr(spans, "attribute_entries", path)
            results.append(outcome(encode))
        assert results[0] == results[1]

    return check


class TestOtlpRequests:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        batch=st.lists(
            st.tuples(any_text, st.dictionaries(attribute_keys, attribute_values, max_size=6)), max_size=6
        )
    )
    def test_generated_log_batches_encode_to_the_same_request(self, encoder_paths, batch):
        items = [_readable(body, attributes, i) for i, (body, attributes) in enumerate(batch)]
        encoder_paths(lambda: logs.encode_logs_request(items))

    def test_the_phi_corpora_as_log_bodies_and_attributes(self, encoder_paths):
        texts = corpus_texts()
        items = [
            _readable(text, {"note": text, "code.line.number": i, "ratio": i / 7, "ok": i % 2 == 0}, i)
            for i, text in enumerate(texts)
        ]
        encoder_paths(lambda: logs.encode_logs_request(items))

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        name=st.text(max_size=20),
        attributes=st.dictionaries(
            st.text(min_size=1, max_size=12),
            st.one_of(
                st.text(max_size=30), st.booleans(), integers, floats, st.lists(st.integers(), max_size=3)
            ),
            max_size=8,
        ),
    )
    def test_generated_spans_encode_to_the_same_request(self, encoder_paths, name, attributes):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("native.test")
        with tracer.start_as_current_span(name, attributes=attributes), tracer.start_as_current_span("child"):
            pass
        provider.shutdown()
        finished = list(exporter.get_finished_spans())
        encoder_paths(lambda: spans.encode_spans_request(finished))


# ------------------------------------------------------------------------- loading, versions


def test_the_accelerator_is_built_at_lumen_otels_version(native):
    """A module built from another version could disagree with this Python code."""
    assert native.__version__ == __version__
    version_line = re.compile(r'^version = "([^"]+)"', re.MULTILINE)
    for manifest in ("Cargo.toml", "pyproject.toml"):
        match = version_line.search((REPO / "native" / manifest).read_text())
        assert match is not None and match.group(1) == __version__, manifest
    assert f'native = ["lumen-otel-native=={__version__}"]' in (REPO / "pyproject.toml").read_text()


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "LUMEN_NATIVE"}
    return subprocess.run(
        [sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True, timeout=60
    )


_REPORT = (
    "from lumen_otel import _native\n"
    "from lumen_otel._logging import formatters\n"
    "print(_native.status)\n"
    "print(formatters.record_to_dict is formatters.python_record_to_dict)\n"
)
#: the accelerator made unimportable, as on a machine where it is not installed
_HIDDEN = "import sys; sys.modules['lumen_otel_native'] = None\n"


class TestLoading:
    def test_lumen_native_0_keeps_the_python_path(self, native):
        result = _python(_REPORT, LUMEN_NATIVE="0")
        assert result.stdout.splitlines() == ["off (LUMEN_NATIVE=0)", "True"], result.stderr

    def test_auto_uses_the_accelerator_when_installed(self, native):
        result = _python(_REPORT)
        assert result.stdout.splitlines() == [f"active (lumen_otel_native {__version__})", "False"], (
            result.stderr
        )

    def test_auto_without_the_accelerator_runs_python_and_says_how_to_install(self):
        result = _python(_HIDDEN + _REPORT)
        assert result.stdout.splitlines() == ["not installed (pip install ./native)", "True"], result.stderr

    def test_lumen_native_1_without_the_accelerator_fails_start_up_naming_the_variable(self):
        code = (
            _HIDDEN + "import lumen_otel\nlumen_otel.configure_logging(service_name='svc', console=False)\n"
        )
        result = _python(code, LUMEN_NATIVE="1")
        assert result.returncode != 0
        assert re.search(
            r"LUMEN_NATIVE='1' is not valid: expected auto or 0: the native accelerator is "
            r"not installed \(pip install \./native\)",
            result.stderr,
        ), result.stderr

    def test_doctor_says_which_path_is_active(self, native):
        for env, line in (
            ({}, f"native accelerator: active (lumen_otel_native {__version__})"),
            ({"LUMEN_NATIVE": "0"}, "native accelerator: off (LUMEN_NATIVE=0)"),
        ):
            code = "import sys; sys.argv = ['lumen-otel', 'doctor']\nfrom lumen_otel.cli import main; main()"
            result = _python(code, COLUMNS="200", **env)
            assert line in result.stdout, result.stdout + result.stderr
