"""reader time zones: subscribers.timezone_chosen, defaults backfilled, zone_fires

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 02:00:00

subscribers.timezone (0015) holds a reader's zone; ``timezone_chosen`` says they picked it, so
it no longer follows their regions. Readers stored before this revision get the default at once
(backfilled here, not lazily): the main zone of the first country they follow, in the region
tree's order; NULL (= the TIMEZONE setting) when they follow no country. zone_fires records the
scheduler's weekly fire per (zone, week), as digest_runs did per (region, week).
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

import publisher.models
from publisher.regions.tree import RegionTree
from publisher.regions.zones import default_zone

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_CHUNK = 1000


def upgrade() -> None:
    # No batch_alter_table: on SQLite it would copy and drop `subscribers`, and the drop cascades
    # to subscriptions and consents (foreign keys are on). Both statements work in place there.
    op.add_column(
        "subscribers",
        sa.Column("timezone_chosen", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_subscribers_status_timezone", "subscribers", ["status", "timezone"])
    op.create_table(
        "zone_fires",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("fire_time", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("started", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("finished", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "week"),
    )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Give every reader whose zone is unset the default of the regions they follow."""
    tree = RegionTree.load()
    countries = sorted(r.slug for r in tree if r.level == "country")
    follows: dict[int, list[str]] = defaultdict(list)
    rows = conn.execute(
        sa.text(
            "SELECT s.subscriber_id, s.region FROM subscriptions s "
            "JOIN subscribers r ON r.id = s.subscriber_id WHERE r.timezone IS NULL"
        )
    )
    wanted = set(countries)
    for subscriber_id, region in rows:
        if region in wanted:
            follows[int(subscriber_id)].append(region)
    by_zone: dict[str, list[int]] = defaultdict(list)
    for subscriber_id, regions in follows.items():
        zone = default_zone(tree, regions)
        if zone is not None:
            by_zone[zone].append(subscriber_id)
    update = sa.text("UPDATE subscribers SET timezone = :zone WHERE id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    for zone, ids in sorted(by_zone.items()):
        ids.sort()
        for i in range(0, len(ids), _CHUNK):
            conn.execute(update, {"zone": zone, "ids": ids[i : i + _CHUNK]})


def downgrade() -> None:
    op.drop_table("zone_fires")
    op.drop_index("ix_subscribers_status_timezone", table_name="subscribers")
    op.drop_column("subscribers", "timezone_chosen")  # SQLite >= 3.35 drops a column in place
