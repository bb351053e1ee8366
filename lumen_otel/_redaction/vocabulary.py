"""The PHI vocabulary: every word that names a person or an identifier, written once.

The redactor recognises these words in four places: as label stems in text (``mother: Jane``),
inside the label regexes, as mapping keys (``extra={"mother": ...}``) and in the collector's RE2
rules. They used to be four hand-kept lists, so a word added to one was missed by the others
(``guardian`` was a label in text but not a key). Everything below is the only copy:
``patterns.py`` builds the key table and the person-label rule from it, ``re2.py`` the
collector's rules, and ``tests/test_vocabulary.py`` checks every word is found both ways.

A *phrase* is lower case, its words separated by single spaces. As a label it matches with any
of `` ``, ``_``, ``.``, ``-`` or nothing between the words (``next of kin``, ``next_of_kin``,
``nextOfKin``); as a key the same, in any casing.
"""

from __future__ import annotations

import re

__all__ = [
    "KEYS",
    "NOT_KEYS",
    "PERSON_ROLES",
    "PERSON_VERBS",
    "VERBS_BEFORE_ROLES",
    "key_phrases",
    "phrase_regex",
    "phrase_stems",
]

#: People a record names besides the patient: relatives, contacts, payers' people, clinicians.
#: Each is a label (``guardian: Jane Doe``, ``spoke to the guardian, Jane Doe``) and a key whose
#: value is a name (``{"guardian": "Jane Doe"}``).
PERSON_ROLES: tuple[str, ...] = (
    "patient",
    "pt",
    "spouse",
    "mother",
    "father",
    "guardian",
    "legal guardian",
    "guarantor",
    "subscriber",
    "insured",
    "policy holder",
    "policyholder",
    "next of kin",
    "nok",
    "emergency contact",
    "attending",
    "referring",
    "physician",
    "doctor",
    "pcp",
    "surgeon",
    "son",
    "daughter",
    "wife",
    "husband",
    "parent",
    "sibling",
    "brother",
    "sister",
    "caregiver",
    "care giver",
    "relative",
    "responsible party",
)

#: Roles that are labels in text but not keys: as mapping keys they are ordinary technical words
#: (a span's ``parent``, a ``relative`` path, a tree node's ``sibling``).
NOT_KEYS = frozenset({"parent", "relative", "sibling"})

#: Words after which a person's name follows with no label: ``caller Maria Lopez``, ``report for
#: John Smith``, ``spoke with Anna Bell``, ``seen by Peter Parker``. Only names of two or more
#: capitalised words are taken after them (``seen by Cardiology`` stays).
PERSON_VERBS: tuple[str, ...] = (
    "caller",
    "report for",
    "records for",
    "spoke with",
    "spoke to",
    "talked to",
    "talked with",
    "seen by",
    "examined by",
    "treated by",
    "referred by",
    "visited by",
    "accompanied by",
    "directed by",
    "dictated by",
    "transcribed by",
    "signed by",
    "electronically signed by",
    "cosigned by",
    "reviewed by",
    "approved by",
    "authored by",
    "attended by",
    "interpreted by",
)

#: Of :data:`PERSON_VERBS`, those usually followed by a role or a department ("seen by Cardiology",
#: "reviewed by Attending Physician"). In process the words after them are checked against a list
#: of such words; RE2 has no look-ahead to do that, so the collector's rules leave these verbs out.
VERBS_BEFORE_ROLES = frozenset(
    {
        "seen by",
        "examined by",
        "treated by",
        "referred by",
        "visited by",
        "signed by",
        "electronically signed by",
        "cosigned by",
        "reviewed by",
        "approved by",
        "authored by",
        "attended by",
        "interpreted by",
    }
)

