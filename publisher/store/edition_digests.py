"""A fire's frozen digests and renditions written a page at a time, with Core statements.

Thousands of region sets mean thousands of digests per fire; one ORM insert and flush (in a
savepoint) per digest cost more than rendering it. Here a page of groups is inserted in one
statement with ON CONFLICT DO NOTHING, read back in one query (another process may have made
some first: theirs are kept and used). The bodies need the ids (the web copy's link holds
it): on PostgreSQL the ids are reserved first and each page goes in whole, as one JSON document;
on SQLite the rows go in empty and their bodies follow in one executemany.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from publisher.models import Digest, DigestRendition, Edition
from publisher.store.deliveries import _insert as dialect_insert
from publisher.store.sql import (
    IdRuns,
    among,
    batched,
    is_postgres,
    one_of,
    parts,
    tuple_of,
)

_D: sa.Table = Digest.__table__  # type: ignore[attr-defined]
_R: sa.Table = DigestRendition.__table__  # type: ignore[attr-defined]
_E: sa.Table = Edition.__table__  # type: ignore[attr-defined]
_CHUNK = 500

DigestKey = tuple[str, str, datetime, datetime]  # regions, week, window_start, cutoff


@dataclass(frozen=True, slots=True)
class StoredDigest:
    """What a fire needs of a frozen digest: its id, language, markers and creation time."""

    id: int
    locale: str
    placeholder_key: str | None
    created: datetime


def add_digests(session: Session, rows: Sequence[dict[str, Any]]) -> dict[DigestKey, StoredDigest]:
    """Insert digest rows; one whose (regions, week, window) another process made is skipped.

    Returns the rows inserted, by key (RETURNING), so only the skipped ones need looking up:
    reading ten thousand keys back as row values cost more than rendering their editions.
    """
    cols = (_D.c.regions, _D.c.week, _D.c.window_start, _D.c.window_end)
    stmt = (
        dialect_insert(session)(_D)
        .on_conflict_do_nothing()
        .returning(*cols, _D.c.id, _D.c.locale, _D.c.placeholder_key, _D.c.created)
    )
    made: dict[DigestKey, StoredDigest] = {}
    for part in batched(rows, _CHUNK):
        if is_postgres(session):
            found = session.execute(_from_json(stmt, part, session.get_bind().dialect))
        else:
            found = session.execute(stmt, list(part))
        for regions, week, start, end, id_, locale, key, created in found:
            made[(regions, week, start, end)] = StoredDigest(id_, locale, key, created)
    return made


def _from_json(insert: Any, rows: Sequence[dict[str, Any]], dialect: sa.Dialect) -> Any:
    """``insert`` of ``rows`` as one JSON document (PostgreSQL): rows as VALUES bind fourteen
    parameters each and psycopg parses that statement's text anew every time, and arrays of
    HTML bodies cost it a Python call per quote to escape; ``json.dumps`` and the server's
    ``json_to_recordset`` do it all in C. Each value is first bound as its column's type
    would bind it (UTCDateTime: naive UTC, a naive one refused), timestamps in ISO form."""
    names = list(rows[0])
    binds = [(n, p) for n in names if (p := _D.c[n].type.bind_processor(dialect)) is not None]
    documents = []
    for row in rows:
        plain = {n: row[n] for n in names}
        for name, bind in binds:
            value = bind(plain[name])
            plain[name] = value.isoformat() if isinstance(value, datetime) else value
        documents.append(plain)
    payload = json.dumps(documents, ensure_ascii=False)
    columns = [sa.column(n, _D.c[n].type) for n in names]
    found = (
        sa.func.json_to_recordset(sa.cast(sa.bindparam(None, payload, sa.Text), postgresql.JSON))
        .table_valued(*columns)
        .render_derived(with_types=True)
    )
    return insert.from_select(names, sa.select(*(found.c[n] for n in names)))


def reserve_digest_ids(session: Session, count: int) -> list[int] | None:
    """``count`` ids for new digests, taken from PostgreSQL's sequence before the rows exist, so
    a fire renders each body (its web link holds the id) and writes the row once, instead of
    inserting it empty and updating it: ten thousand updates of 3 KB bodies, each a new row
    version. None on SQLite, whose ids are only known once a row is in (an id taken there by
    hand could be taken by another process first)."""
    if not is_postgres(session) or count <= 0:
        return None
    sequence = sa.func.pg_get_serial_sequence(_D.name, "id")
    stmt = sa.select(sa.func.nextval(sequence)).select_from(sa.func.generate_series(1, count))
    return [int(i) for i in session.execute(stmt).scalars()]


def find_digests(session: Session, keys: Collection[DigestKey]) -> dict[DigestKey, StoredDigest]:
    """The frozen digests of ``keys``, by key (absent: none)."""
    found: dict[DigestKey, StoredDigest] = {}
    cols = (_D.c.regions, _D.c.week, _D.c.window_start, _D.c.window_end)
    for part in parts(session, sorted(keys), _CHUNK):
        stmt = sa.select(*cols, _D.c.id, _D.c.locale, _D.c.placeholder_key, _D.c.created).where(
            tuple_of(session, cols, part)
        )
        for regions, week, start, end, id_, locale, key, created in session.execute(stmt):
            # aware datetimes compare and hash as instants, whatever their zone
            found[(regions, week, start, end)] = StoredDigest(id_, locale, key, created)
    return found


def set_bodies(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write the rendered subject, HTML and text of digests this fire made (``id`` each)."""
    stmt = (
        sa.update(_D)
        .where(_D.c.id == sa.bindparam("b_id"))
        .values(
            subject=sa.bindparam("b_subject"),
            html=sa.bindparam("b_html"),
            text=sa.bindparam("b_text"),
        )
    )
    for part in batched(rows, _CHUNK):
        session.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in part])


