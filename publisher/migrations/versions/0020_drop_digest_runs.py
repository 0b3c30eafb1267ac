"""drop digest_runs: the per-region weekly job's record, unused since editions

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 10:00:00

digest_runs (0005) recorded the scheduler's weekly digest job per (region, week) so that a new
leader could finish a dead one's work. The weekly fire is per (zone, week) now (zone_fires,
0016) and nothing reads or writes digest_runs, so the table goes. Downgrade recreates it empty,
as 0005 made it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("digest_runs")


def downgrade() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("fire_time", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("started", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("finished", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["region"], ["regions.slug"]),
        sa.PrimaryKeyConstraint("region", "week"),
    )
