"""The admins' view of subscribers: search, a person's record, export pages, the suppression list.

Every list is a keyset page (``id < before`` newest first, or ``id > after`` for exports), so
no page costs more at the millionth subscriber than at the first. A prefix search reads an
index on lower(email): on PostgreSQL the pattern index of migration 0019 (a left-anchored LIKE
cannot use the default-collation unique index unless the database collation is "C"), on SQLite
the unique lower(email) index through a range (addresses are ASCII, BINARY order). A substring
search reads the trigram index of 0019 on PostgreSQL (three characters or more); on SQLite, or
where pg_trgm is missing, it scans ids newest first until a page is full.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import (
    BounceEvent,
    Delivery,
    Digest,
    OutboxMessage,
    Subscriber,
    SubscriberStatus,
    Subscription,
    Suppression,
)

Match = Literal["prefix", "contains"]
_S: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
_ASCII_TOP = "\x7f"  # above every character a stored (ASCII) address can hold


@dataclass(frozen=True, slots=True)
class SubscriberLine:
    """One row of the subscribers list."""

    id: int
    email: str
    status: str
    locale: str
    created: datetime
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """One ledger row of a subscriber with the edition (digest) it belongs to."""

    id: int
    week: str
    regions: tuple[str, ...]  # the edition's region set
    state: str
    attempts: int
    sent_at: datetime | None
    last_error: str


@dataclass(frozen=True, slots=True)
class ExportLine:
    """One subscriber as the export writes it (regions already joined)."""

    id: int
    email: str
    regions: tuple[str, ...]
    status: str
    locale: str
    created: datetime
    confirmed: datetime | None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _email_filter(session: Session, text: str, match: Match) -> sa.ColumnElement[bool]:
    key = sa.func.lower(col(Subscriber.email))
    escaped = _like_escape(text)
    if match == "contains":
        return key.like(f"%{escaped}%", escape="\\")
    condition: sa.ColumnElement[bool] = key.like(f"{escaped}%", escape="\\")
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's LIKE never uses an index; the range does (and LIKE keeps it exact).
        condition = sa.and_(key >= text, key < text + _ASCII_TOP, condition)
    return condition


def search(
    session: Session,
    *,
    text: str = "",
    match: Match = "prefix",
    status: SubscriberStatus | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[SubscriberLine]:
    """Subscribers newest first whose lower-cased address starts with (or holds) ``text``.

    ``text`` is compared lower-cased; empty means everyone. Pass the last id of one page as
    ``before_id`` of the next.
    """
    stmt = select(Subscriber).order_by(col(Subscriber.id).desc()).limit(limit)
    if text:
        stmt = stmt.where(_email_filter(session, text.lower(), match))
    if status is not None:
        stmt = stmt.where(col(Subscriber.status) == status)
    if before_id is not None:
        stmt = stmt.where(col(Subscriber.id) < before_id)
    found = list(session.exec(stmt))
    regions = regions_by_subscriber(session, ids=[s.id for s in found if s.id is not None])
    return [
        SubscriberLine(
            id=s.id, email=s.email, status=s.status, locale=s.locale, created=s.created,
            regions=tuple(regions.get(s.id, ())),
        )
        for s in found
        if s.id is not None
    ]  # fmt: skip


def regions_by_subscriber(session: Session, *, ids: Collection[int]) -> dict[int, list[str]]:
    """The region slugs each of ``ids`` follows, sorted, in one query."""
    if not ids:
        return {}
    stmt = (
        select(Subscription.subscriber_id, Subscription.region)
        .where(col(Subscription.subscriber_id).in_(sorted(ids)))
        .order_by(col(Subscription.subscriber_id), col(Subscription.region))
    )
    found: dict[int, list[str]] = defaultdict(list)
    for sid, region in session.exec(stmt):
        found[sid].append(region)
    return dict(found)


def recent_deliveries(
    session: Session, *, subscriber_id: int, limit: int = 20
) -> list[DeliveryLine]:
    """A subscriber's latest ledger rows, newest first, with their edition's week and regions."""
    stmt = (
        select(Delivery, Digest.week, Digest.region, Digest.regions)
        .join(Digest, col(Digest.id) == col(Delivery.digest_id))
        .where(col(Delivery.subscriber_id) == subscriber_id)
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    return [
        DeliveryLine(
            id=d.id or 0, week=week, regions=tuple((regions or region).split()), state=d.state,
            attempts=d.attempts, sent_at=d.sent_at, last_error=d.last_error,
        )
        for d, week, region, regions in session.exec(stmt)
    ]  # fmt: skip


def bounce_events(session: Session, *, subscriber_id: int, limit: int = 20) -> list[BounceEvent]:
    """A subscriber's latest bounce and complaint events, newest first."""
    stmt = (
        select(BounceEvent)
        .where(col(BounceEvent.subscriber_id) == subscriber_id)
        .order_by(col(BounceEvent.at).desc(), col(BounceEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def outbox_messages(
    session: Session, *, subscriber_id: int, limit: int = 10
) -> list[OutboxMessage]:
    """The confirmation emails owed to or sent to a subscriber, newest first."""
    stmt = (
        select(OutboxMessage)
        .where(col(OutboxMessage.subscriber_id) == subscriber_id)
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def export_page(
    session: Session,
    *,
    after_id: int = 0,
    status: SubscriberStatus | None = None,
    limit: int = 1000,
) -> list[ExportLine]:
    """One page of the subscriber export, by id ascending (``after_id``: the last id so far)."""
    stmt = (
        sa.select(_S.c.id, _S.c.email, _S.c.status, _S.c.locale, _S.c.created, _S.c.confirmed)
        .where(_S.c.id > after_id)
        .order_by(_S.c.id)
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(_S.c.status == status)
    rows = list(session.execute(stmt))
    regions = regions_by_subscriber(session, ids=[int(r.id) for r in rows])
    return [
        ExportLine(
            id=int(r.id), email=r.email, regions=tuple(regions.get(int(r.id), ())),
            status=r.status, locale=r.locale, created=r.created, confirmed=r.confirmed,
        )
        for r in rows
    ]  # fmt: skip


def suppressions(
    session: Session,
    *,
    reason: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[Suppression]:
    """Suppression entries newest first; ``before``: (created, email_hash) of the last shown."""
    stmt = (
        select(Suppression)
        .order_by(col(Suppression.created).desc(), col(Suppression.email_hash).desc())
        .limit(limit)
    )
    if reason is not None:
        stmt = stmt.where(col(Suppression.reason) == reason)
    if before is not None:
        at, digest = before
        stmt = stmt.where(
            sa.or_(
                col(Suppression.created) < at,
                sa.and_(col(Suppression.created) == at, col(Suppression.email_hash) < digest),
            )
        )
    return list(session.exec(stmt))
