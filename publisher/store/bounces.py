"""Bounce reports as they arrived and the events applied from them (tables of models.BounceReport).

A report is inserted (once per key) and committed before its sender hears a yes; applying it
later takes the row with FOR UPDATE (PostgreSQL), so two appliers never apply one twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import (
    BounceEvent,
    BounceReport,
    Delivery,
    DeliveryState,
    Subscriber,
    Suppression,
)

PENDING = "pending"
STATES = ("pending", "applied", "unmatched", "ignored", "duplicate", "malformed")
MAX_RAW = 10_000_000


def _insert(session: Session, row: BounceReport | BounceEvent) -> bool:
    """Insert in a savepoint; False when a unique key was taken (by a concurrent writer too)."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError:
        return False
    return True


def report_key(basis: str | bytes) -> str:
    """The idempotency key of a report: a SHA-256 of its Message-ID, event id or bytes."""
    data = basis.encode("utf-8", "surrogateescape") if isinstance(basis, str) else basis
    return hashlib.sha256(data).hexdigest()


def store_report(
    session: Session, *, key: str, source: str, raw: bytes, envelope_to: str, now: datetime
) -> tuple[int, bool]:
    """Keep a report (pending); returns (its id, whether it is new). The caller commits."""
    report = BounceReport(
        key=key, source=source[:32], envelope_to=envelope_to[:1000], received=now,
        raw=raw[:MAX_RAW],
    )  # fmt: skip
    if _insert(session, report):
        assert report.id is not None
        return report.id, True
    found = session.exec(select(BounceReport.id).where(col(BounceReport.key) == key)).one()
    assert found is not None
    return found, False


def pending_ids(session: Session, *, limit: int = 100, after_id: int = 0) -> list[int]:
    """Ids of stored reports not yet applied, oldest first."""
    stmt = (
        select(BounceReport.id)
        .where(col(BounceReport.state) == PENDING, col(BounceReport.id) > after_id)
        .order_by(col(BounceReport.id))
        .limit(limit)
    )
    return [i for i in session.exec(stmt) if i is not None]


def lock_report(session: Session, *, report_id: int) -> BounceReport | None:
    """The report, locked for this transaction (PostgreSQL), or None."""
    stmt = select(BounceReport).where(col(BounceReport.id) == report_id).with_for_update()
    return session.exec(stmt).first()


def finish(report: BounceReport, session: Session, *, state: str, kind: str, detail: str) -> None:
    """Record what applying the report did."""
    report.state, report.kind, report.detail = state, kind[:16], " ".join(detail.split())[:1000]
    session.add(report)
    session.flush()


def has_event(session: Session, *, delivery_id: int, kind: str) -> bool:
    """Whether this ledger row already has an event of this kind (a report seen before)."""
    stmt = select(BounceEvent.id).where(
        col(BounceEvent.delivery_id) == delivery_id, col(BounceEvent.kind) == kind
    )
    return session.exec(stmt).first() is not None


def add_event(session: Session, event: BounceEvent) -> bool:
    """Insert an event; False when the (ledger row, kind) pair already has one."""
    return _insert(session, event)


def count_events(session: Session, *, subscriber_id: int, kind: str, since: datetime) -> int:
    """A subscriber's events of ``kind`` at or after ``since`` (soft bounces within M days)."""
    stmt = sa.select(sa.func.count()).where(
        col(BounceEvent.subscriber_id) == subscriber_id,
        col(BounceEvent.kind) == kind,
        col(BounceEvent.at) >= since,
    )
    return int(session.execute(stmt).scalar_one())


def get_delivery(session: Session, *, row_id: int) -> Delivery | None:
    """The ledger row a VERP token names (None: it does not exist, e.g. purged)."""
    return session.get(Delivery, row_id)


