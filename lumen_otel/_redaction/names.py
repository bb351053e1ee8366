"""Person names and places that carry no label: ``User: Marcus Paulsen``, ``flew to Den Haag``.

The label rules in ``patterns.py`` catch a name that follows a word saying what it is
(``patient John Smith``, ``Name: ...``). Free text often names people and places without one:
a title (``Ms. Jones``), a known first name before a capitalised word (``Marcus Paulsen``), a cue
verb (``says Gerste``), a list of surnames (``Brabec, Doyle and Gonzalez``), a street address in
one of several languages (``74 Sikelianou Street``, ``Kopfhölzistrasse 45``), a post box or a
military address (``PSC 4095, Box 8316``, ``APO AE 85103``), any place after a verb of living or
travelling (``flew to Den Haag``), a known city after a preposition (``in Miami``) or before a
country (``Gdańsk, Poland``).

No model: word lists (US Census 1990 first names and surnames, GeoNames cities, see
``data/README.md``) and shapes. Every rule needs a capital letter, a digit or a cue word where a
clinical sentence rarely has one, and the lists are filtered through stop words that are also
clinical or everyday English (``Will``, ``May``, ``Grant``, ``Rose``, ``Mobile``), so a PHI-free
clinical sentence stays as it is. Eponyms (``Austin Flint murmur``, ``Rose Bengal stain``) are
left alone when an eponym noun follows; an eponym without one is a name to this module.

HL7 v2 messages are the HL7 module's job (it knows the fields): ``find_unlabelled`` returns no
span for text that starts with an ``MSH`` segment.
"""

from __future__ import annotations

import gzip
import re
import sys
from collections.abc import Iterable, Iterator
from functools import lru_cache
from importlib import resources

__all__ = ["NameDetector", "find_unlabelled"]

Span = tuple[int, int, str]


#: Upper- and lower-case letters of the Latin, Greek and Cyrillic scripts. Latin Extended
#: alternates the two cases letter by letter, so it sits in both classes (a short class keeps
#: the regexes fast); ``_capital`` checks the real case of a word where that matters.
_UP = "[A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u024f\u0386-\u03ab\u0400-\u042f]"
_LO = "[a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f\u03ac-\u03ce\u0430-\u045f]"
#: a capitalised word (``Jones``, ``O'Neil``, ``Lepistö``, ``Smith-Jones``) or an all-capitals one
_CAP = rf"{_UP}(?:{_LO}+|{_UP}+)(?:['\u2019\-]{_UP}?{_LO}+)*"
_CAP_WORD = re.compile(_CAP)


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


_WORD = re.compile("[^\\W\\d_]+(?:['\u2019\\-][^\\W\\d_]+)*")

#: Where the detector may have something to do: a capital after a space (``_PRECHECK``), a caret
#: or a colon; failing those, a lower-case cue (``my name is``, ``call me``, ``po box``,
#: ``apo ae``) or a first word that is a known name or a street. A log line with none of them
#: ("Request completed in 12 ms") costs one regex search and a few substring tests.
_PRECHECK = re.compile(rf"[\s>(\"\u201c]{_UP}")

_TITLES = _words(
    """
    mr mrs ms mx dr prof miss mme mlle herr frau sr sra srta sir dame madam monsieur madame signor
    signora
    """
)
#: titles that are also everyday words in lower case ("miss", "sir"): only capitalised
_CASED_TITLES = _words(
    """
    miss sir dame madam monsieur madame signor signora herr frau
    """
)

#: Cues after which a capitalised word is a person whether or not a list knows it.
_STRONG_CUES = (
    "my name is",
    "name is",
    "name's",
    "names are",
    "call me",
    "called me",
    "calls me",
    "called",
    "my kid",
    "my child",
    "named",
    "i am",
    "i'm",
    "this is",
    "user",
    "caller",
    "says",
    "said",
    "asks",
    "asked",
    "wrote",
    "replied",
    "by",
    "with",
    "to",
    "from",
    "for",
    "dear",
    "hi",
    "hello",
    "thanks",
    "regards",
    "sincerely",
    "attn",
    "attention",
    "contact",
    "spoke with",
    "spoke to",
    "seen by",
    "talked to",
    "speak to",
    "report for",
    "records for",
    "signed by",
    "founders",
    "founder",
)
#: words that a cue accepting an unknown name needs somewhere in the text
_MAX_LIST = 12
_CUE_TRIGGERS = ("name", "call", "user", "says", "said", "founder", "kid", "child")
_CUE_LAST = frozenset(cue.split()[-1] for cue in _STRONG_CUES)
#: of those, the ones ordinary enough that the word after them must be a known name
_WEAK_CUES = frozenset(
    (
        "by",
        "with",
        "to",
        "from",
        "for",
        "this is",
        "i am",
        "i'm",
        "says",
        "said",
        "asks",
        "asked",
        "wrote",
        "replied",
        "contact",
        "spoke with",
        "spoke to",
        "seen by",
        "talked to",
        "speak to",
        "report for",
        "records for",
        "signed by",
        "dear",
        "hi",
        "hello",
        "thanks",
        "regards",
        "sincerely",
        "attn",
        "attention",
    )
)

