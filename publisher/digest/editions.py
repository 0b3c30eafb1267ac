"""What a reader's weekly edition holds, decided from their regions and the window: pure.

A reader's regions become a canonical region set (a region followed together with one of its
ancestors counts once, in the tree's geography order), and the window's items are planned into
one section per region of the set, each item in the first section it belongs to, so no item
appears twice whatever its tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.digest.assembly import order_items
from publisher.models import ItemPublic
from publisher.regions.tree import RegionTree

FIRST_WINDOW = timedelta(days=7)  # a reader's first edition starts one week before its cutoff


@dataclass(frozen=True, slots=True)
class Section:
    """One region's part of an edition: its items, newest first."""

    region: str
    items: tuple[ItemPublic, ...]


@dataclass(frozen=True, slots=True)
class EditionPlan:
    """An edition before any language: its region set, week, window and sections."""

    regions: tuple[str, ...]
    week: str
    window_start: datetime
    cutoff: datetime
    sections: tuple[Section, ...]

    @property
    def item_ids(self) -> tuple[int, ...]:
        """Every item of the edition, in the order it shows them."""
        return tuple(it.id for s in self.sections for it in s.items)

    @property
    def empty(self) -> bool:
        """No items: no email, and the reader's window still moves on."""
        return not self.sections


def region_set(tree: RegionTree, followed: Iterable[str]) -> tuple[str, ...]:
    """The canonical region set of ``followed``: without regions an ancestor already covers,
    in the tree's order (deterministic: the same set however it was chosen)."""
    chosen = {slug for slug in followed if slug in tree}
    return tree.in_order(slug for slug in chosen if chosen.isdisjoint(tree.ancestors(slug)))


def in_window(item: ItemPublic, start: datetime, cutoff: datetime) -> bool:
    """Whether ``item`` became visible in the window [start, cutoff): half-open, so an item
    stamped exactly at a cutoff goes to the next window, never to both or neither."""
    visible = item.visible_at or item.published
    return start <= visible < cutoff


def first_window_start(cutoff: datetime) -> datetime:
    """Where a reader's first edition starts."""
    return cutoff - FIRST_WINDOW


def plan_sections(
    tree: RegionTree, regions: Sequence[str], items: Iterable[ItemPublic]
) -> tuple[Section, ...]:
    """One section per region of ``regions`` (in order) with the items that belong to it
    (tagged with the region, one inside it or one containing it), each item only in the first
    section it belongs to; empty sections are left out."""
    related = [(region, tree.related(region)) for region in regions]
    placed: dict[str, list[ItemPublic]] = {region: [] for region in regions}
    seen: set[int] = set()
    for item in order_items(list(items)):
        if item.id in seen:
            continue
        for region, members in related:
            if members.intersection(item.regions):
                placed[region].append(item)
                seen.add(item.id)
                break
    return tuple(Section(region, tuple(placed[region])) for region in regions if placed[region])


def plan_edition(
    tree: RegionTree,
    regions: Sequence[str],
    items: Iterable[ItemPublic],
    *,
    week: str,
    window_start: datetime,
    cutoff: datetime,
) -> EditionPlan:
    """The edition of ``regions`` over (window_start, cutoff] from ``items`` (any superset)."""
    inside = [it for it in items if in_window(it, window_start, cutoff)]
    sections = plan_sections(tree, regions, inside)
    return EditionPlan(tuple(regions), week, window_start, cutoff, sections)


class Planner:
    """Plans many editions over one fire's items, as ``plan_edition`` would: the items are
    ordered once and each region's related items listed once, since ten thousand region sets
    share a few hundred regions."""

    def __init__(self, tree: RegionTree, items: Iterable[ItemPublic]) -> None:
        self.tree = tree
        self.items = order_items(list(items))
        self._members: dict[str, list[ItemPublic]] = {}

    def _of(self, region: str) -> list[ItemPublic]:
        found = self._members.get(region)
        if found is None:
            related = self.tree.related(region)
            found = [it for it in self.items if not related.isdisjoint(it.regions)]
            self._members[region] = found
        return found

    def plan(
        self, regions: Sequence[str], *, week: str, window_start: datetime, cutoff: datetime
    ) -> EditionPlan:
        """The edition of ``regions`` over [window_start, cutoff)."""
        placed: set[int] = set()
        sections = []
        for region in regions:
            mine = tuple(
                it for it in self._of(region)
                if it.id not in placed and in_window(it, window_start, cutoff)
            )  # fmt: skip
            if mine:
                placed.update(it.id for it in mine)
                sections.append(Section(region, mine))
        return EditionPlan(tuple(regions), week, window_start, cutoff, tuple(sections))
