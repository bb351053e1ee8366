"""PLACEHOLDER until the correlation work lands (issue 3). Keep get_correlation_id()."""

from __future__ import annotations

from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("lumen_correlation_id", default=None)


def get_correlation_id() -> str | None:
    """The current request's (or scope's) correlation ID, or None."""
    return _correlation_id.get()
