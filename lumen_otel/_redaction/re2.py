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

from lumen_otel._redaction.patterns import _STATES, _STREET_SUFFIX

__all__ = ["RE2_RULES", "render_markdown"]

ID = r"([A-Za-z/-]{0,40}[0-9][A-Za-z0-9/-]{0,63})"
SEP = r"""["']?[ \t]*(?:[:=#][ \t]*|is[ \t]+|was[ \t]+)?["']?"""
SUFFIX = _STREET_SUFFIX
STATES = _STATES
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
H = r"[0-9A-Fa-f]{1,4}"
NAMEW = r"[A-Z][a-z]+(?:['-][A-Za-z][a-z]+)*"
DATE = r"(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{8}|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4})\b"  # noqa: E501 - regex data
NUM = r"(?:[ _.-]?(?:number|num|nbr|no\.?|#|id|identifier))"

# kind, name, pattern, group (0 = whole match is the value), positives, negatives
_RULES = [
    (
        "SSN",
        "ssn",
        r"\b\d{3}-\d{2}-\d{4}\b",
        0,
        ["SSN 059-89-3004 on form"],
        ["2026-11-26", "ORD-123-45-67890"],
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
        r"(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b",
        0,
        ["call 476-973-3122", "(398) 909-6640", "+1 831 244 5295", "(746)293-3681"],
        ["took 795 ms", "512 spans in 3 batches"],
    ),
    (
        "PHONE",
        "phone_intl",
        r"\+[2-9]\d{0,2}(?:[ .-]\(?\d{1,4}\)?){2,5}\b",
        0,
        ["Call +44 20 7946 0958 now"],
        ["a+b"],
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
        r"\b" + OCTET + r"(?:\." + OCTET + r"){3}\b",
        0,
        ["from IP 38.182.243.151 opened", "from 10.1.2.3."],
        ["version 2.5.1", "1.2.840.10008"],
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
        r"(?i:\b(?:patient|pt|spouse|mother|father|guardian|guarantor|subscriber|insured|next[ _-]?of[ _-]?kin|emergency[ _-]?contact)\b)"  # noqa: E501 - regex data
        + SEP
        + r"("
        + NAMEW
        + r"(?:(?:[ \t]+|,[ \t]?)"
        + NAMEW
        + r"){0,4})",
        1,
        ["for patient Sarah Murphy, MRN", "next of kin Mary Jones"],
        ["for patient portal"],
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
        r"\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof)\.?[ \t]+(" + NAMEW + r"(?:[ \t]+" + NAMEW + r"){0,3})",
        1,
        ["by Dr. Gregory House today"],
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
        + r"|empi)\b)"
        + SEP
        + ID,
        1,
        ["MRN: 97727665", "patient_mrn=A12345", "medical record number: 00123-45", "patient id 12345"],
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
        ["Patient DOB is 02/03/1989", "Birth date 1954-02-15 does", '"dateOfBirth": "1945-10-24"'],
        ["DOB missing", "dob 2026-11-26T10:41:00Z"],
    ),
    (
        "DATE",
        "date_labelled",
        r"(?i:\b(?:admit(?:ted)?(?:[ _.-]?date)?|admission(?:[ _.-]?date)?|discharged?(?:[ _.-]?date)?|death(?:[ _.-]?date)?|date[ _.-]?of[ _.-]?(?:death|service|admission|discharge)|died|deceased)\b)"  # noqa: E501 - regex data
        + r"""["']?[ \t]*(?:[:=#][ \t]*|on[ \t]+|at[ \t]+)?["']?"""
        + DATE,
        1,
        ["admitted on 2026-01-02 to", "discharged 01/05/2026"],
        ["admitted at 2026-11-26T10:41:00Z"],
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


if __name__ == "__main__":
    print(render_markdown(), end="")  # noqa: T201 - generates the docs page
