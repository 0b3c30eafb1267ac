"""bounces: reports as they arrived (raw, kept 90 days) and the events applied from them

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30 23:00:00

bounce_reports holds every DSN, ARF complaint and provider event stored before it was
acknowledged (unique key: a report that arrives twice is one row); bounce_events links what a
report said (hard, soft, complaint) to its ledger row, once per (row, kind).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("envelope_to", sa.String(length=1000), nullable=False),
        sa.Column("received", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(
        "ix_bounce_reports_state_received", "bounce_reports", ["state", "received"], unique=False
    )
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("diagnostic", sa.String(length=500), nullable=False),
        sa.Column("at", publisher.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["bounce_reports.id"]),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "kind", name="uq_bounce_event_delivery_kind"),
    )
    op.create_index("ix_bounce_events_report_id", "bounce_events", ["report_id"], unique=False)
    op.create_index("ix_bounce_events_at", "bounce_events", ["at"], unique=False)
    op.create_index(
        "ix_bounce_events_subscriber_kind_at",
        "bounce_events",
        ["subscriber_id", "kind", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_bounce_events_subscriber_kind_at", table_name="bounce_events")
    op.drop_index("ix_bounce_events_at", table_name="bounce_events")
    op.drop_index("ix_bounce_events_report_id", table_name="bounce_events")
    op.drop_table("bounce_events")
    op.drop_index("ix_bounce_reports_state_received", table_name="bounce_reports")
    op.drop_table("bounce_reports")
