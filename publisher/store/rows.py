"""Race-safe creation of rows whose unique key another process may claim at the same moment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, SQLModel


def add_unless_taken(session: Session, row: SQLModel) -> bool:
    """Insert ``row`` in a savepoint; False (and nothing written) when a unique key was taken.

    The caller then reads the row that won, so concurrent creators agree on one. Rolling the
    savepoint back already takes the never-persisted ``row`` out of the session, so it is only
    expunged if something kept it there.
    """
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError:
        if row in session:
            session.expunge(row)
        return False
    return True
