"""Shared fixtures: real databases (a SQLite file and a fresh PostgreSQL database) and runtimes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from publisher.runtime import Runtime
from publisher.settings import Settings

PG_ADMIN = os.environ.get("PUBLISHER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SEED = Path(__file__).resolve().parents[1] / "publisher" / "data" / "demo-items.txt"
FIXED_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_ok() -> bool:
    ok = _pg_available()
    if not ok and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}; .ci/run must start it")
    return ok


@pytest.fixture
def pg_url(pg_ok: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not pg_ok:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}")
    name = f"pubtest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'publisher.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'publisher.db'}",
            "feeds_dir": tmp_path / "feeds",
            "var_dir": tmp_path / "var",
            "secret_key": "test-secret",
            "admin_token": "test-token",
            "base_url": "https://news.example.org",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


class FixedClockRuntime(Runtime):
    """A Runtime whose clock is set by the test."""

    fixed_now: datetime = FIXED_NOW

    def now(self) -> datetime:
        return self.fixed_now


@pytest.fixture
def runtime(database_url: str, make_settings: Callable[..., Settings]) -> Iterator[Runtime]:
    """A migrated runtime on the parametrised database, clock fixed at FIXED_NOW."""
    rt = FixedClockRuntime(make_settings(database_url=database_url))
    rt.migrate()
    yield rt
    rt.close()
