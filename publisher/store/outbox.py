"""The outbox's queries: transactional emails (confirmations) owed to subscribers, durably.

A message's life follows the ledger's: ``add`` inserts it pending in the caller's transaction
(the signup's), ``claim`` commits the due ones ``sending`` with a lease for one deliverer,
``record`` writes each outcome (sent, deferred with its next attempt, failed, skipped).
``recover`` marks unknown what a dead deliverer left ``sending``; unlike a digest, an unknown
confirmation is due again at once (a second confirmation is better than none).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import OutboxMessage, OutboxState

T: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
CONFIRMATION = "confirmation"
FINISHED_KIND = "test"  # a finished message to a fixed address (an edition's test copy)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed outbox row, already ``sending``; ``attempts`` counts the attempt under way."""

    id: int
    kind: str
    subscriber_id: int
    attempts: int
    first_attempt: datetime


def add(session: Session, *, subscriber_id: int, now: datetime, kind: str = CONFIRMATION) -> int:
    """Queue one message in the caller's transaction; its id."""
    values = {
        "kind": kind, "subscriber_id": subscriber_id, "state": OutboxState.pending,
        "attempts": 0, "created": now, "last_error": "",
    }  # fmt: skip
    return int(session.execute(sa.insert(T).values(values).returning(T.c.id)).scalar_one())


def add_finished(
    session: Session, *, address: str, body: bytes, now: datetime, kind: str = FINISHED_KIND
) -> int:
    """Queue a finished message to ``address`` (no subscriber: a test copy); its id."""
    values = {
        "kind": kind, "subscriber_id": 0, "state": OutboxState.pending, "attempts": 0,
        "created": now, "last_error": "", "address": address, "body": body,
    }  # fmt: skip
    return int(session.execute(sa.insert(T).values(values).returning(T.c.id)).scalar_one())


def due(now: datetime) -> sa.ColumnElement[bool]:
    """Rows a deliverer may take now: pending, or deferred or unknown and due.

    An unknown row left by a crash has no next attempt and is due at once; one whose connection
    was lost after the final dot waits like a deferred one, so a bad server is not hammered.
    """
    waiting = sa.or_(
        T.c.state == OutboxState.pending,
        sa.and_(
            T.c.state.in_((OutboxState.deferred, OutboxState.unknown)),
            sa.or_(T.c.next_attempt.is_(None), T.c.next_attempt <= now),
        ),
    )
    return sa.and_(waiting, sa.or_(T.c.lease_until.is_(None), T.c.lease_until < now))


def has_due(session: Session, *, now: datetime) -> bool:
    """Whether any message waits for a deliverer."""
    return session.execute(sa.select(T.c.id).where(due(now)).limit(1)).first() is not None


def claim(
    session: Session, *, worker_id: str, now: datetime, lease_until: datetime, limit: int = 50
) -> list[Claimed]:
    """Take up to ``limit`` due rows for ``worker_id`` (SKIP LOCKED on PostgreSQL); oldest first."""
    pick = sa.select(T.c.id).where(due(now)).order_by(T.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(session.scalars(pick))
    if not ids:
        return []
    session.execute(
        sa.update(T)
        .where(T.c.id.in_(ids), due(now))
        .values(
            state=OutboxState.sending,
            claimed_by=worker_id,
            lease_until=lease_until,
            attempts=T.c.attempts + 1,
            first_attempt=sa.func.coalesce(T.c.first_attempt, now),
        )
    )
    rows = session.execute(
        sa.select(T.c.id, T.c.kind, T.c.subscriber_id, T.c.attempts, T.c.first_attempt)
        .where(T.c.id.in_(ids), T.c.claimed_by == worker_id, T.c.state == OutboxState.sending)
        .order_by(T.c.id)
    )
    return [Claimed(int(i), k, int(s), int(a), f) for i, k, s, a, f in rows]


def record(
    session: Session,
    *,
    worker_id: str,
    row_id: int,
    state: OutboxState,
    now: datetime,
    error: str = "",
    next_attempt: datetime | None = None,
) -> bool:
    """Write one outcome while the row is still this deliverer's; True if written."""
    values: dict[str, object] = {"state": state, "last_error": error[:1000], "lease_until": None}
    if state is OutboxState.sent:
        values["sent_at"] = now
    if state in (OutboxState.deferred, OutboxState.unknown):
        values["next_attempt"] = next_attempt
    stmt = (
        sa.update(T)
        .where(T.c.id == row_id, T.c.claimed_by == worker_id)
        .where(T.c.state.in_((OutboxState.sending, OutboxState.unknown)))
        .values(values)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def get_message(session: Session, *, row_id: int) -> OutboxMessage | None:
    """The outbox row ``row_id``, or None."""
    return session.get(OutboxMessage, row_id)


def lease_holders(session: Session, *, now: datetime) -> list[str]:
    """Deliverers holding rows ``sending`` whose leases still run."""
    stmt = sa.select(T.c.claimed_by).where(T.c.state == OutboxState.sending, T.c.lease_until >= now)
    return [w for w in session.scalars(stmt.distinct()) if w]


def recover(session: Session, *, now: datetime, dead_workers: Collection[str] = ()) -> int:
    """Mark unknown (and so due again) the rows of deliverers that died; returns how many."""
    gone = sa.or_(T.c.lease_until < now, T.c.claimed_by.in_(list(dead_workers)))
    stmt = (
        sa.update(T)
        .where(T.c.state == OutboxState.sending, gone)
        .values(
            state=OutboxState.unknown,
            lease_until=None,
            next_attempt=None,
            last_error="the deliverer stopped while sending; sent again",
        )
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def states(session: Session) -> dict[str, int]:
    """Outbox rows per state."""
    stmt = sa.select(T.c.state, sa.func.count()).group_by(T.c.state)
    return {str(s): int(n) for s, n in session.execute(stmt)}


def messages_of(session: Session, *, subscriber_id: int) -> list[OutboxMessage]:
    """A subscriber's outbox rows, oldest first (tests, data export)."""
    stmt = sa.select(OutboxMessage).where(T.c.subscriber_id == subscriber_id).order_by(T.c.id)
    return list(session.scalars(stmt))
