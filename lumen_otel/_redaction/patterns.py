"""The PHI rules: label words, value shapes, key names and the never-redacted tokens.

Two kinds of rule, because most identifiers are only recognisable by what precedes them:

- *labelled* rules: a label (``MRN``, ``date of birth``, ``patient``, ``member ID``...) followed by
  a separator and a value of the expected shape. Each label begins with a *stem*; a trie regex
  over the lower-cased text finds the stems in one pass and only the rules of the stems found
  are tried, anchored at that position. That keeps the cost of a clean line to two scans.
- *value* rules: shapes that identify on their own (SSN, phone, e-mail, IP, card numbers,
  street addresses, ``ST 12345`` ZIP codes).

Every regex here is linear: repetitions never nest ambiguously, and rules that begin with a
repeated class are guarded by a look-behind so they only start at the beginning of a run.
``docs/redaction-patterns-re2.md`` carries RE2 ports (no look-arounds) for the collector.

The words themselves (person roles, verbs that take a person, key names) live in
:mod:`lumen_otel._redaction.vocabulary`; the person-role rule and the key table are built from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lumen_otel._redaction import vocabulary

__all__ = [
    "ANCHORED_VALUE_RULES",
    "EMAIL_RULE",
    "HARD_PROTECTED",
    "IPV6_RULE",
    "KINDS",
    "LABEL_RULES",
    "NOTE_HINT_STEMS",
    "SOFT_AT",
    "SOFT_LABELS",
    "VALUE_RULES",
    "VALUE_SCAN",
    "LabelRule",
    "build_trie",
    "classify_key",
    "label_rule_source",
]

#: Every kind a built-in rule can emit (upper case in ``[REDACTED:KIND]``, lower in pseudonyms).
KINDS = (
    "NAME",
    "ADDRESS",
    "ZIP",
    "DOB",
    "DATE",
    "PHONE",
    "FAX",
    "EMAIL",
    "SSN",
    "MRN",
    "PLAN_ID",
    "ACCOUNT",
    "LICENSE",
    "VEHICLE",
    "DEVICE",
    "URL",
    "IP",
    "BIOMETRIC",
    "PHOTO",
    "ID",
    "CUSTOM",
)

# ------------------------------------------------------------------ never redacted

_HEX = "[0-9a-fA-F]"
_TOKEN_KINDS = "|".join(k.lower() for k in KINDS)

#: Tokens that are never redacted, even inside a labelled value: UUIDs, 32/16-hex trace and
#: span ids, ``traceparent`` values, RFC 3339 timestamps, and our own replacement tokens
#: (which is what makes redaction idempotent).
HARD_PROTECTED = re.compile(
    r"(?<![0-9A-Za-z-])(?:"
    r"\{?" + _HEX + r"{8}-" + _HEX + r"{4}-" + _HEX + r"{4}-" + _HEX + r"{4}-" + _HEX + r"{12}\}?"  # UUID
    r"|" + _HEX + r"{2}-" + _HEX + r"{32}-" + _HEX + r"{16}-" + _HEX + r"{2}"  # traceparent
    # Trace / span ids. A 16-digit span id with no letter in it is one in 2000; a card number
    # always is one, so only ids with a hex letter are protected.
    r"|" + _HEX + r"{32}|(?=[0-9]{0,15}[a-fA-F])" + _HEX + r"{16}"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?"  # timestamp
    r"|(?:" + _TOKEN_KINDS + r"):[0-9a-f]{12}"  # keyed pseudonym
    r")(?![0-9A-Za-z-])"
    r"|\[REDACTED:[A-Z_]{1,24}\]"
)

# ------------------------------------------------------------------ value shapes

_UP = "A-Z\u00c0-\u00de\u0100-\u017f"
_LO = "a-z\u00df-\u00ff\u0100-\u017f"
# A word followed by "/" is an abbreviation (``C/O``, ``S/P``), not a name.
_NAMEWORD = f"(?:[{_UP}][{_LO}]*(?:['\u2019-][{_UP}{_LO}][{_LO}]+)*(?![{_UP}{_LO}0-9/]))"
_INITIAL = r"(?:[A-Z]\.?(?![A-Za-z0-9/-]))"
# Particles only ever start lower case: the look-ahead lets a capitalised word skip them at once.
_PARTICLE = r"(?:(?=[a-z])(?:van|von|de|del|della|der|den|da|di|du|la|le|st\.?|bin|ibn|al)[ \t]+)"


def _word_alternation(words: str) -> str:
    """Case-sensitive alternation of ``words`` grouped by first letter (cheap to reject)."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(set(words.split()), key=lambda w: (-len(w), w)):
        by_first.setdefault(word[0], []).append(re.escape(word[1:]))
    return "(?:" + "|".join(f"{first}(?:{'|'.join(rest)})" for first, rest in sorted(by_first.items())) + ")"


