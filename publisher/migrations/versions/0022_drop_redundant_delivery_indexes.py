"""deliveries: drop the single-column indexes on digest_id and subscriber_id

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 18:45:00

Both columns lead a unique index already (digest_id, subscriber_id) and (subscriber_id, week),
which serves every lookup by either column alone and the foreign key's checks. A fire writes a
ledger row per reader; with readers of thousands of region sets those rows land scattered over
the subscriber-keyed indexes, so one index fewer took a fire of 10,000 region sets (100,000
readers, SQLite) from 18.6 s to 17.3 s (mean of three alternated runs each).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")
    op.drop_index("ix_deliveries_digest_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_digest_id", "deliveries", ["digest_id"])
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])
