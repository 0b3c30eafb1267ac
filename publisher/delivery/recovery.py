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
from datetime import datetime

from sqlmodel import Session

from publisher.store import deliveries


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
    return [w for w in deliveries.lease_holders(session, now=now) if w and is_dead_here(w)]
