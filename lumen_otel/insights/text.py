"""Showing log text safely: control, escape and bidi characters become visible escapes.

Log lines can carry an attacker's text (ESC and OSC sequences, ``\\r``, C1 controls, bidi
overrides, line separators). Whatever prints or sends a piece of log text passes it through
:func:`escape_text` first. The character class is the dev console's
(:data:`lumen_otel._logging.formatters.UNSAFE_TEXT_CHARS`), so the two cannot drift.
"""

from __future__ import annotations

from lumen_otel._logging.formatters import escape_unsafe

__all__ = ["escape_text"]


def escape_text(text: str, keep_newlines: bool = False) -> str:
    """``text`` with unsafe characters shown as ``\\n``, ``\\x1b``, ``\\u202e``... escapes."""
    if keep_newlines:
        return "\n".join(escape_unsafe(line) for line in text.split("\n"))
    return escape_unsafe(text)
