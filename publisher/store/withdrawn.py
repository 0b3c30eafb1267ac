"""Tombstones of deleted public items, so that their links and archive weeks say "withdrawn"."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import Item, WithdrawnItem


def add_tombstone(session: Session, *, item: Item, regions: list[str], now: datetime) -> None:
    """Record that ``item`` (about to be deleted) was public and is now withdrawn."""
    assert item.id is not None
    session.add(
        WithdrawnItem(
            item_id=item.id,
            guid=item.guid,
            title=item.title,
            regions=" ".join(regions)[:2000],
            visible_at=item.visible_at,
            withdrawn_at=now,
        )
    )


def newest_withdrawn_id(session: Session) -> int:
    """The highest id a withdrawn item had (0 if none): new items must not take it again."""
    found = session.execute(sa.select(sa.func.max(col(WithdrawnItem.item_id)))).scalar()
    return int(found or 0)


def find_withdrawn(session: Session, *, item_id: int) -> WithdrawnItem | None:
    """The newest tombstone left under ``item_id``, or None."""
    stmt = (
        select(WithdrawnItem)
        .where(col(WithdrawnItem.item_id) == item_id)
        .order_by(col(WithdrawnItem.id).desc())
    )
    return session.exec(stmt).first()


def withdrawn_between(
    session: Session, *, regions: Collection[str], start: datetime, end: datetime
) -> list[WithdrawnItem]:
    """Tombstones of items tagged with any of ``regions`` that became visible in [start, end)."""
    stmt = (
        select(WithdrawnItem)
        .where(col(WithdrawnItem.visible_at) >= start, col(WithdrawnItem.visible_at) < end)
        .order_by(col(WithdrawnItem.visible_at), col(WithdrawnItem.id))
    )
    wanted = set(regions)
    return [w for w in session.exec(stmt) if wanted.intersection(w.regions.split())]


def withdrawn_times(session: Session, *, regions: Collection[str]) -> list[datetime]:
    """When each tombstoned item of ``regions`` had become visible (for the archive's weeks)."""
    stmt = select(WithdrawnItem.regions, WithdrawnItem.visible_at)
    wanted = set(regions)
    return [at for tags, at in session.exec(stmt) if wanted.intersection(tags.split())]
