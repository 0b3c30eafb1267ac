"""Edition fragments, stored once per content hash and read by the hundred.

See publisher.email.fragments for the bodies that name them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from publisher.models import EditionFragment
from publisher.store.deliveries import _insert as dialect_insert
from publisher.store.sql import batched, one_of, parts

_F: sa.Table = EditionFragment.__table__  # type: ignore[attr-defined]
_CHUNK = 500


def add_fragments(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store fragments (sha, html, text, created); one stored before, by anyone, is kept."""
    stmt = dialect_insert(session)(_F).on_conflict_do_nothing()
    for part in batched(rows, _CHUNK):
        session.execute(stmt, list(part))


def load_fragments(session: Session, shas: Collection[str]) -> dict[str, tuple[str, str]]:
    """(html, text) of each stored fragment of ``shas``, by hash (absent: not stored)."""
    found: dict[str, tuple[str, str]] = {}
    for part in parts(session, sorted(shas), _CHUNK):
        stmt = sa.select(_F.c.sha, _F.c.html, _F.c.text).where(one_of(session, _F.c.sha, part))
        for sha, html, text in session.execute(stmt):
            found[str(sha)] = (html, text)
    return found
