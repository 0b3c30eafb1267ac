"""The console's item list: filters and keyset pages over (published, id), newest first.

Region, status and dates are indexed filters. Text and language are not (a substring of title or
summary has no index without trigram extensions), so they are only applied inside a bounded
window: the ``scan`` newest rows that pass the indexed filters below the cursor, read as keys
first. A page then tests at most ``scan`` rows whatever the store holds; when the window yields
fewer matches than a page, the next cursor is the window's oldest row and the editor reads on.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import Item, ItemRegion, WithdrawnItem

Status = Literal["", "visible", "embargoed", "withdrawn"]
Cursor = tuple[datetime, int]
SCAN = 1_000


@dataclass(frozen=True, slots=True)
class ItemFilter:
    """What the editor asked for; empty values filter nothing."""

    regions: frozenset[str] | None = None
    lang: str = ""
    text: str = ""
    since: datetime | None = None
    until: datetime | None = None
    status: Status = ""


@dataclass(frozen=True, slots=True)
class ListedItem:
    """One row of the list (an item, or the tombstone of a withdrawn one)."""

    id: int
    title: str
    published: datetime
    visible_at: datetime
    lang: str
    regions: tuple[str, ...]
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class ItemPage:
    """A page of rows and where the next (older) page starts; ``scanned_to`` is set when the
    page stopped at the end of its search window rather than filling up."""

    rows: list[ListedItem]
    after: Cursor | None
    scanned_to: datetime | None = None


def _items() -> sa.Table:
    table: sa.Table = Item.__table__  # type: ignore[attr-defined]
    return table


def _older(
    published: sa.ColumnElement[datetime], key: sa.ColumnElement[int], cursor: Cursor
) -> sa.ColumnElement[bool]:
    at, last_id = cursor
    # published <= at lets the index on published bound the range; the OR breaks ties by id.
    return sa.and_(published <= at, sa.or_(published < at, key < last_id))


def _indexed(
    stmt: sa.Select[Any], wanted: ItemFilter, *, now: datetime, after: Cursor | None
) -> sa.Select[Any]:
    items, tags = _items(), ItemRegion.__table__  # type: ignore[attr-defined]
    if wanted.regions is not None:
        tagged = sa.select(tags.c.item_id).where(tags.c.region.in_(sorted(wanted.regions)))
        stmt = stmt.where(items.c.id.in_(tagged))
    if wanted.status == "visible":
        stmt = stmt.where(items.c.visible_at <= now)
    elif wanted.status == "embargoed":
        stmt = stmt.where(items.c.visible_at > now)
    if wanted.since is not None:
        stmt = stmt.where(items.c.published >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(items.c.published < wanted.until)
    if after is not None:
        stmt = stmt.where(_older(items.c.published, items.c.id, after))
    return stmt


def _like(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_items(
    session: Session,
    *,
    wanted: ItemFilter,
    now: datetime,
    after: Cursor | None = None,
    limit: int = 50,
    scan: int = SCAN,
) -> ItemPage:
    """One page of items matching ``wanted``, older than ``after``, newest first."""
    if wanted.status == "withdrawn":
        return _withdrawn(session, wanted=wanted, after=after, limit=limit)
    items = _items()
    order = (items.c.published.desc(), items.c.id.desc())
    columns = (items.c.id, items.c.title, items.c.published, items.c.visible_at, items.c.lang)
    stmt: sa.Select[Any] = _indexed(sa.select(*columns), wanted, now=now, after=after)
    boundary: Cursor | None = None
    if wanted.text or wanted.lang:
        # The window: the ``scan`` newest rows passing the indexed filters, fetched as keys,
        # so that the unindexed tests below run on those rows only, whatever the plan.
        edge = _indexed(sa.select(items.c.published, items.c.id), wanted, now=now, after=after)
        window = [(r[0], r[1]) for r in session.execute(edge.order_by(*order).limit(scan))]
        if len(window) == scan:
            boundary = window[-1]
        tests: list[sa.ColumnElement[bool]] = [items.c.id.in_([key for _, key in window])]
        if wanted.lang:
            tests.append(sa.or_(items.c.lang == wanted.lang, items.c.lang.like(f"{wanted.lang}-%")))
        if wanted.text:
            pattern = _like(wanted.text)
            tests.append(
                sa.or_(
                    sa.func.lower(items.c.title).like(pattern, escape="\\"),
                    sa.func.lower(items.c.summary).like(pattern, escape="\\"),
                )
            )
        stmt = sa.select(*columns).where(*tests)
    rows = list(session.execute(stmt.order_by(*order).limit(limit + 1)))
    tags = _tags(session, [r[0] for r in rows[:limit]])
    listed = [
        ListedItem(id=r[0], title=r[1], published=r[2], visible_at=r[3], lang=r[4],
                   regions=tuple(tags.get(r[0], ())))
        for r in rows[:limit]
    ]  # fmt: skip
    if len(rows) > limit:
        last = listed[-1]
        return ItemPage(listed, (last.published, last.id))
    if boundary is not None:
        return ItemPage(listed, boundary, scanned_to=boundary[0])
    return ItemPage(listed, None)


def _tags(session: Session, item_ids: list[int]) -> dict[int, list[str]]:
    if not item_ids:
        return {}
    tags = ItemRegion.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.select(tags.c.item_id, tags.c.region)
        .where(tags.c.item_id.in_(item_ids))
        .order_by(tags.c.item_id, tags.c.region)
    )
    found: dict[int, list[str]] = {}
    for item_id, region in session.execute(stmt):
        found.setdefault(item_id, []).append(region)
    return found


def _withdrawn(
    session: Session, *, wanted: ItemFilter, after: Cursor | None, limit: int
) -> ItemPage:
    """Tombstones newest (by when they became visible) first; few enough to filter in Python
    on regions and text, but still paged by keyset."""
    table = WithdrawnItem.__table__  # type: ignore[attr-defined]
    stmt = sa.select(
        table.c.id, table.c.item_id, table.c.title, table.c.visible_at, table.c.regions
    ).order_by(table.c.visible_at.desc(), table.c.id.desc())
    if wanted.since is not None:
        stmt = stmt.where(table.c.visible_at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(table.c.visible_at < wanted.until)
    if after is not None:
        stmt = stmt.where(_older(table.c.visible_at, table.c.id, after))
    if wanted.text:
        stmt = stmt.where(sa.func.lower(table.c.title).like(_like(wanted.text), escape="\\"))
    if wanted.regions is not None:
        stmt = stmt.where(_any_region(table.c.regions, wanted.regions))
    rows = list(session.execute(stmt.limit(limit + 1)))
    listed = [
        ListedItem(id=r[1], title=r[2], published=r[3], visible_at=r[3], lang="",
                   regions=tuple(r[4].split()), withdrawn=True)
        for r in rows[:limit]
    ]  # fmt: skip
    after_next = (rows[limit - 1][3], rows[limit - 1][0]) if len(rows) > limit else None
    return ItemPage(listed, after_next)


def _any_region(column: sa.ColumnElement[str], regions: Collection[str]) -> sa.ColumnElement[bool]:
    padded = sa.literal(" ") + column + sa.literal(" ")
    return sa.or_(*(padded.like(f"% {slug} %") for slug in sorted(regions)))


def lock_item(session: Session, *, item_id: int) -> Item | None:
    """The item's row, locked for this transaction on PostgreSQL (two editors withdrawing or
    editing the same item at once: the second waits, then finds it gone), or None."""
    stmt = sa.select(Item).where(_items().c.id == item_id).with_for_update()
    return session.execute(stmt).scalars().first()
