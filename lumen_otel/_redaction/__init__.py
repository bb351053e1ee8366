"""PHI redaction. PLACEHOLDER: pass-through until the redaction work lands (issue 4).

Interface the logging pipeline relies on (keep it):
  Redactor(*, key: str | bytes | None = None, extra_keys=(), extra_patterns=(), defaults=True)
  Redactor.redact_text(text: str) -> str
  Redactor.redact(value: Any) -> Any            # str / Mapping / list / tuple recursively
  Redactor.redact_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]   # by key name and value
  redact(value) -> Any                          # uses get_default_redactor()
  get_default_redactor() / set_default_redactor(redactor)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Redactor", "get_default_redactor", "redact", "set_default_redactor"]


class Redactor:
    __slots__ = ("defaults", "extra_keys", "extra_patterns", "key")

    def __init__(
        self,
        *,
        key: str | bytes | None = None,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        defaults: bool = True,
    ) -> None:
        self.key = key.encode() if isinstance(key, str) else key
        self.extra_keys = tuple(extra_keys)
        self.extra_patterns = tuple(extra_patterns)
        self.defaults = defaults

    def redact_text(self, text: str) -> str:
        return text

    def redact_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        return dict(mapping)

    def redact(self, value: Any) -> Any:
        return value


_default: Redactor | None = None


def get_default_redactor() -> Redactor:
    global _default  # noqa: PLW0603 - one process-wide default, replaced by configure_logging
    if _default is None:
        _default = Redactor()
    return _default


def set_default_redactor(redactor: Redactor) -> None:
    global _default  # noqa: PLW0603
    _default = redactor


def redact(value: Any) -> Any:
    """Redact PHI from a string, or from a dict/list recursively."""
    return get_default_redactor().redact(value)