# Capitalised words that follow "patient" but are labels or common nouns, not names
# ("Patient Name: ...", "patient Portal"). Case-sensitive: names are capitalised, labels often not.
_NOT_A_NAME = (
    r"(?!"
    + _word_alternation(
        "Name Names Dob Mrn Ssn Id Identifier Number Address Phone Email Date Birth Born Record Records "
        "Account Member Portal Chart Contact Home Age Sex Gender Status Note Notes List Search Lookup Detail "
        "Details Data Info Summary Not None Null Unknown Admitted Discharged Is Was Has Had Profile Login "
        "Logout Registration Intake Care Services Service Room Bed Ward Unit Instructions Instruction "
        "Education Information Teaching Safety Transport Transfer Belongings Consent Preferences Portal "
        "Reports Reported States Stated Denies Denied Tolerated Tolerating Ambulated Ambulating Resting "
        "Remains Remained Alert Oriented Stable Requested Requests Refused Refuses Verbalized Verbalizes "
        "Appears Appeared Complains Complained Given Placed Transferred Discharged Assisted Encouraged "
        "Voided Ate Slept Sleeping Awake Medicated Repositioned Turned Educated Instructed Informed "
        "Agrees Agreed Continues Continued Received Returned Left Arrived Family Visitors Weight Height "
        "Vitals Position Pain Comfort Diet Activity Tele Monitor Sitter Satisfaction Experience Access "
        "Identification Demographics Class Type Location Level Acuity Flow Safe Fall Falls Ready Now "
        "Today Tomorrow Yesterday Home Hospital Clinic Center Emergency Medical Health Physician Physicians "
        "Doctor Doctors Nurse Nurses Provider Providers Surgeon Resident Staff Team Attending Note"
    )
    + r"(?![A-Za-z]))"
)
NAME_VALUE = (
    _NOT_A_NAME
    + _NAMEWORD
    + r"(?:(?:[ \t]+|,[ \t]?)"
    + _PARTICLE
    + r"?(?:"
    + _NAMEWORD
    + "|"
    + _INITIAL
    + r")){0,4}"
)
# Departments, places and services that read like a capitalised name after "seen by", "report for".
_NOT_A_PERSON_WORD = (
    r"(?!"
    + _word_alternation(
        "Cardiology Radiology Oncology Neurology Nephrology Urology Dermatology Pathology Pharmacy Nursing "
        "Surgery Surgical Orthopedics Orthopaedics Pediatrics Psychiatry Psychology Obstetrics Gynecology "
        "Anesthesia Anesthesiology Hematology Endocrinology Gastroenterology Pulmonology Rheumatology "
        "Ophthalmology Otolaryngology Physical Occupational Speech Respiratory Social Case Palliative "
        "Hospice Internal Family General Primary Urgent Emergency Intensive Critical Care Team Teams Staff "
        "Service Services Department Dept Clinic Clinics Center Centre Hospital Medical Health Unit Ward "
        "Lab Laboratory Imaging Therapy Therapist Nurse Nurses Provider Providers Doctor Physician "
        "Attending Resident Residents Fellow Consult Consultant Specialist Admissions Registration Billing "
        "Insurance The This That Our Your His Her Their All Both Each Same Patient Pt ER ED ICU OR PACU "
        "North South East West Main County City State University Saint St Mount Mt General"
    )
    + r"(?![A-Za-z]))"
)
_PERSON_WORD = _NOT_A_PERSON_WORD + _NAMEWORD
#: Two to four capitalised words (or ``LAST, FIRST``), none of them a department or place word.
VERB_NAME_VALUE = (
    _PERSON_WORD
    + r"(?:(?:[ \t]+|,[ \t]?)"
    + _PARTICLE
    + r"?(?:"
    + _INITIAL
    + r"[ \t]+)?"
    + _PERSON_WORD
    + r"){1,3}"
    + r"|[A-Z][A-Z'-]+,?[ \t]+(?:[A-Z]\.?[ \t]+)?[A-Z][A-Z'-]+(?:[ \t]+[A-Z][A-Z'-]+)?(?![A-Za-z])"
)
#: After a role word a name starts with a word of three letters or more, a short word then another
#: capitalised one, or an initial: "Pt: Dp palpable" and "Patient A&Ox4" are abbreviations.
ROLE_NAME_VALUE = (
    f"(?=[{_UP}][{_LO}]{{2}}|[{_UP}][{_LO}]?[ \t,]+[{_UP}]|[A-Z]\\.)(?:[A-Z]\\.[ \t]+(?=[{_UP}]))?"
    + NAME_VALUE
)
NAME_VALUE_CAPS = r"[A-Z][A-Z'-]+(?:(?:[ \t]+|,[ \t]?)[A-Z][A-Z'.-]*){0,4}(?![A-Za-z0-9])"

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
DATE_VALUE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{8}"
    r"|(?i:" + _MONTH + r")\.?[ \t]+\d{1,2}(?:st|nd|rd|th)?,?[ \t]+\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?[ \t-](?i:" + _MONTH + r")\.?,?[ \t-]\d{2,4})"
    r"(?![\w:/-]|\.\w|[ T]\d{1,2}:\d{2})"
)
ID_VALUE = r"(?=[A-Za-z/-]{0,40}\d)[A-Za-z0-9][A-Za-z0-9/-]{2,63}(?![A-Za-z0-9])"
SSN_VALUE = r"(?:\d{3}[- ]\d{2}[- ]\d{4}|\d{9})(?![\w-])"
PHONE_VALUE = r"\+?\(?\d[\d ().-]{5,20}\d(?![\w-])"
EMAIL_VALUE = r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9.-]+"
_ADDR_WORD = (
    r"(?:[A-Z0-9#][A-Za-z0-9#.'/-]*"
    r"|(?i:apt|apartment|suite|ste|unit|fl|floor|bldg|building|room|rm|po|box|rue|de|la|du|del|van|von)\.?)"
)
ADDRESS_VALUE = (
    r"(?:\d{1,6}[A-Za-z]?(?:-\d{1,5})?[ \t]+"
    + _ADDR_WORD
    + r"(?:(?:[ \t]+|,[ \t]*)(?![A-Za-z_]+=)"
    + _ADDR_WORD
    + r"){0,14}"
    r"|(?i:p\.?[ ]?o\.?[ ]?box)[ \t]*\d{1,8})"
)
ZIP_VALUE = r"(?:\d{5}(?:-\d{4})?|[A-Za-z]\d[A-Za-z][ ]?\d[A-Za-z]\d)(?![\w-])"
PLACE_VALUE = _NAMEWORD + r"(?:[ \t]+" + _NAMEWORD + r"){0,3}"
TOKEN_VALUE = r"[^\s,;&\"'<>(){}\[\]|]{4,256}"  # noqa: S105 - a regex, not a secret
PATH_VALUE = r"[^\s,;&\"'<>(){}\[\]|]*[/.][^\s,;&\"'<>(){}\[\]|]*"
URL_ID_VALUE = r"(?=[A-Za-z._~%-]{0,40}\d)[A-Za-z0-9._~%-]{3,64}"

