"""The rate_limits table: one row of sliding-window counters per (scope, hashed key).

Functions over a Connection inside the caller's transaction; ``counts`` locks the row (on
PostgreSQL) so that concurrent hits on one key from several processes count one after another.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from publisher.models import RateLimit

_TABLE: sa.Table = RateLimit.__table__  # type: ignore[attr-defined]


def counts(conn: Connection, *, scope: str, key: int, window: int) -> tuple[int, int]:
    """(previous window's hits, current window's hits) for ``key``, its row locked."""
    values = {"scope": scope, "key": key, "window": window, "previous": 0, "current": 0}
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(_TABLE).values(values)
        conn.execute(pg.on_conflict_do_nothing(index_elements=["scope", "key"]))
    else:
        lite = sqlite.insert(_TABLE).values(values)
        conn.execute(lite.on_conflict_do_nothing(index_elements=["scope", "key"]))
    seen, previous, current = conn.execute(
        sa.select(_TABLE.c.window, _TABLE.c.previous, _TABLE.c.current)
        .where(_TABLE.c.scope == scope, _TABLE.c.key == key)
        .with_for_update()
    ).one()
    if seen == window:
        return previous, current
    if seen == window - 1:
        return current, 0
    return 0, 0


def count_hit(conn: Connection, *, scope: str, key: int, window: int, previous: int) -> None:
    """Record one allowed hit in ``window`` (rolling the row's windows forward if needed)."""
    same = _TABLE.c.window == window
    conn.execute(
        sa.update(_TABLE)
        .where(_TABLE.c.scope == scope, _TABLE.c.key == key)
        .values(
            window=window,
            previous=sa.case((same, _TABLE.c.previous), else_=previous),
            current=sa.case((same, _TABLE.c.current + 1), else_=1),
        )
    )


def purge(conn: Connection, *, scope: str, window: int) -> int:
    """Delete rows whose counters no longer matter at ``window``; how many went."""
    result = conn.execute(
        sa.delete(_TABLE).where(_TABLE.c.scope == scope, _TABLE.c.window < window - 1)
    )
    return result.rowcount or 0


def keys(conn: Connection, *, scope: str) -> int:
    """How many keys ``scope`` holds (for tests and metrics)."""
    return conn.execute(
        sa.select(sa.func.count()).select_from(_TABLE).where(_TABLE.c.scope == scope)
    ).scalar_one()
