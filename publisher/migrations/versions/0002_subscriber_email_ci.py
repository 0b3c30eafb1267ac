"""subscriber addresses unique regardless of letter case; recipients of a region in id order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 11:30:00

Addresses keep their local part as written but compare case-insensitively; a unique index on
lower(email) makes "Ann@x.org" and "ann@x.org" one subscriber and makes the lookup an index seek.
An index on subscriptions (region, subscriber_id) lets a sender page through a region's
recipients by id (keyset) without sorting the whole list for every page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ux_subscribers_email_lower", "subscribers", [sa.text("lower(email)")], unique=True
    )
    op.create_index(
        "ix_subscriptions_region_subscriber", "subscriptions", ["region", "subscriber_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_region_subscriber", table_name="subscriptions")
    op.drop_index("ux_subscribers_email_lower", table_name="subscribers")