#: After ``=``: anything up to the next delimiter (query strings, ``key=value`` logs).
RUN_VALUE = r"[^\s,;&#\"'<>(){}\[\]|]{1,256}"
RUN_TAIL = r"[^\s,;&#\"'<>(){}\[\]|]*"
QUOTED_VALUE = r"\"(?P<{g}q>[^\"\n]{{1,256}})\"|'(?P<{g}s>[^'\n]{{1,256}})'"
# A person's name in quotes holds no "/" and no digit ("HTTP/1.1 200 OK" after "/patient" is none).
QUOTED_NAME = r"\"(?P<{g}q>[^\"\n/0-9]{{1,128}})\"|'(?P<{g}s>[^'\n/0-9]{{1,128}})'"

# ------------------------------------------------------------------ labels

_NUM = r"(?:[ _.-]?(?:number|num|nbr|no\.?|#|id|identifier))"


@dataclass(frozen=True)
class LabelRule:
    """A label (case-insensitive), then a separator, then a value of ``value`` shape.

    ``stems`` are the lower-case words a label of this rule starts with (the trie looks for
    them); ``eq_run`` lets ``label=anything`` through (query strings, ``key=value`` logs);
    ``snake_ok`` says whether the label may follow ``_``/``.``/``-`` after a word that is not
    person-related (``patient_mrn`` and ``x_mrn`` are MRNs; ``service_name`` is no name);
    ``connectors`` lets ``is``/``of``/``on``/``at``/``to`` stand between label and value (``DOB is``,
    ``admitted on``); names go without them, so ``Pt on Heparin`` names no one.
    """

    kind: str
    stems: tuple[str, ...]
    label: str
    value: str
    eq_run: bool = True
    snake_ok: bool = True
    connectors: bool = True