def find_delivery(session: Session, *, digest_id: int, subscriber_id: int) -> Delivery | None:
    """The ledger row of one (digest, subscriber), e.g. from a Message-ID."""
    stmt = select(Delivery).where(
        col(Delivery.digest_id) == digest_id, col(Delivery.subscriber_id) == subscriber_id
    )
    return session.exec(stmt).first()


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One report as `publisher bounces list` shows it."""

    id: int
    received: datetime
    source: str
    state: str
    kind: str
    email: str
    status: str
    detail: str


def list_reports(session: Session, *, since: datetime | None = None) -> list[ReportLine]:
    """Reports (newest first) with the address they were applied to, if any."""
    r: sa.Table = BounceReport.__table__  # type: ignore[attr-defined]
    e: sa.Table = BounceEvent.__table__  # type: ignore[attr-defined]
    s: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
    stmt = (
        sa.select(
            r.c.id, r.c.received, r.c.source, r.c.state, r.c.kind, s.c.email, e.c.status, r.c.detail
        )
        .select_from(
            r.outerjoin(e, e.c.report_id == r.c.id).outerjoin(s, s.c.id == e.c.subscriber_id)
        )
        .order_by(r.c.received.desc(), r.c.id.desc())
    )
    if since is not None:
        stmt = stmt.where(r.c.received >= since)
    return [
        ReportLine(int(i), at, src, state, kind, email or "", status or "", detail)
        for i, at, src, state, kind, email, status, detail in session.execute(stmt)
    ]


def purge_raw(session: Session, *, before: datetime) -> int:
    """Forget the raw bytes of reports received before ``before``; returns how many."""
    r = BounceReport.__table__  # type: ignore[attr-defined]
    stmt = sa.update(r).where(r.c.received < before, r.c.raw.is_not(None)).values(raw=None)
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Rates:
    """A window's sent messages and the hard bounces and complaints reported about it."""

    sent: int
    hard: int
    complaints: int


def rates(session: Session, *, since: datetime, until: datetime) -> Rates:
    """Messages sent in [since, until) and hard bounces and complaints recorded then."""
    d, e = Delivery.__table__, BounceEvent.__table__  # type: ignore[attr-defined]
    sent = session.execute(
        sa.select(sa.func.count()).where(
            d.c.state == DeliveryState.sent, d.c.sent_at >= since, d.c.sent_at < until
        )
    ).scalar_one()
    by_kind = dict(
        session.execute(
            sa.select(e.c.kind, sa.func.count())
            .where(e.c.at >= since, e.c.at < until)
            .group_by(e.c.kind)
        ).all()
    )
    return Rates(int(sent), int(by_kind.get("hard", 0)), int(by_kind.get("complaint", 0)))


def states(session: Session) -> Sequence[tuple[str, int]]:
    """Reports per state."""
    r = BounceReport.__table__  # type: ignore[attr-defined]
    stmt = sa.select(r.c.state, sa.func.count()).group_by(r.c.state).order_by(r.c.state)
    return [(str(a), int(b)) for a, b in session.execute(stmt)]


def recent_reports(
    session: Session, *, before_id: int | None = None, limit: int = 50
) -> list[ReportLine]:
    """A page of reports, newest (highest id) first, below ``before_id`` (keyset, no OFFSET)."""
    r: sa.Table = BounceReport.__table__  # type: ignore[attr-defined]
    e: sa.Table = BounceEvent.__table__  # type: ignore[attr-defined]
    s: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
    page = sa.select(r.c.id).order_by(r.c.id.desc()).limit(limit)
    if before_id is not None:
        page = page.where(r.c.id < before_id)
    ids = page.subquery()
    stmt = (
        sa.select(
            r.c.id, r.c.received, r.c.source, r.c.state, r.c.kind, s.c.email, e.c.status, r.c.detail
        )
        .select_from(
            r.join(ids, ids.c.id == r.c.id)
            .outerjoin(e, e.c.report_id == r.c.id)
            .outerjoin(s, s.c.id == e.c.subscriber_id)
        )
        .order_by(r.c.id.desc())
    )
    return [
        ReportLine(int(i), at, src, state, kind, email or "", status or "", detail)
        for i, at, src, state, kind, email, status, detail in session.execute(stmt)
    ]


def suppressions_by_reason(session: Session) -> Sequence[tuple[str, int]]:
    """Suppressed addresses per reason (hard_bounce, soft_bounce, complaint, ...)."""
    t = Suppression.__table__  # type: ignore[attr-defined]
    stmt = sa.select(t.c.reason, sa.func.count()).group_by(t.c.reason).order_by(t.c.reason)
    return [(str(a), int(b)) for a, b in session.execute(stmt)]


def kinds_since(session: Session, *, since: datetime) -> dict[str, int]:
    """Bounce events per kind (hard, soft, complaint) recorded since ``since`` (indexed on at)."""
    e = BounceEvent.__table__  # type: ignore[attr-defined]
    stmt = sa.select(e.c.kind, sa.func.count()).where(e.c.at >= since).group_by(e.c.kind)
    return {str(kind): int(n) for kind, n in session.execute(stmt)}
