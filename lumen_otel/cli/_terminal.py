"""Log text on an operator's terminal: visible escapes, never Rich markup.

Log records carry text a client chose (a header, a body, a URL path, an extra's key). Shown raw,
it can drive the terminal: ESC sequences recolour, clear the screen, set the window title
(OSC 0), plant hyperlinks (OSC 8); ``\\r``/``\\n``/U+2028 forge lines; bidi overrides reorder
what is read. Rich adds its own risk: a ``str`` passed to ``Console.print`` is read as markup, so
a logged ``[link=https://evil]`` becomes a live link and ``[bold]`` vanishes.

Every CLI command that prints log text goes through this module:

- :func:`escape_text` for a plain string (same character class and escapes as the dev console,
  :data:`lumen_otel._logging.formatters.UNSAFE_TEXT_CHARS`, so the two cannot drift);
- :func:`log_text` for a :class:`rich.text.Text` (which Rich never reads as markup);
- :func:`markup_safe` for log or remote text put inside a markup string of our own
  (``console.print(f"[red]error:[/] {markup_safe(exc)}")``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lumen_otel._logging.formatters import UNSAFE_TEXT, UNSAFE_TEXT_CHARS, escape_unsafe

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["UNSAFE_TEXT", "UNSAFE_TEXT_CHARS", "escape_text", "log_text", "markup_safe"]


def escape_text(text: object, keep_newlines: bool = False) -> str:
    """``text`` (``str()`` of it) with control, escape, line-separator and bidi characters shown
    as ``\\n``, ``\\x1b``, ``\\u202e``... escapes: one line that cannot drive the terminal.

    With ``keep_newlines``, ``\\n`` stays a line break (for multi-line text we lay out ourselves,
    such as a summary paragraph); everything else on each line is still escaped, ``\\r`` included.
    """
    value = text if isinstance(text, str) else str(text)
    if keep_newlines:
        return "\n".join(escape_unsafe(line) for line in value.split("\n"))
    return escape_unsafe(value)


def log_text(text: object, style: str = "", *, keep_newlines: bool = False) -> Text:
    """A :class:`rich.text.Text` of escaped log text: printed literally, ``[bold]`` and all."""
    from rich.text import Text

    return Text(escape_text(text, keep_newlines), style=style)


def markup_safe(text: object) -> str:
    """Escaped log or remote text to put inside a Rich markup string: no markup, no escapes."""
    from rich.markup import escape

    return escape(escape_text(text))
