"""HL7 v2 awareness: mask identifying fields of a message field by field.

Text patterns alone do badly on HL7: ``Martin^Carol^Q`` has no label, and PID-3 is a bare number.
But the position of a field says what it holds, so inside a message (an ``MSH`` segment, then
segments separated by ``\\r``, ``\\n`` or ``\\r\\n``) the identifying fields of PID, PD1, NK1, GT1,
IN1, IN2, MRG, PV1 (doctors' names), SCH and AIP are masked component by component. Segment names,
MSH-9 (message type), MSH-10 (control ID), coded values and clinical text stay readable; the
fields not in the table still go through the text rules (a name typed into an OBX note, say).

Separators are read from MSH-1/MSH-2, so a sender using ``#`` instead of ``|`` works. A masked
value that would contain a separator is written with HL7 escape sequences. Anything that is not
a well-formed message is left to the text rules; nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["redact_hl7"]

# Components kept (1-based) for each HL7 data type; every other non-empty component is masked.
_CX = frozenset(range(3, 11))  # keep check-digit scheme, assigning authority, identifier type...
_XPN = frozenset(range(7, 15))  # keep name type code and representation
_XCN = frozenset({1, *range(8, 24)})  # keep the provider's ID number, mask the name
_XAD = frozenset({4, 6, 7, 11, 12, 13, 14})  # keep state, country, address type
_XTN = frozenset({2, 3})  # keep use code and equipment type
_TS = frozenset({2})  # keep the precision
_ALL: frozenset[int] = frozenset()
_DLN = frozenset({2})  # keep the issuing state

Spec = tuple[str, frozenset[int]]

#: segment -> field number (1-based, as in the standard) -> (kind, components kept)
FIELDS: dict[str, dict[int, Spec]] = {
    "PID": {
        2: ("MRN", _CX),
        3: ("MRN", _CX),
        4: ("MRN", _CX),
        5: ("NAME", _XPN),
        6: ("NAME", _XPN),
        7: ("DOB", _TS),
        9: ("NAME", _XPN),
        11: ("ADDRESS", _XAD),
        12: ("ADDRESS", _ALL),
        13: ("PHONE", _XTN),
        14: ("PHONE", _XTN),
        18: ("ACCOUNT", _CX),
        19: ("SSN", _ALL),
        20: ("LICENSE", _DLN),
        21: ("MRN", _CX),
        23: ("ADDRESS", _ALL),
        29: ("DATE", _TS),
    },
    "PD1": {4: ("NAME", _XCN)},
    "NK1": {
        2: ("NAME", _XPN),
        4: ("ADDRESS", _XAD),
        5: ("PHONE", _XTN),
        6: ("PHONE", _XTN),
        12: ("ID", _CX),
        16: ("DOB", _TS),
        30: ("NAME", _XPN),
        31: ("PHONE", _XTN),
        32: ("ADDRESS", _XAD),
        33: ("MRN", _CX),
        37: ("SSN", _ALL),
    },
    "GT1": {
        2: ("ACCOUNT", _CX),
        3: ("NAME", _XPN),
        4: ("NAME", _XPN),
        5: ("ADDRESS", _XAD),
        6: ("PHONE", _XTN),
        7: ("PHONE", _XTN),
        8: ("DOB", _TS),
        12: ("SSN", _ALL),
        16: ("NAME", _XPN),
        17: ("ADDRESS", _XAD),
        18: ("PHONE", _XTN),
        19: ("ID", _CX),
        45: ("NAME", _XPN),
        46: ("PHONE", _XTN),
    },
    "IN1": {
        8: ("PLAN_ID", _ALL),
        16: ("NAME", _XPN),
        18: ("DOB", _TS),
        19: ("ADDRESS", _XAD),
        35: ("PLAN_ID", _ALL),
        36: ("PLAN_ID", _ALL),
        44: ("ADDRESS", _XAD),
        49: ("PLAN_ID", _CX),
    },
    "IN2": {
        1: ("ID", _CX),
        2: ("SSN", _ALL),
        3: ("NAME", _XCN),
        6: ("PLAN_ID", _ALL),
        7: ("NAME", _XPN),
        8: ("PLAN_ID", _ALL),
        9: ("NAME", _XPN),
        10: ("ID", _ALL),
        25: ("PLAN_ID", _CX),
        26: ("PLAN_ID", _CX),
        49: ("NAME", _XPN),
        50: ("PHONE", _XTN),
        52: ("NAME", _XPN),
        53: ("PHONE", _XTN),
        61: ("PLAN_ID", _CX),
        63: ("PHONE", _XTN),
        64: ("PHONE", _XTN),
    },
    "MRG": {
        1: ("MRN", _CX),
        2: ("MRN", _CX),
        3: ("ACCOUNT", _CX),
        4: ("MRN", _CX),
        5: ("ACCOUNT", _CX),
        6: ("ACCOUNT", _CX),
        7: ("NAME", _XPN),
    },
    "PV1": {
        7: ("NAME", _XCN),
        8: ("NAME", _XCN),
        9: ("NAME", _XCN),
        17: ("NAME", _XCN),
        19: ("ACCOUNT", _CX),
        44: ("DATE", _TS),
        45: ("DATE", _TS),
        50: ("ACCOUNT", _CX),
        52: ("NAME", _XCN),
    },
    "SCH": {
        12: ("NAME", _XCN),
        13: ("PHONE", _XTN),
        14: ("ADDRESS", _XAD),
        16: ("NAME", _XCN),
        17: ("PHONE", _XTN),
        18: ("ADDRESS", _XAD),
        20: ("NAME", _XCN),
        21: ("PHONE", _XTN),
    },
    "AIP": {3: ("NAME", _XCN)},
    "ORC": {12: ("NAME", _XCN)},
    "OBR": {16: ("NAME", _XCN), 28: ("NAME", _XCN)},
}

# Segments about a person: an identifier-shaped value in a field the table does not list (senders
# do misplace fields) is masked too. Clinical segments (OBR, OBX...) keep their codes.
_PERSON_SEGMENTS = frozenset({"PID", "PD1", "NK1", "GT1", "IN1", "IN2", "MRG"})
_ID_SHAPE = re.compile(r"(?=(?:[^0-9]*[0-9]){6})[A-Za-z0-9][A-Za-z0-9 ()./-]{4,40}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_ESCAPE_NAMES = {"F": 0, "S": 1, "R": 2, "E": 3, "T": 4}

Mask = Callable[[str, str], str]  # (kind, value) -> replacement
Plain = Callable[[str], str]  # text rules for the rest


class _Delimiters:
    __slots__ = ("comp", "esc", "field", "rep", "specials", "sub")

    def __init__(self, field: str, encoding: str) -> None:
        self.field = field
        self.comp = encoding[0]
        self.rep = encoding[1] if len(encoding) > 1 else "~"
        self.esc = encoding[2] if len(encoding) > 2 else "\\"
        self.sub = encoding[3] if len(encoding) > 3 else "&"
        self.specials = {self.field, self.comp, self.rep, self.esc, self.sub}

    def unescape(self, value: str) -> str:
        """The value an escaped component stands for (so pseudonyms match the text rules')."""
        if self.esc not in value:
            return value
        chars = (self.field, self.comp, self.rep, self.esc, self.sub)
        out = value
        for name, index in _ESCAPE_NAMES.items():
            out = out.replace(f"{self.esc}{name}{self.esc}", chars[index])
        return out

    def escape(self, value: str) -> str:
        """Write a replacement so it cannot be read as separators."""
        if not any(ch in self.specials for ch in value):
            return value
        names = {self.field: "F", self.comp: "S", self.rep: "R", self.esc: "E", self.sub: "T"}
        return "".join(f"{self.esc}{names[ch]}{self.esc}" if ch in names else ch for ch in value)


def _read_delimiters(text: str, start: int) -> _Delimiters | None:
    """Separators from MSH-1/MSH-2 at ``text[start:]`` (which begins with ``MSH``), or None."""
    if start + 5 > len(text):
        return None
    field = text[start + 3]
    if field not in _PUNCTUATION:
        return None
    end = text.find(field, start + 4)
    if end == -1:
        end = len(text)
    encoding = text[start + 4 : end]
    if not 3 <= len(encoding) <= 5:  # component, repetition, escape (+ subcomponent, truncation)
        return None
    if any(ch not in _PUNCTUATION or ch == field for ch in encoding):
        return None
    if len(set(encoding[:4])) != len(encoding[:4]):
        return None
    return _Delimiters(field, encoding)


def _message_end(text: str, start: int, field: str) -> int:
    """Index just past the last segment of the message that starts at ``start``."""
    pos = start
    n = len(text)
    while True:
        m = _LINE_BREAK.search(text, pos)
        line_end = m.start() if m else n
        if m is None:
            return n
        nxt = m.end()
        # The next line belongs to the message if it looks like a segment: 3 chars then separator.
        if (
            nxt + 3 <= n
            and _SEGMENT_ID.match(text, nxt)
            and (nxt + 3 == n or text[nxt + 3] in (field, "\r", "\n"))
        ):
            if text.startswith("MSH", nxt):
                return line_end  # a second message starts here
            pos = nxt
            continue
        return line_end


def _mask_field(value: str, spec: Spec, d: _Delimiters, mask: Mask) -> str:
    kind, keep = spec
    reps = value.split(d.rep)
    for r, rep in enumerate(reps):
        if not rep:
            continue
        comps = rep.split(d.comp)
        for c, comp in enumerate(comps):
            if not comp or comp == '""' or (c + 1) in keep:
                continue
            value_kind = "SSN" if kind in ("ACCOUNT", "ID", "MRN") and _SSN_SHAPE.fullmatch(comp) else kind
            comps[c] = d.escape(mask(value_kind, d.unescape(comp)))
        reps[r] = d.comp.join(comps)
    return d.rep.join(reps)


def _mask_id_shaped(value: str, d: _Delimiters, mask: Mask, plain: Plain) -> str:
    comps = value.split(d.comp)
    for c, comp in enumerate(comps):
        if _ID_SHAPE.fullmatch(comp):
            kind = "SSN" if _SSN_SHAPE.fullmatch(comp) else "ID"
            comps[c] = d.escape(mask(kind, d.unescape(comp)))
        elif comp:
            comps[c] = plain(comp)
    return d.comp.join(comps)


def _redact_segment(line: str, d: _Delimiters, mask: Mask, plain: Plain) -> str:
    seg = line[:3]
    if seg == "MSH":
        return line  # sending/receiving apps, timestamp, message type, control ID: all kept
    fields = line.split(d.field)
    table = FIELDS.get(seg)
    for i in range(1, len(fields)):
        value = fields[i]
        if not value:
            continue
        spec = table.get(i) if table is not None else None
        if spec is not None:
            fields[i] = _mask_field(value, spec, d, mask)
        elif seg in _PERSON_SEGMENTS and _ID_SHAPE.search(value):
            fields[i] = _mask_id_shaped(value, d, mask, plain)
        else:
            redacted = plain(value)
            if redacted != value:
                fields[i] = d.escape(redacted) if d.field in redacted else redacted
    return d.field.join(fields)


def _redact_message(text: str, d: _Delimiters, mask: Mask, plain: Plain) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        out.append(_redact_segment(text[pos : m.start()], d, mask, plain))
        out.append(m.group())
        pos = m.end()
    out.append(_redact_segment(text[pos:], d, mask, plain))
    return "".join(out)


def redact_hl7(text: str, mask: Mask, plain: Plain) -> str | None:
    """``text`` with every HL7 message in it masked and the rest through ``plain``.

    None when ``text`` holds no well-formed MSH header (the caller then uses the text rules).
    """
    pieces: list[str] = []
    pos = 0
    search = 0
    found = False
    while True:
        start = text.find("MSH", search)
        if start == -1:
            break
        search = start + 3
        if start > 0 and not (text[start - 1].isspace() or text[start - 1] in "\"'>:(["):
            continue  # a message starts a line, a quoted string or follows "message: "
        d = _read_delimiters(text, start)
        if d is None:
            continue
        end = _message_end(text, start, d.field)
        try:
            masked = _redact_message(text[start:end], d, mask, plain)
        except Exception:  # noqa: BLE001, S112 - malformed HL7 falls back to the text rules
            continue
        found = True
        if start > pos:
            pieces.append(plain(text[pos:start]))
        pieces.append(masked)
        pos = search = max(end, start + 3)
    if not found:
        return None
    if pos < len(text):
        pieces.append(plain(text[pos:]))
    return "".join(pieces)
