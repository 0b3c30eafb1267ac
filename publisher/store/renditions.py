"""A frozen digest's renderings in further languages (table digest_renditions)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from publisher.models import DigestRendition
from publisher.store.rows import add_unless_taken


def find_rendition(session: Session, *, digest_id: int, locale: str) -> DigestRendition | None:
    """The stored rendering of ``digest_id`` in ``locale``, if made."""
    stmt = select(DigestRendition).where(
        col(DigestRendition.digest_id) == digest_id, col(DigestRendition.locale) == locale
    )
    return session.exec(stmt).first()


def add_rendition(session: Session, rendition: DigestRendition) -> DigestRendition:
    """Store a rendering once: when another process stored it first, theirs is returned."""
    if add_unless_taken(session, rendition):
        return rendition
    winner = find_rendition(session, digest_id=rendition.digest_id, locale=rendition.locale)
    if winner is None:
        raise LookupError(f"rendition {rendition.digest_id}/{rendition.locale} vanished")
    return winner
