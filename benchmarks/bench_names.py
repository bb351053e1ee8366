"""The unlabelled name and place detector (lumen_otel/_redaction/names.py) on the outside PHI corpus.

Three engines over tests/data/phi-corpus/corpus.jsonl and clean_notes.jsonl:

  lumen      ``Redactor().redact_text(text)`` alone
  names      the detector alone: its spans masked as ``[REDACTED:NAME]`` / ``[REDACTED:ADDRESS]``
  combined   the detector's spans masked first, then ``Redactor().redact_text`` on the result

Printed per engine: name and address PHI strings leaked (before/after), all PHI leaked, keep
strings lost, clean notes changed (with the first changed ones), then the cost per line (µs,
best of several timeit runs) of the detector and of the redactor on a clean line and a PHI line.
``--first``, ``--last`` and ``--cities`` size the word lists (most frequent first) to weigh a
longer list against the clean notes it changes.

    .venv/bin/python benchmarks/bench_names.py [--first N] [--last N] [--cities N] [--show-leaks N]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections import Counter
from collections.abc import Callable, Sequence

import _common
from bench_phi_corpus import CLEAN_NOTES, CORPUS, Item, contains, load, without_placeholders

sys.path.insert(0, str(_common.REPO))

from lumen_otel._redaction import Redactor
from lumen_otel._redaction.names import NameDetector

CLEAN_LINE = "Pt on Heparin drip, PT C/O SOB; will follow up with Cardiology in the ICU tomorrow."
PHI_LINE = "Ms. Jones flew to Den Haag; caller Marcus Paulsen lives at 74 Sikelianou Street, Apt 5."
SHORT_LINE = "request completed in 12 ms"
#: no capital after a space, no digit, colon or caret: the pre-check's fast path
PLAIN_LINE = "patient denies chest pain or shortness of breath, tolerating diet"


def masker(detector: NameDetector) -> Callable[[str], str]:
    def mask(text: str) -> str:
        spans = detector.find(text)
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end, kind in spans:
            out.append(text[pos:start])
            out.append(f"[REDACTED:{kind}]")
            pos = end
        out.append(text[pos:])
        return "".join(out)

    return mask


def evaluate(items: Sequence[Item], notes: Sequence[Item], engine: Callable[[str], str]) -> dict[str, object]:
    leaked: Counter[str] = Counter()
    total: Counter[str] = Counter()
    keep_lost = 0
    leaks: list[tuple[str, str, str]] = []
    for item in items:
        output = engine(item["text"])
        scanned = without_placeholders(output)
        for phi in item["phi"]:
            kind = f"{item['kind']}:{phi['kind']}" if phi["kind"] in ("name", "address") else item["kind"]
            total[kind] += 1
            if contains(scanned, phi["value"]):
                leaked[kind] += 1
                leaks.append((kind, phi["value"], item["text"][:120]))
        keep_lost += sum(keep not in output for keep in item["keep"])
    changed = []
    for note in notes:
        output = engine(note["text"])
        if output != note["text"]:
            changed.append((note["text"][:140], output[:140]))
    return {"leaked": leaked, "total": total, "keep_lost": keep_lost, "changed": changed, "leaks": leaks}


def best_us(func: Callable[[str], object], line: str, number: int) -> float:
    runs = timeit.repeat(lambda: func(line), number=number, repeat=5)
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=int, default=5000)
    parser.add_argument("--last", type=int, default=20000)
    parser.add_argument("--cities", type=int, default=0, help="cities kept, most populous first (0: all)")
    parser.add_argument(
        "--show-leaks", type=int, default=0, help="print this many remaining name/address leaks"
    )
    parser.add_argument("--show-changed", type=int, default=10, help="print this many changed clean notes")
    args = parser.parse_args()

    items, notes = load(CORPUS), load(CLEAN_NOTES)
    detector = NameDetector(first_names=args.first, surnames=args.last, cities=args.cities or None)
    redactor = Redactor()
    mask = masker(detector)
    engines: dict[str, Callable[[str], str]] = {
        "lumen": redactor.redact_text,
        "names": mask,
        "combined": lambda t: redactor.redact_text(mask(t)),
    }
    print(f"== bench_names: first names {args.first}, surnames {args.last}, cities {args.cities or 'all'}")
    print(f"corpus: {len(items)} items, {len(notes)} clean notes")
    kinds = ("text:name", "text:address", "hl7:name", "hl7:address", "text", "hl7")
    header = (
        f"{'engine':<9}"
        + "".join(f"{k:>16}" for k in kinds)
        + f"{'all PHI':>16}{'keep lost':>11}{'notes chg':>11}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for name, engine in engines.items():
        r = evaluate(items, notes, engine)
        results[name] = r
        leaked, total = r["leaked"], r["total"]
        assert isinstance(leaked, Counter) and isinstance(total, Counter)
        cells = "".join(f"{f'{leaked[k]}/{total[k]}':>16}" for k in kinds)
        all_leaked, all_total = sum(leaked.values()), sum(total.values())
        changed = r["changed"]
        assert isinstance(changed, list)
        print(
            f"{name:<9}{cells}{f'{all_leaked}/{all_total} {100 * all_leaked / all_total:.1f}%':>16}"
            f"{r['keep_lost']:>11}{f'{len(changed)}/{len(notes)}':>11}"
        )
    for before, after in results["combined"]["changed"][: args.show_changed]:  # type: ignore[index]
        print(f"  changed: {before!r}\n       ->  {after!r}")
    for kind, value, text in results["combined"]["leaks"][: args.show_leaks]:  # type: ignore[index]
        if kind.endswith(("name", "address")):
            print(f"  leak {kind}: {value!r} in {text!r}")

    print("\ncost per line (µs, best of 5 runs)")
    for label, line in (
        ("plain", PLAIN_LINE),
        ("clean", CLEAN_LINE),
        ("short", SHORT_LINE),
        ("phi", PHI_LINE),
    ):
        det = best_us(detector.find, line, 20000)
        red = best_us(redactor.redact_text, line, 5000)
        print(f"  {label:<6} detector {det:7.2f}   redactor {red:7.2f}   detector/redactor {det / red:5.2f}")
    corpus_texts = [n["text"] for n in notes]
    start = timeit.default_timer()
    for text in corpus_texts:
        detector.find(text)
    per_note = (timeit.default_timer() - start) / len(corpus_texts) * 1e6
    start = timeit.default_timer()
    for text in corpus_texts:
        redactor.redact_text(text)
    per_note_red = (timeit.default_timer() - start) / len(corpus_texts) * 1e6
    print(
        f"  clean notes (mean of {len(corpus_texts)}): detector {per_note:.2f}   redactor {per_note_red:.2f}"
    )


if __name__ == "__main__":
    main()
