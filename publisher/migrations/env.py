"""Alembic environment: runs against the engine handed over by publisher.db.upgrade."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import publisher.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _driver(connection: Connection) -> Any:
    """The DB-API connection itself: statements on it open no SQLAlchemy transaction."""
    return connection.connection.dbapi_connection


def run_migrations_online() -> None:
    """Migrate with the engine given in config.attributes, or one built from sqlalchemy.url."""
    engine = config.attributes.get("engine")
    if engine is None:
        from publisher.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, drop, rename) that other tables point at; with
            # foreign keys on, dropping it fails once rows exist. SQLite ignores this pragma
            # inside a transaction, so it is set before; the keys are checked before commit.
            _driver(connection).execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise RuntimeError(f"a migration left a dangling foreign key: {broken}")
        finally:
            if sqlite:
                _driver(connection).execute("PRAGMA foreign_keys=ON")


run_migrations_online()
