"""tallies: follower and ledger counts kept by triggers on PostgreSQL (the dashboard's source)

Revision ID: 0018
Revises: 0017 (0013 in the brief; re-chained here after merging console-base)
Create Date: 2026-12-01 02:00:00

Counting a million subscribers or five million ledger rows takes most of a second on every
dashboard, /api/stats, /api/digests and /metrics request. On PostgreSQL, statement-level
triggers append the change each statement makes to the counts (one row per key and statement,
from the transition tables, so a COPY of millions of rows adds a handful), and a count is a sum
over these small tables. Appending instead of updating one counter row keeps concurrent workers
from waiting on (or deadlocking over) a shared row; ``store.tallies.fold`` merges them.
``zone_tallies`` counts subscribers per chosen time zone and status (the dashboard's next send
per zone), so this revision must come after 0015, which adds subscribers.timezone.
The tables exist on SQLite too but stay empty: small stores count live.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (function/trigger name, timing and event, table, transition tables, body)
_FOLLOWERS_CHANGED = """
    INSERT INTO follower_tallies (region, status, n)
    SELECT region, status, sum(n) FROM ({deltas}) AS d
    GROUP BY region, status HAVING sum(n) <> 0
"""
_ZONES_CHANGED = """
    INSERT INTO zone_tallies (zone, status, n)
    SELECT zone, status, sum(n) FROM ({deltas}) AS d
    GROUP BY zone, status HAVING sum(n) <> 0
"""
_LEDGER_CHANGED = """
    INSERT INTO ledger_tallies (digest_id, state, n)
    SELECT digest_id, state, sum(n) FROM ({deltas}) AS d
    GROUP BY digest_id, state HAVING sum(n) <> 0
"""
_TRIGGERS: list[tuple[str, str, str, str, str]] = [
    (
        "tally_subscriptions_insert",
        "AFTER INSERT",
        "subscriptions",
        "NEW TABLE AS new_rows",
        _FOLLOWERS_CHANGED.format(
            deltas="""
            SELECT t.region, s.status, 1 AS n
            FROM new_rows t JOIN subscribers s ON s.id = t.subscriber_id"""
        ),
    ),
    (
        # A subscriber's own deletion cascades here after it is gone: the join finds nothing,
        # and tally_subscribers_delete has already taken its regions off.
        "tally_subscriptions_delete",
        "AFTER DELETE",
        "subscriptions",
        "OLD TABLE AS old_rows",
        _FOLLOWERS_CHANGED.format(
            deltas="""
            SELECT t.region, s.status, -1 AS n
            FROM old_rows t JOIN subscribers s ON s.id = t.subscriber_id"""
        ),
    ),
    (
        "tally_subscriptions_update",
        "AFTER UPDATE",
        "subscriptions",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        _FOLLOWERS_CHANGED.format(
            deltas="""
            SELECT t.region, s.status, -1 AS n
            FROM old_rows t JOIN subscribers s ON s.id = t.subscriber_id
            UNION ALL
            SELECT t.region, s.status, 1 AS n
            FROM new_rows t JOIN subscribers s ON s.id = t.subscriber_id"""
        ),
    ),
    (
        "tally_subscribers_insert",
        "AFTER INSERT",
        "subscribers",
        "NEW TABLE AS new_rows",
        _FOLLOWERS_CHANGED.format(deltas="SELECT '' AS region, status, 1 AS n FROM new_rows"),
    ),
    (
        "tally_subscribers_update",
        "AFTER UPDATE",
        "subscribers",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        _FOLLOWERS_CHANGED.format(
            deltas="""
            WITH changed AS (
                SELECT o.id, o.status AS was, w.status AS became
                FROM old_rows o JOIN new_rows w ON w.id = o.id
                WHERE o.status IS DISTINCT FROM w.status
            )
            SELECT '' AS region, was AS status, -1 AS n FROM changed
            UNION ALL SELECT '', became, 1 FROM changed
            UNION ALL SELECT x.region, c.was, -1
                FROM changed c JOIN subscriptions x ON x.subscriber_id = c.id
            UNION ALL SELECT x.region, c.became, 1
                FROM changed c JOIN subscriptions x ON x.subscriber_id = c.id"""
        ),
    ),
    (
        "tally_zones_insert",
        "AFTER INSERT",
        "subscribers",
        "NEW TABLE AS new_rows",
        _ZONES_CHANGED.format(
            deltas="SELECT coalesce(timezone, '') AS zone, status, 1 AS n FROM new_rows"
        ),
    ),
    (
        "tally_zones_update",
        "AFTER UPDATE",
        "subscribers",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        _ZONES_CHANGED.format(
            deltas="""
            WITH changed AS (
                SELECT coalesce(o.timezone, '') AS was_zone, o.status AS was,
                       coalesce(w.timezone, '') AS zone, w.status
                FROM old_rows o JOIN new_rows w ON w.id = o.id
                WHERE o.status IS DISTINCT FROM w.status
                   OR o.timezone IS DISTINCT FROM w.timezone
            )
            SELECT was_zone AS zone, was AS status, -1 AS n FROM changed
            UNION ALL SELECT zone, status, 1 FROM changed"""
        ),
    ),
    (
        "tally_deliveries_insert",
        "AFTER INSERT",
        "deliveries",
        "NEW TABLE AS new_rows",
        _LEDGER_CHANGED.format(deltas="SELECT digest_id, state, 1 AS n FROM new_rows"),
    ),
    (
        "tally_deliveries_delete",
        "AFTER DELETE",
        "deliveries",
        "OLD TABLE AS old_rows",
        _LEDGER_CHANGED.format(deltas="SELECT digest_id, state, -1 AS n FROM old_rows"),
    ),
    (
        "tally_deliveries_update",
        "AFTER UPDATE",
        "deliveries",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        _LEDGER_CHANGED.format(
            deltas="""
            WITH changed AS (
                SELECT o.digest_id AS was_digest, o.state AS was, w.digest_id, w.state
                FROM old_rows o JOIN new_rows w ON w.id = o.id
                WHERE o.state <> w.state OR o.digest_id <> w.digest_id
            )
            SELECT was_digest AS digest_id, was AS state, -1 AS n FROM changed
            UNION ALL SELECT digest_id, state, 1 FROM changed"""
        ),
    ),
]

# A subscriber's deletion takes its regions off while its subscriptions still exist (a
# statement-level AFTER trigger would run after the cascade had removed them).
_SUBSCRIBER_DELETE = """
CREATE FUNCTION tally_subscribers_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO follower_tallies (region, status, n)
    SELECT '', OLD.status, -1
    UNION ALL
    SELECT x.region, OLD.status, -1 FROM subscriptions x WHERE x.subscriber_id = OLD.id;
    INSERT INTO zone_tallies (zone, status, n) VALUES (coalesce(OLD.timezone, ''), OLD.status, -1);
    RETURN OLD;
