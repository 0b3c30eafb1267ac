"""Regenerate publisher/regions/m49.json from the UN M49 taxonomy and CLDR names.

Sources, both pinned through the dev dependencies so the output is reproducible:

- the M49 countries-and-territories taxonomy CSV shipped inside hdx-python-country
  (codes, English and Spanish M49 names, the region / sub-region / intermediate region of each);
- babel's CLDR territory names, for the Spanish names of regions, the Portuguese names of
  everything (M49 has none), and as aliases for inference.

Usage: ``python scripts/gen_regions.py [--check]``; ``--check`` exits 1 if the shipped file differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

import babel
import hdx.location

TAXONOMY_NAME = "Countries & Territories Taxonomy MVP - C&T Taxonomy.csv"
TAXONOMY = Path(hdx.location.__file__).parent / TAXONOMY_NAME
OUT = Path(__file__).resolve().parents[1] / "publisher" / "regions" / "m49.json"

# CLDR's concept or wording differs from M49's for these region codes; the UN Spanish names win.
SPANISH_REGION_OVERRIDES = {
    "001": "Mundo",
    "053": "Australia y Nueva Zelandia",
    "419": "América Latina y el Caribe",
    "830": "Islas del Canal",
}
# The same for Portuguese (CLDR "pt" is Brazilian Portuguese); M49 itself has no Portuguese names.
PORTUGUESE_REGION_OVERRIDES = {
    "001": "Mundo",
    "053": "Austrália e Nova Zelândia",
    "419": "América Latina e Caribe",
    "830": "Ilhas do Canal",
}
LEVELS = ("region", "sub-region", "intermediate-region")
_PARENS = re.compile(r"\s*\([^)]*\)")


def slugify(name: str) -> str:
    """Lower-case English name with hyphens, the slug form DESIGN.md fixes for regions."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def code3(raw: str) -> str:
    """M49 codes are three digits with leading zeros ("13" -> "013")."""
    return f"{int(raw):03d}"


def clean(name: str) -> str:
    """Drop parenthetical qualifiers: "Bolivia (Plurinational State of)" -> "Bolivia"."""
    return _PARENS.sub("", name).strip()


def read_rows(path: Path = TAXONOMY) -> list[dict[str, str]]:
    """The taxonomy rows that are current countries or territories with M49 and ISO codes."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        r
        for r in rows
        if r["m49 numerical code"].strip()
        and r["ISO 3166-1 Alpha 2-Codes"].strip()
        and r["Deprecated"].strip().upper() != "Y"
    ]


def _aliases(names: list[str], official: tuple[str, str]) -> list[str]:
    """Distinct usable alternative names, sorted; inverted forms ("X, Republic of") are skipped."""
    out = set()
    for raw in names:
        name = clean(raw)
        if not name or "," in name or not name[0].isupper() or name in official:
            continue
        out.add(name)
    return sorted(out)


def generate(path: Path = TAXONOMY) -> dict[str, Any]:
    """Build the JSON document: one record per region and country, deterministic order."""
    en, es = babel.Locale("en").territories, babel.Locale("es").territories
    pt = babel.Locale("pt").territories
    regions: dict[str, dict[str, Any]] = {}

    def region(code: str, name: str, level: str, parent: str | None) -> str:
        slug = slugify(name)
        name_es = SPANISH_REGION_OVERRIDES.get(code) or es.get(code) or name
        rec = {
            "slug": slug,
            "m49": code,
            "name_en": name,
            "name_es": name_es,
            "name_pt": PORTUGUESE_REGION_OVERRIDES.get(code) or pt.get(code) or name,
            "level": level,
            "parent": parent,
            "iso2": None,
            "iso3": None,
            "aliases": _aliases([en.get(code, ""), es.get(code, "")], (name, name_es)),
        }
        old = regions.setdefault(slug, rec)
        assert old["m49"] == code, f"slug {slug!r} used by {old['m49']} and {code}"
        return slug

    region("001", "World", "world", None)
    for r in read_rows(path):
        parent = "world"
        for level, key in zip(LEVELS, ("Region", "Sub-region", "Intermediate Region"), strict=True):
            if r[f"{key} Code"].strip():
                parent = region(code3(r[f"{key} Code"]), r[f"{key} Name"].strip(), level, parent)
        iso2 = r["ISO 3166-1 Alpha 2-Codes"].strip().upper()
        name_en = r["M49 English"].strip() or r["English Short"].strip()
        name_es = r["M49 Spanish"].strip() or r["Spanish Short"].strip() or es[iso2]
        slug = iso2.lower()
        assert slug not in regions, f"duplicate slug {slug!r}"
        regions[slug] = {
            "slug": slug,
            "m49": code3(r["m49 numerical code"]),
            "name_en": name_en,
            "name_es": name_es,
            "name_pt": pt.get(iso2) or name_en,
            "level": "country",
            "parent": parent,
            "iso2": iso2,
            "iso3": r["ISO 3166-1 Alpha 3-Codes"].strip().upper() or None,
            "aliases": _aliases(
                [
                    r["English Short"],
                    r["Preferred Term"],
                    r["RW Short Name"],
                    "" if "(" in r["ISO Alt Term"] else r["ISO Alt Term"],
                    r["Spanish Short"],
                    en.get(iso2, ""),
                    es.get(iso2, ""),
                ],
                (clean(name_en), clean(name_es)),
            ),
        }
    codes = [r["m49"] for r in regions.values()]
    assert len(codes) == len(set(codes)), "duplicate M49 codes"
    order = {"world": 0, "region": 1, "sub-region": 2, "intermediate-region": 3, "country": 4}
    records = sorted(regions.values(), key=lambda r: (order[r["level"]], r["m49"]))
    return {
        "source": f"{TAXONOMY.name} (hdx-python-country); CLDR via babel {babel.__version__}",
        "regions": records,
    }


def render(doc: dict[str, Any]) -> str:
    """Stable text form: one region per line keeps diffs of regenerations readable."""
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in doc["regions"]]
    body = ",\n  ".join(lines)
    source = json.dumps(doc["source"], ensure_ascii=False)
    return f'{{\n "source": {source},\n "regions": [\n  {body}\n ]\n}}\n'


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the shipped m49.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the shipped file differs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("m49.json is current" if same else "m49.json is stale: run scripts/gen_regions.py")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(json.loads(text)['regions'])} regions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
