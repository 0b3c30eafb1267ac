"""Bulk inserts through the DB-API cursor, for the paths that write a hundred thousand rows.

SQLAlchemy's per-row parameter processing costs more than SQLite's own insert; these rows are
already clean and typed, so they go straight to executemany in the driver's parameter style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session


def time_converter(session: Session) -> Callable[[datetime], Any]:
    """A function storing tz-aware times as models.UTCDateTime would on this session's backend.

    On SQLite that is SQLAlchemy's text form, "YYYY-MM-DD HH:MM:SS.ffffff", always with microseconds
    so that times compare correctly as strings.
    """
    sqlite = session.get_bind().dialect.name == "sqlite"

    def convert(moment: datetime) -> Any:
        naive = (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if sqlite else naive

    return convert


def bulk_insert(
    session: Session, *, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT many rows in one executemany on the session's own connection and transaction."""
    if not rows:
        return
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (names are ours, not input)
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    dbapi_conn = session.connection().connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _cursor_rows(session: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    dbapi_conn = session.connection().connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def present(
    session: Session, *, table: str, column: str, values: Sequence[Any], chunk: int = 900
) -> set[Any]:
    """Which of ``values`` already stand in ``table.column`` (an indexed column)."""
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    found: set[Any] = set()
    for i in range(0, len(values), chunk):
        part = values[i : i + chunk]
        sql = f"SELECT {column} FROM {table} WHERE {column} IN ({', '.join([mark] * len(part))})"  # noqa: S608
        found.update(row[0] for row in _cursor_rows(session, sql, part))
    return found


def pairs_after(
    session: Session, *, table: str, key: str, value: str, after: int
) -> dict[Any, int]:
    """``{row.key: row.value}`` for rows whose integer ``value`` column is above ``after``."""
    mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT {key}, {value} FROM {table} WHERE {value} > {mark}"  # noqa: S608
    return dict(_cursor_rows(session, sql, [after]))
