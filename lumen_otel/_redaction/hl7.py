"""HL7 v2 awareness: mask identifying fields of a message field by field.

Text patterns alone do badly on HL7: ``Martin^Carol^Q`` has no label, and PID-3 is a bare number.
But the position of a field says what it holds, so inside a message (an ``MSH`` segment, then
segments separated by ``\\r``, ``\\n`` or ``\\r\\n``) the identifying fields of PID, PD1, NK1, GT1,
IN1, IN2, MRG, SCH, AIP and every clinician field (PV1, ORC, OBR, EVN, ROL, TXA...) are masked
component by component. Segment names, MSH-9 (message type), MSH-10 (control ID), coded values
and clinical text stay readable; the fields not in the table still go through the text rules (a
name typed into an OBX note, say). Z-segments and QPD parameters are masked by the data type their
content shows. A value masked in a field is masked wherever else it appears in the text (a
Z-segment, an NTE note, MSH-7 equal to the admission time), if it is distinctive enough.

Separators are read from MSH-1/MSH-2, so a sender using ``#`` instead of ``|`` works. A masked
value that would contain a separator is written with HL7 escape sequences. A segment logged on
its own (``PID|1||...``, no MSH) is masked the same way with the default separators. Anything that
is neither is left to the text rules; nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = [
    "FIELDS",
    "KIND_COMPONENTS",
    "LONE_SEGMENTS",
    "fields_with",
    "has_segment",
    "propagates",
    "redact_hl7",
]

# Components kept (1-based) for each HL7 data type; every other non-empty component is masked.
_CX = frozenset(range(3, 11))  # keep check-digit scheme, assigning authority, identifier type...
_XPN = frozenset(range(7, 15))  # keep name type code and representation
# A clinician's ID number (XCN-1) names that person as surely as the name does: masked with it.
_XCN = frozenset(range(8, 24))
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
    "AIG": {3: ("NAME", _XCN)},
    "ORC": {10: ("NAME", _XCN), 11: ("NAME", _XCN), 12: ("NAME", _XCN), 19: ("NAME", _XCN)},
    # OBR-32..35 (interpreters, assistant, technician, transcriptionist) are NDL: the name sits in
    # subcomponents of the first component, so every component goes.
    "OBR": {
        10: ("NAME", _XCN),
        16: ("NAME", _XCN),
        28: ("NAME", _XCN),
        32: ("NAME", _ALL),
        33: ("NAME", _ALL),
        34: ("NAME", _ALL),
        35: ("NAME", _ALL),
    },
    "OBX": {16: ("NAME", _XCN)},
    "EVN": {5: ("NAME", _XCN)},
    "PV2": {13: ("NAME", _XCN)},
    "ROL": {4: ("NAME", _XCN)},
    "PRD": {2: ("NAME", _XPN), 3: ("ADDRESS", _XAD), 5: ("PHONE", _XTN)},
    "TXA": {5: ("NAME", _XCN), 9: ("NAME", _XCN), 10: ("NAME", _XCN), 11: ("NAME", _XCN), 22: ("NAME", _XCN)},
    "QRD": {8: ("NAME", _ALL)},
    "STF": {3: ("NAME", _XPN), 10: ("PHONE", _XTN), 11: ("ADDRESS", _XAD)},
}

#: Kinds a configured field can hold, and the components of each that stay readable.
KIND_COMPONENTS: dict[str, frozenset[int]] = {
    "NAME": _XPN,
    "ADDRESS": _XAD,
    "PHONE": _XTN,
    "FAX": _XTN,
    "DOB": _TS,
    "DATE": _TS,
    "MRN": _CX,
    "ACCOUNT": _CX,
    "PLAN_ID": _CX,
    "ID": _CX,
}

# Segments about a person: an identifier-shaped value in a field the table does not list (senders
# do misplace fields) is masked too. Clinical segments (OBR, OBX...) keep their codes.
_PERSON_SEGMENTS = frozenset({"PID", "PD1", "NK1", "GT1", "IN1", "IN2", "MRG"})
_ID_SHAPE = re.compile(r"(?=(?:[^0-9]*[0-9]){6})[A-Za-z0-9][A-Za-z0-9 ()./-]{4,40}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
# Where a message or a lone segment may start: a line start, after whitespace, a quote, a bracket,
# "message: " or "body=" (``log.info("payload=%s", msg)``).
_BEFORE_MESSAGE = frozenset("\"'>:([=")
# Segments logged one per call, without their MSH (``log.info(pid_segment)``), are masked with
# the default separators. Only the segments that carry people or their care are looked for, and
# a lone segment needs three field separators and a component separator (or five field
# separators): ``PID|`` in prose or a table cell is not one.
LONE_SEGMENTS = (
    "PID", "PD1", "NK1", "PV1", "PV2", "IN1", "IN2", "GT1", "OBR", "ORC", "OBX", "NTE", "MRG",
    "ROL", "AL1", "DG1", "EVN", "QRD", "QPD", "RXE", "RXO",
)  # fmt: skip
_START = re.compile(r"MSH|(?:" + "|".join(LONE_SEGMENTS) + r"|Z[A-Z0-9]{2})\|")
_LONE_MIN_FIELDS = 3
_LONE_PLAIN_FIELDS = 5
_FREE_FIRST_FIELD = frozenset({"EVN", "QPD", "MRG"})
_DEFAULT_DELIMITERS = ("|", "^~\\&")
_ESCAPE_NAMES = {"F": 0, "S": 1, "R": 2, "E": 3, "T": 4}

Mask = Callable[[str, str], str]  # (kind, value) -> replacement
Plain = Callable[[str], str]  # text rules for the rest
Fields = Mapping[str, Mapping[int, Spec]]

# Values masked in a field are masked wherever else they appear in the message (a Z-segment, an
# NTE note, MSH-7 equal to the admission time). Short or common values would wipe clinical text,
# so a value propagates only when it is distinctive: four digits or more, or a name or place word
# of three letters or more that is not one of these.
_COMMON_WORDS = frozenset(
    [
        "TEST",
        "TESTING",
        "PATIENT",
        "PT",
        "NONE",
        "NULL",
        "UNK",
        "UNKNOWN",
        "NA",
        "MALE",
        "FEMALE",
        "OTHER",
        "HOME",
        "WORK",
        "CELL",
        "MOBILE",
        "MAIN",
        "MR",
        "MRS",
        "MS",
        "MISS",
        "DR",
        "JR",
        "SR",
        "II",
        "III",
        "IV",
        "MD",
        "DO",
        "RN",
        "NP",
        "PA",
        "PHD",
        "ESQ",
        "THE",
        "AND",
        "FOR",
        "NOT",
        "YES",
        "ABC",
        "XYZ",
        "REDACTED",
        "NAME",
        "ADDRESS",
        "PHONE",
        "DATE",
        "MRN",
        "SSN",
        "ACCOUNT",
        "USA",
        "CITY",
        "STREET",
        "APT",
        "SUITE",
        "UNIT",
    ]
)
_PROPAGATED_COMPONENTS: dict[str, frozenset[int]] = {
    "NAME": frozenset({1, 2, 3}),
    "ADDRESS": frozenset({1, 2, 3, 5, 9}),  # street, other, city, ZIP, county
}
_ANY_COMPONENT = frozenset(range(1, 64))
#: At most this many distinct values of one message are masked again elsewhere (a hostile message
#: with thousands of fields must not make one huge alternation).
_SEEN_MAX = 256
_NAME_PART = re.compile(r"[A-Za-z][A-Za-z'.-]*(?: [A-Za-z][A-Za-z'.-]*){0,3}")
_DTM = re.compile(r"\d{8}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?)?(?:[+-]\d{4})?")
_XTN_USE = frozenset({"PRN", "ORN", "WPN", "VHN", "ASN", "EMR", "NET", "BPN", "PRS"})
_PHONE_SHAPE = re.compile(r"\+?[\d() .-]{7,20}")
_STREET_SHAPE = re.compile(r"\d{1,6}[A-Za-z]?\s+[A-Za-z]")
_ZIP_SHAPE = re.compile(r"\d{5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d")
_QUERY_FIELD = re.compile(r"@([A-Z][A-Z0-9]{2})\.(\d{1,3})(?:\.\d{1,3})*")


def fields_with(extra: Mapping[str, Mapping[int, str]]) -> dict[str, dict[int, Spec]]:
    """:data:`FIELDS` with ``extra`` (segment -> field number -> kind, or ``TEXT`` for the text
    rules only) merged in; a kind's readable components are those of its data type."""
    merged = {seg: dict(table) for seg, table in FIELDS.items()}
    for seg, table in extra.items():
        if not _SEGMENT_ID.fullmatch(seg):
            raise ValueError(f"HL7 segment name {seg!r} is not three capitals or digits (ZPI, PV1)")
        for number, kind in table.items():
            if not isinstance(number, int) or number < 1:
                raise ValueError(f"HL7 field number {number!r} in {seg} must be a positive integer")
            merged.setdefault(seg, {})[number] = (kind, KIND_COMPONENTS.get(kind, _ALL))
    return merged


