"""Held sends: a week whose scheduled fire waits until an editor approves it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from publisher.models import SendHold


def get_hold(session: Session, *, week: str) -> SendHold | None:
    """The hold of ``week``, approved or not, or None."""
    return session.get(SendHold, week)


def is_held(session: Session, *, week: str) -> bool:
    """Whether ``week`` is held and not yet approved."""
    found = session.get(SendHold, week)
    return found is not None and found.approved_at is None


def hold(session: Session, *, week: str, by: str, now: datetime) -> SendHold:
    """Hold ``week`` (again, if it had been approved)."""
    found = session.get(SendHold, week)
    if found is None:
        found = SendHold(week=week, held_by=by[:320], held_at=now)
    else:
        found.held_by, found.held_at = by[:320], now
        found.approved_by, found.approved_at = None, None
    session.add(found)
    session.flush()
    return found


def approve(session: Session, *, week: str, by: str, now: datetime) -> bool:
    """Approve a held ``week``; False when it was not held."""
    found = session.get(SendHold, week)
    if found is None or found.approved_at is not None:
        return False
    found.approved_by, found.approved_at = by[:320], now
    session.add(found)
    session.flush()
    return True


def release(session: Session, *, week: str) -> bool:
    """Remove the hold of ``week`` altogether; False when there was none."""
    found = session.get(SendHold, week)
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True