LABEL_RULES: tuple[LabelRule, ...] = (
    LabelRule(
        "NAME",
        (
            "name",
            "names",
            "fullname",
            "first",
            "lastname",
            "last",
            "given",
            "family",
            "middle",
            "maiden",
            "surname",
            "forename",
            "legal",
            "preferred",
            "patient",
            "contact",
            "emergency",
            "spouse",
            "mother",
            "father",
            "guardian",
            "guarantor",
            "subscriber",
            "insured",
            "kin",
            "parent",
            "caregiver",
            "relative",
            "full",
        ),
        r"(?:(?:full|first|last|given|family|middle|maiden|legal|preferred|patient|contact"
        r"|emergency[ _.-]?contact|spouse|mother'?s?|father'?s?|guardian|guarantor|subscriber|insured"
        r"|kin|parent|caregiver|relative)[ _.-]?names?|names?|surname|forename)",
        NAME_VALUE + "|" + NAME_VALUE_CAPS,
        snake_ok=False,
    ),
    LabelRule(
        "NAME",
        vocabulary.phrase_stems(vocabulary.PERSON_ROLES),
        r"(?:pt\.|" + vocabulary.phrase_regex(vocabulary.PERSON_ROLES) + ")",
        ROLE_NAME_VALUE,
        snake_ok=False,
        connectors=False,
    ),
    # No label, but a verb that only ever takes a person: "caller Maria Lopez", "seen by Peter
    # Parker". Two capitalised words at least, none a department or a place ("seen by Cardiology").
    LabelRule(
        "NAME",
        vocabulary.phrase_stems(vocabulary.PERSON_VERBS),
        vocabulary.phrase_regex(vocabulary.PERSON_VERBS, r"[ \t]+"),
        VERB_NAME_VALUE,
        eq_run=False,
        snake_ok=False,
        connectors=False,
    ),
    # A greeting before a name and a comma: "Hi Freddy,", "Dear Ms Roe," (not "Dear Team,").
    LabelRule(
        "NAME",
        ("hi", "hello", "dear"),
        r"(?:hi|hello|dear)",
        _PERSON_WORD + r"(?:[ \t]+" + _PERSON_WORD + r"){0,2}(?=,)",
        eq_run=False,
        snake_ok=False,
        connectors=False,
    ),
    # "dr." and "DR." (the case-sensitive title rule takes "Dr. Smith" with or without the dot).
    LabelRule(
        "NAME",
        # Not "ms": a stem that common would run this rule after every duration ("894 ms").
        ("dr", "mr", "mrs"),
        r"(?:dr|mrs?)\.",
        NAME_VALUE + "|" + NAME_VALUE_CAPS,
        eq_run=False,
        snake_ok=False,
    ),
    # Military and post-office-box addresses: PSC 4095, Box 8316; Unit 8505 Box 9220.
    LabelRule(
        "ADDRESS",
        ("psc", "cmr", "unit"),
        r"(?:psc|cmr|unit)",
        r"\d{3,5},?[ \t]+(?i:box)[ \t]+\d{3,5}(?![\w-])",
        eq_run=False,
        snake_ok=False,
    ),
    # "MRN 12345 merged into 67890": the second number is the same patient's.
    LabelRule(
        "MRN",
        ("merged", "merge"),
        r"merged?[ \t]+(?:(?:in)?to|with)",
        ID_VALUE,
        eq_run=False,
        snake_ok=False,
    ),
    LabelRule(
        "MRN",
        (
            "mrn",
            "m.r.n",
            "medical",
            "patient",
            "pt",
            "chart",
            "record",
            "hospital",
            "empi",
            "emr",
            "ehr",
            "mr",
        ),
        r"(?:mrn|m\.r\.n\.?|medical[ _.-]?records?"
        + _NUM
        + r"?|patient"
        + _NUM
        + r"|pt"
        + _NUM
        + r"|chart"
        + _NUM
        + r"?|records?"
        + _NUM
        + r"|hospital"
        + _NUM
        + r"|empi|emr"
        + _NUM
        + r"|ehr"
        + _NUM
        + r"|mr"
        + _NUM
        + r"?)",
        ID_VALUE,
    ),
    LabelRule(
        "SSN",
        ("ssn", "s.s.n", "social", "sin", "tax", "tin", "itin"),
        r"(?:ssn|s\.s\.n\.?|social[ _.-]?security(?:"
        + _NUM
        + r")?|social[ _.-]?insurance"
        + _NUM
        + r"?|sin|tax[ _.-]?id|tin|itin)",
        SSN_VALUE + "|" + ID_VALUE,
    ),
    LabelRule(
        "PLAN_ID",
        (
            "health",
            "plan",
            "beneficiary",
            "member",
            "membership",
            "policy",
            "subscriber",
            "insurance",
            "insured",
            "group",
            "medicare",
            "medicaid",
            "mbi",
            "hicn",
            "hic",
            "payer",
            "payor",
            "coverage",
        ),
        r"(?:(?:health[ _.-]?)?plan[ _.-]?(?:beneficiary[ _.-]?)?" + _NUM + r"|(?:health[ _.-]?plan[ _.-]?)?"
        r"beneficiary"
        + _NUM
        + r"?|member(?:ship)?"
        + _NUM
        + r"|policy(?:[ _.-]?holder)?"
        + _NUM
        + r"?|(?:subscriber|insurance|insured|group|payer|payor|coverage)"
        + _NUM
        + r"|medicare"
        + _NUM
        + r"?|medicaid"
        + _NUM
        + r"?|mbi|hicn|hic)",
        ID_VALUE,
    ),
    LabelRule(
        "ACCOUNT",
        (
            "account",
            "acct",
            "billing",
            "invoice",
            "encounter",
            "visit",
            "claim",
            "fin",
            "csn",
            "har",
            "card",
            "credit",
            "cc",
            "iban",
            "bank",
            "routing",
        ),
        r"(?:(?:bank[ _.-]?)?account" + _NUM + r"?|acct" + _NUM + r"?|card|(?:billing|invoice|encounter"
        r"|visit|claim|card|routing)"
        + _NUM
        + r"|fin|csn|har|credit[ _.-]?card(?:"
        + _NUM
        + r")?|cc"
        + _NUM
        + r"|iban)",
        ID_VALUE + r"|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,7}",
    ),
    LabelRule(
        "VEHICLE",
        ("vin", "vehicle", "license", "licence", "plate", "tag"),
        r"(?:vin|vehicle"
        + _NUM
        + r"|licen[cs]e[ _.-]?plate"
        + _NUM
        + r"?|plate"
        + _NUM
        + r"?|tag[ _.-]?(?:number|num|no\.?))",
        ID_VALUE,
    ),
    LabelRule(
        "LICENSE",
        ("license", "licence", "driver", "drivers", "dl", "certificate", "cert", "passport", "permit"),
        r"(?:(?:driver'?s?[ _.-]?)?licen[cs]e"
        + _NUM
        + r"?|dl"
        + _NUM
        + r"|certificate"
        + _NUM
        + r"|cert"
        + _NUM
        + r"|passport"
        + _NUM
        + r"?|permit"
        + _NUM
        + r")",
        ID_VALUE,
    ),
    LabelRule(
        "DEVICE",
        ("device", "serial", "s/n", "sn", "udi", "imei", "meid", "implant", "pacemaker", "mac", "macaddress"),
        r"(?:device[ _.-]?(?:serial|sn|udi|mac)?" + _NUM + r"?|serial" + _NUM + r"?|s/n|sn|udi|imei|meid"
        r"|(?:implant|pacemaker)" + _NUM + r"|mac[ _.-]?(?:address|addr)?)",
        r"(?:" + _HEX + r"{2}[:-]){5}" + _HEX + r"{2}(?![\w:-])|" + ID_VALUE,
    ),
    LabelRule(
        "DOB",
        ("dob", "d.o.b", "date", "dateof", "birth", "birthdate", "birthday", "born", "bday", "b-day"),
        r"(?:dob|d\.o\.b\.?|date[ _.-]?of[ _.-]?birth|birth[ _.-]?(?:date|day)|birthdate|birthday"
        r"|born(?:[ _-](?:on|in))?|b-?day)",
        DATE_VALUE,
    ),
    LabelRule(
        "DATE",
        (
            "admit",
            "admitted",
            "admission",
            "discharge",
            "discharged",
            "death",
            "died",
            "deceased",
            "date",
            "dateof",
            "appointment",
            "appt",
            "visit",
            "service",
            "surgery",
            "procedure",
            "dod",
            "expired",
            "record",
            "doa",
            "dos",
            "dd",
            "dv",
            "dictated",
            "transcribed",
            "signed",
            "seen",
        ),
        r"(?:record[ _.-]?date|doa|dos|dd|dv|(?:dictated|transcribed|signed|seen)[ _.-]?(?:on|date)"
        r"|admit(?:ted)?(?:[ _.-]?(?:date|dt))?|admission(?:[ _.-]?(?:date|dt))?"
        r"|discharged?(?:[ _.-]?(?:date|dt))?|death(?:[ _.-]?date)?|died|deceased|expired|dod"
        r"|date[ _.-]?of[ _.-]?(?:death|service|admission|discharge|surgery|procedure|visit)"
        r"|appointment(?:[ _.-]?date)?|appt(?:[ _.-]?date)?|(?:visit|service|surgery|procedure)[ _.-]?date)",
        DATE_VALUE,
    ),
    LabelRule("FAX", ("fax", "faxnumber", "faxno"), r"(?:fax" + _NUM + r"?)", PHONE_VALUE),
    # Pagers and extensions are short internal numbers: four digits or more after the label.
    LabelRule(
        "PHONE",
        ("pager", "beeper", "ext", "extension", "bleep"),
        r"(?:pager|beeper|bleep|ext\.?|extension)(?:[ _.-]?(?:number|num|no\.?|#))?",
        r"\d{4,10}(?![\w-])",
    ),
    # Clinicians' names after their role and a colon may be in capitals ("Attending: YBARRA").
    LabelRule(
        "NAME",
        ("attending", "pcp", "physician", "surgeon", "provider", "referring", "doctor", "resident"),
        r"(?:attending|pcp|physician|surgeon|provider|referring|doctor|resident)(?=[ \t]*:)",
        NAME_VALUE_CAPS,
        eq_run=False,
        snake_ok=False,
        connectors=False,
    ),
    LabelRule(
        "PHONE",
        (
            "phone",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "cellphone",
            "pager",
            "contact",
            "sms",
            "callback",
            "home",
            "homephone",
            "work",
            "workphone",
            "primary",
            "daytime",
            "evening",
        ),
        r"(?:(?:(?:home|work|mobile|cell|contact|primary|daytime|evening)[ _.-]?)?(?:tele)?phone"
        + _NUM
        + r"?|tel\.?|mobile"
        + _NUM
        + r"?|cell(?:[ _.-]?phone)?"
        + _NUM
        + r"?|pager"
        + _NUM
        + r"?|contact"
        + _NUM
        + r"|sms|callback"
        + _NUM
        + r"?)",
        PHONE_VALUE,
    ),
    LabelRule(
        "EMAIL",
        ("email", "e-mail", "mail", "emailaddress"),
        r"(?:e-?mail(?:[ _.-]?address)?|mail)",
        EMAIL_VALUE,
    ),
    LabelRule(
        "ADDRESS",
        (
            "address",
            "addr",
            "street",
            "residence",
            "resides",
            "residing",
            "lives",
            "living",
            "domicile",
            "mailing",
            "home",
            "homeaddress",
        ),
        r"(?:(?:street[ _.-]?|mailing[ _.-]?|home[ _.-]?)?address(?:[ _.-]?line[ _.-]?\d)?|addr\d?|street"
        r"|residence|domicile|resid(?:es|ing)[ \t]+at|li(?:ves|ving)[ \t]+at)",
        ADDRESS_VALUE,
        snake_ok=False,
    ),
    LabelRule(
        "ADDRESS",
        ("city", "town", "county", "municipality"),
        r"(?:city|town|county|municipality)",
        PLACE_VALUE,
        snake_ok=False,
    ),
    LabelRule(
        "ZIP",
        ("zip", "zipcode", "postal", "postcode", "post", "zip+4"),
        r"(?:zip(?:[ _.-]?code)?(?:\+4)?|postal[ _.-]?code|post[ _.-]?code)",
        ZIP_VALUE,
    ),
    LabelRule(
        "BIOMETRIC",
        ("fingerprint", "voiceprint", "voice", "retina", "retinal", "iris", "face", "biometric", "palm"),
        r"(?:fingerprint|voice[ _.-]?print|retina(?:l)?[ _.-]?scan|iris[ _.-]?(?:scan|template|code)"
        r"|face[ _.-]?(?:id|print|template|encoding)|biometrics?(?:[ _.-]?(?:id|hash|template|data))?"
        r"|palm[ _.-]?print)(?:[ _.-]?(?:hash|id|template))?",
        TOKEN_VALUE,
        eq_run=True,
    ),
    LabelRule(
        "PHOTO",
        ("photo", "photograph", "face", "headshot", "portrait", "profile", "picture", "avatar"),
        r"(?:photo(?:graph)?|face[ _.-]?(?:image|photo|picture)|headshot|portrait|profile[ _.-]?"
        r"(?:photo|picture|image)|picture|avatar)(?:[ _.-]?(?:url|uri|path|file|id))?",
        PATH_VALUE,
    ),
    # URL path identifiers: /patients/123456, /Patient/abc123 (FHIR), /members/W1234.
    LabelRule(
        "MRN",
        ("patient", "patients", "person", "persons", "people", "individual", "individuals"),
        r"(?:patients?|persons?|people|individuals?)/",
        URL_ID_VALUE,
        eq_run=False,
    ),
    LabelRule(
        "PLAN_ID",
        ("member", "members", "subscriber", "subscribers", "beneficiary", "beneficiaries"),
        r"(?:members?|subscribers?|beneficiar(?:y|ies))/",
        URL_ID_VALUE,
        eq_run=False,
    ),
)

