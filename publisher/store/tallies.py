"""Counts kept by PostgreSQL triggers (0018): subscribers per region and status and per time zone
and status, ledger rows per digest and state, read as sums over small tables instead of scans.

Each row is one statement's change to one key; ``fold`` merges a key's rows into one (the
scheduler runs it every minute), so a sum reads a row or two per key. The triggers run in the
writing transaction, so the sums are exact at any moment, never "as of" a refresh. SQLite has no
triggers here (``kept`` is False): its callers count live.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import Digest, FollowerTally, LedgerTally, SubscriberStatus, ZoneTally
from publisher.store.sql import among

F: sa.Table = FollowerTally.__table__  # type: ignore[attr-defined]
L: sa.Table = LedgerTally.__table__  # type: ignore[attr-defined]
Z: sa.Table = ZoneTally.__table__  # type: ignore[attr-defined]
D: sa.Table = Digest.__table__  # type: ignore[attr-defined]

EVERYONE = ""  # the region key of the counts over all subscribers


def kept(session: Session) -> bool:
    """Whether this store keeps tallies (PostgreSQL); otherwise count the tables themselves."""
    return session.get_bind().dialect.name == "postgresql"


def followers(session: Session) -> dict[str, dict[str, int]]:
    """{region: {status: subscribers}}, with EVERYONE for the totals per status."""
    n = sa.func.sum(F.c.n)
    stmt = sa.select(F.c.region, F.c.status, n).group_by(F.c.region, F.c.status).having(n != 0)
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for region, status, count in session.execute(stmt):
        table[region][status] = int(count)
    return dict(table)


def active_per_zone(session: Session) -> dict[str | None, int]:
    """Active subscribers per chosen time zone (None: none chosen, TIMEZONE applies)."""
    n = sa.func.sum(Z.c.n)
    stmt = (
        sa.select(Z.c.zone, n)
        .where(Z.c.status == SubscriberStatus.active)
        .group_by(Z.c.zone)
        .having(n != 0)
    )
    return {zone or None: int(count) for zone, count in session.execute(stmt)}


def ledger(
    session: Session, *, digest_ids: Collection[int] | None = None
) -> dict[int, dict[str, int]]:
    """{digest id: {state: rows}} (of ``digest_ids`` only, when given)."""
    n = sa.func.sum(L.c.n)
    stmt = sa.select(L.c.digest_id, L.c.state, n).group_by(L.c.digest_id, L.c.state).having(n != 0)
    if digest_ids is not None:
        stmt = stmt.where(among(L.c.digest_id, digest_ids))
    table: dict[int, dict[str, int]] = defaultdict(dict)
    for digest_id, state, count in session.execute(stmt):
        table[int(digest_id)][state] = int(count)
    return dict(table)


def ledger_per_state(session: Session) -> dict[str, int]:
    """Ledger rows per state over every digest."""
    n = sa.func.sum(L.c.n)
    stmt = sa.select(L.c.state, n).group_by(L.c.state).having(n != 0)
    return {state: int(count) for state, count in session.execute(stmt)}


def ledger_per_region_state(session: Session, *, since: datetime) -> list[tuple[str, str, int]]:
    """(region, state, rows) of the digests assembled since ``since``."""
    n = sa.func.sum(L.c.n)
    stmt = (
        sa.select(D.c.region, L.c.state, n)
        .join(D, D.c.id == L.c.digest_id)
        .where(D.c.created >= since)
        .group_by(D.c.region, L.c.state)
        .having(n != 0)
    )
    return [(region, state, int(count)) for region, state, count in session.execute(stmt)]


_FOLD = """
WITH dup AS (
    SELECT {keys} FROM {table} GROUP BY {keys} HAVING count(*) > 1 OR sum(n) = 0
), gone AS (
    DELETE FROM {table} t USING dup WHERE {match} RETURNING {returning}
)
INSERT INTO {table} ({keys}, n)
SELECT {keys}, sum(n) FROM gone GROUP BY {keys} HAVING sum(n) <> 0
"""


def fold(session: Session) -> None:
    """Merge each key's rows into one and drop keys that sum to zero.

    Rows added meanwhile are outside the DELETE's snapshot and stay; a second fold at the same
    time deletes only what the first did not, so sums never change. A no-op on SQLite.
    """
    if not kept(session):
        return
    keyed = (
        (F.name, ("region", "status")),
        (Z.name, ("zone", "status")),
        (L.name, ("digest_id", "state")),
    )
    for table, keys in keyed:
        sql = _FOLD.format(
            table=table,
            keys=", ".join(keys),
            match=" AND ".join(f"t.{k} = dup.{k}" for k in keys),
            returning=", ".join(f"t.{k}" for k in keys) + ", t.n",
        )
        session.execute(sa.text(sql))


def ledger_per_week_state(session: Session, *, weeks: Collection[str]) -> dict[str, dict[str, int]]:
    """{week: {state: rows}} of the digests labelled with ``weeks``."""
    n = sa.func.sum(L.c.n)
    stmt = (
        sa.select(D.c.week, L.c.state, n)
        .join(D, D.c.id == L.c.digest_id)
        .where(D.c.week.in_(list(weeks)))
        .group_by(D.c.week, L.c.state)
        .having(n != 0)
    )
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for week, state, count in session.execute(stmt):
        table[week][state] = int(count)
    return dict(table)
