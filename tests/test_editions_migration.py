"""Migration 0015 on SQLite and PostgreSQL: legacy digests and ledger rows survive both ways."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from publisher.db import alembic_config, make_engine
from tests.conftest import FIXED_NOW

NAIVE = FIXED_NOW.replace(tzinfo=None)


def test_legacy_rows_survive_upgrade_and_downgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0013")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO regions (slug, m49, level, name_en, name_es)"
                " VALUES ('gt', '320', 'country', 'Guatemala', 'Guatemala')"))  # fmt: skip
            conn.execute(sa.text(
                "INSERT INTO digests (id, region, week, status, window_start, window_end, item_ids,"
                " subject, html, text, created, locale) VALUES (1, 'gt', '2026-W40', 'assembled',"
                " :t, :t, '[]', 's', '', '', :t, 'en')"), {"t": NAIVE})  # fmt: skip
            for sid in (1, 2):
                conn.execute(sa.text(
                    "INSERT INTO deliveries (digest_id, subscriber_id, state, attempts,"
                    " last_error, message_id, locale) VALUES (1, :s, 'sent', 1, '', '', 'en')"
                ), {"s": sid})  # fmt: skip
        command.upgrade(config, "0015")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT regions FROM digests")).scalar_one() == "gt"
            weeks = conn.execute(sa.text("SELECT week FROM deliveries")).scalars().all()
            assert weeks == [None, None]  # legacy rows: NULLs are distinct, both stay
            # The new key: one ledger row per (subscriber, week)
            conn.execute(sa.text("UPDATE deliveries SET week = '2026-W40' WHERE subscriber_id = 1"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO digests (region, regions, week, status, window_start, window_end,"
                " item_ids, subject, html, text, created, locale) VALUES ('gt', 'gt', '2026-W40',"
                " 'assembled', :t, :t, '[]', 's', '', '', :t, 'en')"),
                {"t": NAIVE})  # fmt: skip
        command.downgrade(config, "0013")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar_one() == 2
            assert conn.execute(sa.text("SELECT region FROM digests")).scalar_one() == "gt"
        command.upgrade(config, "head")
    finally:
        engine.dispose()
