"""The audit log: who did what to what, written in the same transaction as the change itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from publisher.models import AuditEntry

_ACTOR, _ACTION, _TARGET, _DETAIL = 320, 32, 500, 2000


def _fit(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters with an ellipsis: a long name never fails a change."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def record(
    session: Session, *, actor: str, action: str, target: str, detail: str = "", at: datetime
) -> None:
    """Add one entry (flushed with the caller's transaction: it commits or rolls back with it)."""
    session.add(
        AuditEntry(
            at=at,
            actor=_fit(actor, _ACTOR),
            action=_fit(action, _ACTION),
            target=_fit(target, _TARGET),
            detail=_fit(detail, _DETAIL),
        )
    )
    session.flush()


def page(
    session: Session,
    *,
    before: int | None = None,
    actor: str = "",
    action: str = "",
    limit: int = 50,
) -> Sequence[AuditEntry]:
    """Up to ``limit`` entries newest first, with ids below ``before`` (keyset, never OFFSET)."""
    stmt = select(AuditEntry)
    if before is not None:
        stmt = stmt.where(col(AuditEntry.id) < before)
    if actor:
        stmt = stmt.where(col(AuditEntry.actor) == actor)
    if action:
        stmt = stmt.where(col(AuditEntry.action) == action)
    return session.exec(stmt.order_by(col(AuditEntry.id).desc()).limit(limit)).all()