def propagates(kind: str, value: str) -> bool:
    """Whether a masked value is distinctive enough to be masked wherever else it appears."""
    digits = sum(map(str.isdigit, value))
    if digits:  # an identifier, a date, a phone number; or a code such as GA121
        return digits >= 4 or (digits >= 2 and len(value) >= 5 and sum(map(str.isalpha, value)) >= 2)
    if kind not in ("NAME", "ADDRESS") or len(value) < 3 or not value[0].isalpha():
        return False
    if len(value) == 3 and not value.isupper():
        return False  # "Ann", "Lee" in prose: too many words share them
    return value.upper() not in _COMMON_WORDS


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
    if encoding[2:3] == " ":  # a message whose escape character was lost in copying ("^~ &")
        encoding = encoding[:2] + "\\" + encoding[3:]
    if any(ch not in _PUNCTUATION or ch == field for ch in encoding):
        return None
    if len(set(encoding[:4])) != len(encoding[:4]):
        return None
    return _Delimiters(field, encoding)


def _lone_segment(text: str, start: int) -> _Delimiters | None:
    """The default separators if ``text[start:]`` is a segment without its MSH, else None."""
    line_end = _LINE_BREAK.search(text, start)
    line = text[start : line_end.start() if line_end else len(text)]
    fields = line.count("|")
    if fields < _LONE_MIN_FIELDS or (fields < _LONE_PLAIN_FIELDS and "^" not in line):
        return None  # a real segment has components (``id^^^AUTH^MR``, ``LAST^FIRST``) or many fields
    first = line[4:].partition("|")[0]
    # Field 1 is a set ID (a number, or empty) but in EVN, QPD, MRG and Z-segments, where it is
    # still one token: "grep PID|sort|uniq|wc" is a shell pipeline.
    if (
        first
        and not first[0].isdigit()
        and ((line[:3] not in _FREE_FIRST_FIELD and line[0] != "Z") or " " in first)
    ):
        return None
    return _Delimiters(*_DEFAULT_DELIMITERS)


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


