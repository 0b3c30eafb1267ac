"""Console accounts and their server-side sessions: the queries login, logout and the CLI need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.errors import InputError
from publisher.models import AdminSession, User


@dataclass(frozen=True, slots=True)
class SessionUser:
    """A live session and the account behind it."""

    user_id: int
    email: str
    role: str
    csrf: str
    expires: datetime


def get_user_by_email(session: Session, *, email: str) -> User | None:
    """The account for ``email``, whatever its letter case."""
    stmt = select(User).where(sa.func.lower(User.email) == email.lower())
    return session.exec(stmt).first()


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def add_user(session: Session, *, email: str, role: str, password_hash: str, now: datetime) -> User:
    """A new account; InputError when the address already has one."""
    if get_user_by_email(session, email=email) is not None:
        raise InputError(f"{email} already has an account")
    user = User(
        email=email, role=role, password_hash=password_hash, created=now, password_changed=now
    )
    session.add(user)
    try:
        session.flush()
    except sa.exc.IntegrityError as e:  # the same address added at the same moment elsewhere
        raise InputError(f"{email} already has an account") from e
    return user


def list_users(session: Session) -> list[User]:
    """Every account, by address (there are a handful)."""
    return list(session.exec(select(User).order_by(sa.func.lower(User.email), col(User.id))))


def remove_user(session: Session, *, user_id: int) -> bool:
    """Delete an account and end its sessions; False when there was none."""
    user = session.get(User, user_id)
    if user is None:
        return False
    end_user_sessions(session, user_id=user_id)
    session.delete(user)
    session.flush()
    return True


def set_password_hash(session: Session, *, user_id: int, password_hash: str, now: datetime) -> None:
    """Store a new hash and end every session of the account (a changed password logs out)."""
    session.exec(
        sa.update(User)
        .where(col(User.id) == user_id)
        .values(password_hash=password_hash, password_changed=now)
    )
    end_user_sessions(session, user_id=user_id)


def start_session(
    session: Session, *, token_hash: str, user_id: int, csrf: str, now: datetime, expires: datetime
) -> None:
    session.add(
        AdminSession(id=token_hash, user_id=user_id, csrf=csrf, created=now, expires=expires)
    )
    session.flush()


def session_user(session: Session, *, token_hash: str, now: datetime) -> SessionUser | None:
    """The account of an unexpired session (one indexed join), else None."""
    stmt = (
        sa.select(
            col(User.id),
            col(User.email),
            col(User.role),
            col(AdminSession.csrf),
            col(AdminSession.expires),
        )
        .join(AdminSession, col(AdminSession.user_id) == col(User.id))
        .where(col(AdminSession.id) == token_hash, col(AdminSession.expires) > now)
    )
    row = session.execute(stmt).first()
    if row is None:
        return None
    user_id, email, role, csrf, expires = row
    assert user_id is not None
    return SessionUser(user_id, email, role, csrf, expires)


def end_session(session: Session, *, token_hash: str) -> None:
    session.exec(sa.delete(AdminSession).where(col(AdminSession.id) == token_hash))


def end_user_sessions(session: Session, *, user_id: int) -> int:
    """End every session of an account; how many there were."""
    result = session.exec(sa.delete(AdminSession).where(col(AdminSession.user_id) == user_id))
    return int(result.rowcount or 0)


def purge_sessions(session: Session, *, now: datetime) -> int:
    """Delete expired sessions; how many went."""
    result = session.exec(sa.delete(AdminSession).where(col(AdminSession.expires) <= now))
    return int(result.rowcount or 0)
