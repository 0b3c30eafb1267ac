"""editions: one edition per reader per week, frozen digests per region set and window

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01 02:00:00

digests become frozen editions: a ``regions`` column (the canonical region set; legacy rows get
their one region) and UNIQUE(regions, week, window_start, window_end) instead of
UNIQUE(region, week). deliveries get ``week`` and UNIQUE(subscriber_id, week) (legacy rows keep
NULL, which is distinct in both engines). subscribers get ``timezone``. New tables: editions,
edition_notes, send_holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regions", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE digests SET regions = region")
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_digest_region_week", type_="unique")
        batch_op.create_unique_constraint(
            "uq_digest_edition", ["regions", "week", "window_start", "window_end"]
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("week", sa.String(length=8), nullable=True))
        batch_op.create_unique_constraint("uq_delivery_subscriber_week", ["subscriber_id", "week"])
    # A plain ADD COLUMN: a batch copy would lose the expression index on lower(email).
    op.add_column("subscribers", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_table(
        "editions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("window_start", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("cutoff", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("regions", sa.Text(), nullable=False),
        sa.Column("created", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("early", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "week", name="uq_edition_subscriber_week"),
    )
    op.create_index("ix_editions_week", "editions", ["week"], unique=False)
    op.create_index("ix_editions_digest_id", "editions", ["digest_id"], unique=False)
    op.create_index(
        "ix_editions_subscriber_cutoff", "editions", ["subscriber_id", "cutoff"], unique=False
    )
    op.create_table(
        "edition_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.Column("updated", publisher.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("week", "region", name="uq_edition_note_week_region"),
    )
    op.create_table(
        "send_holds",
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("held_by", sa.String(length=320), nullable=False),
        sa.Column("held_at", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("approved_at", publisher.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("week"),
    )


def downgrade() -> None:
    op.drop_table("send_holds")
    op.drop_table("edition_notes")
    op.drop_index("ix_editions_subscriber_cutoff", table_name="editions")
    op.drop_index("ix_editions_digest_id", table_name="editions")
    op.drop_index("ix_editions_week", table_name="editions")
    op.drop_table("editions")
    op.drop_column("subscribers", "timezone")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery_subscriber_week", type_="unique")
        batch_op.drop_column("week")
    # Back to one digest per (region, week): fails while a pair has several (say which to keep).
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_digest_edition", type_="unique")
        batch_op.create_unique_constraint("uq_digest_region_week", ["region", "week"])
        batch_op.drop_column("regions")