class _Message:
    """One message being masked: its separators, the callbacks, and the values masked so far."""

    __slots__ = ("d", "fields", "mask", "mask_id", "plain", "seen")

    def __init__(self, d: _Delimiters, mask: Mask, mask_id: Mask, plain: Plain, fields: Fields) -> None:
        self.d = d
        self.mask = mask
        self.mask_id = mask_id
        self.plain = plain
        self.fields = fields
        self.seen: dict[str, str] = {}

    def hide(self, kind: str, comp: str, index: int) -> str:
        """``comp`` (an escaped component, 1-based ``index``) replaced; remembered if distinctive."""
        value = self.d.unescape(comp)
        core = value.strip()
        if not core:
            return comp
        if kind in ("ACCOUNT", "ID", "MRN") and _SSN_SHAPE.fullmatch(core):
            kind = "SSN"
        if (
            len(self.seen) < _SEEN_MAX
            and index in _PROPAGATED_COMPONENTS.get(kind, _ANY_COMPONENT)
            and propagates(kind, core)
        ):
            self.seen.setdefault(core, kind)
            if kind in ("NAME", "ADDRESS") and core.isupper() and len(core) > 3:
                self.seen.setdefault(core.title(), kind)
        # The field's position says what it holds: masked whole, even a UUID or a 16-digit number.
        return self.d.escape(self.mask_id(kind, value))

    def field(self, value: str, spec: Spec) -> str:
        kind, keep = spec
        d = self.d
        reps = value.split(d.rep)
        for r, rep in enumerate(reps):
            if not rep:
                continue
            comps = rep.split(d.comp)
            for c, comp in enumerate(comps):
                if not comp or comp == '""' or (c + 1) in keep:
                    continue
                if d.sub in comp and kind == "NAME":  # NDL / CNN: id&family&given in one component
                    subs = comp.split(d.sub)
                    comps[c] = d.sub.join(
                        sub if not sub else self.hide(kind, sub, i + 1) for i, sub in enumerate(subs)
                    )
                    continue
                comps[c] = self.hide(kind, comp, c + 1)
            reps[r] = d.comp.join(comps)
        return d.rep.join(reps)

    def id_shaped(self, value: str) -> str:
        d = self.d
        comps = value.split(d.comp)
        for c, comp in enumerate(comps):
            if _ID_SHAPE.fullmatch(comp):
                comps[c] = self.hide("ID", comp, 1)
            elif comp:
                comps[c] = self.text(comp)
        return d.comp.join(comps)

    def text(self, value: str) -> str:
        redacted = self.plain(value)
        if redacted != value and self.d.field in redacted:
            return self.d.escape(redacted)
        return redacted

    def by_shape(self, value: str) -> str:
        """A field the table does not describe (a Z-segment, a query parameter): each repetition
        masked by the data type its content shows (XPN, XAD, XTN, CX, DTM), else the text rules."""
        d = self.d
        reps = value.split(d.rep)
        for r, rep in enumerate(reps):
            if not rep:
                continue
            comps = rep.split(d.comp)
            query = _QUERY_FIELD.fullmatch(comps[0]) if len(comps) > 1 else None
            if query is not None:  # QPD: @PID.5.1^SMITH names the field the value is matched to
                table = self.fields.get(query.group(1))
                spec = table.get(int(query.group(2))) if table is not None else None
                if spec is not None:
                    reps[r] = comps[0] + d.comp + self.field(d.comp.join(comps[1:]), (spec[0], _ALL))
                    continue
            spec = _shape_of(comps)
            reps[r] = self.text(rep) if spec is None else self.field(rep, spec)
        return d.rep.join(reps)

    def segment(self, line: str) -> str:
        seg = line[:3]
        if seg == "MSH":
            return line  # applications, message type, control ID: kept (but see propagate_segment)
        d = self.d
        fields = line.split(d.field)
        table = self.fields.get(seg)
        shaped = seg[0] == "Z" or seg == "QPD"
        for i in range(1, len(fields)):
            value = fields[i]
            if not value:
                continue
            spec = table.get(i) if table is not None else None
            if spec is not None:
                fields[i] = self.text(value) if spec[0] == "TEXT" else self.field(value, spec)
            elif shaped and (seg != "QPD" or i >= 3):
                fields[i] = self.by_shape(value)
            elif seg in _PERSON_SEGMENTS and _ID_SHAPE.search(value):
                fields[i] = self.id_shaped(value)
            else:
                fields[i] = self.text(value)
        return d.field.join(fields)

    def propagate(self, text: str, pattern: re.Pattern[str]) -> str:
        """``text`` with every value seen masked again where it stands."""
        d = self.d
        seen = self.seen
        return pattern.sub(lambda m: d.escape(self.mask(seen[m.group()], m.group())), text)

    def propagate_segment(self, line: str, pattern: re.Pattern[str]) -> str:
        if line[:3] != "MSH":
            return line[:4] + self.propagate(line[4:], pattern)
        # MSH keeps its applications, message type, control ID and version; MSH-7 (the time) is
        # masked where it repeats a value seen (an admission time).
        fields = line.split(self.d.field)
        if len(fields) > 6:  # fields[6] is MSH-7 (fields[1] is MSH-2)
            fields[6] = self.propagate(fields[6], pattern)
        return self.d.field.join(fields)