#: Capitalised words that are in the census lists but, in a clinical or everyday sentence, are
#: no name: months, weekdays, modal verbs, common nouns, clinical terms and department names.
_STOP = _words(
    """
    a an the and or of in on at to for from by with as is are was be it its this that these those he
    she they we i you me my your his her our their him them us not no yes if so but also then than
    when where what who why how all any some each every other such same own new old good bad best
    more most less least very much many few january february march april may june july august
    september october november december jan feb mar apr jun jul aug sep sept oct nov dec monday
    tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
    will can shall must might could would should did does do has have had said says mark grant rose
    hope joy faith grace charity patience prudence honor honour trust amber ruby pearl ivy holly
    iris daisy lily violet jasmine heather olive hazel ginger candy cherry crystal dawn summer
    autumn winter spring star sky rain storm river brook lake dale glen wood woods forest field
    fields heath moor hill hills art bill frank guy jack ray dean gene sterling chase pat sue don ed
    bob rob pete pat penny sandy rusty buck will may june august major minor king queen prince duke
    earl baron count bishop pope judge sheriff young old long short small little large big strong
    brown black white green gray grey red blue gold silver rich price cash pay money bank banks page
    book law laws rule case cases care cook baker miller smith mason carter turner walker hunter
    fisher porter foster parker taylor tailor butler cooper wright warren north south east west
    northern southern eastern western central upper lower left right middle head neck chest back arm
    arms leg legs hand hands foot feet heart lung lungs liver kidney bone bones skin blood pain
    fever cough rash mass lesion node nodes lobe lobes patient patients pt pts doctor doctors nurse
    nurses staff team family mother father son daughter wife husband hospital clinic office room
    ward unit floor bed suite center centre department dept service services medicine surgery
    cardiology oncology radiology neurology pathology pediatrics psychiatry urology nephrology
    emergency recovery rehab rehabilitation pharmacy lab labs laboratory imaging icu er ed or pacu
    ccu nicu picu micu sicu history exam examination assessment plan impression diagnosis diagnoses
    procedure procedures note notes instructions instruction followup follow visit visits
    appointment discharge admission admit admitted report results result review summary status date
    time day days week weeks month months year years today tomorrow yesterday morning evening night
    noon normal negative positive stable acute chronic mild moderate severe bilateral type grade
    stage level score scale test tests sign signs heparin warfarin aspirin insulin
    mobile phone fax desk office home work street road
    avenue lane drive way court place mister madam miss sir dame lady lord christian christmas
    easter
    """
)
#: extra stop words for a first name on its own (a capitalised first name mid-sentence)
_STOP_ALONE = _words(
    """
    ann anna april carol chance christian clay dallas devon eve florence georgia heath jordan
    lincoln paris austin houston phoenix denver chester carolina virginia victoria sydney regina
    maria sharon jean lou max noel glenn harding murray foley gram bell graves cushing addison crohn
    wilson
    """
)

#: Nouns after which a name is an eponym (``Austin Flint murmur``, ``Bell's palsy``), not a person.
_EPONYM_HEADS = _words(
    """
    murmur murmurs sign signs syndrome disease disorder test tests stain stains reflex reflexes
    maneuver manoeuvre procedure score scale criteria classification fracture fractures node nodes
    tumor tumour lymphoma palsy phenomenon law line lines triad operation solution catheter tube
    cell cells body bodies hernia ulcer cyst position method technique repair incision index
    equation formula ratio duct gland ligament nerve canal space point spot spots bag clamp forceps
    retractor needle sheath approach block flap graft angle staging grade grading type lesion
    lesions effect rule rules coma sarcoma anemia anaemia shunt valve circle triangle pouch membrane
    disc disk nodule nodules test's
    """
)

_UNITS = (
    r"(?:mg|mcg|µg|ug|g|kg|ml|mL|l|L|mmol|mEq|meq|units?|iu|IU|%|mm|cm|hrs?|h|min|bpm|mmHg|x|tabs?|caps?)\b"
)

