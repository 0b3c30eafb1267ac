"""The site archive's reads: when a region's items became visible, and a week's items."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import Item, ItemPublic, ItemRegion
from publisher.store.items import tags_of


def _tagged(regions: Collection[str]) -> Any:
    return select(ItemRegion.item_id).where(col(ItemRegion.region).in_(list(regions)))


def visible_times(session: Session, *, regions: Collection[str], now: datetime) -> list[datetime]:
    """When each item of ``regions`` that is visible at ``now`` became visible."""
    stmt = sa.select(col(Item.visible_at)).where(
        col(Item.visible_at) <= now, col(Item.id).in_(_tagged(regions))
    )
    return [row[0] for row in session.execute(stmt)]


def visible_between(
    session: Session, *, regions: Collection[str], start: datetime, end: datetime, now: datetime
) -> list[ItemPublic]:
    """Items of ``regions`` that became visible in [start, end) and by ``now``, oldest first."""
    stmt = (
        select(Item)
        .where(
            col(Item.visible_at) >= start,
            col(Item.visible_at) < end,
            col(Item.visible_at) <= now,
            col(Item.id).in_(_tagged(regions)),
        )
        .order_by(col(Item.visible_at), col(Item.id))
    )
    items = list(session.exec(stmt))
    tags = tags_of(session, item_ids=[i.id for i in items if i.id is not None])
    return [
        ItemPublic(
            id=i.id or 0, guid=i.guid, title=i.title, summary=i.summary, link=i.link,
            published=i.published, updated=i.updated, regions=tags.get(i.id or 0, []),
            visible_at=i.visible_at,
        )
        for i in items
    ]  # fmt: skip