#: Degrees that follow a signed name in clinical notes ("Mike Ivan, MD"): stems without a rule,
#: so the stem trie sends such a line to the full rules (where the note rules look for the name).
NOTE_HINT_STEMS = ("md", "m.d", "rn", "np", "d.o", "phd", "ph.d", "pa-c")

#: Words that may precede a label joined by ``_``/``.``/``-`` for labels that would otherwise be
#: too common as suffixes (``patient_name`` yes, ``service_name`` no; ``home_address`` yes,
#: ``server_address`` no).
PERSON_WORDS = frozenset(
    [
        "patient",
        "pt",
        "first",
        "last",
        "given",
        "family",
        "middle",
        "maiden",
        "full",
        "legal",
        "preferred",
        "spouse",
        "mother",
        "father",
        "guardian",
        "guarantor",
        "subscriber",
        "insured",
        "kin",
        "nok",
        "emergency",
        "contact",
        "member",
        "beneficiary",
        "parent",
        "caregiver",
        "relative",
        "home",
        "work",
        "mailing",
        "billing",
        "residential",
        "street",
        "current",
        "prior",
        "previous",
        "old",
        "new",
        "primary",
        "secondary",
        "birth",
        "death",
        "physician",
        "doctor",
        "attending",
        "referring",
        "provider",
        "person",
        "user",
        "customer",
        "client",
    ]
)

