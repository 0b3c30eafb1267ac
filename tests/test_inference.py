"""Region inference: the sample items, the traps, Spanish, comparisons, and a labelled set.

``pytest -s -k labelled tests/test_inference.py`` prints precision, recall and exact-match accuracy.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from publisher.errors import UnknownRegionError
from publisher.regions import RegionInferrer, RegionTree, evaluate, exact_match
from publisher.regions.lexicon import es_forms, tokens

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "publisher" / "data" / "demo-items.txt"  # the reference sample, verbatim
LABELLED = Path(__file__).with_name("data") / "labelled_items.csv"


@pytest.fixture(scope="module")
def inferrer() -> RegionInferrer:
    return RegionInferrer(RegionTree.load())


def _sample() -> list[tuple[str, str]]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return list(zip(lines[0::2], lines[1::2], strict=True))


LATIN_NORTH_SOUTH = {"latin-america-and-the-caribbean", "northern-america", "south-america"}
SAMPLE_EXPECTED = [
    {"cr"},
    {"mx"},
    {"bz"},
    {"caribbean", "gy"},
    {"americas"},
    {"pa"},
    {"bz"},
    {"gt"},
    {"central-america", "mx"},
    {"americas"},
]


@pytest.mark.parametrize(("n", "expected"), list(enumerate(SAMPLE_EXPECTED, start=1)))
def test_sample_items(inferrer: RegionInferrer, n: int, expected: set[str]) -> None:
    title, summary = _sample()[n - 1]
    got = inferrer.infer(title, summary)
    assert set(got) == expected
    assert got == inferrer.infer(title, summary)  # deterministic
    assert got == sorted(got, key=[r.slug for r in inferrer.tree].index)  # tree order


def test_results_follow_tree_order(inferrer: RegionInferrer) -> None:
    title, summary = _sample()[3]
    assert inferrer.infer(title, summary) == ["caribbean", "gy"]
    assert inferrer.infer("Mexico and Central America") == ["central-america", "mx"]


def test_default_region(inferrer: RegionInferrer) -> None:
    assert inferrer.infer("IOM and CELIEM strengthen management skills") == ["americas"]
    assert inferrer.infer("") == ["americas"]
    world = RegionInferrer(inferrer.tree, default="001")
    assert world.infer("Nothing here", "nor here") == ["world"]
    with pytest.raises(UnknownRegionError):
        RegionInferrer(inferrer.tree, default="atlantis")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # names, demonyms, aliases, accents optional
        ("Belizean workers and Costa Rican farms", {"bz", "cr"}),
        ("Peru and Perú, Mexico and México", {"pe", "mx"}),
        ("USA, United States, U.S. and US", {"us"}),
        ("UK, DR Congo, DRC, Ivory Coast", {"gb", "cd", "ci"}),
        ("Czechia and the Czech Republic", {"cz"}),
        ("Türkiye, Turkey", {"tr"}),
        ("Guyana’s economy", {"gy"}),
        ("Côte d’Ivoire", {"ci"}),
        ("St. Lucia and Saint Vincent", {"lc", "vc"}),
        # region phrases
        ("Central American caravans cross Central America", {"central-america"}),
        ("Migration in the Americas and the Caribbean", {"americas", "caribbean"}),
        ("Latin America, North America and South America", LATIN_NORTH_SOUTH),
        ("West Africa and Europe", {"western-africa", "europe"}),
        ("Latin American, South American and North American firms", LATIN_NORTH_SOUTH),
        ("Organization of American States", {"americas"}),
        ("American workers", {"us"}),
        # traps
        ("Shelters in New Mexico", {"us"}),
        ("Floods hit Dominica", {"dm"}),
        ("Dominican Republic", {"do"}),
        ("Dominican workers", {"do"}),
        ("Atlanta, Georgia hosts summit", {"us"}),
        ("Georgia, USA: refugee office opens", {"us"}),
        ("The U.S. state of Georgia", {"us"}),
        ("Georgia's governor signs migration bill", {"us"}),
        ("Georgia and Armenia sign labour pact", {"ge", "am"}),
        ("Returnees arrive in Guinea", {"gn"}),
        ("Returnees arrive in Guinea-Bissau", {"gw"}),
        ("Equatorial Guinea and Papua New Guinea", {"gq", "pg"}),
        ("Niger hosts Nigerian refugees", {"ne", "ng"}),
        ("Sudan and South Sudan", {"sd", "ss"}),
        ("New Jersey and Jersey", {"us", "je"}),
        ("Chad Smith said the programme works", {"americas"}),
        ("Michael Jordan visits a camp", {"americas"}),
        ("Chad and Jordan host refugees", {"td", "jo"}),
        ("roast turkey on china plates", {"americas"}),
        ("let us help", {"americas"}),
        ("HELP US NOW", {"americas"}),
        ("Inter-American Development Bank funds project in Honduras", {"hn"}),
        ("Spanish classes for migrants in Brazil", {"br"}),
    ],
)
def test_phrases_and_traps(inferrer: RegionInferrer, text: str, expected: set[str]) -> None:
    assert set(inferrer.infer(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Migrantes cruzan Centroamérica hacia México", ["central-america", "mx"]),
        ("Migrantes cruzan Centroamerica hacia Mexico", ["central-america", "mx"]),
        ("La migración en América Central", ["central-america"]),
        ("Temporada de huracanes en el Caribe", ["caribbean"]),
        ("Foro de las Américas", ["americas"]),
        ("Crisis migratoria en América", ["americas"]),
        ("América Latina y Latinoamérica", ["latin-america-and-the-caribbean"]),
        ("Sudamérica, América del Sur", ["south-america"]),
        ("Norteamérica", ["northern-america"]),
        ("guatemaltecos, guatemaltecas y una guatemalteca", ["gt"]),
        ("Jóvenes costarricenses y mexicanas", ["cr", "mx"]),
        ("Retornan dominicanos a República Dominicana", ["do"]),
        ("Nuevo México recibe solicitantes de asilo", ["us"]),
        ("EE.UU. deporta a hondureños", ["hn", "us"]),
    ],
)
def test_spanish(inferrer: RegionInferrer, text: str, expected: list[str]) -> None:
    assert inferrer.infer(text) == expected


def test_english_america_alone_names_nothing(inferrer: RegionInferrer) -> None:
    assert inferrer.mentions("Voice of America") == []


def test_title_outweighs_summary(inferrer: RegionInferrer) -> None:
    summary = "Officials from Mexico and El Salvador attended."
    assert inferrer.infer("Guatemala improves labour data", summary) == ["gt"]
    assert inferrer.infer("Labour data workshop held", summary) == ["sv", "mx"]  # by English name


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("Arrivals to Guyana rose compared to Venezuela, Europe, and the USA.", {"gy"}),
        ("Returns to Honduras rose compared with Guatemala and El Salvador.", {"hn"}),
        ("More migrants went to Chile than to Peru and Bolivia.", {"cl"}),
        ("Unlike Mexico, Guatemala saw a rise in returns.", {"gt"}),
        ("In contrast to Haiti, Jamaica reported fewer departures.", {"jm"}),
        ("More than 2,000 migrants arrived in Panama.", {"pa"}),
        ("Costa Rica hosts more refugees than ever, and Panama too.", {"cr", "pa"}),
        ("Llegaron más migrantes a Chile que a Perú.", {"cl"}),
        ("A diferencia de México, Honduras registró un aumento.", {"hn"}),
        ("Informó que en Guatemala se registraron retornos.", {"gt"}),
        ("En comparación con Colombia, Ecuador recibió menos solicitudes.", {"ec"}),
        ("Compared to 2019. Mexico received more requests.", {"mx"}),
    ],
)
def test_comparisons_in_summary_are_dropped(
    inferrer: RegionInferrer, summary: str, expected: set[str]
) -> None:
    assert set(inferrer.infer("Quarterly figures published", summary)) == expected


def test_mentions_have_spans(inferrer: RegionInferrer) -> None:
    text = "Migrants in Costa Rica, unlike Panama, and the Dominican Republic"
    found = inferrer.mentions(text)
    assert [(m.slug, m.phrase) for m in found] == [
        ("cr", "Costa Rica"),
        ("do", "Dominican Republic"),
    ]
    for m in found:
        assert text[m.start : m.end] == m.phrase


def test_tokens_and_inflections() -> None:
    assert tokens("U.S.-Mexico border; Guyana’s “economy”") == [
        b"U",
        b"S",
        b"Mexico",
        b"border",
        b"Guyana",
        b"s",
        b"economy",
    ]
    assert es_forms("mexicano") == ["mexicano", "mexicana", "mexicanos", "mexicanas"]
    assert es_forms("guyanés") == ["guyanés", "guyanesa", "guyaneses", "guyanesas"]
    assert es_forms("costarricense") == ["costarricense", "costarricenses"]


def _labelled() -> list[dict[str, str]]:
    with LABELLED.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_labelled_set_is_broad(inferrer: RegionInferrer) -> None:
    rows = _labelled()
    tree = inferrer.tree
    assert len(rows) >= 60
    assert sum(r["lang"] == "es" for r in rows) * 3 >= len(rows)
    subs = [tree.subregion_of(s) for r in rows for s in r["regions"].split()]
    for sub in ("caribbean", "central-america", "south-america", "northern-america"):
        countries = {s for r in rows for s in r["regions"].split() if tree.subregion_of(s) == sub}
        assert len(countries - {sub}) >= 2, sub
    assert sum(not tree.subregion_of(s).startswith(("ameri", "latin")) for s in subs) >= 12
    assert any(r["regions"] == "americas" for r in rows)


def test_labelled_precision_and_recall(inferrer: RegionInferrer) -> None:
    rows = _labelled()
    precision, recall = evaluate(inferrer, rows)
    accuracy = exact_match(inferrer, rows)
    print(
        f"\nlabelled items: {len(rows)}; sub-region precision {precision:.3f}, "
        f"recall {recall:.3f}; exact match {accuracy:.3f}"
    )
    assert precision >= 0.95
    assert recall >= 0.95
    assert accuracy >= 0.9


def test_evaluate_can_fail(inferrer: RegionInferrer) -> None:
    wrong = [{"title": "Floods in Honduras", "summary": "", "regions": "cu"}]
    assert evaluate(inferrer, wrong) == (0.0, 0.0)
    assert exact_match(inferrer, wrong) == 0.0
