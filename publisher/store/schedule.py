"""The store queries the scheduler makes: readers' zones, fire records, change checks, housekeeping.

Keyword-only functions over a Session, like the rest of the store; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import (
    Consent,
    DigestRun,
    Item,
    ItemRegion,
    RegionRow,
    Subscriber,
    SubscriberStatus,
    Subscription,
    ZoneFire,
)
from publisher.store.rows import add_unless_taken


@dataclass(frozen=True, slots=True)
class RegionSchedule:
    """A region with at least one active subscriber, and its digest overrides (None = default)."""

    slug: str
    timezone: str | None
    digest_day: str | None
    digest_time: str | None


def zones_to_schedule(session: Session, *, default: str) -> list[str]:
    """The zones of active readers (``default`` for those without one of their own), sorted."""
    zone = sa.func.coalesce(col(Subscriber.timezone), default)
    stmt = (
        sa.select(zone)
        .where(col(Subscriber.status) == SubscriberStatus.active)
        .group_by(zone)
        .order_by(zone)
    )
    return [str(z) for z in session.execute(stmt).scalars()]


def readers_per_zone(session: Session, *, default: str) -> dict[str, int]:
    """Active readers per zone (``default`` for those without one of their own)."""
    zone = sa.func.coalesce(col(Subscriber.timezone), default)
    stmt = (
        sa.select(zone, sa.func.count())
        .where(col(Subscriber.status) == SubscriberStatus.active)
        .group_by(zone)
    )
    return {str(z): int(n) for z, n in session.execute(stmt)}


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


def region_schedule(session: Session, *, region: str) -> RegionSchedule:
    """One region's overrides (all None when the region is not in the store)."""
    row = session.get(RegionRow, region)
    if row is None:
        return RegionSchedule(region, None, None, None)
    return RegionSchedule(region, row.timezone, row.digest_day, row.digest_time)


def get_run(session: Session, *, region: str, week: str) -> DigestRun | None:
    return session.get(DigestRun, (region, week))


def start_run(
    session: Session, *, region: str, week: str, fire_time: datetime, now: datetime, runner: str
) -> DigestRun | None:
    """Record that ``runner`` starts the digest job of (region, week); None if it already finished.

    Two runners starting at once both get the row (the work is idempotent); a finished run is
    never started again, which is what makes a second fire for the same week a no-op.
    """
    run = get_run(session, region=region, week=week)
    if run is not None:
        if run.finished is not None:
            return None
        run.started, run.runner = now, runner[:64]
        session.add(run)
        return run
    run = DigestRun(region=region, week=week, fire_time=fire_time, started=now, runner=runner[:64])
    if add_unless_taken(session, run):
        return run
    found = get_run(session, region=region, week=week)
    return None if found is None or found.finished is not None else found


def finish_run(
    session: Session, *, region: str, week: str, status: str, queued: int, now: datetime
) -> None:
    """Mark the run of (region, week) finished with what it did."""
    session.execute(
        sa.update(DigestRun)
        .where(col(DigestRun.region) == region, col(DigestRun.week) == week)
        .values(finished=now, status=status[:16], queued=queued)
    )


def unfinished_runs(session: Session, *, started_after: datetime) -> list[DigestRun]:
    """Runs started after ``started_after`` that never finished (their scheduler died or failed)."""
    stmt = select(DigestRun).where(
        col(DigestRun.finished).is_(None), col(DigestRun.started) > started_after
    )
    return list(session.exec(stmt.order_by(col(DigestRun.region), col(DigestRun.week))))


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
