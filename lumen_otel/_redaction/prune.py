"""Per-stem copies of the label regexes, without the alternatives that cannot match there.

A labelled rule is only tried where the stem trie found one of its stems, anchored at that
stem: ``patient`` is tried at "patient ...", never at "name ...". The rule's label, though, is
an alternation over every way the label can be spelled (``(?:full|first|...|patient|...)
[ _.-]?names?|names?|surname|forename``) and the engine walks through all of them at each hit.
:func:`prune_label` keeps, for one stem, only the alternatives that can begin with that stem.

It is conservative by construction: an alternative is dropped only when the parsed regex
*provably* cannot consume the stem's characters (anything not understood - a category, a
look-around, a back-reference - counts as "may match"). Dropping an alternative that can never
match at the stem changes no match: the alternatives that remain keep their order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:  # Python >= 3.11
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse

__all__ = ["prune_label"]

_c = _sre_parse  # the opcodes live in the parser's namespace (imported from _constants)


def prune_label(label: str, stem: str) -> str | None:
    """``label`` (a case-insensitive regex) with the alternatives that cannot start with ``stem``
    removed, recursively into leading groups; ``None`` when none can."""
    if not label.startswith("(?:"):
        return label if _may_start_with(label, stem) else None
    close = _closing(label, 0)
    rest = label[close + 1 :]
    if close < 0 or rest[:1] in ("?", "*", "+", "{"):
        # Not understood, or a quantified group (the alternatives are optional): test it whole.
        return label if _may_start_with(label, stem) else None
    kept: list[str] = []
    for alt in _split_alternatives(label[3:close]):
        pruned = prune_label(alt, stem)
        if pruned is not None and _may_start_with(f"(?:{pruned}){rest}", stem):
            kept.append(pruned)
    if not kept:
        return None
    return "(?:" + "|".join(kept) + ")" + rest


def _structure(source: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(index, char, depth)`` for each ``(``, ``)`` and ``|`` of ``source`` from ``start``, with
    the group depth after it; escapes and character classes are stepped over."""
    depth = 0
    i = start
    in_class = False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if source.startswith("]", i + 1):
                i += 1
            elif source.startswith("^]", i + 1):
                i += 2
        elif ch in "()|":
            depth += {"(": 1, ")": -1, "|": 0}[ch]
            yield i, ch, depth
        i += 1


def _closing(source: str, start: int) -> int:
    """Index of the ``)`` closing the group opened at ``source[start]``, or -1."""
    for i, ch, depth in _structure(source, start):
        if ch == ")" and depth == 0:
            return i
    return -1


def _split_alternatives(body: str) -> list[str]:
    """``body`` split at its top-level ``|``."""
    parts: list[str] = []
    last = 0
    for i, ch, depth in _structure(body):
        if ch == "|" and depth == 0:
            parts.append(body[last:i])
            last = i + 1
    parts.append(body[last:])
    return parts


def _may_start_with(source: str, stem: str) -> bool:
    """Whether ``source`` (case-insensitive) may match some text beginning with ``stem``."""
    try:
        reached = _advance(list(_sre_parse.parse(source)), {0}, stem)
    except Exception:  # noqa: BLE001 - a parser this analysis does not know: keep the alternative
        return True
    # A path that consumed the whole stem may match; so may one that ended inside it (what
    # follows the label decides), which keeps the test conservative.
    return bool(reached)


class _Unknown(Exception):
    """An opcode this analysis does not model: treated as "may match"."""


def _advance(items: list[tuple[Any, Any]], positions: set[int], stem: str) -> set[int]:
    """The positions in ``stem`` reachable after ``items`` from ``positions`` (len(stem) = done)."""
    n = len(stem)
    for op, av in items:
        if not positions:
            return positions
        done = {n} if n in positions else set()
        live = positions - done
        if op in (_c.LITERAL, _c.NOT_LITERAL, _c.IN, _c.ANY):
            nxt = {j + 1 for j in live if _char_ok(op, av, stem[j])}
            positions = nxt | done
        elif op is _c.SUBPATTERN:
            positions = _advance(list(av[-1]), positions, stem)
        elif op is _c.BRANCH:
            out: set[int] = set()
            for alt in av[1]:
                out |= _advance(list(alt), positions, stem)
            positions = out
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            current = set(positions)
            result = set(current) if lo == 0 else set()
            count = 0
            seen: set[frozenset[int]] = set()
            while current and (hi is _c.MAXREPEAT or count < hi):
                current = _advance(list(sub), current, stem)
                count += 1
                if count >= lo:
                    result |= current
                key = frozenset(current)
                if count >= lo and key in seen:
                    break
                seen.add(key)
                if count > lo + n + 2:
                    break
            positions = result
        elif op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT):
            pass  # zero-width: assumed to hold (conservative)
        else:
            raise _Unknown(op)
    return positions


def _char_ok(op: Any, av: Any, ch: str) -> bool:
    """Whether one opcode may consume ``ch`` (either case)."""
    chars = {ch, ch.lower(), ch.upper()}
    if op is _c.ANY:
        return True
    if op is _c.LITERAL:
        return chr(av) in chars or chr(av).lower() in chars
    if op is _c.NOT_LITERAL:
        return True  # conservative
    # IN: a set of LITERAL / RANGE / NEGATE / CATEGORY items
    for item_op, item_av in av:
        if item_op is _c.LITERAL:
            if chr(item_av) in chars or chr(item_av).lower() in chars:
                return True
        elif item_op is _c.RANGE:
            lo, hi = item_av
            if any(lo <= ord(c) <= hi for c in chars):
                return True
        else:
            return True  # negated, a category or anything else: may match
    return False