# The separator between a label and its value: ``MRN: x``, ``mrn=x``, ``"mrn": "x"``, ``DOB is x``,
# ``admitted on x``, ``Social security number x``.
SEP_EQ = r"[\"']?[ \t]*=[ \t]*"
SEP_OTHER = r"[\"']?(?:[ \t]*[:#?][ \t]*(?:\r?\n[ \t]*)?|[ \t]+(?:(?:is|was|of|on|at|to|=)[ \t]+){0,2})"
SEP_NAME = r"[\"']?(?:[ \t]*[:#][ \t]*(?:\r?\n[ \t]*)?|[ \t]+(?:(?:is|was|=)[ \t]+)?)"


# What every separator before a quoted value starts with: "patient Sarah" skips the quoted
# branch in one look instead of trying each separator first (it only restates that branch).
_QUOTE_AHEAD = r"(?=[\"']?[ \t]*(?:[=:#\"']|(?:is|was|of|on|at|to)[ \t]))"


def label_rule_source(rule: LabelRule, index: int, label: str | None = None) -> str:
    """The anchored regex for ``rule``; the value lands in a group ``v<index>`` + q/s/t/r/u.

    ``label`` replaces ``rule.label`` by an equivalent narrowed for one stem (see ``prune``).
    """
    g = f"v{index}"
    quoted = (QUOTED_VALUE if rule.connectors else QUOTED_NAME).format(g=g)
    after_eq = f"(?P<{g}t>(?:{rule.value}){RUN_TAIL})"
    if rule.eq_run:
        after_eq += f"|(?P<{g}r>{RUN_VALUE})"
    if label is None:
        label = rule.label
    label = f"(?i:{label})"
    if rule.label.endswith("/"):
        source = f"{label}(?:(?P<{g}t>{rule.value}))"
    else:
        source = (
            f"{label}(?![A-Za-z0-9])"
            f"(?:{_QUOTE_AHEAD}(?:{SEP_EQ}|{SEP_OTHER}[\"']?)(?:{quoted})|{SEP_EQ}(?:{after_eq})"
            f"|{SEP_OTHER if rule.connectors else SEP_NAME}(?P<{g}u>{rule.value}))"
        )
    return source


# ------------------------------------------------------------------ value rules (context-free)