_EN_SUFFIX_WORDS = _words(
    """
    street st avenue ave av road rd lane ln boulevard blvd drive dr way court ct courts place pl
    terrace ter square sq highway hwy parkway pkwy circle cir crescent cres close gardens gdns row
    loop pass gateway point trail trl heights hts alley mews walk grove quay wharf plaza park green
    rise vale view ridge run path pike expressway freeway turnpike junction crossing causeway
    esplanade promenade broadway embankment meadow meadows estate estates villa villas hollow bend
    cove fork landing manor oval station summit track union valley
    """
)
_EN_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Av|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|Court|Ct|Courts|Place|Pl|Terrace|Ter|"
    r"Square|Sq|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Crescent|Cres|Close|Gardens|Gdns|Row|Loop|Pass|Gateway|Point|"
    r"Trail|Trl|Heights|Hts|Alley|Mews|Walk|Grove|Quay|Wharf|Plaza|Park|Green|Rise|Vale|View|Ridge|Run|Path|"
    r"Pike|Expressway|Freeway|Turnpike|Junction|Crossing|Causeway|Esplanade|Promenade|Broadway|Embankment|"
    r"Meadows?|Estates?|Villas?|Hollow|Bend|Cove|Fork|Landing|Manor|Oval|Station|Summit|Track|Union|Valley)\b\.?"
)
#: street words that end a word: Kopfhölzistrasse, Koskikatu, Drottninggatan, Slovenčeva...
_SUFFIX_WORDS = (
    r"[^\W\d_]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|gatan|vägen|gränd|gade|vej|veien|"
    r"vegen|gata|katu|tie|kuja|polku|utca|útja|ulica|ulice|straat|laan|gracht|kade|plein|steeg|singel|dreef|"
    r"terrasse|brücke|bridge|sikátor|körút|rakpart|rkp\.)"
)
_SUFFIX_ENDINGS = tuple(
    _words(
        """
        straße strasse str weg gasse platz allee ring damm ufer gatan vägen gränd gade vej veien vegen
        gata katu tie kuja polku utca útja ulica ulice straat laan gracht kade plein steeg singel dreef
        terrasse brücke bridge sikátor körút rakpart rkp
        """
    )
)
_PREFIX_WORDS = (
    r"(?:Rua|Rue|Calle|Carrera|Avenida|Avda\.?|Av\.|Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Carrer|Praça|"
    r"Travessa|Alameda|Boulevard|Chemin|Allée|Impasse|Quai|Paseo|Plaza|Camino|Ronda|Ulitsa|ul\.|ulica|Odos|"
    r"Leoforos|Λεωφόρος|Οδός)"
)
_STREETS_PREFIXES = frozenset(
    w.lower().rstrip(".") for w in _PREFIX_WORDS[3:-1].replace("\\.?", "").replace("\\.", "").split("|")
)
_NUM = r"\d{1,6}[A-Za-z]?"
_CAPS = rf"(?:{_CAP}\.?\s+){{0,4}}"
#: Street shapes, each with the words that must be in the text for it to be tried at all.
_STREETS: tuple[tuple[frozenset[str] | tuple[str, ...] | None, re.Pattern[str]], ...] = (
    # 74 Sikelianou Street, 11 Botley Road St., 363 52 Huntly Street
    (
        _EN_SUFFIX_WORDS,
        re.compile(rf"\b{_NUM}(?:\s\d{{1,4}})?\s+{_CAPS}{_CAP}\s+{_EN_SUFFIX}"),
    ),
    # (50668) Kiannonkatu 98, Drottninggatan 5B
    (
        _SUFFIX_ENDINGS,
        re.compile(
            rf"(?:\b\d{{2,6}}\s+)?(?:{_CAP}\s+){{0,3}}\b{_UP}{_SUFFIX_WORDS}\s+\d{{1,4}}[A-Za-z]?\b\.?"
        ),
    ),
    # Kálmán Imre u. 12.
    (frozenset({"u"}), re.compile(rf"(?:\b\d{{2,6}}\s+)?(?:{_CAP}\s+){{1,3}}u\.\s+\d{{1,4}}\b\.?")),
    # Rua Cidade de Maracajá 468, Via Roma 12, Calle Mayor, 5
    (
        _STREETS_PREFIXES,
        re.compile(
            rf"(?:\b\d{{2,6}}\s+)?{_PREFIX_WORDS}\s+(?:(?:{_CAP}|de|da|do|dos|das|del|della|di|la|le|du|des)\s+){{0,5}}"
            rf"{_CAP},?\s+\d{{1,4}}[A-Za-z]?\b"
        ),
    ),
    # 12 Rue de la Paix, 5 Avenida Paulista
    (
        _STREETS_PREFIXES,
        re.compile(
            rf"\b{_NUM},?\s+{_PREFIX_WORDS}\s+(?:(?:{_CAP}|de|da|do|dos|das|del|della|di|la|le|du|des)\s+){{0,5}}{_CAP}"
        ),
    ),
    # 0138 Brisas 6802, 213 Pilekrogen 53: a house number on both sides of a capitalised name
    (
        None,
        re.compile(rf"\b\d{{2,6}}\s+(?:{_CAP}\s+){{0,2}}{_UP}{_LO}+\s+\d{{1,4}}\b(?![.,]\d)(?!\s*{_UNITS})"),
    ),
)
_UNIT_LINE = re.compile(
    r"\b(?:Apt|Apartment|Suite|Ste|Flat|Bldg)\.?\s*#?\s*\d{1,5}[A-Za-z]?\b(?!\s*" + _UNITS + ")"
)
_POST_BOX = re.compile(
    r"\b(?:p\.?\s?o\.?\s*box|post\s+office\s+box|postfach|apartado|psc\s+\d{1,5},?\s*box|unit\s+\d{1,5},?\s*box)"
    r"\s*\d{1,6}\b|\b(?:apo|fpo|dpo)\s+(?:aa|ae|ap)\s+\d{5}\b",
    re.IGNORECASE,
)
#: a capitalised phrase after a word that often comes before a place
_PLACE_PREP = re.compile(
    r"(?<![^\s(\"“])([Ii]n|[Tt]o|[Ff]rom|[Aa]t|[Nn]ear|[Oo]f|[Oo]utside|[Aa]round|[Tt]owards?|[Vv]ia|[Vv]isit(?:ing|ed)?"
    r"|[Hh]ometown|[Cc]ity|[Ww]here:|[Aa]ddress:)"
    rf"\s+((?:(?:{_CAP}|de|del|la|le|nad|am|upon|sur)[ -]){{0,3}}{_CAP})"
)
#: before ``in``/``to``/...: the place that follows is one whatever it is (``grew up in SUND``)
_PLACE_VERB_BEFORE = re.compile(
    r"(?i:(?:lives?|lived|living|grew\s+up|born|resides?|resided|residing|stays?|stayed|staying|based|home|"
    r"moved|flew|flying|fly|travel(?:l)?ed|travel(?:l)?ing|drove|driving|relocated|relocating|trip|journey|"
    r"emigrated|immigrated|vacation|holiday|arrived|arriving)(?:\s+back)?)"
    r"\s+$"
)
_NOT_PLACES = _words(
    """
    ER ED ICU OR PACU CCU NICU PICU MICU SICU OT PT ENT
    """
)
#: the last word of a hospital's own places: "moved to Step Down Unit", "returned to Recovery Room"
_FACILITY_WORDS = _words(
    """
    unit units ward wards floor room rooms bay wing department dept clinic clinics service services
    center centre hospital hospice home lab laboratory theatre theater suite station area icu er ed
    or
    """
)
_STRONG_PLACE_WORDS = _words(
    """
    visiting visited visit hometown city where: address:
    """
)
_REGION_POSTCODE = re.compile(rf"((?:{_CAP}\s){{0,2}}{_CAP})(?:\s+\([^)\n]{{1,20}}\))?\s+(\d{{4,6}})\b")
_XPN = re.compile(r"(?<![\w^|])([A-Z][A-Za-z'\-]+)\^([A-Z][A-Za-z'\-]+)(?:\^[A-Z][A-Za-z'.\-]*)*(?![\w^])")
_DIGIT = re.compile(r"[0-9]")
#: "Columbus OH 43215", "Springfield, IL 62704-1234": a town, a USPS state code and a ZIP code
_US_TOWN_ZIP = re.compile(
    rf"(?:(?:{_CAP} ){{0,2}}{_CAP},? )?"
    r"(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|PR|RI|S[CD]|T[NX]|UT|"
    r"V[AIT]|W[AIVY]|AE|AP|AA) \d{5}(?:-\d{4})?\b"
)
_SPACE_CAP = re.compile(rf"[\s>(\"\u201c]{_UP}")
_COMMA_CAP = re.compile(rf",\s+{_UP}")
_SPEAKER = re.compile(r"^[ >\t]*([^\W\d_]+):", re.MULTILINE)
_INITIAL_SHAPE = re.compile(rf"{_LO} {_UP}\.? {_UP}{_LO}")
_WITH_INITIAL = re.compile(rf"{_CAP} {_UP}\.? {_UP}{_LO}+")
#: the first line of a letter head or signature: two to four capitalised words or initials
_HEAD_LINE = re.compile(rf"[\s>]*((?:{_CAP}|{_UP}\.?)(?: (?:{_CAP}|{_UP}\.?)){{1,3}})[ \t]*\r?\n")
#: words that start a "Word X Word" phrase that is no name: "Vitamin B Complex", "Type A Influenza"
_NOT_FIRST = _words(
    """
    vitamin hepatitis type group class grade stage phase factor protein part section level zone category
    schedule lead tower block plan option team strep influenza flu covid sars apolipoprotein
    """
)
_SENTENCE_END = re.compile(r"(?:[.!?:;\"\u201c(\n][\s>]*)$")
_CAP_WORDS = re.compile(rf"{_UP}{_LO}+")
_LOWER_TITLE = re.compile(rf"(?:mrs?|ms|mx|dr|prof)\.?\s{{1,2}}{_UP}")
#: "X, <region or city>": the part after the comma, then the place before it
_AFTER_COMMA = re.compile(rf",\s+((?:{_CAP}\s){{0,2}}{_CAP})(?:\s+\(?\w*\)?\s*(\d{{4,6}}))?")
_BEFORE_COMMA = re.compile(rf"(?:{_CAP}[ -]){{0,2}}{_CAP}$")
_POSTCODE = re.compile(r"\s[0-9]{4,6}\b")
_MILITARY = frozenset({"apo", "fpo", "dpo"})
_HL7_START = re.compile(r"\s*MSH[|^~\\&#]")
_ADDRESS_LINE = re.compile(
    rf"^[\s>]*((?:(?:{_CAP}|\(?{_CAP}\)?|\d{{4,6}}|,|-|de|del|nad|am)[ ,-]*){{1,5}})\s*$", re.MULTILINE
)
#: the town (and region, postcode) after a street: "92597 Jahu 80, Liiva", "Farnell Street, LOOMBAH"
_TOWN_AFTER = re.compile(
    rf",\s*(?:\d{{4,6}}\s+)?(?:{_CAP}[ -]){{0,2}}{_CAP}"
    rf"(?:,\s*(?:{_CAP}\s){{0,2}}{_CAP})?(?:,?\s+\d{{4,6}}\b)?"
)


