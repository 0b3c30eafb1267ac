"""Engines, sessions and migrations: the one place that knows which database is behind the store.

SQLite gets WAL, foreign keys and a busy timeout so a web process and a sender can share
the file; PostgreSQL gets a pool. Migrations run through Alembic from package data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine, make_url
from sqlmodel import Session

from publisher.errors import ConfigError, StoreError
from publisher.private_files import create_private


def normalise_url(database_url: str) -> URL:
    """Parse DATABASE_URL, steering plain postgresql:// to psycopg 3."""
    try:
        url = make_url(database_url)
    except sa.exc.ArgumentError as e:
        raise ConfigError(f"PUBLISHER_DATABASE_URL is not a database URL: {database_url!r}") from e
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(database_url: str, *, echo: bool = False) -> Engine:
    """Create an engine for DATABASE_URL, making the SQLite file's folder when needed."""
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            create_private(Path(url.database))  # SQLite gives -wal and -shm the same mode
        engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def is_postgres(engine: Engine) -> bool:
    """Whether row locks with SKIP LOCKED and advisory locks are available."""
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    try:
        command.upgrade(alembic_config(engine), "head")
    except sa.exc.OperationalError as e:
        raise StoreError(f"cannot migrate the database ({e.orig}); is it reachable?") from e
