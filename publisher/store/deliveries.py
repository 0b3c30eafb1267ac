"""The delivery ledger's queries: one row per (digest, subscriber), written in batches.

A row's life: ``enqueue`` inserts it pending. ``claim_batch`` takes the next due rows for one
worker and commits them ``sending`` with a lease, after re-checking each subscriber (a row whose
subscriber is no longer active becomes ``skipped``); the engine claims one small chunk at a time,
just before its messages go to SMTP. ``record`` writes outcomes, one UPDATE per outcome group.
``release`` puts back rows a worker claimed but provably never handed to SMTP (a clean stop);
``renew`` extends a slow worker's lease. ``due(now)`` is the one condition for "a sender may take
this row now"; ``recover`` and ``resend_unknown`` are the queries of crash recovery
(``publisher.delivery.recovery`` decides which workers are dead).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression
from sqlmodel import Session

from publisher.models import Delivery, DeliveryState, Subscriber, SubscriberStatus
from publisher.store.sql import IdRuns, among, array_value, batched, one_of, parts
from publisher.store.subscribers import suppress_bounced

T: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]

_CHUNK = 2_000
_CLAIMED = (
    "id", "digest_id", "subscriber_id", "attempts", "first_attempt", "message_id", "locale",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed ledger row, already ``sending``; ``attempts`` counts the attempt under way."""

    id: int
    digest_id: int
    subscriber_id: int
    attempts: int
    first_attempt: datetime
    message_id: str
    locale: str = "en"  # fixed when the row was queued


