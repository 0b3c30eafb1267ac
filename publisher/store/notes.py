"""Editors' notes of a week: one for the whole edition (region '') and one per region."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from publisher.errors import InputError
from publisher.models import EditionNote

MAX_NOTE = 500


def notes_of_week(session: Session, *, week: str) -> dict[str, str]:
    """{region ('' = the whole edition): text} of ``week``."""
    stmt = select(EditionNote).where(col(EditionNote.week) == week)
    return {n.region: n.text for n in session.exec(stmt)}


def set_note(
    session: Session, *, week: str, region: str, text: str, by: str, now: datetime
) -> None:
    """Write (or, with blank ``text``, delete) the note of ``week`` for ``region``.

    Plain text, at most 500 characters: longer is refused, not cut (InputError).
    """
    text = text.strip()
    if len(text) > MAX_NOTE:
        raise InputError(f"a note has at most {MAX_NOTE} characters, this one {len(text)}")
    found = session.exec(
        select(EditionNote).where(col(EditionNote.week) == week, col(EditionNote.region) == region)
    ).first()
    if not text:
        if found is not None:
            session.delete(found)
        return
    if found is None:
        found = EditionNote(week=week, region=region, text=text, updated_by=by[:320], updated=now)
    else:
        found.text, found.updated_by, found.updated = text, by[:320], now
    session.add(found)
    session.flush()