#: Mapping keys per kind (besides every :data:`PERSON_ROLES` phrase, which is a NAME key).
KEYS: dict[str, tuple[str, ...]] = {
    "NAME": (
        "name",
        "names",
        "full name",
        "first name",
        "last name",
        "given name",
        "family name",
        "middle name",
        "maiden name",
        "surname",
        "forename",
        "legal name",
        "preferred name",
        "patient name",
        "next of kin",
        "subscriber name",
        "insured name",
        "mothers maiden name",
    ),
    "SSN": (
        "ssn",
        "social security",
        "social security number",
        "social security no",
        "sin",
        "tax id",
        "tin",
        "itin",
    ),
    "MRN": (
        "mrn",
        "medical record",
        "medical record number",
        "medical record no",
        "patient id",
        "patient identifier",
        "patient number",
        "patient no",
        "chart number",
        "chart no",
        "chart id",
        "empi",
        "record number",
    ),
    "DOB": ("dob", "date of birth", "birth date", "birthday", "born", "born on", "bday"),
    "DATE": (
        "admit date",
        "admission date",
        "admitted",
        "discharge date",
        "discharged",
        "death date",
        "date of death",
        "died",
        "dod",
        "deceased date",
        "date of service",
        "service date",
        "visit date",
        "appointment date",
        "surgery date",
        "procedure date",
    ),
    "EMAIL": ("email", "email address", "mail", "email addr"),
    "PHONE": (
        "phone",
        "phone number",
        "phone no",
        "telephone",
        "tel",
        "mobile",
        "mobile number",
        "cell",
        "cell phone",
        "pager",
        "contact number",
        "home phone",
        "work phone",
        "sms",
    ),
    "FAX": ("fax", "fax number", "fax no"),
    "ADDRESS": (
        "address",
        "street address",
        "street",
        "address line",
        "address line1",
        "address line2",
        "addr",
        "addr1",
        "addr2",
        "city",
        "town",
        "county",
        "residence",
        "home address",
        "mailing address",
    ),
    "ZIP": ("zip", "zip code", "postal code", "post code", "zip4"),
    "IP": (
        "ip",
        "ip address",
        "client ip",
        "remote ip",
        "remote addr",
        "remote address",
        "client address",
        "peer address",
        "source address",
        "source ip",
        "x forwarded for",
        "forwarded for",
        "real ip",
        "x real ip",
    ),
    "ACCOUNT": (
        "account",
        "account number",
        "account no",
        "account id",
        "acct",
        "acct number",
        "acct no",
        "billing account",
        "encounter number",
        "visit number",
        "claim number",
        "claim id",
        "fin",
        "csn",
        "card number",
        "card no",
        "credit card",
        "credit card number",
        "cc",
        "cc number",
        "pan",
        "iban",
        "bank account",
    ),
    "PLAN_ID": (
        "member id",
        "member number",
        "member no",
        "policy number",
        "policy no",
        "policy id",
        "beneficiary id",
        "beneficiary number",
        "subscriber id",
        "subscriber number",
        "insurance id",
        "insurance number",
        "health plan id",
        "plan beneficiary number",
        "medicare id",
        "medicare number",
        "medicaid id",
        "medicaid number",
        "mbi",
        "hicn",
        "group number",
    ),
    "LICENSE": (
        "license",
        "licence",
        "license number",
        "licence number",
        "drivers license",
        "driver license",
        "dl",
        "dl number",
        "certificate number",
        "passport",
        "passport number",
    ),
    "DEVICE": (
        "device id",
        "device serial",
        "serial number",
        "serial",
        "sn",
        "udi",
        "imei",
        "meid",
        "mac address",
        "mac",
        "implant id",
        "implant serial",
    ),
    "VEHICLE": ("vin", "vehicle id", "license plate", "licence plate", "plate", "plate number"),
    "BIOMETRIC": (
        "fingerprint",
        "voiceprint",
        "retina scan",
        "iris scan",
        "face id",
        "biometric",
        "biometric id",
        "biometric hash",
        "biometric template",
    ),
    "PHOTO": (
        "photo",
        "photo url",
        "photograph",
        "face image",
        "headshot",
        "portrait",
        "profile photo",
        "profile picture",
        "avatar",
        "picture",
    ),
}


def key_phrases() -> dict[str, str]:
    """Normalised key (lower case, no separators) -> kind, for every key phrase and person role."""
    table: dict[str, str] = {}
    for kind, phrases in KEYS.items():
        for phrase in phrases:
            table["".join(phrase.split())] = kind
    for phrase in PERSON_ROLES:
        if phrase in NOT_KEYS:
            continue
        table.setdefault("".join(phrase.split()), "NAME")
    return table


def phrase_regex(phrases: tuple[str, ...], sep: str = r"[ _.-]?") -> str:
    """One alternation matching each phrase with ``sep`` between its words, longest first."""
    ordered = sorted(set(phrases), key=lambda p: (-len(p), p))
    return "(?:" + "|".join(sep.join(re.escape(w) for w in p.split()) for p in ordered) + ")"


def phrase_stems(phrases: tuple[str, ...]) -> tuple[str, ...]:
    """The words a label of these phrases can start with (as the stem trie sees them)."""
    stems: dict[str, None] = {}
    for phrase in phrases:
        words = phrase.split()
        stems[words[0]] = None
        stems["".join(words)] = None
    return tuple(stems)
