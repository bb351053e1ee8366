"""Showing log text safely: control, escape and bidi characters become visible escapes.

Log lines can carry an attacker's text (ESC and OSC sequences, ``\\r``, C1 controls, bidi
overrides, line separators). Whatever prints or sends a piece of log text passes it through
:func:`escape_text` first.
"""

from __future__ import annotations

import re

__all__ = ["escape_text"]

# C0 and C1 controls, DEL, and the invisible format characters that reorder or hide text
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\U000e0000-\U000e007f]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_text(text: str, keep_newlines: bool = False) -> str:
    """``text`` with unsafe characters shown as ``\\x1b``, ``\\u202e``... escapes."""
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape_char, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape_char, text)