_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC"
    "|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|AS|GU|MP|PR|VI|FM|MH|PW|AA|AE|AP"
)
_STREET_SUFFIX = (
    "Alley|Allee|Aly|Avenue|Ave|Av|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brooks?|Burgs?|Bypass"
    "|Camp|Canyon|Cape|Causeway|Centers?|Circles?|Cir|Cliffs?|Club|Commons?|Corners?|Course|Courts?|Ct"
    "|Coves?|Creek|Crescent|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives?|Dr|Estates?"
    "|Expressway|Expy|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway"
    "|Fwy|Gardens?|Gateway|Glens?|Greens?|Groves?|Harbors?|Haven|Heights|Hts|Highway|Hwy|Hills?|Hollow"
    "|Inlet|Islands?|Isle|Junctions?|Jct|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Lights?|Loaf|Locks?"
    "|Lodge|Loop|Mall|Manors?|Meadows?|Mews|Mills?|Mission|Motorway|Mount|Mountains?|Mtn|Neck|Orchard"
    "|Oval|Overpass|Parks?|Parkways?|Pkwy|Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?"
    "|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads?|Rd|Route|Row|Rue|Run|Shoals?"
    "|Shores?|Skyway|Springs?|Spurs?|Squares?|Sq|Station|Stravenue|Stream|Streets?|St|Summit|Terrace"
    "|Ter|Throughway|Trace|Track|Trafficway|Trail|Trl|Trailer|Tunnel|Turnpike|Underpass|Unions?"
    "|Valleys?|Via|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Ways?|Wells?"
)
# The same suffixes grouped by first letter, for the scan: one branch per letter instead of 200
# alternatives tried in turn. Any grouping matches the same: a suffix must end the run of letters
# (``\.?(?![A-Za-z])`` follows), so at most one alternative can succeed at a given place.
_STREET_SUFFIX_GROUPED = _word_alternation(
    " ".join(w[:-2] + " " + w[:-1] if w.endswith("s?") else w for w in _STREET_SUFFIX.split("|"))
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H4 = _HEX + "{1,4}"

#: (kind, regex) - each regex is the whole value. All but the last two start at a *run start*
#: (see :data:`VALUE_SCAN`) and are tried anchored there, so a line costs one cheap scan. Some
#: open with a look-ahead that only restates what the rule itself requires (``(?=\d{1,3}\.\d)``
#: before four octets): it changes no match, but rejects the common number in a few steps.
VALUE_RULES: tuple[tuple[str, str], ...] = (
    ("SSN", r"\d{3}-\d{2}-\d{4}(?![\w-])"),
    ("SSN", r"\d{3}\.\d{2}\.\d{4}(?![\w-]|\.\d)"),
    ("ACCOUNT", r"\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]\d{3})?(?![\w-])"),  # card numbers
    # Card numbers written without spaces: an issuer's first digit and a valid Luhn check digit
    # (checked when applied), so epoch milliseconds and order numbers stay.
    (
        "ACCOUNT",
        r"(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2[2-7]\d{14}|3[47]\d{13}|3(?:0[0-5]|[68]\d)\d{11}"
        r"|6(?:011|5\d\d)\d{12})(?![\w-])",
    ),
    # North American numbers, also dialled from abroad (001-...) or with an extension (x036).
    (
        "PHONE",
        r"(?:00\d{1,3}[ .-]|\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?\d{3}[ .-]?|\d{3}[ .-]\d{3}[ .-])\d{4}"
        r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?(?![\w-])",
    ),
    ("PHONE", r"\+[2-9]\d{0,2}(?:[ .-]?\(0\)\d{1,5})?(?:(?:[ .-]\(?\d{1,8}\)?){2,5}|\d{6,12})(?![\w-])"),
    # National numbers with a trunk 0: (08) 8747 6301, 0680 298 70 63, 082 490 1693.
    ("PHONE", r"(?:\(0\d{1,4}\)[ ]?\d{3,4}[ ]?\d{3,4}|0\d{2,3}(?:[ ]\d{2,4}){2,3})(?![\w-])"),
    ("PHONE", r"1[3-9]\d{9}(?![\w-])"),  # Chinese mobile numbers
    ("IP", r"(?=\d{1,3}\.\d)" + _OCTET + r"(?:\." + _OCTET + r"){3}(?!\.?\d)(?!\w)"),
    (
        "ADDRESS",
        r"(?=\d{1,6}[A-Za-z]?[ \t]+[A-Z])"
        r"\d{1,6}[A-Za-z]?[ \t]+(?:(?:[NSEW]|North|South|East|West)\.?[ \t]+)?"
        r"(?:[A-Z][A-Za-z'.-]*[ \t]+){1,4}" + _STREET_SUFFIX_GROUPED + r"\.?(?![A-Za-z])"
        r"(?:,?[ \t]+(?i:apt|apartment|suite|ste|unit|fl|floor|rm|room|#)\.?[ \t]*#?[A-Za-z0-9-]{1,8})?",
    ),
    # The five digits first: the look-behind over 60 state codes runs only before a ZIP shape.
    ("ZIP", r"(?=\d{5})(?<=\b(?:" + _STATES + r")[ \t])\d{5}(?:-\d{4})?(?![\w-])"),
    # Searched for (not anchored), and only when the line has an "@" / enough colons.
    (
        "EMAIL",
        r"(?<![A-Za-z0-9._%+\]-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
        r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])",
    ),
    (
        "IP",
        r"(?<![\w:.\]])(?:(?:"
        + _H4
        + r":){7}"
        + _H4
        + r"|(?:"
        + _H4
        + r"(?::"
        + _H4
        + r"){0,6})?::(?:"
        + _H4
        + r"(?::"
        + _H4
        + r"){0,6})?)"
        r"(?:%[0-9A-Za-z]{1,16})?(?![\w:])",
    ),
)
ANCHORED_VALUE_RULES = (
    *VALUE_RULES[:-2],
    # Titles are case-sensitive: "Dr. Smith", not "dr" in "drive". The value is the name only.
    ("NAME", r"(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof)\.?[ \t]+(?P<title>" + NAME_VALUE + ")"),
)
EMAIL_RULE = VALUE_RULES[-2][1]
IPV6_RULE = VALUE_RULES[-1][1]

#: All anchored value rules in one scan, run over ``" " + text``. A value only begins right after
#: a character that cannot continue a word, number or id, so the digits inside UUIDs, hex ids and
#: timestamps are never tried; the scan begins with that character class, so the engine skips
#: through words in C. The rules sit in a look-ahead; each value is in group ``w<i>`` (``title``
#: for the name after a title). The class is spelled in ASCII: a Unicode ``\w`` costs a category
#: lookup per character and tripled the cost of a clean line (a non-ASCII letter before a digit
#: now counts as a boundary, which can only redact more).
#: Every rule but the title starts with a digit, "(" or "+", the title with D, M or P: one test
#: sends a capitalised word past the seven number shapes at once (the order of the rules, which
#: decides between them, is kept).
#: A digit starts a value only in one of these shapes, each the least its rules need: five
#: digits after a state code (ZIP; an MRN or account number is not tried against the seven rules),
#: three or four then a separator and a digit (SSN, card, phone), two dots between
#: short numbers (IPv4), a number then a capitalised word (street address), a leading "1" before
#: a phone number. ``200 in``, ``1.53 ms``, ``v2``, ``3 retries`` fail here, before the rules.
_DIGIT_VALUE_AHEAD = (
    r"(?<=[A-Z]{2}[ \t])\d{5}|\d{3,4}[ .-]\d|\d{1,3}\.\d{1,3}\.\d|\d{1,6}[A-Za-z]?[ \t]+[A-Z]"
    r"|1[ .-]?(?:\(|\d{3}[ .-]\d)|[1-6]\d{10}"
)
VALUE_SCAN = (
    r"[^a-zA-Z0-9_.+\]-](?=[0-9(+DMP])(?=(?:(?=[(+]|"
    + _DIGIT_VALUE_AHEAD
    + r")(?:"
    + "|".join(f"(?P<w{i}>{rx})" for i, (_, rx) in enumerate(ANCHORED_VALUE_RULES[:-1]))
    + f")|(?P<w{len(ANCHORED_VALUE_RULES) - 1}>{ANCHORED_VALUE_RULES[-1][1]})"
    + r"))"
)

