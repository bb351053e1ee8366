"""PHI redaction: :class:`Redactor` and :func:`redact`.

The logging pipeline calls :meth:`Redactor.redact_text` once per record on the formatted message
and :meth:`Redactor.redact_mapping` on the ``extra`` values; spans go through
:class:`lumen_otel._redaction.spans.RedactingSpanExporter`. See ``docs/redaction.md``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import hmac
import itertools
import re
import string
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, TypeVar

from lumen_otel._redaction import hl7, patterns, prune
from lumen_otel._redaction import names as _names
from lumen_otel._redaction.patterns import HARD_PROTECTED, SOFT_AT
from lumen_otel._state import STATE

__all__ = ["Redactor", "get_default_redactor", "redact", "set_default_redactor"]

_T = TypeVar("_T")

# A value under a PHI key is kept whole only when it is an id we never redact or one of our tokens.
_KEEP_WHOLE = re.compile(
    r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"
    r"|[0-9a-fA-F]{32}|(?=[0-9]{0,15}[a-fA-F])[0-9a-fA-F]{16}"
    r"|\[REDACTED:[A-Z_]{1,24}\]|(?:" + "|".join(k.lower() for k in patterns.KINDS) + r"):[0-9a-f]{12}"
)
_ALNUM = re.compile(r"[^\W_]")
_OUR_TOKEN = re.compile(
    r"\[REDACTED:[A-Z_]{1,24}\]|(?:" + "|".join(k.lower() for k in patterns.KINDS) + r"):[0-9a-f]{12}"
)
_NOT_ALNUM = string.punctuation + string.whitespace
_ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)
_SOFT_NEXT = frozenset(" .nums\u00b5h")
_DIGITS = string.digits
_LOWER_HEX = frozenset("0123456789abcdef")
_SOFT_SEPARATORS = " \t\"':="
_SOFT_LAST = frozenset(ch for label in patterns.SOFT_LABELS for ch in (label[-1], label[-1].upper()))
_EMAIL_LOCAL_CHARS = string.ascii_letters + string.digits + "._%+-"
_KEY_CACHE_MAX = 4096
#: values ``_redact_any`` returns as they are
_SCALARS = frozenset((int, float, bool, type(None)))
# An edit: (start, -end, priority, kind, check); see Redactor._redact_plain.
_Edit = tuple[int, int, int, str, bool]
# Strings found clean are remembered (bounded): ``extra`` values, span names and attributes repeat
# on every record (routes, methods, host names, status words), messages rarely do.
_CLEAN_CACHE_MAX = 4096
_CLEAN_CACHE_MAX_LEN = 256
# Characters that stand in for ASCII ones to the eye (no-break and thin spaces, Unicode hyphens
# and dashes, full-width digits and punctuation), folded one for one before the rules run.
_LOOKALIKES = {
    **{cp: " " for cp in (0x00A0, 0x2007, 0x2008, 0x2009, 0x200A, 0x202F, 0x205F, 0x3000, 0x1680)},
    **{cp: "-" for cp in (0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE63, 0xFF0D)},
    **{0xFF10 + i: str(i) for i in range(10)},
    **{0xFF08: "(", 0xFF09: ")", 0xFF0E: ".", 0xFF0F: "/", 0xFF1A: ":", 0xFF0B: "+", 0xFF20: "@"},
}


def _unruled_edit(text: str, pos: int, stem: str, edits: list[_Edit]) -> None:
    """After a label its rules did not take: ``MRN-12345`` (a hyphen is no separator for the
    label rules, too many ids have one) and a name typed in lower case after an explicit label
    (``patient: sarah murphy``), taken only when its first word is a known first name."""
    if stem.startswith("mr"):
        mrn = _MRN_HYPHEN.match(text, pos)
        if mrn is not None:
            edits.append((mrn.start(1), -mrn.end(1), 0, "MRN", False))
        return
    ahead = text[pos : pos + 24]
    name = _LOWER_NAME.match(text, pos) if ":" in ahead or "=" in ahead else None
    if name is not None:
        words = name.group(1).split()
        if words[0] in _first_names() and not any(w in _NOT_NAMES for w in words):
            edits.append((name.start(1), -name.end(1), 0, "NAME", False))


_UNRULED_STARTS = frozenset(("mr", "pa", "pt", "na", "fu"))
_MRN_HYPHEN = re.compile(r"(?i:mrn)-(\d{4,12})(?![\w-])")
_LOWER_NAME = re.compile(
    r"(?i:patient(?:[ _]?name)?|pt|(?:full[ _]?)?name)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"([a-z][a-z'-]{1,20}(?:[ \t]+[a-z][a-z'-]{1,20}){1,2})(?![A-Za-z0-9_-])"
)
# First-name spellings that are also everyday or clinical words.
_NOT_NAMES = frozenset(
    (
        "will", "may", "mark", "bill", "grant", "rose", "faith", "hope", "joy", "june", "april", "art",
        "dawn", "guy", "pat", "sue", "ray", "chase", "case", "page", "gay", "lane", "low", "long", "young",
        "white", "black", "brown", "green", "gray", "king", "major", "frank", "sunny", "summer", "is",
        "was", "has", "had", "not", "no", "none", "stable", "alert", "seen", "admitted", "discharged",
        "denies", "reports",
    )
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    """Lower-case first names (US Census list shipped with the package); empty if it is missing."""
    try:
        data = resources.files("lumen_otel._redaction").joinpath("data/first_names.txt.gz").read_bytes()
        return frozenset(gzip.decompress(data).decode("utf-8").split())
    except (OSError, ValueError):
        return frozenset()


# The tail of an SSN, "-45-6789" (the three digits before it are checked where it is found).
_GLUE = frozenset(string.ascii_letters + "_")  # after anything else the value scan finds the SSN
_GLUE_WORD = string.ascii_letters + "_"
# ... but not in a host name or an address ("a@b.x123-45-6789"): the token would join the word.
_GLUE_NOT_AFTER = frozenset(".@")
_GLUED_SSN = re.compile(r"-\d\d-\d{4}(?![0-9-])")
# A printable ASCII character written as %XX (query strings, form bodies, paths).
_PERCENT = re.compile("%[2-7][0-9A-Fa-f]")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")


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
        hl7_fields: HL7 fields to mask besides the built-in table, per segment: ``{"ZPI": {3: "MRN",
            5: "NAME"}}`` (a kind, or ``"TEXT"`` for the text rules only). Fields of Z-segments not
            listed are masked by the data type their content shows (``LAST^FIRST``, an address,
            a phone, ``id^^^AUTH^MR``, a date).

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
        "_hl7_fields",
        "_ipv6",
        "_key",
        "_key_cache",
        "_names",
        "_rules_by_stem",
        "_stem_trie",
        "_stem_trie_ci",
        "_title_group",
        "_tokens",
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
        hl7_fields: Mapping[str, Mapping[int, str]] | None = None,
        unlabelled_names: bool = False,
    ) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        # names and places with no label before them (word lists and shapes): opt-in, it costs
        # several times the label rules on lines with capitalised words
        self._names = _names.NameDetector() if unlabelled_names else None
        if self._key is not None and not self._key:
            raise ValueError("Redactor key must not be empty")
        self.defaults = defaults
        self._extra_keys = frozenset(_normalise_key(k) for k in extra_keys if k.strip())
        try:
            self._extra_patterns = tuple(re.compile(p) for p in extra_patterns if p)
        except re.error as exc:
            raise ValueError(f"invalid redaction pattern {exc.pattern!r}: {exc}") from None
        self._key_cache: dict[str, str | None] = {}
        # Without a key every token is fixed: looked up, not formatted, per edit.
        self._tokens = {kind: f"[REDACTED:{kind}]" for kind in patterns.KINDS} if self._key is None else None
        self._clean_cache: set[str] = set()
        kinds = (*patterns.KINDS, "TEXT")
        for seg, table in (hl7_fields or {}).items():
            for kind in table.values():
                if kind not in kinds:
                    raise ValueError(f"HL7 field kind {kind!r} in {seg} is not one of {', '.join(kinds)}")
        self._hl7_fields = hl7.fields_with(hl7_fields) if hl7_fields else hl7.FIELDS

        # stem -> [(rule source, group prefix, kind, snake_ok)]
        stems: dict[str, list[tuple[str, str, str, bool]]] = {}
        group_kinds: dict[str, str] = {}
        rule_of_source: dict[str, int] = {}
        if defaults:
            for i, rule in enumerate(patterns.LABEL_RULES):
                source = patterns.label_rule_source(rule, i)
                rule_of_source[source] = i
                for suffix in "qstru":
                    group_kinds[f"v{i}{suffix}"] = rule.kind
                for stem in rule.stems:
                    stems.setdefault(stem, []).append((source, f"v{i}", rule.kind, rule.snake_ok))
            # Words with no rule of their own that send a line past the shortcut: degrees after a
            # signed name ("Mike Ivan, MD"), found by the clinical-note rules (_NOTE_RULES).
            for hint in patterns.NOTE_HINT_STEMS:
                stems.setdefault(hint, [])
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
        # Each built-in rule's label is narrowed to the spellings that can start with the stem
        # (prune.py): the "patient" regex no longer walks through "first", "maiden", "guardian"...
        # Built on a stem's first hit: a process compiles only the stems its logs contain.
        specs: dict[str, tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]] = {}
        for stem in stems:
            rules: list[tuple[str, str, str, bool]] = []
            for other, other_rules in stems.items():
                if stem.startswith(other):
                    rules.extend(r for r in other_rules if r not in rules)
            all_sources = tuple(dict.fromkeys(r[0] for r in rules))
            snake_sources = tuple(dict.fromkeys(r[0] for r in rules if r[3]))
            specs[stem] = (
                tuple((src, rule_of_source.get(src, -1)) for src in all_sources),
                tuple((src, rule_of_source.get(src, -1)) for src in snake_sources),
            )
        by_stem = _StemRules(specs)
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

    def redact(self, value: _T) -> _T:
        """Redact a string, or the strings in a mapping/list/tuple recursively; other values unchanged.

        The result has the type of ``value`` (a mapping comes back as a ``dict``)."""
        return self._redact_any(value, None)  # type: ignore[no-any-return]

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

    def _mask_unlabelled(self, text: str, counts: dict[str, int] | None) -> str:
        """``text`` with the names and places :class:`~lumen_otel._redaction.names.NameDetector`
        finds (no label before them) replaced; the label rules run on the result."""
        assert self._names is not None
        spans = self._names.find(text)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end, kind in spans:
            parts.append(text[last:start])
            parts.append(self.token(kind, text[start:end]))
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            last = end
        parts.append(text[last:])
        return "".join(parts)

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

    def _spread(self, text: str, seen: Mapping[str, str], counts: dict[str, int] | None) -> str:
        """``text`` with each value of ``seen`` (value -> kind) masked where it stands as a word."""
        present = [v for v in seen if v in text]
        if not present:
            return text
        pattern = _values_pattern(tuple(sorted(present, key=len, reverse=True)))

        def replace(m: re.Match[str]) -> str:
            kind = seen[m.group()]
            if counts is not None:
                counts[kind] = counts.get(kind, 0) + 1
            return self.token(kind, m.group())

        return pattern.sub(replace, text)

    def _mask_identifier(self, kind: str, value: str, counts: dict[str, int] | None) -> str:
        """A value a structured field says is PHI: replaced whole, even a UUID or a span-id shape."""
        core = value.strip()
        if not core or _ALNUM.search(core) is None or _OUR_TOKEN.fullmatch(core):
            return value
        if counts is not None:
            counts[kind] = counts.get(kind, 0) + 1
        lead = value[: len(value) - len(value.lstrip())]
        return f"{lead}{self.token(kind, core)}{value[len(value.rstrip()) :]}"

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
        # Every log record's ``extra`` comes through here: the cached key kinds, the clean-string
        # memory and the scalar types are checked inline before any method call.
        out: dict[Any, Any] = {}
        key_cache = self._key_cache
        clean = self._clean_cache
        seen: dict[str, str] | None = None
        for k, v in mapping.items():
            kind = key_cache.get(k, "") if type(k) is str else ""
            if kind == "":
                kind = self.key_kind(k if isinstance(k, str) else str(k))
            if kind is not None:
                out[k] = self._mask_whole(kind, v, counts)
                if type(v) is str and kind in _SPREAD_KINDS:
                    seen = _remember(seen, kind, v)
            elif type(v) is str:
                out[k] = v if v in clean else self._redact_remembered(v, counts)
            elif type(v) in _SCALARS:
                out[k] = v
            else:
                out[k] = self._redact_any(v, counts)
        value = out.get("value")
        if type(value) is str and ("system" in mapping or "type" in mapping):
            kind = _identifier_kind_of(mapping)
            if kind is not None:
                out["value"] = self._mask_whole(kind, value, counts)
        if seen is not None:
            # A value under a PHI key is masked in the other values too ({"mrn": "97727665",
            # "note": "merged 97727665"}).
            for k, v in out.items():
                if isinstance(v, (str, list, dict)):
                    out[k] = self._spread_any(v, seen, counts)
        return out

    def _spread_any(self, value: Any, seen: Mapping[str, str], counts: dict[str, int] | None) -> Any:
        if isinstance(value, str):
            return self._spread(value, seen, counts)
        if isinstance(value, list):
            return [self._spread_any(v, seen, counts) for v in value]
        if isinstance(value, dict):
            return {k: self._spread_any(v, seen, counts) for k, v in value.items()}
        return value

    def redact_record(
        self, message: str, extras: Mapping[str, Any], *texts: str
    ) -> tuple[str, dict[str, Any], tuple[str, ...]]:
        """A log record's message, ``extra`` values and further texts (an exception message, a
        traceback) redacted together: a value found in one of them (after a label, under a PHI
        key, in an HL7 field) is masked in all of them.

        >>> Redactor().redact_record("merged 97727665", {"mrn": "97727665"})[0]
        'merged [REDACTED:MRN]'
        """
        seen: dict[str, str] = {}
        for k, v in extras.items():
            kind = self.key_kind(k) if isinstance(k, str) else None
            if kind in _SPREAD_KINDS and isinstance(v, str):
                seen = _remember(seen, kind, v) or seen
        redacted_message = self._redact_text(message, None, seen)
        redacted_extras = self.redact_mapping(extras)
        redacted_texts = tuple(self._redact_text(t, None, seen) for t in texts)
        if not seen:
            return redacted_message, redacted_extras, redacted_texts
        return (
            self._spread(redacted_message, seen, None),
            {k: self._spread_any(v, seen, None) for k, v in redacted_extras.items()},
            tuple(self._spread(t, seen, None) for t in redacted_texts),
        )

    # ------------------------------------------------------------------ text

    def _redact_text(
        self, text: str, counts: dict[str, int] | None, collect: dict[str, str] | None = None
    ) -> str:
        # The hot path, inlined: most lines have no stem word, no value shape, no "@", no HL7
        # header; two scans in C say so and the line is returned as it came. Every string goes
        # through here: the message, each ``extra`` value, span attributes.
        if not text:
            return text
        if self._names is not None:  # after the label rules, which see the text as written
            return self._mask_unlabelled(self._redact_labelled(text, counts, collect), counts)
        return self._redact_labelled(text, counts, collect)

    def _redact_labelled(
        self, text: str, counts: dict[str, int] | None, collect: dict[str, str] | None = None
    ) -> str:
        if "%" in text and self.defaults and _PERCENT.search(text) is not None:
            percent = self._redact_percent(text, counts, collect)
            if percent is not None:
                return percent
        trie = self._stem_trie
        values = self._values
        if (
            trie is None
            or values is None
            or self._extra_patterns
            or not text.isascii()
            or "MSH" in text
            or ("|" in text and hl7.has_segment(text))
        ):
            return self._redact_slow(text, counts, collect)
        spaced_lower = " " + text.lower()
        first_label = trie.search(spaced_lower)
        value_hint: tuple[str, re.Match[str] | None] | None = None  # a stem: the value scan runs whole
        if first_label is None:
            spaced = " " + text
            first_value = values.search(spaced)
            if (
                first_value is None
                and "@" not in text
                and '":' not in text
                and ("-" not in text or _GLUED_SSN.search(text) is None)
                and "::" not in text
                and text.count(":") < 7
                and "^" not in text
            ):
                return text
            value_hint = (spaced, first_value)
        try:  # the scans resume where the first hits were found
            return self._redact_plain(text, counts, (spaced_lower, first_label), value_hint, None, collect)
        except Exception as exc:  # noqa: BLE001 - logging must not raise; _withheld re-raises in tests
            return self._withheld(exc)

    def _redact_slow(
        self, text: str, counts: dict[str, int] | None, collect: dict[str, str] | None = None
    ) -> str:
        """HL7, non-ASCII text, custom patterns, or rules off: no shortcut applies."""
        try:
            original: str | None = None
            if not text.isascii() and self.defaults:
                # Look-alike characters hide a value from the rules (an SSN with no-break spaces,
                # full-width digits or U+2010 hyphens): the rules run on the text with them folded
                # to ASCII one for one, the parts kept come from the original. Invisible characters
                # carry nothing and are dropped.
                if _INVISIBLE.search(text) is not None:
                    text = _INVISIBLE.sub("", text)
                folded = text.translate(_LOOKALIKES)
                if folded != text:
                    original, text = text, folded
            if ("MSH" in text or "|" in text) and self.defaults:
                result = hl7.redact_hl7(
                    text,
                    lambda kind, value: self._mask(kind, value, counts),
                    lambda part: self._redact_plain(part, counts, None, None, None, collect),
                    self._hl7_fields,
                    lambda kind, value: self._mask_identifier(kind, value, counts),
                    collect,
                )
                if result is not None:
                    return result
            return self._redact_plain(text, counts, None, None, original, collect)
        except Exception as exc:  # noqa: BLE001 - logging must not raise; _withheld re-raises in tests
            return self._withheld(exc)

    def _redact_percent(
        self, text: str, counts: dict[str, int] | None, collect: dict[str, str] | None
    ) -> str | None:
        """URL-encoded text (``patient%20Sarah%20Murphy``, ``mrn%3D55554444``): the rules run on a
        decoded copy and what they find is masked where it stands in ``text``, its encoding kept
        around it. None when the decoded copy shows nothing (or needs the slow path): the caller
        goes on as for any text."""
        if not text.isascii() or "MSH" in text or ("|" in text and hl7.has_segment(text)):
            return None
        decoded, index = _percent_decoded(text)
        applied: list[tuple[int, int, str]] = []
        found: dict[str, str] = {}
        try:
            self._redact_plain(decoded, counts, None, None, None, found, applied)
        except Exception as exc:  # noqa: BLE001 - logging must not raise; _withheld re-raises in tests
            return self._withheld(exc)
        if not applied:
            return None
        out: list[str] = []
        pos = 0
        for start, end, replacement in applied:
            out.append(text[pos : index[start]])
            out.append(replacement)
            pos = index[end]
        out.append(text[pos:])
        result = "".join(out)
        if not found:
            return result
        if collect is not None:
            collect.update(found)
        return self._spread(result, found, counts)

    def _json_edits(self, text: str, edits: list[_Edit]) -> None:
        """Edits for the PHI values of the JSON in ``text`` (see ``_redact_plain``)."""
        for m in _JSON_PAIR.finditer(text):
            key = m.group("key")
            kind = _FHIR_TEXT_KEYS.get(key) or self.key_kind(key)
            if kind is None:
                continue
            if m.group("one") is not None:
                spans = [m.span("one")]
            else:
                spans = [s.span(1) for s in _JSON_STRING.finditer(text, m.start("many"), m.end("many"))]
            for start, end in spans:
                if _keeps_whole(text[start:end]):
                    continue
                edits.append((start, -end, 0, kind, False))
        if '"value"' in text:
            for m in _FHIR_IDENTIFIER.finditer(text):
                body = m.group()
                kind = _identifier_kind(body)
                value = _JSON_VALUE.search(body) if kind is not None else None
                if kind is not None and value is not None and not _keeps_whole(value.group(1)):
                    start = m.start() + value.start(1)
                    edits.append((start, -(m.start() + value.end(1)), 0, kind, False))

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

    def _redact_plain(  # noqa: PLR0915 - the hot path, inlined on purpose
        self,
        text: str,
        counts: dict[str, int] | None,
        label_hint: tuple[str, re.Match[str] | None] | None = None,
        value_hint: tuple[str, re.Match[str] | None] | None = None,
        original: str | None = None,
        collect: dict[str, str] | None = None,
        applied: list[tuple[int, int, str]] | None = None,
    ) -> str:
        """Text rules (no HL7): collect edits from labelled and value rules, resolve, apply.

        ``original``: ``text`` before look-alike characters were folded (same length); what is
        kept is copied from it.  ``collect`` receives the labelled values found (value -> kind),
        ``applied`` each edit made (start, end, replacement).

        ``label_hint`` / ``value_hint``: ``redact_text`` already ran a scan up to its first hit
        (None: not run); it resumes after it. Everything per hit is inlined: on a PHI-bearing line the
        interpreter's steps between the regex calls cost as much as the regexes themselves.
        """
        if not text:
            return text
        length = len(text)
        # (start, -end, priority, kind, check): sorted as they stand, the earliest then longest edit
        # comes first and a labelled edit (priority 0) beats a context-free one (1) over the same
        # span; ``check`` defers a value hit's context checks (_value_ok) to when it is applied.
        # ``edits.append(...)`` is called as is: Python 3.11 specialises it, a cached bound method not.
        edits: list[_Edit] = []

        # Labelled rules, tried anchored where the trie found a stem (over " " + lower-case text).
        trie = self._stem_trie
        stems: list[re.Match[str]] = []
        if label_hint is not None:
            spaced_lower, first = label_hint
            if first is not None and trie is not None:
                stems = [first, *trie.finditer(spaced_lower, first.end())]
        elif trie is not None:
            spaced_lower = " " + text.lower()
            if len(spaced_lower) != length + 1:
                trie, spaced_lower = self._stem_trie_ci, " " + text
            assert trie is not None
            stems = list(trie.finditer(spaced_lower))
        # Both scans run before any hit is looked at: the regex engine's code stays in the CPU's
        # cache for the whole of them, rather than being evicted by the interpreter's at each hit.
        values = self._values
        found: list[re.Match[str]] = []
        if values is not None:
            if value_hint is None:
                found = list(values.finditer(" " + text))
            else:
                spaced, first_value = value_hint
                if first_value is not None:
                    found = [first_value, *values.finditer(spaced, first_value.end())]
        rules_by_stem = self._rules_by_stem
        compiled_rules = rules_by_stem.compiled
        group_kinds = self._group_kinds
        has_colon = ":" in text
        signed = False
        done = 0  # end of the last labelled value: stems inside it ("Birth date 1954-...") are skipped
        for m in stems:
            # The stem's index in ``text`` (the leading space shifts by one), and where it ends.
            pos, stem_end = m.span()
            if pos < done:
                continue
            stem_end -= 1
            stem = spaced_lower[pos + 1 : stem_end + 1]
            combined = compiled_rules.get(stem)
            if combined is None:  # first use, or mixed case from the case-insensitive trie
                combined, stem = rules_by_stem.resolve(stem)
                if combined is None:
                    continue
            # The character the trie matched before the stem: text[pos - 1] (a non-letter, so its
            # lower-casing is itself), or the leading space at the start of the text.
            before = spaced_lower[pos]
            if before in "_.-":
                word_start = pos - 1
                while word_start > 0 and text[word_start - 1].isalpha():
                    word_start -= 1
                person = text[word_start : pos - 1].lower() in patterns.PERSON_WORDS
                rule = combined[0] if person else combined[1]
            else:
                rule = combined[0]
            if rule is None:
                if combined[1] is None:
                    signed = True  # a stem without rules: a degree ("MD"), see NOTE_HINT_STEMS
                continue
            # The stem is part of one of our own pseudonyms ("mrn:0a1b2c3d4e5f"). Of the
            # never-redacted tokens only a pseudonym can start at a word followed by ":", and its
            # ":" is followed by a lower-case hex digit: "MRN: 123" skips the regex.
            if has_colon and (
                (
                    stem_end + 1 < length
                    and text[stem_end] == ":"
                    and text[stem_end + 1] in _LOWER_HEX
                    and HARD_PROTECTED.match(text, pos)
                )
                or (before == ":" and HARD_PROTECTED.match(text, _word_start(text, pos - 1)))
            ):
                continue
            hit = rule.match(text, pos)
            if hit is None:
                if stem[:2] in _UNRULED_STARTS:
                    _unruled_edit(text, pos, stem, edits)
                continue
            group = hit.lastgroup
            if group is None:
                continue
            start, end = hit.span(group)
            # _touches_protected's own first test, inlined: a value can only cut into a
            # never-redacted token joined on by ":", "-", a bracket or a time.
            after = text[end] if end < length else " "
            if (
                (start and text[start - 1] in ":-]}")
                or after in ":-[{T."
                or (after == " " and end + 1 < length and text[end + 1].isdigit())
            ) and _touches_protected(text, start, end):
                continue
            kind = group_kinds[group]
            if text[start].isdigit():
                # A number that begins a duration or version ("= 5 ms"): only if something follows.
                # SOFT_AT cannot run past a value whose digits are first cut by "-" (no "." in it):
                # dates, SSNs and phone numbers skip the look.
                if after in _SOFT_NEXT and end < length:
                    piece = text[start:end]
                    if "." in piece or not piece.lstrip(_DIGITS).startswith("-"):
                        soft = SOFT_AT.match(text, start)
                        if soft is not None and soft.end() > end:
                            continue
                if kind == "NAME":
                    kind = "MRN"  # ?patient=12345
            edits.append((start, -end, 0, kind, False))
            done = end

        # Context-free shapes: one anchored scan, plus e-mail and IPv6 when plausible.
        if values is not None:
            kinds = self._value_kinds
            title = self._title_group
            for m in found:
                group = m.lastgroup or ""
                if group == title:
                    group = "title"
                start, end = m.span(group)
                # The scan ran over " " + text. The context checks wait until the edit is applied.
                edits.append((start - 1, 1 - end, 1, kinds[group], True))
            if "@" in text:
                at = text.find("@")
                email = self._email
                assert email is not None
                while at != -1:
                    # Back over the local part (at most 65 characters), then match forwards: no scan
                    # of the whole line. rstrip drops the run of local-part characters before "@".
                    low = at - 65 if at > 65 else 0
                    start = low + len(text[low:at].rstrip(_EMAIL_LOCAL_CHARS))
                    address = email.match(text, start) if start < at else None
                    if address is None:
                        at = text.find("@", at + 1)
                        continue
                    start, end = address.span()
                    if not _touches_protected(text, start, end):
                        edits.append((start, -end, 1, "EMAIL", False))
                    at = text.find("@", end)
            if has_colon and ("::" in text or text.count(":") >= 7):
                assert self._ipv6 is not None
                for m in self._ipv6.finditer(text):
                    value = m.group()
                    if (
                        any(ch.isdigit() for ch in value)
                        and value not in ("::", "::1")
                        and not _touches_protected(text, m.start(), m.end())
                    ):
                        edits.append((m.start(), -m.end(), 1, "IP", False))
            # Clinical notes: a name signed with a degree ("Mike Ivan, MD") and dictation dates
            # ("D: 07/20/83"). Looked for only when a degree or such a label is in the text.
            if signed or (has_colon and ("D:" in text or "T:" in text)):
                for m in _NOTE_RULES.finditer(text):
                    group = m.lastgroup or "signed"
                    start, end = m.span(group)
                    edits.append((start, -end, 1, "NAME" if group == "signed" else "DATE", False))

            # An SSN glued to a word ("x123-45-6789", "_123-45-6789_"): the scan above only starts a
            # value after a boundary, so ids ending in digits are not tried against every rule.
            if "-" in text:
                for m in _GLUED_SSN.finditer(text):
                    start = m.start() - 3
                    if (
                        start > 0
                        and text[start - 1] in _GLUE
                        and text[start : m.start()].isdigit()
                        and text[: start - 1].rstrip(_GLUE_WORD)[-1:] not in _GLUE_NOT_AFTER
                    ):
                        edits.append((start, -m.end(), 1, "SSN", False))

            # An HL7 name (LAST^FIRST^M) quoted or assigned in free text: "KOWALSKI^ANNA" not found.
            if "^" in text:
                for m in _QUOTED_XPN.finditer(text):
                    family, _, rest = m.group().partition("^")
                    if not rest.upper().startswith(family.upper()):  # a code and its text: SPO^Spouse
                        edits.append((m.start(), -m.end(), 1, "NAME", False))

        # JSON written into the text (a FHIR resource, a response body): each "key": "value" pair
        # masked as the key would be in ``extra``, and FHIR identifiers by their system or type.
        if '":' in text:
            self._json_edits(text, edits)

        hard: list[tuple[int, int]] | None = None
        for pattern in self._extra_patterns:
            for m in pattern.finditer(text):
                start, end = m.span()
                if end == start:
                    continue
                if hard is None:
                    hard = [h.span() for h in HARD_PROTECTED.finditer(text)]
                if not any(s < end and start < e for s, e in hard):  # custom rules never cut into ids
                    edits.append((start, -end, 2, "CUSTOM", False))
        source = text if original is None else original
        if not edits:
            return source
        edits.sort()
        out: list[str] = []
        pos = 0
        tokens = self._tokens
        masked: list[tuple[str, str]] | None = None
        for start, neg_end, priority, kind, check in edits:
            if start < pos:
                continue  # overlaps an edit already made: the earlier (then longer) one wins
            end = -neg_end
            if check and not _value_ok(text, start, end, kind):
                continue  # checked only now: most value hits lie inside a labelled edit
            out.append(source[pos:start])
            pos = end
            piece = text[start:end]
            if priority == 0 and kind in _SPREAD_KINDS:
                if masked is None:
                    masked = []
                masked.append((kind, piece))
            # The common case of _mask inlined: no space to keep, something to hide, no
            # never-redacted token inside (each is 16+ characters or holds ":" or "[").
            if (
                tokens is not None
                and (
                    (end > start and piece[0] in _ASCII_ALNUM and piece[-1] in _ASCII_ALNUM)
                    or (piece.strip() == piece and piece.strip(_NOT_ALNUM))
                )
                and (
                    (end - start < 16 and ":" not in piece and "[" not in piece)
                    or HARD_PROTECTED.search(piece) is None
                )
            ):
                if counts is not None:
                    counts[kind] = counts.get(kind, 0) + 1
                out.append(tokens[kind])
            else:
                out.append(self._mask(kind, piece, counts))
            if applied is not None:
                applied.append((start, end, out[-1]))
        if pos == 0:
            return source
        out.append(source[pos:])
        result = "".join(out)
        if masked is None:
            return result
        # A value found after its label is masked wherever else it stands in the text
        # ("patient Sarah Murphy ... Murphy called back"): only a value still in the result can be.
        spread: dict[str, str] | None = None
        # Distinct values only, and a bounded number of them: each is looked for in the whole text.
        for kind, piece in (
            masked if len(masked) < 4 else itertools.islice(dict.fromkeys(masked), _SPREAD_MAX)
        ):
            if piece in result or collect is not None or (kind == "NAME" and _reappears(result, piece)):
                spread = _remember(spread, kind, piece)
        if spread is None:
            return result
        if collect is not None:
            collect.update(spread)
        return self._spread(result, spread, counts)


_Rules = tuple[re.Pattern[str] | None, re.Pattern[str] | None]


class _StemRules:
    """stem -> (its rules, those allowed after an unrelated ``word_``), compiled on first use.

    ``compiled`` is a plain dict the hot path reads (a dict subclass's ``[]`` is looked up through
    the MRO on every call); :meth:`resolve` fills it.
    """

    __slots__ = ("_specs", "compiled")

    def __init__(
        self, specs: dict[str, tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]]
    ) -> None:
        self._specs = specs
        self.compiled: dict[str, _Rules] = {}

    def resolve(self, stem: str) -> tuple[_Rules | None, str]:
        """The rules of ``stem`` as the trie found it, else of its lower case (the case-insensitive
        trie finds mixed case), with the stem they belong to; ``(None, stem)`` for no stem."""
        for key in (stem, stem.lower()):
            rules = self.compiled.get(key)
            if rules is None:
                spec = self._specs.get(key)
                if spec is None:
                    continue
                rules = (_combine(key, spec[0]), _combine(key, spec[1]))
                self.compiled[key] = rules
            return rules, key
        return None, stem


def _combine(stem: str, sources: tuple[tuple[str, int], ...]) -> re.Pattern[str] | None:
    narrowed = tuple(
        n for n in (src if i < 0 else _narrowed_rule_source(i, stem) for src, i in sources) if n is not None
    )
    return _compile_alternation(narrowed) if narrowed else None


@functools.lru_cache(maxsize=1024)
def _compile_alternation(sources: tuple[str, ...]) -> re.Pattern[str]:
    """The rules of one stem as one regex; shared by every Redactor (compiling them is slow)."""
    return re.compile("|".join(f"(?:{src})" for src in sources))


@functools.cache
def _narrowed_rule_source(index: int, stem: str) -> str | None:
    """Built-in label rule ``index`` as tried at ``stem``, or None if it cannot match there."""
    rule = patterns.LABEL_RULES[index]
    label = prune.prune_label(rule.label, stem)
    return None if label is None else patterns.label_rule_source(rule, index, label)


def _value_ok(text: str, start: int, end: int, kind: str) -> bool:
    """Whether a context-free value hit stands: not a duration, version, status or loopback."""
    if "." in text[start:end]:  # only dotted shapes can collide with a version or duration
        soft = SOFT_AT.match(text, start)
        if soft is not None and soft.end() >= end:
            return False
    # status=200, correlation_id=..., HTTP/1.1 503. Every soft label ends in one of _SOFT_LAST: look
    # at the character before the separators first, the whole label only when it may be one.
    low = start - 26 if start > 26 else 0
    before = start
    while before > low:
        ch = text[before - 1]
        if ch not in _SOFT_SEPARATORS:
            if (ch in _SOFT_LAST or not ch.isascii()) and text[low:before].lower().endswith(
                patterns.SOFT_LABELS
            ):
                return False
            break
        before -= 1
    if kind == "IP" and (text[start : start + 4] == "127." or text[start] == "0"):
        return False  # loopback and 0.x.x.x name no host of a person (access logs stay readable)
    if kind == "ACCOUNT" and text[start:end].isdigit() and not _luhn(text[start:end]):
        return False
    length = len(text)
    after = text[end] if end < length else " "
    return not (
        (
            (start and text[start - 1] in ":-]}")
            or after in ":-[{T."
            or (after == " " and end + 1 < length and text[end + 1].isdigit())
        )
        and _touches_protected(text, start, end)
    )


_QUOTED_XPN = re.compile(
    r"(?<=[\"'=])[A-Z][A-Za-z'-]+\^[A-Z][A-Za-z'-]+(?:\^[A-Za-z'.-]{0,20}){0,4}(?=[\"'\s,;&)]|$)"
)
_NOTE_RULES = re.compile(
    r"(?<![A-Za-z0-9.])(?P<signed>"
    + patterns.NAME_VALUE
    + "|"
    + patterns.NAME_VALUE_CAPS
    + r"),?[ \t]+(?:M\.D\.?|MD|D\.O\.|R\.?N\.?|N\.?P\.?|PA-C|Ph\.?D\.?)(?![A-Za-z])"
    r"|(?<![A-Za-z0-9])(?:D[DTV]|[DT]):[ \t]*(?P<dictated>" + patterns.DATE_VALUE + ")"
)


#: At most this many distinct values of one text are followed into the rest of it.
_SPREAD_MAX = 64

#: Kinds whose labelled values are masked wherever else they appear in the same text or record.
_SPREAD_KINDS = frozenset(
    ("NAME", "MRN", "SSN", "DOB", "PLAN_ID", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "ID", "PHONE", "FAX")
)


def _reappears(result: str, name: str) -> bool:
    """Whether one of the longer words of ``name`` is still in the redacted text."""
    return any(len(word) >= 4 and word in result for word in name.replace(",", " ").split())


def _remember(seen: dict[str, str] | None, kind: str, value: str) -> dict[str, str] | None:
    """``seen`` with ``value`` (and, for a name, each distinctive word of it) if distinctive."""
    core = value.strip().strip(".,;:'\"")
    if not core or HARD_PROTECTED.fullmatch(core) or _OUR_TOKEN.fullmatch(core):
        return seen
    candidates = [core]
    if kind == "NAME":
        candidates += [
            w for w in core.replace(",", " ").replace("^", " ").split() if len(w) >= 4 and w[0].isupper()
        ]
    for candidate in candidates:
        if hl7.propagates(kind, candidate):
            if seen is None:
                seen = {}
            seen.setdefault(candidate, kind)
    return seen


@functools.lru_cache(maxsize=256)
def _values_pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + ")(?![A-Za-z0-9])")


# A "key": "value" or "key": ["a", "b"] pair of JSON in text (strings up to 200 characters).
_JSON_PAIR = re.compile(
    r'"(?P<key>[A-Za-z_][A-Za-z0-9_.-]{0,40})"[ \t]*:[ \t]*'
    r'(?:"(?P<one>(?:[^"\\\n]|\\.){1,200})"|(?P<many>\[[ \t]*"(?:[^"\\\n]|\\.){1,200}"'
    r'(?:[ \t]*,[ \t]*"(?:[^"\\\n]|\\.){1,200}"){0,20}[ \t]*\]))'
)
_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.){1,200})"')
# FHIR HumanName parts: on their own these keys say little ("family" history), under "name" a name.
_FHIR_TEXT_KEYS = {"family": "NAME", "given": "NAME"}
# A JSON object with a "value" and at most one nested object (a FHIR Identifier and its "type").
# (The runs exclude braces, so they cannot backtrack into each other; possessive quantifiers would
# need Python 3.11.)
_FHIR_IDENTIFIER = re.compile(r"\{[^{}]{0,600}(?:\{[^{}]{0,400}\}[^{}]{0,600})?\}")
_JSON_VALUE = re.compile(r'"value"[ \t]*:[ \t]*"((?:[^"\\\n]|\\.){1,200})"')
_SSN_SYSTEM = re.compile(
    r'"system"[ \t]*:[ \t]*"[^"]{0,200}?(?:ssn|social.?security|2\.16\.840\.1\.113883\.4\.1")'
    r'|"(?:code|text)"[ \t]*:[ \t]*"(?:SSN?|Social Security Number)"',
    re.IGNORECASE,
)
_MRN_SYSTEM = re.compile(
    r'"system"[ \t]*:[ \t]*"[^"]{0,200}?(?:mrn|medical.?record)'
    r'|"(?:code|text)"[ \t]*:[ \t]*"(?:MRN?|Medical Record Number)"',
    re.IGNORECASE,
)


def _identifier_kind(body: str) -> str | None:
    """SSN or MRN for a FHIR Identifier whose system or type names one, else None."""
    if _SSN_SYSTEM.search(body) is not None:
        return "SSN"
    if _MRN_SYSTEM.search(body) is not None:
        return "MRN"
    return None


def _identifier_kind_of(mapping: Mapping[Any, Any]) -> str | None:
    """:func:`_identifier_kind` for a FHIR Identifier given as a mapping."""
    system = mapping.get("system")
    kind_type = mapping.get("type")
    parts = [f'"system": "{system}"'] if isinstance(system, str) else []
    if isinstance(kind_type, Mapping):
        if isinstance(kind_type.get("text"), str):
            parts.append(f'"text": "{kind_type["text"]}"')
        codings = kind_type.get("coding")
        for coding in codings if isinstance(codings, list) else ():
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                parts.append(f'"code": "{coding["code"]}"')
    return _identifier_kind(", ".join(parts)) if parts else None


def _keeps_whole(value: str) -> bool:
    core = value.strip()
    return not core or core.lower() in ("null", "none") or _KEEP_WHOLE.fullmatch(core) is not None


def _percent_decoded(text: str) -> tuple[str, list[int]]:
    """``text`` with each printable %XX decoded, and for each decoded character (and the end) its
    index in ``text``."""
    chars: list[str] = []
    index: list[int] = []
    pos = 0
    for m in _PERCENT.finditer(text):
        start = m.start()
        chars.append(text[pos:start])
        index.extend(range(pos, start))
        chars.append(chr(int(text[start + 1 : start + 3], 16)))
        index.append(start)
        pos = m.end()
    chars.append(text[pos:])
    index.extend(range(pos, len(text) + 1))
    return "".join(chars), index


def _luhn(digits: str) -> bool:
    """Whether ``digits`` ends in a valid Luhn check digit (every card number does)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _touches_protected(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` cuts into a never-redacted token (a pseudonym, a UUID, a timestamp).

    A token wholly inside the value is fine (:meth:`Redactor._mask` keeps it). Rules cannot start
    or stop inside a word, so only a token joined on by ``:``, ``-``, a bracket or a time can be
    cut; the regex runs only then.
    """
    length = len(text)
    before = text[start - 1] if start else ""
    after = text[end] if end < length else ""
    if not (
        (before and before in ":-]}")
        or (after and after in ":-[{T.")
        or (after == " " and end + 1 < length and text[end + 1].isdigit())
    ):
        return False
    for m in HARD_PROTECTED.finditer(text, max(0, start - 60), min(length, end + 60)):
        if m.start() < end and start < m.end() and (m.start() < start or m.end() > end):
            return True
    return False


def _word_start(text: str, pos: int) -> int:
    while pos > 0 and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
        pos -= 1
    return pos


def _normalise_key(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


def get_default_redactor() -> Redactor:
    """The process-wide redactor (built-in rules, no key until ``configure_logging`` sets one)."""
    redactor = STATE.redactor
    if redactor is None:
        redactor = STATE.redactor = Redactor()
    return redactor


def set_default_redactor(redactor: Redactor) -> None:
    """Replace the process-wide redactor (``configure_logging`` does, with the configured key)."""
    STATE.redactor = redactor


def redact(value: _T) -> _T:
    """Redact PHI from a string, or from a dict/list recursively, with the default redactor.

    The result has the type of ``value``: strings stay strings, containers keep their shape and
    values that cannot hold PHI (numbers, ``None``) come back as they are.

    >>> redact({"ssn": "123-45-6789", "status": 200})
    {'ssn': '[REDACTED:SSN]', 'status': 200}
    """
    return get_default_redactor().redact(value)
