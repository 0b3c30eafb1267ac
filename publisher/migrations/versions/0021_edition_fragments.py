"""edition_fragments: items rendered once per language, shared by frozen digest bodies

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 10:30:00

A frozen digest body (digests.html/text, digest_renditions.html/text) used to hold every item's
rendering in full: a fire of ten thousand region sets wrote the same items ten thousand times
(300 MB) and the sender read them all back. Bodies written from now on name each item's
fragment by a marker holding the digest's random key and the fragment's hash; the fragment
is stored here once. Bodies written before hold no marker and are read as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import publisher.models

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "edition_fragments",
        sa.Column("sha", sa.String(length=64), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created", publisher.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha"),
    )


def downgrade() -> None:
    op.drop_table("edition_fragments")
