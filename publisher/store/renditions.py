"""A frozen digest's renderings in further languages (table digest_renditions)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from publisher.models import DigestRendition


def find_rendition(session: Session, *, digest_id: int, locale: str) -> DigestRendition | None:
    """The stored rendering of ``digest_id`` in ``locale``, if made."""
    stmt = select(DigestRendition).where(
        col(DigestRendition.digest_id) == digest_id, col(DigestRendition.locale) == locale
    )
    return session.exec(stmt).first()
