"""The scheduler's per-minute query of readers' zones, on PostgreSQL with N readers (default 1M).

    .venv/bin/python bench/bench_zones.py [N]     # PostgreSQL at 127.0.0.1:5432, database test

Prints p50 and max of ``store.schedule.zones_to_schedule`` (a loose index scan), next to the
plain GROUP BY it replaces, and the plan. A private database is created and dropped.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from sqlmodel import Session

from publisher.db import make_engine, upgrade
from publisher.store.schedule import _PG_ZONES, zones_to_schedule

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ZONES = "'America/Guatemala','America/El_Salvador','Europe/Madrid','America/Santiago',NULL"
FILL = sa.text(
    "INSERT INTO subscribers (email, key, status, locale, created, timezone, timezone_chosen) "
    "SELECT 'r' || g || '@example.org', md5(g::text), "
    "CASE WHEN g % 10 = 0 THEN 'unsubscribed' ELSE 'active' END, 'en', now(), "
    f"(ARRAY[{ZONES}])[1 + g % 5], false FROM generate_series(1, :n) g"
)
GROUP_BY = sa.text(
    "SELECT coalesce(timezone, 'UTC') FROM subscribers WHERE status = 'active' GROUP BY 1"
)


def timed(engine: sa.Engine, run: Callable[[Session], object]) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(7):
        with Session(engine) as session:
            began = time.perf_counter()
            out = run(session)
            times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, max(times) * 1000, out


def main(n: int) -> None:
    name = f"zbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(FILL, {"n": n})
            conn.execute(sa.text("ANALYZE subscribers"))
        runs = {
            "zones_to_schedule (loose index scan)": lambda s: zones_to_schedule(s, default="UTC"),
            "GROUP BY (what it replaces)": lambda s: s.execute(GROUP_BY).scalars().all(),
        }
        for label, run in runs.items():
            p50, worst, out = timed(engine, run)
            print(f"{label}: {n} readers, p50 {p50:.1f} ms, max {worst:.1f} ms -> {out}")
        with engine.connect() as conn:
            plan = conn.execute(sa.text("EXPLAIN " + _PG_ZONES.text), {"active": "active"})
            print("\n".join(plan.scalars()))
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
