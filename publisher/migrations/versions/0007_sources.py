"""sources: upstream feeds polled on a schedule; items remember their source, entry and image

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 23:00:00

``sources`` holds each polled feed with its HTTP validators (ETag, Last-Modified), the hash of
the last body taken in (for servers without validators), backoff and last result. Items gain
``source_id`` and ``entry_id`` (which source entry they came from; the item's guid encodes the
same identity, so the unique guid makes "once per entry" hold) and an optional image
(``image_url``, ``image_alt``). Existing rows get no image and no source.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0007"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("regions", sa.String(length=2000), nullable=False),
        sa.Column("every", sa.Integer(), nullable=False),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(length=1000), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_poll", publisher.models.UTCDateTime(), nullable=False),
        sa.Column("last_polled", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("last_ok", publisher.models.UTCDateTime(), nullable=True),
        sa.Column("last_result", sa.String(length=200), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=False),
        sa.Column("created", publisher.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_index("ix_sources_next_poll", "sources", ["next_poll"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("image_url", sa.String(length=2000), nullable=True))
        batch.add_column(
            sa.Column("image_alt", sa.String(length=300), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("entry_id", sa.String(length=2000), nullable=True))
        batch.create_index("ix_items_source_id", ["source_id"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_source_id")
        batch.drop_column("entry_id")
        batch.drop_column("source_id")
        batch.drop_column("image_alt")
        batch.drop_column("image_url")
    op.drop_index("ix_sources_next_poll", table_name="sources")
    op.drop_table("sources")