def _seen_pattern(seen: Mapping[str, str]) -> re.Pattern[str] | None:
    """The values seen as one regex matching each as a whole word (longest first)."""
    if not seen:
        return None
    values = sorted(seen, key=len, reverse=True)
    return re.compile("(?<![A-Za-z0-9])(?:" + "|".join(re.escape(v) for v in values) + ")(?![A-Za-z0-9])")


def _shape_of(comps: list[str]) -> Spec | None:
    """The data type the components of one repetition show, or None (plain text)."""
    first = comps[0]
    n = len(comps)
    if n == 1:
        if _DTM.fullmatch(first):
            return ("DATE", _ALL)
        # An identifier on its own (ZPI|1|...|MRN99887766): what else would a site field hold?
        return ("ID", _ALL) if _ID_SHAPE.fullmatch(first) else None
    if n >= 4 and (_STREET_SHAPE.match(first) or (n >= 5 and _ZIP_SHAPE.fullmatch(comps[4]))):
        return ("ADDRESS", _XAD)
    if n >= 4 and any(ch.isdigit() for ch in first) and any(ch.isalpha() for ch in "".join(comps[3:5])):
        return ("MRN", _CX)  # CX: id^^^AUTHORITY^TYPE
    if n >= 3 and comps[1] in _XTN_USE:
        return ("PHONE", _XTN)
    second = comps[1]
    if (
        len(first) >= 2
        and _NAME_PART.fullmatch(first)
        and _NAME_PART.fullmatch(second)
        and first[0].isupper()
        and second[0].isupper()
        and not second.upper().startswith(first.upper())  # a code and its text: SPO^Spouse
        and all(not c or (len(c) <= 12 and _NAME_PART.fullmatch(c)) for c in comps[2:6])
    ):
        return ("NAME", _XPN)  # XPN: LAST^FIRST^M
    return None


