"""Exactly one active scheduler: a PostgreSQL advisory lock, or a file lock on SQLite.

APScheduler's job store must never be shared by two running schedulers (both would run every
job), so a scheduler first takes a lock that the database or the kernel releases by itself
when its holder dies:

- PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection (no pool: closing it really
  ends the session). The lock lives as long as that session; ``held`` checks the connection
  with a round trip, so a leader cut off from the database steps down within seconds.
- SQLite: ``flock`` on a file beside the database file ({database}.scheduler-lock); one
  machine, so the kernel is the arbiter, and every process using that file finds the same lock
  whatever its VAR_DIR.

The others wait as standby and retry every couple of seconds (``publisher.service.scheduler``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from publisher.db import is_postgres
from publisher.runtime import Runtime

# One 64-bit key per database (advisory locks are scoped to the current database).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"publisher.scheduler").digest()[:8], "big", signed=True)
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3, "connect_timeout": 5}  # fmt: skip


class LeaderLock(Protocol):
    """A lock at most one process holds; released by the system when its holder dies."""

    description: str

    def acquire(self) -> bool:
        """Take the lock without waiting; whether this process holds it now."""
        ...

    def held(self) -> bool:
        """Whether the lock is still ours (False once the connection behind it is gone)."""
        ...

    def release(self) -> None: ...


class AdvisoryLock:
    """``pg_try_advisory_lock`` held by a session of its own."""

    def __init__(self, engine: Engine, key: int = LOCK_KEY) -> None:
        self.key = key
        self._engine = sa.create_engine(engine.url, poolclass=NullPool, connect_args=_KEEPALIVE)
        self._conn: Connection | None = None
        self._held = False
        self.description = (
            f"advisory lock {key} on {engine.url.render_as_string(hide_password=True)}"
        )

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def acquire(self) -> bool:
        if self._held:
            return self.held()
        try:
            got = (
                self._connection()
                .execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
                .scalar()
            )
        except sa.exc.SQLAlchemyError:
            self._close()
            return False
        self._held = bool(got)
        return self._held

    def held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            self._close()
            return False
        return True

    def release(self) -> None:
        if self._held and self._conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        self._close()

    def _close(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def dispose(self) -> None:
        self.release()
        self._engine.dispose()


class FileLock:
    """An exclusive ``flock`` on a file (SQLite: every process is on this machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.description = f"file lock {path}"

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()

    def dispose(self) -> None:
        self.release()


def leader_lock(rt: Runtime) -> AdvisoryLock | FileLock:
    """The lock that elects the scheduler for this database."""
    if is_postgres(rt.engine):
        return AdvisoryLock(rt.engine)
    return FileLock(lock_path(rt))


def lock_path(rt: Runtime) -> Path:
    """The SQLite lock file: beside the database file, so it is found through the database."""
    database = rt.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return rt.settings.var_dir / "scheduler.lock"  # a private database: nobody to share with
    path = Path(database).resolve()
    return path.with_name(f"{path.name}.scheduler-lock")
