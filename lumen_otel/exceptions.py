"""Errors raised by lumen-otel to the code that configures it (never by logging itself)."""

from __future__ import annotations

__all__ = ["AlreadySetUpError", "ConfigError"]


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


class AlreadySetUpError(ConfigError):
    """A second ``bootstrap()``/``configure_logging()`` asked for other values than the ones in force.

    OpenTelemetry's global tracer and meter providers can be set once per process, so a changed
    argument cannot be applied after the fact; the message names each differing argument, the
    value in force and where it came from, and what to do instead.
    """

    def __init__(self, name: str, value: object, message: str) -> None:
        self.name = name
        self.value = value
        self.accepted = "the values already set up"
        ValueError.__init__(self, message)