END $$;
CREATE TRIGGER tally_subscribers_delete BEFORE DELETE ON subscribers
    FOR EACH ROW EXECUTE FUNCTION tally_subscribers_delete();
"""

# TRUNCATE fires no delete triggers; it empties the counts it invalidates instead.
_TRUNCATES = [
    (
        "tally_subscriptions_truncate",
        "subscriptions",
        "DELETE FROM follower_tallies WHERE region <> ''",
    ),
    (
        "tally_subscribers_truncate",
        "subscribers",
        "DELETE FROM follower_tallies; DELETE FROM zone_tallies",
    ),
    ("tally_deliveries_truncate", "deliveries", "DELETE FROM ledger_tallies"),
]

_SEED = [
    """INSERT INTO follower_tallies (region, status, n)
       SELECT '', status, count(*) FROM subscribers GROUP BY status""",
    """INSERT INTO follower_tallies (region, status, n)
       SELECT x.region, s.status, count(*)
       FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
       GROUP BY x.region, s.status""",
    """INSERT INTO zone_tallies (zone, status, n)
       SELECT coalesce(timezone, ''), status, count(*) FROM subscribers
       GROUP BY coalesce(timezone, ''), status""",
    """INSERT INTO ledger_tallies (digest_id, state, n)
       SELECT digest_id, state, count(*) FROM deliveries GROUP BY digest_id, state""",
]


def upgrade() -> None:
    op.create_table(
        "follower_tallies",
        sa.Column("id", _ID, nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ledger_tallies",
        sa.Column("id", _ID, nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_tallies_digest_id", "ledger_tallies", ["digest_id"], unique=False)
    op.create_table(
        "zone_tallies",
        sa.Column("id", _ID, nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    columns = {c["name"] for c in sa.inspect(bind).get_columns("subscribers")}
    if "timezone" not in columns:
        raise RuntimeError("0018 counts readers per subscribers.timezone: chain it after 0015")
    # Nobody may change the counted tables between the seed and the triggers.
    op.execute("LOCK TABLE subscribers, subscriptions, deliveries IN SHARE ROW EXCLUSIVE MODE")
    for statement in _SEED:
        op.execute(statement)
    for name, when, table, transition, body in _TRIGGERS:
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN {body}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} {when} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    op.execute(_SUBSCRIBER_DELETE)
    for name, table, body in _TRUNCATES:
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN {body}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        names = [(n, t) for n, _, t, _, _ in _TRIGGERS] + [(n, t) for n, t, _ in _TRUNCATES]
        names.append(("tally_subscribers_delete", "subscribers"))
        for name, table in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("zone_tallies")
    op.drop_index("ix_ledger_tallies_digest_id", table_name="ledger_tallies")
    op.drop_table("ledger_tallies")
    op.drop_table("follower_tallies")
