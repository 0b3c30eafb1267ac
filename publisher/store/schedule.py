"""The store queries the scheduler makes: readers' zones, fire records, change checks, housekeeping.

Keyword-only functions over a Session, like the rest of the store; they never commit.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import (
    Consent,
    Item,
    ItemRegion,
    Subscriber,
    SubscriberStatus,
    Subscription,
    ZoneFire,
)
from publisher.store.rows import add_unless_taken

# A loose index scan over ix_subscribers_status_timezone: one index probe per distinct zone,
# not a scan of every reader (PostgreSQL has no skip scan; 1,000,000 readers: ~1 s -> ~ms).
_PG_ZONES = sa.text(
    """
    WITH RECURSIVE z(tz) AS (
      SELECT min(timezone) FROM subscribers WHERE status = :active
      UNION ALL
      SELECT (SELECT min(timezone) FROM subscribers WHERE status = :active AND timezone > z.tz)
      FROM z WHERE z.tz IS NOT NULL
    )
    SELECT tz FROM z WHERE tz IS NOT NULL
    UNION ALL
    SELECT NULL WHERE EXISTS (
      SELECT 1 FROM subscribers WHERE status = :active AND timezone IS NULL
    )
    """
)


def zones_to_schedule(session: Session, *, default: str) -> list[str]:
    """The zones of active readers (``default`` for those without one of their own), sorted."""
    active = str(SubscriberStatus.active)
    if session.get_bind().dialect.name == "postgresql":
        found = {z or default for z in session.execute(_PG_ZONES, {"active": active}).scalars()}
        return sorted(found)
    zone = sa.func.coalesce(col(Subscriber.timezone), default)
    stmt = sa.select(zone).where(col(Subscriber.status) == active).group_by(zone)
    return sorted(str(z) for z in session.execute(stmt).scalars())


def get_fire(session: Session, *, zone: str, week: str) -> ZoneFire | None:
    return session.get(ZoneFire, (zone, week))


def start_fire(
    session: Session, *, zone: str, week: str, fire_time: datetime, now: datetime, runner: str
) -> ZoneFire | None:
    """Record that ``runner`` fires (zone, week); None if a fire of that week already finished.

    Two runners starting at once both get the row (the editions' unique keys make the work
    idempotent); a finished fire is never started again, so a second fire for the same week (a
    DST change, a second scheduler, a catch-up) is a no-op.
    """
    fire = get_fire(session, zone=zone, week=week)
    if fire is not None:
        if fire.finished is not None:
            return None
        fire.started, fire.runner = now, runner[:64]
        session.add(fire)
        return fire
    fire = ZoneFire(zone=zone, week=week, fire_time=fire_time, started=now, runner=runner[:64])
    if add_unless_taken(session, fire):
        return fire
    found = get_fire(session, zone=zone, week=week)
    return None if found is None or found.finished is not None else found


def finish_fire(
    session: Session, *, zone: str, week: str, status: str, queued: int, now: datetime
) -> None:
    """Mark the fire of (zone, week) finished with what it did."""
    session.execute(
        sa.update(ZoneFire)
        .where(col(ZoneFire.zone) == zone, col(ZoneFire.week) == week)
        .values(finished=now, status=status[:16], queued=queued)
    )


def unfinished_fires(session: Session, *, started_after: datetime) -> list[ZoneFire]:
    """Fires started after ``started_after`` that never finished (their scheduler died)."""
    stmt = select(ZoneFire).where(
        col(ZoneFire.finished).is_(None), col(ZoneFire.started) > started_after
    )
    return list(session.exec(stmt.order_by(col(ZoneFire.zone), col(ZoneFire.week))))


def items_fingerprint(session: Session) -> tuple[int, int, str]:
    """A cheap summary that changes whenever items or their tags change (add, edit, delete)."""
    count, newest = session.execute(
        sa.select(sa.func.count(), sa.func.max(col(Item.updated)))
    ).one()
    tags = session.execute(sa.select(sa.func.count()).select_from(ItemRegion)).scalar_one()
    return int(count), int(tags), str(newest)


def purge_unconfirmed(session: Session, *, before: datetime) -> int:
    """Delete pending signups never confirmed and not renewed since ``before``; returns how many.

    Only people who never confirmed go (``confirmed`` is empty): they never consented, so nothing
    is kept, not even a suppression entry, and they may sign up again. A signup repeated after
    ``before`` (a newer consent row) keeps the subscriber.
    """
    renewed = sa.select(col(Consent.subscriber_id)).where(col(Consent.at) >= before)
    stale = sa.select(col(Subscriber.id)).where(
        col(Subscriber.status) == SubscriberStatus.pending,
        col(Subscriber.confirmed).is_(None),
        col(Subscriber.created) < before,
        col(Subscriber.id).not_in(renewed),
    )
    ids = [int(i) for i in session.execute(stale).scalars()]
    for i in range(0, len(ids), 1000):
        part = ids[i : i + 1000]
        session.execute(sa.delete(Subscription).where(col(Subscription.subscriber_id).in_(part)))
        session.execute(sa.delete(Consent).where(col(Consent.subscriber_id).in_(part)))
        session.execute(sa.delete(Subscriber).where(col(Subscriber.id).in_(part)))
    return len(ids)
