"""Sources (polled upstream feeds) and the items they brought in: the queries polling needs."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.errors import InputError
from publisher.models import Item, Source

_CHUNK = 2_000
# A unique key taken by a concurrent writer: bulk inserts run on the DB-API cursor, so the
# drivers' own errors arrive unwrapped.
DUPLICATE = (sa.exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)


def add_source(
    session: Session, *, url: str, regions: Sequence[str], every: int, lang: str, now: datetime
) -> Source:
    """A new source, due at once; InputError when the URL is already a source."""
    if session.exec(select(Source.id).where(Source.url == url)).first() is not None:
        raise InputError(f"{url} is already a source")
    source = Source(
        url=url, regions=" ".join(regions), every=every, lang=lang, next_poll=now, created=now
    )
    session.add(source)
    session.flush()
    return source


def list_sources(session: Session) -> list[Source]:
    """Every source by id."""
    return list(session.exec(select(Source).order_by(col(Source.id))))


def get_source(session: Session, *, source_id: int) -> Source | None:
    return session.get(Source, source_id)


def remove_source(session: Session, *, source_id: int) -> bool:
    """Forget a source (its items stay, still marked with its id); False when there was none."""
    source = session.get(Source, source_id)
    if source is None:
        return False
    session.delete(source)
    return True


def due_sources(session: Session, *, now: datetime) -> list[Source]:
    """Sources not paused whose next poll time has come, oldest due first."""
    stmt = (
        select(Source)
        .where(col(Source.paused).is_(False), col(Source.next_poll) <= now)
        .order_by(col(Source.next_poll), col(Source.id))
    )
    return list(session.exec(stmt))


def active_sources(session: Session) -> list[Source]:
    """Every source that is not paused (``sources poll`` without --id)."""
    stmt = select(Source).where(col(Source.paused).is_(False)).order_by(col(Source.id))
    return list(session.exec(stmt))


def save_source(session: Session, *, source_id: int, values: dict[str, Any]) -> None:
    """Write a poll's outcome to its source row (the row may have been removed meanwhile)."""
    if "url" in values:
        taken = session.exec(
            select(Source.id).where(Source.url == values["url"], Source.id != source_id)
        ).first()
        if taken is not None:  # another source already polls the new address: keep ours
            values = {k: v for k, v in values.items() if k != "url"}
    table = Source.__table__  # type: ignore[attr-defined]
    session.execute(sa.update(table).where(table.c.id == source_id).values(**values))


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """What an item from a source holds that an edited entry may change."""

    id: int
    title: str
    summary: str
    link: str | None
    image_url: str | None
    image_alt: str


def entries_by_guid(session: Session, *, guids: Collection[str]) -> dict[str, StoredEntry]:
    """The stored items among ``guids``, by guid."""
    table = Item.__table__  # type: ignore[attr-defined]
    wanted = list(guids)
    found: dict[str, StoredEntry] = {}
    for i in range(0, len(wanted), _CHUNK):
        stmt = sa.select(
            table.c.guid, table.c.id, table.c.title, table.c.summary, table.c.link,
            table.c.image_url, table.c.image_alt,
        ).where(table.c.guid.in_(wanted[i : i + _CHUNK]))  # fmt: skip
        for guid, *rest in session.execute(stmt):
            found[guid] = StoredEntry(*rest)
    return found


def update_entries(
    session: Session, *, changes: Sequence[tuple[int, dict[str, Any]]], now: datetime
) -> None:
    """Apply edited entries to their items; ``updated`` moves so feeds show the change."""
    table = Item.__table__  # type: ignore[attr-defined]
    for item_id, values in changes:
        session.execute(sa.update(table).where(table.c.id == item_id).values(**values, updated=now))


def page_sources(session: Session, *, after_id: int = 0, limit: int = 100) -> list[Source]:
    """Up to ``limit`` sources with ids above ``after_id`` (the console's keyset pages)."""
    stmt = select(Source).where(col(Source.id) > after_id).order_by(col(Source.id)).limit(limit)
    return list(session.exec(stmt))


def set_paused(session: Session, *, source_id: int, paused: bool, now: datetime) -> bool:
    """Pause or resume a source (a resumed one is due at once); False when there is none."""
    source = session.get(Source, source_id)
    if source is None:
        return False
    source.paused = paused
    if not paused:
        source.next_poll = now
    session.add(source)
    session.flush()
    return True


def health(session: Session) -> dict[str, int]:
    """Sources in total, paused, and failing (their last poll or polls failed)."""
    s = Source.__table__  # type: ignore[attr-defined]
    total, paused, failing = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(s.c.paused.is_(True)),
            sa.func.count().filter(s.c.failures > 0),
        )
    ).one()
    return {"total": int(total), "paused": int(paused), "failing": int(failing)}
