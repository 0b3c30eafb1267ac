"""digests, digest_renditions: compress bodies with LZ4 on PostgreSQL

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 11:40:00

An edition body is about 2 KB, just over the size at which PostgreSQL compresses a row's
largest values before storing it, so a fire of thousands of region sets compresses every body
it writes; pglz (the default) costs several times what LZ4 does. Only values written from now
on use LZ4; older ones read back as before. A server built without LZ4 (or older than
PostgreSQL 14) keeps pglz; SQLite has no such setting.
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_COLUMNS = (("digests", "html"), ("digests", "text"), ("digest_renditions", "html"),
            ("digest_renditions", "text"))  # fmt: skip

# feature_not_supported: "compression method lz4 not supported" (built without LZ4)
_SET = """
DO $$ BEGIN
    ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};
EXCEPTION WHEN feature_not_supported THEN NULL;
END $$
"""


def _compress(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or (bind.dialect.server_version_info or (0,)) < (14,):
        return
    for table, column in _COLUMNS:
        op.execute(_SET.format(table=table, column=column, method=method))


def upgrade() -> None:
    _compress("lz4")


def downgrade() -> None:
    _compress("default")