def _redact_message(text: str, message: _Message) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        out.append(message.segment(text[pos : m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(message.segment(text[pos:]))
    return "".join(out)


def redact_hl7(
    text: str,
    mask: Mask,
    plain: Plain,
    fields: Fields | None = None,
    mask_id: Mask | None = None,
    collect: dict[str, str] | None = None,
) -> str | None:
    """``text`` with every HL7 message in it masked and the rest through ``plain``.

    ``fields`` replaces :data:`FIELDS` (a redactor's configured segments merged in); ``mask_id``
    masks a value whole whatever its shape (the field says it is PHI). A value masked in a field
    is masked wherever else it appears in ``text``. None when ``text`` holds no well-formed MSH
    header and no lone segment (``PID|...`` logged on its own): the caller then uses the text
    rules. ``collect`` receives the values masked in
    fields (value -> kind).
    """
    table = FIELDS if fields is None else fields
    whole = mask if mask_id is None else mask_id
    pieces: list[tuple[str, _Message | None]] = []
    seen: dict[str, str] = {}
    pos = 0
    search = 0
    for found in _START.finditer(text):
        start = found.start()
        if start < search:
            continue
        if start > 0 and text[start - 1] not in _BEFORE_MESSAGE and not text[start - 1].isspace():
            continue  # a message starts a line, a quoted string or follows "message: ", "body="
        d = _read_delimiters(text, start) if found.group() == "MSH" else _lone_segment(text, start)
        if d is None:
            continue
        end = _message_end(text, start, d.field)
        message = _Message(d, mask, whole, plain, table)
        try:
            masked = _redact_message(text[start:end], message)
        except Exception:  # noqa: BLE001, S112 - malformed HL7 falls back to the text rules
            continue
        if start > pos:
            pieces.append((plain(text[pos:start]), None))
        pieces.append((masked, message))
        for value, kind in message.seen.items():
            if len(seen) >= _SEEN_MAX:
                break
            seen.setdefault(value, kind)
        pos = search = max(end, start + 3)
    if all(message is None for _, message in pieces):
        return None
    if pos < len(text):
        pieces.append((plain(text[pos:]), None))
    if collect is not None:
        collect.update(seen)
    everywhere = _seen_pattern(seen)
    if everywhere is None:
        return "".join(piece for piece, _ in pieces)
    out: list[str] = []
    around = _Message(_Delimiters("|", "^~\\&"), mask, whole, plain, table)
    around.seen = seen
    for piece, owner in pieces:
        if owner is None:
            out.append(around.propagate(piece, everywhere))
            continue
        message = owner
        message.seen = seen
        pos = 0
        for m in _LINE_BREAK.finditer(piece):
            out.append(message.propagate_segment(piece[pos : m.start()], everywhere))
            out.append(m.group())
            pos = m.end()
        out.append(message.propagate_segment(piece[pos:], everywhere))
    return "".join(out)


def has_segment(text: str) -> bool:
    """Whether ``text`` names a segment followed by ``|`` (callers look for a ``|`` first), so
    the HL7 pass must look at it even without an MSH."""
    return _START.search(text) is not None
