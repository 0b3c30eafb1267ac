"""digests.placeholder_key: the random key of a digest's per-recipient markers

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-30 23:00:00

Fixed markers (%%EMAIL%%, ...) could be typed into an item and filled with the reader's address
and links; each digest now gets random markers, whose key is stored here. Existing rows keep
NULL, which means the old fixed markers, so digests assembled before the upgrade still send.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("digests", sa.Column("placeholder_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("digests") as batch:
        batch.drop_column("placeholder_key")
