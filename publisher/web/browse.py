"""The region tree as the pages show it: which regions have items, how many, in what order.

A region's count is the number of distinct items tagged with it or with any region inside it
(an item about Guatemala and Honduras counts once for Central America). Counting reads every
tag, so the result is cached until the visible items change (count, newest id, last update).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from publisher.regions.tree import RegionTree
from publisher.store.items import all_tags, change_key


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One region in the displayed tree, in depth-first order."""

    slug: str
    name: str
    level: str
    depth: int
    count: int


class RegionCounts:
    """Per-region item counts, recomputed only when the items table changes."""

    def __init__(self, tree: RegionTree) -> None:
        self.tree = tree
        self._key: tuple[object, ...] | None = None
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, *, now: datetime) -> dict[str, int]:
        """Counts of the items visible at ``now`` (embargoed items are not counted)."""
        key = change_key(session, visible_by=now)
        with self._lock:
            if key != self._key:
                self._counts = self._compute(session, now)
                self._key = key
            return self._counts

    def _compute(self, session: Session, now: datetime) -> dict[str, int]:
        per_item: dict[int, set[str]] = {}
        for item_id, region in all_tags(session, visible_by=now):
            per_item.setdefault(item_id, set()).add(region)
        counts: Counter[str] = Counter()
        closure: dict[frozenset[str], frozenset[str]] = {}
        for regions in per_item.values():
            key = frozenset(regions)
            if key not in closure:
                up: set[str] = set()
                for slug in key:
                    if slug in self.tree:
                        up.add(slug)
                        up.update(self.tree.ancestors(slug))
                closure[key] = frozenset(up)
            counts.update(closure[key])
        return dict(counts)


def tree_rows(tree: RegionTree, counts: dict[str, int], *, include: set[str]) -> list[TreeRow]:
    """Regions with items (and those in ``include``), depth-first, world left out."""
    rows = []
    for region in tree:
        if region.parent is None:
            continue  # "world" is the page itself
        if counts.get(region.slug, 0) <= 0 and region.slug not in include:
            continue
        rows.append(
            TreeRow(
                slug=region.slug,
                name=region.name_en,
                level=region.level,
                depth=tree.depth(region.slug) - 1,
                count=counts.get(region.slug, 0),
            )
        )
    return rows
