"""The default sampler: parent-based, with a ratio part that reads only the random 56 bits.

Trace ids made from UUIDs (generated ones, and those derived from UUID correlation IDs) have
fixed version/variant bits inside the low 64 bits the SDK's ``TraceIdRatioBased`` compares,
so the stock sampler would keep UUIDv4 traces at 0 % for any ratio <= 0.5. The right-most
56 bits are random for every trace id lumen-otel makes (UUIDv4, SHA-256 derived) and for
W3C level 2 ids, so the ratio is applied to those.

``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` keep their standard meaning; the ratio
samplers named there are replaced by the 56-bit one, and a custom sampler registered under
the ``opentelemetry_traces_sampler`` entry point group is honoured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from lumen_otel.exceptions import ConfigError

__all__ = ["TraceIdRatioLow56", "build_sampler"]

_SAMPLER_VAR = "OTEL_TRACES_SAMPLER"
_ARG_VAR = "OTEL_TRACES_SAMPLER_ARG"
_KNOWN = (
    "parentbased_traceidratio",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "always_on",
    "always_off",
)


class TraceIdRatioLow56(TraceIdRatioBased):
    """``TraceIdRatioBased`` that compares only the right-most 56 bits of the trace id.

    Deterministic: every service that sees the same trace id makes the same decision.
    """

    # TraceIdRatioBased masks the trace id with TRACE_ID_LIMIT and derives its bound from it.
    TRACE_ID_LIMIT = (1 << 56) - 1

    def get_description(self) -> str:
        return f"LumenTraceIdRatioBased{{{self.rate}}}"


def _rate(environ: Mapping[str, str]) -> float:
    raw = environ.get(_ARG_VAR)
    if raw is None or raw.strip() == "":
        return 1.0
    accepted = "a number between 0 and 1 (the fraction of new traces to keep)"
    try:
        rate = float(raw.strip())
    except ValueError:
        raise ConfigError(_ARG_VAR, raw, accepted) from None
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ConfigError(_ARG_VAR, raw, accepted)
    return rate


def build_sampler(environ: Mapping[str, str]) -> Sampler:
    """The sampler for ``TracerProvider(sampler=...)``, from ``OTEL_TRACES_SAMPLER[_ARG]``.

    Default (nothing set): parent-based, new traces kept at the ratio in
    ``OTEL_TRACES_SAMPLER_ARG`` (default 1.0) judged on the trace id's random 56 bits.

    Raises:
        ConfigError: an unknown sampler name, or an argument that is not a number in [0, 1].
    """
    raw_name = environ.get(_SAMPLER_VAR)
    name = (raw_name or "").strip().lower() or "parentbased_traceidratio"
    fixed = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
    }
    if name in fixed:
        return fixed[name]
    if name == "traceidratio":
        return TraceIdRatioLow56(_rate(environ))
    if name == "parentbased_traceidratio":
        return ParentBased(TraceIdRatioLow56(_rate(environ)))
    return _custom_sampler(name, raw_name or "", environ.get(_ARG_VAR))


def _custom_sampler(name: str, raw_name: str, arg: str | None) -> Sampler:
    from importlib.metadata import entry_points

    accepted = "one of " + ", ".join(_KNOWN) + " or a sampler registered under opentelemetry_traces_sampler"
    found = list(entry_points(group="opentelemetry_traces_sampler", name=name))
    if not found:
        raise ConfigError(_SAMPLER_VAR, raw_name, accepted)
    factory = found[0].load()
    sampler = factory(arg or "")
    if not isinstance(sampler, Sampler):
        raise ConfigError(_SAMPLER_VAR, raw_name, f"{accepted} (its factory did not return a Sampler)")
    return sampler
