"""What the console's editions page reads: a week's frozen digests and the zones with readers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import Digest, Subscriber, SubscriberStatus

_D: sa.Table = Digest.__table__  # type: ignore[attr-defined]
_S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]


def week_digest_ids(session: Session, *, week: str) -> list[int]:
    """Ids of the frozen editions (digests) of ``week``."""
    return [int(i) for i in session.execute(sa.select(_D.c.id).where(_D.c.week == week)).scalars()]


def reader_zones(session: Session, *, default_zone: str) -> list[str]:
    """The effective time zones of active readers (a NULL zone is ``default_zone``), sorted."""
    effective = sa.func.coalesce(_S.c.timezone, default_zone)
    stmt = sa.select(effective).where(_S.c.status == SubscriberStatus.active).distinct()
    return sorted(str(z) for z in session.execute(stmt).scalars())
