"""The signing key and the SQLite database are created 0600 at once, whatever the umask."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.db import make_engine
from publisher.private_files import read_or_create_secret
from publisher.settings import Settings


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secret_key_is_created_private(tmp_path: Path, permissive_umask: None) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path / "var")  # type: ignore[call-arg]
    key = settings.with_local_secret().secret_key
    path = tmp_path / "var" / "secret_key"
    assert mode(path) == 0o600
    assert len(key) >= 40 and path.read_text() == key
    assert settings.with_local_secret().secret_key == key  # created once, then read
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no leftovers


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    keys: list[str] = []
    go = threading.Barrier(8)

    def read() -> None:
        go.wait()
        keys.append(read_or_create_secret(path))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0]


def test_the_sqlite_database_and_its_wal_are_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "data" / "publisher.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        made = list(path.parent.iterdir())
        assert {p.name for p in made} >= {"publisher.db", "publisher.db-wal"}
        assert {p.name: mode(p) for p in made} == {p.name: 0o600 for p in made}
    engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "publisher.db"
    path.touch()
    path.chmod(0o640)
    make_engine(f"sqlite:///{path}").dispose()
    assert mode(path) == 0o640