def _load(name: str, limit: int | None) -> frozenset[str]:
    raw = resources.files("lumen_otel._redaction").joinpath("data").joinpath(name).read_bytes()
    lines = gzip.decompress(raw).decode("utf-8").splitlines()
    return frozenset(sys.intern(w) for w in lines[:limit] if w)


class NameDetector:
    """The rules with their word lists; ``find`` returns ``(start, end, kind)`` spans.

    Built once (``find_unlabelled`` keeps one); the sizes are parameters so that the benchmark
    can weigh a longer list against the clean sentences it would change.
    """

    __slots__ = ("_cities", "_first", "_people", "_regions", "_surnames")

    def __init__(
        self,
        *,
        first_names: int | None = 5000,
        surnames: int | None = 20000,
        cities: int | None = None,
    ) -> None:
        self._regions = _load("regions.txt.gz", None)
        self._first = _load("first_names.txt.gz", first_names) - _STOP - self._regions
        self._surnames = _load("surnames.txt.gz", surnames) - _STOP - self._regions
        self._cities = (_load("cities.txt.gz", cities) | self._regions) - _STOP - self._first
        self._people = self._first | self._surnames | _TITLES

    def find(self, text: str) -> list[Span]:
        if _PRECHECK.search(text) is None and "^" not in text and ":" not in text:
            if not self._worth_scanning(text):
                return []
        elif _HL7_START.match(text):
            return []
        spans = list(self._addresses(text))
        if spans or self._may_name(text):
            spans.extend(self._names(text, spans))
            if "\n" in text:
                spans.extend(self._head_line(text, spans))
        return _merge(spans)

    # -----------------------------------------------------------------------------------------
    # names

    def _worth_scanning(self, text: str) -> bool:
        """For a text without a capital after a space, a caret or a colon: can a rule fire?"""
        low = text.lower()
        if "name" in low or "call" in low or "box" in low or "apo" in low or "fpo" in low or "dpo" in low:
            return True
        if not text[:1].isupper():
            return False
        first = _WORD.match(text)
        word = first.group().lower() if first is not None else ""
        return word in self._people or word.endswith(_SUFFIX_ENDINGS)

    def _may_name(self, text: str) -> bool:
        """Whether a name rule can fire: a known name or title, a cue word, a caret."""
        if "^" in text or _LOWER_TITLE.search(text) is not None or _INITIAL_SHAPE.search(text) is not None:
            return True
        if any(w.lower() in self._people for w in _CAP_WORDS.findall(text)):
            return True
        low = text.lower()
        if any(cue in low for cue in _CUE_TRIGGERS):
            return True
        return ":" in text and any(w.lower() in self._first for w in _SPEAKER.findall(text))

    def _head_line(self, text: str, spans: list[Span]) -> Iterator[Span]:
        """The name on the first line of a letter head or signature that has an address below it."""
        m = _HEAD_LINE.match(text)
        if m is None or any(s <= m.start(1) < e for s, e, _k in spans):
            return
        parts = m.group(1).split(" ")
        if any(p.lower().rstrip(".") in _STOP for p in parts):
            return
        if any(kind == "ADDRESS" for _s, _e, kind in spans) or parts[0].lower() in self._first:
            yield m.start(1), m.end(1), "NAME"

    def _known(self, word: str) -> bool:
        low = word.lower()
        return low in self._first or low in self._surnames

    def _names(self, text: str, addresses: list[Span]) -> Iterator[Span]:
        words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        taken = [False] * len(words)
        if addresses:
            spans = sorted(addresses)
            k = 0
            for i, (ws, we, _w) in enumerate(words):
                while k < len(spans) and spans[k][1] <= ws:
                    k += 1
                if k < len(spans) and spans[k][0] <= ws and we <= spans[k][1]:
                    taken[i] = True
        n = len(words)
        i = 0
        while i < n:
            if taken[i]:
                i += 1
                continue
            found = self._name_at(text, words, taken, i)
            if found is None:
                i += 1
                continue
            first, last = found
            if not self._eponym(text, words, last):
                for j in range(first, last + 1):
                    taken[j] = True
                yield words[first][0], words[last][1], "NAME"
            i = last + 1
        if ", " in text or " and " in text or " & " in text:
            yield from self._lists(text, words, taken)
        for m in _XPN.finditer(text) if "^" in text else ():
            if m.group(1).lower() in self._surnames or m.group(2).lower() in self._first:
                yield m.start(), m.end(), "NAME"

    def _name_at(
        self, text: str, words: list[tuple[int, int, str]], taken: list[bool], i: int
    ) -> tuple[int, int] | None:
        """The words ``first..last`` of a name that starts at (or right after) word ``i``."""
        start, end, word = words[i]
        low = word.lower()
        colon = text[end : end + 1] == ":"
        if (
            not word[0].isupper()
            and not colon
            and low not in _TITLES
            and (i == 0 or words[i - 1][2].lower() not in _CUE_LAST)
        ):
            return None
        nxt = i + 1 if i + 1 < len(words) and not taken[i + 1] else None
        # a title: Mr. Pálffy, ms. Marcela, Dr Okafor
        if low in _TITLES and (low not in _CASED_TITLES or word[0].isupper()) and nxt is not None:
            if re.match(r"\.?\s{1,2}$", text[end : words[nxt][0]]) and self._capital(words[nxt][2]):
                return nxt, self._extend(text, words, taken, nxt, 2)
            return None
        # a cue: "my name is lena andersson", "User: Marcus Paulsen", "says Gerste"
        cue = self._cue_before(text, words, i)
        if cue is not None:
            if cue in ("my name is", "call me", "name is") and not word[0].isupper() and low not in _STOP:
                last = i
                while last + 1 < len(words) and last - i < 2 and not taken[last + 1]:
                    gap = text[words[last][1] : words[last + 1][0]]
                    if gap != " " or words[last + 1][2].lower() in _STOP:
                        break
                    last += 1
                return i, last
            quoted = (
                cue in ("says", "said")
                and re.search(r"[\"”'],?\s*\w+\s+$", text[max(0, start - 24) : start]) is not None
            )
            weak = cue in _WEAK_CUES and not quoted
            if self._capital(word) and low not in _STOP and (not weak or self._known(word)):
                return i, self._extend(text, words, taken, i, 2)
        # a speaker at the start of a line: "Nicole: Remember me", "mika: who are you?"
        if colon and low in self._first:
            before = text[max(0, start - 8) : start].rstrip(" >\t")
            if (not before and start <= 8) or before.endswith("\n"):
                return i, i
        if not self._capital(word) or low in _STOP:
            return None
        # a capitalised word, an initial and a capitalised word: Mohmad R. Vizirov, Nikolaj N Møller
        if (
            i + 2 < len(words)
            and low not in _NOT_FIRST
            and not word.isupper()
            and _WITH_INITIAL.match(text, start) is not None
            and words[i + 2][2].lower() not in _STOP
            and not self._eponym(text, words, i + 2)
        ):
            return i, i + 2
        # a known first name and a capitalised word: Marcus Paulsen, Julieta S Almeida
        if low in self._first:
            last = self._extend(text, words, taken, i, 2)
            if last > i:
                return i, last
            sentence_start = start == 0 or _SENTENCE_END.search(text, max(0, start - 6), start) is not None
            if not sentence_start and low not in _STOP_ALONE and len(word) > 2:
                return i, i
            if (
                sentence_start
                and low not in _STOP_ALONE
                and re.match(r"(?:,|\s+(?:is|was|has|had|and|shouted|says|said)\b)", text[end:])
            ):
                return i, i
        return None

    def _capital(self, word: str) -> bool:
        return word[0].isupper() and _CAP_WORD.fullmatch(word) is not None

    def _extend(
        self, text: str, words: list[tuple[int, int, str]], taken: list[bool], i: int, more: int
    ) -> int:
        """The last word of a name that goes on after word ``i`` with up to ``more`` capitalised words."""
        last = i
        while more and last + 1 < len(words) and not taken[last + 1]:
            gap = text[words[last][1] : words[last + 1][0]]
            candidate = words[last + 1][2]
            initial = len(words[last][2]) == 1 or (gap == ". " and len(words[last][2]) == 1)
            if gap not in (" ", ". ") or (gap == ". " and not initial):
                break
            if not candidate[0].isupper() or candidate.lower() in _STOP or candidate.lower() in _EPONYM_HEADS:
                break
            if candidate.isupper() and len(candidate) > 1 and not words[i][2].isupper():
                break
            last += 1
            more -= 1
        return last

    def _cue_before(self, text: str, words: list[tuple[int, int, str]], i: int) -> str | None:
        if i == 0 or words[i - 1][2].lower() not in _CUE_LAST:
            return None
        before = text[max(0, words[i][0] - 24) : words[i][0]].lower()
        before = re.sub(r"[\s:,>\"“]+$", " ", before)
        if not before.endswith(" ") and words[i][0] != 0:
            return None
        for cue in _STRONG_CUES:
            if before.endswith(f" {cue} ") or before == f"{cue} " or before.endswith(f"\n{cue} "):
                return cue
        return None

    def _eponym(self, text: str, words: list[tuple[int, int, str]], last: int) -> bool:
        if last + 1 >= len(words):
            return False
        follow = words[last + 1][2].lower()
        if follow == "s" and last + 2 < len(words):
            follow = words[last + 2][2].lower()
        return follow in _EPONYM_HEADS

    def _lists(self, text: str, words: list[tuple[int, int, str]], taken: list[bool]) -> Iterator[Span]:
        """``Brabec, Doyle and Gonzalez``, ``Marrero and Murphy``: two known names or more in a list."""
        n = len(words)
        i = 0
        while i < n:
            members = [i]
            j = i
            while j + 1 < n and len(members) < _MAX_LIST:
                gap = text[words[j][1] : words[j + 1][0]]
                if gap in {", ", " & ", ", and ", " and "}:
                    members.append(j + 1)
                    j += 1
                    if gap.endswith("and ") or gap == " & ":
                        break
                    continue
                if (
                    gap == " "
                    and words[j + 1][2] == "and"
                    and j + 2 < n
                    and text[words[j + 1][1] : words[j + 2][0]] == " "
                ):
                    members.append(j + 2)
                    j += 2
                break
            ok = (
                len(members) >= 2
                and all(self._capital(words[m][2]) and words[m][2].lower() not in _STOP for m in members)
                and sum(taken[m] or self._known(words[m][2]) for m in members) >= 2
                and not all(taken[m] for m in members)
                and not self._eponym(text, words, members[-1])
            )
            if ok:
                for m in members:
                    if not taken[m]:
                        taken[m] = True
                        yield words[m][0], words[m][1], "NAME"
            i = members[-1] + 1

    # -----------------------------------------------------------------------------------------
    # addresses

    def _place(self, phrase: str) -> bool:
        """A known city or country (a country or US state alone is no identifier, Safe Harbor keeps it)."""
        low = phrase.lower()
        return low in self._cities and low not in _STOP

    def _addresses(self, text: str) -> Iterator[Span]:
        found: list[Span] = []
        digits = _DIGIT.search(text) is not None
        capitals = text[:1].isupper() or _SPACE_CAP.search(text) is not None
        if digits:
            lows = {w.lower() for w in _WORD.findall(text)}
            for needed, regex in _STREETS if capitals else ():
                if needed is None:
                    pass
                elif isinstance(needed, tuple):
                    if not any(w.endswith(needed) for w in lows):
                        continue
                elif lows.isdisjoint(needed):
                    continue
                for m in regex.finditer(text):
                    town = _TOWN_AFTER.match(text, m.end())
                    found.append((m.start(), town.end() if town else m.end(), "ADDRESS"))
            if capitals:
                found.extend((m.start(), m.end(), "ADDRESS") for m in _UNIT_LINE.finditer(text))
            if "box" in lows or lows & _MILITARY:
                for m in _POST_BOX.finditer(text):
                    town = _TOWN_AFTER.match(text, m.end())
                    found.append((m.start(), town.end() if town else m.end(), "ADDRESS"))
        for m in _PLACE_PREP.finditer(text) if capitals else ():
            prep = m.group(1).lower()
            phrase = _trim_place(m.group(2))
            if phrase.lower() in self._regions:
                continue
            strong = prep in _STRONG_PLACE_WORDS or (
                prep in ("in", "to", "from", "at")
                and _PLACE_VERB_BEFORE.search(text, max(0, m.start() - 24), m.start())
            )
            if (
                strong
                and phrase.lower() not in _STOP
                and phrase.upper() not in _NOT_PLACES
                and _FACILITY_WORDS.isdisjoint(m.group(2).lower().split())
            ):
                found.append((m.start(2), m.end(2), "ADDRESS"))
                continue
            for s, e in _sub_phrases(m.start(2), phrase):
                if self._place(text[s:e]):
                    found.append((s, e, "ADDRESS"))
                    break
        for m in _AFTER_COMMA.finditer(text) if _COMMA_CAP.search(text) else ():
            if self._place(m.group(1)):
                before = _BEFORE_COMMA.search(text, max(0, m.start() - 60), m.start())
                found.append((before.start() if before else m.start(1), m.end(), "ADDRESS"))
        if digits and _POSTCODE.search(text):
            found.extend((m.start(), m.end(), "ADDRESS") for m in _US_TOWN_ZIP.finditer(text))
        for m in _REGION_POSTCODE.finditer(text) if digits and _POSTCODE.search(text) else ():
            for s, e in _sub_phrases(m.start(1), m.group(1)):
                if text[s:e].lower() in self._regions:
                    found.append((s, m.end(), "ADDRESS"))
                    break
        if found and "\n" in text:
            found.extend(_address_block(text, found))
        return iter(found)


