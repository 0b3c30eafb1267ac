"""`publisher users ...` as an operator runs it (a subprocess; password on stdin), and the
migration of the console tables both ways on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from publisher.db import alembic_config, make_engine
from publisher.pipeline import accounts
from publisher.store import audit
from publisher.store.users import get_user_by_email
from tests.conftest import FixedClockRuntime


def run(tmp: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PUBLISHER_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'publisher.db'}",
        "PUBLISHER_FEEDS_DIR": str(tmp / "feeds"),
        "PUBLISHER_VAR_DIR": str(tmp / "var"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "publisher", *args],
        cwd=tmp, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("publisher: ")
    return line


def test_users_add_list_password_remove(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    added = run(
        tmp_path, "users", "add", "Ana@Example.org", "--role", "admin", stdin="first-password-1\n"
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added admin Ana@example.org"
    run(
        tmp_path,
        "users",
        "add",
        "ed@example.org",
        "--role",
        "editor",
        stdin="editor-pass-123\r\nignored\n",
    )

    listed = run(tmp_path, "users", "list")
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [
        ("Ana@example.org", "admin"),
        ("ed@example.org", "editor"),
    ]

    db = f"sqlite:///{tmp_path / 'var' / 'publisher.db'}"
    engine = make_engine(db)
    try:
        from sqlmodel import Session

        with Session(engine) as session:
            assert accounts.authenticate(
                session, email="ed@example.org", password="editor-pass-123"
            )
            user = get_user_by_email(session, email="ANA@example.org")
            assert user is not None and user.password_hash.startswith("$argon2id$v=19$m=65536,t=3")
    finally:
        engine.dispose()

    assert (
        run(
            tmp_path, "users", "password", "ana@example.org", stdin="second-password-2\n"
        ).returncode
        == 0
    )
    assert run(tmp_path, "users", "remove", "ED@example.org").returncode == 0
    assert [r.split("\t")[0] for r in run(tmp_path, "users", "list").stdout.splitlines()] == [
        "Ana@example.org"
    ]
    engine = make_engine(db)
    try:
        from sqlmodel import Session

        with Session(engine) as session:
            assert accounts.authenticate(
                session, email="ana@example.org", password="second-password-2"
            )
            actions = [(e.action, e.target) for e in audit.page(session)]
    finally:
        engine.dispose()
    assert actions == [
        ("user-remove", "ed@example.org"),
        ("password", "Ana@example.org"),
        ("user-add", "ed@example.org"),
        ("user-add", "Ana@example.org"),
    ]


def test_users_errors_are_one_line(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    ok = "a-good-password"
    cases = [
        (("users", "add", "x@example.org", "--role", "root"), ok, "role must be editor or admin"),
        (
            ("users", "add", "x@example.org", "--role", "editor"),
            "short\n",
            "at least 12 characters",
        ),
        (("users", "add", "x@example.org", "--role", "editor"), "", "no password"),
        (("users", "add", "x@example.org", "--role", "editor"), "p" * 2000 + "\n", "at most 1024"),
        (("users", "add", "x'; DROP TABLE users;--", "--role", "editor"), ok, "not a valid email"),
        (
            ("users", "add", "a@example.org\r\nBcc: b@example.org", "--role", "editor"),
            ok,
            "line break",
        ),
        (("users", "remove", "nobody@example.org"), "", "no account for nobody@example.org"),
        (("users", "password", "nobody@example.org"), ok, "no account for nobody@example.org"),
    ]
    for args, stdin, reason in cases:
        line = one_line_error(run(tmp_path, *args, stdin=stdin))
        assert reason in line, (args, line)
    assert (
        run(tmp_path, "users", "add", "x@example.org", "--role", "editor", stdin=ok).returncode == 0
    )
    dup = one_line_error(
        run(tmp_path, "users", "add", "X@EXAMPLE.org", "--role", "admin", stdin=ok)
    )
    assert "already has an account" in dup
    assert run(tmp_path, "users", "add", "x@example.org").returncode == 2  # usage: --role missing


def test_console_tables_migrate_both_ways(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "head")
        assert {"users", "admin_sessions", "audit_log"} <= set(sa.inspect(engine).get_table_names())
        command.downgrade(config, "0013")
        assert not {"users", "admin_sessions", "audit_log"} & set(
            sa.inspect(engine).get_table_names()
        )
        command.upgrade(config, "head")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO users (email, role, password_hash, created, password_changed)"
                    " VALUES ('A@x.org', 'admin', 'h', '2026-01-01', '2026-01-01')"
                )
            )
        with (
            pytest.raises(sa.exc.IntegrityError),
            engine.begin() as conn,
        ):  # one account per address
            conn.execute(
                sa.text(
                    "INSERT INTO users (email, role, password_hash, created, password_changed)"
                    " VALUES ('a@X.org', 'editor', 'h', '2026-01-01', '2026-01-01')"
                )
            )
    finally:
        engine.dispose()


def test_removing_a_user_ends_its_sessions(runtime: FixedClockRuntime) -> None:
    with runtime.session() as session:
        user = accounts.add_user(
            session, email="a@example.org", role="editor", password="a-good-password",
            actor="test", now=runtime.now(),
        )  # fmt: skip
        new = accounts.log_in(session, user=user, now=runtime.now(), hours=12)
    with runtime.session() as session:
        assert accounts.current(session, token=new.token, now=runtime.now()) is not None
        accounts.remove_user(session, email="A@example.org", actor="test", now=runtime.now())
    with runtime.session() as session:
        assert accounts.current(session, token=new.token, now=runtime.now()) is None
