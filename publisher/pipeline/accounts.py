"""Console accounts: Argon2id passwords, adding and removing users, logging in and out.

One path for the CLI (`publisher users ...`) and the console's own pages, each change audited
in its transaction. Logging in answers the same way, in about the same time, for an unknown
address and a wrong password: an unknown address is verified against a dummy hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from publisher.addresses import normalize_address
from publisher.errors import InputError
from publisher.models import User, UserRole
from publisher.store import audit, users
from publisher.store.users import SessionUser

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
ROLES = tuple(r.value for r in UserRole)


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106 low-memory profile


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def check_password(password: str) -> str:
    """``password`` if it is acceptable, else InputError saying why (length, control chars)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password may have at most {MAX_PASSWORD} characters")
    if any(c in password for c in "\r\n\x00"):
        raise InputError("the password holds a line break or NUL character")
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(check_password(password))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"role must be {' or '.join(ROLES)}, not {role[:40]!r}")
    return role


def add_user(
    session: Session, *, email: str, role: str, password: str, actor: str, now: datetime
) -> User:
    """A new account (InputError for a bad address, role or password, or a taken address)."""
    address = normalize_address(email)
    user = users.add_user(
        session,
        email=address,
        role=check_role(role),
        password_hash=hash_password(password),
        now=now,
    )
    audit.record(session, actor=actor, action="user-add", target=address, detail=role, at=now)
    return user


def remove_user(session: Session, *, email: str, actor: str, now: datetime) -> None:
    """Delete an account and its sessions; InputError when there is none."""
    user = users.get_user_by_email(session, email=email.strip())
    if user is None or user.id is None:
        raise InputError(f"no account for {email.strip()[:320]}")
    users.remove_user(session, user_id=user.id)
    audit.record(session, actor=actor, action="user-remove", target=user.email, at=now)


def set_password(session: Session, *, email: str, password: str, actor: str, now: datetime) -> None:
    """A new password for an account; every session of it ends (InputError: none or bad)."""
    user = users.get_user_by_email(session, email=email.strip())
    if user is None or user.id is None:
        raise InputError(f"no account for {email.strip()[:320]}")
    users.set_password_hash(
        session, user_id=user.id, password_hash=hash_password(password), now=now
    )
    audit.record(session, actor=actor, action="password", target=user.email, at=now)


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """The account whose password this is, else None (unknown address or wrong password alike).

    A hash made with older parameters is upgraded on the way in.
    """
    user = None
    if len(email) <= 320 and not any(c in email for c in "\r\n\x00"):
        user = users.get_user_by_email(session, email=email.strip())
    stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher().verify(stored, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or len(password) > MAX_PASSWORD:
        return None
    if _hasher().check_needs_rehash(stored):
        user.password_hash = _hasher().hash(password)
        session.add(user)
    return user


def token_hash(token: str) -> str:
    """What the store keeps of a session token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # goes into the cookie, never into the store
    expires: datetime


def log_in(session: Session, *, user: User, now: datetime, hours: float) -> NewSession:
    """Start a session for ``user`` (audited); its token goes into the cookie."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=hours)
    users.purge_sessions(session, now=now)
    users.start_session(
        session,
        token_hash=token_hash(token),
        user_id=user.id,
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires=expires,
    )
    audit.record(session, actor=user.email, action="login", target=user.email, at=now)
    return NewSession(token, expires)


def current(session: Session, *, token: str, now: datetime) -> SessionUser | None:
    """The live session the cookie's token names, else None."""
    if not token or len(token) > 200:
        return None
    return users.session_user(session, token_hash=token_hash(token), now=now)


def log_out(session: Session, *, token: str, email: str, now: datetime) -> None:
    users.end_session(session, token_hash=token_hash(token))
    audit.record(session, actor=email, action="logout", target=email, at=now)