def _trim_place(phrase: str) -> str:
    """``phrase`` less the stop words and particles at its end ("Osaka Friday" -> "Osaka")."""
    words = phrase.split(" ")
    while len(words) > 1 and (words[-1].lower() in _STOP or words[-1].lower() in _PARTICLES):
        words.pop()
    return " ".join(words)


_PARTICLES = _words(
    """
    de del la le nad am upon sur
    """
)


def _sub_phrases(start: int, phrase: str) -> Iterable[tuple[int, int]]:
    """``(start, end)`` of the phrase and of its shorter tails, longest first: "Den Haag", "Haag"."""
    parts = [m for m in re.finditer(r"\S+", phrase)]
    for k in range(len(parts)):
        yield start + parts[k].start(), start + parts[-1].end()


def _address_block(text: str, found: list[Span]) -> Iterator[Span]:
    """The short lines next to an address line (town, country and postcode lines of a letter head)."""
    lines: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    hit = [any(s < e2 and e > s2 for s2, e2, _k in found) for s, e in lines]
    for k, (s, e) in enumerate(lines):
        if hit[k]:
            continue
        near = any(hit[j] for j in (k - 1, k - 2, k + 1) if 0 <= j < len(lines))
        if not near:
            continue
        m = _ADDRESS_LINE.match(text, s, e)
        if m is not None and m.end() == e and m.group(1).strip(" ,-"):
            yield m.start(1), e, "ADDRESS"
            hit[k] = True


def _merge(spans: list[Span]) -> list[Span]:
    """Spans sorted and without overlaps; an overlap keeps the earlier start and the longer end."""
    out: list[Span] = []
    for start, end, kind in sorted(spans):
        if out and start < out[-1][1]:
            prev = out[-1]
            if end > prev[1]:
                out[-1] = (prev[0], end, prev[2])
            continue
        out.append((start, end, kind))
    return out


@lru_cache(maxsize=1)
def _default() -> NameDetector:
    return NameDetector()


def find_unlabelled(text: str) -> list[Span]:
    """``(start, end, kind)`` of each unlabelled person name (``NAME``) or place (``ADDRESS``) in ``text``.

    >>> [("Ms. Jones flew to Den Haag"[s:e], k) for s, e, k in find_unlabelled("Ms. Jones flew to Den Haag")]
    [('Jones', 'NAME'), ('Den Haag', 'ADDRESS')]
    """
    return _default().find(text)
