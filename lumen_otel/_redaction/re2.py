"""The redaction rules ported to RE2 (Go ``regexp``) for the collector: no look-arounds, no backreferences.

The in-process redactor uses Python-only constructs (look-behinds, an id/timestamp guard, HL7
parsing); the collector's redaction and transform processors use RE2. These ports keep the same
kinds and label words. Where a rule needs its label for context, the value is capture group 1:
use ``replace_pattern(body, pattern, "$${1}...")``-style replacements in the transform processor,
or accept that ``blocked_values`` in the redaction processor masks the whole match (label too).

``docs/redaction-patterns-re2.md`` is generated from this table (``python -m
lumen_otel._redaction.re2 > docs/redaction-patterns-re2.md``); the tests check every pattern has no
look-around or backreference, matches its positive examples and none of its negative ones, with
Python ``re`` and, when a Go toolchain is present, with Go's ``regexp``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lumen_otel._redaction import hl7, vocabulary
from lumen_otel._redaction.patterns import _STATES, _STREET_SUFFIX

__all__ = [
    "RE2_RULES",
    "collector_blocks",
    "render_markdown",
    "write_collector",
]

ID = r"([A-Za-z/-]{0,40}[0-9][A-Za-z0-9/-]{0,63})"
SEP = r"""["']?[ \t]*(?:[:=#][ \t]*|is[ \t]+|was[ \t]+)?["']?"""
SUFFIX = _STREET_SUFFIX
STATES = _STATES
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
H = r"[0-9A-Fa-f]{1,4}"
NAMEW = r"[A-Z][a-z]+(?:['-][A-Za-z][a-z]+)*"
# After a role word the first word has three letters at least ("Pt: Dp palpable" is no name).
NAMEW3 = r"[A-Z][a-z]{2,}(?:['-][A-Za-z][a-z]+)*"
DATE = r"(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{8}|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4})\b"  # noqa: E501 - regex data
NUM = r"(?:[ _.-]?(?:number|num|nbr|no\.?|#|id|identifier))"
#: Clinicians are often followed by a capitalised noun ("Attending Physician"): their names are
#: taken only after a colon (``clinician_after_colon``), the other roles' after any separator.
_CLINICIANS = ("attending", "pcp", "physician", "surgeon", "provider", "referring", "doctor", "resident")
_ROLES_IN_TEXT = tuple(r for r in vocabulary.PERSON_ROLES if r not in _CLINICIANS)

# kind, name, pattern, group (0 = whole match is the value), positives, negatives
_RULES = [
    (
        "SSN",
        "ssn",
        r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",
        0,
        ["SSN 059-89-3004 on form", "form lists 644 10 7412"],
        ["2026-11-26", "ORD-123-45-67890"],
    ),
    (
        "SSN",
        "ssn_glued",
        r"[A-Za-z_](\d{3}-\d{2}-\d{4})(?:_|\b)",
        1,
        ["id x123-45-6789 seen", "key _123-45-6789_"],
        ["ORD-123-45-67890", "x123-45-67890"],
    ),
    (
        "SSN",
        "ssn_dotted",
        r"\b\d{3}\.\d{2}\.\d{4}\b",
        0,
        ["SSN 109.99.6000 on file"],
        ["version 10.2.3", "1.2.840.10008"],
    ),
    (
        "SSN",
        "ssn_labelled",
        r"(?i:\b(?:ssn|social[ _.-]?security(?:"
        + NUM
        + r")?)\b)"
        + SEP
        + r"(\d{9}|\d{3}[- ]\d{2}[- ]\d{4})\b",
        1,
        ["ssn=059893004", "Social security number 059 89 3004"],
        ["ssn verified"],
    ),
    (
        "PHONE",
        "phone_nanp",
        r"(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?\d{3}[ .-]?|\b\d{3}[ .-]\d{3}[ .-])\d{4}\b",
        0,
        ["call 476-973-3122", "(398) 909-6640", "+1 831 244 5295", "(746)293-3681", "(312)5550199"],
        ["took 795 ms", "512 spans in 3 batches"],
    ),
    (
        "PHONE",
        "phone_intl",
        r"\+[2-9]\d{0,2}(?:(?:[ .-]\(?\d{1,8}\)?){2,5}|\d{6,12})\b",
        0,
        [
            "Call +44 20 7946 0958 now",
            "+55 11 98765-4321",
            "+5511987654321",
            "+91 98765 43210",
            "+49 30 12345678",
        ],
        ["a+b"],
    ),
    (
        "PHONE",
        "phone_cn_mobile",
        r"\b1[3-9]\d{9}\b",
        0,
        ["call 13812345678 now"],
        ["took 1733600000000 ms"],
    ),
    (
        "PHONE",
        "phone_labelled",
        r"(?i:\b(?:(?:home|work|mobile|cell|contact)[ _.-]?)?(?:tele)?phone"
        + NUM
        + r"?\b|\bmobile\b|\btel\b)"
        + SEP
        + r"(\+?\(?\d[\d ().-]{5,20}\d)\b",
        1,
        ["mobile=5551234567", "home_phone: 555 123 4567"],
        ["phone verified"],
    ),
    (
        "PHONE",
        "pager_labelled",
        r"(?i:\b(?:pager|beeper|bleep|extension|ext)\b\.?)" + SEP + r"(\d{4,10})\b",
        1,
        ["EHMS pager 84710", "ext. 4471"],
        ["pager duty"],
    ),
    (
        "FAX",
        "fax_labelled",
        r"(?i:\bfax" + NUM + r"?\b)" + SEP + r"(\+?\(?\d[\d ().-]{5,20}\d)\b",
        1,
        ["fax: (555) 111-2222"],
        ["fax sent"],
    ),
    (
        "EMAIL",
        "email",
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b",
        0,
        ["via jon16@example.com or"],
        ["@app.get('/x')", "user@localhost"],
    ),
    (
        "IP",
        "ipv4",
        r"\b(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]?)(?:\." + OCTET + r"){3}\b",
        0,
        ["from IP 38.182.243.151 opened", "from 10.1.2.3."],
        ["version 2.5.1", "1.2.840.10008", "bound to 0.0.0.0"],
    ),
    (
        "IP",
        "ipv6",
        r"(?:\b(?:"
        + H
        + r":){7}"
        + H
        + r"\b|(?:\b"
        + H
        + r"(?::"
        + H
        + r"){0,6})?::(?:"
        + H
        + r"(?::"
        + H
        + r"){0,6}\b)?)",
        0,
        ["client 2001:db8::8a2e:370:7334 connected", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"],
        ["at 10:41:00"],
    ),
    (
        "ACCOUNT",
        "card",
        r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b",
        0,
        ["card 4111 1111 1111 1111 on file"],
        ["efc46c08-039c-4862-a27e-e409289b8ba9"],
    ),
    (
        "ACCOUNT",
        "card_bare",
        r"\b(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2[2-7]\d{14}|3[47]\d{13}|6(?:011|5\d\d)\d{12})\b",
        0,
        ["paid with 4111111111111111.", "amex 378282246310005"],
        ["took 1733600000000 ms", "span 1234567890123", "MSH-10 201103290820062979"],
    ),
    (
        "ADDRESS",
        "street_address",
        r"\b\d{1,6}[A-Za-z]?[ \t]+(?:(?:[NSEW]|North|South|East|West)\.?[ \t]+)?(?:[A-Z][A-Za-z'.-]*[ \t]+){1,4}(?:"  # noqa: E501 - regex data
        + SUFFIX
        + r")\b\.?(?:,?[ \t]+(?i:apt|apartment|suite|ste|unit|fl|floor|rm|room|#)\.?[ \t]*#?[A-Za-z0-9-]{1,8})?",  # noqa: E501 - regex data
        0,
        ["moved to 475 Barnes Springs Apt. 250 last", "8279 Hampton Shores, North"],
        ["Upload of 84 DICOM files took 795 ms"],
    ),
    (
        "ADDRESS",
        "address_labelled",
        r"(?i:\b(?:(?:street|mailing|home)[ _.-]?)?address(?:[ _.-]?line[ _.-]?\d)?\b|\blives at\b|\bresides at\b)"  # noqa: E501 - regex data
        + SEP
        + r"(\d{1,6}[A-Za-z]?[ \t]+[A-Za-z0-9#.'/ ,-]{2,160}|(?i:p\.?[ ]?o\.?[ ]?box)[ \t]*\d{1,8})",
        1,
        ["Patient home address: 8279 Hampton Shores, North Danastad, IL 05410", "lives at 12 Baker Street"],
        ["IP address unknown"],
    ),
    (
        "ZIP",
        "zip_after_state",
        r"\b(?:" + STATES + r")[ \t](\d{5}(?:-\d{4})?)\b",
        1,
        ["Springfield, IL 62704 on file"],
        ["ST 12345", "queue 12345 items"],
    ),
    (
        "ZIP",
        "zip_labelled",
        r"(?i:\b(?:zip(?:[ _.-]?code)?|postal[ _.-]?code|post[ _.-]?code)\b)" + SEP + r"(\d{5}(?:-\d{4})?)\b",
        1,
        ["zip code 90210", "zip=90210-1234"],
        ["zip archive"],
    ),
    (
        "NAME",
        "name_after_label",
        r"(?i:\b(?:pt\.|"
        + vocabulary.phrase_regex(_ROLES_IN_TEXT, r"[ _-]?")
        + r")\b)"
        + r"""["']?[ \t]*(?:[:=#][ \t]*|is[ \t]+|was[ \t]+)?["']?"""
        + r"("
        + NAMEW3
        + r"(?:(?:[ \t]+|,[ \t]?)"
        + NAMEW
        + r"){0,4})",
        1,
        [
            "for patient Sarah Murphy, MRN",
            "next of kin Mary Jones",
            "guardian: Jane Doe",
            "policy holder Alan Bowman",
        ],
        ["for patient portal", "Pt on Heparin", "Dp/Pt: Dp palpable"],
    ),
    (
        "NAME",
        "clinician_after_colon",
        r"(?i:\b(?:"
        + "|".join(_CLINICIANS)
        + r")\b)[ \t]*:[ \t]*("
        + NAMEW
        + r"(?:(?:[ \t]+|,[ \t]?)(?:[A-Z]\.?[ \t]+)?"
        + NAMEW
        + r"){0,3}|[A-Z][A-Z'-]+(?:,?[ \t]+[A-Z][A-Z'-]+){0,2})",
        1,
        ["PCP:  Gilbert Perez", "Attending: YBARRA"],
        ["Not reviewed by Attending Physician", "attending physician notified"],
    ),
    (
        "NAME",
        "name_before_degree",
        r"("
        + NAMEW
        + r"(?:[ \t]+(?:[A-Z]\.?|"
        + NAMEW
        + r")){1,3}|[A-Z][A-Z'-]+(?:[ \t]+[A-Z][A-Z'-]+){1,2}),?"
        r"[ \t]+(?:M\.D|MD|D\.O|RN|NP|PA-C|Ph\.?D)\b",
        1,
        ["Mike Ivan, MD, EHMS", "Xzavian G. Tavares, M.D.", "FILBERT BRIGHT, M.D."],
        ["MD notified of BP", "seen by MD"],
    ),
    (
        "NAME",
        "name_after_verb",
        r"(?i:\b"
        + vocabulary.phrase_regex(
            tuple(v for v in vocabulary.PERSON_VERBS if v not in vocabulary.VERBS_BEFORE_ROLES), r"[ \t]+"
        )
        + r")[ \t]*:?[ \t]+("
        + NAMEW
        + r"(?:[ \t]+(?:[A-Z]\.?[ \t]+)?"
        + NAMEW
        + r"){1,3})",
        1,
        ["caller Maria Lopez asked", "records for Jane Doe", "Dictated by:  Filbert Bright"],
        ["seen by Cardiology", "spoke with the team", "Not reviewed by Attending Physician"],
    ),
    (
        "NAME",
        "name_key",
        r"(?i:\b(?:(?:patient|full|first|last|given|family|middle|maiden)[ _.-]?)?(?:names?|surname)\b)"
        + r"""["']?[ \t]*[:=][ \t]*["']?([^"',;&|\n]{1,128})""",
        1,
        ['{"patient_name": "john smith"}', "Patient Name: SMITH, JOHN"],
        ["service_name=lumen", "hostname=web-01"],
    ),
    (
        "NAME",
        "name_after_title",
        r"(?:\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof)\.?|\b(?:dr|DR)\.)[ \t]+("
        + NAMEW
        + r"(?:[ \t]+"
        + NAMEW
        + r"){0,3}|[A-Z][A-Z'-]+(?:[ \t]+[A-Z][A-Z'-]+){0,2})",
        1,
        ["by Dr. Gregory House today", "seen by dr. Smith", "DR. SMITH signed"],
        ["Drive D: mounted"],
    ),
    (
        "MRN",
        "mrn_labelled",
        r"(?i:\b(?:mrn|m\.r\.n\.?|medical[ _.-]?records?(?:"
        + NUM
        + r")?|patient"
        + NUM
        + r"|chart"
        + NUM
        + r"|empi|mr)\b)"
        + SEP
        + ID,
        1,
        [
            "MRN: 97727665",
            "patient_mrn=A12345",
            "medical record number: 00123-45",
            "patient id 12345",
            "MR:\t8249813",
        ],
        ["MRN lookup failed"],
    ),
    (
        "PLAN_ID",
        "plan_labelled",
        r"(?i:\b(?:(?:health[ _.-]?)?plan[ _.-]?(?:beneficiary[ _.-]?)?"
        + NUM
        + r"|beneficiary"
        + NUM
        + r"?|member(?:ship)?"
        + NUM
        + r"|policy"
        + NUM
        + r"?|(?:subscriber|insurance|group)"
        + NUM
        + r"|medicare"
        + NUM
        + r"?|medicaid"
        + NUM
        + r"?|mbi)\b)"
        + SEP
        + ID,
        1,
        [
            "Health plan beneficiary number XQZ413840901 is",
            "member id W123456789",
            "policy number: POL-99812",
        ],
        ["policy updated"],
    ),
    (
        "ACCOUNT",
        "account_labelled",
        r"(?i:\b(?:account"
        + NUM
        + r"?|acct"
        + NUM
        + r"?|(?:billing|encounter|visit|claim)"
        + NUM
        + r")\b)"
        + SEP
        + ID,
        1,
        ["account #998877 closed", "acct=AC-1234"],
        ["account locked"],
    ),
    (
        "LICENSE",
        "license_labelled",
        r"(?i:\b(?:(?:driver'?s?[ _.-]?)?licen[cs]e"
        + NUM
        + r"?|passport"
        + NUM
        + r"?|certificate"
        + NUM
        + r")\b)"
        + SEP
        + ID,
        1,
        ["driver's license D1234567 scanned"],
        ["license ok"],
    ),
    (
        "VEHICLE",
        "vehicle_labelled",
        r"(?i:\b(?:vin|vehicle" + NUM + r"|licen[cs]e[ _.-]?plate" + NUM + r"?)\b)" + SEP + ID,
        1,
        ["VIN: 1HGCM82633A004352", "license plate 7ABC123"],
        ["vin missing"],
    ),
    (
        "DEVICE",
        "device_labelled",
        r"(?i:\b(?:device[ _.-]?(?:serial|sn|udi)?"
        + NUM
        + r"?|serial"
        + NUM
        + r"?|udi|imei|meid|mac[ _.-]?address)\b)"
        + SEP
        + r"((?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}\b|[A-Za-z/-]{0,40}[0-9][A-Za-z0-9/-]{0,63})",
        1,
        ["device serial SN-12345X", "MAC address 00:1A:2B:3C:4D:5E", "imei 490154203237518"],
        ["serial port open"],
    ),
    (
        "DOB",
        "dob_labelled",
        r"(?i:\b(?:dob|d\.o\.b\.?|date[ _.-]?of[ _.-]?birth|birth[ _.-]?date|birthdate|birthday|born(?:[ _-]on)?)\b)"  # noqa: E501 - regex data
        + SEP
        + DATE,
        1,
        [
            "Patient DOB is 02/03/1989",
            "Birth date 1954-02-15 does",
            '"dateOfBirth": "1945-10-24"',
            "DOB 01/02/1960.",
        ],
        ["DOB missing", "dob 2026-11-26T10:41:00Z"],
    ),
    (
        "DATE",
        "date_labelled",
        r"(?i:\b(?:record[ _.-]?date|doa|dd|dv|admit(?:ted)?(?:[ _.-]?date)?|admission(?:[ _.-]?date)?|discharged?(?:[ _.-]?date)?|death(?:[ _.-]?date)?|date[ _.-]?of[ _.-]?(?:death|service|admission|discharge)|died|deceased)\b)"  # noqa: E501 - regex data
        + r"""["']?[ \t]*(?:[:=#][ \t]*|on[ \t]+|at[ \t]+)?["']?"""
        + DATE,
        1,
        ["admitted on 2026-01-02 to", "discharged 01/05/2026", "Record date: 2069-04-07"],
        ["admitted at 2026-11-26T10:41:00Z"],
    ),
    (
        "DATE",
        "dictation_date",
        r"(?:^|[^A-Za-z0-9])(?:D[DTV]?|T):[ \t]*" + DATE,
        1,
        ["DD: 04/07/69", "D:07/20/83 T:07/21/83"],
        ["Vit: T 98.2-99.6 HR 98-110", "ID: 12/34/56"],
    ),
    (
        "URL",
        "url_query_identifier",
        r"(?i)[?&;](?:mrn|ssn|dob|patient(?:[_-]?(?:id|name))?|name|first[_-]?name|last[_-]?name|email|phone|member[_-]?id|address|zip)=([^&#\s\"']+)",
        1,
        ["GET /search?patient=John%20Smith&page=2", "?mrn=12345678&x=1"],
        ["?page=2&sort=name"],
    ),
    (
        "MRN",
        "url_path_identifier",
        r"(?i)/(?:patients?|persons?|people|members?|subscribers?)/([A-Za-z0-9._~%-]*[0-9][A-Za-z0-9._~%-]*)",
        1,
        ["GET /api/patients/12345678/studies", "/fhir/Patient/a1b2c3d4"],
        ["/api/patients/search"],
    ),
]


def _allow_underscore_prefix(kind: str, pattern: str) -> str:
    """``patient_mrn`` / ``x_ssn`` are labels too, but RE2's ``\\b`` sees ``_`` as a word character."""
    if kind in ("NAME", "ADDRESS"):
        return pattern
    return pattern.replace("(?i:\\b(?:", "(?i:(?:^|[^A-Za-z0-9])(?:", 1)


#: (kind, name, pattern, value group (0: the whole match), positive examples, negative examples)
RE2_RULES: tuple[tuple[str, str, str, int, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (k, n, _allow_underscore_prefix(k, p), g, tuple(pos), tuple(neg)) for k, n, p, g, pos, neg in _RULES
)


def render_markdown() -> str:
    """The RE2 port as a Markdown document for the collector configuration."""
    out = [
        "# PHI redaction patterns for RE2 (collector)",
        "",
        "Generated from `lumen_otel/_redaction/re2.py` (`python -m lumen_otel._redaction.re2`). Every pattern",  # noqa: E501 - regex data
        "compiles with Go's `regexp` (RE2) and has no look-around or backreference; `tests/test_redaction_re2.py`",  # noqa: E501 - regex data
        "checks that and the examples below (with Go when a toolchain is present).",
        "",
        "How to use them in the collector:",
        "",
        "- **redaction processor** (`blocked_values`): the whole match is masked. For labelled rules that",
        "  includes the label (`MRN: 123` becomes `****`), which is acceptable as a second line of defence.",
        "- **transform processor** (OTTL `replace_pattern`): keep the label and replace only group 1, e.g.",
        '  `replace_pattern(log.body, "(?i:...)(...)", "$$1[REDACTED:MRN]")` after splitting the label',
        "  into its own group, or replace the whole match with `[REDACTED:KIND]`.",
        "- Case-insensitive labels use `(?i:...)` so values keep their case sensitivity.",
        "",
        "What RE2 cannot express (the in-process redactor does these, so they only matter for data that",
        "never went through it): protecting UUIDs/trace ids/timestamps after a label (`mrn=<uuid>` is masked",
        'here), "the value must contain a digit" for ids (approximated), HL7 field positions, and',
        "case-insensitive stems with case-sensitive capitalised names (approximated with `(?i:label)`).",
        "",
        "| kind | rule | group | pattern |",
        "|---|---|---|---|",
    ]
    for kind, name, pattern, group, _pos, _neg in RE2_RULES:
        cell = pattern.replace("|", "\\|")
        out.append(f"| {kind} | `{name}` | {group} | `{cell}` |")
    out += ["", "## Examples", "", "| rule | matches | does not match |", "|---|---|---|"]
    for _kind, name, _pattern, _group, pos, neg in RE2_RULES:

        def fmt(xs: tuple[str, ...]) -> str:
            return "<br>".join("`" + x.replace("|", "\\|") + "`" for x in xs)

        out.append(f"| `{name}` | {fmt(pos)} | {fmt(neg)} |")
    out += ["", "## Patterns, one per line (for copying into YAML)", ""]
    for kind, name, pattern, group, _pos, _neg in RE2_RULES:
        out += [f"### {name} ({kind}, value group {group})", "", "```", pattern, "```", ""]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ the collector's rule blocks

#: Single-word keys that name PHI also as the last part of a longer key (``patient.ssn``,
#: ``guarantor_phone``); every other single word is PHI only as the whole key (``name`` yes,
#: ``code.function.name`` no).
_SUFFIX_WORDS = frozenset(
    [
        "ssn",
        "mrn",
        "dob",
        "email",
        "phone",
        "telephone",
        "fax",
        "zip",
        "zipcode",
        "postcode",
        "birthdate",
        "birthday",
        "vin",
        "passport",
        "mbi",
        "hicn",
        "empi",
        "iban",
        "imei",
        "meid",
        "udi",
        "fingerprint",
        "voiceprint",
        "biometric",
    ]
)
_KEY_SEP = r"[._-]?"


def key_patterns() -> list[tuple[str, str]]:
    """(comment, RE2 pattern) for the redaction processor's ``blocked_key_patterns``."""
    suffix: list[str] = []
    whole: list[str] = []
    for phrases in vocabulary.KEYS.values():
        for phrase in phrases:
            (suffix if " " in phrase or phrase in _SUFFIX_WORDS else whole).append(phrase)
    roles = tuple(p for p in vocabulary.PERSON_ROLES if p not in vocabulary.NOT_KEYS)
    whole.extend(p for p in roles if " " not in p)
    suffix.extend(p for p in roles if " " in p)
    name_words = tuple(
        dict.fromkeys((*roles, "person", "first", "last", "full", "given", "family", "middle"))
    )
    return [
        (
            "PHI names, alone or as the last part of a key (patient_ssn, user.email, nok.emergency_contact)",
            "(?i)^(?:.*[._-])?" + vocabulary.phrase_regex(tuple(suffix), _KEY_SEP) + "$",
        ),
        (
            "names: only with a person word in front (code.function.name is not PHI)",
            "(?i)^(?:.*[._-])?" + vocabulary.phrase_regex(name_words, _KEY_SEP) + _KEY_SEP + "names?$",
        ),
        (
            "words that are PHI only as a whole key (mother, subscriber, cc, city)",
            "(?i)^" + vocabulary.phrase_regex(tuple(whole), _KEY_SEP) + "$",
        ),
    ]


def _split_value_group(pattern: str) -> int:
    """Index of the first capturing ``(`` of ``pattern`` (outside classes, not ``(?``)."""
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(" and pattern[i + 1 : i + 2] != "?":
            return i
        i += 1
    raise ValueError(f"no capturing group in {pattern!r}")


def _group_end(pattern: str, start: int) -> int:
    """Index of the ``)`` closing the group opened at ``pattern[start]``."""
    depth = 0
    i = start
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(f"unbalanced group in {pattern!r}")


def _ottl_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_single(value: str) -> str:
    """A single-quoted YAML scalar; ``$`` doubled (the collector expands ``${...}`` in configs)."""
    return "'" + value.replace("'", "''").replace("$", "$$") + "'"


def transform_statements() -> list[str]:
    """OTTL ``replace_pattern`` statements for ``transform/phi``: labelled rules (the label
    kept), then the shapes that identify on their own."""
    out: list[str] = []
    for kind, _name, pattern, group, _pos, _neg in sorted(RE2_RULES, key=lambda r: r[3] == 0):
        if group:
            cut = _split_value_group(pattern)
            close = _group_end(pattern, cut)
            # Flags such as (?i) stay in front so they keep covering the label.
            flags = re.match(r"\(\?[a-z]+\)", pattern)
            head = flags.end() if flags and flags.end() <= cut else 0
            rewritten = pattern[:head] + "(" + pattern[head:cut] + ")" + pattern[cut : close + 1]
            replacement = "${1}[REDACTED:" + kind + "]"
            if close + 1 < len(pattern):  # what follows the value is matched too: put it back
                rewritten += "(" + pattern[close + 1 :] + ")"
                replacement += "${3}"
        else:
            rewritten, replacement = pattern, "[REDACTED:" + kind + "]"
        statement = f"replace_pattern(log.body, {_ottl_string(rewritten)}, {_ottl_string(replacement)})"
        if kind == "NAME":
            # HL7 bodies: names are masked by field above; coded text ("Reported Patient Age^LN")
            # would read as a name after a label here.
            statement += f" where not IsMatch(log.body, {_ottl_string(_HL7_BODY)})"
        out.append("- " + _yaml_single(statement))
    return out


_HL7_BODY = r"(?:^|[\r\n])MSH\|"

#: Segments the collector masks whole after their set ID (hand-written statements above the block).
_WHOLE_SEGMENTS = frozenset({"PID", "PD1", "NK1", "GT1", "IN1", "IN2", "MRG"})


def hl7_statements() -> list[str]:
    """One statement per identifying field of :data:`hl7.FIELDS` outside the segments masked
    whole: the field's whole content becomes ``[REDACTED:<KIND>]`` (RE2 cannot mask component by
    component, nor follow a value into other segments)."""
    out: list[str] = []
    for seg, table in sorted(hl7.FIELDS.items()):
        if seg in _WHOLE_SEGMENTS:
            continue
        for number, (kind, _keep) in sorted(table.items()):
            pattern = r"((?:^|[\r\n])" + seg + r"(?:\|[^|\r\n]*){" + str(number - 1) + r"}\|)[^|\r\n]+"
            replacement = _ottl_string("${1}[REDACTED:" + kind + "]")
            statement = f"replace_pattern(log.body, {_ottl_string(pattern)}, {replacement})"
            out.append("- " + _yaml_single(statement))
    return out


def collector_blocks() -> dict[str, list[str]]:
    """The generated blocks of ``collector-config/*.yaml``, by marker name, as YAML lines."""
    keys: list[str] = []
    for comment, pattern in key_patterns():
        keys += [f"# {comment}", "- " + _yaml_single(pattern)]
    values = ["- " + _yaml_single(p) for _k, _n, p, g, _pos, _neg in RE2_RULES if g == 0]
    return {
        "transform/phi hl7": hl7_statements(),
        "transform/phi": transform_statements(),
        "redaction keys": keys,
        "redaction values": values,
    }


_BEGIN = "# BEGIN generated: {} (python -m lumen_otel._redaction.re2 --write-collector)"
_END = "# END generated: {}"


def render_collector_config(text: str) -> str:
    """``text`` (a collector config) with each marked block replaced by what the rules give now."""
    lines = text.split("\n")
    out: list[str] = []
    blocks = collector_blocks()
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        stripped = line.strip()
        name = next((n for n in blocks if stripped == _BEGIN.format(n)), None)
        i += 1
        if name is None:
            continue
        indent = line[: len(line) - len(line.lstrip())]
        end = _END.format(name)
        while i < len(lines) and lines[i].strip() != end:
            i += 1
        if i == len(lines):
            raise ValueError(f"no {end!r} after {stripped!r}")
        out.extend(indent + b for b in blocks[name])
    return "\n".join(out)


def write_collector(paths: list[Path]) -> list[Path]:
    """Rewrite the marked blocks of ``paths`` in place; the files that changed."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = render_collector_config(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--write-collector"]:
        root = Path(__file__).resolve().parents[2] / "collector-config"
        paths = [Path(a) for a in argv[1:]] or sorted(root.glob("*.yaml"))
        for path in write_collector(paths):
            print(f"rewrote {path}")  # noqa: T201 - a generator's report
        return 0
    print(render_markdown(), end="")  # noqa: T201 - generates the docs page
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