@dataclass(frozen=True, slots=True)
class Recipient:
    """A claimed row with the subscriber data its message needs."""

    row: Claimed
    email: str
    key: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim took: recipients to send now, skipped rows, and the keyset position."""

    recipients: list[Recipient]
    skipped: list[int]
    last_id: int  # the highest row id taken; 0 when no row was due

    @property
    def empty(self) -> bool:
        return self.last_id == 0


@dataclass(frozen=True, slots=True)
class RowUpdate:
    """The outcome to write for one row (``next_attempt`` only for deferred)."""

    id: int
    state: DeliveryState
    last_error: str = ""
    next_attempt: datetime | None = None


def _restored() -> dict[str, Any]:
    """SET values that undo a claim: the row waits again exactly as before it was claimed."""
    return {
        "state": sa.case(
            (T.c.next_attempt.is_(None), DeliveryState.pending), else_=DeliveryState.deferred
        ),
        "attempts": T.c.attempts - 1,
        "first_attempt": sa.case((T.c.attempts <= 1, sa.null()), else_=T.c.first_attempt),
        "lease_until": None,
    }


def waiting(now: datetime, *, state: sa.ColumnElement[Any] = T.c.state) -> sa.ColumnElement[bool]:
    """Rows waiting to be sent: pending, or deferred and due."""
    return sa.or_(
        state == DeliveryState.pending,
        sa.and_(state == DeliveryState.deferred, T.c.next_attempt <= now),
    )


def due(now: datetime, *, state: sa.ColumnElement[Any] = T.c.state) -> sa.ColumnElement[bool]:
    """Rows a sender may take now: waiting, and no live lease on them."""
    return sa.and_(
        waiting(now, state=state), sa.or_(T.c.lease_until.is_(None), T.c.lease_until < now)
    )


def _unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``+column``: the same value, but SQLite will not pick an index on it for the term."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def count_waiting(
    session: Session, *, now: datetime, digest_ids: Collection[int] | None = None
) -> int:
    """How many rows a run would take now (of ``digest_ids``; None: every digest)."""
    stmt = sa.select(sa.func.count()).where(waiting(now))
    if digest_ids is not None:
        stmt = stmt.where(among(T.c.digest_id, digest_ids))
    return int(session.execute(stmt).scalar_one())


def has_due(session: Session, *, now: datetime) -> bool:
    """Whether any row is waiting for a worker (pending or due deferred, lease free)."""
    return session.execute(sa.select(T.c.id).where(due(now)).limit(1)).first() is not None


def digest_ids_of_rows(session: Session, *, row_ids: Sequence[int]) -> list[int]:
    """The digest of each of ``row_ids`` (metrics count outcomes per region)."""
    if not row_ids:
        return []
    stmt = sa.select(T.c.digest_id).where(T.c.id.in_(list(row_ids)))
    return [int(d) for d in session.execute(stmt).scalars()]


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


# No conflict target: a row is skipped on either unique key, (digest, subscriber) or (subscriber,
# week); with week NULL only the first can match, as with the targeted clause SQLite gets.
_UNNEST_INSERT = sa.text(
    "INSERT INTO deliveries (digest_id, subscriber_id, state, attempts, last_error, message_id,"
    " locale, week) SELECT :digest_id, u.sid, :state, 0, '', u.mid, :locale, CAST(:week AS varchar)"
    " FROM unnest(CAST(:subscriber_ids AS integer[]), CAST(:message_ids AS text[])) AS u(sid, mid)"
    " ON CONFLICT DO NOTHING"
)


def enqueue(
    session: Session,
    *,
    digest_id: int,
    subscriber_ids: Iterable[int],
    message_id: Callable[[int], str] | None = None,
    locale: str = "en",
    week: str | None = None,
) -> int:
    """Add a pending row per subscriber not yet in the ledger for this digest; returns how many.

    ``locale`` is the language of the rows' messages, fixed here: a reader who changes language
    later gets the next digest in the new one.

    ``message_id(subscriber_id)`` fixes each row's Message-ID once, so a retry keeps it. The rows
    go in with ON CONFLICT DO NOTHING on every unique key (PostgreSQL: one INSERT over arrays per
    chunk, three times faster than executemany and one firing of the tally trigger; SQLite:
    executemany); the count comes from a look at the unique index first (RETURNING costs more).

    ``week`` (an edition's) also keeps a subscriber to one row per week: a row that would be a
    second one of that week is not added either.
    """
    added = 0
    stmt = _insert(session)(T).on_conflict_do_nothing()
    for part in batched(subscriber_ids, _CHUNK):
        existing = session.execute(
            sa.select(sa.func.count()).where(
                T.c.digest_id == digest_id, T.c.subscriber_id.in_(part)
            )
        ).scalar_one()
        rows = [
            {
                "digest_id": digest_id,
                "subscriber_id": sid,
                "state": DeliveryState.pending,
                "attempts": 0,
                "last_error": "",
                "message_id": message_id(sid) if message_id else "",
                "locale": locale,
                "week": week,
            }
            for sid in part
        ]
        if session.get_bind().dialect.name == "postgresql":
            # One statement over arrays: one round trip, one firing of the tally trigger.
            session.execute(
                _UNNEST_INSERT,
                {
                    "digest_id": digest_id, "locale": locale, "state": DeliveryState.pending,
                    "week": week,
                    "subscriber_ids": array_value([r["subscriber_id"] for r in rows]),
                    "message_ids": array_value([r["message_id"] for r in rows]),
                },
            )  # fmt: skip
        else:
            session.execute(stmt, rows)
        added += len(set(part)) - int(existing)
    return added


_UNNEST_MANY = sa.text(
    "INSERT INTO deliveries (digest_id, subscriber_id, state, attempts, last_error, message_id,"
    " locale, week) SELECT u.did, u.sid, :state, 0, '', u.mid, u.loc, u.week"
    " FROM unnest(CAST(:digest_ids AS integer[]), CAST(:subscriber_ids AS integer[]),"
    " CAST(:message_ids AS text[]), CAST(:locales AS text[]), CAST(:weeks AS text[]))"
    " AS u(did, sid, mid, loc, week) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Queued:
    """One ledger row to add: an edition's digest, its reader, Message-ID, language and week."""

    digest_id: int
    subscriber_id: int
    message_id: str
    locale: str
    week: str | None


def enqueue_many(session: Session, rows: Sequence[Queued]) -> dict[int, int]:
    """``enqueue`` for the rows of many digests at once (a fire's page of region sets: one
    statement, not two per set); returns how many rows each digest got."""
    added: dict[int, int] = defaultdict(int)
    for part in parts(session, rows, _CHUNK):
        digests = sorted({r.digest_id for r in part})
        existing = {
            (int(d), int(sid))
            for d, sid in session.execute(
                sa.select(T.c.digest_id, T.c.subscriber_id).where(
                    one_of(session, T.c.digest_id, digests),
                    one_of(session, T.c.subscriber_id, [r.subscriber_id for r in part]),
                )
            )
        }
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_UNNEST_MANY, {
                "state": DeliveryState.pending,
                "digest_ids": array_value([r.digest_id for r in part]),
                "subscriber_ids": array_value([r.subscriber_id for r in part]),
                "message_ids": array_value([r.message_id for r in part]),
                "locales": array_value([r.locale for r in part]),
                "weeks": array_value([r.week for r in part]),
            })  # fmt: skip
        else:
            session.execute(_insert(session)(T).on_conflict_do_nothing(), [
                {"digest_id": r.digest_id, "subscriber_id": r.subscriber_id,
                 "state": DeliveryState.pending, "attempts": 0, "last_error": "",
                 "message_id": r.message_id, "locale": r.locale, "week": r.week}
                for r in part
            ])  # fmt: skip
        for r in {(r.digest_id, r.subscriber_id) for r in part} - existing:
            added[r[0]] += 1
    return dict(added)