#: Value matches starting where one of these starts are left alone (durations, versions).
SOFT_AT = re.compile(
    r"\d+(?:\.\d+)?[ ]?(?:ns|us|µs|ms|s|sec|secs|seconds|min|mins|minutes|h|hrs|hours)(?!\w)"
    r"|(?!\d{3}\.\d{3}\.\d{4}(?!\d)|\d{3}\.\d{2}\.\d{4}(?!\d))\d{1,4}\.\d{1,4}\.\d{1,6}(?:[-+][0-9A-Za-z.]+)?(?!\.?\d)"
)
#: ... and value matches right after one of these labels (``status=200``, ``correlation_id=...``).
SOFT_LABELS = (
    "status",
    "status_code",
    "statuscode",
    "status code",
    "http.status_code",
    "http.response.status_code",
    "correlation_id",
    "correlation-id",
    "correlationid",
    "x-correlation-id",
    "request_id",
    "request-id",
    "requestid",
    "x-request-id",
    "trace_id",
    "traceid",
    "span_id",
    "spanid",
    "parent_id",
    "parentid",
    "http/1.0",
    "http/1.1",
    "http/2",
    "http/2.0",
    "http/3",
)

# ------------------------------------------------------------------ key names (mappings)

_KEY_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

#: Normalised key -> kind, from the one vocabulary (every person role is a NAME key too).
_KEY_EXACT: dict[str, str] = vocabulary.key_phrases()

# Suffixes that name a PHI field whatever comes before (``home_phone``, ``guarantor_ssn``).
_KEY_SUFFIX = {
    "ssn": "SSN",
    "mrn": "MRN",
    "dob": "DOB",
    "email": "EMAIL",
    "phone": "PHONE",
    "fax": "FAX",
    "zip": "ZIP",
    "zipcode": "ZIP",
    "postalcode": "ZIP",
    "birthdate": "DOB",
    "dateofbirth": "DOB",
}
# Suffixes that are PHI only after a person word (``patient_name`` yes, ``service_name`` no).
_KEY_PERSON_SUFFIX = {
    "name": "NAME",
    "names": "NAME",
    "address": "ADDRESS",
    "addr": "ADDRESS",
    "id": "MRN",
    "number": "MRN",
    "city": "ADDRESS",
    "street": "ADDRESS",
}


def classify_key(key: str) -> str | None:
    """The PHI kind a mapping key names (``patientName``, ``patient_ssn``, ``DOB``), or None."""
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    if not words:
        return None
    if len(words[-1]) > 3 and words[-1].endswith("s") and words[-1] not in ("address", "sms"):
        words[-1] = words[-1][:-1]  # phones, emails, addresses -> the singular
    if words[-1] == "addresse":
        words[-1] = "address"
    joined = "".join(words)
    kind = _KEY_EXACT.get(joined)
    if kind is not None:
        return kind
    last = words[-1]
    kind = _KEY_SUFFIX.get(last)
    if kind is not None:
        return kind
    for n in (2, 3):  # multi-word suffixes: date_of_birth, phone_number, street_address
        if len(words) > n:
            kind = _KEY_EXACT.get("".join(words[-n:]))
            if kind is not None and (kind not in ("NAME", "ADDRESS", "MRN") or words[-n - 1] in PERSON_WORDS):
                return kind
    kind = _KEY_PERSON_SUFFIX.get(last)
    if kind is not None and len(words) > 1 and words[-2] in PERSON_WORDS:
        if kind == "MRN" and words[-2] not in ("patient", "pt", "person", "member", "beneficiary"):
            return None
        return kind
    if len(words) > 1 and words[-2] in PERSON_WORDS and _KEY_EXACT.get(last) not in (None, "IP"):
        return _KEY_EXACT[last]
    return None


# ------------------------------------------------------------------ the stem trie


def build_trie(words: dict[str, tuple[bool, bool]]) -> str:
    """A regex matching a non-alphanumeric character then one of ``words``, run over ``" " + text``.

    The words are factored into a trie so each word start costs one branch, and the leading
    character class lets the engine skip through the middle of words in C.

    ``words`` maps a word to ``(whole_word, strict)``: a whole word must not be followed by a
    letter or digit (short stems like ``dob``, ``fin``); a strict word must not follow ``_``,
    ``.`` or ``-`` either (``name`` in ``service_name``). Each test sits after the word, not
    before it, so the engine can still skip ahead on the first character.
    """
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict, prefix: str) -> str:  # type: ignore[type-arg]
        alts = [re.escape(ch) + emit(child, prefix + ch) for ch, child in sorted(node.items()) if ch]
        end = ""
        if "" in node:
            whole, strict = words[prefix]
            before = "[a-z0-9_.-]" if strict else "[a-z0-9]"
            end = f"(?<!{before}{re.escape(prefix)})" + ("(?![a-z0-9])" if whole else "")
        if not alts:
            return end
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if end:
            return f"(?:{body}|{end})"
        return body

    return "[^a-z0-9](?:" + emit(root, "") + ")"
