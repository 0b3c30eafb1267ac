"""languages: items.lang, digests.locale, deliveries.locale and digest_renditions

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-30 23:00:00

An item keeps the language it is written in; a digest row holds its first rendering and
digest_renditions the others (one per language that has readers); each ledger row fixes the
language of its message when it is queued. Existing rows are English, as they were sent.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0009"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("lang", sa.String(length=16), nullable=False, server_default=""))
    with op.batch_alter_table("digests") as batch:
        batch.add_column(
            sa.Column("locale", sa.String(length=16), nullable=False, server_default="en")
        )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("locale", sa.String(length=16), nullable=False, server_default="en")
        )
    op.create_table(
        "digest_renditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created", publisher.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["digest_id"], ["digests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest_id", "locale", name="uq_digest_rendition_locale"),
    )
    op.create_index(
        "ix_digest_renditions_digest_id", "digest_renditions", ["digest_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_digest_renditions_digest_id", table_name="digest_renditions")
    op.drop_table("digest_renditions")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("locale")
    with op.batch_alter_table("digests") as batch:
        batch.drop_column("locale")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("lang")
