"""item visibility: items.visible_at (embargo and archive weeks) and withdrawn_items tombstones

Revision ID: 0014
Revises: 0005
Create Date: 2026-11-30 23:00:00

An item becomes visible at max(published, created): existing rows are backfilled with exactly
that. withdrawn_items keeps the title, regions and visible_at of a public item that was deleted,
so its permalink and archive week say "withdrawn" instead of leading nowhere.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visible_at", publisher.models.UTCDateTime(), nullable=True))
    # Both backends store these columns in one comparable form (SQLite: fixed-width text).
    op.execute(
        "UPDATE items SET visible_at = "
        "CASE WHEN published > created THEN published ELSE created END"
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column(
            "visible_at", existing_type=publisher.models.UTCDateTime(), nullable=False
        )
        batch_op.create_index("ix_items_visible_at", ["visible_at"], unique=False)
    op.create_table(
        "withdrawn_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("regions", sa.String(length=2000), nullable=False),
        sa.Column("visible_at", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", publisher.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_withdrawn_items_item_id", "withdrawn_items", ["item_id"], unique=False)
    op.create_index(
        "ix_withdrawn_items_visible_at", "withdrawn_items", ["visible_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_withdrawn_items_visible_at", table_name="withdrawn_items")
    op.drop_index("ix_withdrawn_items_item_id", table_name="withdrawn_items")
    op.drop_table("withdrawn_items")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_visible_at")
        batch_op.drop_column("visible_at")
