"""Counting the delivery ledger: rows per digest and state, per state, per region and state.

On PostgreSQL the answers come from the trigger-kept tallies (``store.tallies``), exact and
cheap at millions of rows; ``live=True`` (and SQLite) counts the ledger itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import Delivery, Digest
from publisher.store import tallies
from publisher.store.sql import among

T: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
D: sa.Table = Digest.__table__  # type: ignore[attr-defined]


def counts(
    session: Session, *, digest_ids: Collection[int] | None = None, live: bool = False
) -> dict[int, dict[str, int]]:
    """Rows per state for each digest (states with no rows are left out)."""
    if not live and tallies.kept(session):
        return tallies.ledger(session, digest_ids=digest_ids)
    stmt = sa.select(T.c.digest_id, T.c.state, sa.func.count()).group_by(T.c.digest_id, T.c.state)
    if digest_ids is not None:
        stmt = stmt.where(among(T.c.digest_id, digest_ids))
    result: dict[int, dict[str, int]] = defaultdict(dict)
    for digest_id, state, n in session.execute(stmt):
        result[digest_id][state] = n
    return dict(result)


def per_state(session: Session, *, live: bool = False) -> dict[str, int]:
    """Ledger rows per delivery state, over every digest."""
    if not live and tallies.kept(session):
        return tallies.ledger_per_state(session)
    rows = session.execute(sa.select(T.c.state, sa.func.count()).group_by(T.c.state))
    return {state: int(n) for state, n in rows}


def per_region_state(
    session: Session, *, since: datetime, live: bool = False
) -> list[tuple[str, str, int]]:
    """(region, state, rows) of the digests assembled since ``since``."""
    if not live and tallies.kept(session):
        return tallies.ledger_per_region_state(session, since=since)
    stmt = (
        sa.select(D.c.region, T.c.state, sa.func.count())
        .join(D, D.c.id == T.c.digest_id)
        .where(D.c.created >= since)
        .group_by(D.c.region, T.c.state)
    )
    return [(region, state, int(n)) for region, state, n in session.execute(stmt)]


def per_week_state(
    session: Session, *, weeks: Collection[str], live: bool = False
) -> dict[str, dict[str, int]]:
    """{week: {state: rows}} of the digests labelled with ``weeks`` (the dashboard's sends)."""
    if not live and tallies.kept(session):
        return tallies.ledger_per_week_state(session, weeks=weeks)
    stmt = (
        sa.select(D.c.week, T.c.state, sa.func.count())
        .join(D, D.c.id == T.c.digest_id)
        .where(D.c.week.in_(list(weeks)))
        .group_by(D.c.week, T.c.state)
    )
    result: dict[str, dict[str, int]] = defaultdict(dict)
    for week, state, n in session.execute(stmt):
        result[week][state] = int(n)
    return dict(result)


def digests_per_week(session: Session, *, weeks: Collection[str]) -> dict[str, int]:
    """How many digests (rendered editions) each of ``weeks`` has."""
    stmt = sa.select(D.c.week, sa.func.count()).where(D.c.week.in_(list(weeks))).group_by(D.c.week)
    return {week: int(n) for week, n in session.execute(stmt)}