def refresh_statistics(session: Session) -> None:
    """Let PostgreSQL's planner see a large enqueue at once (ANALYZE; SQLite needs nothing).

    Without fresh statistics a just-filled ledger looks tiny, and the claim is planned as a
    bitmap scan of every pending row plus a sort, once per chunk: quadratic over a send.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text(f"ANALYZE {T.name}"))


def claim_batch(
    session: Session,
    *,
    worker_id: str,
    limit: int,
    lease_until: datetime,
    now: datetime,
    after_id: int = 0,
    digest_ids: Collection[int] | None = None,
) -> Claim:
    """Take up to ``limit`` due rows with id > ``after_id`` (keyset) and mark them ``sending``.

    On PostgreSQL a CTE selects the rows FOR UPDATE SKIP LOCKED, so concurrent workers get
    disjoint rows without waiting, together with their subscribers (one round trip); the UPDATE
    joins it by primary key (``IN (subquery)`` there is planned as a hash join over the whole
    table). On SQLite one UPDATE is atomic by itself and the subscribers are read after it. Each
    subscriber is re-checked: rows of inactive ones are skipped, undoing their claim. The caller
    commits before any message goes out.
    """
    pick = sa.select(T.c.id).where(T.c.id > after_id).order_by(T.c.id).limit(limit)
    if digest_ids is not None:
        digest_ids = IdRuns.of(digest_ids)
    sqlite_many = session.get_bind().dialect.name == "sqlite" and len(digest_ids or ()) > 1
    if sqlite_many:
        # Rows of many digests: walk the primary key from ``after_id``. Left to itself SQLite
        # takes the state or digest index and sorts every waiting row for each claim of 200,
        # which made a fire of ten thousand region sets quadratic (10 ms a claim at 20,000).
        pick = pick.where(due(now, state=_unindexed(T.c.state)))
        pick = pick.where(among(_unindexed(T.c.digest_id), digest_ids or ()))
    else:
        pick = pick.where(due(now))
        if digest_ids is not None:
            pick = pick.where(among(T.c.digest_id, digest_ids))
    stmt = sa.update(T).values(
        state=DeliveryState.sending,
        attempts=T.c.attempts + 1,
        first_attempt=sa.func.coalesce(T.c.first_attempt, now),
        claimed_by=worker_id,
        lease_until=lease_until,
    )
    claimed = [T.c[n] for n in _CLAIMED]
    subs: dict[int, tuple[str, str, str | None]] = {}
    if session.get_bind().dialect.name == "postgresql":
        due_rows = (
            pick.add_columns(S.c.email, S.c.key, S.c.status)
            .select_from(T.outerjoin(S, S.c.id == T.c.subscriber_id))
            .with_for_update(of=T, skip_locked=True)
            .cte("due")
        )
        stmt = stmt.where(T.c.id == due_rows.c.id)
        result = session.execute(
            stmt.returning(*claimed, due_rows.c.email, due_rows.c.key, due_rows.c.status)
        )
        rows = []
        for r in result:
            rows.append(Claimed(*r[:7]))
            subs[r.subscriber_id] = (r.email, r.key, r.status)
    else:
        stmt = stmt.where(T.c.id.in_(pick.scalar_subquery()))
        rows = [Claimed(*r) for r in session.execute(stmt.returning(*claimed))]
        subs = _subscribers(session, [r.subscriber_id for r in rows])
    if not rows:
        return Claim([], [], 0)
    rows.sort(key=lambda r: r.id)
    recipients, skipped = _recheck(session, rows, subs)
    return Claim(recipients, skipped, rows[-1].id)


def _subscribers(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str, str | None]]:
    if not ids:
        return {}
    stmt = sa.select(S.c.id, S.c.email, S.c.key, S.c.status).where(S.c.id.in_(ids))
    return {sid: (email, key, status) for sid, email, key, status in session.execute(stmt)}


def _skip_reason(status: str | None) -> str:
    if status is None:
        return "subscriber erased before sending"
    return f"subscriber {status} before sending"


def _recheck(
    session: Session, rows: Sequence[Claimed], subs: dict[int, tuple[str, str, str | None]]
) -> tuple[list[Recipient], list[int]]:
    """Recipients of the rows whose subscriber is active; the others are marked skipped."""
    recipients: list[Recipient] = []
    skipped: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        email, key, status = subs.get(r.subscriber_id, ("", "", None))
        if status == SubscriberStatus.active:
            recipients.append(Recipient(row=r, email=email, key=key))
        else:
            skipped[_skip_reason(status)].append(r.id)
    for reason, ids in skipped.items():
        values = {**_restored(), "state": DeliveryState.skipped, "last_error": reason}
        session.execute(sa.update(T).where(T.c.id.in_(ids)).values(values))
    return recipients, [i for ids in skipped.values() for i in ids]


def record(
    session: Session,
    *,
    worker_id: str,
    updates: Sequence[RowUpdate],
    now: datetime,
    bounced: Collection[int] = (),
) -> int:
    """Write outcomes, one UPDATE per (state, next attempt, error) group; returns rows written.

    A row is written only while it is still this worker's; a row recovery marked unknown meanwhile
    still takes the real outcome. ``bounced`` subscriber ids become bounced if they were active.
    """
    groups: dict[tuple[DeliveryState, datetime | None, str], list[int]] = defaultdict(list)
    for u in updates:
        groups[(u.state, u.next_attempt, u.last_error[:1000])].append(u.id)
    written = 0
    mine = sa.and_(
        T.c.claimed_by == worker_id,
        T.c.state.in_((DeliveryState.sending, DeliveryState.unknown)),
    )
    for (state, next_attempt, error), ids in groups.items():
        values: dict[str, object] = {"state": state, "last_error": error, "lease_until": None}
        if state is DeliveryState.sent:
            values["sent_at"] = now
        if state is DeliveryState.deferred:
            values["next_attempt"] = next_attempt
        for part in batched(ids, _CHUNK):
            result = session.execute(sa.update(T).where(T.c.id.in_(part), mine).values(values))
            written += result.rowcount  # type: ignore[attr-defined]
    for part in batched(sorted(bounced), _CHUNK):
        session.execute(
            sa.update(S)
            .where(S.c.id.in_(part), S.c.status == SubscriberStatus.active)
            .values(status=SubscriberStatus.bounced)
        )
    if bounced:
        suppress_bounced(session, subscriber_ids=bounced, now=now)
    return written


def release(session: Session, *, worker_id: str, ids: Collection[int]) -> int:
    """Undo the claim of rows this worker never handed to SMTP; returns how many.

    Only the caller can know a message never left (it was still queued when the run stopped),
    so only the claiming worker releases, and only rows still ``sending`` under its name.
    """
    freed = 0
    mine = sa.and_(T.c.claimed_by == worker_id, T.c.state == DeliveryState.sending)
    for part in batched(sorted(ids), _CHUNK):
        stmt = (
            sa.update(T).where(T.c.id.in_(part), mine).values({**_restored(), "claimed_by": None})
        )
        freed += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return freed


def renew(session: Session, *, worker_id: str, ids: Collection[int], lease_until: datetime) -> int:
    """Extend this worker's lease on rows still in flight (a slow chunk must not look dead)."""
    renewed = 0
    mine = sa.and_(T.c.claimed_by == worker_id, T.c.state == DeliveryState.sending)
    for part in batched(sorted(ids), _CHUNK):
        stmt = sa.update(T).where(T.c.id.in_(part), mine).values(lease_until=lease_until)
        renewed += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return renewed


