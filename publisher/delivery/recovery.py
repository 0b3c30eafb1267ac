"""After a crash: which rows a dead worker left behind, and what they become.

A row a dead worker held (``sending``) may or may not have reached the server, so it becomes
``unknown`` and is never resent by itself; ``resend_unknown`` is the operator's decision to resend.
(Rows a worker claimed but never handed to SMTP are released by the worker itself when it stops
cleanly; after a crash nothing can prove that, so they are unknown too.) A worker is dead when
its lease has expired, or, on this machine, when its process is gone: the worker id carries the
host name and pid, so a restarted ``digests send`` need not wait out the lease.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from publisher.delivery.ledger import T
from publisher.models import DeliveryState


def worker_identity() -> str:
    """A fresh id for one sending process: ``host:pid:random`` (fits the 64-character column)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_dead_here(worker_id: str) -> bool:
    """Whether ``worker_id`` names a process of this machine that no longer runs."""
    head, sep, _random = worker_id.rpartition(":")
    host, sep_pid, pid = head.rpartition(":")
    if not (sep and sep_pid and pid.isdigit()):
        return False
    return host == socket.gethostname()[:40] and int(pid) != os.getpid() and _process_gone(int(pid))


def dead_local_workers(session: Session, *, now: datetime) -> list[str]:
    """Workers of this machine whose process is gone while their leases still run."""
    holders = session.scalars(
        sa.select(T.c.claimed_by)
        .where(T.c.state == DeliveryState.sending, T.c.lease_until >= now)
        .distinct()
    )
    return [w for w in holders if w and is_dead_here(w)]


def recover(session: Session, *, now: datetime, dead_workers: Collection[str] = ()) -> int:
    """Mark unknown the rows of workers whose lease expired or who died; returns how many."""
    gone = sa.or_(T.c.lease_until < now, T.c.claimed_by.in_(list(dead_workers)))
    stmt = (
        sa.update(T)
        .where(T.c.state == DeliveryState.sending, gone)
        .values(
            state=DeliveryState.unknown,
            lease_until=None,
            last_error=sa.func.coalesce(T.c.claimed_by, "?")
            + " stopped while sending; the server may or may not have the message",
        )
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def resend_unknown(session: Session, *, digest_ids: Collection[int] | None = None) -> int:
    """Put unknown rows back to pending on the operator's word; returns how many."""
    stmt = (
        sa.update(T)
        .where(T.c.state == DeliveryState.unknown)
        .values(state=DeliveryState.pending, claimed_by=None, lease_until=None, next_attempt=None)
    )
    if digest_ids is not None:
        stmt = stmt.where(T.c.digest_id.in_(list(digest_ids)))
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def counts(
    session: Session, *, digest_ids: Collection[int] | None = None
) -> dict[int, dict[str, int]]:
    """Rows per state for each digest (states with no rows are left out)."""
    stmt = sa.select(T.c.digest_id, T.c.state, sa.func.count()).group_by(T.c.digest_id, T.c.state)
    if digest_ids is not None:
        stmt = stmt.where(T.c.digest_id.in_(list(digest_ids)))
    result: dict[int, dict[str, int]] = defaultdict(dict)
    for digest_id, state, n in session.execute(stmt):
        result[digest_id][state] = n
    return dict(result)
