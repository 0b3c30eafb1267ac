"""The shipped M49 tree: shape, names, lookups, and that the generator reproduces it."""

from __future__ import annotations

import importlib.util
import json
import re
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from publisher.errors import UnknownRegionError
from publisher.regions import Region, RegionTree

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tree() -> RegionTree:
    return RegionTree.load()


def _gen_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_regions", ROOT / "scripts" / "gen_regions.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_is_cached(tree: RegionTree) -> None:
    assert RegionTree.load() is tree


def test_counts_and_every_country_reaches_world(tree: RegionTree) -> None:
    countries = [r for r in tree if r.level == "country"]
    assert 240 <= len(countries) <= 260
    assert len(tree) == len(list(tree)) == len({r.slug for r in tree})
    for c in countries:
        path = tree.ancestors(c.slug)
        assert path[-1] == "world", c.slug
        assert c.iso2 and c.iso2.lower() == c.slug
        assert c.iso3 and len(c.iso3) == 3
        assert re.fullmatch(r"\d{3}", c.m49)


def test_slugs_from_design_exist(tree: RegionTree) -> None:
    for slug in (
        "world",
        "americas",
        "latin-america-and-the-caribbean",
        "central-america",
        "caribbean",
        "south-america",
        "northern-america",
        "western-africa",
        "sub-saharan-africa",
        "australia-and-new-zealand",
        "gt",
        "cr",
        "mx",
    ):
        assert slug in tree, slug
    for r in tree:
        if r.level != "country":
            assert re.fullmatch(r"[a-z]+(-[a-z]+)*", r.slug), r.slug


def test_m49_shape_of_the_americas(tree: RegionTree) -> None:
    assert [r.slug for r in tree.children("americas")] == [
        "latin-america-and-the-caribbean",
        "northern-america",
    ]
    assert [r.slug for r in tree.children("latin-america-and-the-caribbean")] == [
        "caribbean",
        "central-america",
        "south-america",
    ]
    assert tree.get("mx").parent == "central-america"
    assert tree.get("us").parent == "northern-america"
    assert tree.get("aq").parent == "world"
    assert tree.get("central-america").m49 == "013"
    assert tree.get("gt").m49 == "320"
    assert tree.ancestors("gt") == [
        "central-america",
        "latin-america-and-the-caribbean",
        "americas",
        "world",
    ]
    assert [tree.depth(s) for s in ("world", "americas", "gt")] == [0, 1, 4]


def test_iteration_is_depth_first_with_children_by_english_name(tree: RegionTree) -> None:
    order = [r.slug for r in tree]
    assert order[0] == "world"
    assert order.index("americas") < order.index("caribbean") < order.index("central-america")
    assert order.index("central-america") < order.index("mx") < order.index("south-america")
    names = [r.name_en for r in tree.children("central-america")]
    assert names == sorted(names)


def test_related_is_the_membership_rule(tree: RegionTree) -> None:
    rel = tree.related("central-america")
    assert {"central-america", "gt", "mx", "americas", "world"} <= rel
    assert "caribbean" not in rel
    assert "us" not in rel
    assert tree.descendants("central-america") >= {"gt", "hn", "sv", "ni", "cr", "pa", "bz"}
    assert "central-america" not in tree.descendants("central-america")
    assert tree.related("gt") == {"gt", "central-america", "latin-america-and-the-caribbean"} | {
        "americas",
        "world",
    }


def test_names_in_english_and_spanish(tree: RegionTree) -> None:
    assert tree.get("mx").name_es == "México"
    assert tree.get("pe").name_es == "Perú"
    assert tree.get("central-america").name_es == "Centroamérica"
    assert tree.get("caribbean").name_es == "Caribe"
    assert tree.get("latin-america-and-the-caribbean").name_es == "América Latina y el Caribe"
    assert tree.get("us").name_en == "United States of America"
    assert all(r.name_en and r.name_es for r in tree)


def test_subregion_of(tree: RegionTree) -> None:
    assert tree.subregion_of("gt") == "central-america"
    assert tree.subregion_of("us") == "northern-america"
    assert tree.subregion_of("fr") == "western-europe"
    assert tree.subregion_of("ng") == "western-africa"
    assert tree.subregion_of("je") == "channel-islands"
    assert tree.subregion_of("central-america") == "central-america"
    assert tree.subregion_of("americas") == "americas"
    assert tree.subregion_of("aq") == "world"


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("GTM", "gt"),
        ("GT", "gt"),
        (" gt ", "gt"),
        ("320", "gt"),
        ("013", "central-america"),
        ("13", "central-america"),
        ("Central-America", "central-america"),
        ("419", "latin-america-and-the-caribbean"),
        ("001", "world"),
    ],
)
def test_normalize(tree: RegionTree, raw: str, slug: str) -> None:
    assert tree.normalize(raw) == slug


def test_unknown_region(tree: RegionTree) -> None:
    with pytest.raises(UnknownRegionError) as err:
        tree.get("atlantis")
    assert err.value.slug == "atlantis"
    with pytest.raises(UnknownRegionError):
        tree.normalize("atlantis")
    with pytest.raises(KeyError):  # UnknownRegionError is a KeyError too
        tree.children("atlantis")
    assert "atlantis" not in tree


def test_constructor_rejects_bad_trees() -> None:
    world = Region("world", "001", "World", "Mundo", "world", None)
    with pytest.raises(ValueError, match="duplicate"):
        RegionTree([world, world])
    orphan = Region("xx", "999", "X", "X", "country", "nowhere", "XX", "XXX")
    with pytest.raises(ValueError, match="unknown parent"):
        RegionTree([world, orphan])
    small = RegionTree([world, Region("gt", "320", "Guatemala", "Guatemala", "country", "world")])
    assert small.ancestors("gt") == ["world"]
    assert small.subregion_of("gt") == "world"


def test_generator_reproduces_the_shipped_json() -> None:
    gen = _gen_module()
    shipped = resources.files("publisher.regions").joinpath("m49.json").read_text("utf-8")
    assert gen.render(gen.generate()) == shipped
    doc = json.loads(shipped)
    assert [r["slug"] for r in doc["regions"]].count("mx") == 1
    assert gen.slugify("Latin America and the Caribbean") == "latin-america-and-the-caribbean"
    assert gen.clean("Bolivia (Plurinational State of)") == "Bolivia"
