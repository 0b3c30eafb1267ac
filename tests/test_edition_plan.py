"""The pure edition planner: canonical region sets, the first-section rule, window boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.digest.editions import (
    Planner,
    in_window,
    plan_edition,
    plan_sections,
    region_set,
)
from publisher.models import ItemPublic
from publisher.regions.tree import RegionTree

TREE = RegionTree.load()
CUT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
START = CUT - timedelta(days=7)
SLUGS = ["americas", "latin-america-and-the-caribbean", "central-america", "gt", "sv", "hn",
         "mx", "caribbean", "cu", "south-america", "co", "ve", "europe", "fr", "world"]  # fmt: skip


def item(item_id: int, regions: list[str], visible: datetime = CUT) -> ItemPublic:
    return ItemPublic(
        id=item_id, guid=f"g{item_id}", title=f"t{item_id}", summary="", published=visible,
        updated=visible, regions=regions, visible_at=visible,
    )  # fmt: skip


def test_a_region_followed_with_its_ancestor_counts_once() -> None:
    assert region_set(TREE, ["gt", "central-america"]) == ("central-america",)
    assert region_set(TREE, ["americas", "gt", "fr"]) == ("americas", "fr")
    assert region_set(TREE, []) == ()


def test_the_set_is_in_geography_order_whatever_the_choice_order() -> None:
    assert region_set(TREE, ["hn", "gt", "sv"]) == region_set(TREE, ["sv", "hn", "gt"])
    assert region_set(TREE, ["hn", "gt", "sv"]) == ("sv", "gt", "hn")  # the tree: by English name


def test_each_item_goes_into_the_first_section_it_belongs_to() -> None:
    items = [item(1, ["gt"]), item(2, ["central-america"]), item(3, ["gt", "hn"]),
             item(4, ["hn"]), item(5, ["mx"]), item(6, ["americas"])]  # fmt: skip
    sections = plan_sections(TREE, ("sv", "gt", "hn"), items)
    placed = {s.region: sorted(it.id for it in s.items) for s in sections}
    # sv holds what contains it (Central America, the Americas); gt its own and the shared one
    assert placed == {"sv": [2, 6], "gt": [1, 3], "hn": [4]}


def test_empty_sections_are_left_out_and_items_are_newest_first() -> None:
    older, newer = item(1, ["gt"], CUT - timedelta(days=2)), item(2, ["gt"], CUT)
    (section,) = plan_sections(TREE, ("gt", "hn"), [older, newer])
    assert section.region == "gt" and [it.id for it in section.items] == [2, 1]


def test_the_window_is_closed_at_its_start_and_open_at_its_cutoff() -> None:
    """Half-open [start, cutoff): an item stamped exactly at a cutoff is in the next window
    (which starts there) and in no other, so back-to-back windows neither lose nor repeat it."""
    assert in_window(item(1, ["gt"], START), START, CUT)
    assert not in_window(item(1, ["gt"], START - timedelta(microseconds=1)), START, CUT)
    assert not in_window(item(1, ["gt"], CUT), START, CUT)
    assert in_window(item(1, ["gt"], CUT - timedelta(microseconds=1)), START, CUT)
    assert in_window(item(1, ["gt"], CUT), CUT, CUT + timedelta(days=7))
    plan = plan_edition(TREE, ("gt",), [item(1, ["gt"], START), item(2, ["gt"], CUT)],
                        week="2026-W48", window_start=START, cutoff=CUT)  # fmt: skip
    assert plan.item_ids == (1,)


@settings(max_examples=300, deadline=None)
@given(
    followed=st.lists(st.sampled_from(SLUGS), max_size=6),
    tags=st.lists(st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3), max_size=25),
)
def test_every_item_of_the_regions_is_in_exactly_one_section(
    followed: list[str], tags: list[list[str]]
) -> None:
    regions = region_set(TREE, followed)
    items = [item(n, t) for n, t in enumerate(tags, start=1)]
    sections = plan_sections(TREE, regions, items)
    shown = [it.id for s in sections for it in s.items]
    assert len(shown) == len(set(shown))  # none twice
    belongs = {
        it.id for it in items
        if any(TREE.related(r).intersection(it.regions) for r in followed)
    }  # fmt: skip
    assert set(shown) == belongs  # every item the reader's regions hold, and nothing else
    assert [s.region for s in sections] == [r for r in regions if r in {s.region for s in sections}]


@settings(max_examples=300, deadline=None)
@given(
    sets=st.lists(st.lists(st.sampled_from(SLUGS), max_size=4), min_size=1, max_size=6),
    tags=st.lists(
        st.tuples(
            st.lists(st.sampled_from(SLUGS), min_size=1, max_size=3),
            st.integers(min_value=-9, max_value=9),  # days from the cutoff
        ),
        max_size=25,
    ),
)
def test_the_fire_planner_plans_what_plan_edition_plans(
    sets: list[list[str]], tags: list[tuple[list[str], int]]
) -> None:
    """One planner serves a whole fire; each of its plans equals ``plan_edition``'s."""
    items = [item(n, t, CUT + timedelta(days=d, hours=n)) for n, (t, d) in enumerate(tags)]
    planner = Planner(TREE, items)
    for followed in sets:
        regions = region_set(TREE, followed)
        kwargs = {"week": "2026-W48", "window_start": START, "cutoff": CUT}
        assert planner.plan(regions, **kwargs) == plan_edition(TREE, regions, items, **kwargs)  # type: ignore[arg-type]
