"""Errors raised by lumen-otel to the code that configures it (never by logging itself)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A setting has a value lumen-otel cannot use.

    The message names the variable (or argument), the value and what is accepted, e.g.
    ``LUMEN_ENV='staging' is not valid: expected one of dev, prod``.
    """

    def __init__(self, name: str, value: object, accepted: str) -> None:
        self.name = name
        self.value = value
        self.accepted = accepted
        super().__init__(f"{name}={value!r} is not valid: expected {accepted}")