def rendered_languages(session: Session, digest_ids: Collection[int]) -> set[tuple[int, str]]:
    """The (digest, language) pairs already rendered (renditions made by any process)."""
    found: set[tuple[int, str]] = set()
    for part in parts(session, sorted(digest_ids), _CHUNK):
        stmt = sa.select(_R.c.digest_id, _R.c.locale).where(one_of(session, _R.c.digest_id, part))
        found.update((int(d), str(loc)) for d, loc in session.execute(stmt))
    return found


def add_renditions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert renditions; one another process stored first is kept."""
    stmt = dialect_insert(session)(_R).on_conflict_do_nothing()
    for part in batched(rows, _CHUNK):
        session.execute(stmt, list(part))


def edition_owners(
    session: Session, *, weeks: Collection[str], subscriber_ids: Sequence[int]
) -> dict[tuple[int, str], tuple[int | None, datetime]]:
    """Each (subscriber, week) edition of these readers: its digest and cutoff, so a fire can
    tell the rows it wrote from a concurrent one's."""
    found: dict[tuple[int, str], tuple[int | None, datetime]] = {}
    for part in parts(session, subscriber_ids, _CHUNK):
        stmt = sa.select(_E.c.subscriber_id, _E.c.week, _E.c.digest_id, _E.c.cutoff).where(
            _E.c.week.in_(sorted(weeks)), one_of(session, _E.c.subscriber_id, part)
        )
        for sid, week, digest_id, cutoff in session.execute(stmt):
            found[(int(sid), str(week))] = (digest_id, cutoff)
    return found


def digests_to_send(
    session: Session, pairs: Collection[tuple[int, str]], *, ahead: int = 0
) -> dict[tuple[int, str], tuple[Digest, DigestRendition | None]]:
    """Digests (without their item lists) with their renditions in the languages asked, by
    (digest, language), in two queries per page: a sender loads the digests of a claimed chunk
    together, ten thousand per fire of many sets. Absent: no such digest.

    ``ahead`` adds, in the same query, up to that many sendable digests numbered after the
    highest one asked, in their own language: a sender claims rows in id order and a fire
    numbers its digests in the order it queues their rows, so the next chunks' digests come
    with this one's instead of costing a round trip per chunk."""
    wanted = [c for c in _D.c if c.name != "item_ids"]
    sa.orm.configure_mappers()  # model_construct needs the mapped attributes ready (a fresh worker)
    ids = sorted({d for d, _ in pairs})
    digests: dict[int, Digest] = {}
    chunks = list(parts(session, ids, _CHUNK))
    for n, part in enumerate(chunks):
        where = one_of(session, _D.c.id, part)
        if ahead > 0 and n == len(chunks) - 1:
            after = (
                sa.select(_D.c.id)
                .where(_D.c.id > ids[-1], _D.c.status != "skipped")
                .order_by(_D.c.id)
                .limit(ahead)
            )
            where = sa.or_(where, _D.c.id.in_(after))
        stmt = sa.select(*wanted).where(where)
        for row in session.execute(stmt).mappings():
            # trusted columns: skip validation, ten times cheaper per digest
            fields = {c.name: row[c.name] for c in wanted}
            digests[int(row["id"])] = Digest.model_construct(**fields)
    foreign = sorted({(d, loc) for d, loc in pairs if d in digests and loc != digests[d].locale})
    made: dict[tuple[int, str], DigestRendition] = {}
    cols = (_R.c.digest_id, _R.c.locale, _R.c.subject, _R.c.html, _R.c.text, _R.c.created)
    for pairs_part in parts(session, foreign, _CHUNK):
        where = tuple_of(session, (_R.c.digest_id, _R.c.locale), pairs_part)
        stmt = sa.select(*cols).where(where)
        for digest_id, loc, subject, html, text, created in session.execute(stmt):
            made[(int(digest_id), str(loc))] = DigestRendition(
                digest_id=digest_id, locale=loc, subject=subject, html=html, text=text,
                created=created,
            )  # fmt: skip
    found = {(d, loc): (digests[d], made.get((d, loc))) for d, loc in pairs if d in digests}
    for d in sorted(d for d in digests if d > ids[-1]):  # read ahead
        found.setdefault((d, digests[d].locale), (digests[d], None))
    return found


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """A digest as a send report lists it: no bodies (ten thousand of them are 300 MB)."""

    id: int
    region: str
    regions: str
    week: str
    status: str
    subject: str


def digest_summaries(session: Session, digest_ids: Collection[int]) -> list[DigestSummary]:
    """The digests of ``digest_ids`` without their bodies, by id."""
    found: list[DigestSummary] = []
    cols = (_D.c.id, _D.c.region, _D.c.regions, _D.c.week, _D.c.status, _D.c.subject)
    for part in parts(session, IdRuns.of(digest_ids), _CHUNK):
        stmt = sa.select(*cols).where(among(_D.c.id, part)).order_by(_D.c.id)
        found += [DigestSummary(*row) for row in session.execute(stmt)]
    return found
