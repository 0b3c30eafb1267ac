"""The dashboard's own reads: readers per time zone and the sends held for approval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import SendHold, Subscriber, SubscriberStatus
from publisher.store import tallies

_S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
_H: sa.Table = SendHold.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Hold:
    """A week whose scheduled send waits for an editor's approval."""

    week: str
    held_by: str
    held_at: datetime


def readers_per_zone(session: Session, *, live: bool = False) -> dict[str | None, int]:
    """Active readers per chosen time zone (None: they follow TIMEZONE); tallies on PostgreSQL."""
    if not live and tallies.kept(session):
        return tallies.active_per_zone(session)
    stmt = (
        sa.select(_S.c.timezone, sa.func.count())
        .where(_S.c.status == SubscriberStatus.active)
        .group_by(_S.c.timezone)
    )
    return {name: int(n) for name, n in session.execute(stmt)}


def open_holds(session: Session) -> list[Hold]:
    """Held weeks not approved yet, oldest first (a handful of rows at most)."""
    stmt = sa.select(_H.c.week, _H.c.held_by, _H.c.held_at).where(_H.c.approved_at.is_(None))
    return [Hold(w, by, at) for w, by, at in session.execute(stmt.order_by(_H.c.week))]
