"""Items and their region tags: bulk insert with stable identity, reads for lists and feeds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import Item, ItemPublic, ItemRegion
from publisher.store.bulk import bulk_insert, pairs_after, present, time_converter
from publisher.store.sql import one_of, parts
from publisher.store.withdrawn import newest_withdrawn_id

_CHUNK = 5_000
_TAG_ITEM: sa.Column[int] = ItemRegion.__table__.c.item_id  # type: ignore[attr-defined]
T = TypeVar("T")
_ITEM_COLUMNS = (
    "guid", "title", "summary", "link", "published", "updated", "created", "source",
    "regions_inferred", "lang", "image_url", "image_alt", "source_id", "entry_id", "visible_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ItemInsert:
    """A cleaned item with its final region tags, ready to be written."""

    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime
    regions: tuple[str, ...]
    source: str
    regions_inferred: bool
    lang: str = ""
    image_url: str | None = None
    image_alt: str = ""
    source_id: int | None = None
    entry_id: str | None = None


def _chunks(seq: Sequence[T], size: int = _CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def existing_guids(session: Session, *, guids: Collection[str]) -> set[str]:
    """Which of ``guids`` the store already holds (the re-import check)."""
    return present(session, table="items", column="guid", values=list(guids))


def insert_items(session: Session, *, items: Sequence[ItemInsert], now: datetime) -> list[int]:
    """Insert new items and their tags in bulk; returns their ids in the order given."""
    if not items:
        return []
    db_time = time_converter(session)
    stamp = db_time(now)
    before = session.execute(sa.select(sa.func.max(Item.id))).scalar() or 0
    rows: list[tuple[object, ...]] = [
        (it.guid, it.title, it.summary, it.link, db_time(it.published), stamp, stamp,
         it.source, it.regions_inferred, it.lang, it.image_url, it.image_alt, it.source_id,
         it.entry_id, db_time(max(it.published, now)))
        for it in items
    ]  # fmt: skip
    columns: tuple[str, ...] = _ITEM_COLUMNS
    # SQLite gives max(id) + 1 again once the newest item is deleted; a withdrawn item's link
    # must keep saying "withdrawn", so new ids then start above the tombstones.
    retired = newest_withdrawn_id(session)
    if retired > before and session.get_bind().dialect.name == "sqlite":
        before = retired
        rows = [(retired + n, *row) for n, row in enumerate(rows, start=1)]
        columns = ("id", *columns)
    bulk_insert(session, table="items", columns=columns, rows=rows)
    # Ids come back by guid from one range scan: RETURNING would force row-at-a-time inserts.
    ids_by_guid = pairs_after(session, table="items", key="guid", value="id", after=before)
    ids = [ids_by_guid[it.guid] for it in items]
    tags = [(i, r) for i, it in zip(ids, items, strict=True) for r in it.regions]
    bulk_insert(session, table="item_regions", columns=("item_id", "region"), rows=tags)
    return ids


def tags_of(session: Session, *, item_ids: Sequence[int] | None = None) -> dict[int, list[str]]:
    """Region slugs per item id (all items when ``item_ids`` is None)."""
    stmt = select(ItemRegion.item_id, ItemRegion.region).order_by(
        col(ItemRegion.item_id), col(ItemRegion.region)
    )
    tags: dict[int, list[str]] = defaultdict(list)
    chunks = [None] if item_ids is None else parts(session, item_ids, _CHUNK)
    for part in chunks:
        chosen = stmt if part is None else stmt.where(one_of(session, _TAG_ITEM, part))
        for item_id, region in session.exec(chosen):
            tags[item_id].append(region)
    return tags


def _public(item: Item, regions: list[str]) -> ItemPublic:
    assert item.id is not None
    return ItemPublic(
        id=item.id,
        guid=item.guid,
        title=item.title,
        summary=item.summary,
        link=item.link,
        lang=item.lang,
        published=item.published,
        updated=item.updated,
        regions=regions,
        image_url=item.image_url,
        image_alt=item.image_alt,
        visible_at=item.visible_at,
    )


def get_item(
    session: Session, *, item_id: int, visible_by: datetime | None = None
) -> ItemPublic | None:
    """One item with its regions, or None (also when still embargoed at ``visible_by``)."""
    item = session.get(Item, item_id)
    if item is None or (visible_by is not None and item.visible_at > visible_by):
        return None
    return _public(item, tags_of(session, item_ids=[item_id]).get(item_id, []))


def list_items(
    session: Session,
    *,
    regions: Collection[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 50,
    offset: int = 0,
    visible_by: datetime | None = None,
) -> list[ItemPublic]:
    """Items newest first, optionally only those tagged with any of ``regions``, in a window,
    or visible (not embargoed) at ``visible_by``."""
    stmt = select(Item).order_by(col(Item.published).desc(), col(Item.id).desc())
    if visible_by is not None:
        stmt = stmt.where(col(Item.visible_at) <= visible_by)
    if regions is not None:
        tagged = select(ItemRegion.item_id).where(col(ItemRegion.region).in_(list(regions)))
        stmt = stmt.where(col(Item.id).in_(tagged))
    if since is not None:
        stmt = stmt.where(col(Item.published) >= since)
    if until is not None:
        stmt = stmt.where(col(Item.published) < until)
    stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    items = list(session.exec(stmt))
    tags = tags_of(session, item_ids=[i.id for i in items if i.id is not None])
    return [_public(i, tags.get(i.id or 0, [])) for i in items]


def all_items(session: Session) -> list[ItemPublic]:
    """Every item with its tags in two queries: the input of a full feed build."""
    tags = tags_of(session)
    rows = session.exec(select(Item).order_by(col(Item.id)))
    return [_public(i, tags.get(i.id or 0, [])) for i in rows]


def count_by_region(session: Session) -> dict[str, int]:
    """How many items carry each region tag directly."""
    stmt = select(ItemRegion.region, sa.func.count()).group_by(col(ItemRegion.region))
    return {region: int(n) for region, n in session.exec(stmt)}


def newest_per_region_ids(
    session: Session, *, limit: int, visible_by: datetime | None = None
) -> list[int]:
    """Ids of the newest ``limit`` (visible) items of every region tag, and of the store.

    These are all the items any feed can show: an item among the newest ``limit`` of a feed is
    among the newest ``limit`` of each tag that puts it there, because that feed holds every item
    with the tag. So a build reads about regions x limit rows, not the whole store.
    """
    items, tags = Item.__table__, ItemRegion.__table__  # type: ignore[attr-defined]
    rank = (
        sa.func.row_number()
        .over(partition_by=tags.c.region, order_by=(items.c.published.desc(), items.c.id.desc()))
        .label("rank")
    )
    ranked = sa.select(tags.c.item_id, rank).join(items, items.c.id == tags.c.item_id)
    newest = sa.select(items.c.id).order_by(items.c.published.desc(), items.c.id.desc())
    if visible_by is not None:
        ranked = ranked.where(items.c.visible_at <= visible_by)
        newest = newest.where(items.c.visible_at <= visible_by)
    ranked_rows = ranked.subquery()
    per_tag = sa.select(ranked_rows.c.item_id).where(ranked_rows.c.rank <= limit)
    newest = newest.limit(limit)
    found = {row[0] for row in session.execute(per_tag)}
    found.update(row[0] for row in session.execute(newest))
    return sorted(found)


ItemRow = tuple[int, str, str, str, str | None, datetime, datetime, str, str | None, str]


def item_rows(
    session: Session, *, item_ids: Sequence[int] | None = None, visible_by: datetime | None = None
) -> list[ItemRow]:
    """(id, guid, title, summary, link, published, updated, lang, image_url, image_alt) of
    items, without ORM objects."""
    table = Item.__table__  # type: ignore[attr-defined]
    stmt = sa.select(
        table.c.id,
        table.c.guid,
        table.c.title,
        table.c.summary,
        table.c.link,
        table.c.published,
        table.c.updated,
        table.c.lang,
        table.c.image_url,
        table.c.image_alt,
    )
    if visible_by is not None:
        stmt = stmt.where(table.c.visible_at <= visible_by)
    if item_ids is None:
        return [tuple(r) for r in session.execute(stmt)]
    rows: list[ItemRow] = []
    for i in range(0, len(item_ids), _CHUNK):
        part = stmt.where(table.c.id.in_(item_ids[i : i + _CHUNK]))
        rows.extend(tuple(r) for r in session.execute(part))
    return rows


def items_by_ids(session: Session, *, item_ids: Sequence[int]) -> list[ItemPublic]:
    """The items of ``item_ids`` that still exist, with their tags (a frozen digest's items)."""
    found: list[Item] = []
    for part in _chunks(list(item_ids)):
        found.extend(session.exec(select(Item).where(col(Item.id).in_(list(part)))))
    tags = tags_of(session, item_ids=[i.id for i in found if i.id is not None])
    return [_public(i, tags.get(i.id or 0, [])) for i in found]


def next_embargo_lift(session: Session, *, now: datetime) -> datetime | None:
    """When the next embargoed item becomes visible (the feeds must be rebuilt then), or None."""
    stmt = sa.select(sa.func.min(col(Item.visible_at))).where(col(Item.visible_at) > now)
    found: datetime | None = session.execute(stmt).scalar()
    return found


def item_row(session: Session, *, item_id: int) -> Item | None:
    """The stored row of one item (to edit it), or None."""
    return session.get(Item, item_id)


def retag(session: Session, *, item_id: int, regions: Collection[str]) -> None:
    """Replace an item's region tags with ``regions``."""
    session.execute(sa.delete(ItemRegion).where(col(ItemRegion.item_id) == item_id))
    if regions:
        session.execute(sa.insert(ItemRegion), [{"item_id": item_id, "region": r} for r in regions])


def delete_item_row(session: Session, *, item: Item) -> None:
    """Remove one item and its tags."""
    session.execute(sa.delete(ItemRegion).where(col(ItemRegion.item_id) == item.id))
    session.delete(item)


def id_by_guid(session: Session, *, guid: str) -> int | None:
    """The id of the item with this guid, or None."""
    return session.exec(select(Item.id).where(Item.guid == guid)).first()


def change_key(session: Session, *, visible_by: datetime | None = None) -> tuple[object, ...]:
    """(count, newest id, latest update) of the (visible) items: changes whenever any does
    (edits, deletes, an embargo lifting)."""
    items = Item.__table__  # type: ignore[attr-defined]
    stmt = sa.select(sa.func.count(), sa.func.max(items.c.id), sa.func.max(items.c.updated))
    if visible_by is not None:
        stmt = stmt.where(items.c.visible_at <= visible_by)
    return tuple(session.execute(stmt).one())


def all_tags(session: Session, *, visible_by: datetime | None = None) -> list[tuple[int, str]]:
    """Every (item id, region) tag, or only those of the items visible at ``visible_by``."""
    items, tags = Item.__table__, ItemRegion.__table__  # type: ignore[attr-defined]
    stmt = sa.select(tags.c.item_id, tags.c.region)
    if visible_by is not None:
        stmt = stmt.join(items, items.c.id == tags.c.item_id).where(
            items.c.visible_at <= visible_by
        )
    return [(int(i), str(r)) for i, r in session.execute(stmt)]


def count_items(session: Session) -> int:
    """How many items the store holds."""
    return int(session.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one())


def visible_between(
    session: Session, *, after: datetime, until: datetime, regions: Collection[str] | None = None
) -> list[ItemPublic]:
    """Items that became visible in [after, until), with their tags: one fire's whole input
    (half-open, so an item stamped exactly at a cutoff belongs to the next window only).
    ``regions``: only items tagged with one of them (a preview of one region set reads its
    related regions' items, not the whole window's)."""
    stmt = (
        select(Item)
        .where(col(Item.visible_at) >= after, col(Item.visible_at) < until)
        .order_by(col(Item.id))
    )
    if regions is not None:
        tagged = select(ItemRegion.item_id).where(col(ItemRegion.region).in_(sorted(regions)))
        stmt = stmt.where(col(Item.id).in_(tagged))
    items = list(session.exec(stmt))
    tags = tags_of(session, item_ids=[i.id for i in items if i.id is not None])
    return [_public(i, tags.get(i.id or 0, [])) for i in items]


# One advisory lock key for "items being stamped visible" (ASCII "pubstamp").
_STAMP_LOCK = 0x7075627374616D70


def hold_stamps(session: Session) -> None:
    """Held by a transaction that stamps items visible (import, edit) until it commits: read
    the clock for ``visible_at`` only after this, so a fire fenced off before sees a later
    stamp, and a fire fenced off after sees the committed item. PostgreSQL: a shared advisory
    lock; SQLite: the database's write lock (a write that changes nothing)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(_STAMP_LOCK)))
    else:
        items: sa.Table = Item.__table__  # type: ignore[attr-defined]
        session.execute(sa.update(items).where(sa.false()).values(id=items.c.id))


def fence_stamps(session: Session) -> None:
    """Wait until every transaction that took ``hold_stamps`` has committed, and keep new ones
    out until this session ends: a fire's fence before it reads the items of its window.
    PostgreSQL: the exclusive advisory lock; SQLite: BEGIN IMMEDIATE (the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_STAMP_LOCK)))
    else:
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
