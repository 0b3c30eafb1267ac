"""The migrations against the models, on SQLite and PostgreSQL: at head they describe the same
schema (what `alembic check` would say), and 0020 drops digest_runs and gives it back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import publisher.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from publisher.db import alembic_config, make_engine
from tests.conftest import FIXED_NOW

NAIVE = FIXED_NOW.replace(tzinfo=None)
# Indexes 0019 writes in SQL on PostgreSQL only (text_pattern_ops, pg_trgm): no model has them.
RAW_SQL_INDEXES = {"ix_subscribers_email_pattern", "ix_subscribers_email_trigram"}


# SQLite cannot reflect the lower(email) expression indexes; Alembic says so and skips them.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_the_models_match_the_migrations_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    left = [d for d in diff if not (d[0] == "remove_index" and d[1].name in RAW_SQL_INDEXES)]
    assert left == []
    assert "digest_runs" not in SQLModel.metadata.tables


def test_0020_drops_digest_runs_and_downgrade_recreates_it(database_url: str) -> None:
    engine = make_engine(database_url)
    row = sa.text(
        "INSERT INTO digest_runs (region, week, fire_time, started, finished, runner, status,"
        " queued) VALUES ('gt', '2026-W48', :t, :t, NULL, 'r', 'done', 3)"
    )
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0019")
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO regions (slug, m49, level, name_en, name_es)"
                " VALUES ('gt', '320', 'country', 'Guatemala', 'Guatemala')"))  # fmt: skip
            conn.execute(row, {"t": NAIVE})
        command.upgrade(config, "0020")
        assert "digest_runs" not in sa.inspect(engine).get_table_names()
        command.downgrade(config, "0019")
        inspector = sa.inspect(engine)
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns("digest_runs")}
        assert columns == {
            "region": False, "week": False, "fire_time": False, "started": False,
            "finished": True, "runner": False, "status": False, "queued": False,
        }  # fmt: skip
        assert inspector.get_pk_constraint("digest_runs")["constrained_columns"] == [
            "region", "week",
        ]  # fmt: skip
        (key,) = inspector.get_foreign_keys("digest_runs")
        assert (key["referred_table"], key["constrained_columns"]) == ("regions", ["region"])
        with engine.begin() as conn:  # empty again, and it takes rows as before
            assert conn.execute(sa.text("SELECT count(*) FROM digest_runs")).scalar_one() == 0
            conn.execute(row, {"t": NAIVE})
        command.upgrade(config, "head")
        assert "digest_runs" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_0022_drops_the_redundant_ledger_indexes_and_downgrade_restores_them(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    redundant = {"ix_deliveries_digest_id", "ix_deliveries_subscriber_id"}

    def indexes() -> set[str]:
        return {i["name"] for i in sa.inspect(engine).get_indexes("deliveries") if i["name"]}

    try:
        config = alembic_config(engine)
        command.upgrade(config, "0021")
        assert redundant <= indexes()
        command.upgrade(config, "0022")
        assert not redundant & indexes()
        assert "ix_deliveries_state_due" in indexes()
        command.downgrade(config, "0021")
        assert redundant <= indexes()
    finally:
        engine.dispose()


def test_0023_compresses_bodies_with_lz4_on_postgresql_and_downgrade_restores_the_default(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    query = sa.text(
        "SELECT attrelid::regclass::text || '.' || attname, attcompression FROM pg_attribute"
        " WHERE attrelid IN ('digests'::regclass, 'digest_renditions'::regclass)"
        " AND attname IN ('html', 'text')"
    )

    def methods() -> dict[str, str]:
        with engine.connect() as conn:
            return {str(name): str(method) for name, method in conn.execute(query)}

    try:
        config = alembic_config(engine)
        command.upgrade(config, "0023")
        if engine.dialect.name != "postgresql":
            return  # nothing to set: the migration runs and changes nothing
        with engine.connect() as conn:
            lz4 = conn.execute(sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings"
                " WHERE name = 'default_toast_compression'"
            )).scalar()  # fmt: skip
        if not lz4:
            pytest.skip("this PostgreSQL was built without LZ4: the migration leaves pglz")
        assert set(methods().values()) == {"l"}  # pg_attribute: l = lz4
        body = "".join(f"<p>item {n}: news of the week</p>\n" for n in range(400))
        with engine.begin() as conn:  # a body the server compresses reads back whole
            conn.execute(sa.text(
                "INSERT INTO regions (slug, m49, level, name_en, name_es) VALUES"
                " ('zz-lz4', '999', 'country', 'LZ4', 'LZ4')"
            ))  # fmt: skip
            conn.execute(sa.text(
                "INSERT INTO digests (region, week, status, window_start, window_end, item_ids,"
                " subject, html, text, created, locale, regions) VALUES ('zz-lz4', '2026-W49',"
                " 'assembled', :t, :t, '[]', 's', :body, :body, :t, 'en', 'zz-lz4')"
            ), {"t": NAIVE, "body": body})  # fmt: skip
            stored, method = conn.execute(sa.text(
                "SELECT html, pg_column_compression(html) FROM digests WHERE region = 'zz-lz4'"
            )).one()  # fmt: skip
            assert (stored, method) == (body, "lz4")
            conn.execute(sa.text("DELETE FROM digests WHERE region = 'zz-lz4'"))
            conn.execute(sa.text("DELETE FROM regions WHERE slug = 'zz-lz4'"))
        command.downgrade(config, "0022")
        assert set(methods().values()) == {""}  # the server's default again
    finally:
        engine.dispose()
