"""PHI redaction: :class:`Redactor` and :func:`redact`.

The logging pipeline calls :meth:`Redactor.redact_text` once per record on the formatted message
and :meth:`Redactor.redact_mapping` on the ``extra`` values; spans go through
:class:`lumen_otel._redaction.spans.RedactingSpanExporter`. See ``docs/redaction.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

from lumen_otel._redaction import hl7, patterns
from lumen_otel._redaction.patterns import HARD_PROTECTED, SOFT_AT

__all__ = ["Redactor", "get_default_redactor", "redact", "set_default_redactor"]

# A value under a PHI key is kept whole only when it is an id we never redact or one of our tokens.
_KEEP_WHOLE = re.compile(
    r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"
    r"|[0-9a-fA-F]{32}|[0-9a-fA-F]{16}"
    r"|\[REDACTED:[A-Z_]{1,24}\]|(?:" + "|".join(k.lower() for k in patterns.KINDS) + r"):[0-9a-f]{12}"
)
_ALNUM = re.compile(r"[^\W_]")
_NOT_ALNUM = string.punctuation + string.whitespace
_SOFT_NEXT = frozenset(" .nums\u00b5h")
_EMAIL_LOCAL = frozenset(string.ascii_letters + string.digits + "._%+-")
_KEY_CACHE_MAX = 4096
# Strings found clean are remembered (bounded): ``extra`` values, span names and attributes repeat
# on every record (routes, methods, host names, status words), messages rarely do.
_CLEAN_CACHE_MAX = 4096
_CLEAN_CACHE_MAX_LEN = 256


class Redactor:
    """Removes PHI from log messages, ``extra`` values and span attributes.

    Args:
        key: HMAC key. With a key, values become ``<kind>:<12 hex>`` (HMAC-SHA256), stable across
            processes, so one patient can be followed through the logs without being named.
            Without one they become ``[REDACTED:<KIND>]``. There is no unkeyed hash: a plain hash
            of an SSN is reversed by brute force in minutes.
        extra_keys: more mapping key names to redact (``LUMEN_REDACTION_EXTRA_KEYS``); also
            honoured as ``key=value`` / ``"key": "value"`` in text.
        extra_patterns: more regexes whose matches are redacted (``LUMEN_REDACTION_EXTRA_PATTERNS``).
        defaults: the built-in rules. ``False`` is for development only; settings refuse it in prod.

    Example::

        >>> Redactor().redact_text("patient Sarah Murphy, MRN: 97727665")
        'patient [REDACTED:NAME], MRN: [REDACTED:MRN]'
    """

    __slots__ = (
        "_clean_cache",
        "_email",
        "_extra_keys",
        "_extra_patterns",
        "_extra_words",
        "_group_kinds",
        "_ipv6",
        "_key",
        "_key_cache",
        "_rules_by_stem",
        "_stem_trie",
        "_stem_trie_ci",
        "_title_group",
        "_value_kinds",
        "_values",
        "defaults",
    )

    def __init__(  # noqa: PLR0915 - every table is built here, once
        self,
        *,
        key: str | bytes | None = None,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        defaults: bool = True,
    ) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        if self._key is not None and not self._key:
            raise ValueError("Redactor key must not be empty")
        self.defaults = defaults
        self._extra_keys = frozenset(_normalise_key(k) for k in extra_keys if k.strip())
        try:
            self._extra_patterns = tuple(re.compile(p) for p in extra_patterns if p)
        except re.error as exc:
            raise ValueError(f"invalid redaction pattern {exc.pattern!r}: {exc}") from None
        self._key_cache: dict[str, str | None] = {}
        self._clean_cache: set[str] = set()

        # stem -> [(rule source, group prefix, kind, snake_ok)]
        stems: dict[str, list[tuple[str, str, str, bool]]] = {}
        group_kinds: dict[str, str] = {}
        if defaults:
            for i, rule in enumerate(patterns.LABEL_RULES):
                source = patterns.label_rule_source(rule, i)
                for suffix in "qstru":
                    group_kinds[f"v{i}{suffix}"] = rule.kind
                for stem in rule.stems:
                    stems.setdefault(stem, []).append((source, f"v{i}", rule.kind, rule.snake_ok))
        self._extra_words = frozenset(k.lower() for k in extra_keys if k.strip())
        if self._extra_words:
            words = sorted(self._extra_words, key=len, reverse=True)
            label = "|".join(re.escape(w) for w in words)
            q = patterns.QUOTED_VALUE.format(g="x")
            source = (
                f"(?i:{label})(?![A-Za-z0-9])(?:{patterns.SEP_EQ}|[\"']?[ \t]*:[ \t]*)"
                f"(?:{q}|(?P<xr>{patterns.RUN_VALUE}))"
            )
            group_kinds.update(xq="CUSTOM", xs="CUSTOM", xr="CUSTOM")
            for w in words:
                stems.setdefault(w, []).append((source, "x", "CUSTOM", True))
        self._group_kinds = group_kinds
        # Per stem, its rules (and those of every shorter stem it starts with: "patients" ->
        # "patient") as one alternation, so a hit costs one anchored match; a second regex holds
        # only the rules allowed after an unrelated ``word_`` (``x_mrn`` yes, ``service_name`` no).
        compiled: dict[tuple[str, ...], re.Pattern[str] | None] = {}

        def combine(sources: tuple[str, ...]) -> re.Pattern[str] | None:
            if not sources:
                return None
            if sources not in compiled:
                compiled[sources] = re.compile("|".join(f"(?:{src})" for src in sources))
            return compiled[sources]

        by_stem: dict[str, tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = {}
        for stem in stems:
            rules: list[tuple[str, str, str, bool]] = []
            for other, other_rules in stems.items():
                if stem.startswith(other):
                    rules.extend(r for r in other_rules if r not in rules)
            all_sources = tuple(dict.fromkeys(r[0] for r in rules))
            snake_sources = tuple(dict.fromkeys(r[0] for r in rules if r[3]))
            by_stem[stem] = (combine(all_sources), combine(snake_sources))
        self._rules_by_stem = by_stem
        options = {
            stem: (len(stem) <= 4 or stem in self._extra_words, not any(r[3] for r in stems[stem]))
            for stem in stems
        }
        trie = patterns.build_trie(options) if stems else None
        self._stem_trie = re.compile(trie) if trie else None
        # For text whose lower-casing changes its length (rare non-ASCII): same trie, no lowering.
        self._stem_trie_ci = re.compile(trie, re.IGNORECASE) if trie else None
        if defaults:
            self._values: re.Pattern[str] | None = re.compile(patterns.VALUE_SCAN)
            self._value_kinds = {f"w{i}": kind for i, (kind, _) in enumerate(patterns.ANCHORED_VALUE_RULES)}
            self._value_kinds["title"] = "NAME"
            self._title_group = f"w{len(patterns.ANCHORED_VALUE_RULES) - 1}"
            self._email: re.Pattern[str] | None = re.compile(patterns.EMAIL_RULE)
            self._ipv6: re.Pattern[str] | None = re.compile(patterns.IPV6_RULE)
        else:
            self._values = self._email = self._ipv6 = None
            self._title_group = ""
            self._value_kinds = {}

    # ------------------------------------------------------------------ public API

    def redact_text(self, text: str) -> str:
        """``text`` with the PHI in it replaced. The common case, no PHI, returns ``text`` itself."""
        return self._redact_text(text, None)

    def redact_text_counted(self, text: str, counts: dict[str, int]) -> str:
        """Like :meth:`redact_text`, adding the number of values redacted per kind to ``counts``."""
        return self._redact_text(text, counts)

    def redact_value(self, text: str) -> str:
        """:meth:`redact_text` for short strings that repeat (attribute values, span names): a
        string found clean is remembered, so the next time it costs one set lookup."""
        return self._redact_remembered(text, None)

    def redact_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``mapping``, values redacted by key name (``ssn``, ``patient_name``...) and by value."""
        return self._redact_mapping(mapping, None)

    def redact(self, value: Any) -> Any:
        """Redact a string, or the strings in a mapping/list/tuple recursively; other values unchanged."""
        return self._redact_any(value, None)

    def redact_counted(self, value: Any, counts: dict[str, int]) -> Any:
        """Like :meth:`redact`, adding the number of values redacted per kind to ``counts``."""
        return self._redact_any(value, counts)

    def key_kind(self, key: str) -> str | None:
        """The PHI kind a mapping key names, or None (cached)."""
        cached = self._key_cache.get(key, "")
        if cached != "":
            return cached
        kind: str | None = None
        if self._extra_keys and _normalise_key(key) in self._extra_keys:
            kind = "CUSTOM"
        elif self.defaults:
            kind = patterns.classify_key(key)
        if len(self._key_cache) < _KEY_CACHE_MAX:
            self._key_cache[key] = kind
        return kind

    # ------------------------------------------------------------------ replacement

    def token(self, kind: str, value: str) -> str:
        """The replacement for ``value``: ``[REDACTED:KIND]`` or ``kind:<12 hex of HMAC-SHA256>``."""
        if self._key is None:
            return f"[REDACTED:{kind}]"
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"{kind.lower()}:{digest[:12]}"

    def _mask(self, kind: str, value: str, counts: dict[str, int] | None) -> str:
        """Replace ``value`` but keep whitespace around it and never-redacted tokens inside it."""
        # Every never-redacted token is 16+ characters or holds ":" or "[": skip the scan otherwise.
        if (len(value) < 16 and ":" not in value and "[" not in value) or HARD_PROTECTED.search(
            value
        ) is None:
            return self._mask_piece(kind, value, counts)
        out: list[str] = []
        last = 0
        for m in HARD_PROTECTED.finditer(value):
            out.append(self._mask_piece(kind, value[last : m.start()], counts))
            out.append(m.group())
            last = m.end()
        out.append(self._mask_piece(kind, value[last:], counts))
        return "".join(out)

    def _mask_piece(self, kind: str, piece: str, counts: dict[str, int] | None) -> str:
        if piece and not (piece[0].isspace() or piece[-1].isspace()):
            if not piece.strip(_NOT_ALNUM):
                return piece
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            return self.token(kind, piece)
        core = piece.strip()
        if not core or _ALNUM.search(core) is None:
            return piece
        if counts is not None:
            counts[kind] = counts.get(kind, 0) + 1
        lead = piece[: len(piece) - len(piece.lstrip())]
        trail = piece[len(piece.rstrip()) :]
        return f"{lead}{self.token(kind, core)}{trail}"

    def _mask_whole(self, kind: str, value: Any, counts: dict[str, int] | None) -> Any:
        """A value under a PHI key: replaced whole, whatever its shape."""
        if isinstance(value, str):
            core = value.strip()
            if not core or _KEEP_WHOLE.fullmatch(core) or core.lower() in ("null", "none"):
                return value
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            return self.token(kind, core)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, (int, float)):
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            return self.token(kind, str(value))
        if isinstance(value, Mapping):
            return {k: self._mask_whole(kind, v, counts) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._mask_whole(kind, v, counts) for v in value)
        return self._redact_any(value, counts)

    # ------------------------------------------------------------------ structures

    def _redact_remembered(self, text: str, counts: dict[str, int] | None) -> str:
        clean = self._clean_cache
        if text in clean:
            return text  # found clean before: nothing to count either
        result = self._redact_text(text, counts)
        if result is text and len(text) <= _CLEAN_CACHE_MAX_LEN:
            if len(clean) >= _CLEAN_CACHE_MAX:
                clean.clear()  # bounded: a service with endless distinct values just re-checks them
            clean.add(text)
        return result

    def _redact_any(self, value: Any, counts: dict[str, int] | None) -> Any:
        if isinstance(value, str):
            return self._redact_remembered(value, counts)
        if isinstance(value, Mapping):
            return self._redact_mapping(value, counts)
        if isinstance(value, list):
            return [self._redact_any(v, counts) for v in value]
        if isinstance(value, tuple):
            items = [self._redact_any(v, counts) for v in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        return value

    def _redact_mapping(self, mapping: Mapping[Any, Any], counts: dict[str, int] | None) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for k, v in mapping.items():
            kind = self.key_kind(k if isinstance(k, str) else str(k))
            out[k] = self._mask_whole(kind, v, counts) if kind is not None else self._redact_any(v, counts)
        return out

    # ------------------------------------------------------------------ text

    def _redact_text(self, text: str, counts: dict[str, int] | None) -> str:
        # The hot path, inlined: most lines have no stem word, no value shape, no "@", no HL7
        # header; two scans in C say so and the line is returned as it came. Every string goes
        # through here: the message, each ``extra`` value, span attributes.
        if not text:
            return text
        trie = self._stem_trie
        values = self._values
        if trie is None or values is None or self._extra_patterns or not text.isascii() or "MSH" in text:
            return self._redact_slow(text, counts)
        spaced_lower = " " + text.lower()
        first_label = trie.search(spaced_lower)
        spaced = " " + text
        first_value = values.search(spaced)
        if (
            first_label is None
            and first_value is None
            and "@" not in text
            and "::" not in text
            and text.count(":") < 7
        ):
            return text
        try:  # the scans resume where the first hits were found
            return self._redact_plain(text, counts, (spaced_lower, first_label), (spaced, first_value))
        except Exception as exc:  # noqa: BLE001 - logging must not raise; _withheld re-raises in tests
            return self._withheld(exc)

    def _redact_slow(self, text: str, counts: dict[str, int] | None) -> str:
        """HL7, non-ASCII text, custom patterns, or rules off: no shortcut applies."""
        try:
            if "MSH" in text and self.defaults:
                result = hl7.redact_hl7(
                    text,
                    lambda kind, value: self._mask(kind, value, counts),
                    lambda part: self._redact_plain(part, counts),
                )
                if result is not None:
                    return result
            return self._redact_plain(text, counts)
        except Exception as exc:  # noqa: BLE001 - logging must not raise; _withheld re-raises in tests
            return self._withheld(exc)

    @staticmethod
    def _withheld(exc: Exception) -> str:
        """Telemetry never raises into the application, and a value we could not check is not let
        through: it is withheld whole. Under our own test suite the error re-raises."""
        from lumen_otel import _guard

        if _guard.strict():
            raise exc
        _guard.report_rate_limited(
            "redaction-error", "redaction failed (%s); the value was withheld", type(exc).__name__
        )
        return "[REDACTED:UNPROCESSABLE]"

    def _redact_plain(
        self,
        text: str,
        counts: dict[str, int] | None,
        label_hint: tuple[str, re.Match[str] | None] | None = None,
        value_hint: tuple[str, re.Match[str] | None] | None = None,
    ) -> str:
        """Text rules (no HL7): collect edits from value and labelled rules, resolve, apply.

        The common case - no stem word, no value shape - costs a lower-casing, one trie scan and
        one character-class scan, all in C, and returns ``text`` itself.
        """
        if not text:
            return text
        # (start, -end, priority, kind): sorted as they stand, the earliest then longest edit comes
        # first and a labelled edit (priority 0) beats a context-free one (1) over the same span.
        edits: list[tuple[int, int, int, str]] = []
        trie = self._stem_trie
        if label_hint is not None:  # redact_text already scanned up to the first stem
            spaced_lower, first = label_hint
            if first is not None and trie is not None:
                self._label_edits(text, spaced_lower, trie, edits, first.start())
        elif trie is not None:
            spaced_lower = " " + text.lower()
            if len(spaced_lower) != len(text) + 1:
                trie, spaced_lower = self._stem_trie_ci, " " + text
            assert trie is not None
            self._label_edits(text, spaced_lower, trie, edits, 0)
        if self._values is not None:
            if value_hint is not None:
                spaced, first_value = value_hint
                self._value_edits(text, edits, spaced, -1 if first_value is None else first_value.start())
            else:
                self._value_edits(text, edits, " " + text, 0)
        hard: list[tuple[int, int]] | None = None
        for pattern in self._extra_patterns:
            for m in pattern.finditer(text):
                start, end = m.span()
                if end == start:
                    continue
                if hard is None:
                    hard = [h.span() for h in HARD_PROTECTED.finditer(text)]
                if not any(s < end and start < e for s, e in hard):  # custom rules never cut into ids
                    edits.append((start, -end, 2, "CUSTOM"))
        if not edits:
            return text
        edits.sort()
        out: list[str] = []
        pos = 0
        mask = self._mask
        for start, neg_end, _priority, kind in edits:
            if start < pos:
                continue  # overlaps an edit already made: the earlier (then longer) one wins
            out.append(text[pos:start])
            pos = -neg_end
            out.append(mask(kind, text[start:pos], counts))
        if pos == 0:
            return text
        out.append(text[pos:])
        return "".join(out)

    def _value_edits(self, text: str, edits: list[tuple[int, int, int, str]], spaced: str, pos: int) -> None:
        """Context-free shapes: one anchored scan, plus e-mail and IPv6 when plausible."""
        values = self._values
        assert values is not None
        kinds = self._value_kinds
        title = self._title_group
        for m in values.finditer(spaced, pos) if pos >= 0 else ():
            group = m.lastgroup or ""
            if group == title:
                group = "title"
            start, end = m.span(group)
            start -= 1  # the scan ran over " " + text
            end -= 1
            if "." in text[start:end]:  # only dotted shapes can collide with a version or duration
                soft = SOFT_AT.match(text, start)
                if soft is not None and soft.end() >= end:
                    continue
            if text[max(0, start - 26) : start].rstrip(" \t\"':=").lower().endswith(patterns.SOFT_LABELS):
                continue  # status=200, correlation_id=..., HTTP/1.1 503
            if kinds[group] == "IP" and text.startswith("127.", start):
                continue  # loopback names this machine, never a person (access logs stay readable)
            if not _touches_protected(text, start, end):
                edits.append((start, -end, 1, kinds[group]))
        at = text.find("@")
        if at != -1:
            email = self._email
            assert email is not None
            while at != -1:
                # Walk back over the local part, then match forwards: no scan of the whole line.
                start = at
                while start > 0 and at - start < 65 and text[start - 1] in _EMAIL_LOCAL:
                    start -= 1
                found = email.match(text, start) if start < at else None
                if found is not None and not _touches_protected(text, found.start(), found.end()):
                    edits.append((found.start(), -found.end(), 1, "EMAIL"))
                at = text.find("@", found.end() if found is not None else at + 1)
        if "::" in text or text.count(":") >= 7:
            assert self._ipv6 is not None
            for m in self._ipv6.finditer(text):
                value = m.group()
                if (
                    any(ch.isdigit() for ch in value)
                    and value not in ("::", "::1")
                    and not _touches_protected(text, m.start(), m.end())
                ):
                    edits.append((m.start(), -m.end(), 1, "IP"))

    def _label_edits(
        self,
        text: str,
        spaced_lower: str,
        trie: re.Pattern[str],
        edits: list[tuple[int, int, int, str]],
        pos: int,
    ) -> None:
        """Labelled rules, tried anchored where the trie found a stem (``spaced_lower`` = " " + lower)."""
        rules_by_stem = self._rules_by_stem
        group_kinds = self._group_kinds
        length = len(text)
        done = 0  # end of the last labelled value: stems inside it ("Birth date 1954-...") are skipped
        for m in trie.finditer(spaced_lower, pos):
            pos = m.start()  # the stem's index in ``text`` (the leading space shifts by one)
            if pos < done:
                continue
            stem = m.group()[1:]
            combined = rules_by_stem.get(stem)
            if combined is None:
                combined = rules_by_stem.get(stem.lower())  # the trie ran over text of mixed case
                if combined is None:
                    continue
                stem = stem.lower()
            before = text[pos - 1] if pos else " "
            if before in "_.-":
                word_start = pos - 1
                while word_start > 0 and text[word_start - 1].isalpha():
                    word_start -= 1
                person = text[word_start : pos - 1].lower() in patterns.PERSON_WORDS
                rule = combined[0] if person else combined[1]
            else:
                rule = combined[0]
            if rule is None:
                continue
            end_of_stem = pos + len(stem)
            if (end_of_stem < length and text[end_of_stem] == ":" and HARD_PROTECTED.match(text, pos)) or (
                before == ":" and HARD_PROTECTED.match(text, _word_start(text, pos - 1))
            ):
                continue  # the stem is part of one of our own pseudonyms ("mrn:0a1b2c3d4e5f")
            hit = rule.match(text, pos)
            if hit is None:
                continue
            group = hit.lastgroup
            if group is None:
                continue
            start, end = hit.span(group)
            if _touches_protected(text, start, end):
                continue
            kind = group_kinds[group]
            if text[start].isdigit():
                # A number that begins a duration or version ("= 5 ms"): only if something follows.
                if end < length and text[end] in _SOFT_NEXT:
                    soft = SOFT_AT.match(text, start)
                    if soft is not None and soft.end() > end:
                        continue
                if kind == "NAME":
                    kind = "MRN"  # ?patient=12345
            edits.append((start, -end, 0, kind))
            done = end


def _touches_protected(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` cuts into a never-redacted token (a pseudonym, a UUID, a timestamp).

    A token wholly inside the value is fine (:meth:`Redactor._mask` keeps it). Rules cannot start
    or stop inside a word, so only a token joined on by ``:``, ``-``, a bracket or a time can be
    cut; the regex runs only then.
    """
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if not (
        (before and before in ":-]}")
        or (after and after in ":-[{T.")
        or (after == " " and text[end + 1 : end + 2].isdigit())
    ):
        return False
    for m in HARD_PROTECTED.finditer(text, max(0, start - 60), min(len(text), end + 60)):
        if m.start() < end and start < m.end() and (m.start() < start or m.end() > end):
            return True
    return False


def _word_start(text: str, pos: int) -> int:
    while pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
        pos -= 1
    return pos


def _normalise_key(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


_default: Redactor | None = None


def get_default_redactor() -> Redactor:
    """The process-wide redactor (built-in rules, no key until ``configure_logging`` sets one)."""
    global _default  # noqa: PLW0603 - one process-wide default, replaced by configure_logging
    if _default is None:
        _default = Redactor()
    return _default


def set_default_redactor(redactor: Redactor) -> None:
    """Replace the process-wide redactor (``configure_logging`` does, with the configured key)."""
    global _default  # noqa: PLW0603
    _default = redactor


def redact(value: Any) -> Any:
    """Redact PHI from a string, or from a dict/list recursively, with the default redactor.

    >>> redact({"ssn": "123-45-6789", "status": 200})
    {'ssn': '[REDACTED:SSN]', 'status': 200}
    """
    return get_default_redactor().redact(value)
