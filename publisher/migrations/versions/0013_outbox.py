"""outbox: durable transactional mail; suppressions remember when they were last mailed

Revision ID: 0013
Revises: 0005
Create Date: 2026-11-30 23:50:00

The outbox holds confirmation emails from the signup's own transaction until the deliverer has
an answer from the SMTP server. suppressions.last_mail caps an unsubscribed address at one
confirmation a day. Subscribers already unsubscribed or bounced get their suppression entry.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import publisher.models
from publisher.addresses import suppression_hash

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("next_attempt", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("first_attempt", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("sent_at", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_state_due", "outbox", ["state", "next_attempt"])
    op.create_index("ix_outbox_subscriber_id", "outbox", ["subscriber_id"])
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("last_mail", publisher.models.UTCDateTime(), nullable=True))
    _backfill()


def _backfill() -> None:
    """Suppression entries for subscribers who left before the list covered them."""
    bind = op.get_bind()
    gone = bind.execute(
        sa.text("SELECT email, status FROM subscribers WHERE status IN ('unsubscribed', 'bounced')")
    ).all()
    have = {h for (h,) in bind.execute(sa.text("SELECT email_hash FROM suppressions"))}
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for email, status in gone:
        digest = suppression_hash(str(email))
        if digest not in have:
            have.add(digest)
            reason = "hard_bounce" if status == "bounced" else "unsubscribed"
            rows.append({"h": digest, "r": reason, "c": now})
    if rows:
        bind.execute(
            sa.text("INSERT INTO suppressions (email_hash, reason, created) VALUES (:h, :r, :c)"),
            rows,
        )


def downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("last_mail")
    op.drop_index("ix_outbox_subscriber_id", table_name="outbox")
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.drop_table("outbox")
