"""Digest rows: the one lookup of a (region, week), listings, and which digests are public."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.models import Delivery, DeliveryState, Digest

PUBLIC_STATUSES = ("sending", "sent", "done", "delivered")


def find_digest(session: Session, *, region: str, week: str) -> Digest | None:
    """The stored digest of ``region`` for ``week``, if assembled."""
    stmt = select(Digest).where(col(Digest.region) == region, col(Digest.week) == week)
    return session.exec(stmt).first()


def get_digest(session: Session, *, digest_id: int) -> Digest | None:
    """The digest with this id, or None."""
    return session.get(Digest, digest_id)


def list_digests(
    session: Session,
    *,
    region: str | None = None,
    week: str | None = None,
    limit: int | None = None,
) -> list[Digest]:
    """Stored digests (of ``region``, of ``week``), newest week first, then by region."""
    stmt = select(Digest).order_by(col(Digest.week).desc(), col(Digest.region))
    if region is not None:
        stmt = stmt.where(col(Digest.region) == region)
    if week is not None:
        stmt = stmt.where(col(Digest.week) == week)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def _public() -> sa.ColumnElement[bool]:
    sent = (
        select(Delivery.id)
        .where(col(Delivery.digest_id) == Digest.id, col(Delivery.state) == DeliveryState.sent)
        .exists()
    )
    return sa.or_(col(Digest.status).in_(PUBLIC_STATUSES), sent)


def archived_digests(session: Session, *, region: str, limit: int) -> list[Digest]:
    """A region's public digests, newest week first."""
    stmt = (
        select(Digest)
        .where(col(Digest.region) == region, _public())
        .order_by(col(Digest.week).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def find_public_digest(session: Session, *, region: str, week: str) -> Digest | None:
    """The digest of ``region`` for ``week`` if it is public (has gone out), else None."""
    stmt = select(Digest).where(col(Digest.region) == region, col(Digest.week) == week, _public())
    return session.exec(stmt).first()
