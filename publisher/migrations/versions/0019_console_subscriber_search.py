"""console search: a pattern index on lower(email) (PostgreSQL) and suppressions by time

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-01 02:00:00

The admins' subscriber search matches address prefixes with a left-anchored LIKE. PostgreSQL
uses an index for that only when the index compares bytes: the unique lower(email) index of 0002
follows the database collation (en_US.utf8 in the postgres image), so this adds the same
expression with text_pattern_ops. SQLite's unique index already serves a range in BINARY order,
so nothing is added there. The suppression list is shown newest first, a keyset over
(created, email_hash).
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_subscribers_email_pattern "
            "ON subscribers (lower(email) text_pattern_ops)"
        )
    op.create_index("ix_suppressions_created", "suppressions", ["created", "email_hash"])


def downgrade() -> None:
    op.drop_index("ix_suppressions_created", table_name="suppressions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_subscribers_email_pattern")
