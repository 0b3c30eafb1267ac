"""Alembic environment: runs against the engine handed over by publisher.db.upgrade."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import publisher.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Migrate with the engine given in config.attributes, or one built from sqlalchemy.url."""
    engine = config.attributes.get("engine")
    if engine is None:
        from publisher.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