def lease_holders(session: Session, *, now: datetime) -> list[str]:
    """Workers holding rows ``sending`` whose leases still run."""
    holders = session.scalars(
        sa.select(T.c.claimed_by)
        .where(T.c.state == DeliveryState.sending, T.c.lease_until >= now)
        .distinct()
    )
    return [w for w in holders if w]


def sending_holders(session: Session) -> set[str]:
    """Workers holding rows ``sending``, whatever their leases (recovery reads their journals)."""
    stmt = sa.select(T.c.claimed_by).where(T.c.state == DeliveryState.sending).distinct()
    return {w for w in session.scalars(stmt) if w}


def sending_rows(session: Session, *, worker_id: str) -> list[Claimed]:
    """The rows ``worker_id`` holds ``sending``, as it claimed them (a dead worker's journal
    settles them)."""
    stmt = sa.select(*(T.c[n] for n in _CLAIMED)).where(
        T.c.claimed_by == worker_id, T.c.state == DeliveryState.sending
    )
    return [Claimed(*r) for r in session.execute(stmt)]


def recover(session: Session, *, now: datetime, dead_workers: Collection[str] = ()) -> int:
    """Mark unknown the rows of workers whose lease expired or who died; returns how many."""
    gone = sa.or_(T.c.lease_until < now, T.c.claimed_by.in_(list(dead_workers)))
    stmt = (
        sa.update(T)
        .where(T.c.state == DeliveryState.sending, gone)
        .values(
            state=DeliveryState.unknown,
            lease_until=None,
            last_error=sa.func.coalesce(T.c.claimed_by, "?")
            + " stopped while sending; the server may or may not have the message",
        )
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def resend_unknown(session: Session, *, digest_ids: Collection[int] | None = None) -> int:
    """Put unknown rows back to pending on the operator's word; returns how many."""
    stmt = (
        sa.update(T)
        .where(T.c.state == DeliveryState.unknown)
        .values(state=DeliveryState.pending, claimed_by=None, lease_until=None, next_attempt=None)
    )
    if digest_ids is not None:
        stmt = stmt.where(among(T.c.digest_id, digest_ids))
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
